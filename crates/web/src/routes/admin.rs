//! Administration: users and API tokens (administrators), and the audit log (administrators and
//! quality leads). No patient data is shown here except ids in the audit trail.

use super::{csv_response, QueryParams};
use crate::auth::credentials::{check_password_policy, hash_password, new_secret, secret_hash};
use crate::auth::{Audit, Caller};
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use seldinger_domain::access::Role;
use seldinger_domain::smart::SmartScopes;
use seldinger_domain::validation::{required_text, Collector};
use seldinger_domain::ValidationErrors;
use seldinger_store::{ApiToken, AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as administrators see them (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<seldinger_store::User> for UserView {
    fn from(u: seldinger_store::User) -> Self {
        UserView {
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            disabled: u.disabled,
            locked_until: u.locked_until,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    /// One of the roles in docs/roles.md.
    pub role: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct NewPassword {
    pub password: String,
}

/// What [`parse_username`] takes (around surrounding spaces), as an ECMA-262 pattern.
pub(crate) const USERNAME_PATTERN: &str = "^\\s*[a-z0-9._-]{2,64}\\s*$";

/// Usernames: lower-case letters, digits, '.', '_' and '-', 2-64 characters.
pub fn parse_username(value: &str) -> Result<String, String> {
    let v = value.trim();
    let ok = (2..=64).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "'{value}' is not a username: use 2-64 characters a-z, 0-9, '.', '_' or '-'"
        ))
    }
}

/// The audit row of an administrative change, committed with it: by `by`, or by the system (the
/// command line, first start) when no signed-in user made it.
fn admin_entry(
    state: &AppState,
    by: Option<&seldinger_app::Principal>,
    action: &'static str,
    resource_type: &'static str,
    id: String,
) -> seldinger_store::AuditEntry {
    let note = admin_audit(action, resource_type, id);
    let at = state.clock.now();
    match by {
        Some(principal) => principal.audit_entry(at, note),
        None => seldinger_store::AuditEntry::system(
            at,
            note.action,
            note.resource_type,
            note.resource_id,
        ),
    }
}

fn admin_audit(action: &'static str, resource_type: &'static str, id: String) -> Audit<'static> {
    Audit {
        action,
        resource_type,
        resource_id: Some(id),
        patient_id: None,
        break_glass_reason: None,
        outcome: "allowed",
    }
}

#[utoipa::path(get, path = "/api/v1/users", tag = "administration",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = crate::problem::Problem)))]
pub async fn users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(
        state
            .store
            .users()
            .await?
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "administration", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<impl IntoResponse, ApiError> {
    let mut c = Collector::new();
    let username = c.take("username", parse_username(&input.username));
    let display_name = c.take(
        "display_name",
        required_text(
            &input.display_name,
            seldinger_domain::validation::SHORT_TEXT,
        ),
    );
    let role = c.take("role", Role::parse(input.role.trim()));
    c.take("password", check_password_policy(&input.password));
    c.finish()?;
    let (Some(username), Some(display_name), Some(role)) = (username, display_name, role) else {
        return Err(ApiError::invalid(ValidationErrors::single(
            "user",
            "incomplete input",
        )));
    };
    let hash = hash_password(&input.password).map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ApiError::internal()
    })?;
    let audit = admin_entry(&state, Some(&caller), "create", "user", username.clone());
    let user = state
        .store
        .create_user(
            &username,
            &display_name,
            role,
            &hash,
            state.clock.now(),
            &[audit],
        )
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))))
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    username: &str,
    disabled: bool,
) -> Result<Json<UserView>, ApiError> {
    if disabled && username == caller.username {
        return Err(ApiError::invalid(ValidationErrors::single(
            "username",
            "you cannot disable yourself",
        )));
    }
    let action = if disabled { "disable" } else { "enable" };
    let audit = admin_entry(state, Some(caller), action, "user", username.to_string());
    let user = state
        .store
        .set_user_disabled(username, disabled, state.clock.now(), &[audit])
        .await?;
    Ok(Json(UserView::from(user)))
}

#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "administration",
    params(("username" = String, Path)),
    responses((status = 200, description = "disabled; sessions ended, tokens revoked", body = UserView), (status = 404, body = crate::problem::Problem)))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    set_disabled(&state, &caller, &username, true).await
}

#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "administration",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::problem::Problem)))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    set_disabled(&state, &caller, &username, false).await
}

#[utoipa::path(post, path = "/api/v1/users/{username}/password", tag = "administration", request_body = NewPassword,
    params(("username" = String, Path)),
    responses((status = 204, description = "password set; the user's sessions ended and lock-out cleared"),
        (status = 404, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(input): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    check_password_policy(&input.password)
        .map_err(|e| ApiError::invalid(ValidationErrors::single("password", e)))?;
    let hash = hash_password(&input.password).map_err(|_| ApiError::internal())?;
    let audit = admin_entry(
        &state,
        Some(&caller),
        "reset_password",
        "user",
        username.clone(),
    );
    state
        .store
        .set_password(&username, &hash, state.clock.now(), &[audit])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    /// The user the token acts for.
    pub username: String,
    /// The role the token is scoped to; defaults to the user's role.
    #[serde(default)]
    pub role: Option<String>,
    /// What it is for, e.g. "RIS interface".
    pub name: String,
    /// Days until it expires: 1-365, default 90.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<u32>,
    /// SMART on FHIR scopes to limit it to, space-separated (`patient/*.read
    /// user/ServiceRequest.write`, or v2's `user/Observation.rs`): such a token serves the FHIR
    /// API (/fhir/r4) only, and only what both its role and its scopes allow.
    #[serde(default)]
    pub scopes: Option<String>,
    /// The one patient a token with `patient/` scopes may reach (their id).
    #[serde(default)]
    pub patient_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: Uuid,
    /// Shown once: send as `Authorization: Bearer <token>`. Only a hash is stored.
    pub token: String,
    pub role: Role,
    /// The user it acts for.
    pub username: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Days a token lives unless asked otherwise, and at most.
pub use seldinger_app::TOKEN_DAYS_DEFAULT;
pub const TOKEN_DAYS_MAX: u32 = 365;

/// Creates a token for a user, acting as their role or a narrower one (never wider than the
/// user: see [`Role::is_within`]), expiring after `expires_in_days` (default 90, at most 365).
pub async fn issue_token(
    state: &AppState,
    by: Option<&seldinger_app::Principal>,
    asked: &NewToken,
) -> Result<TokenCreated, ApiError> {
    let (username, role, name, expires_in_days) = (
        asked.username.as_str(),
        asked.role.as_deref(),
        asked.name.as_str(),
        asked.expires_in_days,
    );
    let mut c = Collector::new();
    let name = c.take(
        "name",
        required_text(name, seldinger_domain::validation::SHORT_TEXT),
    );
    let role = match role.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => c.take("role", Role::parse(r)),
        None => None,
    };
    let days = expires_in_days.unwrap_or(TOKEN_DAYS_DEFAULT);
    if !(1..=TOKEN_DAYS_MAX).contains(&days) {
        c.push(
            "expires_in_days",
            format!("{days} is not a number of days from 1 to {TOKEN_DAYS_MAX}"),
        );
    }
    let scopes = match asked
        .scopes
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(text) => c.take("scopes", SmartScopes::parse(text)),
        None => None,
    };
    let patient = match asked
        .patient_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(raw) => c.take(
            "patient_id",
            raw.parse::<seldinger_domain::PatientId>()
                .map_err(|_| format!("'{raw}' is not a patient id")),
        ),
        None => None,
    };
    match (&scopes, &patient) {
        (Some(s), None) if s.needs_patient() => c.push(
            "patient_id",
            "patient/ scopes reach one patient: name them in patient_id",
        ),
        (Some(s), Some(_)) if !s.needs_patient() => c.push(
            "patient_id",
            "only a token with patient/ scopes is bound to a patient",
        ),
        (None, Some(_)) => c.push(
            "patient_id",
            "only a token with patient/ scopes is bound to a patient",
        ),
        _ => {}
    }
    c.finish()?;
    if let Some(patient) = patient {
        if state.store.patient(patient).await?.is_none() {
            return Err(ApiError::invalid(ValidationErrors::single(
                "patient_id",
                format!("no patient {patient}"),
            )));
        }
    }
    let user = state
        .store
        .user_by_username(username.trim())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(ValidationErrors::single(
                "username",
                format!("no user '{username}'"),
            ))
        })?;
    // Through the API an administrator mints tokens for service accounts and for themselves: a
    // token made for a clinician would have its reads audited as the clinician's. (The command
    // line, the server's operator, may make any.)
    if let Some(by) = by {
        let service_account = matches!(user.role, Role::Interface | Role::Monitoring);
        if !service_account && user.username != by.username {
            return Err(ApiError::invalid(ValidationErrors::single(
                "username",
                format!(
                    "'{}' is a person ({}): an administrator mints tokens for service accounts (roles interface, monitoring) and for themselves, so that every read is audited as the one who made it",
                    user.username, user.role
                ),
            )));
        }
    }
    let role = role.unwrap_or(user.role);
    if !role.is_within(user.role) {
        return Err(ApiError::invalid(ValidationErrors::single(
            "role",
            format!(
                "a token may act as its user's role ({}) or a narrower one; {role} can do what {} cannot",
                user.role, user.role
            ),
        )));
    }
    let token = new_secret();
    let now = state.clock.now();
    let record = ApiToken {
        id: Uuid::new_v4(),
        token_hash: secret_hash(&token),
        user_id: user.id,
        role,
        name: name.unwrap_or_default(),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
        expires_at: Some(now + chrono::Duration::days(i64::from(days))),
        scopes: scopes.map(|s| s.as_str().to_string()),
        patient_id: patient.map(|p| p.to_string()),
    };
    // The trail names whom the token acts for, and as what.
    let mut what = format!("{} for {} as {}", record.id, user.username, record.role);
    if let Some(scopes) = &record.scopes {
        what.push_str(&format!(" limited to {scopes}"));
    }
    if let Some(patient) = &record.patient_id {
        what.push_str(&format!(" for patient {patient}"));
    }
    let audit = admin_entry(state, by, "create", "api_token", what);
    state.store.create_api_token(&record, &[audit]).await?;
    Ok(TokenCreated {
        id: record.id,
        token,
        role: record.role,
        username: user.username,
        expires_at: record.expires_at,
    })
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "administration", request_body = NewToken,
    responses((status = 201, body = TokenCreated), (status = 422, body = crate::problem::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    let created = issue_token(&state, Some(&caller), &input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "administration",
    responses((status = 200, description = "every token, never its secret")))]
pub async fn tokens(State(state): State<AppState>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(state.store.api_tokens().await?))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "administration",
    params(("id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = crate::problem::Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("token {id}")))?;
    let audit = admin_entry(&state, Some(&caller), "revoke", "api_token", id.to_string());
    if !state
        .store
        .revoke_api_token(id, state.clock.now(), &[audit])
        .await?
    {
        return Err(ApiError::not_found(format!("live token {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "administration",
    params(("username" = Option<String>, Query), ("patient_id" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, exclusive"),
        ("break_glass" = Option<bool>, Query, description = "only break-glass accesses"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100000, description = "1-100000, default 1000"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<AuditEntry>, description = "one page, oldest first",
            headers(("X-Total-Count" = u64, description = "entries the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(
        pairs,
        &[
            "username",
            "patient_id",
            "from",
            "to",
            "break_glass",
            "format",
            "limit",
            "cursor",
        ],
    )?;
    let filter = AuditFilter {
        username: q.one("username"),
        patient_id: q.one("patient_id"),
        from: q
            .one("from")
            .map(|v| parse_instant("from", &v))
            .transpose()?,
        to: q.one("to").map(|v| parse_instant("to", &v)).transpose()?,
        break_glass_only: q.flag("break_glass")?,
    };
    let csv = q.wants_csv()?;
    let page = state
        .audit_trail(
            &caller,
            &filter,
            q.cursor()?.as_ref(),
            q.limit(1000, 100_000)? as usize,
        )
        .await?;
    if !csv {
        return Ok(super::paged_json(&uri, page));
    }
    let rows = page.items.iter().map(|l| {
        vec![
            l.seq.to_string(),
            l.at.to_rfc3339(),
            l.username.clone(),
            l.role.clone(),
            l.action.clone(),
            l.resource_type.clone(),
            l.resource_id.clone().unwrap_or_default(),
            l.patient_id.clone().unwrap_or_default(),
            l.client_addr.clone(),
            l.outcome.clone(),
            l.break_glass_reason.clone().unwrap_or_default(),
            l.via_message.clone().unwrap_or_default(),
        ]
    });
    let mut response = csv_response(
        "seldinger-audit.csv",
        &[
            "seq",
            "at",
            "username",
            "role",
            "action",
            "resource_type",
            "resource_id",
            "patient_id",
            "client_addr",
            "outcome",
            "break_glass_reason",
            "via_message",
        ],
        rows,
    );
    super::page_headers(&mut response, &uri, page.next.as_ref(), page.total);
    Ok(response)
}

fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::bad_request(
                field,
                format!("'{value}' is not YYYY-MM-DD or an RFC 3339 time"),
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_formula_safe() {
        assert_eq!(super::super::csv_field("plain"), "plain");
        assert_eq!(super::super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::super::csv_field("=cmd()"), "'=cmd()");
        assert_eq!(super::super::csv_field("\t=cmd()"), "'\t=cmd()");
        assert_eq!(super::super::csv_field("\r=cmd()"), "\"'\r=cmd()\"");
    }
}
