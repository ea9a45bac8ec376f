//! Observation: a patient's laboratory results (LOINC, UCUM), their vital signs (`vital_signs`)
//! and one radiation dose summary per
//! case, following HL7's "Radiation Dose Summary for Diagnostic Procedures on FHIR" IG: LOINC
//! 73569-6 with the DICOM (DCM) study totals as components in the IG's units, the Study Instance
//! UIDs and the dose reports' SOP Instance UIDs as identifiers.
//!
//! A patient's observations come in one list sorted by time, newest first, paged in memory with
//! a cursor naming the last one given (bounded: one patient's). A dose search may also span a
//! period without a patient (the physicist's and the registry's question).

use crate::bundle::{self, Entry};
use crate::caller::Caller;
use crate::case_list::cases_of;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{reference_id, token, Kind, Param, Search, Span};
use crate::vital_signs::{self, Sign};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_app::{Audit, Opened};
use seldinger_domain::clinical::{LabResult, LabTest};
use seldinger_domain::dose::{case_totals, counted, DoseTotals};
use seldinger_domain::{Case, CaseId, PatientId};
use seldinger_store::{Cursor, DoseReportFilter, StoredDoseReport};
use serde_json::{json, Value};

pub const LOINC: &str = "http://loinc.org";
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// LOINC 73569-6: Radiation exposure and protection information.
pub const DOSE_SUMMARY_CODE: &str = "73569-6";
const DOSE_PROFILE: &str =
    "http://hl7.org/fhir/uv/radiation-dose-summary/StructureDefinition/radiation-dose-summary";
const DICOM_IDENTIFIER_TYPE: &str =
    "http://hl7.org/fhir/uv/radiation-dose-summary/CodeSystem/dicom-identifier-type";

pub const RESOURCE: Resource = Resource {
    name: "Observation",
    documentation: "Laboratory results (LOINC codes, UCUM units), vital signs after FHIR's vital-signs profiles (heart rate 8867-4, blood pressure 85354-9 with systolic 8480-6 and diastolic 8462-4, oxygen saturation 2708-6/59408-5, respiratory rate 9279-1; category vital-signs), and one radiation dose summary per case after HL7's Radiation Dose Summary IG (LOINC 73569-6, category imaging; components DCM 113725 Dose (RP) Total mGy, 113722 DAP Total mGy.cm2, 113726/113727 fluoro/acquisition DAP mGy.cm2, 113730 fluoro time s, 113731 frames, 113813 CT DLP mGy.cm). Create a laboratory result (LOINC code, UCUM unit, conditional on its identifier with If-None-Exist): the same units and rules as any. Give patient, or search dose summaries (code=73569-6 or category=imaging) over a period.",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id); needed except for dose summaries",
        },
        Param {
            name: "code",
            kind: Kind::Token,
            documentation: "LOINC code: 73569-6 (dose summary), a laboratory test's or a vital sign's",
        },
        Param {
            name: "category",
            kind: Kind::Token,
            documentation: "laboratory, vital-signs or imaging (dose summaries)",
        },
        Param {
            name: "date",
            kind: Kind::Date,
            documentation: "when drawn (labs), taken (vital signs) or irradiated (dose), with prefixes",
        },
    ],
    history: false,
    create: true,
};

/// Which kinds a search asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Kinds {
    dose: bool,
    labs: Option<Only<LabTest>>,
    vitals: Option<Only<Sign>>,
}

/// Every one of a kind, or one test or sign.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only<T> {
    All,
    One(T),
}

impl<T: PartialEq + Copy> Only<T> {
    fn admits(self, which: T) -> bool {
        self == Only::All || self == Only::One(which)
    }

    /// What is left after also asking for `which` (`None`: nothing can match both).
    fn and(this: Option<Only<T>>, which: Option<T>) -> Option<Only<T>> {
        match (this, which) {
            (Some(Only::All), Some(w)) => Some(Only::One(w)),
            (Some(Only::One(t)), Some(w)) if t == w => Some(Only::One(t)),
            _ => None,
        }
    }
}

fn kinds(search: &Search) -> Result<Kinds, FhirError> {
    let mut kinds = Kinds {
        dose: true,
        labs: Some(Only::All),
        vitals: Some(Only::All),
    };
    for (_, value) in search.values("category") {
        let token = token(value);
        let known = token.system.is_none_or(|s| s == CATEGORY);
        let (dose, labs, vitals) = match (known, token.code) {
            (true, Some("imaging")) => (true, false, false),
            (true, Some("laboratory")) => (false, true, false),
            (true, Some("vital-signs")) => (false, false, true),
            _ => (false, false, false), // a category Seldinger holds none of
        };
        kinds.dose &= dose;
        if !labs {
            kinds.labs = None;
        }
        if !vitals {
            kinds.vitals = None;
        }
    }
    for (_, value) in search.values("code") {
        let token = token(value);
        let loinc = token.system.is_none_or(|s| s == LOINC);
        match token.code {
            Some(DOSE_SUMMARY_CODE) if loinc => {
                kinds.labs = None;
                kinds.vitals = None;
            }
            Some(code) if loinc => {
                kinds.dose = false;
                let test = LabTest::ALL.into_iter().find(|t| t.loinc() == code);
                kinds.labs = Only::and(kinds.labs, test);
                kinds.vitals = Only::and(kinds.vitals, Sign::of_code(code));
            }
            _ => {
                kinds.dose = false;
                kinds.labs = None;
                kinds.vitals = None;
            }
        }
    }
    Ok(kinds)
}

/// A case's dose summary, from its reports in the order received (`None` without reports).
pub fn dose_summary(case: &Case, reports: &[StoredDoseReport]) -> Option<(Value, DateTime<Utc>)> {
    dose_summary_of(case.id, case.patient_id, case.procedure_started_at, reports)
}

fn dose_summary_of(
    case_id: CaseId,
    patient_id: PatientId,
    started: Option<DateTime<Utc>>,
    reports: &[StoredDoseReport],
) -> Option<(Value, DateTime<Utc>)> {
    if reports.is_empty() {
        return None;
    }
    let all: Vec<_> = reports
        .iter()
        .map(StoredDoseReport::report_totals)
        .collect();
    let latest: Vec<&StoredDoseReport> = counted(&all).into_iter().map(|i| &reports[i]).collect();
    let totals = case_totals(&all);
    let last_updated = reports.iter().map(|r| r.received_at).max()?;
    let effective = latest
        .iter()
        .filter_map(|r| r.performed_at)
        .min()
        .or(started)
        .unwrap_or(last_updated);
    let mut identifier = Vec::new();
    let mut studies: Vec<&str> = latest
        .iter()
        .map(|r| r.study_instance_uid.as_str())
        .collect();
    studies.dedup();
    for study in &studies {
        identifier.push(dicom_identifier(
            "study-instance-uid",
            "Study Instance UID",
            study,
        ));
    }
    for report in &latest {
        identifier.push(dicom_identifier(
            "sop-instance-uid",
            "SOP Instance UID",
            &report.sop_instance_uid,
        ));
    }
    let mut accessions: Vec<&str> = latest
        .iter()
        .filter_map(|r| r.accession_number.as_deref())
        .collect();
    accessions.dedup();
    for accession in accessions {
        identifier.push(json!({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "ACSN",
            }]},
            "value": accession,
        }));
    }
    let part_of: Vec<Value> = studies
        .iter()
        .map(|study| {
            json!({
                "type": "ImagingStudy",
                "identifier": {"system": "urn:dicom:uid", "value": format!("urn:oid:{study}")},
            })
        })
        .collect();
    let devices: Vec<&str> = latest.iter().map(|r| r.device.as_str()).collect();
    let projection = totals.kerma_area_product.is_some()
        || totals.reference_air_kerma.is_some()
        || totals.fluoroscopy_time.is_some();
    let mut resource = json!({
        "resourceType": "Observation",
        "id": format!("dose-{case_id}"),
        "meta": {
            "lastUpdated": instant(last_updated),
            "profile": [DOSE_PROFILE],
        },
        "identifier": identifier,
        "partOf": part_of,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "imaging", "display": "Imaging"}]}],
        "code": {"coding": [{
            "system": LOINC,
            "code": DOSE_SUMMARY_CODE,
            "display": "Radiation exposure and protection information",
        }]},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectiveDateTime": instant(effective),
        "device": {"display": devices.join("; ")},
        "component": components(&totals, projection),
    });
    let operators: Vec<&str> = latest
        .iter()
        .filter_map(|r| r.operator.as_deref())
        .collect();
    if let Some(operator) = operators.first() {
        resource["performer"] = json!([{"display": operator}]);
    }
    Some((resource, last_updated))
}

fn dicom_identifier(code: &str, display: &str, uid: &str) -> Value {
    json!({
        "type": {"coding": [{"system": DICOM_IDENTIFIER_TYPE, "code": code, "display": display}]},
        "system": "urn:dicom:uid",
        "value": format!("urn:oid:{uid}"),
    })
}

/// Milligray from gray.
pub fn mgy(gray: f64) -> f64 {
    tidy(gray * 1e3)
}

/// mGy·cm² from Gy·m²: 1 Gy·m² = 10³ mGy × 10⁴ cm² = 10⁷ mGy·cm².
pub fn mgy_cm2(gray_square_metres: f64) -> f64 {
    tidy(gray_square_metres * 1e7)
}

/// mGy·cm from Gy·m: 10³ × 10².
pub fn mgy_cm(gray_metres: f64) -> f64 {
    tidy(gray_metres * 1e5)
}

/// Drops the binary floating-point residue a unit change leaves (13638.999999999998 → 13639).
fn tidy(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

fn components(totals: &DoseTotals, projection: bool) -> Vec<Value> {
    let procedure = if projection {
        json!({"system": DCM, "code": "113704", "display": "Projection X-Ray"})
    } else {
        json!({"system": "http://snomed.info/sct", "code": "77477000", "display": "Computerized tomography"})
    };
    let mut components = vec![json!({
        "code": {"coding": [{"system": DCM, "code": "121058", "display": "Procedure reported"}]},
        "valueCodeableConcept": {"coding": [procedure]},
    })];
    let mut quantity = |code: &str, display: &str, value: Option<f64>, unit: &str| {
        if let Some(value) = value {
            components.push(json!({
                "code": {"coding": [{"system": DCM, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }));
        }
    };
    quantity(
        "113725",
        "Dose (RP) Total",
        totals.reference_air_kerma.map(|g| mgy(g.0)),
        "mGy",
    );
    quantity(
        "113722",
        "Dose Area Product Total",
        totals.kerma_area_product.map(|k| mgy_cm2(k.0)),
        "mGy.cm2",
    );
    quantity(
        "113726",
        "Fluoro Dose Area Product Total",
        totals.fluoro_kerma_area_product.map(|k| mgy_cm2(k.0)),
        "mGy.cm2",
    );
    quantity(
        "113727",
        "Acquisition Dose Area Product Total",
        totals.acquisition_kerma_area_product.map(|k| mgy_cm2(k.0)),
        "mGy.cm2",
    );
    quantity(
        "113730",
        "Total Fluoro Time",
        totals.fluoroscopy_time.map(|s| tidy(s.0)),
        "s",
    );
    quantity(
        "113813",
        "CT Dose Length Product Total",
        totals.ct_dose_length_product.map(|d| mgy_cm(d.0)),
        "mGy.cm",
    );
    if let Some(frames) = totals.radiographic_frames {
        components.push(json!({
            "code": {"coding": [{"system": DCM, "code": "113731", "display": "Total Number of Radiographic Frames"}]},
            "valueInteger": frames,
        }));
    }
    components
}

pub fn lab_id(patient: PatientId, entry: u64) -> String {
    format!("lab-{patient}-{entry}")
}

pub fn lab_result(
    patient: PatientId,
    entry: u64,
    result: &LabResult,
    last_updated: DateTime<Utc>,
) -> Value {
    json!({
        "resourceType": "Observation",
        "id": lab_id(patient, entry),
        "meta": {"lastUpdated": instant(last_updated)},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": {
            "coding": [{"system": LOINC, "code": result.loinc}],
            "text": result.test.as_str(),
        },
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": instant(result.drawn_at),
        "valueQuantity": {
            "value": result.value,
            "unit": result.unit,
            "system": UCUM,
            "code": result.unit,
        },
    })
}

/// One observation found, with when it was made (its sort key) and its patient (for the audit).
struct Found {
    at: DateTime<Utc>,
    id: String,
    patient: PatientId,
    resource: Value,
    action_on: &'static str,
    opened: Option<String>,
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let not_found = || FhirError::not_found(format!("Observation/{id}"));
    let hide_absent = |e: FhirError| {
        if e.status == StatusCode::NOT_FOUND {
            not_found()
        } else {
            e
        }
    };
    if let Some(case) = id.strip_prefix("dose-") {
        let case: CaseId = case.parse().map_err(|_| not_found())?;
        let (case, reports, opened) = request
            .app
            .case_dose_reports(caller, case)
            .await
            .map_err(|e| hide_absent(e.into()))?;
        let (resource, _) = dose_summary(&case, &reports).ok_or_else(not_found)?;
        request
            .app
            .audit_reads(
                caller,
                vec![
                    Audit::of("fhir-read", "case_dose", case.id, case.patient_id)
                        .break_glass(&opened),
                ],
            )
            .await?;
        return Ok(respond::fhir_json(StatusCode::OK, &resource));
    }
    if id.starts_with("vs-") {
        return vital_signs::read(request, caller, id).await;
    }
    let rest = id.strip_prefix("lab-").ok_or_else(not_found)?;
    let (patient, entry) = rest.rsplit_once('-').ok_or_else(not_found)?;
    let patient: PatientId = patient.parse().map_err(|_| not_found())?;
    let entry: u64 = entry.parse().map_err(|_| not_found())?;
    let (_, results, opened) = request
        .app
        .lab_results_of_patient(caller, patient)
        .await
        .map_err(|e| hide_absent(e.into()))?;
    let (_, result) = results
        .iter()
        .find(|(n, _)| *n == entry)
        .ok_or_else(not_found)?;
    let at = request
        .patient_changed_at(patient)
        .await?
        .unwrap_or(result.drawn_at);
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "lab_result", id, patient).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &lab_result(patient, entry, result, at),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let kinds = kinds(search)?;
    let patient = match search.single("patient")? {
        Some((_, value)) => Some(reference_id("patient", value, "Patient")?),
        None => None,
    };
    // A day is the department's day, as on every other surface.
    let span: Span<DateTime<Utc>> =
        search.instants("date", |day| Some(request.app.time.start_of(day)))?;
    if patient.is_none() && (kinds.labs.is_some() || kinds.vitals.is_some()) {
        return Err(FhirError::invalid(
            "patient",
            "give patient=Patient/id; only dose summaries (code=73569-6 or category=imaging) are searched across patients",
        ));
    }
    // An id that names no patient, or one the caller may not see, has nothing to show.
    let patient: Option<Option<PatientId>> = patient.map(|p| p.parse().ok());
    let mut found: Vec<Found> = Vec::new();
    if !matches!(patient, Some(None)) {
        let patient = patient.flatten();
        if kinds.dose {
            let filter = DoseReportFilter {
                patient_id: patient,
                from: span.from,
                until: span.before,
                limit: 500,
                ..DoseReportFilter::default()
            };
            let by_case = request.app.dose_by_case(caller, &filter).await?;
            for (case, reports) in &by_case.cases {
                if let Some((resource, _)) = dose_summary(case, reports) {
                    let at = resource["effectiveDateTime"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default();
                    found.push(Found {
                        at,
                        id: format!("dose-{}", case.id),
                        patient: case.patient_id,
                        resource,
                        action_on: "case_dose",
                        opened: None,
                    });
                }
            }
        }
        if let (Some(labs), Some(patient)) = (kinds.labs, patient) {
            match request.app.lab_results_of_patient(caller, patient).await {
                Ok((_, results, Opened { break_glass_reason })) => {
                    let updated = request.patient_changed_at(patient).await?;
                    for (entry, result) in results {
                        if !labs.admits(result.test) {
                            continue;
                        }
                        if !span_holds(&span, result.drawn_at) {
                            continue;
                        }
                        found.push(Found {
                            at: result.drawn_at,
                            id: lab_id(patient, entry),
                            patient,
                            resource: lab_result(
                                patient,
                                entry,
                                &result,
                                updated.unwrap_or(result.drawn_at),
                            ),
                            action_on: "lab_result",
                            opened: break_glass_reason.clone(),
                        });
                    }
                }
                Err(seldinger_app::AppError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let (Some(signs), Some(Some(patient))) = (kinds.vitals, patient) {
        for case in cases_of(request, caller, patient).await? {
            for (at, resource) in vital_signs::of_case(&case, |sign| signs.admits(sign)) {
                if !span_holds(&span, at) {
                    continue;
                }
                found.push(Found {
                    at,
                    id: resource["id"].as_str().unwrap_or_default().to_string(),
                    patient,
                    resource,
                    action_on: "vital_signs",
                    opened: None,
                });
            }
        }
    }
    // Newest first; the id breaks ties, so the order (and so the cursor) is stable.
    let key = |f: &Found| instant(f.at);
    found.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.id.cmp(&b.id)));
    let changed = search.last_updated()?;
    found.retain(|f| {
        let updated = f.resource["meta"]["lastUpdated"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        updated.is_some_and(|u| span_holds(&changed, u))
    });
    if let Some(ids) = search.ids()? {
        found.retain(|f| ids.contains(&f.id));
    }
    let total = found.len() as u64;
    let start = match &search.cursor {
        None => 0,
        // The first one after the last given: older, or as old with a later id.
        Some(cursor) => found
            .iter()
            .position(|f| {
                let at = key(f);
                at.as_str() < cursor.key() || (at == cursor.key() && f.id.as_str() > cursor.id())
            })
            .unwrap_or(found.len()),
    };
    let page: Vec<Found> = found
        .into_iter()
        .skip(start)
        .take(search.count as usize + 1)
        .collect();
    let more = page.len() > search.count as usize;
    let page: Vec<Found> = page.into_iter().take(search.count as usize).collect();
    let next = if more {
        page.last().map(|f| Cursor::new(key(f), f.id.clone()))
    } else {
        None
    };
    request
        .app
        .audit_reads(
            caller,
            page.iter()
                .map(|f| {
                    Audit::of("fhir-search", f.action_on, &f.id, f.patient)
                        .break_glass(f.opened.clone())
                })
                .collect(),
        )
        .await?;
    let entries = page
        .into_iter()
        .map(|f| Entry {
            resource_type: "Observation",
            id: f.id,
            resource: f.resource,
        })
        .collect();
    Ok(respond::fhir_json(
        StatusCode::OK,
        &bundle::searchset(
            &request.base,
            "Observation",
            search,
            entries,
            next.as_ref(),
            total,
        ),
    ))
}

fn span_holds(span: &Span<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    span.from.is_none_or(|f| at >= f) && span.before.is_none_or(|b| at < b)
}

/// The elements of a FHIR R4 Observation.
const DEFINED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
    "basedOn",
    "partOf",
    "status",
    "category",
    "code",
    "subject",
    "focus",
    "encounter",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveTiming",
    "effectiveInstant",
    "issued",
    "performer",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
    "dataAbsentReason",
    "interpretation",
    "note",
    "bodySite",
    "method",
    "specimen",
    "device",
    "referenceRange",
    "hasMember",
    "derivedFrom",
    "component",
];

/// What a laboratory result sent here may carry: what Seldinger keeps, and what only says where
/// it came from (the laboratory's own flags and ranges are not its rules, which stay §-sourced).
const ACCEPTED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "identifier",
    "status",
    "category",
    "code",
    "subject",
    "effectiveDateTime",
    "issued",
    "performer",
    "valueQuantity",
    "interpretation",
    "referenceRange",
    "specimen",
    "basedOn",
    "encounter",
];

/// Reads a laboratory Observation into a lab result for a patient, every problem at once.
fn lab_input(body: &Value, now: DateTime<Utc>) -> Result<(PatientId, LabResult), FhirError> {
    use crate::input::{self, text};
    use seldinger_domain::clinical::LabResultInput;
    let fields = input::resource(body, "Observation")?;
    let mut issues = input::unkept_elements(fields, "Observation", DEFINED, ACCEPTED);
    let mut problem = |path: &str, code: &'static str, what: String| {
        issues.push(crate::error::Issue {
            code,
            diagnostics: what,
            expression: Some(format!("Observation.{path}")),
        })
    };
    match text(fields.get("status")) {
        "final" | "amended" | "corrected" => {}
        "" => problem("status", "required", "status is required: final".into()),
        other => problem(
            "status",
            "value",
            format!("'{other}': only a final result is recorded (the safety rules act on it)"),
        ),
    }
    let patient = match text(fields.get("subject").and_then(|s| s.get("reference"))) {
        "" => {
            problem(
                "subject",
                "required",
                "subject is required: Patient/id".into(),
            );
            None
        }
        reference => match reference
            .strip_prefix("Patient/")
            .map(str::parse::<PatientId>)
        {
            Some(Ok(id)) => Some(id),
            _ => {
                problem(
                    "subject.reference",
                    "value",
                    format!("'{reference}' is not a patient here: Patient/id"),
                );
                None
            }
        },
    };
    let loinc = fields
        .get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .and_then(|codings| {
            codings
                .iter()
                .find(|c| text(c.get("system")) == LOINC)
                .map(|c| text(c.get("code")).to_string())
        });
    if loinc.is_none() {
        problem(
            "code",
            "required",
            format!(
                "give the test's LOINC code (system {LOINC}): {}",
                LabTest::ALL
                    .iter()
                    .map(|t| format!("{} {}", t.loinc(), t.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let quantity = fields.get("valueQuantity");
    let value = quantity
        .and_then(|q| q.get("value"))
        .and_then(Value::as_f64);
    if quantity.is_none() {
        problem(
            "valueQuantity",
            "required",
            "the result is required as valueQuantity".into(),
        );
    } else if value.is_none() {
        problem(
            "valueQuantity.value",
            "required",
            "the result's value is required (a number)".into(),
        );
    }
    let unit_system = text(quantity.and_then(|q| q.get("system")));
    if quantity.is_some() && !unit_system.is_empty() && unit_system != UCUM {
        problem(
            "valueQuantity.system",
            "value",
            format!("'{unit_system}': units are UCUM ({UCUM})"),
        );
    }
    let unit = match text(quantity.and_then(|q| q.get("code"))) {
        "" => text(quantity.and_then(|q| q.get("unit"))),
        code => code,
    };
    let drawn_at = match text(fields.get("effectiveDateTime")) {
        "" => {
            problem(
                "effectiveDateTime",
                "required",
                "when the specimen was drawn is required (effectiveDateTime): recency rules use it"
                    .into(),
            );
            None
        }
        raw => match DateTime::parse_from_rfc3339(raw) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                problem(
                    "effectiveDateTime",
                    "value",
                    format!("'{raw}' is not a date-time with its zone (YYYY-MM-DDThh:mm:ssZ)"),
                );
                None
            }
        },
    };
    let identifier = match input::single_identifier(fields, "Observation") {
        Ok(identifier) => identifier.map(|(system, value)| format!("{system}|{value}")),
        Err(issue) => {
            issues.push(issue);
            None
        }
    };
    let input = LabResultInput {
        test: loinc.unwrap_or_default(),
        value: value.unwrap_or(f64::NAN),
        unit: unit.to_string(),
        drawn_at,
    };
    let result = if issues.is_empty() {
        match LabResult::parse(&input, now) {
            Ok(result) => Some(result),
            Err(errors) => {
                for error in errors.0 {
                    let path = match error.field.as_str() {
                        "test" => "Observation.code",
                        "value" => "Observation.valueQuantity.value",
                        "unit" => "Observation.valueQuantity.code",
                        "drawn_at" => "Observation.effectiveDateTime",
                        _ => "Observation",
                    };
                    issues.push(crate::error::Issue {
                        code: "invariant",
                        diagnostics: format!("{}: {}", error.field, error.detail),
                        expression: Some(path.into()),
                    });
                }
                None
            }
        }
    } else {
        None
    };
    if !issues.is_empty() {
        let malformed = issues
            .iter()
            .any(|i| i.code == "structure" || i.code == "not-supported");
        let status = if malformed {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Err(FhirError::many(status, issues));
    }
    match (patient, result) {
        (Some(patient), Some(mut result)) => {
            result.identifier = identifier;
            Ok((patient, result))
        }
        _ => Err(FhirError::internal()),
    }
}

/// Records a laboratory result an EHR or laboratory sends; with `If-None-Exist` on its
/// identifier, one recorded already is answered instead.
pub async fn create(
    request: &Request,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    body: &Value,
) -> Result<Response, FhirError> {
    let condition = crate::input::identifier_condition(headers)?
        .map(|(system, value)| format!("{system}|{value}"));
    let (patient, result) = lab_input(body, request.app.clock.now())?;
    if condition.is_some() && condition != result.identifier {
        return Err(FhirError::invalid(
            "If-None-Exist",
            "names a different identifier from the resource's",
        ));
    }
    if let Some(identifier) = &result.identifier {
        let existing = match request
            .app
            .lab_result_by_identifier(caller, identifier)
            .await
        {
            Ok(existing) => existing,
            Err(seldinger_app::AppError::NotFound(_)) => return Err(FhirError::new(
                StatusCode::CONFLICT,
                "duplicate",
                "a result with this identifier is recorded for a patient outside what you may see",
            )
            .at("Observation.identifier")),
            Err(e) => return Err(e.into()),
        };
        if let Some((patient, entry)) = existing {
            if condition.is_none() {
                return Err(FhirError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    format!("result {identifier} was recorded already (Observation/{}); send If-None-Exist to have it answered instead", lab_id(patient, entry)),
                )
                .at("Observation.identifier"));
            }
            return read(request, caller, &lab_id(patient, entry)).await;
        }
    }
    let entry = match request.app.record_lab_result(caller, patient, result).await {
        Ok(entry) => entry,
        Err(seldinger_app::AppError::Store(seldinger_store::StoreError::Duplicate(what))) => {
            return Err(FhirError::new(StatusCode::CONFLICT, "duplicate", what)
                .at("Observation.identifier"))
        }
        Err(seldinger_app::AppError::NotFound(_)) => {
            return Err(FhirError::unprocessable(
                "Observation.subject",
                format!("Patient/{patient} is not a patient whose record you may add to"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let id = lab_id(patient, entry);
    let mut response = read(request, caller, &id).await?;
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) =
        axum::http::HeaderValue::from_str(&format!("{}/Observation/{id}", request.base))
    {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seldinger_domain::dose::{Gray, GrayMetre, GrayMetreSquared, Seconds};

    fn report(sop: &str, received_minute: u32, totals: DoseTotals) -> StoredDoseReport {
        let at = |minute| {
            DateTime::parse_from_rfc3339(&format!("2026-03-04T10:{minute:02}:00Z"))
                .map(|t| t.with_timezone(&Utc))
                .unwrap()
        };
        StoredDoseReport {
            sop_instance_uid: sop.into(),
            study_instance_uid: "1.2.3".into(),
            accession_number: Some("ACC1".into()),
            patient_id: None,
            performed_at: Some(at(0)),
            received_at: at(received_minute),
            source: "test".into(),
            device: "Angio Co Model ANGIO1".into(),
            operator: Some("Okafor^N".into()),
            case_id: None,
            case_patient_id: None,
            link_basis: None,
            unmatched_reason: None,
            link_version: 1,
            totals,
            extracted: Value::Null,
        }
    }

    fn component<'a>(summary: &'a Value, code: &str) -> &'a Value {
        summary["component"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["code"]["coding"][0]["code"] == code))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn units_convert_from_the_dose_report_to_the_igs() {
        assert_eq!(mgy_cm2(1.0), 1e7, "1 Gy·m² = 10⁷ mGy·cm²");
        assert_eq!(mgy_cm2(0.0013639), 13639.0);
        assert_eq!(mgy(0.212), 212.0);
        assert_eq!(mgy_cm(0.020312), 2031.2);
    }

    #[test]
    fn the_latest_report_of_a_study_and_device_is_the_summary() {
        let early = report(
            "1.2.3.1",
            1,
            DoseTotals {
                kerma_area_product: Some(GrayMetreSquared(0.0001)),
                ..DoseTotals::default()
            },
        );
        let late = report(
            "1.2.3.2",
            5,
            DoseTotals {
                reference_air_kerma: Some(Gray(0.212)),
                kerma_area_product: Some(GrayMetreSquared(0.0013639)),
                fluoro_kerma_area_product: Some(GrayMetreSquared(0.0004523)),
                acquisition_kerma_area_product: Some(GrayMetreSquared(0.0009116)),
                fluoroscopy_time: Some(Seconds(450.0)),
                radiographic_frames: Some(312),
                ct_dose_length_product: Some(GrayMetre(0.020312)),
                ..DoseTotals::default()
            },
        );
        let case = "7d0e6a8e-1c7b-4c3e-9a55-0b6f3c1d2e4f"
            .parse::<CaseId>()
            .unwrap();
        let patient = "2b1f9d3c-5e6a-4f70-8b21-9c4d5e6f7a8b"
            .parse::<PatientId>()
            .unwrap();
        let (summary, updated) =
            dose_summary_of(case, patient, None, &[early, late]).expect("a summary");
        assert_eq!(summary["id"], format!("dose-{case}"));
        assert_eq!(
            summary["subject"]["reference"],
            format!("Patient/{patient}")
        );
        assert_eq!(instant(updated), "2026-03-04T10:05:00.000Z");
        let value = |code| component(&summary, code)["valueQuantity"]["value"].as_f64();
        assert_eq!(value("113725"), Some(212.0));
        assert_eq!(value("113722"), Some(13639.0));
        assert_eq!(value("113726"), Some(4523.0));
        assert_eq!(value("113727"), Some(9116.0));
        assert_eq!(value("113730"), Some(450.0));
        assert_eq!(value("113813"), Some(2031.2));
        assert_eq!(component(&summary, "113731")["valueInteger"], 312);
        assert_eq!(
            component(&summary, "121058")["valueCodeableConcept"]["coding"][0]["code"],
            "113704"
        );
        let identifiers: Vec<&str> = summary["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["value"].as_str())
            .collect();
        // The superseded report is not the summary's: only the study and the latest report.
        assert_eq!(identifiers, ["urn:oid:1.2.3", "urn:oid:1.2.3.2", "ACC1"]);
        assert_eq!(summary["partOf"][0]["identifier"]["value"], "urn:oid:1.2.3");
    }

    #[test]
    fn a_case_without_reports_has_no_summary() {
        assert!(dose_summary_of(
            "7d0e6a8e-1c7b-4c3e-9a55-0b6f3c1d2e4f"
                .parse::<CaseId>()
                .unwrap(),
            "2b1f9d3c-5e6a-4f70-8b21-9c4d5e6f7a8b"
                .parse::<PatientId>()
                .unwrap(),
            None,
            &[]
        )
        .is_none());
    }
}
