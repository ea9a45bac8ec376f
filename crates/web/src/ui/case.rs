//! The case page: patient banner (allergies and alerts always in view), what to do next, the
//! safety checklist with each item's reason and source, drugs and labs, the referral, dose, the
//! follow-up owed, and the case history. Every form posts to `/cases/{id}/do`; a refused form
//! comes back with each error beside its field and the input kept, and a stale one says that
//! someone else changed the case.

use super::{api_error_page, render, NavItem, Viewer};
use crate::auth::Audit;
use crate::problem::ApiError;
use crate::routes::cases::{case_id as parse_case_id, load, parse_event};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, NaiveDateTime, Utc};
use seldinger_app::{CaseEventRequest, Correction};
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::clinical::{LabResult, LabResultInput, LabTest, Medication, MedicationInput};
use seldinger_domain::dose::{assess, case_totals};
use seldinger_domain::followup::dose_discharge_note;
use seldinger_domain::lifecycle::{Case, CaseEvent};
use seldinger_domain::patient::PatientEvent;
use seldinger_domain::safety::ItemStatus;
use seldinger_domain::DepartmentTime;
use seldinger_domain::GuidanceModality;
use seldinger_store::FollowUpFilter;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// snake_case name of a serialised enum, as words.
fn words<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

/// A time as the department's wall clock shows it.
fn when(time: &DepartmentTime, t: DateTime<Utc>) -> String {
    time.format(t, "%Y-%m-%d %H:%M")
}

pub struct Row {
    pub cells: Vec<String>,
}

pub struct ChecklistRow {
    pub class: &'static str,
    pub status: &'static str,
    pub rule: String,
    pub title: String,
    pub reason: String,
    pub actions: Vec<String>,
    pub citation: String,
    pub unverified: bool,
    pub blocking: bool,
}

/// Vital signs over time as a small inline SVG (the table beside it is the accessible version).
pub struct Chart {
    pub heart_rate: String,
    pub systolic: String,
    pub spo2: String,
    pub span_minutes: i64,
}

fn chart(vitals: &[seldinger_domain::procedure_record::VitalSigns]) -> Option<Chart> {
    let first = vitals.iter().map(|v| v.at).min()?;
    let last = vitals.iter().map(|v| v.at).max()?;
    let span = (last - first).num_minutes().max(1);
    let series = |get: &dyn Fn(&seldinger_domain::procedure_record::VitalSigns) -> Option<u16>| {
        let mut points: Vec<(i64, u16)> = vitals
            .iter()
            .filter_map(|v| get(v).map(|y| ((v.at - first).num_minutes(), y)))
            .collect();
        points.sort_by_key(|p| p.0);
        points
            .iter()
            .map(|(x, y)| {
                // 560 × 160 plot; 0-200 on the vertical axis.
                let px = 30 + x * 560 / span;
                let py = 170 - i64::from((*y).min(200)) * 160 / 200;
                format!("{px},{py}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(Chart {
        heart_rate: series(&|v| v.heart_rate),
        systolic: series(&|v| v.systolic),
        spo2: series(&|v| v.spo2.map(u16::from)),
        span_minutes: span,
    })
}

/// The choices of the complication form, as the domain names them (serde).
const SEVERITIES: &[&str] = &["mild", "moderate", "severe", "life_threatening", "death"];
/// CIRSE grades (clinical-rules.md §6), as the form offers them.
const CIRSE_GRADES: &[(&str, &str)] = &[
    ("1", "1 — solved in the same session, no sequelae"),
    ("2", "2 — prolonged observation or overnight stay (< 48 h)"),
    ("3", "3 — additional therapy or stay > 48 h, no sequelae"),
    ("4", "4 — permanent mild sequelae"),
    ("5", "5 — permanent severe sequelae"),
    ("6", "6 — death"),
];

pub struct Action {
    pub event: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    /// The department's time zone, named beside every time.
    zone: &'static str,
    case_id: String,
    version: u64,
    patient_version: u64,
    patient_name: String,
    mrn: String,
    age: u32,
    sex: String,
    birth_date: String,
    weight: String,
    allergies: Vec<String>,
    alerts: Vec<String>,
    /// The patient's devices still in place (any case the viewer may see), with their plan.
    devices_in_place: Vec<(String, &'static str)>,
    state: String,
    state_key: &'static str,
    procedure: String,
    /// The planned access route and sheath ("femoral, 6 F"; empty when none is recorded).
    access_plan: String,
    /// The recorded route and sheath, to pre-fill the form that changes them.
    access_route: String,
    sheath_french: String,
    /// An IR physician may record or change the access plan before the room.
    can_revise_access: bool,
    access_routes: Vec<&'static str>,
    booking: String,
    accession: String,
    referral: Vec<(String, String)>,
    actions: Vec<Action>,
    /// Why the recovery criteria hold a sedated patient; discharging now needs a reason.
    discharge_unmet: Vec<String>,
    can_schedule: bool,
    /// A referral waiting for this user's decision.
    can_vet: bool,
    can_start: bool,
    can_cancel: bool,
    can_override: bool,
    can_record: bool,
    rooms: Vec<(String, String)>,
    checklist: Vec<ChecklistRow>,
    checklist_overall: String,
    overrides: Vec<String>,
    medications: Vec<EntryRow>,
    labs: Vec<EntryRow>,
    /// Whether the viewer sees the patient's record (labs, drugs and their history).
    shows_record: bool,
    /// The checklist items, blocked or missing data, that stop the start ("title (status)").
    start_stopped_by: Vec<String>,
    lab_tests: Vec<&'static str>,
    /// (field, label, ticked in the refused form)
    time_out_items: Vec<(&'static str, &'static str, bool)>,
    dose: Option<Vec<(String, String)>>,
    dose_note: Option<String>,
    /// What the room's imaging systems reported (MPPS): one row per performed step.
    imaging: Vec<Row>,
    follow_ups: Vec<Row>,
    history: Vec<Row>,
    record_open: bool,
    complication_open: bool,
    in_recovery: bool,
    vitals_phase: &'static str,
    procedure_lines: Vec<(String, String)>,
    has_record: bool,
    drugs_given: Vec<Row>,
    vitals: Vec<Row>,
    chart: Option<Chart>,
    devices: Vec<Row>,
    complications: Vec<Row>,
    /// The case's adverse events (§6) from the registry, with their forms.
    adverse_events: Vec<AdverseEventRow>,
    /// The procedure has begun: adverse events may be reported.
    procedure_begun: bool,
    can_report_adverse: bool,
    can_attribute_adverse: bool,
    detected_choices: Vec<&'static str>,
    outcome_choices: Vec<&'static str>,
    /// Adverse event kinds, coded (value, label).
    category_choices: Vec<(&'static str, &'static str)>,
    recovery: Option<(bool, String)>,
    modalities: Vec<&'static str>,
    device_kinds: Vec<&'static str>,
    severities: Vec<&'static str>,
    cirse_grades: &'static [(&'static str, &'static str)],
    aldrete_items: &'static [(&'static str, &'static str)],
    /// "form.field" → message for a refused form.
    errors: HashMap<String, String>,
    /// What was typed into the refused form.
    input: HashMap<String, String>,
    notice: Option<String>,
}

impl CasePage<'_> {
    pub fn error(&self, key: &str) -> String {
        self.errors.get(key).cloned().unwrap_or_default()
    }

    pub fn has_error(&self, key: &str) -> bool {
        self.errors.contains_key(key)
    }

    pub fn value(&self, key: &str) -> String {
        self.input.get(key).cloned().unwrap_or_default()
    }

    /// What the user typed into a refused form, else the recorded value.
    pub fn value_or(&self, key: &str, recorded: &str) -> String {
        self.input
            .get(key)
            .cloned()
            .unwrap_or_else(|| recorded.to_string())
    }

    /// A correction form's field: what the user typed into it if it was refused, else the
    /// entry's current value.
    pub fn entry_value(&self, row: &EntryRow, form: &str, field: &str) -> String {
        let key = row.key(form, field);
        if self.input.contains_key(&row.key(form, "form")) {
            self.value(&key)
        } else {
            row.values.get(field).cloned().unwrap_or_default()
        }
    }

    pub fn entry_error(&self, row: &EntryRow, form: &str, field: &str) -> String {
        self.error(&row.key(form, field))
    }

    /// The row's correction forms stay open when one of them was refused. (Lab and drug entry
    /// numbers come from different tables and may coincide, so the row's own forms are asked.)
    pub fn entry_open(&self, row: &EntryRow) -> bool {
        row.forms
            .iter()
            .any(|form| self.input.contains_key(&row.key(form, "form")))
    }
}

/// An adverse event on the case page, with what its correction form starts from.
pub struct AdverseEventRow {
    pub id: String,
    pub version: u64,
    pub cells: Vec<String>,
    /// Withdrawn as entered in error: by whom and why.
    pub withdrawn: Option<String>,
    values: HashMap<&'static str, String>,
}

impl AdverseEventRow {
    /// Where a row form's field errors and kept input live: "form:id.field".
    pub fn key(&self, form: &str, field: &str) -> String {
        format!("{form}:{}.{field}", self.id)
    }

    pub fn recorded(&self, field: &str) -> String {
        self.values.get(field).cloned().unwrap_or_default()
    }
}

/// A lab or drug on the record, with what its correction form starts from.
pub struct EntryRow {
    pub entry: u64,
    pub cells: Vec<String>,
    /// The row's correction and withdrawal forms.
    forms: [&'static str; 2],
    values: HashMap<&'static str, String>,
}

impl EntryRow {
    /// Where a correction form's field errors and kept input live: "form:entry.field".
    pub fn key(&self, form: &str, field: &str) -> String {
        format!("{form}:{}.{field}", self.entry)
    }
}

/// A time as a `datetime-local` input shows it (the department's wall clock); seconds only when
/// there are some, so an unchanged field does not silently move a recorded time.
fn local_input(time: &DepartmentTime, at: DateTime<Utc>) -> String {
    use chrono::Timelike;
    let pattern = match (at.second(), at.nanosecond()) {
        (0, 0) => "%Y-%m-%dT%H:%M",
        (_, 0) => "%Y-%m-%dT%H:%M:%S",
        _ => "%Y-%m-%dT%H:%M:%S%.3f",
    };
    time.format(at, pattern)
}

fn adverse_event_row(state: &AppState, s: &seldinger_app::AdverseEventStanding) -> AdverseEventRow {
    let e = &s.event;
    let d = &e.details;
    let attribution = match (&e.attribution, s.attributed) {
        (Some(decision), _) => format!(
            "{} by {}: {}",
            if decision.attributed {
                "attributed"
            } else {
                "not attributed"
            },
            decision.by,
            decision.reason
        ),
        (None, true) => "attributed (within 30 days, §6)".to_string(),
        (None, false) => "not attributed (after 30 days, §6)".to_string(),
    };
    let mut values = HashMap::new();
    values.insert("onset", local_input(&state.time, d.onset));
    values.insert("detected", d.detected.as_str().to_string());
    values.insert("description", d.description.clone());
    values.insert(
        "category",
        d.category
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
    );
    values.insert("severity", words(&d.severity).replace(' ', "_"));
    values.insert(
        "cirse_grade",
        d.cirse_grade.map(|g| g.to_string()).unwrap_or_default(),
    );
    values.insert("treatment", d.treatment.clone());
    values.insert("outcome", d.outcome.as_str().to_string());
    AdverseEventRow {
        id: e.id.clone(),
        version: e.version,
        cells: vec![
            when(&state.time, d.onset),
            d.detected.as_str().replace('_', " "),
            match d.category {
                Some(category) => format!("{} ({})", d.description, category.label()),
                None => d.description.clone(),
            },
            format!(
                "SIR {}; {}",
                words(&d.severity),
                d.cirse_grade
                    .map(|g| format!("CIRSE {g}"))
                    .unwrap_or_else(|| "CIRSE not graded".to_string())
            ),
            if d.treatment.is_empty() {
                "—".to_string()
            } else {
                d.treatment.clone()
            },
            d.outcome.as_str().replace('_', " "),
            attribution,
            format!("{}, {}", e.reported_by, when(&state.time, e.reported_at)),
        ],
        withdrawn: e
            .entered_in_error
            .as_ref()
            .map(|w| format!("entered in error — {}: {}", w.by, w.reason)),
        values,
    }
}

/// A device's plan in a few words, and the banner's class for it (flagged when overdue or none).
fn plan_words(
    state: &AppState,
    plan: &seldinger_domain::device_registry::Plan,
) -> (String, &'static str) {
    use seldinger_domain::device_registry::Plan;
    match plan {
        Plan::Ended => ("taken out".into(), ""),
        Plan::Permanent => ("declared permanent".into(), ""),
        Plan::FollowUp {
            due_from,
            due_until,
            overdue,
        } => (
            format!(
                "follow-up {} {}{}",
                if *overdue { "OVERDUE, was due" } else { "due" },
                state.time.format(*due_from, "%Y-%m-%d"),
                due_until
                    .map(|u| format!(" to {}", state.time.format(u, "%Y-%m-%d")))
                    .unwrap_or_default()
            ),
            if *overdue { "alert" } else { "" },
        ),
        Plan::AtDischarge => ("follow-up made at discharge".into(), ""),
        Plan::NoPlan => ("NO PLAN".into(), "alert"),
    }
}

/// Lifecycle events that need nothing but a click.
const SIMPLE_EVENTS: &[(&str, &str)] = &[
    ("check_in", "Check in"),
    ("complete_procedure", "Procedure complete"),
    ("admit_to_recovery", "Admit to recovery"),
    ("discharge", "Discharge"),
    ("start_follow_up", "Start follow-up"),
    ("close", "Close the case"),
];

const TIME_OUT_ITEMS: &[(&str, &str)] = &[
    ("team_introduced", "Team introduced by name and role"),
    ("patient_identity_confirmed", "Patient identity confirmed"),
    (
        "procedure_and_site_confirmed",
        "Procedure and site confirmed",
    ),
    ("consent_confirmed", "Consent confirmed"),
    ("imaging_available", "Relevant imaging available"),
    ("equipment_available", "Equipment and devices available"),
];

struct Refused {
    errors: HashMap<String, String>,
    input: HashMap<String, String>,
    notice: Option<String>,
}

async fn show(
    state: &AppState,
    viewer: &Viewer,
    raw_id: &str,
    status: StatusCode,
    refused: Option<Refused>,
) -> Result<Response, ApiError> {
    let (case, break_glass) = load(state, &viewer.caller, raw_id).await?;
    let patient = state
        .store
        .patient(case.patient_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("patient {}", case.patient_id)))?;
    let today = state.today();
    let d = &patient.details;
    let can = |p: Permission| grant(viewer.caller.role, p).is_some();
    let allowed = case.state.allowed_events();
    let actions = SIMPLE_EVENTS
        .iter()
        .filter(|(event, _)| allowed.contains(event))
        .filter(|(event, _)| {
            can(Permission::for_case_event(
                seldinger_domain::lifecycle::EventKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == *event)
                    .unwrap_or(seldinger_domain::lifecycle::EventKind::Close),
            ))
        })
        .map(|(event, label)| Action { event, label })
        .collect::<Vec<_>>();
    // Before the criteria are met, discharging asks why (clinical-rules.md §4).
    let discharge_unmet = if actions.iter().any(|a| a.event == "discharge") {
        case.discharge_criteria_unmet(&state.safety)
    } else {
        Vec::new()
    };
    let actions = actions
        .into_iter()
        .filter(|a| a.event != "discharge" || discharge_unmet.is_empty())
        .collect();
    // The labs, drugs and their history belong to the patient's record: a referring clinician
    // sees it only for a patient they registered (docs/roles.md); the checklist still says what
    // the rules found.
    let shows_record = state.sees_patient_record(&viewer.caller, &patient).await?;
    // The checklist guides the way to the room; after it, the history keeps what was decided.
    let needs_checklist = case.vetting.is_some() && case.state.is_pre_procedure();
    // Read once for the checklist and the record's tables both.
    let (medication_entries, lab_entries) = if shows_record || needs_checklist {
        (
            state.store.medication_entries(case.patient_id).await?,
            state.store.lab_result_entries(case.patient_id).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let checklist = needs_checklist
        .then(|| state.checklist_from_entries(&case, &patient, &medication_entries, &lab_entries));
    let overridden: Vec<String> = case
        .safety_overrides
        .iter()
        .flat_map(|o| o.rules.clone())
        .collect();
    let checklist_rows = checklist
        .as_ref()
        .map(|c| {
            c.items
                .iter()
                .map(|i| {
                    let (class, status) = match i.status {
                        ItemStatus::Pass => ("pass", "Pass"),
                        ItemStatus::ActionNeeded => ("action", "Action needed"),
                        ItemStatus::MissingData => ("missing", "Missing data"),
                        ItemStatus::Block => ("block", "Block"),
                    };
                    ChecklistRow {
                        class,
                        status,
                        rule: i.rule.clone(),
                        title: i.title.clone(),
                        reason: i.reason.clone(),
                        actions: i
                            .actions
                            .iter()
                            .map(|a| match a.due {
                                Some(due) => {
                                    format!(
                                        "{} — {}, by {}",
                                        a.what,
                                        words(&a.role),
                                        when(&state.time, due)
                                    )
                                }
                                None => format!("{} — {}", a.what, words(&a.role)),
                            })
                            .collect(),
                        citation: i.citation.clone(),
                        unverified: i.unverified,
                        // Blocks and missing data both stop the start (clinical-rules.md §8).
                        blocking: matches!(i.status, ItemStatus::Block | ItemStatus::MissingData)
                            && !overridden.contains(&i.rule),
                    }
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    // The device registry's view of this patient: the banner's devices in place, and where each
    // of this case's devices stands.
    let registry = state
        .device_registry(
            &viewer.caller,
            &seldinger_store::DeviceFilter {
                patient_id: Some(case.patient_id),
                ..Default::default()
            },
        )
        .await?;
    let devices_in_place = registry
        .iter()
        .filter(|s| s.device.in_place())
        .map(|s| {
            let (plan, class) = plan_words(state, &s.plan);
            (
                format!(
                    "{} ({} days{}{})",
                    s.device.placed.kind.label(),
                    s.days_since_placement,
                    if plan.is_empty() { "" } else { ", " },
                    plan
                ),
                class,
            )
        })
        .collect::<Vec<_>>();
    let adverse_events = if case.procedure_started_at.is_some() {
        state
            .adverse_events(
                &viewer.caller,
                &seldinger_store::AdverseEventFilter {
                    case_id: Some(case.id),
                    ..Default::default()
                },
            )
            .await?
            .iter()
            .map(|s| adverse_event_row(state, s))
            .collect()
    } else {
        Vec::new()
    };
    let device_standing = |index: usize| {
        registry
            .iter()
            .find(|s| s.device.device.case_id == case.id && s.device.device.index == index)
    };
    let medications = if shows_record {
        medication_entries
    } else {
        Vec::new()
    }
    .into_iter()
    .map(|(entry, m)| {
        let last_dose = m
            .last_dose_at
            .map(|t| when(&state.time, t))
            .unwrap_or_default();
        let intent = m
            .dose_intent
            .clone()
            .or(m.indication.clone())
            .unwrap_or_default();
        EntryRow {
            entry,
            forms: ["correct_medication", "withdraw_medication"],
            cells: vec![
                m.drug.clone(),
                m.dose.clone(),
                m.frequency.clone(),
                last_dose,
                intent,
            ],
            values: HashMap::from([
                ("drug", m.drug.clone()),
                ("dose", m.dose.clone()),
                ("frequency", m.frequency.clone()),
                (
                    "last_dose_at",
                    m.last_dose_at
                        .map(|t| local_input(&state.time, t))
                        .unwrap_or_default(),
                ),
                ("dose_intent", m.dose_intent.clone().unwrap_or_default()),
                ("indication", m.indication.clone().unwrap_or_default()),
            ]),
        }
    })
    .collect();
    let labs = if shows_record {
        lab_entries
    } else {
        Vec::new()
    }
    .into_iter()
    .map(|(entry, l)| {
        let value = format!("{}", (l.value * 1000.0).round() / 1000.0);
        EntryRow {
            entry,
            forms: ["correct_lab", "withdraw_lab"],
            cells: vec![
                l.test.as_str().to_string(),
                format!("{}", (l.value * 100.0).round() / 100.0),
                l.unit.clone(),
                when(&state.time, l.drawn_at),
                l.loinc.clone(),
            ],
            values: HashMap::from([
                ("test", l.test.as_str().to_string()),
                ("value", value),
                ("unit", l.unit.clone()),
                ("drawn_at", local_input(&state.time, l.drawn_at)),
            ]),
        }
    })
    .collect();
    let referral = state
        .store
        .referral(case.referral_id)
        .await?
        .map(|r| {
            let d = &r.details;
            vec![
                ("Indication".to_string(), d.indication.clone()),
                ("Question".to_string(), d.clinical_question.clone()),
                (
                    "From".to_string(),
                    format!(
                        "{}, {} · {}",
                        d.requesting_clinician,
                        d.requesting_service.as_str().replace('_', " "),
                        when(&state.time, r.received_at)
                    ),
                ),
                ("Urgency".to_string(), words(&d.urgency)),
            ]
        })
        .unwrap_or_default();
    let steps = state.store.performed_steps_of_case(case.id).await?;
    let (dose, dose_note) = if can(Permission::ReadDose) {
        let reports = state.store.case_dose_reports(case.id).await?;
        if reports.is_empty() {
            (None, None)
        } else {
            let totals = case_totals(
                &reports
                    .iter()
                    .map(seldinger_store::StoredDoseReport::report_totals)
                    .collect::<Vec<_>>(),
            );
            let end = case
                .procedure_completed_at
                .unwrap_or_else(|| state.clock.now());
            let assessment = assess(&totals, end, &state.safety);
            let show = |v: Option<f64>, unit: &str| {
                v.map_or("not reported".into(), |v| format!("{v:.3} {unit}"))
            };
            let mut lines = vec![
                (
                    "Reference air kerma".into(),
                    show(totals.reference_air_kerma.map(|g| g.0), "Gy"),
                ),
                (
                    "Kerma-area product".into(),
                    show(
                        totals
                            .kerma_area_product
                            .map(|k| k.gray_square_centimetres()),
                        "Gy·cm²",
                    ),
                ),
                (
                    "Fluoroscopy time".into(),
                    show(totals.fluoroscopy_time.map(|s| s.0 / 60.0), "min"),
                ),
                (
                    "CT DLP".into(),
                    show(
                        totals
                            .ct_dose_length_product
                            .map(|d| d.milligray_centimetres()),
                        "mGy·cm",
                    ),
                ),
                ("Reports".into(), reports.len().to_string()),
            ];
            // What the room's systems reported in their steps, beside the reports' totals.
            for row in seldinger_domain::performed_step::compare_dose(&steps, &totals) {
                lines.push((
                    format!("{} reported in the performed steps", row.quantity),
                    format!(
                        "{:.3} {} — {}",
                        row.preliminary,
                        row.unit,
                        if row.differs {
                            format!(
                                "differs from the dose report ({:.3} {}): for the physicist to check",
                                row.reported, row.unit
                            )
                        } else {
                            "agrees with the dose report".to_string()
                        }
                    ),
                ));
            }
            if assessment.substantial() {
                lines.push((
                    "Substantial radiation dose".into(),
                    format!("level reached ({})", assessment.citation),
                ));
            }
            (Some(lines), dose_discharge_note(&assessment, &state.time))
        }
    } else {
        (None, None)
    };
    let imaging = steps
        .into_iter()
        .map(|step| {
            let at = |t| state.time.format(t, "%Y-%m-%d %H:%M");
            // The preliminary dose the system reported, until its dose report is read.
            let dose = if can(Permission::ReadDose) {
                let d = &step.dose;
                [
                    d.dose_area_product_gy_m2
                        .map(|v| format!("KAP {:.3} Gy·cm²", v * 1e4)),
                    d.fluoroscopy_time_s
                        .map(|v| format!("fluoroscopy {:.1} min", v / 60.0)),
                    d.exposures.map(|v| format!("{v} exposures")),
                    d.entrance_dose_mgy
                        .map(|v| format!("entrance dose {v:.0} mGy")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
            } else {
                String::new()
            };
            Row {
                cells: vec![
                    format!("{} ({})", step.station_ae_title, step.modality),
                    step.status.dicom().to_string(),
                    at(step.started_at),
                    step.ended_at.map(at).unwrap_or_default(),
                    dose,
                    step.review.unwrap_or_default(),
                ],
            }
        })
        .collect();
    let now = state.clock.now();
    let follow_ups = state
        .list_follow_up_tasks(
            &viewer.caller,
            &FollowUpFilter {
                case_id: Some(case.id),
                ..Default::default()
            },
        )
        .await?
        .iter()
        .map(|t| Row {
            cells: vec![
                words(&t.kind),
                words(&t.status(now)),
                format!(
                    "{}{}",
                    when(&state.time, t.due_from),
                    t.due_until
                        .map(|u| format!(" to {}", when(&state.time, u)))
                        .unwrap_or_default()
                ),
                t.instructions.clone(),
            ],
        })
        .collect();
    // The case's own events and the patient record's (labs, drugs and their corrections), newest
    // first by their place in the one log.
    let case_events = state.store.case_history(case.id).await?;
    let patient_events = if shows_record {
        state.store.patient_history(case.patient_id).await?
    } else {
        Vec::new()
    };
    let mut changes: Vec<(i64, Row)> = case_events
        .iter()
        .map(|e| {
            let what = serde_json::from_value::<CaseEvent>(e.payload.clone())
                .map(|event| event.summary(&state.time))
                .unwrap_or_else(|_| e.kind.replace('_', " "));
            (e, what)
        })
        .chain(patient_events.iter().map(|e| {
            let what = serde_json::from_value::<PatientEvent>(e.payload.clone())
                .map(|event| event.summary())
                .unwrap_or_else(|_| e.kind.replace('_', " "));
            (e, what)
        }))
        .map(|(e, what)| {
            let row = Row {
                cells: vec![
                    when(&state.time, e.at),
                    e.actor.clone(),
                    what,
                    e.reason.clone().unwrap_or_default(),
                ],
            };
            (e.seq, row)
        })
        .collect();
    changes.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    let history = changes.into_iter().map(|(_, row)| row).collect();
    let can_schedule = allowed.contains(&"schedule") && can(Permission::ScheduleCases);
    // The rooms are for the booking form only.
    let rooms = if can_schedule {
        state
            .store
            .rooms()
            .await?
            .into_iter()
            .map(|r| (r.id.as_str().to_string(), r.name))
            .collect()
    } else {
        Vec::new()
    };
    let mut alerts = Vec::new();
    if let Some(p) = &d.pregnancy {
        alerts.push(format!("Pregnancy: {}", words(p)));
    }
    if let Some(c) = &checklist {
        if c.overall == ItemStatus::Block {
            alerts.push("Safety checklist: blocked".into());
        }
    }
    state
        .audit(
            &viewer.caller,
            Audit::of("read", "case", case.id, case.patient_id).break_glass(break_glass),
        )
        .await?;
    let procedure = case
        .planned_procedure()
        .and_then(|id| state.catalogue.get(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "not chosen yet".into());
    let (errors, input, notice) = refused
        .map(|r| (r.errors, r.input, r.notice))
        .unwrap_or_default();
    use seldinger_domain::lifecycle::CaseState as S;
    let record_open = matches!(case.state, S::InRoom | S::ProcedureComplete | S::InRecovery);
    let mut procedure_lines: Vec<(String, String)> = [
        ("Time-out and start", case.procedure_started_at),
        ("Procedure complete", case.procedure_completed_at),
    ]
    .into_iter()
    .filter_map(|(label, at)| {
        at.map(|t| (label.to_string(), state.time.format(t, "%Y-%m-%d %H:%M %Z")))
    })
    .collect();
    let details_lines = case
        .procedure
        .as_ref()
        .map(|p| {
            let mut lines = vec![
                (
                    "Operators".to_string(),
                    p.operators
                        .iter()
                        .map(|o| format!("{} ({})", o.name, words(&o.role)))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                ("Guidance".to_string(), words(&p.guidance)),
                ("Access".to_string(), p.access_site.clone()),
            ];
            if let Some(agent) = &p.contrast_agent {
                lines.push((
                    "Contrast".to_string(),
                    format!(
                        "{agent}{}",
                        p.contrast_volume_ml
                            .map(|v| format!(", {v} mL"))
                            .unwrap_or_default()
                    ),
                ));
            }
            lines.push(("Findings".to_string(), p.findings.clone()));
            lines.push((
                "Technical success".to_string(),
                match p.technical_success {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "not stated".into(),
                },
            ));
            lines
        })
        .unwrap_or_default();
    procedure_lines.extend(details_lines);
    let opt = |v: Option<u16>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut vitals_sorted = case.vital_signs.clone();
    vitals_sorted.sort_by_key(|v| v.at);
    let vitals = vitals_sorted
        .iter()
        .map(|v| Row {
            cells: vec![
                state.time.format(v.at, "%H:%M"),
                words(&v.phase),
                opt(v.heart_rate),
                match (v.systolic, v.diastolic) {
                    (Some(s), Some(d)) => format!("{s}/{d}"),
                    (s, d) => format!("{}/{}", opt(s), opt(d)),
                },
                opt(v.spo2.map(u16::from)),
                opt(v.respiratory_rate.map(u16::from)),
            ],
        })
        .collect();
    let recovery = case.latest_recovery_score().map(|score| {
        let r = score.readiness(&state.safety);
        let text = if r.ready {
            format!(
                "Meets the discharge criteria: modified Aldrete {} at {} ({})",
                r.total,
                state.time.format(score.at, "%H:%M"),
                r.citation
            )
        } else {
            format!(
                "Not yet: {} — modified Aldrete {} at {} ({})",
                r.reasons.join("; "),
                r.total,
                state.time.format(score.at, "%H:%M"),
                r.citation
            )
        };
        (r.ready, text)
    });
    let start_stopped_by: Vec<String> = checklist_rows
        .iter()
        .filter(|r| r.blocking)
        .map(|r| format!("{} ({})", r.title, r.status.to_lowercase()))
        .collect();
    let vetting = case.vetting.as_ref();
    let access_route = vetting
        .and_then(|v| v.access_route)
        .map(|r| r.as_str().to_string())
        .unwrap_or_default();
    let sheath_french = vetting
        .and_then(|v| v.sheath_french)
        .map(|f| f.french().to_string())
        .unwrap_or_default();
    let access_plan = match (access_route.is_empty(), sheath_french.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("{access_route} access"),
        (true, false) => format!("{sheath_french} F sheath"),
        (false, false) => format!("{access_route} access, {sheath_french} F sheath"),
    };
    let page = CasePage {
        access_plan,
        access_route,
        sheath_french,
        can_revise_access: allowed.contains(&"revise_access") && can(Permission::VetCases),
        access_routes: seldinger_domain::catalogue::AccessRoute::CHOICES
            .iter()
            .map(|(name, _)| *name)
            .collect(),
        record_open,
        complication_open: allowed.contains(&"record_complication"),
        in_recovery: case.state == S::InRecovery,
        vitals_phase: if case.state == S::InRoom {
            "in_room"
        } else {
            "recovery"
        },
        has_record: case.procedure.is_some(),
        procedure_lines,
        drugs_given: case
            .drugs_given
            .iter()
            .map(|d| Row {
                cells: vec![
                    state.time.format(d.at, "%H:%M"),
                    d.drug.clone(),
                    d.dose.clone(),
                ],
            })
            .collect(),
        chart: chart(&case.vital_signs),
        vitals,
        devices: case
            .devices_left
            .iter()
            .enumerate()
            .map(|(index, d)| Row {
                cells: vec![
                    words(&d.kind),
                    d.description.clone(),
                    d.udi
                        .as_ref()
                        .map(|u| u.summary())
                        .unwrap_or_else(|| "no UDI recorded".to_string()),
                    device_standing(index)
                        .map(|s| {
                            let (plan, _) = plan_words(state, &s.plan);
                            match &s.device.state {
                                seldinger_domain::device_registry::LifeState::InPlace => {
                                    format!("in place; {plan}")
                                }
                                _ => plan,
                            }
                        })
                        .unwrap_or_default(),
                ],
            })
            .collect(),
        devices_in_place,
        complications: case
            .complications
            .iter()
            .map(|c| Row {
                cells: vec![
                    when(&state.time, c.at),
                    words(&c.severity),
                    c.cirse_grade
                        .map(|g| format!("CIRSE {g}"))
                        .unwrap_or_else(|| "CIRSE not graded".to_string()),
                    c.description.clone(),
                ],
            })
            .collect(),
        adverse_events,
        procedure_begun: case.procedure_started_at.is_some(),
        can_report_adverse: can(Permission::ReportAdverseEvents),
        can_attribute_adverse: can(Permission::AttributeAdverseEvents),
        detected_choices: seldinger_domain::adverse_event::Detected::ALL
            .iter()
            .map(|d| d.as_str())
            .collect(),
        category_choices: seldinger_domain::adverse_event::EventCategory::ALL
            .into_iter()
            .map(|c| (c.as_str(), c.label()))
            .collect(),
        outcome_choices: seldinger_domain::adverse_event::Outcome::ALL
            .iter()
            .map(|o| o.as_str())
            .collect(),
        recovery,
        modalities: GuidanceModality::CHOICES.iter().map(|(n, _)| *n).collect(),
        device_kinds: seldinger_domain::procedure_record::DeviceKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect(),
        severities: SEVERITIES.to_vec(),
        cirse_grades: CIRSE_GRADES,
        aldrete_items: ALDRETE_ITEMS,
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        case_id: case.id.to_string(),
        version: case.version,
        patient_version: patient.version,
        patient_name: d.name.family_first(),
        mrn: d.mrn.as_str().to_string(),
        age: d.age_on(today),
        sex: words(&d.sex),
        birth_date: d.birth_date.to_string(),
        weight: d
            .weight_kg
            .as_ref()
            .and_then(|w| serde_json::to_value(w).ok())
            .map(|w| format!("{w} kg"))
            .unwrap_or_else(|| "weight not recorded".into()),
        allergies: d
            .allergies
            .iter()
            .map(|a| {
                let reaction = if a.reaction.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.reaction)
                };
                format!("{}: {}{reaction}", words(&a.class), a.substance)
            })
            .collect(),
        alerts,
        state: case.state.as_str().replace('_', " "),
        state_key: case.state.as_str(),
        procedure,
        booking: case
            .booking
            .as_ref()
            .map(|b| {
                let by = b
                    .performing_physician
                    .as_ref()
                    .map(|name| format!(" · {name}"))
                    .unwrap_or_default();
                format!(
                    "{} · {} to {} ({}){by}",
                    b.room.as_str(),
                    when(&state.time, b.start),
                    state.time.format(b.end, "%H:%M"),
                    state.time.name()
                )
            })
            .unwrap_or_else(|| "not booked".into()),
        accession: case.accession_number.clone().unwrap_or_default(),
        referral,
        actions,
        discharge_unmet,
        can_schedule,
        can_vet: allowed.contains(&"accept") && can(Permission::VetCases),
        can_start: allowed.contains(&"start_procedure") && can(Permission::RunProcedures),
        can_cancel: allowed.contains(&"cancel") && can(Permission::CancelCases),
        can_override: allowed.contains(&"override_safety_blocks")
            && can(Permission::OverrideSafetyBlocks)
            && checklist_rows.iter().any(|r| r.blocking),
        can_record: can(Permission::RecordClinicalData),
        rooms,
        checklist_overall: checklist
            .as_ref()
            .map(|c| words(&c.overall))
            .unwrap_or_default(),
        checklist: checklist_rows,
        overrides: case
            .safety_overrides
            .iter()
            .map(|o| {
                format!(
                    "{} — by {} at {}: {}",
                    o.rules.join(", "),
                    o.by,
                    when(&state.time, o.at),
                    o.reason
                )
            })
            .collect(),
        medications,
        labs,
        shows_record,
        start_stopped_by,
        lab_tests: LabTest::ALL.iter().map(|t| t.as_str()).collect(),
        time_out_items: TIME_OUT_ITEMS
            .iter()
            .map(|(item, label)| {
                (
                    *item,
                    *label,
                    input.contains_key(&format!("start_procedure.{item}")),
                )
            })
            .collect(),
        dose,
        dose_note,
        imaging,
        follow_ups,
        history,
        errors,
        input,
        notice,
    };
    let mut response = render(&page);
    *response.status_mut() = status;
    Ok(response)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadCases, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    show(&state, &viewer, &id, StatusCode::OK, None)
        .await
        .unwrap_or_else(api_error_page)
}

/// A number typed into a field: blank is none.
fn number<T: std::str::FromStr>(value: &str) -> Result<Option<T>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<T>()
        .map(Some)
        .map_err(|_| format!("'{value}' is not a number"))
}

/// The modified Aldrete items (clinical-rules.md §4), each scored 0, 1 or 2.
pub const ALDRETE_ITEMS: &[(&str, &str)] = &[
    ("activity", "Activity"),
    ("respiration", "Respiration"),
    ("circulation", "Circulation (BP against pre-sedation)"),
    ("consciousness", "Consciousness"),
    ("oxygen_saturation", "Oxygen saturation"),
];

/// `datetime-local` input (no zone) read on the department's wall clock.
pub(crate) fn instant(time: &DepartmentTime, value: &str) -> Result<Option<DateTime<Utc>>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let local = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| format!("'{value}' is not a date and time"))?;
    time.instant(local).map(Some)
}

/// What one form asks for, as an API-shaped request.
enum Request {
    Event {
        expected_version: u64,
        event: serde_json::Value,
        reason: Option<String>,
    },
    Lab(u64, LabResultInput),
    Medication(u64, MedicationInput),
    /// An adverse event reported (JSON as the API takes it).
    ReportAdverseEvent(serde_json::Value),
    /// A change to one: its id, the version read, and the change as the API takes it.
    ChangeAdverseEvent(String, serde_json::Value),
    /// A lab or drug entry corrected or withdrawn.
    Correction {
        patient_version: u64,
        entry: u64,
        change: Change,
        reason: String,
    },
}

/// What a correction form asks for an entry: its replacement, or (`None`) its withdrawal.
enum Change {
    Lab(Option<LabResultInput>),
    Medication(Option<MedicationInput>),
}

/// An adverse event as the report and correct forms send it, in the API's shape (a blank onset:
/// now; a blank CIRSE grade: not given, for the rules to name).
fn adverse_event_input(
    get: &dyn Fn(&str) -> String,
    kind: &str,
    time: &DepartmentTime,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, (String, String)> {
    let onset = instant(time, &get("onset"))
        .map_err(|e| (format!("{kind}.onset"), e))?
        .unwrap_or(now);
    let cirse = get("cirse_grade");
    let cirse_grade = if cirse.is_empty() {
        serde_json::Value::Null
    } else {
        cirse
            .parse::<u8>()
            .map_err(|_| {
                (
                    format!("{kind}.cirse_grade"),
                    "choose a grade from 1 to 6".to_string(),
                )
            })?
            .into()
    };
    Ok(json!({
        "onset": onset.to_rfc3339(),
        "detected": get("detected"),
        "description": get("description"),
        "category": Some(get("category")).filter(|c| !c.is_empty()),
        "severity": get("severity"),
        "cirse_grade": cirse_grade,
        "treatment": get("treatment"),
        "outcome": get("outcome"),
    }))
}

/// A lab as the add and correct forms send it.
fn lab_input(
    get: &dyn Fn(&str) -> String,
    kind: &str,
    time: &DepartmentTime,
) -> Result<LabResultInput, (String, String)> {
    let value = get("value");
    Ok(LabResultInput {
        test: get("test"),
        value: value.parse::<f64>().map_err(|_| {
            (
                format!("{kind}.value"),
                format!("'{value}' is not a number"),
            )
        })?,
        unit: get("unit"),
        drawn_at: instant(time, &get("drawn_at")).map_err(|e| (format!("{kind}.drawn_at"), e))?,
    })
}

/// A drug as the add and correct forms send it.
fn medication_input(
    get: &dyn Fn(&str) -> String,
    kind: &str,
    time: &DepartmentTime,
) -> Result<MedicationInput, (String, String)> {
    let optional = |field: &str| Some(get(field)).filter(|v| !v.is_empty());
    Ok(MedicationInput {
        drug: get("drug"),
        dose: get("dose"),
        frequency: get("frequency"),
        last_dose_at: instant(time, &get("last_dose_at"))
            .map_err(|e| (format!("{kind}.last_dose_at"), e))?,
        dose_intent: optional("dose_intent"),
        indication: optional("indication"),
    })
}

fn request_from(
    form: &HashMap<String, String>,
    now: DateTime<Utc>,
    time: &DepartmentTime,
) -> Result<Request, (String, String)> {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let kind = get("form");
    let version = |k: &str| {
        get(k).parse::<u64>().map_err(|_| {
            (
                format!("{kind}.{k}"),
                "the page is out of date; reload it".to_string(),
            )
        })
    };
    let at = |field: &str| instant(time, &get(field)).map_err(|e| (format!("{kind}.{field}"), e));
    match kind.as_str() {
        "lab" => Ok(Request::Lab(
            version("patient_version")?,
            lab_input(&get, &kind, time)?,
        )),
        "medication" => Ok(Request::Medication(
            version("patient_version")?,
            medication_input(&get, &kind, time)?,
        )),
        "report_adverse_event" => Ok(Request::ReportAdverseEvent(adverse_event_input(
            &get, &kind, time, now,
        )?)),
        "correct_adverse_event" | "attribute_adverse_event" | "withdraw_adverse_event" => {
            let mut body = serde_json::json!({
                "expected_version": version("expected_version")?,
                "reason": get("reason"),
            });
            match kind.as_str() {
                "correct_adverse_event" => {
                    body["type"] = "corrected".into();
                    body["details"] = adverse_event_input(&get, &kind, time, now)?;
                }
                "attribute_adverse_event" => {
                    body["type"] = "attribution_decided".into();
                    body["attributed"] = (get("attributed") == "true").into();
                }
                _ => body["type"] = "entered_in_error".into(),
            }
            Ok(Request::ChangeAdverseEvent(get("entry"), body))
        }
        "correct_lab" | "withdraw_lab" | "correct_medication" | "withdraw_medication" => {
            let entry = get("entry").parse::<u64>().map_err(|_| {
                (
                    format!("{kind}.entry"),
                    "the page is out of date; reload it".to_string(),
                )
            })?;
            let change = match kind.as_str() {
                "correct_lab" => Change::Lab(Some(lab_input(&get, &kind, time)?)),
                "withdraw_lab" => Change::Lab(None),
                "correct_medication" => {
                    Change::Medication(Some(medication_input(&get, &kind, time)?))
                }
                _ => Change::Medication(None),
            };
            Ok(Request::Correction {
                patient_version: version("patient_version")?,
                entry,
                change,
                reason: get("reason"),
            })
        }
        event => {
            let mut body = serde_json::json!({ "type": event });
            match event {
                "schedule" => {
                    body["room"] = get("room").into();
                    body["start"] = at("start")?
                        .map(|t| t.to_rfc3339())
                        .ok_or(("schedule.start".to_string(), "required".to_string()))?
                        .into();
                    if let Ok(minutes) = get("duration_minutes").parse::<u32>() {
                        body["duration_minutes"] = minutes.into();
                    }
                    if !get("performing_physician").trim().is_empty() {
                        body["performing_physician"] = get("performing_physician").into();
                    }
                }
                "start_procedure" => {
                    let mut time_out = serde_json::json!({ "completed_at": now.to_rfc3339() });
                    for (item, _) in TIME_OUT_ITEMS {
                        time_out[*item] = form.contains_key(*item).into();
                    }
                    body["time_out"] = time_out;
                }
                "override_safety_blocks" => {
                    let rules: Vec<String> = form
                        .keys()
                        .filter_map(|k| k.strip_prefix("rule:").map(str::to_string))
                        .collect();
                    body["rules"] = rules.into();
                }
                "assign_accession" => body["accession_number"] = get("accession_number").into(),
                "revise_access" => {
                    body["access_route"] = get("access_route").into();
                    if let Some(sheath) = number::<f64>(&get("sheath_french"))
                        .map_err(|e| ("revise_access.sheath_french".to_string(), e))?
                    {
                        body["sheath_french"] = sheath.into();
                    }
                }
                "record_procedure" => {
                    let mut operators = vec![json!({"name": get("primary"), "role": "primary"})];
                    if !get("assistant").is_empty() {
                        operators.push(json!({"name": get("assistant"), "role": "assistant"}));
                    }
                    let volume = number::<f64>(&get("contrast_volume_ml"))
                        .map_err(|e| ("details.contrast_volume_ml".to_string(), e))?;
                    body["details"] = json!({
                        "operators": operators,
                        "guidance": get("guidance"),
                        "access_site": get("access_site"),
                        "contrast_agent": Some(get("contrast_agent")).filter(|a| !a.is_empty()),
                        "contrast_volume_ml": volume,
                        "findings": get("findings"),
                        "technical_success": match get("technical_success").as_str() {
                            "yes" => Some(true),
                            "no" => Some(false),
                            _ => None,
                        },
                    });
                }
                "record_drug_given" => {
                    body["drug"] = json!({
                        "drug": get("drug"),
                        "dose": get("dose"),
                        "at": at("at")?.unwrap_or(now).to_rfc3339(),
                    });
                }
                "record_vital_signs" => {
                    let mut vitals = json!({
                        "at": at("at")?.unwrap_or(now).to_rfc3339(),
                        "phase": get("phase"),
                    });
                    for field in [
                        "heart_rate",
                        "systolic",
                        "diastolic",
                        "spo2",
                        "respiratory_rate",
                    ] {
                        let value = number::<u16>(&get(field))
                            .map_err(|e| (format!("vitals.{field}"), e))?;
                        vitals[field] = json!(value);
                    }
                    body["vitals"] = vitals;
                }
                "record_device_left" => {
                    body["device"] = json!({
                        "kind": get("kind"),
                        "description": get("description"),
                        "udi_label": get("udi_label"),
                    });
                }
                "record_complication" => {
                    body["complication"] = json!({
                        "description": get("description"),
                        "severity": get("severity"),
                        "at": at("at")?.unwrap_or(now).to_rfc3339(),
                    });
                    if let Some(grade) = number::<u8>(&get("cirse_grade"))
                        .map_err(|e| ("complication.cirse_grade".to_string(), e))?
                    {
                        body["complication"]["cirse_grade"] = json!(grade);
                    }
                }
                "record_recovery_score" => {
                    let mut score = json!({ "at": now.to_rfc3339() });
                    for item in ALDRETE_ITEMS {
                        let value = number::<u8>(&get(item.0))
                            .map_err(|e| (format!("score.{}", item.0), e))?
                            .ok_or((format!("score.{}", item.0), "choose 0, 1 or 2".to_string()))?;
                        score[item.0] = json!(value);
                    }
                    body["score"] = score;
                }
                _ => {}
            }
            Ok(Request::Event {
                expected_version: version("expected_version")?,
                event: body,
                reason: Some(get("reason")).filter(|r| !r.is_empty()),
            })
        }
    }
}

pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadCases, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    let form: HashMap<String, String> = pairs.into_iter().collect();
    if !viewer.csrf_ok(
        form.get("csrf_token")
            .map(String::as_str)
            .unwrap_or_default(),
    ) {
        return super::expired_form();
    }
    let mut kind = form.get("form").cloned().unwrap_or_default();
    // A correction form sits on each entry's row: its errors and input belong to that row.
    if let Some(entry) = form.get("entry") {
        kind = format!("{kind}:{}", entry.trim());
    }
    let outcome = match request_from(&form, state.clock.now(), &state.time) {
        Err((field, message)) => Err(ApiError::bad_request(field, message)),
        Ok(request) => perform(&state, &viewer, &id, request).await,
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/cases/{id}")).into_response(),
        Err(error) => {
            let status = error.status();
            let errors: HashMap<String, String> = error
                .field_errors()
                .iter()
                .map(|e| {
                    let field = e
                        .field
                        .trim_start_matches("event.")
                        .trim_start_matches("time_out.");
                    // An adverse event's correction names its fields under `details.`; the
                    // row's form shows them as its own.
                    let field = if kind.starts_with("correct_adverse_event") {
                        field.trim_start_matches("details.")
                    } else {
                        field
                    };
                    let key = if field.contains('.') {
                        field.to_string()
                    } else {
                        format!("{kind}.{field}")
                    };
                    (key, e.detail.clone())
                })
                .collect();
            let notice = if error.current_version().is_some() {
                Some("Someone else changed this record while you were working; the page now shows it as it is, with what you entered kept. Check and submit again.".to_string())
            } else {
                Some(error.detail().to_string())
            };
            let input = form
                .into_iter()
                .filter(|(k, _)| k != "csrf_token")
                .map(|(k, v)| (format!("{kind}.{k}"), v))
                .collect();
            let refused = Refused {
                errors,
                input,
                notice,
            };
            show(&state, &viewer, &id, status, Some(refused))
                .await
                .unwrap_or_else(api_error_page)
        }
    }
}

async fn perform(
    state: &AppState,
    viewer: &Viewer,
    case_id: &str,
    request: Request,
) -> Result<(), ApiError> {
    match request {
        Request::Event {
            expected_version,
            event,
            reason,
        } => {
            let request = CaseEventRequest {
                case_id: parse_case_id(case_id)?,
                expected_version,
                event: parse_event(event)?,
                reason,
            };
            state.apply_case_event(&viewer.caller, request).await?;
        }
        Request::ReportAdverseEvent(body) => {
            let input: crate::routes::adverse_events::AdverseEventInput =
                serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request("form", e.to_string()))?;
            state
                .report_adverse_event(&viewer.caller, parse_case_id(case_id)?, &input.details())
                .await?;
        }
        Request::ChangeAdverseEvent(id, body) => {
            let request: crate::routes::adverse_events::AdverseEventChangeRequest =
                serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request("form", e.to_string()))?;
            let version = request.expected_version;
            let change = request.change()?;
            // The event must be this case's: a form cannot reach another case's from here.
            if !id.starts_with(case_id) {
                return Err(ApiError::not_found(format!("adverse event {id}")));
            }
            state
                .change_adverse_event(&viewer.caller, &id, version, &change)
                .await?;
        }
        Request::Lab(version, input) => {
            viewer.caller.require(Permission::RecordClinicalData)?;
            let case: Case = load(state, &viewer.caller, case_id).await?.0;
            let result = LabResult::parse(&input, state.clock.now())?;
            state
                .record_fact(
                    &viewer.caller,
                    case.patient_id,
                    version,
                    PatientEvent::LabResultRecorded { result },
                )
                .await?;
        }
        Request::Medication(version, input) => {
            viewer.caller.require(Permission::RecordClinicalData)?;
            let case: Case = load(state, &viewer.caller, case_id).await?.0;
            let medication = Medication::parse(&input, state.clock.now())?;
            state
                .record_fact(
                    &viewer.caller,
                    case.patient_id,
                    version,
                    PatientEvent::MedicationRecorded { medication },
                )
                .await?;
        }
        Request::Correction {
            patient_version,
            entry,
            change,
            reason,
        } => {
            viewer.caller.require(Permission::RecordClinicalData)?;
            let case: Case = load(state, &viewer.caller, case_id).await?.0;
            let now = state.clock.now();
            let correction = match change {
                Change::Lab(input) => {
                    Correction::Lab(entry, input.map(|i| LabResult::parse(&i, now)).transpose()?)
                }
                Change::Medication(input) => Correction::Medication(
                    entry,
                    input.map(|i| Medication::parse(&i, now)).transpose()?,
                ),
            };
            state
                .correct_fact(
                    &viewer.caller,
                    case.patient_id,
                    patient_version,
                    correction,
                    Some(&reason),
                )
                .await?;
        }
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "discharge.html")]
struct DischargeSheet {
    case_id: String,
    patient_name: String,
    birth_date: String,
    mrn: String,
    date: String,
    version: String,
    sections: Vec<seldinger_domain::discharge::Section>,
}

/// The printable discharge instructions for the patient (plain language, per procedure).
pub async fn discharge_sheet(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadCases, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    let result = async {
        let (case, break_glass) = load(&state, &viewer.caller, &id).await?;
        let texts = state
            .discharge_texts
            .clone()
            .ok_or_else(ApiError::internal)?;
        let procedure = case
            .planned_procedure()
            .and_then(|id| state.catalogue.get(id))
            .ok_or_else(|| ApiError::bad_request("procedure", "the case has no procedure yet"))?;
        let patient = state
            .store
            .patient(case.patient_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("patient {}", case.patient_id)))?;
        // The dose note is dose data: only for roles that may read dose (the sheet is printed by
        // the nurse, who may; a referrer's copy leaves it out).
        let reports = if grant(viewer.caller.role, Permission::ReadDose).is_some() {
            state.store.case_dose_reports(case.id).await?
        } else {
            Vec::new()
        };
        let dose_note = if reports.is_empty() {
            None
        } else {
            let totals = case_totals(
                &reports
                    .iter()
                    .map(seldinger_store::StoredDoseReport::report_totals)
                    .collect::<Vec<_>>(),
            );
            let end = case
                .procedure_completed_at
                .unwrap_or_else(|| state.clock.now());
            dose_discharge_note(&assess(&totals, end, &state.safety), &state.time)
        };
        let devices: Vec<String> = case
            .devices_left
            .iter()
            .map(|d| format!("{}: {}", words(&d.kind), d.description))
            .collect();
        let findings = case
            .procedure
            .as_ref()
            .map(|p| p.findings.clone())
            .unwrap_or_default();
        let sections = texts.compose(
            procedure,
            &findings,
            !case.drugs_given.is_empty(),
            &devices,
            dose_note.as_deref(),
        );
        state
            .audit(
                &viewer.caller,
                Audit::of("print_discharge", "case", case.id, case.patient_id)
                    .break_glass(break_glass),
            )
            .await?;
        let d = &patient.details;
        Ok::<_, ApiError>(DischargeSheet {
            case_id: case.id.to_string(),
            patient_name: d.name.given_first(),
            birth_date: d.birth_date.to_string(),
            mrn: d.mrn.as_str().to_string(),
            date: state
                .time
                .format(
                    case.procedure_started_at
                        .unwrap_or_else(|| state.clock.now()),
                    "%-d %B %Y",
                )
                .to_string(),
            version: texts.version.clone(),
            sections,
        })
    }
    .await;
    match result {
        Ok(sheet) => render(&sheet),
        Err(e) => api_error_page(e),
    }
}
