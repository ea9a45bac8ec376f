//! Signing in and out: `POST /api/v1/session` (JSON username/password → session cookie),
//! `GET` (who am I, with the CSRF token), `DELETE` (sign out).

use super::credentials::{new_secret, secret_hash, verify_against_nothing, verify_password};
use super::{client_addr, Audit, Caller, Credential, SESSION_COOKIE};
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, Extensions, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use seldinger_domain::access::Role;
use seldinger_store::Session;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// What was typed as a username is not kept unless it names an account: people type passwords
// into the wrong field, and the audit log is read by others.
const UNKNOWN_USERNAME: &str = "(no such user)";
const UNCHECKED_USERNAME: &str = "(not checked: too many attempts)";

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    /// Send this in `X-CSRF-Token` with every state-changing request made with the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Credentials,
    responses((status = 201, description = "signed in; the session cookie is set", body = SessionInfo),
        (status = 401, description = "wrong username or password, or the account is locked or disabled", body = crate::problem::Problem),
        (status = 429, description = "too many attempts from this address", body = crate::problem::Problem)))]
pub async fn sign_in(
    State(state): State<AppState>,
    extensions: Extensions,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let signed_in = password_sign_in(
        &state,
        &credentials.username,
        &credentials.password,
        &client_addr(&extensions),
    )
    .await?;
    let info = SessionInfo {
        username: signed_in.username,
        role: signed_in.role,
        csrf_token: Some(signed_in.csrf_token),
        expires_at: Some(signed_in.expires_at),
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, signed_in.set_cookie)],
        Json(info),
    ))
}

/// A successful sign-in: who, and the cookie that carries the new session.
pub struct SignedIn {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    /// The `Set-Cookie` header value.
    pub set_cookie: String,
}

/// Checks a password with rate limit, lock-out and audit, and opens a session. Shared by the
/// JSON endpoint and the sign-in page; every failure reads the same.
pub async fn password_sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    addr: &str,
) -> Result<SignedIn, ApiError> {
    let now = state.clock.now();
    if !state
        .login_limiter
        .allow(addr, now, state.auth_policy.login_attempts_per_minute)
    {
        state
            .audit_anonymous(UNCHECKED_USERNAME, "login_rate_limited", addr, "denied")
            .await?;
        return Err(ApiError::too_many_attempts());
    }
    let Some(user) = state.store.user_by_username(username.trim()).await? else {
        verify_against_nothing(password);
        state
            .audit_anonymous(UNKNOWN_USERNAME, "login_failed", addr, "denied")
            .await?;
        return Err(ApiError::sign_in_failed());
    };
    let locked = user.locked_until.is_some_and(|until| until > now);
    if user.disabled || locked || !verify_password(&user.password_hash, password) {
        if !user.disabled && !locked {
            let policy = &state.auth_policy;
            state
                .store
                .record_login_failure(user.id, policy.lockout_after, now + policy.lockout_for)
                .await?;
        }
        let action = if locked {
            "login_locked_out"
        } else {
            "login_failed"
        };
        state
            .audit_anonymous(&user.username, action, addr, "denied")
            .await?;
        return Err(ApiError::sign_in_failed());
    }
    state.store.record_login_success(user.id).await?;
    let token = new_secret();
    let session = Session {
        token_hash: secret_hash(&token),
        user_id: user.id,
        csrf_token: new_secret(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.auth_policy.session_absolute,
        client_addr: addr.to_string(),
    };
    state.store.create_session(&session).await?;
    state
        .audit_anonymous(&user.username, "login", addr, "allowed")
        .await?;
    let max_age = state.auth_policy.session_absolute.num_seconds();
    let secure = if state.auth_policy.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    Ok(SignedIn {
        username: user.username,
        role: user.role,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at,
        set_cookie: format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
    })
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::problem::Problem)))]
pub async fn current(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SessionInfo>, ApiError> {
    let (csrf_token, expires_at) = match &caller.credential {
        Credential::Session {
            token_hash,
            csrf_token,
        } => {
            let expires = state.store.session(token_hash).await?.map(|s| s.expires_at);
            (Some(csrf_token.clone()), expires)
        }
        Credential::ApiToken { .. } => (None, None),
    };
    Ok(Json(SessionInfo {
        username: caller.username.clone(),
        role: caller.role,
        csrf_token,
        expires_at,
    }))
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "signed out; the cookie is cleared"), (status = 401, body = crate::problem::Problem)))]
pub async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    if let Credential::Session { token_hash, .. } = &caller.credential {
        state.store.delete_session(token_hash).await?;
    }
    state
        .audit(
            &caller,
            Audit {
                action: "logout",
                resource_type: "session",
                resource_id: None,
                patient_id: None,
                break_glass_reason: None,
                outcome: "allowed",
            },
        )
        .await?;
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]))
}

/// Counts sign-in attempts per client address in a one-minute window (in memory: a restart
/// forgets, the per-account lock-out in the database does not).
#[derive(Default)]
pub struct LoginLimiter {
    windows: std::sync::Mutex<std::collections::HashMap<String, (DateTime<Utc>, u32)>>,
}

impl LoginLimiter {
    pub fn allow(&self, addr: &str, now: DateTime<Utc>, per_minute: u32) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now - *start < chrono::Duration::minutes(1));
        }
        let entry = windows.entry(addr.to_string()).or_insert((now, 0));
        if now - entry.0 >= chrono::Duration::minutes(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= per_minute
    }
}
