//! The structured procedure report (SIR-style sections): generated from the record, the IR
//! physician's free text (technique, findings, impression, plan) edited as a draft, then signed —
//! final and locked, the text frozen as signed — with later changes only as addenda saying who,
//! when and why.

use crate::adverse_event::AdverseEvent;
use crate::dose::DoseTotals;
use crate::followup::FollowUpTask;
use crate::lifecycle::{words, Case};
use crate::referral::Referral;
use crate::validation::Collector;
use crate::{CaseId, DepartmentTime, PatientId, ValidationErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The parts the physician writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportText {
    /// Technique beyond what the record says (approach, steps, closure).
    #[serde(default)]
    pub technique: String,
    /// What was found (starts from the record's findings).
    #[serde(default)]
    pub findings: String,
    /// The conclusion: required to sign.
    #[serde(default)]
    pub impression: String,
    /// Disposition and plan.
    #[serde(default)]
    pub plan: String,
}

impl ReportText {
    /// Each part trimmed and within length; the field names the API and the form use.
    pub fn check(&self) -> Result<ReportText, ValidationErrors> {
        let mut c = Collector::new();
        let mut part = |field: &str, value: &str| {
            let value = value.trim().to_string();
            if value.chars().count() > 10_000 {
                c.push(field, "at most 10,000 characters".to_string());
            }
            value
        };
        let text = ReportText {
            technique: part("technique", &self.technique),
            findings: part("findings", &self.findings),
            impression: part("impression", &self.impression),
            plan: part("plan", &self.plan),
        };
        c.finish()?;
        Ok(text)
    }
}

/// One section of the report as it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Section {
    pub title: String,
    pub body: String,
}

/// An addendum to a signed report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Addendum {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    pub text: String,
}

/// The signature: who, when, and the report exactly as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signature {
    pub by: String,
    pub at: DateTime<Utc>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Draft,
    /// Signed, locked.
    Final,
    /// Signed, with addenda.
    Amended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcedureReport {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub text: ReportText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Signature>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addenda: Vec<Addendum>,
    pub updated_at: DateTime<Utc>,
    /// Changes applied (0: nothing saved yet).
    pub version: u64,
}

/// A change to a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReportChange {
    /// The free text, saved as a draft.
    DraftSaved { text: ReportText },
    /// Signed with the text as given: the report as it then reads is frozen.
    Signed {
        text: ReportText,
        sections: Vec<Section>,
    },
    /// After signing: what is added, and why.
    AddendumAdded { reason: String, text: String },
}

impl ReportChange {
    pub fn kind(&self) -> &'static str {
        match self {
            ReportChange::DraftSaved { .. } => "draft_saved",
            ReportChange::Signed { .. } => "signed",
            ReportChange::AddendumAdded { .. } => "addendum_added",
        }
    }
}

impl ProcedureReport {
    /// A case's report before anything is saved: findings from the record.
    pub fn new(case: &Case) -> ProcedureReport {
        ProcedureReport {
            case_id: case.id,
            patient_id: case.patient_id,
            text: ReportText {
                findings: case
                    .procedure
                    .as_ref()
                    .map(|p| p.findings.clone())
                    .unwrap_or_default(),
                ..Default::default()
            },
            signed: None,
            addenda: Vec::new(),
            updated_at: case.updated_at,
            version: 0,
        }
    }

    pub fn status(&self) -> ReportStatus {
        match (&self.signed, self.addenda.is_empty()) {
            (None, _) => ReportStatus::Draft,
            (Some(_), true) => ReportStatus::Final,
            (Some(_), false) => ReportStatus::Amended,
        }
    }

    /// Checks a change against the report and its case: the draft and the signature only before
    /// signing, and the signature only once the procedure is complete and the impression
    /// written; an addendum only after, with its reason and text.
    pub fn decide(
        &self,
        change: &ReportChange,
        case: &Case,
    ) -> Result<ReportChange, ValidationErrors> {
        let mut c = Collector::new();
        let signed = self.signed.is_some();
        let decided = match change {
            ReportChange::DraftSaved { text } | ReportChange::Signed { text, .. } => {
                if signed {
                    c.push(
                        "type",
                        "the report is signed and locked: add an addendum instead".to_string(),
                    );
                }
                let text = match text.check() {
                    Ok(text) => text,
                    Err(errors) => {
                        for e in errors.0 {
                            c.push(e.field, e.detail);
                        }
                        text.clone()
                    }
                };
                match change {
                    ReportChange::Signed { sections, .. } => {
                        if case.procedure_completed_at.is_none() {
                            c.push(
                                "type",
                                "the procedure is not complete: sign the report after it"
                                    .to_string(),
                            );
                        }
                        if text.impression.is_empty() {
                            c.push("impression", "required to sign: the conclusion".to_string());
                        }
                        ReportChange::Signed {
                            text,
                            sections: sections.clone(),
                        }
                    }
                    _ => ReportChange::DraftSaved { text },
                }
            }
            ReportChange::AddendumAdded { reason, text } => {
                if !signed {
                    c.push(
                        "type",
                        "the report is not signed yet: edit the draft instead".to_string(),
                    );
                }
                let reason = reason.trim().to_string();
                if reason.is_empty() {
                    c.push(
                        "reason",
                        "required: why the signed report is added to".to_string(),
                    );
                }
                let text = text.trim().to_string();
                if text.is_empty() {
                    c.push("text", "required: what is added".to_string());
                } else if text.chars().count() > 10_000 {
                    c.push("text", "at most 10,000 characters".to_string());
                }
                ReportChange::AddendumAdded { reason, text }
            }
        };
        c.finish()?;
        Ok(decided)
    }

    pub fn apply(&mut self, change: &ReportChange, by: &str, at: DateTime<Utc>) {
        match change {
            ReportChange::DraftSaved { text } => self.text = text.clone(),
            ReportChange::Signed { text, sections } => {
                self.text = text.clone();
                self.signed = Some(Signature {
                    by: by.to_string(),
                    at,
                    sections: sections.clone(),
                });
            }
            ReportChange::AddendumAdded { reason, text } => self.addenda.push(Addendum {
                by: by.to_string(),
                at,
                reason: reason.clone(),
                text: text.clone(),
            }),
        }
        self.updated_at = at;
        self.version += 1;
    }
}

/// What the report is made from, beside the case.
pub struct ReportFacts<'a> {
    pub case: &'a Case,
    pub referral: Option<&'a Referral>,
    pub procedure_name: &'a str,
    /// The dose totals of the case's reports, with the §5 discharge note, when reported.
    pub dose: Option<(&'a DoseTotals, Option<String>)>,
    pub adverse_events: &'a [AdverseEvent],
    pub follow_ups: &'a [FollowUpTask],
    pub time: &'a DepartmentTime,
}

fn or_none(lines: Vec<String>, none: &str) -> String {
    if lines.is_empty() {
        none.to_string()
    } else {
        lines.join("\n")
    }
}

/// The report's sections as they read with `text`: generated from the record where the record
/// has it, the physician's words where they are theirs.
pub fn sections(facts: &ReportFacts<'_>, text: &ReportText) -> Vec<Section> {
    let case = facts.case;
    let when = |t: DateTime<Utc>| facts.time.format(t, "%Y-%m-%d %H:%M");
    let section = |title: &str, body: String| Section {
        title: title.to_string(),
        body,
    };
    let mut out = Vec::new();
    out.push(section("Procedure", facts.procedure_name.to_string()));
    out.push(section(
        "Indication",
        facts
            .referral
            .map(|r| {
                format!(
                    "{}\nClinical question: {}\nReferred by {} ({}).",
                    r.details.indication,
                    r.details.clinical_question,
                    r.details.requesting_clinician,
                    words(r.details.requesting_service)
                )
            })
            .unwrap_or_else(|| "Not recorded.".into()),
    ));
    out.push(section(
        "Consent",
        case.consent
            .as_ref()
            .map(|c| format!("Obtained by {} at {}.", c.obtained_by, when(c.obtained_at)))
            .unwrap_or_else(|| "Not recorded.".into()),
    ));
    let sedation = case
        .vetting
        .as_ref()
        .map(|v| words(v.sedation))
        .unwrap_or_else(|| "not recorded".into());
    let mut monitoring = vec![format!("Sedation/anaesthesia: {sedation}.")];
    for d in &case.drugs_given {
        monitoring.push(format!("{} {} {}", when(d.at), d.drug, d.dose));
    }
    monitoring.push(format!(
        "Vital signs recorded: {} set(s).",
        case.vital_signs.len()
    ));
    out.push(section(
        "Sedation, anaesthesia and monitoring",
        monitoring.join("\n"),
    ));
    let mut technique = Vec::new();
    if let Some(p) = &case.procedure {
        let operators: Vec<String> = p
            .operators
            .iter()
            .map(|o| format!("{} ({})", o.name, words(o.role)))
            .collect();
        technique.push(format!("Operators: {}.", operators.join(", ")));
        technique.push(format!(
            "Guidance: {}. Access: {}.",
            p.guidance.as_str().replace('_', " "),
            p.access_site
        ));
    }
    if let Some(t) = &case.time_out {
        technique.push(format!("Time-out completed at {}.", when(t.completed_at)));
    }
    if !text.technique.is_empty() {
        technique.push(text.technique.clone());
    }
    out.push(section(
        "Access and technique",
        or_none(technique, "Not recorded."),
    ));
    out.push(section(
        "Devices placed",
        or_none(
            case.devices_left
                .iter()
                .map(|d| {
                    format!(
                        "{}: {}{}",
                        d.kind.label(),
                        d.description,
                        d.udi
                            .as_ref()
                            .map(|u| format!(" ({})", u.summary()))
                            .unwrap_or_default()
                    )
                })
                .collect(),
            "None.",
        ),
    ));
    let mut dose = Vec::new();
    if let Some(p) = &case.procedure {
        if let Some(agent) = &p.contrast_agent {
            dose.push(format!(
                "Contrast: {agent}{}.",
                p.contrast_volume_ml
                    .map(|v| format!(", {v} mL"))
                    .unwrap_or_default()
            ));
        }
    }
    match &facts.dose {
        Some((totals, note)) => {
            let show = |v: Option<f64>, unit: &str| {
                v.map_or("not reported".into(), |v| format!("{v:.3} {unit}"))
            };
            dose.push(format!(
                "Reference air kerma {}; kerma-area product {}; fluoroscopy time {}; CT DLP {}.",
                show(totals.reference_air_kerma.map(|g| g.0), "Gy"),
                show(
                    totals
                        .kerma_area_product
                        .map(|k| k.gray_square_centimetres()),
                    "Gy·cm²"
                ),
                show(totals.fluoroscopy_time.map(|s| s.0 / 60.0), "min"),
                show(
                    totals
                        .ct_dose_length_product
                        .map(|d| d.milligray_centimetres()),
                    "mGy·cm"
                ),
            ));
            dose.push(note.clone().unwrap_or_else(|| {
                "No substantial radiation dose level reached (clinical-rules.md §5).".into()
            }));
        }
        None => dose.push("No dose report received.".into()),
    }
    out.push(section("Contrast and radiation dose", dose.join("\n")));
    out.push(section(
        "Findings",
        if text.findings.is_empty() {
            "Not recorded.".into()
        } else {
            text.findings.clone()
        },
    ));
    out.push(section(
        "Technical success",
        match case.procedure.as_ref().and_then(|p| p.technical_success) {
            Some(true) => "Technically successful.".into(),
            Some(false) => "Not technically successful.".into(),
            None => "Not recorded.".into(),
        },
    ));
    out.push(section(
        "Complications",
        or_none(
            facts
                .adverse_events
                .iter()
                .filter(|e| e.counts())
                .map(|e| {
                    let d = &e.details;
                    format!(
                        "{} — {} (SIR {}{}){}",
                        when(d.onset),
                        d.description,
                        words(d.severity),
                        d.cirse_grade
                            .map(|g| format!(", CIRSE {g}"))
                            .unwrap_or_default(),
                        if d.treatment.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", d.treatment)
                        }
                    )
                })
                .collect(),
            "None.",
        ),
    ));
    out.push(section(
        "Impression",
        if text.impression.is_empty() {
            "(to be written)".into()
        } else {
            text.impression.clone()
        },
    ));
    let mut disposition = Vec::new();
    if let Some(at) = case.discharged_at {
        disposition.push(format!("Discharged at {}.", when(at)));
    }
    if !text.plan.is_empty() {
        disposition.push(text.plan.clone());
    }
    out.push(section(
        "Disposition and plan",
        or_none(disposition, "Not recorded."),
    ));
    out.push(section(
        "Follow-up owed",
        or_none(
            facts
                .follow_ups
                .iter()
                .filter(|t| t.withdrawn.is_none())
                .map(|t| {
                    format!(
                        "{}: from {}{} ({})",
                        t.kind.as_str().replace('_', " "),
                        facts.time.format(t.due_from, "%Y-%m-%d"),
                        t.due_until
                            .map(|u| format!(" to {}", facts.time.format(u, "%Y-%m-%d")))
                            .unwrap_or_default(),
                        t.citation
                    )
                })
                .collect(),
            "None.",
        ),
    ));
    out
}

/// The report as plain text (the HL7 and FHIR forms carry it): its sections, then the
/// signature and each addendum.
pub fn plain_text(report: &ProcedureReport, sections: &[Section], time: &DepartmentTime) -> String {
    let mut out = String::new();
    for s in sections {
        out.push_str(&s.title.to_uppercase());
        out.push('\n');
        out.push_str(&s.body);
        out.push_str("\n\n");
    }
    if let Some(signed) = &report.signed {
        out.push_str(&format!(
            "Signed by {} at {}.\n",
            signed.by,
            time.format(signed.at, "%Y-%m-%d %H:%M")
        ));
    }
    for a in &report.addenda {
        out.push_str(&format!(
            "\nADDENDUM by {} at {} ({})\n{}\n",
            a.by,
            time.format(a.at, "%Y-%m-%d %H:%M"),
            a.reason,
            a.text
        ));
    }
    out
}
