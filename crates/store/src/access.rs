//! Users, sessions, API tokens and the audit log. Secrets arrive already hashed: the store never
//! sees a password or a token.

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::{parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::Role;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

fn opt_ts(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn role_of(row: &AnyRow, column: &str) -> Result<Role, StoreError> {
    Role::parse(&text(row, column)?).map_err(StoreError::Corrupt)
}

pub(crate) fn uuid_of(row: &AnyRow, column: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text(row, column)?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, username, display_name, role, password_hash, disabled, failed_logins, locked_until, password_changed_at, created_at";

/// A session and its user's columns in one read, built once: every signed-in request runs it.
static SESSION_AND_USER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let user_columns: Vec<String> = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect();
    format!(
        "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at AS session_created_at, \
         s.last_seen_at, s.expires_at, s.client_addr, {} \
         FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        user_columns.join(", ")
    )
});

fn user_from(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: uuid_of(row, "id")?,
        username: text(row, "username")?,
        display_name: text(row, "display_name")?,
        role: role_of(row, "role")?,
        password_hash: text(row, "password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        failed_logins: row
            .try_get::<i64, _>("failed_logins")?
            .clamp(0, i64::from(u32::MAX)) as u32,
        locked_until: opt_ts(row, "locked_until")?,
        password_changed_at: parse_ts(&text(row, "password_changed_at")?)?,
        created_at: parse_ts(&text(row, "created_at")?)?,
    })
}

fn session_from(r: &AnyRow, created_at: &str) -> Result<Session, StoreError> {
    Ok(Session {
        token_hash: text(r, "token_hash")?,
        user_id: uuid_of(r, "user_id")?,
        csrf_token: text(r, "csrf_token")?,
        created_at: parse_ts(&text(r, created_at)?)?,
        last_seen_at: parse_ts(&text(r, "last_seen_at")?)?,
        expires_at: parse_ts(&text(r, "expires_at")?)?,
        client_addr: text(r, "client_addr")?,
    })
}

/// A live session, by the hash of its cookie value.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user_id: Uuid,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_addr: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    #[serde(skip)]
    pub token_hash: String,
    pub user_id: Uuid,
    /// The token acts with this role, whatever its user's role becomes.
    pub role: Role,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// After this the token is refused. Tokens from before expiry existed carry none here and
    /// expire a default interval after they were made (the web layer's policy).
    pub expires_at: Option<DateTime<Utc>>,
    /// The SMART on FHIR scopes it is limited to (space-separated); none: what its role may.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    /// The one patient it may reach (`patient/` scopes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub username: String,
    pub role: String,
    /// e.g. `read`, `create`, `update`, `transition`, `search`, `login`, `login_failed`, `logout`.
    pub action: String,
    /// e.g. `patient`, `case`, `referral`, `session`, `user`.
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub client_addr: String,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// Set when a clinician opened a record outside their scope: flagged for review.
    pub break_glass_reason: Option<String>,
    /// The received HL7 message (inbox id) this write applied, when an interface wrote it.
    pub via_message: Option<String>,
    /// How this write marks that message applied, in its own commit (see [`crate::Claim`]).
    #[serde(skip)]
    pub via_claim: Option<std::sync::Arc<crate::Claim>>,
}

impl AuditEntry {
    /// A line for what the system itself did (the command line, start-up), not a signed-in user.
    pub fn system(
        at: DateTime<Utc>,
        action: impl Into<String>,
        resource_type: &str,
        resource_id: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at,
            username: "system".into(),
            role: "system".into(),
            action: action.into(),
            resource_type: resource_type.into(),
            resource_id,
            patient_id: None,
            client_addr: "local".into(),
            outcome: "allowed".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        }
    }
}

/// Consecutive failed sign-ins for one (account, address), and until when the next must wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignInStrikes {
    pub failures: u32,
    pub last_failure: DateTime<Utc>,
    pub wait_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub patient_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub break_glass_only: bool,
}

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Adds a user; a taken username is refused.
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        password_hash: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<User, StoreError> {
        let id = Uuid::new_v4();
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let result = sqlx::query(
            "INSERT INTO users (id, username, display_name, role, password_hash, disabled, failed_logins, password_changed_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6)",
        )
        .bind(id.to_string())
        .bind(username.to_string())
        .bind(display_name.to_string())
        .bind(role.as_str())
        .bind(password_hash.to_string())
        .bind(ts(at))
        .execute(&mut *tx)
        .await;
        match result {
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Duplicate(format!(
                "username '{username}' is taken"
            ))),
            other => {
                other?;
                insert_audit_all(&mut tx, audit).await?;
                tx.commit().await?;
                drop(conn);
                self.user_by_username(username)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("user {username}")))
            }
        }
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(user_from).collect()
    }

    /// Disables or re-enables a user; disabling also ends their sessions and revokes their tokens.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<User, StoreError> {
        let user = self
            .user_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?;
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user.id.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(ts(at))
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        drop(conn);
        self.user_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))
    }

    /// Sets a new password hash, clears any lock-out and ends the user's sessions.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let user = self
            .user_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?;
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, failed_logins = 0, locked_until = NULL WHERE id = $3",
        )
        .bind(password_hash.to_string())
        .bind(ts(at))
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts a failed sign-in atomically; returns the new count. `lock_after` failures lock the
    /// account until `lock_until`.
    /// Counts a failed sign-in (shown to administrators; sign-in is slowed per account and
    /// address in the web layer, never by locking the account).
    pub async fn record_login_failure(&self, user_id: Uuid) -> Result<u32, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user_id.to_string())
        .fetch_one(&mut *self.write_conn().await?)
        .await?;
        Ok(row
            .try_get::<i64, _>("failed_logins")?
            .clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// Counts one sign-in attempt from `addr` in its one-minute window (a new window once the
    /// last began a minute or more ago), in one statement so nodes sharing the database count
    /// together: the attempts in the window, this one included.
    pub async fn count_sign_in_attempt(
        &self,
        addr: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let expired = ts(now - chrono::Duration::minutes(1));
        let mut conn = self.write_conn().await?;
        let row = sqlx::query(
            "INSERT INTO sign_in_windows (client_addr, window_start, attempts) VALUES ($1, $2, 1) \
             ON CONFLICT (client_addr) DO UPDATE SET \
               attempts = CASE WHEN sign_in_windows.window_start <= $3 THEN 1 \
                               ELSE sign_in_windows.attempts + 1 END, \
               window_start = CASE WHEN sign_in_windows.window_start <= $3 THEN $2 \
                                   ELSE sign_in_windows.window_start END \
             RETURNING attempts",
        )
        .bind(addr.to_string())
        .bind(ts(now))
        .bind(expired.clone())
        .fetch_one(&mut *conn)
        .await?;
        let attempts: i64 = row.try_get("attempts")?;
        if attempts == 1 {
            // A new window: windows of other addresses that ran out are no longer needed.
            sqlx::query("DELETE FROM sign_in_windows WHERE window_start <= $1")
                .bind(expired)
                .execute(&mut *conn)
                .await?;
        }
        Ok(attempts.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// The failed-sign-in strikes of (account, address), if any.
    pub async fn sign_in_strikes(
        &self,
        username: &str,
        addr: &str,
    ) -> Result<Option<SignInStrikes>, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure, wait_until FROM sign_in_strikes \
             WHERE username = $1 AND client_addr = $2",
        )
        .bind(username.to_string())
        .bind(addr.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|row| {
            let wait_until: Option<String> = row.try_get("wait_until")?;
            Ok(SignInStrikes {
                failures: row
                    .try_get::<i64, _>("failures")?
                    .clamp(0, i64::from(u32::MAX)) as u32,
                last_failure: parse_ts(&text(&row, "last_failure")?)?,
                wait_until: wait_until.as_deref().map(parse_ts).transpose()?,
            })
        })
        .transpose()
    }

    /// Keeps the strikes of (account, address) as they now stand; `None` clears them.
    pub async fn put_sign_in_strikes(
        &self,
        username: &str,
        addr: &str,
        strikes: Option<&SignInStrikes>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        match strikes {
            None => {
                sqlx::query("DELETE FROM sign_in_strikes WHERE username = $1 AND client_addr = $2")
                    .bind(username.to_string())
                    .bind(addr.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            Some(strikes) => {
                sqlx::query(
                    "INSERT INTO sign_in_strikes (username, client_addr, failures, last_failure, wait_until) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username, client_addr) DO UPDATE SET \
                     failures = $3, last_failure = $4, wait_until = $5",
                )
                .bind(username.to_string())
                .bind(addr.to_string())
                .bind(i64::from(strikes.failures))
                .bind(ts(strikes.last_failure))
                .bind(strikes.wait_until.map(ts))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    /// Whether `username` has signed in successfully from `addr` before.
    pub async fn known_sign_in_address(
        &self,
        username: &str,
        addr: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 FROM sign_in_known_addresses WHERE username = $1 AND client_addr = $2",
        )
        .bind(username.to_string())
        .bind(addr.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .is_some())
    }

    /// Remembers a successful sign-in of `username` from `addr`.
    pub async fn remember_sign_in_address(
        &self,
        username: &str,
        addr: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sign_in_known_addresses (username, client_addr, last_signed_in) \
             VALUES ($1, $2, $3) ON CONFLICT (username, client_addr) DO UPDATE SET \
             last_signed_in = $3",
        )
        .bind(username.to_string())
        .bind(addr.to_string())
        .bind(ts(at))
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    pub async fn record_login_success(&self, user_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user_id.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    // ----- sessions -----

    pub async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, client_addr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session.token_hash.clone())
        .bind(session.user_id.to_string())
        .bind(session.csrf_token.clone())
        .bind(ts(session.created_at))
        .bind(ts(session.last_seen_at))
        .bind(ts(session.expires_at))
        .bind(session.client_addr.clone())
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, client_addr FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| session_from(&r, "created_at")).transpose()
    }

    /// A session and its user (none if the user is gone), in one read: every signed-in
    /// request asks for both.
    pub async fn session_and_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Session, Option<User>)>, StoreError> {
        let row = sqlx::query(&SESSION_AND_USER)
            .bind(token_hash.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let session = session_from(&row, "session_created_at")?;
        let user = match row.try_get::<Option<String>, _>("username")? {
            Some(_) => Some(user_from(&row)?),
            None => None,
        };
        Ok(Some((session, user)))
    }

    pub async fn touch_session(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(ts(at))
            .bind(token_hash.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    // ----- API tokens -----

    pub async fn create_api_token(
        &self,
        token: &ApiToken,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, user_id, role, name, created_at, expires_at, scopes, patient_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(token.id.to_string())
        .bind(token.token_hash.clone())
        .bind(token.user_id.to_string())
        .bind(token.role.as_str())
        .bind(token.name.clone())
        .bind(ts(token.created_at))
        .bind(token.expires_at.map(ts))
        .bind(token.scopes.clone())
        .bind(token.patient_id.clone())
        .execute(&mut *tx)
        .await?;
        insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(
            "SELECT id, token_hash, user_id, role, name, created_at, revoked_at, last_used_at, expires_at, scopes, patient_id FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(token_from).transpose()
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, token_hash, user_id, role, name, created_at, revoked_at, last_used_at, expires_at, scopes, patient_id FROM api_tokens ORDER BY created_at",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(token_from).collect()
    }

    pub async fn touch_api_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(ts(at))
            .bind(id.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Revokes a token; returns whether one was live.
    pub async fn revoke_api_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<bool, StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            return Ok(false);
        }
        insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    // ----- audit -----

    /// A secret generated at installation (migration 0008), by name.
    pub async fn deployment_secret(&self, name: &str) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT value FROM deployment_secrets WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("deployment secret {name} is missing")))?;
        text(&row, "value")
    }

    /// Appends one audit entry (`seq` is assigned by the database).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.append_audit_batch(std::slice::from_ref(entry)).await
    }

    /// Appends entries atomically (a list shown to a user is one commit, not one per row) and
    /// returns once they are committed. Entries appended at the same moment by other requests
    /// share the commit (group commit): one writer leads, writing everything waiting in one
    /// transaction, and the rest wait for it; so a hundred screens reading at once cost a few
    /// commits, not a hundred queued one behind another. In a batch, written in its transaction.
    pub async fn append_audit_batch(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.batch.is_some() {
            return self.write_audit_rows(entries).await;
        }
        let asked = std::time::Instant::now();
        let result = self.append_audit_in_group(entries).await;
        metrics::histogram!("seldinger_audit_wait_seconds").record(asked.elapsed().as_secs_f64());
        result
    }

    /// The group commit of `append_audit_batch`.
    async fn append_audit_in_group(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let (done, mut outcome) = tokio::sync::oneshot::channel();
        // The list is only pushed to and taken from, so one left poisoned by a panic elsewhere
        // is still whole: recovered, never read as empty (which would leave waiters unwritten).
        self.audit_group
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((entries.to_vec(), done));
        // Either a leader writes our entries with its group (we return when it has committed),
        // or we get the turn and lead. Waiting on both at once matters when busy: a waiter
        // whose entries were written leaves the queue at once instead of taking the turn only
        // to find nothing to write, one waiter after another.
        let turn = tokio::select! {
            biased;
            written = &mut outcome => {
                return written
                    .map_err(|_| StoreError::Config("the audit write was abandoned".into()))?;
            }
            turn = self.audit_group.leader.clone().lock_owned() => turn,
        };
        let group = std::mem::take(
            &mut *self
                .audit_group
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !group.is_empty() {
            // Written by a task of its own: a leader whose request is dropped (its client gone)
            // does not take the others' entries with it.
            let store = self.clone();
            tokio::spawn(async move {
                let _turn = turn;
                let all: Vec<AuditEntry> = group.iter().flat_map(|(e, _)| e.clone()).collect();
                let started = std::time::Instant::now();
                let written = store.write_audit_rows(&all).await;
                metrics::histogram!("seldinger_audit_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("seldinger_audit_group_requests").record(group.len() as f64);
                for (_, done) in group {
                    let _ = done.send(match &written {
                        Ok(()) => Ok(()),
                        Err(e) if e.is_unavailable() => Err(sqlx::Error::PoolTimedOut.into()),
                        Err(e) => Err(sqlx::Error::Protocol(format!(
                            "writing the audit trail: {e}"
                        ))
                        .into()),
                    });
                }
            });
        }
        outcome
            .await
            .map_err(|_| StoreError::Config("the audit write was abandoned".into()))?
    }

    /// Writes entries in one statement when they fit in one, else in one transaction.
    async fn write_audit_rows(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        if entries.len() <= AUDIT_ROWS_PER_STATEMENT {
            // A single statement is atomic on its own: no BEGIN and COMMIT round trips.
            return insert_audit_rows(&mut conn, entries).await;
        }
        let mut tx = self.begin(&mut conn).await?;
        for chunk in entries.chunks(AUDIT_ROWS_PER_STATEMENT) {
            insert_audit_rows(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A page of the audit entries matching the filter, oldest first, with the total.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        let mut push = |condition: &str, value: String| {
            params.push(value);
            conditions.push(condition.replace('?', &format!("${}", params.len())));
        };
        if let Some(u) = &filter.username {
            push("username = ?", u.clone());
        }
        if let Some(p) = &filter.patient_id {
            push("patient_id = ?", p.clone());
        }
        if let Some(from) = filter.from {
            push("at >= ?", ts(from));
        }
        if let Some(to) = filter.to {
            push("at < ?", ts(to));
        }
        if filter.break_glass_only {
            conditions.push("break_glass_reason IS NOT NULL".to_string());
        }
        let decode = |rows: &[AnyRow]| {
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        seq: r.try_get("seq")?,
                        at: parse_ts(&text(r, "at")?)?,
                        username: text(r, "username")?,
                        role: text(r, "role")?,
                        action: text(r, "action")?,
                        resource_type: text(r, "resource_type")?,
                        resource_id: r.try_get("resource_id")?,
                        patient_id: r.try_get("patient_id")?,
                        client_addr: text(r, "client_addr")?,
                        outcome: text(r, "outcome")?,
                        break_glass_reason: r.try_get("break_glass_reason")?,
                        via_message: r.try_get("via_message")?,
                        via_claim: None,
                    })
                })
                .collect()
        };
        self.page(
            PagedQuery {
                from: "audit_log",
                columns:
                    "seq, at, username, role, action, resource_type, resource_id, patient_id, \
                          client_addr, outcome, break_glass_reason, via_message",
                order: Order {
                    key: "seq",
                    id: "seq",
                    descending: false,
                    numeric: true,
                },
                conditions,
                params,
            },
            after,
            limit.clamp(1, 100_000),
            decode,
        )
        .await
    }
}

fn token_from(r: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: uuid_of(r, "id")?,
        token_hash: text(r, "token_hash")?,
        user_id: uuid_of(r, "user_id")?,
        role: role_of(r, "role")?,
        name: text(r, "name")?,
        created_at: parse_ts(&text(r, "created_at")?)?,
        revoked_at: opt_ts(r, "revoked_at")?,
        last_used_at: opt_ts(r, "last_used_at")?,
        expires_at: opt_ts(r, "expires_at")?,
        scopes: r.try_get("scopes")?,
        patient_id: r.try_get("patient_id")?,
    })
}

/// Inserts a change's audit rows on the change's own transaction: both commit, or neither. A
/// change made by applying a received message also marks that message applied here, so the change
/// and "this message is done" are one commit; if the message was already applied (a re-send racing
/// its first delivery), the whole change is refused and rolled back.
pub(crate) async fn insert_audit_all(
    conn: &mut sqlx::AnyConnection,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    let mut claimed: Vec<&str> = Vec::new();
    for entry in entries {
        insert_audit(conn, entry).await?;
        if let Some(message) = entry.via_message.as_deref() {
            if !claimed.contains(&message) {
                crate::inbox::claim(conn, message, entry.via_claim.as_deref(), entry.at).await?;
                claimed.push(message);
            }
        }
    }
    Ok(())
}

async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    insert_audit_rows(conn, std::slice::from_ref(entry)).await
}

/// Rows of one multi-row INSERT: 11 parameters each, well under both engines' limits.
const AUDIT_ROWS_PER_STATEMENT: usize = 400;

async fn insert_audit_rows(
    conn: &mut sqlx::AnyConnection,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    const COLUMNS: usize = 11;
    let rows: Vec<String> = (0..entries.len())
        .map(|row| {
            let params: Vec<String> = (1..=COLUMNS)
                .map(|column| format!("${}", row * COLUMNS + column))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit_log (at, username, role, action, resource_type, resource_id, patient_id, client_addr, outcome, break_glass_reason, via_message) \
         VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for entry in entries {
        query = query
            .bind(ts(entry.at))
            .bind(entry.username.clone())
            .bind(entry.role.clone())
            .bind(entry.action.clone())
            .bind(entry.resource_type.clone())
            .bind(entry.resource_id.clone())
            .bind(entry.patient_id.clone())
            .bind(entry.client_addr.clone())
            .bind(entry.outcome.clone())
            .bind(entry.break_glass_reason.clone())
            .bind(entry.via_message.clone());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::records::case_read;

    /// A panic while the waiting list was held must not lose later entries nor leave their
    /// requests waiting for ever.
    #[tokio::test]
    async fn a_poisoned_audit_queue_still_writes_and_answers() {
        let db = crate::testing::sqlite().await;
        let group = db.store.audit_group.clone();
        let _ = std::thread::spawn(move || {
            let _held = group.waiting.lock();
            panic!("poisoning the audit queue on purpose");
        })
        .join();
        assert!(db.store.audit_group.waiting.is_poisoned());
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            db.store.append_audit_batch(&[
                case_read("nurse.test", "read", 1),
                case_read("nurse.test", "read", 2),
            ]),
        )
        .await;
        assert!(matches!(written, Ok(Ok(()))), "{written:?}");
        let page = db
            .store
            .audit_page(&Default::default(), None, 10)
            .await
            .expect("audit page");
        let shown: Vec<_> = page.items.iter().map(|e| e.resource_id.clone()).collect();
        assert_eq!(shown, [Some("case-1".into()), Some("case-2".into())]);
    }
}
