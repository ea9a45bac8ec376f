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

/// The process answers (no database asked): for a supervisor deciding whether to restart it.
#[derive(Serialize, ToSchema)]
pub struct Live {
    /// Always "live".
    pub status: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/api/v1/health/live", tag = "system",
    responses((status = 200, body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live {
        status: "live",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Ready to serve (`/health/ready`, and `/health` as before): the database answers; else 503 with
/// `Retry-After`, for a load balancer to send the requests elsewhere meanwhile.
#[utoipa::path(get, path = "/api/v1/health/ready", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::problem::Problem)))]
pub async fn ready(state: State<AppState>) -> Result<Json<Health>, ApiError> {
    health(state).await
}

#[utoipa::path(get, path = "/api/v1/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::problem::Problem)))]
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
