//! The quality pages: the dashboard (measures per procedure type and month against the
//! department's thresholds, §6; monthly trend charts drawn on the server; CSV of every figure;
//! the registry export) and the M&M list with the meeting's notes.

use super::devices::rate_words;
use super::{api_error_page, render, NavItem, Viewer};
use crate::problem::ApiError;
use crate::routes::dose::Period;
use crate::routes::QueryParams;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_app::{JudgedRate, MonthQuality, ProcedureQuality};
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::device_registry::Rate;
use seldinger_domain::mm::MmNoteAdded;
use seldinger_domain::quality::Standing;
use seldinger_domain::CaseId;
use serde::Deserialize;

/// A measure's row: its figure, threshold and how it stands (a class for the colour).
pub struct MeasureRow {
    pub label: &'static str,
    pub figure: String,
    pub threshold: String,
    pub standing: &'static str,
    pub standing_class: &'static str,
}

pub struct ProcedureTable {
    pub id: String,
    pub name: String,
    pub volume: u32,
    pub overrides: u32,
    pub rows: Vec<MeasureRow>,
}

/// One line (or bars) of a trend chart, in the chart's coordinates.
pub struct Series {
    pub class: &'static str,
    pub label: &'static str,
    pub points: String,
}

/// A monthly trend, drawn on the server as SVG (0-100% or counts), with its figures as a
/// table for screen readers and copying.
pub struct TrendChart {
    pub id: &'static str,
    pub title: &'static str,
    pub max_label: String,
    pub first_month: String,
    pub last_month: String,
    pub series: Vec<Series>,
    /// Volume bars: (x, y, width, height).
    pub bars: Vec<(i64, i64, i64, i64)>,
    pub threshold_y: Option<i64>,
    /// The columns of the figures table.
    pub headers: Vec<&'static str>,
    /// Each month with its figures as words, one per column.
    pub rows: Vec<(String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "quality.html")]
struct QualityPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    from: String,
    until: String,
    department: ProcedureTable,
    procedures: Vec<ProcedureTable>,
    charts: Vec<TrendChart>,
    ivc: Vec<(&'static str, String)>,
    thresholds_configured: usize,
    window_days: i64,
}

fn standing_words(standing: Option<Standing>) -> (&'static str, &'static str) {
    match standing {
        None => ("no threshold set", "muted"),
        Some(Standing::Within) => ("within", "within"),
        Some(Standing::WorseNotSignificant) => (
            "past the threshold; the 95% interval still reaches it",
            "warn",
        ),
        Some(Standing::Worse) => ("worse: the whole 95% interval is past it", "worse"),
        Some(Standing::NoData) => ("nothing to count", "muted"),
    }
}

fn figure(rate: &Rate) -> String {
    match rate.proportion {
        Some(_) => rate_words(rate),
        None => "—".to_string(),
    }
}

fn table(p: &ProcedureQuality) -> ProcedureTable {
    ProcedureTable {
        id: p.procedure.clone().unwrap_or_else(|| "all".to_string()),
        name: p.name.clone(),
        volume: p.volume,
        overrides: p.safety_overrides,
        rows: p
            .rates
            .iter()
            .map(|j: &JudgedRate| {
                let (standing, standing_class) = standing_words(j.standing);
                MeasureRow {
                    label: j.label,
                    figure: figure(&j.rate),
                    threshold: j.threshold.as_ref().map_or(String::new(), |t| {
                        format!(
                            "{} {}% ({})",
                            if j.higher_is_better { "≥" } else { "≤" },
                            t.percent,
                            t.source
                        )
                    }),
                    standing,
                    standing_class,
                }
            })
            .collect(),
    }
}

const LEFT: i64 = 40;
const RIGHT: i64 = 580;
const TOP: i64 = 10;
const BOTTOM: i64 = 170;

fn x_of(i: usize, n: usize) -> i64 {
    if n <= 1 {
        return (LEFT + RIGHT) / 2;
    }
    LEFT + (i as i64) * (RIGHT - LEFT) / (n as i64 - 1)
}

fn y_of(value: f64, top: f64) -> i64 {
    BOTTOM - (value / top * (BOTTOM - TOP) as f64).round() as i64
}

/// A chart's line: its class (colour and dash), its label, and its rate in a month.
type Line = (&'static str, &'static str, fn(&MonthQuality) -> Rate);

/// A chart of proportions (0-100%) per month; a month with nothing counted breaks the line.
fn percent_chart(
    id: &'static str,
    title: &'static str,
    months: &[MonthQuality],
    lines: &[Line],
    threshold: Option<f64>,
) -> TrendChart {
    let n = months.len();
    let series = lines
        .iter()
        .map(|(class, label, rate_of)| Series {
            class,
            label,
            points: months
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    rate_of(m)
                        .proportion
                        .map(|p| format!("{},{}", x_of(i, n), y_of(p * 100.0, 100.0)))
                })
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    let rows = months
        .iter()
        .map(|m| {
            let cells = lines
                .iter()
                .map(|(_, _, rate_of)| {
                    let r = rate_of(m);
                    r.proportion.map_or("—".to_string(), |p| {
                        format!("{:.0}% ({}/{})", p * 100.0, r.numerator, r.denominator)
                    })
                })
                .collect();
            (m.month.clone(), cells)
        })
        .collect();
    TrendChart {
        id,
        title,
        max_label: "100%".to_string(),
        first_month: months.first().map(|m| m.month.clone()).unwrap_or_default(),
        last_month: months.last().map(|m| m.month.clone()).unwrap_or_default(),
        series,
        bars: Vec::new(),
        threshold_y: threshold.map(|t| y_of(t, 100.0)),
        headers: lines.iter().map(|(_, label, _)| *label).collect(),
        rows,
    }
}

fn volume_chart(months: &[MonthQuality]) -> TrendChart {
    let n = months.len().max(1) as i64;
    let top = months
        .iter()
        .map(|m| m.measures.volume)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (RIGHT - LEFT) / n;
    let width = (slot * 2 / 3).max(2);
    let bars = months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let y = y_of(f64::from(m.measures.volume), top);
            (
                LEFT + i as i64 * slot + (slot - width) / 2,
                y,
                width,
                BOTTOM - y,
            )
        })
        .collect();
    TrendChart {
        id: "volume",
        title: "Procedures per month",
        max_label: format!("{top:.0}"),
        first_month: months.first().map(|m| m.month.clone()).unwrap_or_default(),
        last_month: months.last().map(|m| m.month.clone()).unwrap_or_default(),
        series: Vec::new(),
        bars,
        threshold_y: None,
        headers: vec!["Procedures"],
        rows: months
            .iter()
            .map(|m| (m.month.clone(), vec![m.measures.volume.to_string()]))
            .collect(),
    }
}

fn charts(view: &seldinger_app::QualityDashboard, state: &AppState) -> Vec<TrendChart> {
    let months = &view.months;
    let threshold = |m| state.quality_thresholds.get(None, m).map(|t| t.percent);
    use seldinger_domain::quality::Measure;
    vec![
        volume_chart(months),
        percent_chart(
            "adverse",
            "Adverse events per month (§6, by each case's worst attributed event)",
            months,
            &[
                ("any", "any adverse event", |m| m.measures.adverse_events),
                ("severe", "severe, life-threatening or death", |m| {
                    m.measures.severe_or_worse
                }),
            ],
            threshold(Measure::AdverseEvents),
        ),
        percent_chart(
            "checklist",
            "Documentation and success per month",
            months,
            &[
                ("consent", "consent documented", |m| {
                    m.measures.consent_documented
                }),
                ("timeout", "time-out completed", |m| {
                    m.measures.time_out_completed
                }),
                ("success", "technical success", |m| {
                    m.measures.technical_success
                }),
            ],
            None,
        ),
        percent_chart(
            "follow-up",
            "Follow-up per month: high-dose (§5) and IVC filters (§6, §7)",
            months,
            &[
                ("dose", "high-dose follow-up done", |m| {
                    m.measures.high_dose_follow_up
                }),
                ("ivc", "IVC filters retrieved or permanent", |m| {
                    m.ivc_retrieval_or_plan
                }),
            ],
            threshold(Measure::IvcRetrievalOrPlan),
        ),
    ]
}

async fn dashboard_page(
    state: &AppState,
    viewer: &Viewer,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    let view = crate::routes::quality::dashboard(state, &viewer.caller, &period).await?;
    let m = &view.ivc_filters;
    let ivc = vec![
        ("Retrievable filters placed", m.placed.to_string()),
        ("Retrieved", m.retrieved.to_string()),
        ("Declared permanent", m.permanent.to_string()),
        ("Overdue or without a plan", m.overdue.to_string()),
        ("Retrieval", rate_words(&m.retrieval)),
        (
            "Retrieval or documented plan (§6)",
            rate_words(&m.retrieval_or_plan),
        ),
        ("Lost to follow-up", rate_words(&m.lost_to_follow_up)),
    ];
    Ok(render(&QualityPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        from: period.from.to_string(),
        until: period.until.to_string(),
        department: table(&view.department),
        procedures: view.procedures.iter().map(table).collect(),
        charts: charts(&view, state),
        ivc,
        thresholds_configured: view.thresholds_configured,
        window_days: view.attribution_window_days,
    }))
}

pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadDeidentifiedOutcomes,
        "/quality",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    dashboard_page(&state, &viewer, pairs)
        .await
        .unwrap_or_else(api_error_page)
}

/// A case on the M&M list as the page shows it.
pub struct MmRow {
    /// The case's id for a role that reads identified cases; else its keyed pseudonym.
    pub case_id: String,
    /// The patient (identified roles) or the case's short reference (the quality lead).
    pub who: String,
    pub identified: bool,
    pub procedure: String,
    pub performed: String,
    pub operator: String,
    pub events: Vec<String>,
    pub notes: Vec<(String, String, String, String)>,
    pub version: u64,
}

#[derive(Template)]
#[template(path = "mm.html")]
struct MmPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    from: String,
    until: String,
    today: String,
    rows: Vec<MmRow>,
    can_note: bool,
    /// A refused note: the case, the field, why, and what was typed.
    refused: Option<(String, String, String, MmNoteForm)>,
}

impl MmPage<'_> {
    fn typed(&self, case_id: &str, field: &str) -> String {
        match &self.refused {
            Some((case, _, _, form)) if case == case_id => match field {
                "meeting_on" => form.meeting_on.clone(),
                "discussion" => form.discussion.clone(),
                "actions" => form.actions.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }
}

async fn mm_page(
    state: &AppState,
    viewer: &Viewer,
    pairs: Vec<(String, String)>,
    refused: Option<(String, String, String, MmNoteForm)>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    let (from, until) = period.span(state);
    let list = state.mm_list(&viewer.caller, from, until).await?;
    let when = |at: chrono::DateTime<chrono::Utc>| state.time.format(at, "%Y-%m-%d %H:%M");
    let rows = list
        .iter()
        .map(|c| MmRow {
            case_id: match c.patient_name {
                Some(_) => c.case_id.to_string(),
                None => c.reference.clone(),
            },
            identified: c.patient_name.is_some(),
            who: match (&c.patient_name, &c.mrn) {
                (Some(name), Some(mrn)) => format!("{name} ({mrn})"),
                _ => format!("case {}", c.reference),
            },
            procedure: c.procedure_name.clone(),
            performed: c.procedure_started_at.map(when).unwrap_or_default(),
            operator: c.operator.clone().unwrap_or_default(),
            events: c
                .events
                .iter()
                .map(|s| {
                    let d = &s.event.details;
                    format!(
                        "{}: SIR {}{}; {}{} — {}",
                        when(d.onset),
                        serde_json::to_value(d.severity)
                            .ok()
                            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                            .unwrap_or_default(),
                        d.cirse_grade
                            .map(|g| format!(", CIRSE {g}"))
                            .unwrap_or_default(),
                        d.description,
                        d.category
                            .map(|k| format!(" ({})", k.label()))
                            .unwrap_or_default(),
                        if s.attributed {
                            "attributed"
                        } else {
                            "not attributed"
                        }
                    )
                })
                .collect(),
            notes: c
                .review
                .notes
                .iter()
                .map(|n| {
                    (
                        n.meeting_on.to_string(),
                        n.discussion.clone(),
                        n.actions.clone(),
                        format!("{}, {}", n.by, when(n.at)),
                    )
                })
                .collect(),
            version: c.review.version,
        })
        .collect();
    let mut response = render(&MmPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        from: period.from.to_string(),
        until: period.until.to_string(),
        today: state.today().to_string(),
        rows,
        can_note: grant(viewer.caller.role, Permission::RecordMmNotes).is_some(),
        refused,
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn mm(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadDeidentifiedOutcomes,
        "/quality/mm",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    mm_page(&state, &viewer, pairs, None, StatusCode::OK)
        .await
        .unwrap_or_else(api_error_page)
}

/// The meeting's note form.
#[derive(Deserialize, Clone, Default)]
pub struct MmNoteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    expected_version: u64,
    #[serde(default)]
    meeting_on: String,
    #[serde(default)]
    discussion: String,
    #[serde(default)]
    actions: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

pub async fn add_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<MmNoteForm>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::RecordMmNotes,
        "/quality/mm",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return super::expired_form();
    }
    let period = vec![
        ("from".to_string(), form.from.clone()),
        ("until".to_string(), form.until.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect::<Vec<_>>();
    let result: Result<(), ApiError> = async {
        let case_id: CaseId = crate::routes::path_id("case", &id)?;
        let meeting_on = chrono::NaiveDate::parse_from_str(&form.meeting_on, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid_field("meeting_on", "the meeting's date, YYYY-MM-DD"))?;
        let note = MmNoteAdded {
            meeting_on,
            discussion: form.discussion.clone(),
            actions: form.actions.clone(),
        };
        state
            .add_mm_note(&viewer.caller, case_id, form.expected_version, &note)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!(
            "/quality/mm?from={}&until={}#mm-{id}",
            urlencoding(&form.from),
            urlencoding(&form.until)
        ))
        .into_response(),
        Err(error) => {
            let (field, detail) = match error.field_errors().first() {
                Some(e) => (e.field.clone(), e.detail.clone()),
                None => (String::new(), error.detail().to_string()),
            };
            let status = error.status();
            mm_page(
                &state,
                &viewer,
                period,
                Some((id, field, detail, form)),
                status,
            )
            .await
            .unwrap_or_else(api_error_page)
        }
    }
}

/// Our own period values are dates; anything else is dropped rather than echoed into a URL.
fn urlencoding(value: &str) -> String {
    if chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok() {
        value.to_string()
    } else {
        String::new()
    }
}
