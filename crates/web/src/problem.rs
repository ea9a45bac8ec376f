//! Every error the API returns, as RFC 9457 problem details (`application/problem+json`), mapped
//! in this one place. Internal failures are logged in full and shown without detail.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use seldinger_domain::lifecycle::TransitionError;
use seldinger_domain::{FieldError, ValidationErrors};
use seldinger_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// RFC 9457 problem details, with Seldinger's extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, stable for clients to branch on.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For input problems: each field that was wrong and what is allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For refused transitions: the case's current state and the events allowed from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_events: Option<Vec<&'static str>>,
    /// For a procedure the safety checklist blocks: the rule ids not yet overridden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocking_rules: Option<Vec<String>>,
    /// For stale writes: the version the record is at now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// For a method the path does not have: the ones it has (the `Allow` header).
    #[serde(skip)]
    pub allow: Option<String>,
    /// Seconds to wait before trying again (the `Retry-After` header), when the refusal passes.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError(Box<Problem>);

impl ApiError {
    fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError(Box::new(Problem {
            kind: format!("urn:seldinger:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            current_state: None,
            allowed_events: None,
            blocking_rules: None,
            current_version: None,
            allow: None,
            retry_after: None,
        }))
    }

    /// Malformed request: not JSON, wrong type, unknown value in a query parameter.
    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let error = FieldError {
            field: field.into(),
            detail: detail.into(),
        };
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "The request could not be read",
            format!("{}: {}", error.field, error.detail),
        );
        e.0.errors.push(error);
        e
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send JSON",
            "the body must be JSON with Content-Type: application/json",
        )
    }

    /// A body over the server's limit, refused before it is read (RFC 9110 §15.5.14).
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Body too large",
            detail,
        )
    }

    /// Well-formed input that breaks a rule; every offending field is listed.
    /// One field breaks a rule of the body (a field that belongs to another kind of change, one
    /// required by the kind given): 422, as the schema alone cannot say it.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::invalid(ValidationErrors::single(field, detail))
    }

    pub fn invalid(errors: ValidationErrors) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Some fields are not valid",
            errors.to_string(),
        );
        e.0.errors = errors.0;
        e
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The field errors, for a form to show each beside its field.
    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// For a stale write: the version the record is at now.
    pub fn current_version(&self) -> Option<u64> {
        self.0.current_version
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first",
            "send the session cookie from POST /api/v1/session, or Authorization: Bearer <token>",
        )
    }

    pub fn sign_in_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "sign-in-failed",
            "Sign-in failed",
            "the username or password is wrong, or the account is disabled",
        )
    }

    pub fn too_many_attempts() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            "Too many sign-in attempts",
            "wait a minute before trying again",
        )
    }

    /// Sign-in attempts for this account from this address are slowed: try again at `until`.
    pub fn too_many_attempts_until(
        until: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let seconds = (until - now).num_seconds().max(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            "Too many sign-in attempts",
            format!("too many failed attempts: wait {seconds} s before trying again"),
        )
    }

    pub fn forbidden(
        role: seldinger_domain::access::Role,
        permission: seldinger_domain::access::Permission,
    ) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Your role does not allow this",
            format!(
                "the {role} role does not hold {} (see docs/roles.md)",
                permission.as_str()
            ),
        )
    }

    pub fn scoped_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This token is limited to SMART scopes",
            "a token limited to SMART on FHIR scopes serves the FHIR API (/fhir/r4) only",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Missing or wrong CSRF token",
            "send the csrf_token from GET /api/v1/session in the X-CSRF-Token header",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; nothing was recorded. The error is logged.",
        )
    }

    /// A method the path does not have: 405, naming the ones it has.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let list = allowed.join(", ");
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("this path answers {list}"),
        );
        e.0.allow = Some(list);
        e
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        let what = what.into();
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} does not exist"),
        )
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::invalid(errors)
    }
}

impl From<TransitionError> for ApiError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::NotAllowed {
                from, ref allowed, ..
            } => {
                let allowed = allowed.clone();
                let mut e = Self::new(
                    StatusCode::CONFLICT,
                    "transition-not-allowed",
                    "The case cannot make that change from its current state",
                    error.to_string(),
                );
                e.0.current_state = Some(from.as_str().to_string());
                e.0.allowed_events = Some(allowed);
                e
            }
            TransitionError::ReasonRequired { .. } => {
                ApiError::invalid(ValidationErrors::single("reason", error.to_string()))
            }
            TransitionError::AlreadyOpen => {
                ApiError::invalid(ValidationErrors::single("event.type", error.to_string()))
            }
            TransitionError::Invalid(errors) => ApiError::invalid(errors),
            TransitionError::SafetyBlocked { ref rules } => {
                let rules = rules.clone();
                let mut e = Self::new(
                    StatusCode::CONFLICT,
                    "safety-blocked",
                    "The safety checklist blocks the procedure",
                    error.to_string(),
                );
                e.0.blocking_rules = Some(rules);
                e
            }
        }
    }
}

impl From<seldinger_app::AppError> for ApiError {
    fn from(error: seldinger_app::AppError) -> Self {
        use seldinger_app::AppError as E;
        match error {
            E::NotFound(what) => ApiError::not_found(what),
            E::Forbidden { role, permission } => ApiError::forbidden(role, permission),
            E::BadRequest { field, detail } => ApiError::bad_request(field, detail),
            E::Invalid(errors) => ApiError::invalid(errors),
            E::Transition(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { current, .. } => {
                let mut e = Self::new(
                    StatusCode::CONFLICT,
                    "stale-version",
                    "Someone else changed this record",
                    error.to_string(),
                );
                e.0.current_version = Some(current);
                e
            }
            StoreError::Duplicate(detail) => Self::new(
                StatusCode::CONFLICT,
                "duplicate",
                "Already recorded",
                detail,
            ),
            StoreError::NotFound(what) => ApiError::not_found(what),
            unavailable if unavailable.is_unavailable() => {
                tracing::warn!(error = %unavailable, "database unavailable");
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "The database is not answering",
                    "nothing was read or written; try again shortly",
                );
                e.0.retry_after = Some(5);
                e
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(allow) = self
            .0
            .allow
            .as_deref()
            .and_then(|a| header::HeaderValue::from_str(a).ok())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        if let Some(seconds) = self.0.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}
