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
use seldinger_store::{Session, SignInStrikes};
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
        (status = 401, description = "wrong username or password, or the account is disabled", body = crate::problem::Problem),
        (status = 429, description = "too many failed attempts for this account from this address, or too many attempts from this address: wait (the detail says how long)", body = crate::problem::Problem)))]
pub async fn sign_in(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: axum::http::HeaderMap,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let signed_in = password_sign_in(
        &state,
        &credentials.username,
        &credentials.password,
        &client_addr(&extensions),
        super::forwarded_https(&headers),
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

/// The strikes row of an account from every address together (no address is written so).
const ACCOUNT_WIDE: &str = "*";

/// Checks a password with rate limit, lock-out and audit, and opens a session. Shared by the
/// JSON endpoint and the sign-in page; every failure reads the same. `via_https`: the client
/// came through a trusted TLS-terminating proxy (the cookie is then `Secure` as under TLS).
pub async fn password_sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    addr: &str,
    via_https: bool,
) -> Result<SignedIn, ApiError> {
    let now = state.clock.now();
    let attempts = state.store.count_sign_in_attempt(addr, now).await?;
    if attempts > state.auth_policy.login_attempts_per_minute {
        state
            .audit_anonymous(UNCHECKED_USERNAME, "login_rate_limited", addr, "denied")
            .await?;
        return Err(ApiError::too_many_attempts());
    }
    // Guessing is slowed per account and address, for real and unknown names alike, before any
    // password is checked; nobody else's guesses lock a user out.
    let account = username.trim().to_lowercase();
    let strikes = state.store.sign_in_strikes(&account, addr).await?;
    if let Some(until) = strikes
        .and_then(|s| s.wait_until)
        .filter(|until| *until > now)
    {
        state
            .audit_anonymous(UNCHECKED_USERNAME, "login_throttled", addr, "denied")
            .await?;
        return Err(ApiError::too_many_attempts_until(until, now));
    }
    // Guessing spread over many addresses: the account's strikes from every address together
    // slow it from addresses it has never signed in from; the user's own stay open.
    let everywhere = state.store.sign_in_strikes(&account, ACCOUNT_WIDE).await?;
    if let Some(until) = everywhere
        .as_ref()
        .and_then(|s| s.wait_until)
        .filter(|until| *until > now)
    {
        if !state.store.known_sign_in_address(&account, addr).await? {
            state
                .audit_anonymous(
                    UNCHECKED_USERNAME,
                    "login_throttled_account",
                    addr,
                    "denied",
                )
                .await?;
            return Err(ApiError::too_many_attempts_until(until, now));
        }
    }
    let user = state.store.user_by_username(username.trim()).await?;
    // The password is always checked once, so a real, disabled or unknown user answers alike.
    let password_ok = match &user {
        Some(user) => verify_password(&user.password_hash, password),
        None => {
            verify_against_nothing(password);
            false
        }
    };
    let user = match user {
        Some(user) if password_ok && !user.disabled => user,
        other => {
            let next = strike(strikes, now, &state.auth_policy);
            state
                .store
                .put_sign_in_strikes(&account, addr, Some(&next))
                .await?;
            let next = strike_after(
                everywhere,
                now,
                &state.auth_policy,
                state.auth_policy.account_lockout_after,
            );
            state
                .store
                .put_sign_in_strikes(&account, ACCOUNT_WIDE, Some(&next))
                .await?;
            let name = match &other {
                Some(user) => {
                    state.store.record_login_failure(user.id).await?;
                    user.username.as_str()
                }
                None => UNKNOWN_USERNAME,
            };
            let action = if other.as_ref().is_some_and(|u| u.disabled) {
                "login_disabled"
            } else {
                "login_failed"
            };
            state.audit_anonymous(name, action, addr, "denied").await?;
            return Err(ApiError::sign_in_failed());
        }
    };
    if strikes.is_some() {
        state
            .store
            .put_sign_in_strikes(&account, addr, None)
            .await?;
    }
    state.store.record_login_success(user.id).await?;
    state
        .store
        .remember_sign_in_address(&account, addr, now)
        .await?;
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
    let secure = if state.auth_policy.secure_cookies || via_https {
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

/// Slows guessing per (account, address) with growing delays: the strikes after one more
/// failure. After `lockout_after` consecutive failures the next attempt waits `throttle_base`,
/// doubling with each further failure up to `lockout_for`. A success clears them (the caller);
/// so does a quiet period of `lockout_for` after the last failure or the last wait (the count
/// restarts once a delay has run out unused, so one wrong password now and then never keeps
/// anyone out). Nothing here touches the account itself: its sessions and tokens go on
/// working, and a guesser on another address is slowed on their own. Kept in the database
/// (migration 0024), so every node behind a proxy counts the same guesses.
pub fn strike(
    previous: Option<SignInStrikes>,
    now: DateTime<Utc>,
    policy: &super::AuthPolicy,
) -> SignInStrikes {
    strike_after(previous, now, policy, policy.lockout_after)
}

/// As [`strike`], slowing from the `after`-th failure (the account-wide row counts to its own
/// number, `account_lockout_after`).
fn strike_after(
    previous: Option<SignInStrikes>,
    now: DateTime<Utc>,
    policy: &super::AuthPolicy,
    after: u32,
) -> SignInStrikes {
    let mut entry = previous.unwrap_or(SignInStrikes {
        failures: 0,
        last_failure: now,
        wait_until: None,
    });
    // A quiet period after the last failure, or after the last wait ran out, starts anew.
    let quiet_since = entry
        .wait_until
        .map_or(entry.last_failure, |w| w.max(entry.last_failure));
    if now - quiet_since >= policy.lockout_for {
        entry.failures = 0;
        entry.wait_until = None;
    }
    entry.failures = entry.failures.saturating_add(1);
    entry.last_failure = now;
    if entry.failures >= after {
        let doublings = (entry.failures - after).min(20);
        let delay = policy.throttle_base * 2i32.pow(doublings);
        entry.wait_until = Some(now + delay.min(policy.lockout_for));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use std::collections::HashMap;

    /// The strikes as the database keeps them, per (account, address).
    #[derive(Default)]
    struct Throttle(std::cell::RefCell<HashMap<(String, String), SignInStrikes>>);

    impl Throttle {
        fn failed(&self, key: (String, String), now: DateTime<Utc>, policy: &crate::AuthPolicy) {
            let previous = self.0.borrow().get(&key).copied();
            self.0
                .borrow_mut()
                .insert(key, strike(previous, now, policy));
        }
        fn wait_until(&self, key: &(String, String), now: DateTime<Utc>) -> Option<DateTime<Utc>> {
            self.0
                .borrow()
                .get(key)
                .and_then(|s| s.wait_until)
                .filter(|until| *until > now)
        }
        fn succeeded(&self, key: &(String, String)) {
            self.0.borrow_mut().remove(key);
        }
    }

    #[test]
    fn delays_grow_from_the_fifth_failure_are_capped_and_end_after_a_quiet_period() {
        let policy = crate::AuthPolicy::default();
        let throttle = Throttle::default();
        let key = ("scheduler".to_string(), "10.0.0.7".to_string());
        let t0 = Utc
            .with_ymd_and_hms(2026, 12, 1, 8, 0, 0)
            .single()
            .expect("time");
        for _ in 0..4 {
            throttle.failed(key.clone(), t0, &policy);
        }
        assert_eq!(
            throttle.wait_until(&key, t0),
            None,
            "four failures: no wait"
        );
        throttle.failed(key.clone(), t0, &policy);
        assert_eq!(
            throttle.wait_until(&key, t0),
            Some(t0 + policy.throttle_base)
        );
        // Each further failure doubles the wait, up to the cap.
        let mut at = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            at = throttle.wait_until(&key, at).unwrap_or(at);
            throttle.failed(key.clone(), at, &policy);
            waits.push(
                throttle
                    .wait_until(&key, at)
                    .map(|u| (u - at).num_seconds()),
            );
        }
        assert_eq!(
            waits,
            [60, 120, 240, 480, 900, 900, 900, 900].map(Some),
            "30 s doubling, capped at 15 min"
        );
        // The wait runs out; with no failure for the quiet period the count starts anew: one
        // more wrong password is just a wrong password.
        let later = at + policy.lockout_for + policy.lockout_for;
        assert_eq!(throttle.wait_until(&key, later), None);
        throttle.failed(key.clone(), later, &policy);
        assert_eq!(throttle.wait_until(&key, later), None);
        // Another address is counted on its own; a success clears the count.
        let other = ("scheduler".to_string(), "10.0.0.8".to_string());
        assert_eq!(throttle.wait_until(&other, t0), None);
        throttle.succeeded(&key);
        for _ in 0..4 {
            throttle.failed(key.clone(), later + Duration::seconds(1), &policy);
        }
        assert_eq!(
            throttle.wait_until(&key, later + Duration::seconds(1)),
            None
        );
    }
}
