//! Field-level validation errors: what was wrong, in which field, and what is allowed.
//!
//! Parsers collect every problem in one pass so a form or API caller can fix them all at once.

use serde::Serialize;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Path of the field in the request, e.g. `allergies[1].substance`.
    pub field: String,
    /// What was wrong and what is allowed, in plain words.
    pub detail: String,
}

/// All the problems found in one input. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    pub fn single(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ValidationErrors(vec![FieldError {
            field: field.into(),
            detail: detail.into(),
        }])
    }
}

/// Collects field errors while a parser walks its input.
#[derive(Debug, Default)]
pub struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            detail: detail.into(),
        });
    }

    /// Keeps the value when the parse succeeded, records the error under `field` otherwise.
    pub fn take<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(detail) => {
                self.push(field, detail);
                None
            }
        }
    }

    pub fn merge(&mut self, prefix: &str, other: ValidationErrors) {
        for e in other.0 {
            self.push(format!("{prefix}{}", e.field), e.detail);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Ends the walk: `Ok(())` when nothing was wrong.
    pub fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

/// Trims and checks a required free-text field.
pub fn required_text(value: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("is required and must not be blank".into());
    }
    if trimmed.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_string())
}

/// Like [`required_text`] but absent or blank is fine.
pub fn optional_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(v, max_chars).map(Some),
    }
}

/// Parses a snake_case enum name, listing the allowed values on failure.
pub fn parse_choice<T: Copy>(value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let allowed: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!(
                "'{value}' is not allowed; use one of: {}",
                allowed.join(", ")
            )
        })
}
