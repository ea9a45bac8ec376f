//! The imaging review list: performed procedure steps (DICOM MPPS) the rooms' systems reported
//! that did not fit a case — imaging begun before the time-out was recorded, a step
//! discontinued, a step for no known case — each with the reason, for the team to act on.

use super::{api_error_page, render, NavItem, Viewer};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use seldinger_domain::access::Permission;

pub struct StepRow {
    pub started: String,
    pub station: String,
    pub modality: String,
    pub status: &'static str,
    /// The case's id when the step is linked to one.
    pub case_id: String,
    /// Seldinger's patient when known, else what the modality sent.
    pub patient: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "imaging.html")]
struct ImagingPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    zone: &'static str,
    rows: Vec<StepRow>,
    rows_at_most: u32,
}

/// The list shows at most this many steps, the latest first.
const REVIEW_ROWS: u32 = 200;

pub async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::RunProcedures,
        "/imaging",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    let steps = match state
        .performed_steps_to_review(&viewer.caller, REVIEW_ROWS)
        .await
    {
        Ok(steps) => steps,
        Err(error) => return api_error_page(error.into()),
    };
    let rows = steps
        .into_iter()
        .map(|item| {
            let step = item.step;
            let patient = match &item.patient {
                Some(p) => {
                    let (name, mrn) = crate::routes::patient_label(Some(p));
                    format!("{name} (MRN {mrn})")
                }
                None => format!(
                    "{} — ID {} as the modality sent it; no Seldinger patient",
                    step.patient_name.as_deref().unwrap_or("no name"),
                    step.patient_id.as_deref().unwrap_or("none")
                ),
            };
            StepRow {
                started: state.time.format(step.started_at, "%Y-%m-%d %H:%M"),
                station: step.station_ae_title.clone(),
                modality: step.modality.clone(),
                status: step.status.dicom(),
                case_id: item.case.map(|c| c.id.to_string()).unwrap_or_default(),
                patient,
                reason: step.review.unwrap_or_default(),
            }
        })
        .collect();
    render(&ImagingPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        rows,
        rows_at_most: REVIEW_ROWS,
    })
}
