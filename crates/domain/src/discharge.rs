//! The patient's discharge instructions, composed per case in plain language from a
//! department-reviewed text table (catalog/discharge-instructions.toml, status D): an opening,
//! what was done, the procedure category's care advice, sedation advice when drugs were given,
//! the usual follow-up of the procedure (clinical-rules.md §7), the radiation dose note (§5), and
//! when to seek help. Pure: the case and the texts come in, sections go out.

use crate::catalogue::{Category, FollowUpKind, Procedure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct General {
    opening: String,
    seek_help: String,
    sedation: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    general: General,
    category: BTreeMap<String, String>,
    follow_up: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct DischargeTexts {
    pub version: String,
    general: General,
    category: BTreeMap<String, String>,
    follow_up: BTreeMap<String, String>,
}

/// One heading of the sheet with its paragraphs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub heading: String,
    pub paragraphs: Vec<String>,
}

impl DischargeTexts {
    /// Reads the table; every procedure category and follow-up kind must have a text, so no
    /// patient gets a sheet with a gap.
    pub fn parse(text: &str, file: &str) -> Result<Self, String> {
        let parsed: File = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        for (name, _) in Category::CHOICES {
            if !parsed.category.contains_key(*name) {
                return Err(format!("{file}: [category] has no text for '{name}'"));
            }
        }
        for (name, _) in FollowUpKind::CHOICES {
            if !parsed.follow_up.contains_key(*name) {
                return Err(format!("{file}: [follow_up] has no text for '{name}'"));
            }
        }
        Ok(DischargeTexts {
            version: parsed.version,
            general: parsed.general,
            category: parsed.category,
            follow_up: parsed.follow_up,
        })
    }

    /// The sheet for a procedure: `what_was_done` is the findings in the record (may be empty),
    /// `sedated` whether sedation drugs were given, `devices` devices left in the patient, and
    /// `dose_note` the §5 note when a substantial dose level was reached.
    pub fn compose(
        &self,
        procedure: &Procedure,
        what_was_done: &str,
        sedated: bool,
        devices: &[String],
        dose_note: Option<&str>,
    ) -> Vec<Section> {
        let mut sections = vec![Section {
            heading: "Your procedure".into(),
            paragraphs: [
                Some(self.general.opening.clone()),
                Some(format!("Procedure: {}.", procedure.name)),
                (!what_was_done.trim().is_empty()).then(|| what_was_done.trim().to_string()),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }];
        let mut care: Vec<String> = self
            .category
            .get(procedure.category.as_str())
            .cloned()
            .into_iter()
            .collect();
        if !devices.is_empty() {
            care.push(format!("Left in place: {}.", devices.join("; ")));
        }
        if sedated {
            care.push(self.general.sedation.clone());
        }
        sections.push(Section {
            heading: "Looking after yourself".into(),
            paragraphs: care,
        });
        let follow_up: Vec<String> = procedure
            .follow_up
            .iter()
            .filter_map(|f| self.follow_up.get(f.as_str()).cloned())
            .collect();
        if !follow_up.is_empty() {
            sections.push(Section {
                heading: "What happens next".into(),
                paragraphs: follow_up,
            });
        }
        if let Some(note) = dose_note {
            sections.push(Section {
                heading: "X-rays used".into(),
                paragraphs: vec![note.to_string()],
            });
        }
        sections.push(Section {
            heading: "When to get help".into(),
            paragraphs: vec![self.general.seek_help.clone()],
        });
        sections
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcedureCatalogue;

    fn texts() -> DischargeTexts {
        DischargeTexts::parse(
            include_str!("../../../catalog/discharge-instructions.toml"),
            "discharge-instructions.toml",
        )
        .expect("shipped texts")
    }

    fn catalogue() -> ProcedureCatalogue {
        ProcedureCatalogue::parse(include_str!("../../../catalog/procedures.toml"), "p")
            .expect("catalogue")
    }

    #[test]
    fn every_procedure_gets_a_complete_sheet() {
        let texts = texts();
        for procedure in &catalogue().procedures {
            let sheet = texts.compose(procedure, "", false, &[], None);
            let headings: Vec<_> = sheet.iter().map(|s| s.heading.as_str()).collect();
            assert_eq!(
                headings.first(),
                Some(&"Your procedure"),
                "{}",
                procedure.id.as_str()
            );
            assert_eq!(headings.last(), Some(&"When to get help"));
            assert!(
                sheet[1].paragraphs.len() == 1,
                "{}: category text",
                procedure.id.as_str()
            );
        }
    }

    #[test]
    fn sedation_devices_follow_up_and_dose_are_added_when_they_apply() {
        let catalogue = catalogue();
        let nephrostomy = catalogue
            .procedures
            .iter()
            .find(|p| p.id.as_str() == "nephrostomy")
            .expect("nephrostomy");
        let sheet = texts().compose(
            nephrostomy,
            "8F nephrostomy, left kidney",
            true,
            &["nephrostomy: 8F locking pigtail".into()],
            Some("We will check your skin."),
        );
        let all: String = sheet.iter().flat_map(|s| s.paragraphs.clone()).collect();
        assert!(all.contains("do not drive"), "{all}");
        assert!(all.contains("8F locking pigtail"));
        assert!(all.contains("every 8 to 12 weeks"), "§7 interval: {all}");
        assert!(all.contains("We will check your skin."));
    }

    #[test]
    fn a_table_missing_a_category_is_refused() {
        let shipped = include_str!("../../../catalog/discharge-instructions.toml");
        let broken: String = shipped
            .lines()
            .filter(|l| !l.starts_with("drainage ="))
            .collect::<Vec<_>>()
            .join("\n");
        let error = DischargeTexts::parse(&broken, "t").expect_err("refused");
        assert!(error.contains("no text for 'drainage'"), "{error}");
    }
}
