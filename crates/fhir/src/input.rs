//! Reading a resource a client sends: its type, elements Seldinger would not keep (refused, not
//! silently dropped), strings, and the `If-None-Exist` condition of a conditional create.

use crate::error::{FhirError, Issue};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The body as a JSON object of `resource_type`, or why not.
pub fn resource<'a>(
    body: &'a Value,
    resource_type: &str,
) -> Result<&'a Map<String, Value>, FhirError> {
    let Some(fields) = body.as_object() else {
        return Err(FhirError::invalid(
            resource_type,
            "the body must be a JSON object",
        ));
    };
    if fields.get("resourceType").and_then(Value::as_str) != Some(resource_type) {
        return Err(FhirError::invalid(
            "resourceType",
            format!("this is the {resource_type} endpoint: the body's resourceType must be {resource_type}"),
        ));
    }
    Ok(fields)
}

/// An issue for each element that is not FHIR's (`structure`: malformed) or that Seldinger would
/// not keep (`not-supported`): either would be lost without a word.
pub fn unkept_elements(
    fields: &Map<String, Value>,
    resource_type: &str,
    defined: &[&str],
    kept: &[&str],
) -> Vec<Issue> {
    fields
        .keys()
        .filter(|name| !kept.contains(&name.as_str()))
        .map(|name| {
            let (code, what) = if defined.contains(&name.as_str()) {
                (
                    "not-supported",
                    format!(
                        "{name} is not kept by Seldinger on a {resource_type} (it would be lost)"
                    ),
                )
            } else {
                (
                    "structure",
                    format!("{name} is not an element of a FHIR R4 {resource_type}"),
                )
            };
            Issue {
                code,
                diagnostics: format!("{what}: send only {}", kept.join(", ")),
                expression: Some(format!("{resource_type}.{name}")),
            }
        })
        .collect()
}

/// A string element's trimmed text ("" when absent or not a string).
pub fn text(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).map(str::trim).unwrap_or("")
}

/// `If-None-Exist: identifier=system|value`: the identifier to look for first, if sent.
pub fn identifier_condition(headers: &HeaderMap) -> Result<Option<(String, String)>, FhirError> {
    let Some(header) = headers.get("if-none-exist") else {
        return Ok(None);
    };
    let refuse = |why: &str| FhirError::invalid("If-None-Exist", why.to_string());
    let header = header.to_str().map_err(|_| refuse("not readable text"))?;
    let query = header.trim().trim_start_matches('?');
    let value = query
        .strip_prefix("identifier=")
        .filter(|v| !v.contains('&'))
        .ok_or_else(|| refuse("search by identifier only: identifier=system|value"))?;
    let value = percent_decode(value).ok_or_else(|| refuse("malformed percent-encoding"))?;
    match value.split_once('|') {
        Some((system, code)) if !system.is_empty() && !code.is_empty() => {
            Ok(Some((system.to_string(), code.to_string())))
        }
        _ => Err(refuse(
            "give the identifier with its system: identifier=system|value",
        )),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The one identifier of a resource sent (`system`, `value`), or its issue.
pub fn single_identifier(
    fields: &Map<String, Value>,
    resource_type: &str,
) -> Result<Option<(String, String)>, Issue> {
    let issue = |path: &str, what: &str| Issue {
        code: "value",
        diagnostics: what.to_string(),
        expression: Some(format!("{resource_type}.{path}")),
    };
    match fields.get("identifier") {
        None => Ok(None),
        Some(Value::Array(identifiers)) if identifiers.len() == 1 => {
            let system = text(identifiers[0].get("system"));
            let value = text(identifiers[0].get("value"));
            if system.is_empty() || value.is_empty() {
                Err(issue(
                    "identifier[0]",
                    "give the identifier's system and value",
                ))
            } else {
                Ok(Some((system.to_string(), value.to_string())))
            }
        }
        Some(_) => Err(issue(
            "identifier",
            "give one identifier, with its system and value",
        )),
    }
}
