//! The procedure catalogue and the department's rooms: reference data, no patient data.

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use seldinger_domain::{ProcedureCatalogue, Room};

#[utoipa::path(get, path = "/api/v1/procedures", tag = "catalogue",
    responses((status = 200, description = "The procedure catalogue in file order", body = ProcedureCatalogue)))]
pub async fn procedures(State(state): State<AppState>) -> Json<ProcedureCatalogue> {
    Json(state.catalogue.as_ref().clone())
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "catalogue",
    responses((status = 200, body = Vec<Room>)))]
pub async fn rooms(State(state): State<AppState>) -> Result<Json<Vec<Room>>, ApiError> {
    Ok(Json(state.store.rooms().await?))
}
