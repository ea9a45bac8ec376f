//! Server-rendered pages (askama templates, HTML auto-escaped): signing in and out of the web UI.
//! Every form carries a CSRF token: the sign-in form a double-submit cookie, forms after sign-in
//! the session's own token.

use crate::auth::credentials::{constant_time_eq, new_secret};
use crate::auth::login::password_sign_in;
use crate::auth::{authenticate, client_addr, Credential, SESSION_COOKIE};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_domain::access::{grant, Permission};
use serde::Deserialize;

const LOGIN_CSRF_COOKIE: &str = "seldinger_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf_token: String,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Vec<crate::ui::NavItem>,
    username: String,
    role: String,
    csrf_token: String,
    permissions: Vec<&'static str>,
}

fn render(template: &impl Template) -> Result<Html<String>, ApiError> {
    template.render().map(Html).map_err(|e| {
        tracing::error!(error = %e, "template failed");
        ApiError::internal()
    })
}

/// The sign-in form with a fresh double-submit token.
fn login_form(status: StatusCode, username: &str, error: Option<String>) -> Response {
    let token = new_secret();
    let page = LoginPage {
        csrf_token: token.clone(),
        username: username.to_string(),
        error,
    };
    match render(&page) {
        Ok(html) => {
            let cookie =
                format!("{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict");
            (status, [(header::SET_COOKIE, cookie)], html).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if authenticate(&state, &headers).await.is_ok() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie_token = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !constant_time_eq(&cookie_token, &form.csrf_token) {
        return login_form(
            StatusCode::FORBIDDEN,
            &form.username,
            Some("The form had expired. Please sign in again.".into()),
        );
    }
    match password_sign_in(
        &state,
        &form.username,
        &form.password,
        &client_addr(&extensions),
        crate::auth::forwarded_https(&headers),
    )
    .await
    {
        Ok(signed_in) => {
            let clear =
                format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0");
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                signed_in
                    .set_cookie
                    .parse()
                    .unwrap_or(header::HeaderValue::from_static("")),
            );
            response.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&clear)
                    .unwrap_or(header::HeaderValue::from_static("")),
            );
            response
        }
        Err(e) => {
            let status = e.status();
            login_form(status, &form.username, Some(e.detail().to_string()))
        }
    }
}

pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok((user, Credential::Session { csrf_token, .. }, _)) =
        authenticate(&state, &headers).await
    else {
        return Redirect::to("/login").into_response();
    };
    if grant(user.role, Permission::ReadCases).is_some() {
        return Redirect::to("/board").into_response();
    }
    let permissions = Permission::ALL
        .into_iter()
        .filter(|p| grant(user.role, *p).is_some())
        .map(Permission::as_str)
        .collect();
    let page = HomePage {
        nav: crate::ui::nav_for(user.role, "/"),
        username: user.username,
        role: user.role.as_str().into(),
        csrf_token,
        permissions,
    };
    render(&page).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf_token: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Ok((
        user,
        Credential::Session {
            token_hash,
            csrf_token,
        },
        _,
    )) = authenticate(&state, &headers).await
    else {
        return Redirect::to("/login").into_response();
    };
    if !constant_time_eq(&form.csrf_token, &csrf_token) {
        return ApiError::csrf().into_response();
    }
    if let Err(e) = state.store.delete_session(&token_hash).await {
        return ApiError::from(e).into_response();
    }
    if let Err(e) = state
        .audit_anonymous(
            &user.username,
            "logout",
            &client_addr(&extensions),
            "allowed",
        )
        .await
    {
        return e.into_response();
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/seldinger.css"),
    )
}

/// Brings a refused form's first error into view (progressive enhancement; see the file).
pub(crate) async fn forms_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/forms.js"),
    )
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::auth::cookie_value(headers, name)
}
