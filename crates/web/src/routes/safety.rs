//! The planning calculator: the safety engine on a case sent in the body, stored nowhere.

use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use seldinger_domain::safety::{Checklist, HypotheticalCase};

#[utoipa::path(post, path = "/api/v1/safety/evaluate", tag = "safety", request_body = HypotheticalCase,
    responses((status = 200, description = "the checklist this case would have now; nothing is stored", body = Checklist),
        (status = 400, body = crate::problem::Problem),
        (status = 422, description = "each field that is wrong, with its path (e.g. labs[0].unit)", body = crate::problem::Problem)))]
pub async fn evaluate(
    State(state): State<AppState>,
    ApiJson(case): ApiJson<HypotheticalCase>,
) -> Result<Json<Checklist>, ApiError> {
    Ok(Json(case.evaluate(
        &state.catalogue,
        &state.safety,
        state.clock.now(),
        state.time,
    )?))
}
