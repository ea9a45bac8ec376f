//! Who is calling: the same users and sign-in as the rest of Seldinger (an API token as a bearer,
//! or the browser's session cookie, with its CSRF header on a write), checked by the application
//! layer. A break-glass reason may be given in the same header as on the JSON API.

use crate::error::FhirError;
use crate::FhirState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use seldinger_app::{constant_time_eq, Credential, Presented, Principal, TokenLimits};
use seldinger_domain::PatientId;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "seldinger_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const BREAK_GLASS_HEADER: &str = "x-break-glass-reason";

/// An authenticated caller, as the application layer knows them, with the SMART scopes their
/// token is limited to (none: what their role may).
pub struct Caller {
    pub principal: Principal,
    pub limits: Option<TokenLimits>,
}

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl Caller {
    /// Refuses unless the token's scopes allow reading (or writing) `resource`.
    pub fn may(&self, resource: &str, write: bool) -> Result<(), FhirError> {
        match &self.limits {
            Some(limits) if !limits.scopes.allows(resource, write) => {
                Err(FhirError::forbidden(format!(
                    "this token's scopes ({}) do not allow {} {resource}",
                    limits.scopes.as_str(),
                    if write { "writing" } else { "reading" }
                )))
            }
            _ => Ok(()),
        }
    }

    /// The one patient the token is bound to (`patient/` scopes), if any.
    pub fn bound_patient(&self) -> Option<PatientId> {
        self.limits.as_ref().and_then(|l| l.patient)
    }
}

impl FromRequestParts<FhirState> for Caller {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &FhirState) -> Result<Self, FhirError> {
        let cookie;
        let presented = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => Presented::Bearer(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or_else(FhirError::unauthenticated)?,
            ),
            None => {
                cookie = cookie_value(&parts.headers, SESSION_COOKIE)
                    .ok_or_else(FhirError::unauthenticated)?;
                Presented::Session {
                    cookie: &cookie,
                    background: false,
                }
            }
        };
        let known = state
            .app
            .authenticate(presented, state.session_idle)
            .await?
            .ok_or_else(FhirError::unauthenticated)?;
        if let Credential::Session { csrf_token, .. } = &known.credential {
            // A cookie rides along with any request a browser is tricked into sending; a write
            // must also carry the token only the page knows.
            let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !safe && !constant_time_eq(sent, csrf_token) {
                return Err(FhirError::forbidden(format!(
                    "a write with a session cookie must carry the session's {CSRF_HEADER} header"
                )));
            }
        }
        let break_glass_reason = match parts.headers.get(BREAK_GLASS_HEADER) {
            None => None,
            Some(value) => {
                let reason = value.to_str().map(str::trim).unwrap_or_default();
                let length = reason.chars().count();
                if !(10..=500).contains(&length) {
                    return Err(FhirError::invalid(
                        BREAK_GLASS_HEADER,
                        "give the clinical reason in 10-500 printable characters",
                    ));
                }
                Some(reason.to_string())
            }
        };
        // An app limited to SMART scopes breaks glass only when granted it: its user's reason is
        // not the app's to give.
        if let (Some(_), Some(limits)) = (&break_glass_reason, &known.limits) {
            if !limits.scopes.allows_break_glass() {
                return Err(FhirError::forbidden(format!(
                    "this token is limited to the scopes {} without {}: it cannot open records outside its user's scope",
                    limits.scopes.as_str(),
                    seldinger_domain::smart::BREAK_GLASS_SCOPE
                )));
            }
        }
        let client_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(Caller {
            principal: Principal {
                username: known.user.username,
                role: known.role,
                client_addr,
                break_glass_reason,
                via_message: None,
                via_claim: None,
            },
            limits: known.limits,
        })
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
}
