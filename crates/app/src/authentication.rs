//! Who is calling: a bearer API token or a session cookie, checked the same way for every
//! adapter that serves people (the JSON API, the pages, FHIR). Tokens and session cookies are
//! stored only as one-way hashes, so a stolen database opens nothing.

use crate::{App, AppError};
use chrono::Duration;
use seldinger_domain::access::Role;
use seldinger_domain::smart::SmartScopes;
use seldinger_domain::PatientId;
use seldinger_store::User;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A token made without an expiry (before expiry existed) expires this many days after it was made.
pub const TOKEN_DAYS_DEFAULT: u32 = 90;

/// What the caller presented to prove who they are.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// `Authorization: Bearer …`: an API token.
    Bearer(&'a str),
    /// The session cookie's value; `background` when a page's own periodic refresh sends it
    /// (that is not someone at the screen, so it does not keep an idle session alive).
    Session { cookie: &'a str, background: bool },
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Session {
        token_hash: String,
        csrf_token: String,
    },
    ApiToken {
        id: Uuid,
    },
}

/// A live user, the role they act in (a token's may be narrower than its user's), and how.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub role: Role,
    pub credential: Credential,
    /// A token limited to SMART scopes (FHIR only), perhaps bound to one patient.
    pub limits: Option<TokenLimits>,
}

/// What a SMART-scoped token may reach, within what its role may.
#[derive(Debug, Clone)]
pub struct TokenLimits {
    pub scopes: SmartScopes,
    /// `patient/` scopes reach this patient's record only.
    pub patient: Option<PatientId>,
}

/// How a token is stored and looked up.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl App {
    /// The live user behind what was presented, or `None` (unknown, expired, revoked, idle
    /// longer than `session_idle`, or a disabled account). An expired session is deleted.
    pub async fn authenticate(
        &self,
        presented: Presented<'_>,
        session_idle: Duration,
    ) -> Result<Option<Authenticated>, AppError> {
        let now = self.clock.now();
        match presented {
            Presented::Bearer(token) => {
                let Some(record) = self.store.api_token(&secret_hash(token.trim())).await? else {
                    return Ok(None);
                };
                let expires_at = record
                    .expires_at
                    .unwrap_or(record.created_at + Duration::days(i64::from(TOKEN_DAYS_DEFAULT)));
                if record.revoked_at.is_some() || now >= expires_at {
                    return Ok(None);
                }
                let Some(user) = self.live_user(record.user_id).await? else {
                    return Ok(None);
                };
                let limits = match &record.scopes {
                    None => None,
                    // Stored limits that no longer read are no limits to trust: refused.
                    Some(text) => match (SmartScopes::parse(text), &record.patient_id) {
                        (Ok(scopes), None) => Some(TokenLimits {
                            scopes,
                            patient: None,
                        }),
                        (Ok(scopes), Some(patient)) => match patient.parse() {
                            Ok(patient) => Some(TokenLimits {
                                scopes,
                                patient: Some(patient),
                            }),
                            Err(_) => return Ok(None),
                        },
                        (Err(_), _) => return Ok(None),
                    },
                };
                // A minute's precision is enough; writing on every request would double writes.
                if record
                    .last_used_at
                    .is_none_or(|last| now - last > Duration::minutes(1))
                {
                    self.store.touch_api_token(record.id, now).await?;
                }
                Ok(Some(Authenticated {
                    user,
                    role: record.role,
                    credential: Credential::ApiToken { id: record.id },
                    limits,
                }))
            }
            Presented::Session { cookie, background } => {
                let token_hash = secret_hash(cookie);
                let Some((session, user)) = self.store.session_and_user(&token_hash).await? else {
                    return Ok(None);
                };
                if now >= session.expires_at || now >= session.last_seen_at + session_idle {
                    self.store.delete_session(&token_hash).await?;
                    return Ok(None);
                }
                let Some(user) = user.filter(|user| !user.disabled) else {
                    return Ok(None);
                };
                if !background && now - session.last_seen_at > Duration::minutes(1) {
                    self.store.touch_session(&token_hash, now).await?;
                }
                let role = user.role;
                Ok(Some(Authenticated {
                    user,
                    role,
                    credential: Credential::Session {
                        token_hash,
                        csrf_token: session.csrf_token,
                    },
                    limits: None,
                }))
            }
        }
    }

    /// A slowed sign-in leaves the user's live sessions and tokens alone: they prove possession,
    /// which a guesser elsewhere does not. Only disabling the account ends them.
    async fn live_user(&self, id: Uuid) -> Result<Option<User>, AppError> {
        Ok(self
            .store
            .user_by_id(id)
            .await?
            .filter(|user| !user.disabled))
    }
}
