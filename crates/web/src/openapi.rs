//! The OpenAPI document, generated from the route annotations and the domain types themselves.

use crate::routes;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seldinger API",
        description = "Interventional radiology service: patients, referrals, cases and their lifecycle. \
                       Errors are RFC 9457 problem+json.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        routes::system::health,
        routes::system::openapi,
        routes::catalogue::procedures,
        routes::catalogue::rooms,
        routes::patients::register,
        routes::patients::search,
        routes::patients::get,
        routes::patients::update,
        routes::patients::history,
        routes::referrals::create,
        routes::referrals::list,
        routes::referrals::get,
        routes::cases::list,
        routes::cases::get,
        routes::cases::transition,
        routes::cases::history,
    ),
    tags(
        (name = "system"), (name = "catalogue"), (name = "patients"), (name = "referrals"), (name = "cases")
    )
)]
pub struct ApiDoc;
