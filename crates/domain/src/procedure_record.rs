//! What happened in the room and in recovery: the procedure details, drugs given, vital signs,
//! devices left in the patient, complications, and the recovery score with the discharge
//! criteria of clinical-rules.md §4.
//!
//! Input bounds here reject typing mistakes (an SpO₂ above 100 %, a heart rate of 7000); they
//! are not clinical thresholds and decide nothing about the patient.

use crate::catalogue::GuidanceModality;
use crate::safety::reference::{Evidence, SafetyReference, ThresholdId};
use crate::udi::Udi;
use crate::validation::{Collector, FieldError};
use crate::ValidationErrors;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn text(c: &mut Collector, field: &str, value: &str, max: usize, required: bool) -> String {
    let value = value.trim();
    if required && value.is_empty() {
        c.push(field, "required".to_string());
    } else if value.chars().count() > max {
        c.push(field, format!("at most {max} characters"));
    }
    value.to_string()
}

fn not_future(c: &mut Collector, field: &str, at: DateTime<Utc>, now: DateTime<Utc>) {
    if at > now {
        c.push(field, "must not be in the future".to_string());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    Primary,
    Assistant,
    Anaesthetist,
    Radiographer,
    Nurse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    pub name: String,
    pub role: OperatorRole,
}

/// The procedure as done (replaces an earlier record of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcedureDetails {
    pub operators: Vec<Operator>,
    pub guidance: GuidanceModality,
    /// e.g. "right common femoral artery", "left internal jugular vein".
    pub access_site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrast_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrast_volume_ml: Option<f64>,
    pub findings: String,
    /// Whether the procedure achieved its technical aim; unknown until said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical_success: Option<bool>,
}

impl ProcedureDetails {
    pub fn check(&self) -> Result<ProcedureDetails, ValidationErrors> {
        let mut c = Collector::new();
        if !self
            .operators
            .iter()
            .any(|o| o.role == OperatorRole::Primary)
        {
            c.push("operators", "name the primary operator".to_string());
        }
        let operators = self
            .operators
            .iter()
            .enumerate()
            .map(|(i, o)| Operator {
                name: text(&mut c, &format!("operators[{i}].name"), &o.name, 100, true),
                role: o.role,
            })
            .collect();
        let access_site = text(&mut c, "access_site", &self.access_site, 100, true);
        let contrast_agent = self
            .contrast_agent
            .as_deref()
            .map(|a| text(&mut c, "contrast_agent", a, 100, false))
            .filter(|a| !a.is_empty());
        match (self.contrast_volume_ml, &contrast_agent) {
            (Some(v), _) if !(v.is_finite() && (0.0..=2000.0).contains(&v)) => c.push(
                "contrast_volume_ml",
                "a volume in millilitres from 0 to 2000".to_string(),
            ),
            (Some(_), None) => c.push("contrast_agent", "name the agent given".to_string()),
            _ => {}
        }
        let findings = text(&mut c, "findings", &self.findings, 4000, false);
        c.finish()?;
        Ok(ProcedureDetails {
            operators,
            guidance: self.guidance,
            access_site,
            contrast_agent,
            contrast_volume_ml: self.contrast_volume_ml,
            findings,
            technical_success: self.technical_success,
        })
    }
}

/// A drug given in the room or in recovery (sedation, analgesia, reversal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrugGiven {
    pub drug: String,
    /// As given, e.g. "1 mg IV".
    pub dose: String,
    pub at: DateTime<Utc>,
}

impl DrugGiven {
    pub fn check(&self, now: DateTime<Utc>) -> Result<DrugGiven, ValidationErrors> {
        let mut c = Collector::new();
        let drug = text(&mut c, "drug", &self.drug, 100, true);
        let dose = text(&mut c, "dose", &self.dose, 100, true);
        not_future(&mut c, "at", self.at, now);
        c.finish()?;
        Ok(DrugGiven {
            drug,
            dose,
            at: self.at,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    InRoom,
    Recovery,
}

/// One set of observations; any may be absent, not all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VitalSigns {
    pub at: DateTime<Utc>,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systolic: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diastolic: Option<u16>,
    /// Per cent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respiratory_rate: Option<u8>,
}

impl VitalSigns {
    pub fn check(&self, now: DateTime<Utc>) -> Result<VitalSigns, ValidationErrors> {
        let mut c = Collector::new();
        let within = |c: &mut Collector, field: &str, value: Option<u16>, max: u16, unit: &str| {
            if value.is_some_and(|v| v == 0 || v > max) {
                c.push(field, format!("from 1 to {max} {unit}"));
            }
        };
        within(&mut c, "heart_rate", self.heart_rate, 350, "beats/min");
        within(&mut c, "systolic", self.systolic, 350, "mmHg");
        within(&mut c, "diastolic", self.diastolic, 300, "mmHg");
        within(&mut c, "spo2", self.spo2.map(u16::from), 100, "%");
        within(
            &mut c,
            "respiratory_rate",
            self.respiratory_rate.map(u16::from),
            100,
            "breaths/min",
        );
        if let (Some(s), Some(d)) = (self.systolic, self.diastolic) {
            if d >= s {
                c.push(
                    "diastolic",
                    "must be below the systolic pressure".to_string(),
                );
            }
        }
        if [
            self.heart_rate,
            self.systolic,
            self.diastolic,
            self.spo2.map(u16::from),
            self.respiratory_rate.map(u16::from),
        ]
        .iter()
        .all(Option::is_none)
        {
            c.push("vitals", "enter at least one observation".to_string());
        }
        not_future(&mut c, "at", self.at, now);
        c.finish()?;
        Ok(self.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Drain,
    Nephrostomy,
    BiliaryDrain,
    IvcFilter,
    Port,
    Picc,
    CentralLine,
    Gastrostomy,
    Stent,
    Other,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 10] = [
        DeviceKind::Drain,
        DeviceKind::Nephrostomy,
        DeviceKind::BiliaryDrain,
        DeviceKind::IvcFilter,
        DeviceKind::Port,
        DeviceKind::Picc,
        DeviceKind::CentralLine,
        DeviceKind::Gastrostomy,
        DeviceKind::Stent,
        DeviceKind::Other,
    ];

    /// Its name as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Drain => "drain",
            DeviceKind::Nephrostomy => "nephrostomy",
            DeviceKind::BiliaryDrain => "biliary_drain",
            DeviceKind::IvcFilter => "ivc_filter",
            DeviceKind::Port => "port",
            DeviceKind::Picc => "picc",
            DeviceKind::CentralLine => "central_line",
            DeviceKind::Gastrostomy => "gastrostomy",
            DeviceKind::Stent => "stent",
            DeviceKind::Other => "other",
        }
    }

    /// In words, for pages ("IVC filter").
    pub fn label(self) -> &'static str {
        match self {
            DeviceKind::Drain => "drain",
            DeviceKind::Nephrostomy => "nephrostomy",
            DeviceKind::BiliaryDrain => "biliary drain",
            DeviceKind::IvcFilter => "IVC filter",
            DeviceKind::Port => "port",
            DeviceKind::Picc => "PICC",
            DeviceKind::CentralLine => "central line",
            DeviceKind::Gastrostomy => "gastrostomy",
            DeviceKind::Stent => "stent",
            DeviceKind::Other => "other device",
        }
    }
}

/// A device left in the patient: what follow-up it needs comes from §7.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceLeft {
    pub kind: DeviceKind,
    /// Make, size, position.
    pub description: String,
    /// The device's UDI label as scanned or typed (GS1 or HIBCC), read into `udi` when recorded.
    #[serde(default, skip_serializing)]
    pub udi_label: Option<String>,
    /// The label, read: device identifier, lot, serial, expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udi: Option<Udi>,
}

impl DeviceLeft {
    /// `now` places a label's two-digit years (GS1's rule for the century).
    pub fn check(&self, now: DateTime<Utc>) -> Result<DeviceLeft, ValidationErrors> {
        let mut c = Collector::new();
        let description = text(&mut c, "description", &self.description, 200, true);
        // What was scanned now, or a label read before (always read again, never taken on trust).
        let label = self
            .udi_label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .or_else(|| self.udi.as_ref().map(|u| u.carrier.clone()));
        let udi = label.and_then(|label| match crate::udi::parse(&label, now.date_naive()) {
            Ok(udi) => Some(udi),
            Err(reason) => {
                c.push("udi_label", reason);
                None
            }
        });
        c.finish()?;
        Ok(DeviceLeft {
            kind: self.kind,
            description,
            udi_label: None,
            udi,
        })
    }
}

/// SIR adverse event severity (clinical-rules.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SirSeverity {
    Mild,
    Moderate,
    Severe,
    LifeThreatening,
    Death,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Complication {
    pub description: String,
    pub severity: SirSeverity,
    /// The CIRSE grade, 1-6 (clinical-rules.md §6), where the department grades both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cirse_grade: Option<u8>,
    pub at: DateTime<Utc>,
}

impl Complication {
    pub fn check(&self, now: DateTime<Utc>) -> Result<Complication, ValidationErrors> {
        let mut c = Collector::new();
        let description = text(&mut c, "description", &self.description, 2000, true);
        if self.cirse_grade.is_some_and(|g| !(1..=6).contains(&g)) {
            c.push(
                "cirse_grade",
                "a CIRSE grade from 1 (solved in the same session) to 6 (death), §6".to_string(),
            );
        }
        not_future(&mut c, "at", self.at, now);
        c.finish()?;
        Ok(Complication {
            description,
            severity: self.severity,
            cirse_grade: self.cirse_grade,
            at: self.at,
        })
    }
}

/// The modified Aldrete score (clinical-rules.md §4): five items, each 0-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AldreteScore {
    pub at: DateTime<Utc>,
    pub activity: u8,
    pub respiration: u8,
    pub circulation: u8,
    pub consciousness: u8,
    pub oxygen_saturation: u8,
}

/// Whether the recovery score meets the discharge criteria, and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DischargeReadiness {
    pub total: u8,
    pub ready: bool,
    pub reasons: Vec<String>,
    pub citation: String,
    pub unverified: bool,
}

impl AldreteScore {
    fn items(&self) -> [(&'static str, u8); 5] {
        [
            ("activity", self.activity),
            ("respiration", self.respiration),
            ("circulation", self.circulation),
            ("consciousness", self.consciousness),
            ("oxygen_saturation", self.oxygen_saturation),
        ]
    }

    pub fn check(&self, now: DateTime<Utc>) -> Result<AldreteScore, ValidationErrors> {
        let mut c = Collector::new();
        for (field, value) in self.items() {
            if value > 2 {
                c.push(field, "0, 1 or 2".to_string());
            }
        }
        not_future(&mut c, "at", self.at, now);
        c.finish()?;
        Ok(self.clone())
    }

    pub fn total(&self) -> u8 {
        self.items().iter().map(|(_, v)| v).sum()
    }

    /// §4: discharge from recovery when the total reaches the level and no item is below the
    /// item minimum; both values come from the reference table.
    pub fn readiness(&self, reference: &SafetyReference) -> DischargeReadiness {
        let total_level = reference.threshold(ThresholdId::RecoveryAldreteDischargeTotalAtLeast);
        let item_level = reference.threshold(ThresholdId::RecoveryAldreteItemAtLeast);
        let total = self.total();
        let mut reasons = Vec::new();
        if f64::from(total) < total_level.value {
            reasons.push(format!(
                "total {total} is below {} (modified Aldrete score)",
                total_level.value
            ));
        }
        for (item, value) in self.items() {
            if f64::from(value) < item_level.value {
                reasons.push(format!("{} scores {value}", item.replace('_', " ")));
            }
        }
        DischargeReadiness {
            total,
            ready: reasons.is_empty(),
            reasons,
            citation: "clinical-rules.md §4".into(),
            unverified: total_level.evidence == Evidence::Unverified
                || item_level.evidence == Evidence::Unverified,
        }
    }
}

/// Turns a list of field errors from a nested record into errors under `prefix`.
pub fn nest(prefix: &str, errors: ValidationErrors) -> ValidationErrors {
    ValidationErrors(
        errors
            .0
            .into_iter()
            .map(|e| FieldError {
                field: format!("{prefix}.{}", e.field),
                detail: e.detail,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn procedure_details_need_a_primary_operator_and_an_agent_for_a_volume() {
        let details = ProcedureDetails {
            operators: vec![Operator {
                name: " ".into(),
                role: OperatorRole::Assistant,
            }],
            guidance: GuidanceModality::Fluoroscopy,
            access_site: "".into(),
            contrast_agent: None,
            contrast_volume_ml: Some(80.0),
            findings: "".into(),
            technical_success: Some(true),
        };
        let errors = details.check().expect_err("refused").0;
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "operators",
                "operators[0].name",
                "access_site",
                "contrast_agent"
            ]
        );
    }

    #[test]
    fn device_kind_names_are_their_serialised_names() {
        for kind in DeviceKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("kind"),
                serde_json::Value::from(kind.as_str())
            );
        }
    }

    #[test]
    fn a_device_label_is_read_when_recorded_or_refused_with_its_reason() {
        let device = |label: Option<&str>| DeviceLeft {
            kind: DeviceKind::IvcFilter,
            description: "retrievable IVC filter, infrarenal".into(),
            udi_label: label.map(str::to_string),
            udi: None,
        };
        let read = device(Some("(01)09506000134352(17)300630(10)L7(21)F1"))
            .check(now())
            .expect("a good label");
        let udi = read.udi.clone().expect("read");
        assert_eq!(udi.device_identifier, "09506000134352");
        assert_eq!(udi.lot.as_deref(), Some("L7"));
        assert_eq!(read.udi_label, None, "kept as read, not as typed");
        assert_eq!(device(None).check(now()).map(|d| d.udi), Ok(None));
        assert_eq!(device(Some("  ")).check(now()).map(|d| d.udi), Ok(None));
        let refused = device(Some("(01)09506000134353"))
            .check(now())
            .expect_err("bad");
        assert_eq!(refused.0[0].field, "udi_label");
        assert!(refused.0[0].detail.contains("check digit"));
        // A label read before is read again from its carrier, never taken on trust.
        let mut forged = read.clone();
        if let Some(udi) = forged.udi.as_mut() {
            udi.lot = Some("OTHER".into());
        }
        assert_eq!(forged.check(now()).map(|d| d.udi), Ok(Some(udi)));
    }

    #[test]
    fn a_complication_takes_a_cirse_grade_from_one_to_six_or_none() {
        let graded = |grade: Option<u8>| Complication {
            description: "puncture-site haematoma".into(),
            severity: SirSeverity::Mild,
            cirse_grade: grade,
            at: now(),
        };
        for grade in [None, Some(1), Some(6)] {
            assert_eq!(graded(grade).check(now()).map(|c| c.cirse_grade), Ok(grade));
        }
        for grade in [0, 7] {
            let errors = graded(Some(grade)).check(now()).expect_err("refused").0;
            assert_eq!(errors[0].field, "cirse_grade");
            assert!(errors[0]
                .detail
                .contains("1 (solved in the same session) to 6"));
        }
    }

    #[test]
    fn vital_signs_refuse_typos_and_empty_sets() {
        let vitals =
            |hr: Option<u16>, s: Option<u16>, d: Option<u16>, spo2: Option<u8>| VitalSigns {
                at: now(),
                phase: Phase::Recovery,
                heart_rate: hr,
                systolic: s,
                diastolic: d,
                spo2,
                respiratory_rate: None,
            };
        assert!(vitals(Some(72), Some(128), Some(76), Some(97))
            .check(now())
            .is_ok());
        let fields = |v: VitalSigns| -> Vec<String> {
            v.check(now())
                .expect_err("refused")
                .0
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(vitals(Some(720), None, None, None)), ["heart_rate"]);
        assert_eq!(
            fields(vitals(None, Some(80), Some(90), None)),
            ["diastolic"]
        );
        assert_eq!(fields(vitals(None, None, None, Some(101))), ["spo2"]);
        assert_eq!(fields(vitals(None, None, None, None)), ["vitals"]);
    }

    #[test]
    fn scores_are_zero_to_two() {
        let score = AldreteScore {
            at: now(),
            activity: 3,
            respiration: 2,
            circulation: 2,
            consciousness: 2,
            oxygen_saturation: 2,
        };
        let errors = score.check(now()).expect_err("refused").0;
        assert_eq!(errors[0].field, "activity");
    }
}
