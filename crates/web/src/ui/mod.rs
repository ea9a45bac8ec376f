//! The department in the browser: server-rendered pages (askama templates, HTML auto-escaped)
//! over the same rules, store and audit trail as the JSON API. Pages sign in with the session
//! cookie; every form carries the session's CSRF token; a page that shows patient data is audited
//! like the API read it is. Light progressive enhancement only (`static/board.js` refreshes the
//! board's lanes); everything works without script.

mod board;
mod case;
mod dose;
mod lists;
mod vetting;

use crate::auth::credentials::constant_time_eq;
use crate::auth::{authenticate, client_addr, Caller, Credential};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use seldinger_domain::access::{grant, Permission};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/board", get(board::page))
        .route("/board/lanes", get(board::lanes))
        .route("/cases/{id}", get(case::page))
        .route("/cases/{id}/do", post(case::act))
        .route(
            "/cases/{id}/discharge-instructions",
            get(case::discharge_sheet),
        )
        .route("/follow-up", get(lists::follow_up))
        .route("/follow-up/{id}/complete", post(lists::complete))
        .route("/recovery", get(lists::recovery))
        .route("/dose", get(dose::page))
        .route("/dose/reports/{sop}/link", post(dose::link))
        .route("/vetting", get(vetting::page))
        .route("/vetting/{case_id}", post(vetting::decide))
        .route("/static/board.js", get(board::script))
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
    ("/dose", "Dose", Permission::ReadDose),
];

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
        let Ok((user, credential, _)) = authenticate(state, headers, state.clock.now()).await
        else {
            return Err(Redirect::to("/login").into_response());
        };
        let Credential::Session { csrf_token, .. } = &credential else {
            // Pages are for people with a session; scripts use the API.
            return Err(Redirect::to("/login").into_response());
        };
        let csrf_token = csrf_token.clone();
        let Some(scope) = grant(user.role, permission) else {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "Not available to your role",
                &format!(
                    "Your role ({}) may not {}.",
                    user.role.as_str(),
                    permission.as_str().replace('_', " ")
                ),
            ));
        };
        let nav = NAV
            .iter()
            .filter(|(_, _, p)| grant(user.role, *p).is_some())
            .map(|(href, label, _)| NavItem {
                href,
                label,
                current: *href == here,
            })
            .collect();
        Ok(Viewer {
            caller: Caller {
                user_id: user.id,
                username: user.username,
                role: user.role,
                credential,
                scope,
                client_addr: client_addr(extensions),
                break_glass_reason: None,
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
