//! The morbidity and mortality (M&M) meeting's record of a case: its discussion and the actions
//! agreed, note by note, kept — each note is an event with who and when, never edited; a later
//! meeting adds another. Which cases come to the meeting (a moderate or worse adverse event in the
//! period, §6) is the caller's selection.

use crate::validation::Collector;
use crate::{CaseId, PatientId, ValidationErrors};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One meeting's note on the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MmNote {
    /// The meeting's date.
    pub meeting_on: NaiveDate,
    /// What the meeting found: what happened, why, whether avoidable.
    pub discussion: String,
    /// What was agreed to do, by whom (may be none).
    #[serde(default)]
    pub actions: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A case's M&M record: its notes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MmReview {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub notes: Vec<MmNote>,
    /// Notes added (0: none yet).
    pub version: u64,
}

/// What a meeting adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmNoteAdded {
    pub meeting_on: NaiveDate,
    pub discussion: String,
    #[serde(default)]
    pub actions: String,
}

const MAX_CHARS: usize = 10_000;

impl MmReview {
    pub fn new(case_id: CaseId, patient_id: PatientId) -> MmReview {
        MmReview {
            case_id,
            patient_id,
            notes: Vec::new(),
            version: 0,
        }
    }

    /// The record with the note added by `by` at `at`, if the note holds: a discussion, both
    /// texts within length, and a meeting not after `today` (the department's date).
    pub fn add_note(
        &self,
        note: &MmNoteAdded,
        by: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<(MmReview, MmNoteAdded), ValidationErrors> {
        let mut c = Collector::new();
        let discussion = note.discussion.trim().to_string();
        let actions = note.actions.trim().to_string();
        if discussion.is_empty() {
            c.push("discussion", "required: what the meeting found".to_string());
        }
        for (field, text) in [("discussion", &discussion), ("actions", &actions)] {
            if text.chars().count() > MAX_CHARS {
                c.push(field, format!("at most {MAX_CHARS} characters"));
            }
        }
        if note.meeting_on > today {
            c.push(
                "meeting_on",
                "must not be in the future: record the meeting once it is held".to_string(),
            );
        }
        c.finish()?;
        let decided = MmNoteAdded {
            meeting_on: note.meeting_on,
            discussion,
            actions,
        };
        let mut after = self.clone();
        after.notes.push(MmNote {
            meeting_on: decided.meeting_on,
            discussion: decided.discussion.clone(),
            actions: decided.actions.clone(),
            by: by.to_string(),
            at,
        });
        after.version += 1;
        Ok((after, decided))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[test]
    fn a_note_needs_a_discussion_and_a_held_meeting_and_is_kept_in_order() {
        let review = MmReview::new(CaseId(Uuid::from_u128(1)), PatientId(Uuid::from_u128(2)));
        let today = NaiveDate::from_ymd_opt(2026, 6, 4).expect("date");
        let at = Utc
            .with_ymd_and_hms(2026, 6, 4, 12, 0, 0)
            .single()
            .expect("time");
        let empty = MmNoteAdded {
            meeting_on: today.succ_opt().expect("date"),
            discussion: "  ".into(),
            actions: String::new(),
        };
        let errors = review
            .add_note(&empty, "dr.okafor", at, today)
            .expect_err("refused");
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["discussion", "meeting_on"]);
        let note = MmNoteAdded {
            meeting_on: today,
            discussion: " haematoma after a jugular access; no ultrasound used ".into(),
            actions: "ultrasound-guided access for every jugular puncture".into(),
        };
        let (after, decided) = review
            .add_note(&note, "dr.okafor", at, today)
            .expect("added");
        assert_eq!(
            decided.discussion,
            "haematoma after a jugular access; no ultrasound used"
        );
        let (again, _) = after
            .add_note(&note, "dr.anand", at, today)
            .expect("a second meeting");
        assert_eq!(again.version, 2);
        assert_eq!(again.notes[0].by, "dr.okafor");
        assert_eq!(again.notes[1].by, "dr.anand");
    }
}
