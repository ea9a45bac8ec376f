//! Every refusal as a FHIR OperationOutcome: the issue's code, what was wrong in words, and the
//! FHIRPath of the offending element or parameter, mapped from the application's errors in one place.

use crate::respond::FHIR_JSON;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use seldinger_app::AppError;
use seldinger_store::StoreError;
use serde_json::{json, Value};

/// One problem found: its FHIR issue type (the IssueType value set) and where.
#[derive(Debug, Clone)]
pub struct Issue {
    pub code: &'static str,
    pub diagnostics: String,
    /// FHIRPath of the element (`ServiceRequest.subject`) or the search parameter's name.
    pub expression: Option<String>,
}

/// A request refused: the HTTP status and the issues, answered as an OperationOutcome.
#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
    /// `WWW-Authenticate` for an unauthenticated caller.
    challenge: bool,
}

impl FhirError {
    pub fn new(status: StatusCode, code: &'static str, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            issues: vec![Issue {
                code,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
            challenge: false,
        }
    }

    /// The issue concerns this element or parameter.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        if let Some(issue) = self.issues.last_mut() {
            issue.expression = Some(expression.into());
        }
        self
    }

    /// A malformed element or search parameter (400).
    pub fn invalid(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        FhirError::new(StatusCode::BAD_REQUEST, "invalid", diagnostics).at(expression)
    }

    /// A well-formed resource that breaks a rule (422, as FHIR asks for a failed profile or rule).
    pub fn unprocessable(expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        FhirError::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", diagnostics).at(expression)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        FhirError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} does not exist (or is outside what you may see)"),
        )
    }

    pub fn not_supported(diagnostics: impl Into<String>) -> Self {
        FhirError::new(StatusCode::NOT_FOUND, "not-supported", diagnostics)
    }

    pub fn unauthenticated() -> Self {
        let mut error = FhirError::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "sign in first: a session cookie from /api/v1/session, or an API token as `Authorization: Bearer …`",
        );
        error.challenge = true;
        error
    }

    pub fn forbidden(diagnostics: impl Into<String>) -> Self {
        FhirError::new(StatusCode::FORBIDDEN, "forbidden", diagnostics)
    }

    pub fn internal() -> Self {
        FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the server could not do this; it is logged",
        )
    }

    /// Several problems of one resource at once, so a sender can mend them all in one go.
    pub fn many(status: StatusCode, issues: Vec<Issue>) -> Self {
        FhirError {
            status,
            issues,
            challenge: false,
        }
    }

    pub fn outcome(&self) -> Value {
        outcome(&self.issues, "error")
    }
}

/// An OperationOutcome of `issues` at `severity`.
pub fn outcome(issues: &[Issue], severity: &str) -> Value {
    let issue: Vec<Value> = issues
        .iter()
        .map(|issue| {
            let mut value = json!({
                "severity": severity,
                "code": issue.code,
                "diagnostics": issue.diagnostics,
            });
            if let Some(expression) = &issue.expression {
                value["expression"] = json!([expression]);
            }
            value
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issue })
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = self.outcome().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"seldinger\""),
            );
        }
        response
    }
}

impl From<AppError> for FhirError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound(what) => FhirError::not_found(what),
            AppError::Forbidden { .. } => FhirError::forbidden(error.to_string()),
            AppError::BadRequest { field, detail } => FhirError::invalid(field, detail),
            AppError::Invalid(errors) => FhirError::many(
                StatusCode::UNPROCESSABLE_ENTITY,
                errors
                    .0
                    .iter()
                    .map(|e| Issue {
                        code: "invariant",
                        diagnostics: format!("{}: {}", e.field, e.detail),
                        expression: Some(e.field.clone()),
                    })
                    .collect(),
            ),
            AppError::Transition(e) => {
                FhirError::new(StatusCode::CONFLICT, "business-rule", e.to_string())
            }
            AppError::Store(e @ StoreError::Conflict { .. }) => {
                FhirError::new(StatusCode::PRECONDITION_FAILED, "conflict", e.to_string())
            }
            AppError::Store(StoreError::Duplicate(what)) => {
                FhirError::new(StatusCode::CONFLICT, "duplicate", what)
            }
            AppError::Store(StoreError::NotFound(what)) => FhirError::not_found(what),
            AppError::Store(error) => {
                tracing::error!(%error, "FHIR request failed in the store");
                FhirError::internal()
            }
        }
    }
}
