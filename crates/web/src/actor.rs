//! Who is making the request.
//!
//! Seam for authentication (issue 3): until sessions and tokens exist, the caller may name
//! themselves in `X-Seldinger-User`; otherwise changes are recorded as `unauthenticated`.
//! Replacing this extractor is the whole change needed to attribute events to logged-in users.

use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use seldinger_domain::Actor;

pub const ACTOR_HEADER: &str = "x-seldinger-user";

pub struct RequestActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let name = match parts.headers.get(ACTOR_HEADER) {
            None => "unauthenticated",
            Some(value) => value
                .to_str()
                .map_err(|_| ApiError::bad_request(ACTOR_HEADER, "must be printable ASCII"))?,
        };
        Actor::parse(name)
            .map(RequestActor)
            .map_err(|e| ApiError::bad_request(ACTOR_HEADER, e))
    }
}
