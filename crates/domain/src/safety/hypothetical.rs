//! The planning calculator: the safety engine on a case that exists only in the request ("when
//! must this patient stop apixaban for a liver biopsy on Thursday 08:00?"). Nothing is stored.

use super::checklist::Checklist;
use super::engine::evaluate;
use super::for_case::setting_and_flags;
use super::input::{ConsentRecord, DrugUse, FastingRecord, SafetyInput};
use super::reference::SafetyReference;
use crate::assessment::{Consent, FastingTimes, PreAssessment};
use crate::catalogue::{AccessRoute, GuidanceModality, ProcedureCatalogue, Sedation, SheathFrench};
use crate::clinical::{LabResult, LabResultInput, Medication, MedicationInput};
use crate::patient::{AllergyInput, PatientDetails, PatientInput};
use crate::validation::Collector;
use crate::ValidationErrors;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The patient facts the rules read; no identity is needed or kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HypotheticalPatient {
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// One of female, male, other, unknown.
    pub sex: String,
    #[serde(default)]
    pub weight_kg: Option<f64>,
    #[serde(default)]
    pub allergies: Vec<AllergyInput>,
    #[serde(default)]
    pub pregnancy_status: Option<String>,
    #[serde(default)]
    pub pregnancy_recorded_at: Option<DateTime<Utc>>,
}

/// A case to evaluate without recording it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HypotheticalCase {
    /// A catalogue procedure id (GET /api/v1/procedures).
    pub procedure_id: String,
    /// When the procedure would start (RFC 3339).
    pub planned_start: DateTime<Utc>,
    /// Defaults to the procedure's first guidance modality.
    #[serde(default)]
    pub modality: Option<String>,
    /// Defaults to the procedure's usual sedation.
    #[serde(default)]
    pub sedation: Option<String>,
    #[serde(default)]
    pub iodinated_contrast: bool,
    /// The planned access route: femoral, radial, brachial, pedal, venous, none or other (§1.2).
    #[serde(default)]
    pub access_route: Option<String>,
    /// The planned sheath size in French (§1.1).
    #[serde(default)]
    pub sheath_french: Option<f64>,
    pub patient: HypotheticalPatient,
    #[serde(default)]
    pub assessment: Option<PreAssessment>,
    #[serde(default)]
    pub drugs: Vec<MedicationInput>,
    #[serde(default)]
    pub labs: Vec<LabResultInput>,
    #[serde(default)]
    pub fasting: Option<FastingTimes>,
    #[serde(default)]
    pub consent: Option<Consent>,
}

impl HypotheticalCase {
    /// Checks every field (all problems at once, each with its path) and evaluates.
    pub fn evaluate(
        &self,
        catalogue: &ProcedureCatalogue,
        reference: &SafetyReference,
        now: DateTime<Utc>,
        time: crate::DepartmentTime,
    ) -> Result<Checklist, ValidationErrors> {
        let mut c = Collector::new();
        let procedure = c.take("procedure_id", catalogue.find(self.procedure_id.trim()));
        let modality = match (&self.modality, procedure) {
            (Some(m), _) => c.take("modality", GuidanceModality::parse(m.trim())),
            (None, Some(p)) => p.modalities.first().copied(),
            (None, None) => None,
        };
        let sedation = match (&self.sedation, procedure) {
            (Some(s), _) => c.take("sedation", Sedation::parse(s.trim())),
            (None, Some(p)) => Some(p.sedation),
            (None, None) => None,
        };
        let access_route = self
            .access_route
            .as_ref()
            .and_then(|r| c.take("access_route", AccessRoute::parse(r.trim())));
        let sheath_french = self
            .sheath_french
            .and_then(|f| c.take("sheath_french", SheathFrench::parse(f)));
        // The patient parser wants an identity; a calculator has none, so it gets placeholders.
        let patient_input = PatientInput {
            middle_names: String::new(),
            site: "CALC".into(),
            mrn: "HYPOTHETICAL".into(),
            family_name: "Hypothetical".into(),
            given_name: "Patient".into(),
            birth_date: self.patient.birth_date.clone(),
            sex: self.patient.sex.clone(),
            weight_kg: self.patient.weight_kg,
            allergies: self.patient.allergies.clone(),
            pregnancy_status: self.patient.pregnancy_status.clone(),
            pregnancy_recorded_at: self.patient.pregnancy_recorded_at,
        };
        let patient = match PatientDetails::parse(&patient_input, now) {
            Ok(p) => Some(p),
            Err(e) => {
                c.merge("patient.", e);
                None
            }
        };
        if let Some(a) = &self.assessment {
            if let Err(e) = a.check(now) {
                c.merge("", rename(e, "event.assessment.", "assessment."));
            }
        }
        if let Some(f) = &self.fasting {
            if let Err(e) = f.check(now) {
                c.merge("", rename(e, "event.fasting.", "fasting."));
            }
        }
        if let Some(consent) = &self.consent {
            if let Err(e) = consent.check(now) {
                c.merge("", rename(e, "event.consent.", "consent."));
            }
        }
        let mut drugs = Vec::new();
        for (i, d) in self.drugs.iter().enumerate() {
            match Medication::parse(d, now) {
                Ok(m) => drugs.push(DrugUse::from(&m)),
                Err(e) => c.merge(&format!("drugs[{i}]."), e),
            }
        }
        let mut labs = Vec::new();
        for (i, l) in self.labs.iter().enumerate() {
            match LabResult::parse(l, now) {
                Ok(r) => labs.push(r),
                Err(e) => c.merge(&format!("labs[{i}]."), e),
            }
        }
        c.finish()?;
        let (Some(procedure), Some(modality), Some(sedation), Some(patient)) =
            (procedure, modality, sedation, patient)
        else {
            return Err(ValidationErrors::single("body", "incomplete input"));
        };
        let (setting, flags) = setting_and_flags(self.assessment.as_ref(), None, now);
        let input = SafetyInput {
            procedure,
            modality,
            sedation,
            iodinated_contrast: self.iodinated_contrast,
            access_route,
            sheath_french,
            planned_start: self.planned_start,
            planned_end: self.planned_start
                + chrono::Duration::minutes(i64::from(procedure.room_minutes)),
            now,
            setting,
            patient: &patient,
            flags,
            drugs,
            labs,
            fasting: self.fasting.as_ref().map(FastingRecord::from),
            consent: self.consent.as_ref().map(ConsentRecord::from),
            time_out: None,
            time,
        };
        Ok(evaluate(&input, reference))
    }
}

/// Re-roots field paths written for case events onto this request's shape.
fn rename(errors: ValidationErrors, from: &str, to: &str) -> ValidationErrors {
    ValidationErrors(
        errors
            .0
            .into_iter()
            .map(|mut e| {
                if let Some(rest) = e.field.strip_prefix(from) {
                    e.field = format!("{to}{rest}");
                }
                e
            })
            .collect(),
    )
}
