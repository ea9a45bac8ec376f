//! Boundary behaviour of every rule, computed from the reference table itself: a value exactly at
//! a threshold, just inside and just outside; a hold exactly at its limit and one minute past it.

use super::*;
use crate::catalogue::{GuidanceModality, ProcedureCatalogue, Sedation};
use crate::clinical::{LabResult, LabTest};
use crate::lifecycle::TimeOut;
use crate::patient::{
    Allergy, AllergyClass, PatientDetails, PatientInput, Pregnancy, PregnancyStatus,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::cell::RefCell;
use std::collections::BTreeSet;

fn reference() -> &'static SafetyReference {
    static R: std::sync::OnceLock<SafetyReference> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        SafetyReference::parse(
            include_str!("../../../../catalog/safety-thresholds.toml"),
            "safety-thresholds.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn catalogue() -> &'static ProcedureCatalogue {
    static C: std::sync::OnceLock<ProcedureCatalogue> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        ProcedureCatalogue::parse(
            include_str!("../../../../catalog/procedures.toml"),
            "procedures.toml",
        )
        .expect("catalogue")
    })
}

thread_local! {
    /// Thresholds the boundary tests have exercised (checked by `every_threshold_is_exercised`).
    static EXERCISED: RefCell<BTreeSet<&'static str>> = const { RefCell::new(BTreeSet::new()) };
}

fn value(id: ThresholdId) -> f64 {
    EXERCISED.with(|e| e.borrow_mut().insert(id.as_str()));
    reference().threshold(id).value
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0)
        .single()
        .expect("valid")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .expect("valid")
}

fn patient(sex: &str, birth: &str) -> PatientDetails {
    let input = PatientInput {
        site: "MAIN".into(),
        mrn: "T1".into(),
        family_name: "Test".into(),
        given_name: "Pat".into(),
        birth_date: birth.into(),
        sex: sex.into(),
        ..Default::default()
    };
    PatientDetails::parse(&input, now()).expect("patient")
}

/// A fully ready low-noise case; each test changes one thing.
struct Scenario {
    procedure: &'static str,
    modality: GuidanceModality,
    sedation: Sedation,
    contrast: bool,
    setting: CareSetting,
    patient: PatientDetails,
    flags: ClinicalFlags,
    drugs: Vec<DrugUse>,
    labs: Vec<LabResult>,
    fasting: Option<FastingRecord>,
    access_route: Option<crate::catalogue::AccessRoute>,
    sheath_french: Option<crate::catalogue::SheathFrench>,
    now: DateTime<Utc>,
    time: crate::DepartmentTime,
}

fn lab(test: LabTest, v: f64, drawn_at: DateTime<Utc>) -> LabResult {
    LabResult::new(test, v, drawn_at).expect("lab")
}

impl Scenario {
    fn new(procedure: &'static str) -> Self {
        let drawn = now() - Duration::days(1);
        Scenario {
            procedure,
            modality: GuidanceModality::Ultrasound,
            sedation: Sedation::Local,
            contrast: false,
            setting: CareSetting::ScheduledOutpatient,
            patient: patient("male", "1966-01-01"),
            flags: ClinicalFlags {
                asa_class: Some(2),
                creatinine_clearance: Some(80.0),
                ..Default::default()
            },
            drugs: vec![],
            labs: vec![
                lab(LabTest::Inr, 1.0, drawn),
                lab(LabTest::Platelets, 250.0, drawn),
                lab(LabTest::Egfr, 90.0, drawn),
                lab(LabTest::Fibrinogen, 300.0, drawn),
            ],
            fasting: Some(FastingRecord::default()),
            access_route: None,
            sheath_french: None,
            now: now(),
            time: crate::DepartmentTime::default(),
        }
    }

    fn with_lab(mut self, test: LabTest, v: f64) -> Self {
        self.labs.retain(|l| l.test != test);
        self.labs.push(lab(test, v, now() - Duration::days(1)));
        self
    }

    fn run(&self) -> Checklist {
        let input = SafetyInput {
            procedure: catalogue().find(self.procedure).expect("procedure"),
            modality: self.modality,
            sedation: self.sedation,
            iodinated_contrast: self.contrast,
            access_route: self.access_route,
            sheath_french: self.sheath_french,
            planned_start: start(),
            planned_end: start() + Duration::hours(1),
            now: self.now,
            setting: self.setting,
            patient: &self.patient,
            flags: self.flags.clone(),
            drugs: self.drugs.clone(),
            labs: self.labs.clone(),
            fasting: self.fasting.clone(),
            consent: Some(ConsentRecord {
                recorded_at: now(),
                recorded_by: "dr.test".into(),
            }),
            time_out: None,
            time: self.time,
        };
        evaluate(&input, reference())
    }

    fn status(&self, rule: &str) -> ItemStatus {
        let checklist = self.run();
        checklist
            .item(rule)
            .unwrap_or_else(|| panic!("no item {rule}: {:?}", checklist.items))
            .status
    }
}

const EPS: f64 = 0.01;
use ItemStatus::{ActionNeeded, Block, MissingData, Pass};

#[test]
fn inr_boundaries_for_each_bleeding_risk_class() {
    for (procedure, pass_max, block_above) in [
        (
            "biopsy-liver",
            ThresholdId::InrHighRiskPassMax,
            ThresholdId::InrHighRiskBlockAbove,
        ),
        (
            "paracentesis",
            ThresholdId::InrLowRiskPassMax,
            ThresholdId::InrLowRiskBlockAbove,
        ),
    ] {
        let (p, b) = (value(pass_max), value(block_above));
        for (inr, expected) in [
            (p - EPS, Pass),
            (p, Pass),
            (p + EPS, ActionNeeded),
            (b, ActionNeeded),
            (b + EPS, Block),
        ] {
            let s = Scenario::new(procedure).with_lab(LabTest::Inr, inr);
            assert_eq!(
                s.status("coagulation.inr"),
                expected,
                "{procedure}: INR {inr}"
            );
        }
    }
}

#[test]
fn inr_needed_for_high_risk_and_warfarin_not_for_plain_low_risk() {
    let mut s = Scenario::new("biopsy-liver");
    s.labs.retain(|l| l.test != LabTest::Inr);
    assert_eq!(s.status("coagulation.inr"), MissingData);
    let mut s = Scenario::new("paracentesis");
    s.labs.retain(|l| l.test != LabTest::Inr);
    assert_eq!(s.status("coagulation.inr"), Pass);
    s.drugs.push(DrugUse {
        drug: "warfarin".into(),
        last_dose_at: None,
        dose_intent: None,
        indication: None,
    });
    assert_eq!(s.status("coagulation.inr"), MissingData);
}

#[test]
fn platelet_boundaries_including_liver_disease() {
    for (procedure, id) in [
        ("biopsy-liver", ThresholdId::PlateletsHighRiskTransfuseBelow),
        ("paracentesis", ThresholdId::PlateletsLowRiskTransfuseBelow),
    ] {
        let t = value(id);
        for (count, expected) in [(t - EPS, Block), (t, Pass), (t + EPS, Pass)] {
            assert_eq!(
                Scenario::new(procedure)
                    .with_lab(LabTest::Platelets, count)
                    .status("coagulation.platelets"),
                expected,
                "{procedure}: {count}"
            );
        }
    }
    for (procedure, id) in [
        (
            "biopsy-liver",
            ThresholdId::LiverPlateletsHighRiskMinExclusive,
        ),
        (
            "paracentesis",
            ThresholdId::LiverPlateletsLowRiskMinExclusive,
        ),
    ] {
        let t = value(id);
        for (count, expected) in [(t, Block), (t + EPS, Pass)] {
            let mut s = Scenario::new(procedure).with_lab(LabTest::Platelets, count);
            s.flags.chronic_liver_disease = true;
            let checklist = s.run();
            let item = checklist.item("coagulation.platelets").expect("item");
            assert_eq!(item.status, expected, "liver {procedure}: {count}");
            assert!(
                item.unverified && item.reason.ends_with("(reference value not yet verified)"),
                "{}",
                item.reason
            );
        }
    }
    let t = value(ThresholdId::LiverFibrinogenMinExclusive);
    for (fib, expected) in [(t, Block), (t + EPS, Pass)] {
        let mut s = Scenario::new("paracentesis").with_lab(LabTest::Fibrinogen, fib);
        s.flags.chronic_liver_disease = true;
        assert_eq!(
            s.status("coagulation.fibrinogen"),
            expected,
            "fibrinogen {fib}"
        );
        assert_eq!(
            s.status("coagulation.inr"),
            Pass,
            "INR not used in liver disease"
        );
    }
}

#[test]
fn coagulation_lab_recency_boundaries() {
    let window = value(ThresholdId::RecencyCoagulationOutpatientHours);
    for (age_hours, expected) in [(window, Pass), (window + 1.0, ActionNeeded)] {
        let mut s = Scenario::new("biopsy-liver");
        s.labs = vec![
            lab(
                LabTest::Inr,
                1.0,
                start() - Duration::hours(age_hours as i64),
            ),
            lab(LabTest::Platelets, 250.0, now()),
        ];
        assert_eq!(
            s.status("coagulation.inr"),
            expected,
            "INR drawn {age_hours} h before"
        );
    }
    let warfarin = value(ThresholdId::RecencyCoagulationStoppingWarfarinHours);
    for (age_hours, expected) in [(warfarin, Pass), (warfarin + 1.0, ActionNeeded)] {
        let mut s = Scenario::new("biopsy-liver");
        s.now = start() - Duration::hours(1);
        s.drugs.push(DrugUse {
            drug: "warfarin".into(),
            last_dose_at: Some(start() - Duration::days(6)),
            dose_intent: None,
            indication: None,
        });
        s.labs = vec![
            lab(
                LabTest::Inr,
                1.0,
                start() - Duration::hours(age_hours as i64),
            ),
            lab(LabTest::Platelets, 250.0, now()),
        ];
        assert_eq!(
            s.status("coagulation.inr"),
            expected,
            "stopping warfarin: INR {age_hours} h before"
        );
    }
    // Inpatients: from this admission.
    let mut s = Scenario::new("biopsy-liver");
    s.setting = CareSetting::Admitted {
        since: now() - Duration::hours(12),
    };
    assert_eq!(
        s.status("coagulation.inr"),
        ActionNeeded,
        "INR from before admission"
    );
}

#[test]
fn every_hold_row_passes_exactly_at_its_limit_and_not_a_minute_later() {
    // Before the deadline the hold is a task for the nurse, whatever the last recorded dose.
    for rule in &reference().holds {
        let crcl = match (rule.crcl.lower, rule.crcl.upper) {
            (Some((lo, true)), _) => lo,
            (Some((lo, false)), _) => lo + 0.5,
            (None, Some((hi, true))) => hi,
            (None, Some((hi, false))) => hi - 0.5,
            (None, None) => 80.0,
        };
        let deadline = start() - Duration::hours(i64::from(rule.hours));
        // Judged after the deadline: exactly at the limit passes, a minute later blocks.
        // Before the deadline it is a task for the nurse whatever the last recorded dose.
        for (last_dose, now, expected) in [
            (deadline, deadline + Duration::minutes(1), Pass),
            (
                deadline + Duration::minutes(1),
                deadline + Duration::minutes(1),
                Block,
            ),
            (
                deadline - Duration::hours(12),
                deadline - Duration::minutes(1),
                ActionNeeded,
            ),
        ] {
            let mut s = Scenario::new("biopsy-liver");
            s.now = now;
            s.flags.creatinine_clearance = Some(crcl);
            s.drugs.push(DrugUse {
                drug: rule.drug.clone(),
                last_dose_at: Some(last_dose),
                dose_intent: rule.dose,
                indication: rule.indication.clone(),
            });
            let checklist = s.run();
            let item = checklist
                .item(&format!("hold.{}", rule.drug))
                .expect("hold item");
            assert_eq!(
                item.status, expected,
                "{} at CrCl {crcl}, {:?}: last dose {last_dose}, now {now}: {}",
                rule.drug, rule.dose, item.reason
            );
            assert_eq!(
                item.unverified,
                rule.evidence == Evidence::Unverified,
                "{}: {}",
                rule.drug,
                item.reason
            );
        }
    }
}

#[test]
fn holds_name_the_date_and_the_role() {
    let mut s = Scenario::new("biopsy-liver");
    s.drugs.push(DrugUse {
        drug: "clopidogrel".into(),
        last_dose_at: Some(now() - Duration::hours(2)),
        dose_intent: None,
        indication: None,
    });
    let checklist = s.run();
    let item = checklist.item("hold.clopidogrel").expect("item");
    // Clopidogrel: 5 days before Thu 26 Nov 08:00 is Sat 21 Nov — already past on Tue 24 Nov.
    assert_eq!(item.status, Block);
    let mut s = Scenario::new("biopsy-liver");
    s.now = start() - Duration::hours(51);
    s.drugs.push(DrugUse {
        drug: "apixaban".into(),
        last_dose_at: Some(s.now - Duration::hours(1)),
        dose_intent: None,
        indication: None,
    });
    let checklist = s.run();
    let item = checklist.item("hold.apixaban").expect("item");
    assert_eq!(item.status, ActionNeeded);
    assert_eq!(item.actions[0].role, crate::access::Role::IrNurse);
    assert_eq!(item.actions[0].due, Some(start() - Duration::hours(48)));
    assert!(
        item.reason.contains("Tue 24 Nov 2026 08:00 UTC"),
        "{}",
        item.reason
    );
}

#[test]
fn holds_need_renal_function_dose_and_indication_and_refuse_unknown_drugs() {
    let drug = |name: &str| DrugUse {
        drug: name.into(),
        last_dose_at: Some(now() - Duration::days(10)),
        dose_intent: None,
        indication: None,
    };
    let mut s = Scenario::new("biopsy-liver");
    s.flags.creatinine_clearance = None;
    s.drugs = vec![
        drug("dabigatran"),
        drug("enoxaparin"),
        drug("aspirin"),
        drug("herbal-x"),
        drug("atorvastatin"),
    ];
    let c = s.run();
    assert_eq!(
        c.item("hold.dabigatran").map(|i| i.status),
        Some(MissingData)
    );
    assert_eq!(
        c.item("hold.enoxaparin").map(|i| i.status),
        Some(MissingData)
    );
    assert_eq!(c.item("hold.aspirin").map(|i| i.status), Some(ActionNeeded));
    assert_eq!(
        c.item("hold.herbal-x").map(|i| i.status),
        Some(MissingData),
        "unknown drugs are never passed"
    );
    assert!(
        c.item("hold.atorvastatin").is_none(),
        "known non-antithrombotic drugs add no item"
    );
    let mut s = Scenario::new("paracentesis");
    s.drugs = vec![drug("apixaban")];
    assert_eq!(
        s.status("hold.apixaban"),
        Pass,
        "low-risk procedures: not withheld"
    );
    let mut s = Scenario::new("biopsy-liver");
    s.flags.high_thrombotic_risk = true;
    s.drugs = vec![drug("warfarin")];
    assert_eq!(s.status("bridging.warfarin"), ActionNeeded);
}

#[test]
fn contrast_allergy_premedication_windows() {
    let oral = value(ThresholdId::PremedicationElectiveOralFirstDoseHoursBefore);
    let iv = value(ThresholdId::PremedicationAcceleratedIvMinimumHoursBefore);
    for (hours_to_go, expected, first_action) in [
        (oral, ActionNeeded, "Prednisone 50 mg PO"),
        (oral - 0.1, ActionNeeded, "Methylprednisolone"),
        (iv, ActionNeeded, "Methylprednisolone"),
        (iv - 0.1, Block, "Use an alternative agent"),
    ] {
        let mut s = Scenario::new("tace");
        s.contrast = true;
        s.now = start() - Duration::minutes((hours_to_go * 60.0) as i64);
        s.patient.allergies.push(Allergy {
            class: AllergyClass::IodinatedContrast,
            substance: "iohexol".into(),
            reaction: "hives".into(),
        });
        let checklist = s.run();
        let item = checklist.item("contrast.allergy").expect("item");
        assert_eq!(item.status, expected, "{hours_to_go} h to go");
        assert!(
            item.actions[0].what.starts_with(first_action),
            "{hours_to_go} h: {:?}",
            item.actions
        );
    }
}

#[test]
fn renal_function_and_metformin_boundaries() {
    let limit = value(ThresholdId::EgfrContrastActionBelow);
    value(ThresholdId::MetforminHoldAfterContrastHours);
    for (egfr, renal, metformin) in [
        (limit, Pass, Pass),
        (limit - EPS, ActionNeeded, ActionNeeded),
    ] {
        let mut s = Scenario::new("tace").with_lab(LabTest::Egfr, egfr);
        s.contrast = true;
        s.drugs.push(DrugUse {
            drug: "metformin".into(),
            last_dose_at: None,
            dose_intent: None,
            indication: None,
        });
        assert_eq!(s.status("contrast.renal"), renal, "eGFR {egfr}");
        assert_eq!(s.status("contrast.metformin"), metformin, "eGFR {egfr}");
    }
    let window = value(ThresholdId::RecencyEgfrOutpatientHours);
    for (age, expected) in [(window, Pass), (window + 1.0, ActionNeeded)] {
        let mut s = Scenario::new("tace");
        s.contrast = true;
        s.labs.retain(|l| l.test != LabTest::Egfr);
        s.labs.push(lab(
            LabTest::Egfr,
            90.0,
            start() - Duration::hours(age as i64),
        ));
        assert_eq!(s.status("contrast.renal"), expected, "eGFR {age} h old");
    }
    let window = value(ThresholdId::RecencyEgfrInpatientHours);
    for (age, expected) in [(window, Pass), (window + 1.0, ActionNeeded)] {
        let mut s = Scenario::new("tace");
        s.contrast = true;
        s.now = start() - Duration::hours(1);
        s.setting = CareSetting::Admitted {
            since: start() - Duration::days(3),
        };
        s.labs.retain(|l| l.test != LabTest::Egfr);
        s.labs.push(lab(
            LabTest::Egfr,
            90.0,
            start() - Duration::hours(age as i64),
        ));
        assert_eq!(
            s.status("contrast.renal"),
            expected,
            "inpatient eGFR {age} h old"
        );
    }
    let mut s = Scenario::new("tace");
    s.contrast = true;
    s.flags.on_dialysis = true;
    assert_eq!(s.status("contrast.renal"), Pass, "dialysis: note, no block");
}

#[test]
fn pregnancy_age_band_boundaries() {
    let (min, max) = (
        value(ThresholdId::PregnancyAgeMinYears),
        value(ThresholdId::PregnancyAgeMaxYears),
    );
    // Ages on the procedure day (26 Nov 2026).
    let born = |age: f64| format!("{}-11-26", 2026 - age as i32);
    for (age, needs_status) in [
        (min - 1.0, false),
        (min, true),
        (max, true),
        (max + 1.0, false),
    ] {
        let mut s = Scenario::new("tace");
        s.modality = GuidanceModality::Fluoroscopy;
        s.patient = patient("female", &born(age));
        let c = s.run();
        assert_eq!(
            c.item("pregnancy").map(|i| i.status),
            // §3 (v2): no status on the day counts as unknown, which blocks.
            needs_status.then_some(Block),
            "age {age}"
        );
    }
    let mut s = Scenario::new("tace");
    s.modality = GuidanceModality::Fluoroscopy;
    s.patient = patient("female", "1996-01-01");
    s.patient.pregnancy = Some(PregnancyStatus {
        status: Pregnancy::NotPregnant,
        recorded_at: start() - Duration::hours(1),
    });
    assert_eq!(s.status("pregnancy"), Pass);
    s.patient.pregnancy = Some(PregnancyStatus {
        status: Pregnancy::Unknown,
        recorded_at: start() - Duration::hours(1),
    });
    assert_eq!(s.status("pregnancy"), Block);
    s.patient.pregnancy = Some(PregnancyStatus {
        status: Pregnancy::NotPregnant,
        recorded_at: start() - Duration::days(2),
    });
    assert_eq!(
        s.status("pregnancy"),
        Block,
        "not documented on the day counts as unknown (§3 v2)"
    );
    s.modality = GuidanceModality::Ultrasound;
    assert!(
        s.run().item("pregnancy").is_none(),
        "no ionising radiation: no item"
    );
}

#[test]
fn fasting_boundaries_for_each_intake() {
    type SetIntake = fn(&mut FastingRecord, DateTime<Utc>);
    let cases: [(ThresholdId, SetIntake); 4] = [
        (ThresholdId::FastingClearLiquidsHours, |f, t| {
            f.clear_liquids = Some(t)
        }),
        (ThresholdId::FastingBreastMilkHours, |f, t| {
            f.breast_milk = Some(t)
        }),
        (ThresholdId::FastingLightMealHours, |f, t| {
            f.light_meal = Some(t)
        }),
        (ThresholdId::FastingFattyMealHours, |f, t| {
            f.fatty_meal = Some(t)
        }),
    ];
    for (id, set) in cases {
        let h = value(id);
        for (hours_before, expected) in [(h, Pass), (h - 0.1, Block)] {
            let mut s = Scenario::new("biopsy-deep");
            s.sedation = Sedation::Moderate;
            let mut record = FastingRecord::default();
            set(
                &mut record,
                start() - Duration::minutes((hours_before * 60.0) as i64),
            );
            s.fasting = Some(record);
            assert_eq!(
                s.status("fasting"),
                expected,
                "{id:?} {hours_before} h before"
            );
        }
    }
    let mut s = Scenario::new("biopsy-superficial");
    s.fasting = None;
    assert!(
        s.run().item("fasting").is_none(),
        "local anaesthesia only: no fast"
    );
}

#[test]
fn asa_boundary_airway_latex_consent_and_time_out() {
    let from = value(ThresholdId::AsaAnaesthesiaReviewFrom) as u8;
    for (asa, expected) in [(from - 1, Pass), (from, ActionNeeded)] {
        let mut s = Scenario::new("biopsy-deep");
        s.flags.asa_class = Some(asa);
        assert_eq!(s.status("anaesthesia.review"), expected, "ASA {asa}");
    }
    let mut s = Scenario::new("biopsy-deep");
    s.sedation = Sedation::Moderate;
    s.flags.asa_class = None;
    assert_eq!(s.status("anaesthesia.review"), MissingData);
    s.flags.difficult_airway = true;
    assert_eq!(s.status("anaesthesia.review"), ActionNeeded);

    let mut s = Scenario::new("paracentesis");
    s.patient.allergies.push(Allergy {
        class: AllergyClass::Latex,
        substance: "latex".into(),
        reaction: String::new(),
    });
    assert_eq!(s.status("allergy.latex"), ActionNeeded);
    assert_eq!(s.status("consent"), Pass);
    assert_eq!(
        s.status("time_out"),
        Pass,
        "not outstanding before the room"
    );
}

#[test]
fn a_ready_case_is_ready_and_the_worst_item_decides() {
    let s = Scenario::new("paracentesis");
    let c = s.run();
    assert!(c.items.iter().all(|i| i.status == Pass), "{:?}", c.items);
    assert_eq!(c.overall, Pass, "a case with everything in order is ready");
    let c = Scenario::new("biopsy-liver")
        .with_lab(LabTest::Inr, 2.5)
        .run();
    assert_eq!(c.overall, Block);
    assert!(c
        .items
        .iter()
        .all(|i| i.citation.starts_with("clinical-rules.md §")));
}

#[test]
fn held_drugs_get_a_dated_resumption_from_the_planned_end() {
    let end = start() + Duration::hours(1);
    let from = value(ThresholdId::ResumeDoacHighRiskFromHours);
    let until = value(ThresholdId::ResumeDoacHighRiskUntilHours);
    let warfarin = value(ThresholdId::ResumeWarfarinHighRiskHours);
    for (drug, due, text) in [
        (
            "apixaban",
            end + Duration::hours(from as i64),
            format!("{from}-{until} h after"),
        ),
        (
            "warfarin",
            end + Duration::hours(warfarin as i64),
            format!("{warfarin} h after"),
        ),
    ] {
        let mut s = Scenario::new("biopsy-liver");
        s.drugs.push(DrugUse {
            drug: drug.into(),
            last_dose_at: Some(now() - Duration::days(10)),
            dose_intent: None,
            indication: None,
        });
        let c = s.run();
        let item = c.item(&format!("hold.{drug}")).expect("hold");
        let resume = item
            .actions
            .iter()
            .find(|a| a.what.starts_with("Resume"))
            .expect("resume action");
        assert_eq!(resume.due, Some(due), "{drug}");
        assert!(
            resume.what.contains(&text)
                && resume.what.ends_with("(reference value not yet verified)"),
            "{}",
            resume.what
        );
        assert_eq!(resume.role, crate::access::Role::IrPhysician);
    }
}

#[test]
fn dose_levels_review_skin_check_and_notifications_follow_the_table() {
    use crate::dose::{
        assess, notifications_due, DoseMeasure, DoseTotals, Gray, GrayMetreSquared, Seconds,
    };
    let end = start() + Duration::hours(2);
    let kar = value(ThresholdId::DoseSrdlReferenceAirKerma);
    let psd = value(ThresholdId::DoseSrdlPeakSkinDose);
    let kap = value(ThresholdId::DoseSrdlKermaAreaProduct);
    let fluoro_min = value(ThresholdId::DoseSrdlFluoroscopyTime);
    type Totals = fn(f64) -> DoseTotals;
    let cases: [(DoseMeasure, Totals, f64); 4] = [
        (
            DoseMeasure::ReferenceAirKerma,
            |v| DoseTotals {
                reference_air_kerma: Some(Gray(v)),
                ..Default::default()
            },
            kar,
        ),
        (
            DoseMeasure::PeakSkinDose,
            |v| DoseTotals {
                peak_skin_dose: Some(Gray(v)),
                ..Default::default()
            },
            psd,
        ),
        (
            DoseMeasure::KermaAreaProduct,
            |v| DoseTotals {
                kerma_area_product: Some(GrayMetreSquared(v)),
                ..Default::default()
            },
            kap,
        ),
        (
            DoseMeasure::FluoroscopyTime,
            |minutes| DoseTotals {
                fluoroscopy_time: Some(Seconds(minutes * 60.0)),
                ..Default::default()
            },
            fluoro_min,
        ),
    ];
    for (measure, totals, level) in cases {
        let below = assess(&totals(level * 0.999), end, reference());
        assert!(!below.substantial(), "{measure:?} just below the level");
        let at = assess(&totals(level), end, reference());
        assert_eq!(
            at.levels_reached.len(),
            1,
            "{measure:?} at the level: reached"
        );
        assert_eq!(at.levels_reached[0].measure, measure);
        assert!(at.unverified, "§5 values are U");
        assert_eq!(
            at.not_reported.len(),
            3,
            "the other three measures were not given"
        );
    }
    // 500 Gy·cm² is the KAP level.
    assert_eq!(
        GrayMetreSquared::from_gray_square_centimetres(500.0),
        GrayMetreSquared(kap)
    );

    let from = value(ThresholdId::DoseSkinCheckFromDays);
    let until = value(ThresholdId::DoseSkinCheckUntilDays);
    let window = assess(&cases[0].1(kar), end, reference())
        .skin_check
        .expect("skin check");
    assert_eq!(window.from, end + Duration::days(from as i64));
    assert_eq!(window.until, end + Duration::days(until as i64));

    let review_kar = value(ThresholdId::DosePhysicistReviewReferenceAirKermaAbove);
    let review_psd = value(ThresholdId::DosePhysicistReviewPeakSkinDoseAbove);
    for (totals, review) in [
        (
            DoseTotals {
                reference_air_kerma: Some(Gray(review_kar)),
                ..Default::default()
            },
            false,
        ),
        (
            DoseTotals {
                reference_air_kerma: Some(Gray(review_kar + EPS)),
                ..Default::default()
            },
            true,
        ),
        (
            DoseTotals {
                peak_skin_dose: Some(Gray(review_psd)),
                ..Default::default()
            },
            false,
        ),
        (
            DoseTotals {
                peak_skin_dose: Some(Gray(review_psd + EPS)),
                ..Default::default()
            },
            true,
        ),
    ] {
        assert_eq!(
            assess(&totals, end, reference()).physicist_review,
            review,
            "{totals:?}"
        );
    }

    let first = value(ThresholdId::DoseNotifyReferenceAirKermaFirst);
    let step = value(ThresholdId::DoseNotifyReferenceAirKermaStep);
    assert!(notifications_due(Gray(first - EPS), reference()).is_empty());
    assert_eq!(notifications_due(Gray(first), reference()), [Gray(first)]);
    assert_eq!(
        notifications_due(Gray(first + 2.0 * step + EPS), reference()).len(),
        3
    );
}

#[test]
fn every_threshold_is_exercised() {
    // Run the boundary tests in this thread, then check none of the table was left untested.
    inr_boundaries_for_each_bleeding_risk_class();
    platelet_boundaries_including_liver_disease();
    coagulation_lab_recency_boundaries();
    contrast_allergy_premedication_windows();
    renal_function_and_metformin_boundaries();
    pregnancy_age_band_boundaries();
    fasting_boundaries_for_each_intake();
    asa_boundary_airway_latex_consent_and_time_out();
    held_drugs_get_a_dated_resumption_from_the_planned_end();
    dose_levels_review_skin_check_and_notifications_follow_the_table();
    aldrete_discharge_criteria_follow_the_table();
    device_and_treatment_follow_up_windows_follow_the_table();
    every_case_gets_its_outcome_check_when_the_attribution_window_ends();
    the_arterial_inr_rows_pass_below_their_limit_and_block_at_it();
    a_sheath_above_seven_french_makes_an_arterial_procedure_high_risk();
    let untested: Vec<&str> = EXERCISED.with(|e| {
        let e = e.borrow();
        ThresholdId::ALL
            .iter()
            .map(|id| id.as_str())
            .filter(|id| !e.contains(id))
            .collect()
    });
    assert!(
        untested.is_empty(),
        "thresholds without a boundary test: {untested:?}"
    );
}

#[test]
fn time_outs_are_recognised() {
    let mut s = Scenario::new("paracentesis");
    s.fasting = None;
    let mut c = s.run();
    assert!(c
        .item("time_out")
        .is_some_and(|i| i.reason.starts_with("Done in the room")));
    let input_time_out = TimeOut {
        completed_at: start(),
        team_introduced: true,
        patient_identity_confirmed: true,
        procedure_and_site_confirmed: true,
        consent_confirmed: true,
        imaging_available: true,
        equipment_available: true,
    };
    let procedure = catalogue().find("paracentesis").expect("procedure");
    let input = SafetyInput {
        procedure,
        modality: GuidanceModality::Ultrasound,
        sedation: Sedation::Local,
        iodinated_contrast: false,
        access_route: None,
        sheath_french: None,
        planned_start: start(),
        planned_end: start() + Duration::hours(1),
        now: start(),
        setting: CareSetting::ScheduledOutpatient,
        patient: &s.patient,
        flags: s.flags.clone(),
        drugs: vec![],
        labs: s.labs.clone(),
        fasting: None,
        consent: Some(ConsentRecord {
            recorded_at: now(),
            recorded_by: "dr.test".into(),
        }),
        time_out: Some(input_time_out),
        time: crate::DepartmentTime::default(),
    };
    c = evaluate(&input, reference());
    assert_eq!(c.overall, Pass);
}

#[test]
fn aldrete_discharge_criteria_follow_the_table() {
    use crate::procedure_record::AldreteScore;
    let total = value(ThresholdId::RecoveryAldreteDischargeTotalAtLeast) as u8;
    let item = value(ThresholdId::RecoveryAldreteItemAtLeast) as u8;
    // Spread a total over the five items (each 0-2), highest first.
    let score = |sum: u8, floor: u8| {
        let mut items = [floor; 5];
        let mut rest = sum.saturating_sub(floor * 5);
        for slot in items.iter_mut() {
            let add = rest.min(2 - *slot);
            *slot += add;
            rest -= add;
        }
        AldreteScore {
            at: now(),
            activity: items[0],
            respiration: items[1],
            circulation: items[2],
            consciousness: items[3],
            oxygen_saturation: items[4],
        }
    };
    let at_level = score(total, item).readiness(reference());
    assert!(at_level.ready, "{at_level:?}");
    assert!(at_level.citation.contains("§4"));
    let below = score(total - 1, item).readiness(reference());
    assert!(
        !below.ready && below.reasons[0].contains("below"),
        "{below:?}"
    );
    // The total reached with one item under the item minimum: not ready.
    let mut zero_item = score(10, 0);
    zero_item.activity = item - 1;
    zero_item.respiration = 2;
    zero_item.circulation = 2;
    zero_item.consciousness = 2;
    zero_item.oxygen_saturation = 2;
    if zero_item.total() >= total {
        let r = zero_item.readiness(reference());
        assert!(
            !r.ready && r.reasons.iter().any(|x| x.contains("activity")),
            "{r:?}"
        );
    }
}

#[test]
fn device_and_treatment_follow_up_windows_follow_the_table() {
    use crate::catalogue::FollowUpKind as C;
    use crate::followup::{procedure_follow_ups, FollowUpKind};
    use uuid::Uuid;
    let discharged = now();
    let days = |id| Duration::days(value(id) as i64);
    let weeks = |id| Duration::weeks(value(id) as i64);
    let months = |id| {
        discharged
            .checked_add_months(chrono::Months::new(value(id) as u32))
            .expect("date")
    };
    type T = ThresholdId;
    let expected = [
        (
            C::IvcFilterRetrievalReview,
            FollowUpKind::IvcFilterRetrievalReview,
            discharged + days(T::FollowupIvcFilterRetrievalFromDays),
            Some(discharged + days(T::FollowupIvcFilterRetrievalUntilDays)),
        ),
        (
            C::NephrostomyExchange,
            FollowUpKind::NephrostomyExchange,
            discharged + weeks(T::FollowupNephrostomyExchangeFromWeeks),
            Some(discharged + weeks(T::FollowupNephrostomyExchangeUntilWeeks)),
        ),
        (
            C::BiliaryDrainExchange,
            FollowUpKind::BiliaryDrainExchange,
            discharged + weeks(T::FollowupBiliaryDrainExchangeFromWeeks),
            Some(discharged + weeks(T::FollowupBiliaryDrainExchangeUntilWeeks)),
        ),
        (
            C::GastrostomyExchange,
            FollowUpKind::GastrostomyExchange,
            months(T::FollowupGastrostomyExchangeFromMonths),
            Some(months(T::FollowupGastrostomyExchangeUntilMonths)),
        ),
        (
            C::PortFlush,
            FollowUpKind::PortFlush,
            discharged + weeks(T::FollowupPortFlushWeeks),
            Some(discharged + weeks(T::FollowupPortFlushWeeks)),
        ),
        (
            C::PostAblationImaging,
            FollowUpKind::PostAblationImaging,
            months(T::FollowupPostAblationImagingMonths),
            Some(months(T::FollowupPostAblationImagingMonths)),
        ),
        (
            C::PostTaceImaging,
            FollowUpKind::PostTaceImaging,
            discharged + weeks(T::FollowupPostTaceImagingFromWeeks),
            Some(discharged + weeks(T::FollowupPostTaceImagingUntilWeeks)),
        ),
        (
            C::ClinicReview,
            FollowUpKind::ClinicReview,
            discharged,
            None,
        ),
        (C::DrainReview, FollowUpKind::DrainReview, discharged, None),
    ];
    let mut procedure = catalogue().procedures[0].clone();
    for (catalogue_kind, task_kind, from, until) in expected {
        procedure.follow_up = vec![catalogue_kind];
        let tasks = procedure_follow_ups(
            crate::CaseId(Uuid::from_u128(1)),
            crate::PatientId(Uuid::from_u128(2)),
            &procedure,
            discharged,
            reference(),
            || Uuid::from_u128(3),
        );
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].kind, task_kind);
        assert_eq!(
            (tasks[0].due_from, tasks[0].due_until),
            (from, until),
            "{task_kind:?}"
        );
        assert_eq!(tasks[0].citation, "clinical-rules.md §7");
    }
}

fn every_case_gets_its_outcome_check_when_the_attribution_window_ends() {
    use crate::followup::{outcome_check, FollowUpKind};
    use uuid::Uuid;
    let meta = crate::EventMeta {
        actor: crate::Actor::parse("dr.okafor").expect("actor"),
        at: start(),
        reason: None,
    };
    let (mut case, _) = crate::Case::open(
        crate::CaseId(Uuid::from_u128(1)),
        crate::PatientId(Uuid::from_u128(2)),
        crate::ReferralId(Uuid::from_u128(3)),
        crate::Urgency::Routine,
        None,
        &meta,
    );
    case.procedure_started_at = Some(start());
    let discharged = start() + Duration::hours(4);
    let task = outcome_check(&case, discharged, reference(), Uuid::from_u128(4));
    assert_eq!(task.kind, FollowUpKind::OutcomeCheck);
    // Counted from the procedure, not the discharge; no end: it stays owed until done.
    let window = Duration::days(value(ThresholdId::OutcomeCheckAfterDays) as i64);
    assert_eq!((task.due_from, task.due_until), (start() + window, None));
    assert_eq!(task.citation, "clinical-rules.md §6");
}

#[test]
fn texts_and_the_day_follow_the_department_time_zone() {
    let auckland = crate::DepartmentTime::parse("Pacific/Auckland").expect("zone");
    let mut s = Scenario::new("tace");
    s.time = auckland;
    s.modality = GuidanceModality::Fluoroscopy;
    let old_inr = Utc
        .with_ymd_and_hms(2026, 9, 1, 20, 0, 0)
        .single()
        .expect("valid");
    s.labs.retain(|l| l.test != LabTest::Inr);
    s.labs.push(lab(LabTest::Inr, 1.0, old_inr));
    // A pregnancy test at 01:00 on the 26th in Auckland is 12:00 on the 25th in UTC; the
    // procedure at 21:00 on the 26th there is the same local day.
    s.patient = patient("female", "1996-01-01");
    s.patient.pregnancy = Some(PregnancyStatus {
        status: Pregnancy::NotPregnant,
        recorded_at: Utc
            .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
            .single()
            .expect("valid"),
    });
    let c = s.run();
    let inr = c.item("coagulation.inr").expect("inr item");
    assert!(
        inr.reason.contains("Wed 02 Sep 2026 08:00 NZST"),
        "{}",
        inr.reason
    );
    assert_eq!(s.status("pregnancy"), Pass);
    s.time = crate::DepartmentTime::default();
    assert_eq!(
        s.status("pregnancy"),
        Block,
        "in UTC the test was the day before: unknown on the day"
    );
}

#[test]
fn cockcroft_gault_is_the_published_formula() {
    use crate::patient::Sex;
    // clinical-rules.md §1.3: (140 − age) × weight ÷ (72 × creatinine mg/dL), × 0.85 for females.
    let male = cockcroft_gault(60, 80.0, 1.0, Sex::Male);
    assert!((male - 6400.0 / 72.0).abs() < 1e-9, "{male}");
    let female = cockcroft_gault(60, 80.0, 1.0, Sex::Female);
    assert!((female - 6400.0 / 72.0 * 0.85).abs() < 1e-9, "{female}");
    // Sex other or unknown: the lower (female) estimate (D).
    assert_eq!(cockcroft_gault(60, 80.0, 1.0, Sex::Other), female);
    assert_eq!(cockcroft_gault(60, 80.0, 1.0, Sex::Unknown), female);
}

/// A dabigatran patient with no recorded CrCl: male, 68 on the day, 100 kg, so the estimate is
/// 100 ÷ creatinine (mL/min).
fn estimated_crcl_scenario(creatinine: f64) -> Scenario {
    let mut s = Scenario::new("biopsy-liver");
    s.flags.creatinine_clearance = None;
    s.patient = patient("male", "1958-11-26");
    s.patient.weight_kg = Some(crate::patient::BodyWeightKg::parse(100.0).expect("weight"));
    s.labs.push(lab(LabTest::Creatinine, creatinine, now()));
    s.drugs.push(DrugUse {
        drug: "dabigatran".into(),
        // Exactly 48 h before the start: passes the ≥ 50 row (2 days), not the 30–49 row (4 days).
        last_dose_at: Some(start() - Duration::hours(48)),
        dose_intent: None,
        indication: None,
    });
    s.now = start() - Duration::hours(1);
    s
}

#[test]
fn a_missing_creatinine_clearance_is_estimated_at_the_boundaries_of_its_rows() {
    // CrCl 50 exactly (creatinine 2.0): the ≥ 50 row, 2 days: the dose 48 h before passes.
    for (creatinine, expected, crcl) in [
        (2.0, Pass, "CrCl 50 mL/min"),
        // Just below 50: the 30–49 row, 4 days: the same dose is too late.
        (2.01, Block, "CrCl 50 mL/min"),
        // Just above 50.
        (1.99, Pass, "CrCl 50 mL/min"),
    ] {
        let s = estimated_crcl_scenario(creatinine);
        let c = s.run();
        let item = c.item("hold.dabigatran").expect("hold");
        assert_eq!(
            item.status, expected,
            "creatinine {creatinine}: {}",
            item.reason
        );
        assert!(
            item.reason.contains("estimated (Cockcroft–Gault)")
                && item.reason.contains("age 68")
                && item.reason.contains("weight 100 kg")
                && item
                    .reason
                    .contains(&format!("creatinine {creatinine} mg/dL"))
                && item.reason.contains("male"),
            "the inputs are shown: {}",
            item.reason
        );
        // Rounded for display; the row is chosen on the unrounded value.
        assert!(item.reason.contains(crcl), "{}", item.reason);
    }
    // A recorded CrCl wins over the estimate.
    let mut s = estimated_crcl_scenario(2.01);
    s.flags.creatinine_clearance = Some(80.0);
    let c = s.run();
    let item = c.item("hold.dabigatran").expect("hold");
    assert_eq!(item.status, Pass);
    assert!(!item.reason.contains("estimated"), "{}", item.reason);
}

#[test]
fn without_weight_or_a_recent_creatinine_the_clearance_is_missing_data() {
    let mut s = estimated_crcl_scenario(1.0);
    s.patient.weight_kg = None;
    let c = s.run();
    let item = c.item("hold.dabigatran").expect("hold");
    assert_eq!(item.status, MissingData);
    assert!(item.reason.contains("a recorded weight"), "{}", item.reason);
    // A creatinine older than the eGFR recency of §2 does not count.
    let mut s = estimated_crcl_scenario(1.0);
    let window = value(ThresholdId::RecencyEgfrOutpatientHours);
    s.labs.retain(|l| l.test != LabTest::Creatinine);
    s.labs.push(lab(
        LabTest::Creatinine,
        1.0,
        start() - Duration::minutes((window * 60.0) as i64 + 1),
    ));
    let c = s.run();
    let item = c.item("hold.dabigatran").expect("hold");
    assert_eq!(item.status, MissingData, "{}", item.reason);
    assert!(
        item.reason.contains("a creatinine above 0 drawn within"),
        "{}",
        item.reason
    );
    // A creatinine of 0 estimates nothing: missing data, never an infinite clearance that passes.
    let zero = estimated_crcl_scenario(0.0);
    assert_eq!(zero.status("hold.dabigatran"), MissingData);
    // Exactly at the edge of the window it counts.
    let mut s = estimated_crcl_scenario(1.0);
    s.labs.retain(|l| l.test != LabTest::Creatinine);
    s.labs.push(lab(
        LabTest::Creatinine,
        1.0,
        start() - Duration::minutes((window * 60.0) as i64),
    ));
    assert_ne!(s.status("hold.dabigatran"), MissingData);
}

fn arterial(procedure: &'static str, route: &str, sheath: Option<f64>) -> Scenario {
    let mut s = Scenario::new(procedure);
    s.modality = GuidanceModality::Fluoroscopy;
    s.patient = patient("male", "1950-01-01");
    s.access_route = Some(crate::catalogue::AccessRoute::parse(route).expect("route"));
    s.sheath_french = sheath.map(|f| crate::catalogue::SheathFrench::parse(f).expect("sheath"));
    s
}

#[test]
fn the_arterial_inr_rows_pass_below_their_limit_and_block_at_it() {
    // clinical-rules.md §1.2 (v2): low risk, arterial access: femoral < 1.8, radial < 2.2 pass.
    for (route, id) in [
        ("femoral", ThresholdId::InrArterialFemoralPassBelow),
        ("radial", ThresholdId::InrArterialRadialPassBelow),
    ] {
        let limit = value(id);
        for (inr, expected) in [(limit - EPS, Pass), (limit, Block), (limit + EPS, Block)] {
            let s =
                arterial("diagnostic-angiography", route, Some(5.0)).with_lab(LabTest::Inr, inr);
            let c = s.run();
            let item = c.item("coagulation.inr").expect("inr");
            assert_eq!(item.status, expected, "{route} INR {inr}: {}", item.reason);
            assert!(item.reason.contains(route), "{}", item.reason);
        }
    }
    // Brachial or pedal: the reference gives no arterial value, a physician confirms.
    let s = arterial("diagnostic-angiography", "brachial", Some(5.0)).with_lab(LabTest::Inr, 1.2);
    assert_eq!(s.status("coagulation.inr"), ActionNeeded);
    // Venous access keeps the ordinary low-risk row (≤ 2.0 passes).
    let s = arterial("diagnostic-angiography", "venous", None).with_lab(LabTest::Inr, 1.9);
    assert_eq!(s.status("coagulation.inr"), Pass);
}

#[test]
fn an_unrouted_low_risk_arterial_inr_passes_only_where_every_arterial_row_passes() {
    // clinical-rules.md §1.2 (v3 clarification): below 1.8 every arterial row passes; from 1.8
    // the route decides, so the INR item is missing data too — never "pass: at or below 2".
    let femoral = value(ThresholdId::InrArterialFemoralPassBelow);
    for (inr, expected) in [
        (femoral - EPS, Pass),
        (femoral, MissingData),
        (1.9, MissingData),
        (2.0, MissingData),
    ] {
        let mut s = Scenario::new("diagnostic-angiography");
        s.modality = GuidanceModality::Fluoroscopy;
        s.patient = patient("male", "1950-01-01");
        let c = s.with_lab(LabTest::Inr, inr).run();
        let item = c.item("coagulation.inr").expect("inr");
        assert_eq!(item.status, expected, "INR {inr}: {}", item.reason);
        if expected == MissingData {
            assert!(
                item.reason.starts_with("Missing data: access route"),
                "{}",
                item.reason
            );
            assert_eq!(item.actions[0].role, crate::access::Role::IrPhysician);
        }
    }
    // A procedure that never reaches the arteries keeps the ordinary low-risk row.
    let s = Scenario::new("paracentesis").with_lab(LabTest::Inr, 1.9);
    assert_eq!(s.status("coagulation.inr"), Pass);
}

#[test]
fn a_low_risk_arterial_procedure_without_an_access_route_is_missing_data() {
    let mut s = Scenario::new("diagnostic-angiography");
    s.modality = GuidanceModality::Fluoroscopy;
    s.patient = patient("male", "1950-01-01");
    let c = s.run();
    let item = c.item("plan.access_route").expect("access item");
    assert_eq!(item.status, MissingData);
    assert!(
        item.reason.starts_with("Missing data: access route"),
        "{}",
        item.reason
    );
    assert_eq!(item.actions[0].role, crate::access::Role::IrPhysician);
    // Recorded, it passes; a procedure that never reaches the arteries has no such item.
    assert_eq!(
        arterial("diagnostic-angiography", "radial", Some(5.0)).status("plan.access_route"),
        Pass
    );
    assert!(Scenario::new("paracentesis")
        .run()
        .item("plan.access_route")
        .is_none());
}

#[test]
fn a_sheath_above_seven_french_makes_an_arterial_procedure_high_risk() {
    let limit = value(ThresholdId::SheathArterialHighRiskAbove);
    // INR 1.6 passes femoral low-risk (< 1.8) but is above the high-risk pass (≤ 1.5).
    for (sheath, high) in [(limit - 1.0, false), (limit, false), (limit + 1.0, true)] {
        let s =
            arterial("peripheral-angioplasty", "femoral", Some(sheath)).with_lab(LabTest::Inr, 1.6);
        let c = s.run();
        let inr = c.item("coagulation.inr").expect("inr");
        let plan = c.item("plan.access_route").expect("plan");
        if high {
            assert_eq!(
                inr.status, ActionNeeded,
                "{sheath} F: high-risk range: {}",
                inr.reason
            );
            assert!(
                plan.reason.contains("high bleeding risk"),
                "{}",
                plan.reason
            );
        } else {
            assert_eq!(inr.status, Pass, "{sheath} F: {}", inr.reason);
        }
    }
    // Just above the limit (7.1 F).
    let s = arterial("peripheral-angioplasty", "femoral", Some(limit + 0.1))
        .with_lab(LabTest::Inr, 1.6);
    assert_eq!(s.status("coagulation.inr"), ActionNeeded);
    // A large venous sheath does not re-class.
    let s = arterial("peripheral-angioplasty", "venous", Some(10.0)).with_lab(LabTest::Inr, 1.6);
    assert_eq!(s.status("coagulation.inr"), Pass);
}
