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

/// How long free text may be: a name or a short entry, a phrase, and a narrative (a question,
/// an indication, a reason). The OpenAPI document states the same limits.
pub const SHORT_TEXT: usize = 100;
pub const MEDIUM_TEXT: usize = 500;
pub const LONG_TEXT: usize = 2000;

/// Trims and checks a required free-text field.
pub fn required_text(value: &str, max_chars: usize) -> Result<String, String> {
    optional_text(Some(value), max_chars)?.ok_or_else(|| "is required and must not be blank".into())
}

/// Like [`required_text`] but absent or blank is fine. Length and characters are checked on the
/// value as sent, so that the OpenAPI document can state them exactly ([`TEXT_PATTERN`]); line
/// breaks and tabs are text, other control characters are not.
pub fn optional_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("must not contain control characters".into());
    }
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    // A browser's text area sends CRLF line breaks; the record keeps one kind.
    Ok(Some(trimmed.replace("\r\n", "\n").replace('\r', "\n")))
}

/// The characters free text may hold, as an ECMA-262 pattern: any but the control characters
/// (Unicode Cc) other than tab, line feed and carriage return.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// Parses a snake_case enum name, exactly (as the OpenAPI document's enum lists it), listing the
/// allowed values on failure.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_checked_as_sent_and_keeps_one_kind_of_line_break() {
        assert_eq!(
            required_text(" two\r\nlines ", 20),
            Ok("two\nlines".to_string())
        );
        assert!(required_text("   ", 20).is_err());
        // At the limit, as sent (spaces count), and one over.
        assert!(required_text(&"a".repeat(20), 20).is_ok());
        assert!(required_text(&format!("{} ", "a".repeat(20)), 20).is_err());
        // A control character is refused even where trimming would have removed it.
        assert!(required_text("note\u{0b}", 20).is_err());
        assert!(required_text("tab\tis text", 20).is_ok());
        assert_eq!(optional_text(Some("  "), 20), Ok(None));
        assert!(optional_text(Some("\u{85}"), 20).is_err());
    }
}
