//! Health and the API's own description.

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// "ok" when the database answers.
    pub status: &'static str,
    /// "sqlite" or "postgres".
    pub database: &'static str,
    pub catalogue_version: String,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "system",
    responses((status = 200, body = Health), (status = 500, body = crate::problem::Problem)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: match state.store.engine() {
            seldinger_store::Engine::Sqlite => "sqlite",
            seldinger_store::Engine::Postgres => "postgres",
        },
        catalogue_version: state.catalogue.version.clone(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "This API's OpenAPI 3.1 document")))]
pub async fn openapi() -> Json<&'static serde_json::Value> {
    Json(crate::openapi::document())
}
