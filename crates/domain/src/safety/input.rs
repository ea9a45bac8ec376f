//! What the engine is told about a case, already checked. Time is always a parameter.

use super::reference::DoseIntent;
use crate::catalogue::{AccessRoute, GuidanceModality, Procedure, Sedation, SheathFrench};
use crate::clinical::{LabResult, LabTest};
use crate::lifecycle::TimeOut;
use crate::patient::{AllergyClass, PatientDetails};
use chrono::{DateTime, Utc};

/// Where the patient comes from: lab recency rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CareSetting {
    ScheduledOutpatient,
    /// Inpatient or ED: labs must come from this presentation (drawn after `since`).
    Admitted {
        since: DateTime<Utc>,
    },
}

/// A drug the patient takes, as the hold rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct DrugUse {
    pub drug: String,
    pub last_dose_at: Option<DateTime<Utc>>,
    /// For low-molecular-weight heparins: prophylactic or therapeutic dosing.
    pub dose_intent: Option<DoseIntent>,
    /// For aspirin: `primary_prevention` or `secondary_prevention`, when known.
    pub indication: Option<String>,
}

/// When the patient last had each kind of intake (None: not since the previous evening's
/// instructions, i.e. nothing recorded to count against).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FastingRecord {
    pub clear_liquids: Option<DateTime<Utc>>,
    pub breast_milk: Option<DateTime<Utc>>,
    pub light_meal: Option<DateTime<Utc>>,
    pub fatty_meal: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRecord {
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

/// Clinical facts beyond the demographic record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClinicalFlags {
    /// ASA physical status I-VI, when assessed.
    pub asa_class: Option<u8>,
    pub difficult_airway: bool,
    pub chronic_liver_disease: bool,
    pub acute_kidney_injury: bool,
    pub on_dialysis: bool,
    /// Mechanical valve, recent VTE or stent: holds need a bridging discussion.
    pub high_thrombotic_risk: bool,
    /// Creatinine clearance in mL/min, for drugs whose hold depends on it.
    pub creatinine_clearance: Option<f64>,
}

/// Everything one evaluation reads.
#[derive(Debug, Clone)]
pub struct SafetyInput<'a> {
    pub procedure: &'a Procedure,
    pub modality: GuidanceModality,
    pub sedation: Sedation,
    pub iodinated_contrast: bool,
    /// The access route planned at vetting (§1.2), when recorded.
    pub access_route: Option<AccessRoute>,
    /// The sheath size planned at vetting (§1.1), when recorded.
    pub sheath_french: Option<SheathFrench>,
    pub planned_start: DateTime<Utc>,
    /// When the procedure is expected to end (resumption of held drugs counts from it).
    pub planned_end: DateTime<Utc>,
    /// The moment of evaluation: nothing after it is known, deadlines before it have passed.
    pub now: DateTime<Utc>,
    pub setting: CareSetting,
    pub patient: &'a PatientDetails,
    pub flags: ClinicalFlags,
    pub drugs: Vec<DrugUse>,
    pub labs: Vec<LabResult>,
    pub fasting: Option<FastingRecord>,
    pub consent: Option<ConsentRecord>,
    pub time_out: Option<TimeOut>,
    /// The department's wall clock: the times in the texts, and which calendar day "on the day" is.
    pub time: crate::DepartmentTime,
}

impl SafetyInput<'_> {
    /// The latest result of a test drawn no later than now.
    pub fn latest(&self, test: LabTest) -> Option<&LabResult> {
        self.labs
            .iter()
            .filter(|l| l.test == test && l.drawn_at <= self.now)
            .max_by_key(|l| l.drawn_at)
    }

    pub fn has_allergy(&self, class: AllergyClass) -> bool {
        self.patient.has_allergy(class)
    }

    pub fn takes(&self, drug: &str) -> bool {
        self.drugs.iter().any(|d| d.drug.eq_ignore_ascii_case(drug))
    }
}
