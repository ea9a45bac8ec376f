//! Seldinger's HTTP face: routes translate HTTP into domain calls and back. No clinical rule
//! lives here; a route parses input, asks the domain to decide, asks the store to record, and
//! maps errors to problem+json in one place ([`problem`]). Every API request passes one gate
//! ([`auth::gate`]) that authenticates and checks the endpoint table.

pub mod auth;
mod json;
pub mod metrics;
mod openapi;
mod pages;
mod problem;
pub mod routes;
mod ui;

pub use auth::endpoints::{Rule, ENDPOINTS};
pub use auth::AuthPolicy;
pub use openapi::ApiDoc;
pub use problem::ApiError;
pub use routes::admin::{issue_token, parse_username};
pub use seldinger_app::{App, Clock, FixedClock, ManualClock, StartedClock, SystemClock};
pub use ui::{PageRoute, PAGES};

use axum::http::{header, HeaderValue};
use axum::Router;
use seldinger_domain::discharge::DischargeTexts;
use seldinger_domain::dose_stats::ReferenceLevels;

/// The shipped discharge texts (catalog/discharge-instructions.toml, status D).
pub const SHIPPED_DISCHARGE_TEXTS: &str =
    include_str!("../../../catalog/discharge-instructions.toml");
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::ProcedureCatalogue;
use seldinger_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every request handler can reach: the application layer, and the web's own security policy.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub auth_policy: Arc<AuthPolicy>,
    /// Other faces served beside the API and pages (the FHIR server), each at its path, under
    /// the same security headers.
    pub mounts: Vec<(&'static str, Router)>,
    /// The board's lanes as last rendered, by the kept board they show (see `ui::board`).
    pub(crate) rendered_lanes: Arc<ui::board::RenderedLanes>,
}

/// Handlers read the department's state (store, catalogue, clock…) through the application layer.
impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl AppState {
    pub fn new(
        store: Store,
        catalogue: ProcedureCatalogue,
        safety: SafetyReference,
        clock: Arc<dyn Clock>,
        auth_policy: AuthPolicy,
    ) -> Self {
        let mut app = App::new(store, catalogue, safety, clock);
        app.discharge_texts = DischargeTexts::parse(
            SHIPPED_DISCHARGE_TEXTS,
            "catalog/discharge-instructions.toml (shipped)",
        )
        .map_err(|e| tracing::error!(error = %e, "shipped discharge texts unreadable"))
        .ok()
        .map(Arc::new);
        AppState {
            app,
            auth_policy: Arc::new(auth_policy),
            mounts: Vec::new(),
            rendered_lanes: Default::default(),
        }
    }

    /// Reads the pages' times and days in the department's time zone.
    pub fn with_time_zone(mut self, time: seldinger_domain::DepartmentTime) -> Self {
        self.app.time = time;
        self
    }

    /// Uses the department's own discharge texts.
    pub fn with_discharge_texts(mut self, texts: DischargeTexts) -> Self {
        self.app.discharge_texts = Some(Arc::new(texts));
        self
    }

    /// Serves `router` at `path` too (a face of its own, such as FHIR, which the binary wires).
    pub fn with_mount(mut self, path: &'static str, router: Router) -> Self {
        self.mounts.push((path, router));
        self
    }

    /// Uses the department's thresholds on its quality measures.
    pub fn with_quality_thresholds(
        mut self,
        thresholds: seldinger_domain::quality::Thresholds,
    ) -> Self {
        self.app.quality_thresholds = Arc::new(thresholds);
        self
    }

    /// Uses the department's diagnostic reference levels.
    pub fn with_dose_levels(mut self, levels: ReferenceLevels) -> Self {
        self.app.dose_levels = Arc::new(levels);
        self
    }
}

/// The whole application as a router, ready to serve or to test.
pub fn app(state: AppState) -> Router {
    // Installed before the first request and the listeners' first association, so they count.
    metrics::handle();
    let api = routes::api().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::gate,
    ));
    let mut router = Router::new().nest("/api/v1", api).merge(ui::routes());
    for (path, mounted) in state.mounts.clone() {
        router = router.nest_service(path, mounted);
    }
    router
        // Innermost, so the route matched is known and the time is the handler's and the gate's.
        .layer(axum::extract::DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.auth_policy.secure_cookies,
            strict_transport,
        ))
        // A panic is a bug; it answers 500 as problem+json (and is logged), not a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            answer_panic,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // Outermost: every layer and handler sees the client, not the proxy.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::forwarded_client,
        ))
        .with_state(state)
}

fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!("a request handler panicked: {message}");
    problem::ApiError::internal().into_response()
}

/// Served over TLS, browsers are told to come back only over TLS (HSTS, a year).
/// HSTS under TLS, or when a trusted TLS-terminating proxy says the client came over HTTPS.
async fn strict_transport(
    axum::extract::State(tls): axum::extract::State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let https = tls || auth::forwarded_https(request.headers());
    let mut response = next.run(request).await;
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Headers every response carries: nothing here may be framed, sniffed, cached or leak a referrer.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// Serves HTTPS with the PEM certificate chain and private key given, until `shutdown`
/// completes; then as [`serve`]. Cookies are marked `Secure` by the caller's [`AuthPolicy`].
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // ring builds with only a C compiler; installing twice (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_pem, key_pem).await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let store = state.store.clone();
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app(state).into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    store.close().await;
    Ok(())
}

/// Serves until `shutdown` completes, then finishes in-flight requests (so every acknowledged
/// write is committed) and closes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    store.close().await;
    Ok(())
}
