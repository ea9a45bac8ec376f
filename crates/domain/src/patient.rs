//! The patient: identity at a site, demographics, allergies and pregnancy status.

use crate::assessment::Setting;
use crate::clinical::{LabResult, Medication};
use crate::ids::PatientId;
use crate::validation::{optional_text, parse_choice, required_text, Collector, ValidationErrors};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A site's code (hospital or campus); MRNs are unique per site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(transparent)]
pub struct SiteCode(String);

impl SiteCode {
    /// The longest site code (the OpenAPI document states it too).
    pub const MAX_CHARS: usize = 16;

    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if !v.is_empty()
            && v.len() <= Self::MAX_CHARS
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            Ok(SiteCode(v.to_ascii_uppercase()))
        } else {
            Err(format!(
                "'{value}' is not a site code: use 1-16 letters, digits or '-'"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Medical record number as issued by the site's patient administration system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(transparent)]
pub struct Mrn(String);

impl Mrn {
    /// The longest MRN (the OpenAPI document states it too).
    pub const MAX_CHARS: usize = 20;

    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if !v.is_empty()
            && v.len() <= Self::MAX_CHARS
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            Ok(Mrn(v.to_ascii_uppercase()))
        } else {
            Err(format!(
                "'{value}' is not an MRN: use 1-20 letters, digits or '-'"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonName {
    pub family: String,
    pub given: String,
    /// Second and further given names (HL7 XPN-3, the third component of a DICOM PN): kept,
    /// so a name reads back as the PAS sent it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub middle: String,
}

impl PersonName {
    /// Given names in order: the first, then any further ones.
    pub fn given_names(&self) -> String {
        if self.middle.is_empty() {
            self.given.clone()
        } else {
            format!("{} {}", self.given, self.middle)
        }
    }

    /// "Family, Given Middle", as lists sort and show it.
    pub fn family_first(&self) -> String {
        format!("{}, {}", self.family, self.given_names())
    }

    /// "Given Middle Family", as a sentence names someone.
    pub fn given_first(&self) -> String {
        format!("{} {}", self.given_names(), self.family)
    }
}

/// The words of a name as patient search reads them: split at whitespace and hyphens, so
/// "smith-jones" is found by "jones" too. Text with no word (blank, or only hyphens) searches
/// for nothing: callers refuse it rather than read it as "everyone".
pub fn name_words(name: &str) -> std::collections::BTreeSet<&str> {
    name.split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .collect()
}

/// Administrative sex, as FHIR `AdministrativeGender`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

const SEXES: &[(&str, Sex)] = &[
    ("female", Sex::Female),
    ("male", Sex::Male),
    ("other", Sex::Other),
    ("unknown", Sex::Unknown),
];

/// Body weight in kilograms.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(transparent)]
pub struct BodyWeightKg(f64);

impl BodyWeightKg {
    /// Plausibility bounds for data entry (a neonate to the heaviest recorded adult), not a
    /// clinical rule: above the first, at most the second.
    pub const ABOVE_KG: f64 = 0.2;
    pub const MAX_KG: f64 = 700.0;

    pub fn parse(kg: f64) -> Result<Self, String> {
        if kg.is_finite() && kg > Self::ABOVE_KG && kg <= Self::MAX_KG {
            Ok(BodyWeightKg(kg))
        } else {
            Err(format!(
                "{kg} kg is not a body weight: give kilograms between 0.2 and 700"
            ))
        }
    }
    pub fn kg(self) -> f64 {
        self.0
    }
}

/// What a patient is allergic to, with the classes IR rules need called out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AllergyClass {
    IodinatedContrast,
    GadoliniumContrast,
    Latex,
    Drug,
    Food,
    Other,
}

const ALLERGY_CLASSES: &[(&str, AllergyClass)] = &[
    ("iodinated_contrast", AllergyClass::IodinatedContrast),
    ("gadolinium_contrast", AllergyClass::GadoliniumContrast),
    ("latex", AllergyClass::Latex),
    ("drug", AllergyClass::Drug),
    ("food", AllergyClass::Food),
    ("other", AllergyClass::Other),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allergy {
    pub class: AllergyClass,
    /// The substance as named by the patient or record, e.g. "iohexol", "penicillin".
    pub substance: String,
    /// The reaction, e.g. "urticaria", "anaphylaxis"; empty when unknown.
    #[serde(default)]
    pub reaction: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Pregnancy {
    NotPregnant,
    Pregnant,
    PossiblyPregnant,
    Unknown,
    NotApplicable,
}

const PREGNANCY: &[(&str, Pregnancy)] = &[
    ("not_pregnant", Pregnancy::NotPregnant),
    ("pregnant", Pregnancy::Pregnant),
    ("possibly_pregnant", Pregnancy::PossiblyPregnant),
    ("unknown", Pregnancy::Unknown),
    ("not_applicable", Pregnancy::NotApplicable),
];

/// A pregnancy status is only meaningful with the moment it was established (rules need "on the day").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PregnancyStatus {
    pub status: Pregnancy,
    pub recorded_at: DateTime<Utc>,
}

/// Everything the department records about who the patient is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientDetails {
    pub site: SiteCode,
    pub mrn: Mrn,
    pub name: PersonName,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<BodyWeightKg>,
    #[serde(default)]
    pub allergies: Vec<Allergy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pregnancy: Option<PregnancyStatus>,
    /// The current hospital visit, as the patient administration system reports it (HL7 PV1);
    /// none when it has not said. Not edited by hand: the PAS owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<Visit>,
}

/// A hospital visit: where the patient is being cared for and since when. The safety rules read
/// it as the care setting while no pre-procedure assessment is recorded (labs must come from an
/// inpatient's or ED patient's current presentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Visit {
    pub setting: Setting,
    /// Admission (or ED arrival) time; inpatients and ED patients only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<DateTime<Utc>>,
    /// The PAS's visit number (PV1-19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_number: Option<String>,
}

/// A change to some of a patient's details as a hospital system sends it (HL7 ADT): `None`
/// leaves a detail as it is; `Some(None)` clears it (HL7's `""`); a list sent replaces the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailsPatch {
    pub name: Option<PersonName>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub weight_kg: Option<Option<BodyWeightKg>>,
    pub allergies: Option<Vec<Allergy>>,
    pub visit: Option<Option<Visit>>,
}

impl DetailsPatch {
    /// `current` with this patch applied.
    pub fn applied_to(&self, current: &PatientDetails) -> PatientDetails {
        let mut next = current.clone();
        if let Some(name) = &self.name {
            next.name = name.clone();
        }
        if let Some(birth_date) = self.birth_date {
            next.birth_date = birth_date;
        }
        if let Some(sex) = self.sex {
            next.sex = sex;
        }
        if let Some(weight) = self.weight_kg {
            next.weight_kg = weight;
        }
        if let Some(allergies) = &self.allergies {
            next.allergies = allergies.clone();
        }
        if let Some(visit) = &self.visit {
            next.visit = visit.clone();
        }
        next
    }

    /// A new patient from this patch: a name and a birth date are needed (the rules read the
    /// age); an unsent sex is unknown.
    pub fn new_patient(&self, site: SiteCode, mrn: Mrn) -> Result<PatientDetails, String> {
        let (Some(name), Some(birth_date)) = (&self.name, self.birth_date) else {
            return Err(
                "a new patient needs a name and a birth date; neither may be empty".to_string(),
            );
        };
        Ok(PatientDetails {
            site,
            mrn,
            name: name.clone(),
            birth_date,
            sex: self.sex.unwrap_or(Sex::Unknown),
            weight_kg: self.weight_kg.flatten(),
            allergies: self.allergies.clone().unwrap_or_default(),
            pregnancy: None,
            visit: self.visit.clone().flatten(),
        })
    }
}

impl PatientDetails {
    /// Age in completed years on `on`.
    pub fn age_on(&self, on: NaiveDate) -> u32 {
        let mut years = on.year() - self.birth_date.year();
        if (on.month(), on.day()) < (self.birth_date.month(), self.birth_date.day()) {
            years -= 1;
        }
        years.max(0) as u32
    }

    pub fn has_allergy(&self, class: AllergyClass) -> bool {
        self.allergies.iter().any(|a| a.class == class)
    }
}

/// Patient registration or update as sent by a client, before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientInput {
    pub site: String,
    pub mrn: String,
    pub family_name: String,
    pub given_name: String,
    /// Second and further given names; may be empty.
    #[serde(default)]
    pub middle_names: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// One of female, male, other, unknown.
    pub sex: String,
    #[serde(default)]
    pub weight_kg: Option<f64>,
    #[serde(default)]
    pub allergies: Vec<AllergyInput>,
    /// One of not_pregnant, pregnant, possibly_pregnant, unknown, not_applicable.
    #[serde(default)]
    pub pregnancy_status: Option<String>,
    /// When the pregnancy status was established (RFC 3339); defaults to the time of the request.
    #[serde(default)]
    pub pregnancy_recorded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllergyInput {
    /// One of iodinated_contrast, gadolinium_contrast, latex, drug, food, other.
    pub class: String,
    pub substance: String,
    #[serde(default)]
    pub reaction: String,
}

/// A patient as first registered; the type only exists once every field has been checked.
pub type NewPatient = PatientDetails;

impl PatientDetails {
    /// Checks every field; `now` bounds dates (no birth in the future).
    pub fn parse(input: &PatientInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut c = Collector::new();
        let site = c.take("site", SiteCode::parse(&input.site));
        let mrn = c.take("mrn", Mrn::parse(&input.mrn));
        let family = c.take(
            "family_name",
            required_text(&input.family_name, crate::validation::SHORT_TEXT),
        );
        let given = c.take(
            "given_name",
            required_text(&input.given_name, crate::validation::SHORT_TEXT),
        );
        let middle = c.take(
            "middle_names",
            optional_text(Some(&input.middle_names), crate::validation::SHORT_TEXT),
        );
        let birth_date = c.take(
            "birth_date",
            parse_birth_date(&input.birth_date, now.date_naive()),
        );
        let sex = c.take("sex", parse_choice(&input.sex, SEXES));
        let weight_kg = match input.weight_kg {
            Some(kg) => c.take("weight_kg", BodyWeightKg::parse(kg)),
            None => None,
        };
        let mut allergies = Vec::with_capacity(input.allergies.len());
        for (i, a) in input.allergies.iter().enumerate() {
            let class = c.take(
                &format!("allergies[{i}].class"),
                parse_choice(&a.class, ALLERGY_CLASSES),
            );
            let substance = c.take(
                &format!("allergies[{i}].substance"),
                required_text(&a.substance, crate::validation::SHORT_TEXT),
            );
            let reaction = c.take(
                &format!("allergies[{i}].reaction"),
                optional_text(Some(&a.reaction), crate::validation::MEDIUM_TEXT),
            );
            if let (Some(class), Some(substance), Some(reaction)) = (class, substance, reaction) {
                allergies.push(Allergy {
                    class,
                    substance,
                    reaction: reaction.unwrap_or_default(),
                });
            }
        }
        let pregnancy = match input.pregnancy_status.as_deref() {
            None | Some("") => None,
            Some(s) => {
                let recorded_at = input.pregnancy_recorded_at.unwrap_or(now);
                if recorded_at > now {
                    c.push("pregnancy_recorded_at", "must not be in the future");
                }
                c.take("pregnancy_status", parse_choice(s, PREGNANCY))
                    .map(|status| PregnancyStatus {
                        status,
                        recorded_at,
                    })
            }
        };
        c.finish()?;
        // Every Option below is Some: the collector had no errors.
        match (site, mrn, family, given, middle, birth_date, sex) {
            (
                Some(site),
                Some(mrn),
                Some(family),
                Some(given),
                Some(middle),
                Some(birth_date),
                Some(sex),
            ) => Ok(PatientDetails {
                site,
                mrn,
                name: PersonName {
                    family,
                    given,
                    middle: middle.unwrap_or_default(),
                },
                birth_date,
                sex,
                weight_kg,
                allergies,
                pregnancy,
                visit: None,
            }),
            _ => Err(ValidationErrors::single("patient", "incomplete input")),
        }
    }
}

fn parse_birth_date(value: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| format!("'{value}' is not a date: use YYYY-MM-DD"))?;
    if date > today {
        return Err(format!("{date} is in the future"));
    }
    if today.year() - date.year() > 130 {
        return Err(format!("{date} is more than 130 years ago"));
    }
    Ok(date)
}

/// The current record of a patient: what their events say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Patient {
    pub id: PatientId,
    #[serde(flatten)]
    pub details: PatientDetails,
    /// Number of events applied; a write must name the version it was based on.
    pub version: u64,
    /// Set when this record was merged into another (HL7 A40): that one is the patient now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<PatientId>,
}

/// A change to a patient's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PatientEvent {
    Registered {
        details: PatientDetails,
    },
    DetailsUpdated {
        details: PatientDetails,
    },
    MedicationRecorded {
        medication: Medication,
    },
    LabResultRecorded {
        result: LabResult,
    },
    /// A recorded drug entry replaced by a corrected one (the reason is in the event's meta).
    MedicationCorrected {
        entry: u64,
        medication: Medication,
    },
    /// A drug entry withdrawn: recorded for the wrong patient, or not taken at all.
    MedicationEnteredInError {
        entry: u64,
    },
    LabResultCorrected {
        entry: u64,
        result: LabResult,
    },
    LabResultEnteredInError {
        entry: u64,
    },
    /// This record was merged into `survivor` (its referrals, cases, labs, drugs and tasks moved
    /// there); it is kept, read-only in practice, so its history stays.
    MergedInto {
        survivor: PatientId,
        survivor_mrn: String,
    },
    /// Another record of this patient was merged into this one; what moved.
    MergedFrom {
        merged: PatientId,
        merged_mrn: String,
        moved: MergeSummary,
    },
}

/// What a merge moved from one record to the other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeSummary {
    pub referrals: u64,
    pub cases: u64,
    pub lab_results: u64,
    pub medications: u64,
    pub follow_up_tasks: u64,
    /// Devices in the registry (merges before it existed moved none).
    #[serde(default)]
    pub devices: u64,
    #[serde(default)]
    pub adverse_events: u64,
    #[serde(default)]
    pub procedure_reports: u64,
}

impl PatientEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            PatientEvent::Registered { .. } => "registered",
            PatientEvent::DetailsUpdated { .. } => "details_updated",
            PatientEvent::MedicationRecorded { .. } => "medication_recorded",
            PatientEvent::LabResultRecorded { .. } => "lab_result_recorded",
            PatientEvent::MedicationCorrected { .. } => "medication_corrected",
            PatientEvent::MedicationEnteredInError { .. } => "medication_entered_in_error",
            PatientEvent::LabResultCorrected { .. } => "lab_result_corrected",
            PatientEvent::LabResultEnteredInError { .. } => "lab_result_entered_in_error",
            PatientEvent::MergedInto { .. } => "merged_into",
            PatientEvent::MergedFrom { .. } => "merged_from",
        }
    }

    /// One line for a history: what changed, in the department's words.
    pub fn summary(&self) -> String {
        fn drug(m: &Medication) -> String {
            [m.drug.as_str(), m.dose.as_str(), m.frequency.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        }
        fn lab(r: &LabResult) -> String {
            format!("{} {} {}", r.test.as_str(), r.value, r.unit)
        }
        match self {
            PatientEvent::Registered { .. } => "patient registered".into(),
            PatientEvent::DetailsUpdated { .. } => "patient details updated".into(),
            PatientEvent::MedicationRecorded { medication } => {
                format!("drug recorded: {}", drug(medication))
            }
            PatientEvent::LabResultRecorded { result } => format!("lab recorded: {}", lab(result)),
            PatientEvent::MedicationCorrected { entry, medication } => {
                format!("drug entry {entry} corrected to: {}", drug(medication))
            }
            PatientEvent::MedicationEnteredInError { entry } => {
                format!("drug entry {entry} withdrawn: entered in error")
            }
            PatientEvent::LabResultCorrected { entry, result } => {
                format!("lab entry {entry} corrected to: {}", lab(result))
            }
            PatientEvent::LabResultEnteredInError { entry } => {
                format!("lab entry {entry} withdrawn: entered in error")
            }
            PatientEvent::MergedInto { survivor_mrn, .. } => {
                format!("record merged into MRN {survivor_mrn}: that record is the patient now")
            }
            PatientEvent::MergedFrom {
                merged_mrn, moved, ..
            } => format!(
                "record MRN {merged_mrn} merged into this one: {} referrals, {} cases, {} labs, {} drugs, {} follow-up tasks moved here",
                moved.referrals, moved.cases, moved.lab_results, moved.medications, moved.follow_up_tasks
            ),
        }
    }
}

impl Patient {
    /// Folds a patient's events, oldest first, into the current record.
    pub fn replay<'a>(
        id: PatientId,
        events: impl IntoIterator<Item = &'a PatientEvent>,
    ) -> Option<Patient> {
        let mut patient: Option<Patient> = None;
        for event in events {
            patient = match (patient, event) {
                (None, PatientEvent::Registered { details }) => Some(Patient {
                    id,
                    details: details.clone(),
                    version: 1,
                    merged_into: None,
                }),
                (Some(mut p), PatientEvent::MergedInto { survivor, .. }) => {
                    p.merged_into = Some(*survivor);
                    p.version += 1;
                    Some(p)
                }
                (Some(mut p), PatientEvent::DetailsUpdated { details }) => {
                    p.details = details.clone();
                    p.version += 1;
                    Some(p)
                }
                (
                    Some(mut p),
                    PatientEvent::MedicationRecorded { .. }
                    | PatientEvent::LabResultRecorded { .. }
                    | PatientEvent::MedicationCorrected { .. }
                    | PatientEvent::MedicationEnteredInError { .. }
                    | PatientEvent::LabResultCorrected { .. }
                    | PatientEvent::LabResultEnteredInError { .. }
                    | PatientEvent::MergedFrom { .. },
                ) => {
                    p.version += 1;
                    Some(p)
                }
                (other, _) => other,
            };
        }
        patient
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn further_given_names_are_kept_and_read_back_in_order() {
        let mut input = input();
        input.middle_names = "Wolfgang Amadeus".into();
        let details = PatientDetails::parse(&input, now()).expect("a name with middle names");
        assert_eq!(details.name.middle, "Wolfgang Amadeus");
        assert_eq!(details.name.family_first(), "Doe, Alex Wolfgang Amadeus");
        assert_eq!(details.name.given_first(), "Alex Wolfgang Amadeus Doe");
        // Stored before middle names existed: read as none.
        let old: PersonName =
            serde_json::from_str(r#"{"family":"Doe","given":"Alex"}"#).expect("old record");
        assert_eq!(old.given_names(), "Alex");
        input.middle_names = "x".repeat(crate::validation::SHORT_TEXT + 1);
        let refused = PatientDetails::parse(&input, now()).expect_err("too long");
        assert!(refused.to_string().contains("middle_names"), "{refused}");
    }

    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
            .single()
            .expect("valid time")
    }

    fn input() -> PatientInput {
        PatientInput {
            middle_names: String::new(),
            site: "main".into(),
            mrn: "mrn-001".into(),
            family_name: "Doe".into(),
            given_name: "Alex".into(),
            birth_date: "1960-11-25".into(),
            sex: "female".into(),
            weight_kg: Some(70.0),
            allergies: vec![AllergyInput {
                class: "latex".into(),
                substance: "latex".into(),
                reaction: String::new(),
            }],
            pregnancy_status: None,
            pregnancy_recorded_at: None,
        }
    }

    #[test]
    fn parses_and_normalises_codes() {
        let p = PatientDetails::parse(&input(), now()).expect("valid");
        assert_eq!(p.site.as_str(), "MAIN");
        assert_eq!(p.mrn.as_str(), "MRN-001");
        assert_eq!(
            p.age_on(now().date_naive()),
            65,
            "birthday tomorrow: still 65"
        );
        assert!(p.has_allergy(AllergyClass::Latex));
    }

    #[test]
    fn reports_every_bad_field() {
        let mut bad = input();
        bad.mrn = "".into();
        bad.birth_date = "2030-01-01".into();
        bad.sex = "f".into();
        bad.weight_kg = Some(-3.0);
        bad.allergies[0].class = "nuts".into();
        let errs = PatientDetails::parse(&bad, now()).expect_err("invalid");
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "mrn",
                "birth_date",
                "sex",
                "weight_kg",
                "allergies[0].class"
            ]
        );
        assert!(errs.0[2].detail.contains("female, male, other, unknown"));
    }
}
