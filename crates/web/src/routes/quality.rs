//! The quality dashboard (clinical-rules.md §6), the M&M list and the registry export, over a
//! period of the department's days.

use super::dose::Period;
use super::{csv_response, path_id, QueryParams};
use crate::auth::Caller;
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Days, NaiveDate, Utc};
use seldinger_app::{MmCase, QualityDashboard};
use seldinger_domain::device_registry::Rate;
use seldinger_domain::mm::{MmNoteAdded, MmReview};
use seldinger_domain::registry::{DateMode, TABLES};
use seldinger_domain::CaseId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

impl Period {
    /// The period as instants: the first day's start to the start of the day after the last.
    pub fn span(&self, state: &AppState) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            state.time.start_of(self.from),
            state.time.start_of(self.until + Days::new(1)),
        )
    }
}

/// The dashboard's answer.
#[derive(Serialize, ToSchema)]
pub struct QualityView {
    pub from: NaiveDate,
    pub until: NaiveDate,
    /// The department's measures, each procedure type's and each month's; each rate with its 95%
    /// Wilson interval and, where the department set one, its threshold and standing.
    #[schema(value_type = Object)]
    pub measures: QualityDashboard,
}

pub(crate) async fn dashboard(
    state: &AppState,
    caller: &Caller,
    period: &Period,
) -> Result<QualityDashboard, ApiError> {
    let (from, until) = period.span(state);
    Ok(state.quality_dashboard(caller, from, until).await?)
}

fn percent(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{:.1}", v * 100.0))
}

fn rate_cells(rate: &Rate) -> Vec<String> {
    vec![
        rate.numerator.to_string(),
        rate.denominator.to_string(),
        percent(rate.proportion),
        percent(rate.low),
        percent(rate.high),
    ]
}

/// A count (not a rate) as a line of the CSV: the rate's columns left empty.
fn count_row(month: &str, scope: &str, measure: &str, count: u32) -> Vec<String> {
    let mut row = vec![
        month.to_string(),
        scope.to_string(),
        measure.to_string(),
        count.to_string(),
    ];
    row.resize(10, String::new());
    row
}

/// Every figure of the dashboard, one per line: the department's, each procedure's, each month's.
pub(crate) fn dashboard_csv(view: &QualityDashboard, period: &Period) -> Response {
    let mut rows = Vec::new();
    for p in std::iter::once(&view.department).chain(&view.procedures) {
        let scope = p.procedure.clone().unwrap_or_else(|| "all".to_string());
        rows.push(count_row("period", &scope, "volume", p.volume));
        rows.push(count_row(
            "period",
            &scope,
            "safety_overrides",
            p.safety_overrides,
        ));
        for j in &p.rates {
            let mut row = vec![
                "period".to_string(),
                scope.clone(),
                j.measure.as_str().to_string(),
            ];
            row.extend(rate_cells(&j.rate));
            row.push(
                j.threshold
                    .as_ref()
                    .map_or(String::new(), |t| format!("{}", t.percent)),
            );
            row.push(j.standing.map_or(String::new(), |s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }));
            rows.push(row);
        }
    }
    for m in &view.months {
        let measures = &m.measures;
        let mut push = |name: &str, rate: &Rate| {
            let mut row = vec![m.month.clone(), "all".to_string(), name.to_string()];
            row.extend(rate_cells(rate));
            row.extend([String::new(), String::new()]);
            rows.push(row);
        };
        for measure in seldinger_domain::quality::Measure::ALL {
            if let Some(rate) = measure.of(measures) {
                push(measure.as_str(), &rate);
            }
        }
        push("ivc_retrieval_or_plan", &m.ivc_retrieval_or_plan);
        rows.push(count_row(&m.month, "all", "volume", measures.volume));
    }
    csv_response(
        &format!("quality-{}-{}.csv", period.from, period.until),
        &[
            "month",
            "procedure",
            "measure",
            "numerator_or_count",
            "denominator",
            "percent",
            "ci95_low_percent",
            "ci95_high_percent",
            "threshold_percent",
            "standing",
        ],
        rows,
    )
}

#[utoipa::path(get, path = "/api/v1/quality", tag = "quality",
    params(("from" = Option<String>, Query, description = "first day a procedure began (YYYY-MM-DD), default a year before until"),
        ("until" = Option<String>, Query, description = "last day (YYYY-MM-DD, the department's day), inclusive; default today"),
        ("format" = Option<String>, Query, description = "json (default), or csv: every figure, one per line")),
    responses((status = 200, body = QualityView), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until", "format"])?;
    let csv = q.wants_csv()?;
    let period = Period::parse(&q, state.today())?;
    let view = dashboard(&state, &caller, &period).await?;
    if csv {
        return Ok(dashboard_csv(&view, &period));
    }
    Ok(Json(QualityView {
        from: period.from,
        until: period.until,
        measures: view,
    })
    .into_response())
}

/// The M&M list's answer.
#[derive(Serialize, ToSchema)]
pub struct MmList {
    pub from: NaiveDate,
    pub until: NaiveDate,
    /// Each case with its moderate or worse adverse events whose onset is in the period, and the
    /// meeting's notes (patient name and MRN only for a role that reads identified cases).
    #[schema(value_type = Vec<Object>)]
    pub cases: Vec<serde_json::Value>,
}

/// A case as the list shows it. For a role that reads de-identified outcomes: no name, no MRN,
/// and no internal id of the patient, the case or its events to look them up by — the case and
/// its events by their keyed pseudonyms (`reference`, `event_references`), as the registry
/// export names them.
fn listed(case: &MmCase) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for key in ["patient_id", "case_id", "id"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(case).unwrap_or_default();
    if case.patient_name.is_none() {
        strip(&mut value);
    }
    value
}

#[utoipa::path(get, path = "/api/v1/quality/mm", tag = "quality",
    params(("from" = Option<String>, Query, description = "first day of onset (YYYY-MM-DD), default a year before until"),
        ("until" = Option<String>, Query, description = "last day (YYYY-MM-DD), inclusive; default today")),
    responses((status = 200, body = MmList), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem)))]
pub async fn mm(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<MmList>, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    let (from, until) = period.span(&state);
    Ok(Json(MmList {
        from: period.from,
        until: period.until,
        cases: state
            .mm_list(&caller, from, until)
            .await?
            .iter()
            .map(listed)
            .collect(),
    }))
}

/// A meeting's note on a case.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MmNoteRequest {
    /// The version of the case's M&M record read (0: none yet).
    pub expected_version: u64,
    /// The meeting's date (not in the future).
    pub meeting_on: NaiveDate,
    /// What the meeting found.
    pub discussion: String,
    /// What was agreed to do, by whom.
    #[serde(default)]
    pub actions: String,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/mm-notes", tag = "quality", request_body = MmNoteRequest,
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, body = Object, description = "the case's M&M record with its notes"),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem),
        (status = 422, description = "which field and why (no discussion, a meeting in the future, a case with no moderate or worse event)", body = crate::problem::Problem)))]
pub async fn add_mm_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<MmNoteRequest>,
) -> Result<Json<MmReview>, ApiError> {
    let id: CaseId = path_id("case", &id)?;
    let note = MmNoteAdded {
        meeting_on: request.meeting_on,
        discussion: request.discussion,
        actions: request.actions,
    };
    Ok(Json(
        state
            .add_mm_note(&caller, id, request.expected_version, &note)
            .await?,
    ))
}

/// What the registry export is asked for: the period, the form, the dates.
pub(crate) struct ExportRequest {
    pub period: Period,
    pub format: ExportFormat,
    pub dates: DateMode,
}

pub(crate) enum ExportFormat {
    Json,
    Csv(&'static str),
    Fhir,
}

impl ExportRequest {
    pub fn parse(q: &QueryParams, today: NaiveDate) -> Result<ExportRequest, ApiError> {
        let period = Period::parse(q, today)?;
        let table = q.one("table");
        let format = match q.one("format").as_deref() {
            None | Some("json") => ExportFormat::Json,
            Some("fhir") => ExportFormat::Fhir,
            Some("csv") => {
                let table = table.as_deref().unwrap_or("procedures");
                ExportFormat::Csv(TABLES.into_iter().find(|t| *t == table).ok_or_else(|| {
                    ApiError::bad_request(
                        "table",
                        format!("'{table}' is not one of {}", TABLES.join(", ")),
                    )
                })?)
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    "format",
                    format!("'{other}' is not json, csv or fhir"),
                ))
            }
        };
        // Each value is well formed on its own; together they ask for nothing: 422, not 400.
        if table.is_some() && !matches!(format, ExportFormat::Csv(_)) {
            return Err(ApiError::invalid_field(
                "table",
                "a table is chosen for format=csv only",
            ));
        }
        let dates = match q.one("dates") {
            None => DateMode::Shifted,
            Some(d) => DateMode::parse(&d).ok_or_else(|| {
                ApiError::bad_request("dates", format!("'{d}' is not exact or shifted"))
            })?,
        };
        Ok(ExportRequest {
            period,
            format,
            dates,
        })
    }
}

pub(crate) async fn export_response(
    state: &AppState,
    caller: &Caller,
    request: &ExportRequest,
) -> Result<Response, ApiError> {
    let (from, until) = request.period.span(state);
    let export = state
        .registry_export(caller, from, until, request.dates)
        .await?;
    let stem = format!(
        "registry-{}-{}-{}",
        request.period.from,
        request.period.until,
        request.dates.as_str()
    );
    Ok(match request.format {
        ExportFormat::Json => Json(export).into_response(),
        ExportFormat::Fhir => (
            [
                (header::CONTENT_TYPE, "application/fhir+json".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{stem}.fhir.json\""),
                ),
            ],
            seldinger_domain::registry_bundle::bundle(&export).to_string(),
        )
            .into_response(),
        ExportFormat::Csv(table) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{stem}-{table}.csv\""),
                ),
            ],
            export.csv(table).unwrap_or_default(),
        )
            .into_response(),
    })
}

#[utoipa::path(get, path = "/api/v1/quality/registry-export", tag = "quality",
    params(("from" = Option<String>, Query, description = "first day a procedure began (YYYY-MM-DD), default a year before until"),
        ("until" = Option<String>, Query, description = "last day (YYYY-MM-DD), inclusive; default today"),
        ("format" = Option<String>, Query, description = "json (default), csv (one table) or fhir (a Bundle)"),
        ("table" = Option<String>, Query, description = "with format=csv: procedures (default), devices, adverse_events or dictionary"),
        ("dates" = Option<String>, Query, description = "shifted (default: each patient's dates moved back by the same 1-52 weeks) or exact")),
    responses((status = 200, description = "the de-identified export: no name, MRN, address, birth date or free text; keyed pseudonyms",
            content((Object = "application/json"), (String = "text/csv"), (Object = "application/fhir+json"))),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem),
        (status = 422, description = "a table asked for a form other than csv", body = crate::problem::Problem)))]
pub async fn registry_export(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until", "format", "table", "dates"])?;
    let request = ExportRequest::parse(&q, state.today())?;
    export_response(&state, &caller, &request).await
}
