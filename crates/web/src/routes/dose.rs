//! Radiation dose: stored reports and the unmatched queue, linking by hand, a case's dose, a
//! patient's cumulative dose, statistics per procedure, room, device or operator, and CSV of each
//! for the physicist (`format=csv`).

use super::{csv_response, parse_date, path_id, QueryParams};
use crate::auth::{Audit, Caller};
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Days, NaiveDate, Utc};
use seldinger_app::LinkChange;
use seldinger_domain::access::Permission;
use seldinger_domain::dose::{
    assess, case_totals, DoseAssessment, DoseTotals, Gray, GrayMetre, GrayMetreSquared, Seconds,
};
use seldinger_domain::dose_link::LinkBasis;
use seldinger_domain::dose_stats::{
    compare, distribution, Comparison, Distribution, ReferenceLevel, StatMeasure,
};
use seldinger_domain::followup::{dose_discharge_note, FollowUpTask};
use seldinger_domain::lifecycle::Case;
use seldinger_domain::{CaseId, PatientId, ProcedureId};
use seldinger_store::{DoseReportFilter, FollowUpFilter, RecordedEvent, StoredDoseReport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The default period for statistics and cumulative dose: the last year.
const DEFAULT_PERIOD_DAYS: u64 = 365;

/// A period of whole department days, `from` to `until` inclusive.
pub(crate) struct Period {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Period {
    pub fn parse(q: &QueryParams, today: NaiveDate) -> Result<Period, ApiError> {
        // Until defaults to today, or to `from` when that is later (a period in the future).
        let from_given = q
            .one("from")
            .map(|d| parse_date("from", Some(d), today))
            .transpose()?;
        let until = parse_date(
            "until",
            q.one("until"),
            from_given.unwrap_or(today).max(today),
        )?;
        // A `from` after `until` is a period with no days: nothing is in it (the answer names
        // the period, so the caller sees why it is empty).
        let from = from_given.unwrap_or(until - Days::new(DEFAULT_PERIOD_DAYS));
        Ok(Period { from, until })
    }

    /// The reports of the period's days, as the department counts its days (its time zone);
    /// the end is exclusive: the start of the day after `until`.
    pub fn filter(&self, time: &seldinger_domain::DepartmentTime) -> DoseReportFilter {
        DoseReportFilter {
            from: Some(time.start_of(self.from)),
            until: Some(time.start_of(self.until + Days::new(1))),
            limit: 100_000,
            ..Default::default()
        }
    }
}

/// The audit line of a report read: its patient, or — not yet linked to one of ours — the patient
/// identifier the report itself shows.
pub(crate) fn audit_report<'a>(action: &'a str, report: &StoredDoseReport) -> Audit<'a> {
    Audit {
        action,
        resource_type: "dose_report",
        resource_id: Some(report.sop_instance_uid.clone()),
        patient_id: report.case_patient_id.map(|p| p.to_string()).or_else(|| {
            report
                .patient_id
                .as_ref()
                .map(|id| format!("dicom-patient-id:{id}"))
        }),
        break_glass_reason: None,
        outcome: "allowed",
    }
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Reports as CSV rows, values in SI units as stored (the header names each unit).
fn reports_csv(reports: &[StoredDoseReport], cases: &BTreeMap<CaseId, Case>) -> Response {
    let rows = reports.iter().map(|r| {
        let case = r.case_id.and_then(|id| cases.get(&id));
        vec![
            r.sop_instance_uid.clone(),
            r.study_instance_uid.clone(),
            r.accession_number.clone().unwrap_or_default(),
            r.patient_id.clone().unwrap_or_default(),
            r.performed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.received_at.to_rfc3339(),
            r.source.clone(),
            r.device.clone(),
            r.operator.clone().unwrap_or_default(),
            r.case_id.map(|c| c.to_string()).unwrap_or_default(),
            r.link_basis
                .map(|b| link_basis_name(b).to_string())
                .unwrap_or_default(),
            r.unmatched_reason.clone().unwrap_or_default(),
            case.and_then(Case::planned_procedure)
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            case.and_then(|c| c.booking.as_ref())
                .map(|b| b.room.as_str().to_string())
                .unwrap_or_default(),
            number(r.totals.reference_air_kerma.map(|g| g.0)),
            number(r.totals.kerma_area_product.map(|k| k.0)),
            number(r.totals.fluoroscopy_time.map(|s| s.0)),
            number(r.totals.ct_dose_length_product.map(|d| d.0)),
        ]
    });
    csv_response(
        "seldinger-dose-reports.csv",
        &[
            "sop_instance_uid",
            "study_instance_uid",
            "accession_number",
            "dicom_patient_id",
            "performed_at",
            "received_at",
            "source",
            "device",
            "operator",
            "case_id",
            "link_basis",
            "unmatched_reason",
            "procedure",
            "room",
            "reference_air_kerma_gy",
            "kerma_area_product_gy_m2",
            "fluoroscopy_time_s",
            "ct_dose_length_product_gy_m",
        ],
        rows,
    )
}

fn link_basis_name(basis: LinkBasis) -> &'static str {
    match basis {
        LinkBasis::AccessionNumber => "accession_number",
        LinkBasis::StudyInstanceUid => "study_instance_uid",
        LinkBasis::PatientAndRoomTime => "patient_and_room_time",
        LinkBasis::Manual => "manual",
    }
}

#[utoipa::path(get, path = "/api/v1/dose/reports", tag = "dose",
    params(("unmatched" = Option<bool>, Query, description = "only reports not linked to a case (the physicist's queue)"),
        ("case_id" = Option<String>, Query, description = "one case's reports"),
        ("from" = Option<String>, Query, description = "first day (YYYY-MM-DD, the department's day) the study started"),
        ("until" = Option<String>, Query, description = "last day (YYYY-MM-DD, the department's day), inclusive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "1-10000, default 500"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, description = "stored reports with their extracted values and link, newest study first; one page (X-Total-Count, Link rel=next)", body = Vec<StoredDoseReport>,
            headers(("X-Total-Count" = u64, description = "reports the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn reports(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(
        pairs,
        &[
            "unmatched",
            "case_id",
            "from",
            "until",
            "limit",
            "format",
            "cursor",
        ],
    )?;
    let csv = q.wants_csv()?;
    let day = |field: &str| {
        q.one(field)
            .map(|d| parse_date(field, Some(d), NaiveDate::MIN))
            .transpose()
    };
    let (from, until) = (day("from")?, day("until")?);
    let filter = DoseReportFilter {
        unmatched: q.flag("unmatched")?,
        case_id: q
            .one("case_id")
            .map(|id| {
                id.parse::<CaseId>()
                    .map_err(|e| ApiError::bad_request("case_id", e))
            })
            .transpose()?,
        patient_id: None,
        from: from.map(|d| state.time.start_of(d)),
        until: until.map(|d| state.time.start_of(d + Days::new(1))),
        limit: q.limit(500, 10_000)?,
        totals_only: false,
    };
    let page = state
        .dose_reports_page(&caller, &filter, q.cursor()?.as_ref())
        .await?;
    state
        .audit_all(
            &caller,
            page.items.iter().map(|r| audit_report("read", r)).collect(),
        )
        .await?;
    if csv {
        let cases = state.cases_of(&page.items).await?;
        let mut response = reports_csv(&page.items, &cases);
        super::page_headers(&mut response, &uri, page.next.as_ref(), page.total);
        return Ok(response);
    }
    Ok(super::paged_json(&uri, page))
}

/// A report with its link history.
#[derive(Serialize, ToSchema)]
pub struct DoseReportDetail {
    #[serde(flatten)]
    pub report: StoredDoseReport,
    /// Every link decision, automatic or by hand, oldest first.
    pub link_history: Vec<RecordedEvent>,
}

async fn report_detail(state: &AppState, sop: &str) -> Result<DoseReportDetail, ApiError> {
    let report = state
        .store
        .dose_report(sop)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dose report {sop}")))?;
    let link_history = state.store.dose_link_history(sop).await?;
    Ok(DoseReportDetail {
        report,
        link_history,
    })
}

#[utoipa::path(get, path = "/api/v1/dose/reports/{sop_instance_uid}", tag = "dose",
    params(("sop_instance_uid" = String, Path, description = "the report's SOP Instance UID")),
    responses((status = 200, body = DoseReportDetail), (status = 404, body = crate::problem::Problem)))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(sop): Path<String>,
) -> Result<Json<DoseReportDetail>, ApiError> {
    let detail = report_detail(&state, &sop).await?;
    state
        .audit(&caller, audit_report("read", &detail.report))
        .await?;
    Ok(Json(detail))
}

/// A physicist's decision: link the report to a case, or take it off one (`case_id` null).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The report's `link_version` when the client read it; a stale version is refused with 409.
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    /// The case the report belongs to; null to put it back in the unmatched queue.
    pub case_id: Option<String>,
    /// Why (required): what showed which case it is.
    pub reason: String,
}

/// The report after a manual link, and the follow-up tasks its dose created.
#[derive(Serialize, ToSchema)]
pub struct LinkResult {
    #[serde(flatten)]
    pub detail: DoseReportDetail,
    pub follow_up_tasks_created: Vec<FollowUpTask>,
}

#[utoipa::path(post, path = "/api/v1/dose/reports/{sop_instance_uid}/link", tag = "dose", request_body = LinkRequest,
    params(("sop_instance_uid" = String, Path, description = "the report's SOP Instance UID")),
    responses((status = 200, body = LinkResult), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale link version", body = crate::problem::Problem)))]
pub async fn link(
    State(state): State<AppState>,
    caller: Caller,
    Path(sop): Path<String>,
    ApiJson(request): ApiJson<LinkRequest>,
) -> Result<Json<LinkResult>, ApiError> {
    let result = link_report(
        &state,
        &caller,
        &sop,
        request.expected_version,
        request.case_id.as_deref(),
        &request.reason,
    )
    .await?;
    Ok(Json(result))
}

/// A physicist's manual link (or unlink) of a report, as the API and the dose page both do.
pub(crate) async fn link_report(
    state: &AppState,
    caller: &Caller,
    sop: &str,
    expected_version: u64,
    case_id: Option<&str>,
    reason: &str,
) -> Result<LinkResult, ApiError> {
    let case_id = case_id
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|raw| {
            raw.parse::<CaseId>().map_err(|e| {
                ApiError::invalid(seldinger_domain::ValidationErrors::single("case_id", e))
            })
        })
        .transpose()?;
    let linked = state
        .link_dose_report(
            caller,
            LinkChange {
                sop_instance_uid: sop.to_string(),
                expected_version,
                case_id,
                reason: reason.to_string(),
            },
        )
        .await?;
    let link_history = state.store.dose_link_history(sop).await?;
    Ok(LinkResult {
        detail: DoseReportDetail {
            report: linked.report,
            link_history,
        },
        follow_up_tasks_created: linked.follow_up_tasks_created,
    })
}

/// A case's dose: totals from all its reports, what §5 asks for, and how it compares.
#[derive(Serialize, ToSchema)]
pub struct CaseDose {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub procedure: Option<ProcedureId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub totals: DoseTotals,
    /// Absent until a report is linked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<DoseAssessment>,
    /// For the discharge instructions, when §5 says the patient must be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discharge_note: Option<String>,
    /// Against the configured reference level and the department's cases of the same procedure
    /// over the last year.
    pub comparisons: Vec<Comparison>,
    pub follow_up_tasks: Vec<FollowUpTask>,
    pub reports: Vec<StoredDoseReport>,
}

pub(crate) fn totals_of(reports: &[StoredDoseReport]) -> DoseTotals {
    case_totals(
        &reports
            .iter()
            .map(StoredDoseReport::report_totals)
            .collect::<Vec<_>>(),
    )
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/dose", tag = "dose",
    params(("id" = String, Path, description = "case id (UUID)"),
        ("format" = Option<String>, Query, description = "json (default), or csv: the case's irradiation events")),
    responses((status = 200, body = CaseDose), (status = 404, body = crate::problem::Problem)))]
pub async fn case_dose(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["format"])?;
    let csv = q.wants_csv()?;
    let id: CaseId = path_id("case", &id)?;
    let (case, opened) = state.open_case(&caller, Permission::ReadDose, id).await?;
    let reports = state.store.case_dose_reports(id).await?;
    state
        .audit(
            &caller,
            Audit::of("read", "case_dose", case.id, case.patient_id).break_glass(&opened),
        )
        .await?;
    if csv {
        return Ok(events_csv(&reports));
    }
    let totals = totals_of(&reports);
    let end = case
        .procedure_completed_at
        .or_else(|| reports.iter().filter_map(|r| r.performed_at).max())
        .unwrap_or_else(|| state.clock.now());
    let assessment = (!reports.is_empty()).then(|| assess(&totals, end, &state.safety));
    let procedure = case.planned_procedure().cloned();
    let today = state.today();
    let last_year = Period {
        from: today - Days::new(DEFAULT_PERIOD_DAYS),
        until: today,
    };
    let kept = state
        .dose_by_case(&caller, &last_year.filter(&state.time))
        .await?;
    let units = &kept.cases;
    let peers: Vec<DoseTotals> = units
        .iter()
        .filter(|(c, _)| procedure.is_some() && c.planned_procedure() == procedure.as_ref())
        .map(|(_, reports)| totals_of(reports))
        .collect();
    let comparisons = if reports.is_empty() {
        Vec::new()
    } else {
        compare(procedure.as_ref(), &totals, &peers, &state.dose_levels)
    };
    let follow_up_tasks = state
        .store
        .follow_up_tasks(
            &caller.scope(Permission::ReadDose),
            &FollowUpFilter {
                case_id: Some(case.id),
                ..Default::default()
            },
        )
        .await?;
    Ok(Json(CaseDose {
        case_id: case.id,
        patient_id: case.patient_id,
        room: case.booking.as_ref().map(|b| b.room.as_str().to_string()),
        procedure,
        discharge_note: assessment
            .as_ref()
            .and_then(|a| dose_discharge_note(a, &state.time)),
        assessment,
        totals,
        comparisons,
        follow_up_tasks,
        reports,
    })
    .into_response())
}

/// One row per irradiation event or CT acquisition, from the reports' extracted content.
fn events_csv(reports: &[StoredDoseReport]) -> Response {
    let field = |v: &serde_json::Value, key: &str| match v.get(key) {
        Some(serde_json::Value::Null) | None => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(pair)) => pair
            .first()
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string(),
        Some(other) => other.to_string(),
    };
    let mut rows = Vec::new();
    for r in reports {
        let base = |kind: &str, v: &serde_json::Value| {
            vec![
                r.sop_instance_uid.clone(),
                r.case_id.map(|c| c.to_string()).unwrap_or_default(),
                kind.to_string(),
                field(v, "uid"),
            ]
        };
        let empty = serde_json::Value::Array(Vec::new());
        for e in r
            .extracted
            .get("events")
            .and_then(|e| e.as_array())
            .unwrap_or(&Vec::new())
        {
            let mut row = base("irradiation_event", e);
            for key in [
                "event_type",
                "plane",
                "dose_area_product",
                "dose_rp",
                "kvp",
                "tube_current_ma",
                "exposure_time",
                "irradiation_duration",
                "pulses",
                "primary_angle",
                "secondary_angle",
            ] {
                row.push(field(e, key));
            }
            row.extend([String::new(), String::new()]);
            rows.push(row);
        }
        let acquisitions = r
            .extracted
            .get("ct")
            .and_then(|ct| ct.get("acquisitions"))
            .unwrap_or(&empty);
        for a in acquisitions.as_array().unwrap_or(&Vec::new()) {
            let mut row = base("ct_acquisition", a);
            row.push(field(a, "acquisition_type"));
            row.extend(std::iter::repeat_n(String::new(), 10));
            row.push(field(a, "mean_ctdivol"));
            row.push(field(a, "dlp"));
            rows.push(row);
        }
    }
    csv_response(
        "seldinger-dose-events.csv",
        &[
            "sop_instance_uid",
            "case_id",
            "kind",
            "uid",
            "type",
            "plane",
            "dose_area_product_gy_m2",
            "dose_rp_gy",
            "kvp",
            "tube_current_ma",
            "exposure_time_s",
            "irradiation_duration_s",
            "pulses",
            "primary_angle_deg",
            "secondary_angle_deg",
            "mean_ctdivol_gy",
            "dlp_gy_m",
        ],
        rows,
    )
}

/// One case's share of a patient's cumulative dose.
#[derive(Serialize, ToSchema)]
pub struct CaseDoseLine {
    pub case_id: CaseId,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub procedure: Option<ProcedureId>,
    /// When its first report's study started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performed_at: Option<DateTime<Utc>>,
    pub totals: DoseTotals,
}

/// A patient's cumulative dose over a period, across all their procedures.
#[derive(Serialize, ToSchema)]
pub struct PatientDose {
    pub patient_id: PatientId,
    pub from: NaiveDate,
    pub until: NaiveDate,
    /// Sums over the cases; a measure no case reported is absent.
    pub cumulative: DoseTotals,
    pub cases: Vec<CaseDoseLine>,
}

fn sum_totals(all: &[DoseTotals]) -> DoseTotals {
    fn sum(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
        values
            .flatten()
            .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    }
    DoseTotals {
        reference_air_kerma: sum(all.iter().map(|t| t.reference_air_kerma.map(|g| g.0))).map(Gray),
        peak_skin_dose: sum(all.iter().map(|t| t.peak_skin_dose.map(|g| g.0))).map(Gray),
        kerma_area_product: sum(all.iter().map(|t| t.kerma_area_product.map(|k| k.0)))
            .map(GrayMetreSquared),
        fluoroscopy_time: sum(all.iter().map(|t| t.fluoroscopy_time.map(|s| s.0))).map(Seconds),
        ct_dose_length_product: sum(all.iter().map(|t| t.ct_dose_length_product.map(|d| d.0)))
            .map(GrayMetre),
        fluoro_kerma_area_product: sum(all
            .iter()
            .map(|t| t.fluoro_kerma_area_product.map(|k| k.0)))
        .map(GrayMetreSquared),
        acquisition_kerma_area_product: sum(all
            .iter()
            .map(|t| t.acquisition_kerma_area_product.map(|k| k.0)))
        .map(GrayMetreSquared),
        radiographic_frames: sum(all.iter().map(|t| t.radiographic_frames.map(f64::from)))
            .map(|n| n.round() as u32),
    }
}

#[utoipa::path(get, path = "/api/v1/patients/{id}/dose", tag = "dose",
    params(("id" = String, Path, description = "patient id (UUID)"),
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD (the department's day); default a year before until"),
        ("until" = Option<String>, Query, description = "last day, inclusive; default today"),
        ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, body = PatientDose), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)))]
pub async fn patient_dose(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until", "format"])?;
    let csv = q.wants_csv()?;
    let period = Period::parse(&q, state.today())?;
    let id: PatientId = path_id("patient", &id)?;
    let (_, opened) = state.open_patient_record(&caller, id).await?;
    let filter = DoseReportFilter {
        patient_id: Some(id),
        ..period.filter(&state.time)
    };
    let kept = state.dose_by_case(&caller, &filter).await?;
    let units = &kept.cases;
    let cases: Vec<CaseDoseLine> = units
        .iter()
        .map(|(case, reports)| CaseDoseLine {
            case_id: case.id,
            procedure: case.planned_procedure().cloned(),
            performed_at: reports.iter().filter_map(|r| r.performed_at).min(),
            totals: totals_of(reports),
        })
        .collect();
    state
        .audit(
            &caller,
            Audit {
                action: "read",
                resource_type: "patient_dose",
                resource_id: Some(id.to_string()),
                patient_id: Some(id.to_string()),
                break_glass_reason: opened.break_glass_reason.clone(),
                outcome: "allowed",
            },
        )
        .await?;
    let cumulative = sum_totals(&cases.iter().map(|c| c.totals.clone()).collect::<Vec<_>>());
    if csv {
        let row = |case: String, procedure: String, at: String, t: &DoseTotals| {
            vec![
                case,
                procedure,
                at,
                number(t.reference_air_kerma.map(|g| g.0)),
                number(t.kerma_area_product.map(|k| k.0)),
                number(t.fluoroscopy_time.map(|s| s.0)),
                number(t.ct_dose_length_product.map(|d| d.0)),
            ]
        };
        let mut rows: Vec<Vec<String>> = cases
            .iter()
            .map(|c| {
                row(
                    c.case_id.to_string(),
                    c.procedure
                        .as_ref()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    c.performed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    &c.totals,
                )
            })
            .collect();
        rows.push(row(
            "cumulative".into(),
            String::new(),
            format!("{} to {}", period.from, period.until),
            &cumulative,
        ));
        return Ok(csv_response(
            "seldinger-patient-dose.csv",
            &[
                "case_id",
                "procedure",
                "performed_at",
                "reference_air_kerma_gy",
                "kerma_area_product_gy_m2",
                "fluoroscopy_time_s",
                "ct_dose_length_product_gy_m",
            ],
            rows,
        ));
    }
    Ok(Json(PatientDose {
        patient_id: id,
        from: period.from,
        until: period.until,
        cumulative,
        cases,
    })
    .into_response())
}

/// How the statistics are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Procedure,
    Room,
    Device,
    Operator,
}

impl GroupBy {
    fn parse(value: Option<String>) -> Result<Self, ApiError> {
        match value.as_deref() {
            None | Some("procedure") => Ok(GroupBy::Procedure),
            Some("room") => Ok(GroupBy::Room),
            Some("device") => Ok(GroupBy::Device),
            Some("operator") => Ok(GroupBy::Operator),
            Some(other) => Err(ApiError::bad_request(
                "by",
                format!("'{other}' is not procedure, room, device or operator"),
            )),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MeasureStats {
    pub measure: StatMeasure,
    pub unit: &'static str,
    pub distribution: Distribution,
    /// The configured level, when grouped by procedure and one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_level: Option<ReferenceLevel>,
    /// Cases above the reference level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_reference_level: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupStats {
    /// Procedure id, room id, device, or operator name; "unknown" when the record does not say.
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub cases: usize,
    pub measures: Vec<MeasureStats>,
}

#[derive(Serialize, ToSchema)]
pub struct DoseStatistics {
    pub by: GroupBy,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub groups: Vec<GroupStats>,
    /// Reports in the period not linked to a case: not counted (they have no procedure, room or
    /// case), except by device.
    pub unmatched_reports: usize,
}

const UNKNOWN: &str = "unknown";

#[utoipa::path(get, path = "/api/v1/dose/statistics", tag = "dose",
    params(("by" = Option<String>, Query, description = "procedure (default), room, device or operator"),
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD (the department's day); default a year before until"),
        ("until" = Option<String>, Query, description = "last day, inclusive; default today"),
        ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "per group: each measure's distribution (median, 75th percentile) and reference level", body = DoseStatistics),
        (status = 400, body = crate::problem::Problem)))]
pub async fn statistics(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["by", "from", "until", "format"])?;
    let csv = q.wants_csv()?;
    let by = GroupBy::parse(q.one("by"))?;
    let period = Period::parse(&q, state.today())?;
    let kept = state
        .dose_by_case(&caller, &period.filter(&state.time))
        .await?;
    let seldinger_app::DoseByCase {
        cases: units,
        unmatched,
        ..
    } = &*kept;
    // Each unit: its group key and totals. A case counts once (per device when by device).
    let mut keyed: Vec<(String, DoseTotals)> = Vec::new();
    for (case, reports) in units {
        match by {
            GroupBy::Procedure => keyed.push((
                case.planned_procedure()
                    .map_or(UNKNOWN.into(), |p| p.as_str().to_string()),
                totals_of(reports),
            )),
            GroupBy::Room => keyed.push((
                case.booking
                    .as_ref()
                    .map_or(UNKNOWN.into(), |b| b.room.as_str().to_string()),
                totals_of(reports),
            )),
            GroupBy::Operator => keyed.push((
                reports
                    .iter()
                    .find_map(|r| r.operator.clone())
                    .unwrap_or_else(|| UNKNOWN.into()),
                totals_of(reports),
            )),
            GroupBy::Device => {
                let mut devices: BTreeMap<&str, Vec<StoredDoseReport>> = BTreeMap::new();
                for r in reports {
                    devices
                        .entry(r.device.as_str())
                        .or_default()
                        .push(r.clone());
                }
                for (device, reports) in devices {
                    keyed.push((device_key(device), totals_of(&reports)));
                }
            }
        }
    }
    if by == GroupBy::Device {
        for r in unmatched {
            keyed.push((device_key(&r.device), totals_of(std::slice::from_ref(r))));
        }
    }
    let mut groups: BTreeMap<String, Vec<DoseTotals>> = BTreeMap::new();
    for (key, totals) in keyed {
        groups.entry(key).or_default().push(totals);
    }
    let groups: Vec<GroupStats> = groups
        .into_iter()
        .map(|(group, totals)| {
            let procedure = (by == GroupBy::Procedure)
                .then(|| ProcedureId::parse(&group).ok())
                .flatten();
            let measures = StatMeasure::ALL
                .into_iter()
                .filter_map(|measure| {
                    let values: Vec<f64> = totals.iter().filter_map(|t| measure.of(t)).collect();
                    let distribution = distribution(&values)?;
                    let reference_level = procedure
                        .as_ref()
                        .and_then(|p| state.dose_levels.get(p, measure))
                        .cloned();
                    let above_reference_level = reference_level
                        .as_ref()
                        .map(|l| values.iter().filter(|v| **v > l.value).count());
                    Some(MeasureStats {
                        measure,
                        unit: measure.unit(),
                        distribution,
                        reference_level,
                        above_reference_level,
                    })
                })
                .collect();
            GroupStats {
                name: procedure
                    .as_ref()
                    .and_then(|p| state.catalogue.get(p))
                    .map(|p| p.name.clone()),
                group,
                cases: totals.len(),
                measures,
            }
        })
        .collect();
    state
        .audit(
            &caller,
            Audit {
                action: "read",
                resource_type: "dose_statistics",
                resource_id: None,
                patient_id: None,
                break_glass_reason: None,
                outcome: "allowed",
            },
        )
        .await?;
    let statistics = DoseStatistics {
        by,
        from: period.from,
        until: period.until,
        groups,
        unmatched_reports: unmatched.len(),
    };
    if csv {
        let rows = statistics.groups.iter().flat_map(|g| {
            g.measures.iter().map(move |m| {
                vec![
                    g.group.clone(),
                    g.name.clone().unwrap_or_default(),
                    m.measure.as_str().to_string(),
                    m.unit.to_string(),
                    m.distribution.n.to_string(),
                    m.distribution.min.to_string(),
                    m.distribution.median.to_string(),
                    m.distribution.p75.to_string(),
                    m.distribution.max.to_string(),
                    number(m.reference_level.as_ref().map(|l| l.value)),
                    m.reference_level
                        .as_ref()
                        .map(|l| l.source.clone())
                        .unwrap_or_default(),
                    m.above_reference_level
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                ]
            })
        });
        return Ok(csv_response(
            "seldinger-dose-statistics.csv",
            &[
                "group",
                "name",
                "measure",
                "unit",
                "n",
                "min",
                "median",
                "p75",
                "max",
                "reference_level",
                "reference_level_source",
                "above_reference_level",
            ],
            rows.collect::<Vec<_>>(),
        ));
    }
    Ok(Json(statistics).into_response())
}

fn device_key(device: &str) -> String {
    if device.trim().is_empty() {
        UNKNOWN.into()
    } else {
        device.to_string()
    }
}
