//! A referral: a clinician asks IR to do something for a patient. Creating one opens its case.

use crate::catalogue::{ProcedureCatalogue, ProcedureId};
use crate::ids::{CaseId, PatientId, ReferralId};
use crate::validation::{optional_text, parse_choice, required_text, Collector, ValidationErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who is asking: the referring service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestingService {
    Oncology,
    Surgery,
    PrimaryCare,
    Ward,
    EmergencyDepartment,
    Medicine,
    Urology,
    Gastroenterology,
    Nephrology,
    Obstetrics,
    Other,
}

const SERVICES: &[(&str, RequestingService)] = &[
    ("oncology", RequestingService::Oncology),
    ("surgery", RequestingService::Surgery),
    ("primary_care", RequestingService::PrimaryCare),
    ("ward", RequestingService::Ward),
    (
        "emergency_department",
        RequestingService::EmergencyDepartment,
    ),
    ("medicine", RequestingService::Medicine),
    ("urology", RequestingService::Urology),
    ("gastroenterology", RequestingService::Gastroenterology),
    ("nephrology", RequestingService::Nephrology),
    ("obstetrics", RequestingService::Obstetrics),
    ("other", RequestingService::Other),
];

impl RequestingService {
    pub fn parse(value: &str) -> Result<Self, String> {
        parse_choice(value, SERVICES)
    }

    pub fn as_str(self) -> &'static str {
        SERVICES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("other", |(name, _)| name)
    }
}

/// How soon: the referrer's request, and later the vetting physician's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Emergent,
    Urgent,
    Routine,
}

pub const URGENCIES: &[(&str, Urgency)] = &[
    ("emergent", Urgency::Emergent),
    ("urgent", Urgency::Urgent),
    ("routine", Urgency::Routine),
];

impl Urgency {
    pub fn parse(value: &str) -> Result<Self, String> {
        parse_choice(value, URGENCIES)
    }
}

/// The ordering system's number for an order (HL7 ORC-2, placer order number): which system
/// (its namespace) and its number there. A referral that came as an order carries it, so the
/// system can cancel or change it later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlacerOrder {
    pub number: String,
    /// The placer's namespace (EI-2), e.g. the order-entry system's name; may be empty.
    #[serde(default)]
    pub authority: String,
}

impl PlacerOrder {
    /// The longest order number kept (EI-1 is 199 characters at most).
    pub const MAX_CHARS: usize = 199;

    pub fn new(number: &str, authority: &str) -> Result<PlacerOrder, String> {
        let number = number.trim();
        if number.is_empty()
            || number.chars().count() > Self::MAX_CHARS
            || number.chars().any(char::is_control)
        {
            return Err(format!(
                "'{number}' is not a placer order number: 1-199 printable characters"
            ));
        }
        Ok(PlacerOrder {
            number: number.to_string(),
            authority: authority.trim().to_ascii_uppercase(),
        })
    }

    /// An order numbered in a namespace that is a URI (a FHIR identifier's system): kept as
    /// written, since URIs are case-sensitive.
    pub fn in_namespace(number: &str, system: &str) -> Result<PlacerOrder, String> {
        let mut order = PlacerOrder::new(number, "")?;
        let system = system.trim();
        if system.chars().count() > Self::MAX_CHARS || system.chars().any(char::is_control) {
            return Err("the identifier's system: 1-199 printable characters".into());
        }
        order.authority = system.to_string();
        Ok(order)
    }

    /// How it is looked up: the authority and the number.
    pub fn key(&self) -> String {
        format!("{}|{}", self.authority, self.number)
    }
}

/// What the referrer asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferralDetails {
    pub requesting_clinician: String,
    pub requesting_service: RequestingService,
    pub indication: String,
    /// The catalogue procedure asked for, when the referrer named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_procedure: Option<ProcedureId>,
    /// The request in the referrer's words, when no catalogue entry fits or to add detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_procedure_text: Option<String>,
    pub urgency: Urgency,
    pub clinical_question: String,
    /// The ordering system's number, when the referral came as an order (HL7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_order: Option<PlacerOrder>,
}

/// A referral as sent by a client, before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferralInput {
    pub patient_id: String,
    pub requesting_clinician: String,
    /// One of oncology, surgery, primary_care, ward, emergency_department, medicine, urology,
    /// gastroenterology, nephrology, obstetrics, other.
    pub requesting_service: String,
    pub indication: String,
    /// A catalogue id (GET /api/v1/procedures); this or `requested_procedure_text` is required.
    #[serde(default)]
    pub requested_procedure: Option<String>,
    #[serde(default)]
    pub requested_procedure_text: Option<String>,
    /// One of emergent, urgent, routine.
    pub urgency: String,
    #[serde(default)]
    pub clinical_question: String,
}

/// A referral as first received; the type exists only once every field is checked.
pub type NewReferral = ReferralDetails;

impl ReferralDetails {
    /// Checks every field; the patient id is checked by the caller, who can look it up.
    pub fn parse(
        input: &ReferralInput,
        catalogue: &ProcedureCatalogue,
    ) -> Result<Self, ValidationErrors> {
        let mut c = Collector::new();
        let clinician = c.take(
            "requesting_clinician",
            required_text(&input.requesting_clinician, crate::validation::SHORT_TEXT),
        );
        let service = c.take(
            "requesting_service",
            parse_choice(&input.requesting_service, SERVICES),
        );
        let indication = c.take(
            "indication",
            required_text(&input.indication, crate::validation::LONG_TEXT),
        );
        let requested_procedure = match input.requested_procedure.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) => c.take(
                "requested_procedure",
                catalogue.find(id).map(|p| p.id.clone()),
            ),
        };
        let requested_procedure_text = c.take(
            "requested_procedure_text",
            optional_text(
                input.requested_procedure_text.as_deref(),
                crate::validation::MEDIUM_TEXT,
            ),
        );
        if input
            .requested_procedure
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
            && requested_procedure_text
                .as_ref()
                .is_some_and(Option::is_none)
        {
            c.push(
                "requested_procedure",
                "name a catalogue procedure or describe the request in requested_procedure_text",
            );
        }
        let urgency = c.take("urgency", Urgency::parse(&input.urgency));
        let question = c.take(
            "clinical_question",
            optional_text(Some(&input.clinical_question), crate::validation::LONG_TEXT),
        );
        c.finish()?;
        match (clinician, service, indication, urgency) {
            (
                Some(requesting_clinician),
                Some(requesting_service),
                Some(indication),
                Some(urgency),
            ) => Ok(ReferralDetails {
                requesting_clinician,
                requesting_service,
                indication,
                requested_procedure,
                requested_procedure_text: requested_procedure_text.flatten(),
                urgency,
                clinical_question: question.flatten().unwrap_or_default(),
                placer_order: None,
            }),
            _ => Err(ValidationErrors::single("referral", "incomplete input")),
        }
    }
}

/// A received referral and the case it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Referral {
    pub id: ReferralId,
    pub patient_id: PatientId,
    pub case_id: CaseId,
    pub received_at: DateTime<Utc>,
    #[serde(flatten)]
    pub details: ReferralDetails,
    pub version: u64,
}
