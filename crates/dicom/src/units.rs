//! Unit spellings from the field: dose reports that write `Gym2` for Gy·m² or `mGycm` for mGy·cm
//! instead of UCUM. The table (`catalog/dose-units.toml`, or the department's own) maps each known
//! spelling to its UCUM unit and says where it is seen; the reader looks a unit up here before
//! converting it. A unit that is neither UCUM nor in the table is still refused, never guessed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The shipped table.
pub const SHIPPED: &str = include_str!("../../../catalog/dose-units.toml");

/// The UCUM units the reader converts; a spelling may only map to one of these.
const CONVERTED: &[&str] = &[
    "Gy.m2", "dGy.m2", "cGy.m2", "mGy.m2", "uGy.m2", "Gy.cm2", "dGy.cm2", "cGy.cm2", "mGy.cm2",
    "uGy.cm2", "Gy", "dGy", "cGy", "mGy", "uGy", "s", "ms", "min", "h", "mGy.cm", "Gy.cm", "mGy.m",
    "Gy.m",
];

/// Known non-UCUM spellings and the UCUM unit each means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpellings {
    pub version: String,
    spellings: BTreeMap<String, String>,
}

impl UnitSpellings {
    /// Parses a table; `file` names it in errors, which name the row and field.
    pub fn parse(text: &str, file: &str) -> Result<UnitSpellings, String> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e| format!("{file}: not valid TOML: {e}"))?;
        let version = doc
            .get("version")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("{file}: 'version' is missing"))?
            .to_string();
        let rows = doc
            .get("spelling")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut spellings = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            let at = |field: &str, problem: String| {
                format!("{file}: spelling {} field '{field}': {problem}", i + 1)
            };
            let field = |name: &str| -> Result<String, String> {
                row.get(name)
                    .and_then(toml::Value::as_str)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| at(name, "is missing or blank".into()))
            };
            let written = field("written")?;
            let ucum = field("ucum")?;
            field("seen")?;
            if !CONVERTED.contains(&ucum.as_str()) {
                return Err(at(
                    "ucum",
                    format!(
                        "'{ucum}' is not a unit the reader converts; use one of: {}",
                        CONVERTED.join(", ")
                    ),
                ));
            }
            if CONVERTED.contains(&written.as_str()) {
                return Err(at(
                    "written",
                    format!("'{written}' is already UCUM; only other spellings belong here"),
                ));
            }
            if spellings.insert(written.clone(), ucum).is_some() {
                return Err(at("written", format!("'{written}' is listed twice")));
            }
        }
        Ok(UnitSpellings { version, spellings })
    }

    pub fn shipped() -> UnitSpellings {
        // The shipped table is tested to parse; an empty table is the safe fallback regardless.
        UnitSpellings::parse(SHIPPED, "catalog/dose-units.toml").unwrap_or(UnitSpellings {
            version: String::new(),
            spellings: BTreeMap::new(),
        })
    }

    /// The UCUM unit `written` means: itself, or the table's mapping.
    pub fn ucum<'a>(&'a self, written: &'a str) -> &'a str {
        self.spellings
            .get(written)
            .map(String::as_str)
            .unwrap_or(written)
    }

    pub fn len(&self) -> usize {
        self.spellings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spellings.is_empty()
    }
}

static IN_USE: OnceLock<UnitSpellings> = OnceLock::new();

/// Uses the department's table instead of the shipped one. Called once at start, before any
/// report is read; a second call is refused.
pub fn use_spellings(table: UnitSpellings) -> Result<(), String> {
    IN_USE
        .set(table)
        .map_err(|_| "the dose unit spellings are already in use".to_string())
}

/// The table in use: the department's, else the shipped one.
pub fn in_use() -> &'static UnitSpellings {
    IN_USE.get_or_init(UnitSpellings::shipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_maps_the_siemens_spellings() {
        let table = UnitSpellings::parse(SHIPPED, "shipped").expect("shipped table");
        assert_eq!(table.ucum("Gym2"), "Gy.m2");
        assert_eq!(table.ucum("mGycm"), "mGy.cm");
        assert_eq!(table.ucum("Gy.m2"), "Gy.m2", "UCUM passes through");
        assert_eq!(table.ucum("Gycm2x"), "Gycm2x", "unknown stays unknown");
    }

    #[test]
    fn a_bad_row_is_refused_naming_row_and_field() {
        let bad = |rows: &str| {
            UnitSpellings::parse(&format!("version = \"t\"\n{rows}"), "t.toml").expect_err("bad")
        };
        let row = |w: &str, u: &str| {
            format!("[[spelling]]\nwritten = \"{w}\"\nucum = \"{u}\"\nseen = \"somewhere\"\n")
        };
        assert!(bad(&row("Gym2", "Gy.furlong")).contains("spelling 1 field 'ucum'"));
        assert!(bad(&row("Gy.m2", "Gy.m2")).contains("already UCUM"));
        assert!(
            bad(&format!("{}{}", row("Gym2", "Gy.m2"), row("Gym2", "Gy.m2")))
                .contains("spelling 2 field 'written': 'Gym2' is listed twice")
        );
        assert!(
            bad("[[spelling]]\nwritten = \"Gym2\"\nucum = \"Gy.m2\"\n").contains("field 'seen'")
        );
    }
}
