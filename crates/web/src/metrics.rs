//! Prometheus metrics (`GET /api/v1/metrics`, text exposition format): every request counted
//! and timed by its route (the matched pattern, never the ids in the path, so no patient data
//! and bounded series), the DICOM and HL7 listeners' associations (counted where they accept),
//! and at each scrape the HL7 interface's queue depths and dead letters from the database.
//! Each node exposes its own; Prometheus scrapes every node and sums.

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

const REQUEST_SECONDS: &str = "seldinger_http_request_duration_seconds";

/// Latency buckets from a fast read to the pool's wait for a lost database.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's recorder, installed once (a test process runs many servers in one).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder installed first (an embedding program's): ours still renders what
        // it is given, the rest goes to theirs.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times every request by method, route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // The methods HTTP defines; any other is `other`, so made-up methods add no series.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(REQUEST_SECONDS, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("seldinger_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition format: requests, latencies, listener associations, HL7 queue depths and dead letters, audit commit waits"),
        (status = 503, body = crate::problem::Problem)))]
pub async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let handle = handle();
    let depths = state.store.queue_depths().await?;
    // A queue that emptied has no row: it is set to 0, not left at its last depth.
    static SEEN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (destination, status, _) in &depths.outbox {
        if !seen.iter().any(|(d, s)| d == destination && s == status) {
            seen.push((destination.clone(), status.clone()));
        }
    }
    for (destination, status) in seen.iter() {
        let count = depths
            .outbox
            .iter()
            .find(|(d, s, _)| d == destination && s == status)
            .map_or(0, |(_, _, n)| *n);
        metrics::gauge!("seldinger_hl7_outbox_messages", "destination" => destination.clone(), "status" => status.clone())
            .set(count as f64);
    }
    drop(seen);
    for status in ["failed", "received"] {
        let count = depths
            .inbox
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        let name = if status == "failed" {
            "seldinger_hl7_dead_letters"
        } else {
            "seldinger_hl7_inbox_unfinished"
        };
        metrics::gauge!(name).set(count as f64);
    }
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}
