//! Seldinger's HTTP face: routes translate HTTP into domain calls and back. No clinical rule
//! lives here; a route parses input, asks the domain to decide, asks the store to record, and
//! maps errors to problem+json in one place ([`problem`]).

mod actor;
mod clock;
mod json;
mod openapi;
mod problem;
mod routes;

pub use clock::{Clock, FixedClock, SystemClock};
pub use problem::ApiError;

use axum::Router;
use seldinger_domain::ProcedureCatalogue;
use seldinger_store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub catalogue: Arc<ProcedureCatalogue>,
    pub clock: Arc<dyn Clock>,
}

/// The whole application as a router, ready to serve or to test.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", routes::api())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes in-flight requests (so every acknowledged
/// write is committed) and closes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    store.close().await;
    Ok(())
}
