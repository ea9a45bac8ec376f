//! The physicist's dose page: per procedure type, the department's median and 75th percentile
//! against the configured reference level, a chart of the monthly median over the period, and
//! the queue of reports waiting to be linked to their case by hand.

use super::{api_error_page, render, NavItem, Viewer};
use crate::auth::Audit;
use crate::problem::ApiError;
use crate::routes::dose::{link_report, totals_of, Period};
use crate::routes::QueryParams;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::dose_stats::{distribution, StatMeasure};
use seldinger_store::DoseReportFilter;
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct ProcedureStats {
    pub id: String,
    pub name: String,
    pub cases: usize,
    pub kap_median: String,
    pub kap_p75: String,
    pub kar_median: String,
    pub kar_p75: String,
    pub reference_level: String,
    pub above: String,
    pub chart: Option<MonthlyChart>,
}

/// Monthly median KAP as an SVG polyline, with the p75 and the reference level as lines.
pub struct MonthlyChart {
    pub points: String,
    pub p75_y: i64,
    pub level_y: Option<i64>,
    pub max_label: String,
    pub first_month: String,
    pub last_month: String,
}

/// A case whose imaging systems' preliminary dose (in their performed steps) disagrees with its
/// dose reports: for the physicist to find out which is right.
pub struct Differing {
    pub case_id: String,
    pub performed: String,
    pub procedure: String,
    pub quantity: &'static str,
    pub preliminary: String,
    pub reported: String,
}

pub struct Unmatched {
    pub sop: String,
    pub version: u64,
    pub patient_id: String,
    pub performed: String,
    pub device: String,
    pub reason: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "dose.html")]
struct DosePage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    /// The department's time zone, named beside every time.
    zone: &'static str,
    from: String,
    until: String,
    procedures: Vec<ProcedureStats>,
    differing: Vec<Differing>,
    unmatched: Vec<Unmatched>,
    /// Reports waiting beyond the ones shown.
    unmatched_more: u64,
    unmatched_rows: u32,
    can_link: bool,
}

/// The unmatched queue on the page holds at most this many reports, the newest first.
const UNMATCHED_ROWS: u32 = 500;

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn chart(
    monthly: &BTreeMap<String, Vec<f64>>,
    p75: f64,
    level: Option<f64>,
) -> Option<MonthlyChart> {
    if monthly.len() < 2 {
        return None;
    }
    let medians: Vec<(String, f64)> = monthly
        .iter()
        .filter_map(|(m, v)| distribution(v).map(|d| (m.clone(), d.median)))
        .collect();
    let top = medians
        .iter()
        .map(|(_, v)| *v)
        .chain([p75, level.unwrap_or(0.0)])
        .fold(0.0_f64, f64::max)
        * 1.1;
    if top <= 0.0 {
        return None;
    }
    let y = |v: f64| 170 - (v / top * 160.0).round() as i64;
    let n = medians.len() as i64 - 1;
    let points = medians
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{},{}", 40 + (i as i64) * 540 / n.max(1), y(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    Some(MonthlyChart {
        points,
        p75_y: y(p75),
        level_y: level.map(y),
        max_label: format!("{top:.0}"),
        first_month: medians.first().map(|m| m.0.clone()).unwrap_or_default(),
        last_month: medians.last().map(|m| m.0.clone()).unwrap_or_default(),
    })
}

async fn show(
    state: &AppState,
    viewer: &Viewer,
    pairs: Vec<(String, String)>,
    refused: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    let by_case = state
        .dose_by_case(&viewer.caller, &period.filter(&state.time))
        .await?;
    let (mut differing, mut differing_audits) = (Vec::new(), Vec::new());
    for (case, reports) in &by_case.cases {
        let Some(steps) = by_case.steps.get(&case.id) else {
            continue;
        };
        let rows = seldinger_domain::performed_step::compare_dose(steps, &totals_of(reports));
        let rows: Vec<_> = rows.into_iter().filter(|r| r.differs).collect();
        if !rows.is_empty() {
            // A row names a case and its dose: a read of that case's record, once per case.
            differing_audits.push(Audit::of("read", "case_dose", case.id, case.patient_id));
        }
        for row in rows {
            differing.push(Differing {
                case_id: case.id.to_string(),
                performed: reports
                    .iter()
                    .filter_map(|r| r.performed_at)
                    .min()
                    .map(|t| state.time.format(t, "%Y-%m-%d %H:%M"))
                    .unwrap_or_default(),
                procedure: case
                    .planned_procedure()
                    .and_then(|p| state.catalogue.get(p))
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                quantity: row.quantity,
                preliminary: format!("{:.3} {}", row.preliminary, row.unit),
                reported: format!("{:.3} {}", row.reported, row.unit),
            });
        }
    }
    let units = &by_case.cases;
    let mut by_procedure: BTreeMap<String, Vec<(String, seldinger_domain::dose::DoseTotals)>> =
        BTreeMap::new();
    for (case, reports) in units {
        let Some(procedure) = case.planned_procedure() else {
            continue;
        };
        let month = reports
            .iter()
            .filter_map(|r| r.performed_at)
            .min()
            .map(|t| state.time.format(t, "%Y-%m"))
            .unwrap_or_default();
        by_procedure
            .entry(procedure.as_str().to_string())
            .or_default()
            .push((month, totals_of(reports)));
    }
    let mut procedures = Vec::new();
    for (id, cases) in &by_procedure {
        let pid = seldinger_domain::ProcedureId::parse(id).ok();
        let values =
            |m: StatMeasure| -> Vec<f64> { cases.iter().filter_map(|(_, t)| m.of(t)).collect() };
        let kap = distribution(&values(StatMeasure::KermaAreaProduct));
        let kar = distribution(&values(StatMeasure::ReferenceAirKerma));
        let level = pid
            .as_ref()
            .and_then(|p| state.dose_levels.get(p, StatMeasure::KermaAreaProduct));
        let mut monthly: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (month, totals) in cases {
            if let Some(v) = StatMeasure::KermaAreaProduct.of(totals) {
                monthly.entry(month.clone()).or_default().push(v);
            }
        }
        procedures.push(ProcedureStats {
            id: id.clone(),
            name: pid
                .as_ref()
                .and_then(|p| state.catalogue.get(p))
                .map(|p| p.name.clone())
                .unwrap_or_else(|| id.clone()),
            cases: cases.len(),
            kap_median: fmt(kap.as_ref().map(|d| d.median)),
            kap_p75: fmt(kap.as_ref().map(|d| d.p75)),
            kar_median: fmt(kar.as_ref().map(|d| d.median)),
            kar_p75: fmt(kar.as_ref().map(|d| d.p75)),
            reference_level: level.map_or("none configured".into(), |l| {
                format!("{} Gy·cm² ({})", l.value, l.source)
            }),
            above: level.map_or("–".into(), |l| {
                values(StatMeasure::KermaAreaProduct)
                    .iter()
                    .filter(|v| **v > l.value)
                    .count()
                    .to_string()
            }),
            chart: kap
                .as_ref()
                .and_then(|d| chart(&monthly, d.p75, level.map(|l| l.value))),
        });
    }
    procedures.sort_by_key(|p| std::cmp::Reverse(p.cases));
    let queue = state
        .dose_reports_page(
            &viewer.caller,
            &DoseReportFilter {
                unmatched: true,
                limit: UNMATCHED_ROWS,
                ..Default::default()
            },
            None,
        )
        .await?;
    let unmatched_more = queue.total.saturating_sub(queue.items.len() as u64);
    let queue = queue.items;
    let unmatched = queue
        .iter()
        .map(|r| Unmatched {
            sop: r.sop_instance_uid.clone(),
            version: r.link_version,
            patient_id: r.patient_id.clone().unwrap_or_default(),
            performed: r
                .performed_at
                .map(|t| state.time.format(t, "%Y-%m-%d %H:%M"))
                .unwrap_or_default(),
            device: r.device.clone(),
            reason: r.unmatched_reason.clone().unwrap_or_default(),
            error: match &refused {
                Some((sop, message)) if *sop == r.sop_instance_uid => message.clone(),
                _ => String::new(),
            },
        })
        .collect();
    let mut audits = vec![Audit {
        action: "read",
        resource_type: "dose_statistics",
        resource_id: None,
        patient_id: None,
        break_glass_reason: None,
        outcome: "allowed",
    }];
    audits.extend(
        queue
            .iter()
            .map(|r| crate::routes::dose::audit_report("read", r)),
    );
    audits.extend(differing_audits);
    state.audit_all(&viewer.caller, audits).await?;
    let mut response = render(&DosePage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        from: period.from.to_string(),
        until: period.until.to_string(),
        procedures,
        differing,
        unmatched,
        unmatched_more,
        unmatched_rows: UNMATCHED_ROWS,
        can_link: grant(viewer.caller.role, Permission::ManageDose).is_some(),
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadDose, "/dose").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    show(&state, &viewer, pairs, None, StatusCode::OK)
        .await
        .unwrap_or_else(api_error_page)
}

#[derive(Deserialize)]
pub struct LinkForm {
    csrf_token: String,
    expected_version: u64,
    case_id: String,
    reason: String,
}

pub async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(sop): Path<String>,
    Form(form): Form<LinkForm>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ManageDose,
        "/dose",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return super::expired_form();
    }
    match link_report(
        &state,
        &viewer.caller,
        &sop,
        form.expected_version,
        Some(&form.case_id),
        &form.reason,
    )
    .await
    {
        Ok(_) => Redirect::to("/dose").into_response(),
        Err(error) => {
            let message = error
                .field_errors()
                .first()
                .map(|e| format!("{}: {}", e.field, e.detail))
                .unwrap_or_else(|| error.detail().to_string());
            show(
                &state,
                &viewer,
                Vec::new(),
                Some((sop, message)),
                error.status(),
            )
            .await
            .unwrap_or_else(api_error_page)
        }
    }
}
