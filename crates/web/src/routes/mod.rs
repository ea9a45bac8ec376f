//! The JSON API under `/api/v1`, one module per resource.

pub mod admin;
pub mod adverse_events;
pub mod cases;
pub(crate) mod catalogue;
pub mod devices;
pub mod dose;
pub mod followup;
pub mod interfaces;
pub(crate) mod patients;
pub mod quality;
pub(crate) mod referrals;
pub mod reports;
pub(crate) mod safety;
pub(crate) mod system;

pub(crate) use cases::CaseRecord;

use crate::auth::login;
use crate::problem::ApiError;
use crate::AppState;
use axum::routing::{delete, get, post, put};
use axum::Router;

pub fn api() -> Router<AppState> {
    Router::new()
        .route("/health", get(system::health))
        .route("/health/live", get(system::live))
        .route("/health/ready", get(system::ready))
        .route("/openapi.json", get(system::openapi))
        .route("/metrics", get(crate::metrics::scrape))
        .route(
            "/session",
            post(login::sign_in)
                .get(login::current)
                .delete(login::sign_out),
        )
        .route("/procedures", get(catalogue::procedures))
        .route("/rooms", get(catalogue::rooms))
        .route("/patients", post(patients::register).get(patients::search))
        .route("/patients/{id}", get(patients::get).put(patients::update))
        .route("/patients/{id}/history", get(patients::history))
        .route("/patients/{id}/lab-results", post(patients::add_lab_result))
        .route("/patients/{id}/medications", post(patients::add_medication))
        .route(
            "/patients/{id}/lab-results/{entry}",
            put(patients::correct_lab_result),
        )
        .route(
            "/patients/{id}/lab-results/{entry}/entered-in-error",
            post(patients::withdraw_lab_result),
        )
        .route(
            "/patients/{id}/medications/{entry}",
            put(patients::correct_medication),
        )
        .route(
            "/patients/{id}/medications/{entry}/entered-in-error",
            post(patients::withdraw_medication),
        )
        .route("/referrals", post(referrals::create).get(referrals::list))
        .route("/referrals/{id}", get(referrals::get))
        .route("/cases", get(cases::list))
        .route("/cases/{id}", get(cases::get))
        .route("/cases/{id}/transitions", post(cases::transition))
        .route("/cases/{id}/history", get(cases::history))
        .route("/cases/{id}/checklist", get(cases::checklist))
        .route("/readiness", get(cases::readiness))
        .route("/tasks", get(cases::tasks))
        .route("/safety/evaluate", post(safety::evaluate))
        .route("/cases/{id}/dose", get(dose::case_dose))
        .route("/patients/{id}/dose", get(dose::patient_dose))
        .route("/dose/reports", get(dose::reports))
        .route("/dose/reports/{sop_instance_uid}", get(dose::report))
        .route("/dose/reports/{sop_instance_uid}/link", post(dose::link))
        .route("/dose/statistics", get(dose::statistics))
        .route("/adverse-events", get(adverse_events::list))
        .route("/adverse-events/{id}", get(adverse_events::get))
        .route("/adverse-events/{id}/changes", post(adverse_events::change))
        .route("/cases/{id}/adverse-events", post(adverse_events::report))
        .route(
            "/cases/{id}/report",
            get(reports::get).post(reports::change),
        )
        .route("/devices", get(devices::list))
        .route("/devices/ivc-filters", get(devices::ivc_filters))
        .route("/devices/{id}", get(devices::get))
        .route("/devices/{id}/events", post(devices::record_event))
        .route("/quality", get(quality::get))
        .route("/quality/mm", get(quality::mm))
        .route("/quality/registry-export", get(quality::registry_export))
        .route("/cases/{id}/mm-notes", post(quality::add_mm_note))
        .route("/follow-up-tasks", get(followup::list))
        .route("/follow-up-tasks/{id}/complete", post(followup::complete))
        .route("/users", get(admin::users).post(admin::add_user))
        .route("/users/{username}/disable", post(admin::disable_user))
        .route("/users/{username}/enable", post(admin::enable_user))
        .route("/users/{username}/password", post(admin::reset_password))
        .route("/tokens", get(admin::tokens).post(admin::create_token))
        .route("/tokens/{id}", delete(admin::revoke_token))
        .route("/audit", get(admin::audit))
        .route("/hl7/messages", get(interfaces::list))
        .route("/hl7/messages/{id}", get(interfaces::get))
        .route("/hl7/messages/{id}/replay", post(interfaces::replay))
        .route("/hl7/outbox", get(interfaces::outbox))
        .route("/hl7/outbox/{id}", get(interfaces::outbound))
        .route("/hl7/outbox/{id}/send-again", post(interfaces::send_again))
        .fallback(|| async { ApiError::not_found("this API path") })
}

/// Parses an id from the path; a malformed one is a 404 like any id that names nothing.
pub(crate) fn path_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("{what} {raw}")))
}

/// Query parameters, refusing names the endpoint does not know (a typo must not silently widen a search).
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn new(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self, ApiError> {
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        {
            return Err(ApiError::bad_request(
                name.clone(),
                format!(
                    "unknown query parameter; this endpoint takes: {}",
                    known.join(", ")
                ),
            ));
        }
        // `?date=` is not "no date": a parameter given is given a value, or left out.
        if let Some((name, _)) = pairs.iter().find(|(_, value)| value.trim().is_empty()) {
            return Err(ApiError::bad_request(
                name.clone(),
                "is blank: give a value or leave the parameter out",
            ));
        }
        // No query value holds a control character (as the OpenAPI document's pattern says).
        if let Some((name, _)) = pairs
            .iter()
            .find(|(_, value)| value.chars().any(char::is_control))
        {
            return Err(ApiError::bad_request(
                name.clone(),
                "must not contain control characters",
            ));
        }
        Ok(QueryParams(pairs))
    }

    /// The id given for `name` (a case's, a patient's), read by its type; a malformed one is a
    /// 400 naming the parameter.
    pub fn id<T: std::str::FromStr<Err = String>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        self.one(name)
            .map(|id| {
                id.parse()
                    .map_err(|e: String| ApiError::bad_request(name, e))
            })
            .transpose()
    }

    /// Every value given for `name` (repeated or comma-separated), trimmed, blanks dropped.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.one("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(
                    "limit",
                    format!("'{v}' is not a whole number from 1 to {max}"),
                )),
            },
        }
    }

    /// `cursor=` from a previous page's `next` link; a made-up one is refused.
    pub fn cursor(&self) -> Result<Option<seldinger_store::Cursor>, ApiError> {
        self.one("cursor")
            .map(|c| {
                seldinger_store::Cursor::parse(&c).map_err(|e| ApiError::bad_request("cursor", e))
            })
            .transpose()
    }

    /// `format=csv` asks for a CSV download instead of JSON.
    pub fn wants_csv(&self) -> Result<bool, ApiError> {
        match self.one("format").as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                "format",
                format!("'{other}' is not json or csv"),
            )),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                name,
                format!("'{other}' is not true or false"),
            )),
        }
    }
}

/// A page of a list as JSON, with its [`page_headers`].
pub(crate) fn paged_json<T: serde::Serialize>(
    uri: &axum::http::Uri,
    page: seldinger_store::Page<T>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(&page.items).into_response();
    page_headers(&mut response, uri, page.next.as_ref(), page.total);
    response
}

/// `X-Total-Count` (rows the filter matches in all) and, when rows follow, a
/// `Link: <…>; rel="next"` to them (RFC 8288): nothing is cut off without a word.
pub(crate) fn page_headers(
    response: &mut axum::response::Response,
    uri: &axum::http::Uri,
    next: Option<&seldinger_store::Cursor>,
    total: u64,
) {
    let headers = response.headers_mut();
    if let Ok(total) = axum::http::HeaderValue::from_str(&total.to_string()) {
        headers.insert("x-total-count", total);
    }
    if let Some(next) = next {
        let link = format!("<{}>; rel=\"next\"", with_cursor(uri, &next.as_text()));
        if let Ok(link) = axum::http::HeaderValue::from_str(&link) {
            headers.insert(axum::http::header::LINK, link);
        }
    }
}

/// The request's own path (the original URI, with its /api/v1 prefix) and query with `cursor`
/// set to `cursor`.
fn with_cursor(uri: &axum::http::Uri, cursor: &str) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("cursor="))
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{}?{query}cursor={cursor}", uri.path())
}

/// RFC 4180 quoting and the formula guard, as every CSV download writes a field.
pub(crate) fn csv_field(value: &str) -> String {
    seldinger_domain::csv::field(value)
}

/// A CSV download: a header line, then one line per row (CRLF, as RFC 4180 has it). Numbers go
/// in as written by the caller; text is quoted and formula-guarded.
pub(crate) fn csv_response(
    filename: &str,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> axum::response::Response {
    use axum::http::header as h;
    use axum::response::IntoResponse;
    let mut out = header.join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    (
        [
            (h::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                h::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        out,
    )
        .into_response()
}

/// A `YYYY-MM-DD` query parameter, or `default` when absent.
pub(crate) fn parse_date(
    field: &str,
    value: Option<String>,
    default: chrono::NaiveDate,
) -> Result<chrono::NaiveDate, ApiError> {
    use chrono::Datelike;
    match value {
        None => Ok(default),
        // Four-digit years only: chrono also reads "+262142-12-31", where day arithmetic
        // (a period's end, a year back) would overflow.
        Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .ok()
            .filter(|date| (1..=9999).contains(&date.year()))
            .ok_or_else(|| {
                ApiError::bad_request(field, format!("'{d}' is not a date: use YYYY-MM-DD"))
            }),
    }
}

/// A patient's name as lists show it ("Family, Given") and MRN; blank when the record is missing.
/// The name and MRN of each of these patients, read in one query (a list's rows, not one
/// read per row); a patient not found has none.
pub(crate) async fn patient_labels(
    state: &AppState,
    ids: impl IntoIterator<Item = seldinger_domain::PatientId>,
) -> Result<std::collections::HashMap<seldinger_domain::PatientId, (String, String)>, ApiError> {
    let ids: Vec<_> = ids.into_iter().collect();
    Ok(state
        .store
        .patients_by_id(&ids)
        .await?
        .iter()
        .map(|p| (p.id, patient_label(Some(p))))
        .collect())
}

pub(crate) fn patient_label(patient: Option<&seldinger_domain::Patient>) -> (String, String) {
    patient.map_or_else(Default::default, |p| {
        (
            p.details.name.family_first(),
            p.details.mrn.as_str().to_string(),
        )
    })
}
