//! Referrals: a clinician's request to IR. Receiving one opens its case.

use super::patients::existing_patient;
use super::{path_id, CaseRecord, QueryParams};
use crate::auth::{Audit, Caller};
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use seldinger_domain::access::Permission;
use seldinger_domain::referral::{ReferralDetails, ReferralInput};
use seldinger_domain::{Referral, ReferralId};
use seldinger_store::Record;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ReferralReceived {
    pub referral: Referral,
    /// The case the referral opened, in state `referred`.
    pub case: CaseRecord,
}

#[utoipa::path(post, path = "/api/v1/referrals", tag = "referrals", request_body = ReferralInput,
    responses((status = 201, body = ReferralReceived), (status = 400, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ReferralInput>,
) -> Result<impl IntoResponse, ApiError> {
    // Check the body's own fields first so every problem is reported at once.
    let details = ReferralDetails::parse(&input, &state.catalogue);
    let patient = existing_patient(&state, "patient_id", &input.patient_id).await;
    let (details, patient) = match (details, patient) {
        (Ok(d), Ok(p)) => (d, p),
        (Err(mut errors), Err(_)) => {
            errors.0.insert(
                0,
                seldinger_domain::FieldError {
                    field: "patient_id".into(),
                    detail: format!("'{}' is not a registered patient's id", input.patient_id),
                },
            );
            return Err(errors.into());
        }
        (Err(errors), Ok(_)) => return Err(errors.into()),
        (Ok(_), Err(e)) => return Err(e),
    };
    let (referral, case) = state.file_referral(&caller, patient.id, details).await?;
    let location = format!("/api/v1/referrals/{}", referral.id);
    let body = ReferralReceived {
        case: CaseRecord::new(case, &state),
        referral,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    ))
}

#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals",
    params(("awaiting_vetting" = Option<bool>, Query, description = "only referrals whose case waits for a vetting decision"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1-500, default 100"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<Referral>, description = "one page, newest first",
            headers(("X-Total-Count" = u64, description = "referrals the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    let q = QueryParams::new(pairs, &["awaiting_vetting", "limit", "cursor"])?;
    let page = state
        .referrals_page(
            &caller,
            q.flag("awaiting_vetting")?,
            q.cursor()?.as_ref(),
            q.limit(100, 500)?,
        )
        .await?;
    let audits = page
        .items
        .iter()
        .map(|r| Audit::of("list", "referral", r.id, r.patient_id))
        .collect();
    state.audit_all(&caller, audits).await?;
    Ok(super::paged_json(&uri, page))
}

#[utoipa::path(get, path = "/api/v1/referrals/{id}", tag = "referrals",
    params(("id" = String, Path, description = "referral id (UUID)")),
    responses((status = 200, body = Referral), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Referral>, ApiError> {
    let id: ReferralId = path_id("referral", &id)?;
    let what = format!("referral {id}");
    let referral = state
        .store
        .referral(id)
        .await?
        .ok_or_else(|| ApiError::not_found(&what))?;
    let opened = state
        .open(
            &caller,
            Permission::ReadReferrals,
            Record::Referral,
            &id.to_string(),
            &what,
        )
        .await?;
    state
        .audit(
            &caller,
            Audit::of("read", "referral", id, referral.patient_id).break_glass(&opened),
        )
        .await?;
    Ok(Json(referral))
}
