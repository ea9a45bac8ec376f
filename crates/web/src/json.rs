//! A JSON body extractor whose errors name the field that was wrong, not just a byte offset.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use seldinger_domain::{FieldError, ValidationErrors};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

pub struct ApiJson<T>(pub T);

/// The largest body a request may carry: axum's default limit, which the server keeps.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (body, operation) = read_json(req, state).await?;
        let value = fields(&body)?;
        check_shape(operation.as_deref(), &body)?;
        Ok(ApiJson(value))
    }
}

/// The body as JSON, and the operation it was sent to. Not JSON at all is a malformed request
/// (400); JSON whose fields are missing, of the wrong type or not allowed is content the server
/// read and refuses (422, RFC 9110 §15.5.21).
async fn read_json<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(serde_json::Value, Option<String>), ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::unsupported_media_type());
    }
    let operation = documented_operation(&req);
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|e| match e.status() {
            axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(format!(
                "the body is over the limit of {} bytes",
                BODY_LIMIT
            )),
            _ => ApiError::bad_request("body", e.body_text()),
        })?;
    let body = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("body", clean_serde_message(&e.to_string())))?;
    Ok((body, operation))
}

/// The operation a request was routed to, as the OpenAPI document names it (`POST /api/v1/…`).
fn documented_operation(req: &Request) -> Option<String> {
    let path = req.extensions().get::<MatchedPath>()?.as_str();
    Some(format!("{} {path}", req.method()))
}

/// Checks a body that serde has read against the operation's documented schema: serde alone
/// takes what the document does not allow (an array for an object, for one). Only the shape is
/// judged here; each field's own rule (a choice, a pattern, a length, a range: the same rules the
/// document states) is judged by the domain, whose messages say what is allowed.
fn check_shape(operation: Option<&str>, body: &serde_json::Value) -> Result<(), ApiError> {
    let Some(validator) = operation.and_then(|op| body_validators().get(op)) else {
        return Ok(());
    };
    let errors: Vec<FieldError> = validator
        .iter_errors(body)
        .filter(|e| is_shape_error(e))
        .map(|e| FieldError {
            field: field_name(&e.instance_path().to_string()),
            detail: shortened(&e.to_string()),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(ValidationErrors(errors)))
    }
}

/// Whether an error is one of shape (a type, a missing or unknown property), not one of the rules
/// the domain judges with better words. A value that fits one of a `oneOf`'s alternatives in shape
/// (a case event of a known type with a bad value inside) is the domain's to judge too.
fn is_shape_error(error: &jsonschema::ValidationError) -> bool {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::Enum { .. }
        | Kind::Pattern { .. }
        | Kind::MinLength { .. }
        | Kind::MaxLength { .. }
        | Kind::Minimum { .. }
        | Kind::Maximum { .. }
        | Kind::ExclusiveMinimum { .. }
        | Kind::ExclusiveMaximum { .. }
        | Kind::Format { .. } => false,
        Kind::OneOfNotValid { context } | Kind::AnyOf { context } => context
            .iter()
            .all(|alternative| alternative.iter().any(is_shape_error)),
        _ => true,
    }
}

/// A validator per operation that takes a body, compiled once from the served document.
fn body_validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let doc = crate::openapi::document();
        let components = doc.get("components").cloned().unwrap_or_default();
        let mut validators = HashMap::new();
        let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
            return validators;
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                let Some(schema) =
                    operation.pointer("/requestBody/content/application~1json/schema")
                else {
                    continue;
                };
                // The schema refers into the document's components: carry them along.
                let mut rooted = schema.clone();
                if let Some(object) = rooted.as_object_mut() {
                    object.insert("components".into(), components.clone());
                }
                match jsonschema::options().build(&rooted) {
                    Ok(validator) => {
                        validators.insert(format!("{} {path}", method.to_uppercase()), validator);
                    }
                    Err(e) => {
                        tracing::error!(%path, %method, "request schema does not compile: {e}")
                    }
                }
            }
        }
        validators
    })
}

/// `/allergies/0/class` as the domain names it: `allergies[0].class`.
fn field_name(pointer: &str) -> String {
    let mut name = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.chars().all(|c| c.is_ascii_digit()) {
            name.push_str(&format!("[{segment}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    if name.is_empty() {
        "body".into()
    } else {
        name
    }
}

/// The validator quotes the offending value whole; a long one is cut, not echoed back.
fn shortened(message: &str) -> String {
    const LIMIT: usize = 300;
    match message.char_indices().nth(LIMIT) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message.to_string(),
    }
}

/// Reads a type from a JSON body, an error naming the field that was wrong. Bodies that join a
/// version and reason to a record's fields are read in parts with this, not with serde's
/// `flatten`, which loses the name of the field that failed.
pub fn fields<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(ValidationErrors::single(
            field,
            clean_serde_message(&e.inner().to_string()),
        ))
    })
}

/// serde_json appends "at line 1 column 42"; the field path says more, so drop it.
fn clean_serde_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A version number in a body: a JSON integer, also written as a float with no fraction (`5.0`
/// is the integer 5 to JSON Schema, and to clients whose numbers are all doubles).
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::de::Error;
    let value = serde_json::Number::deserialize(d)?;
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    match value.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(f as u64),
        _ => Err(D::Error::custom(format!(
            "{value} is not a version: use the whole number the record showed"
        ))),
    }
}

/// A body whose documented type joins two parts (the version a write is based on, and the
/// record's own fields), read part by part so that an error names its field.
pub struct ApiJsonParts<A, B>(pub A, pub B);

impl<A: DeserializeOwned, B: DeserializeOwned, S: Send + Sync> FromRequest<S>
    for ApiJsonParts<A, B>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (body, operation) = read_json(req, state).await?;
        // Both parts are read, so that every wrong field is listed at once.
        match (fields::<A>(&body), fields::<B>(&body)) {
            (Ok(a), Ok(b)) => {
                check_shape(operation.as_deref(), &body)?;
                Ok(ApiJsonParts(a, b))
            }
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
            (Err(a), Err(b)) => {
                let mut errors = a.field_errors().to_vec();
                errors.extend_from_slice(b.field_errors());
                Err(ApiError::invalid(ValidationErrors(errors)))
            }
        }
    }
}

/// The version of the record a write is based on (a stale one is refused).
#[derive(Deserialize)]
pub struct BasedOn {
    #[serde(deserialize_with = "whole_number")]
    pub expected_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_body_has_its_validator() {
        let documented = crate::openapi::document()["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .values()
                    .filter_map(|item| item.as_object())
                    .flat_map(|item| item.values())
                    .filter(|operation| operation.get("requestBody").is_some())
                    .count()
            })
            .unwrap_or_default();
        assert!(documented > 10, "the document lists its bodies");
        assert_eq!(body_validators().len(), documented);
    }

    #[test]
    fn a_pointer_reads_as_the_domain_names_its_fields() {
        assert_eq!(field_name(""), "body");
        assert_eq!(field_name("/allergies/0/class"), "allergies[0].class");
        assert_eq!(field_name("/event/a~1b"), "event.a/b");
    }
}
