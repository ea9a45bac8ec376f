//! The checklist of a recorded case: assembles the engine's input from the case record, the
//! patient, their drugs and labs. What is not yet known becomes a `missing data` item.

use super::checklist::{Action, Checklist, ChecklistItem, ItemStatus};
use super::engine::evaluate;
use super::input::{
    CareSetting, ClinicalFlags, ConsentRecord, DrugUse, FastingRecord, SafetyInput,
};
use super::reference::{DoseIntent, SafetyReference};
use crate::access::Role;
use crate::assessment::{Consent, FastingTimes, PreAssessment, Setting};
use crate::catalogue::ProcedureCatalogue;
use crate::clinical::{LabResult, Medication};
use crate::lifecycle::Case;
use crate::patient::{PatientDetails, Visit};
use chrono::{DateTime, Utc};

fn missing(rule: &str, title: &str, reason: &str, role: Role, what: &str) -> ChecklistItem {
    ChecklistItem {
        rule: rule.into(),
        title: title.into(),
        status: ItemStatus::MissingData,
        reason: reason.into(),
        actions: vec![Action {
            what: what.into(),
            due: None,
            role,
        }],
        citation: "clinical-rules.md §8".into(),
        unverified: false,
    }
}

/// What is recorded about the patient that the rules read.
pub struct PatientFacts<'a> {
    pub details: &'a PatientDetails,
    pub medications: &'a [Medication],
    pub labs: &'a [LabResult],
}

/// The checklist for `case` as of `now`, with times read on the department's clock.
pub fn case_checklist(
    case: &Case,
    facts: &PatientFacts<'_>,
    catalogue: &ProcedureCatalogue,
    reference: &SafetyReference,
    now: DateTime<Utc>,
    time: crate::DepartmentTime,
) -> Checklist {
    let PatientFacts {
        details: patient,
        medications,
        labs,
    } = *facts;
    let version = reference.version.clone();
    let Some(vetting) = &case.vetting else {
        let item = missing(
            "vetting",
            "Vetting",
            "The case is not vetted yet: the procedure and plan decide the rules.",
            Role::IrPhysician,
            "Vet the referral",
        );
        return Checklist::new(vec![item], version);
    };
    let Some(procedure) = catalogue.get(&vetting.procedure_id) else {
        let item = missing(
            "vetting",
            "Vetting",
            "The vetted procedure is no longer in the catalogue.",
            Role::IrPhysician,
            "Re-vet with a current procedure",
        );
        return Checklist::new(vec![item], version);
    };
    let Some(booking) = &case.booking else {
        let item = missing(
            "booking",
            "Booking",
            "The case is not booked yet: hold and fasting times count back from the planned start.",
            Role::Scheduler,
            "Book the case",
        );
        return Checklist::new(vec![item], version);
    };
    let assessment = case.assessment.clone();
    let (setting, flags) =
        setting_and_flags(assessment.as_ref(), patient.visit.as_ref(), case.opened_at);
    let drugs = medications.iter().map(DrugUse::from).collect();
    let input = SafetyInput {
        procedure,
        modality: vetting.modality,
        sedation: vetting.sedation,
        iodinated_contrast: vetting.iodinated_contrast,
        access_route: vetting.access_route,
        sheath_french: vetting.sheath_french,
        planned_start: booking.start,
        planned_end: booking.end,
        now,
        setting,
        patient,
        flags,
        drugs,
        labs: labs.to_vec(),
        fasting: case.fasting.as_ref().map(|f| FastingRecord {
            clear_liquids: f.clear_liquids,
            breast_milk: f.breast_milk,
            light_meal: f.light_meal,
            fatty_meal: f.fatty_meal,
        }),
        consent: case.consent.as_ref().map(|c| ConsentRecord {
            recorded_at: c.obtained_at,
            recorded_by: c.obtained_by.clone(),
        }),
        time_out: case.time_out.clone(),
        time,
    };
    let mut checklist = evaluate(&input, reference);
    if assessment.is_none() {
        checklist.items.insert(
            0,
            missing(
                "assessment",
                "Pre-procedure assessment",
                "No pre-procedure assessment recorded (setting, ASA class, airway, liver and kidney disease, thrombotic risk).",
                Role::IrNurse,
                "Record the pre-procedure assessment",
            ),
        );
        checklist = Checklist::new(checklist.items, checklist.reference_version);
    }
    checklist
}

/// Where the patient comes from and the clinical flags, from a recorded assessment; without one,
/// the setting of the hospital visit the patient administration system reported (none: a
/// scheduled outpatient), with nothing flagged. `opened_at` stands in for a missing admission time.
pub fn setting_and_flags(
    assessment: Option<&PreAssessment>,
    visit: Option<&Visit>,
    opened_at: DateTime<Utc>,
) -> (CareSetting, ClinicalFlags) {
    let Some(a) = assessment else {
        let setting = match visit {
            Some(v) if v.setting != Setting::Outpatient => CareSetting::Admitted {
                since: v.admitted_at.unwrap_or(opened_at),
            },
            _ => CareSetting::ScheduledOutpatient,
        };
        return (setting, ClinicalFlags::default());
    };
    let setting = match a.setting {
        Setting::Outpatient => CareSetting::ScheduledOutpatient,
        Setting::Inpatient | Setting::Emergency => CareSetting::Admitted {
            since: a.admitted_at.unwrap_or(opened_at),
        },
    };
    let flags = ClinicalFlags {
        asa_class: a.asa_class,
        difficult_airway: a.difficult_airway,
        chronic_liver_disease: a.chronic_liver_disease,
        acute_kidney_injury: a.acute_kidney_injury,
        on_dialysis: a.on_dialysis,
        high_thrombotic_risk: a.high_thrombotic_risk,
        creatinine_clearance: a.creatinine_clearance,
    };
    (setting, flags)
}

impl From<&Medication> for DrugUse {
    fn from(m: &Medication) -> Self {
        DrugUse {
            drug: m.drug.clone(),
            last_dose_at: m.last_dose_at,
            dose_intent: match m.dose_intent.as_deref() {
                Some("prophylactic") => Some(DoseIntent::Prophylactic),
                Some("therapeutic") => Some(DoseIntent::Therapeutic),
                _ => None,
            },
            indication: m.indication.clone(),
        }
    }
}

impl From<&FastingTimes> for FastingRecord {
    fn from(f: &FastingTimes) -> Self {
        FastingRecord {
            clear_liquids: f.clear_liquids,
            breast_milk: f.breast_milk,
            light_meal: f.light_meal,
            fatty_meal: f.fatty_meal,
        }
    }
}

impl From<&Consent> for ConsentRecord {
    fn from(c: &Consent) -> Self {
        ConsentRecord {
            recorded_at: c.obtained_at,
            recorded_by: c.obtained_by.clone(),
        }
    }
}
