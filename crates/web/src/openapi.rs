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
        crate::auth::login::sign_in,
        crate::auth::login::current,
        crate::auth::login::sign_out,
        routes::catalogue::procedures,
        routes::catalogue::rooms,
        routes::patients::register,
        routes::patients::search,
        routes::patients::get,
        routes::patients::update,
        routes::patients::history,
        routes::patients::add_lab_result,
        routes::patients::add_medication,
        routes::patients::correct_lab_result,
        routes::patients::withdraw_lab_result,
        routes::patients::correct_medication,
        routes::patients::withdraw_medication,
        routes::referrals::create,
        routes::referrals::list,
        routes::referrals::get,
        routes::cases::list,
        routes::cases::get,
        routes::cases::transition,
        routes::cases::history,
        routes::cases::checklist,
        routes::cases::readiness,
        routes::cases::tasks,
        routes::safety::evaluate,
        routes::dose::reports,
        routes::dose::report,
        routes::dose::link,
        routes::dose::case_dose,
        routes::dose::patient_dose,
        routes::dose::statistics,
        routes::followup::list,
        routes::followup::complete,
        routes::admin::users,
        routes::admin::add_user,
        routes::admin::disable_user,
        routes::admin::enable_user,
        routes::admin::reset_password,
        routes::admin::tokens,
        routes::admin::create_token,
        routes::admin::revoke_token,
        routes::admin::audit,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system"), (name = "session"), (name = "catalogue"), (name = "patients"), (name = "referrals"),
        (name = "cases"), (name = "safety"), (name = "dose"), (name = "follow-up"), (name = "administration")
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate; which endpoints need them is in docs/roles.md.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("seldinger_session"))),
        );
    }
}
