//! The department in the browser: server-rendered pages (askama templates, HTML auto-escaped)
//! over the same rules, store and audit trail as the JSON API. Pages sign in with the session
//! cookie; every form carries the session's CSRF token; a page that shows patient data is audited
//! like the API read it is. Light progressive enhancement only (`static/board.js` refreshes the
//! board's lanes); everything works without script.

pub(crate) mod board;
mod case;
mod devices;
mod dose;
mod imaging;
mod interfaces;
mod lists;
mod quality;
mod report;
mod report_pdf;
mod vetting;

use crate::auth::credentials::constant_time_eq;
use crate::auth::{authenticate, client_addr, Caller, Credential};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use seldinger_domain::access::{grant, Permission};

/// A page route: its path, the methods it answers and its handlers. The router is built from
/// [`PAGES`] alone, so a test that walks the table walks every page.
pub struct PageRoute {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    route: fn() -> MethodRouter<AppState>,
}

const fn page(
    path: &'static str,
    methods: &'static [&'static str],
    route: fn() -> MethodRouter<AppState>,
) -> PageRoute {
    PageRoute {
        path,
        methods,
        route,
    }
}

/// Every server-rendered page and form target, and the static files they use.
pub const PAGES: &[PageRoute] = &[
    page("/", &["GET"], || get(crate::pages::home)),
    page("/login", &["GET", "POST"], || {
        get(crate::pages::login_page).post(crate::pages::login_submit)
    }),
    page("/logout", &["POST"], || post(crate::pages::logout)),
    page("/static/seldinger.css", &["GET"], || {
        get(crate::pages::stylesheet)
    }),
    page("/static/forms.js", &["GET"], || {
        get(crate::pages::forms_script)
    }),
    page("/static/board.js", &["GET"], || get(board::script)),
    page("/board", &["GET"], || get(board::page)),
    page("/board/lanes", &["GET"], || get(board::lanes)),
    page("/cases/{id}", &["GET"], || get(case::page)),
    page("/cases/{id}/do", &["POST"], || post(case::act)),
    page("/cases/{id}/report", &["GET", "POST"], || {
        get(report::page).post(report::act)
    }),
    page("/cases/{id}/report.pdf", &["GET"], || get(report::pdf)),
    page("/cases/{id}/discharge-instructions", &["GET"], || {
        get(case::discharge_sheet)
    }),
    page("/follow-up", &["GET"], || get(lists::follow_up)),
    page("/follow-up/{id}/complete", &["POST"], || {
        post(lists::complete)
    }),
    page("/recovery", &["GET"], || get(lists::recovery)),
    page("/devices", &["GET"], || get(devices::registry)),
    page("/devices/ivc-filters", &["GET"], || {
        get(devices::ivc_filters)
    }),
    page("/devices/{id}/do", &["POST"], || post(devices::act)),
    page("/dose", &["GET"], || get(dose::page)),
    page("/quality", &["GET"], || get(quality::dashboard)),
    page("/quality/mm", &["GET"], || get(quality::mm)),
    page("/quality/mm/{case_id}/notes", &["POST"], || {
        post(quality::add_note)
    }),
    page("/imaging", &["GET"], || get(imaging::review)),
    page("/dose/reports/{sop}/link", &["POST"], || post(dose::link)),
    page("/vetting", &["GET"], || get(vetting::page)),
    page("/vetting/{case_id}", &["POST"], || post(vetting::decide)),
    page("/interfaces/hl7", &["GET"], || get(interfaces::inbox)),
    page("/interfaces/hl7/outbox", &["GET"], || {
        get(interfaces::outbox)
    }),
    page("/interfaces/hl7/outbox/{id}", &["GET"], || {
        get(interfaces::outbound)
    }),
    page("/interfaces/hl7/outbox/{id}/send-again", &["POST"], || {
        post(interfaces::send_again)
    }),
    page("/interfaces/hl7/{id}", &["GET"], || {
        get(interfaces::message)
    }),
    page("/interfaces/hl7/{id}/replay", &["POST"], || {
        post(interfaces::replay)
    }),
];

pub fn routes() -> Router<AppState> {
    PAGES.iter().fold(Router::new(), |router, page| {
        router.route(page.path, (page.route)())
    })
}

/// One entry of the navigation: shown only to roles that may use it.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: &[(&str, &str, Permission)] = &[
    ("/board", "Board", Permission::ReadCases),
    ("/vetting", "Vetting", Permission::VetCases),
    ("/recovery", "Recovery", Permission::ReadCases),
    ("/follow-up", "Follow-up", Permission::ReadCases),
    ("/devices", "Devices", Permission::ReadCases),
    ("/dose", "Dose", Permission::ReadDose),
    ("/quality", "Quality", Permission::ReadDeidentifiedOutcomes),
    ("/imaging", "Imaging", Permission::RunProcedures),
    ("/interfaces/hl7", "HL7 inbox", Permission::ManageInterfaces),
    (
        "/interfaces/hl7/outbox",
        "HL7 outbox",
        Permission::ManageInterfaces,
    ),
];

/// The navigation a role may use, with `here` marked current.
pub fn nav_for(role: seldinger_domain::access::Role, here: &str) -> Vec<NavItem> {
    NAV.iter()
        .filter(|(_, _, p)| grant(role, *p).is_some())
        .map(|(href, label, _)| NavItem {
            href,
            label,
            current: *href == here,
        })
        .collect()
}

/// Who is looking, with what the page chrome needs.
pub struct Viewer {
    pub caller: Caller,
    pub csrf_token: String,
    pub nav: Vec<NavItem>,
}

impl Viewer {
    /// The signed-in user, if their role holds `permission`; else the sign-in page (no session)
    /// or a 403 page.
    pub async fn require(
        state: &AppState,
        headers: &HeaderMap,
        extensions: &Extensions,
        permission: Permission,
        here: &'static str,
    ) -> Result<Viewer, Response> {
        let Ok((user, credential, _)) = authenticate(state, headers).await else {
            // A background refresh is told plainly, so the page can say the session timed out.
            if headers.contains_key(crate::auth::BACKGROUND_HEADER) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "signed out: the session ended after a time without activity",
                )
                    .into_response());
            }
            return Err(Redirect::to("/login").into_response());
        };
        let Credential::Session { csrf_token, .. } = &credential else {
            // Pages are for people with a session; scripts use the API.
            return Err(Redirect::to("/login").into_response());
        };
        let csrf_token = csrf_token.clone();
        if grant(user.role, permission).is_none() {
            // Audited as an API refusal is: the trail shows who tried which page.
            let entry = crate::auth::refusal_entry(
                state.clock.now(),
                &user.username,
                user.role,
                format!("GET {here}"),
                "page",
                client_addr(extensions),
            );
            if let Err(error) = state.store.append_audit(&entry).await {
                tracing::error!(%error, "a page refusal was not audited");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "Not available to your role",
                &format!(
                    "Your role ({}) may not {}.",
                    user.role.as_str(),
                    permission.as_str().replace('_', " ")
                ),
            ));
        }
        let nav = nav_for(user.role, here);
        Ok(Viewer {
            caller: Caller {
                principal: seldinger_app::Principal {
                    username: user.username,
                    role: user.role,
                    client_addr: client_addr(extensions),
                    break_glass_reason: None,
                    via_message: None,
                    via_claim: None,
                },
                credential,
            },
            csrf_token,
            nav,
        })
    }

    /// Whether a form's CSRF token is the session's; if not, answer [`expired_form`].
    pub fn csrf_ok(&self, sent: &str) -> bool {
        constant_time_eq(sent, &self.csrf_token)
    }

    pub fn username(&self) -> &str {
        &self.caller.username
    }

    pub fn role(&self) -> &str {
        self.caller.role.as_str()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    detail: &'a str,
}

/// The answer to a form whose CSRF token is not the session's.
pub fn expired_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "The form had expired",
        "Reload the page and try again.",
    )
}

pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    match (ErrorPage { title, detail }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, title.to_string()).into_response(),
    }
}

/// Renders a page, or a plain 500 page if the template fails (logged).
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown; the error is logged.",
            )
        }
    }
}

/// An API error shown as a page.
pub fn api_error_page(error: ApiError) -> Response {
    let status = error.status();
    error_page(status, "That did not work", error.detail())
}
