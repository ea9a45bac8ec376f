//! How answers go out: `application/fhir+json` (JSON only: a request for XML is refused, not
//! answered in JSON it did not ask for), a resource with its version as `ETag` and
//! `Last-Modified`, and the absolute base that Bundle links and full URLs are built from.

use crate::error::FhirError;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const BASE_PATH: &str = "/fhir/r4";

/// Refuses a request for a format other than JSON (`_format` or `Accept`), with 406.
pub fn negotiate(headers: &HeaderMap, format: Option<&str>) -> Result<(), FhirError> {
    let json_like = |mime: &str| {
        let mime = mime.split(';').next().unwrap_or_default().trim();
        matches!(
            mime,
            "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
        ) || mime == "*/*"
            || mime == "application/*"
            || mime.is_empty()
    };
    if let Some(format) = format {
        if !json_like(format) {
            return Err(not_acceptable("_format", format));
        }
    }
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        if !accept.split(',').any(json_like) {
            return Err(not_acceptable("Accept", accept));
        }
    }
    Ok(())
}

fn not_acceptable(what: &str, asked: &str) -> FhirError {
    FhirError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not-supported",
        format!("{what} asks for {asked}: this server answers application/fhir+json only"),
    )
    .at(what)
}

/// A FHIR instant: UTC to the millisecond.
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A resource's weak ETag, from its version (`W/"3"`).
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// A JSON body as `application/fhir+json`.
pub fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// One resource with its version and time of change as headers.
pub fn resource(status: StatusCode, body: &Value, version: u64, at: DateTime<Utc>) -> Response {
    let mut response = fhir_json(status, body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        headers.insert(header::ETAG, value);
    }
    let http_date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = HeaderValue::from_str(&http_date) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    response
}

/// The server's absolute FHIR base as the caller reached it (`http://host:port/fhir/r4`).
pub fn base_url(headers: &HeaderMap, tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    // Behind a TLS-terminating proxy the web layer keeps X-Forwarded-Proto only from a trusted
    // proxy (--trusted-proxies), so the links a client follows stay on HTTPS.
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let scheme = if tls || forwarded_https {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}{BASE_PATH}")
}
