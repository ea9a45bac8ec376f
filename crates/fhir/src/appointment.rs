//! Appointment: a case booked into a room — when, where, who is to do it, for which referral —
//! with where it stands (booked, arrived, fulfilled, cancelled).

use crate::bundle::{self, Entry};
use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{reference_id, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_domain::lifecycle::CaseState;
use seldinger_domain::{Case, ProcedureCatalogue};
use seldinger_store::CaseFilter;
use serde_json::{json, Value};

pub const RESOURCE: Resource = Resource {
    name: "Appointment",
    documentation: "A case booked into a room: start and end, the room (Location, by its id), the patient and the performing physician, the referral it serves; status booked, arrived, fulfilled or cancelled.",
    params: &[
        Param {
            name: "date",
            kind: Kind::Date,
            documentation: "when it starts, with prefixes (a day is the department's day)",
        },
        Param {
            name: "location",
            kind: Kind::Reference,
            documentation: "the room (Location/<room id>)",
        },
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id)",
        },
        Param {
            name: "status",
            kind: Kind::Token,
            documentation: "booked, arrived, fulfilled, cancelled",
        },
    ],
    history: true,
    create: false,
};

fn status_of(state: CaseState) -> Option<&'static str> {
    use CaseState as S;
    match state {
        S::Scheduled => Some("booked"),
        S::CheckedIn => Some("arrived"),
        S::InRoom
        | S::ProcedureComplete
        | S::InRecovery
        | S::Discharged
        | S::FollowUp
        | S::Closed => Some("fulfilled"),
        S::Cancelled => Some("cancelled"),
        S::Referred | S::MoreInformationRequested | S::Vetted | S::Declined => None,
    }
}

pub fn to_fhir(case: &Case, catalogue: &ProcedureCatalogue) -> Option<Value> {
    let booking = case.booking.as_ref()?;
    let status = status_of(case.state)?;
    let mut participant = vec![
        json!({"actor": {"reference": format!("Patient/{}", case.patient_id)}, "status": "accepted"}),
        json!({"actor": {"display": booking.room.as_str()}, "status": "accepted",
               "type": [{"text": "room"}]}),
    ];
    if let Some(physician) = &booking.performing_physician {
        participant.push(
            json!({"actor": {"display": physician}, "status": "accepted",
                                "type": [{"text": "performing physician"}]}),
        );
    }
    let mut resource = json!({
        "resourceType": "Appointment",
        "id": case.id.to_string(),
        "meta": {"versionId": case.version.to_string(), "lastUpdated": instant(case.updated_at)},
        "status": status,
        "start": instant(booking.start),
        "end": instant(booking.end),
        "basedOn": [{"reference": format!("ServiceRequest/{}", case.referral_id)}],
        "participant": participant,
    });
    if let Some(name) = case
        .planned_procedure()
        .and_then(|p| catalogue.get(p))
        .map(|p| p.name.clone())
    {
        resource["description"] = json!(name);
    }
    if status == "cancelled" {
        if let Some(reason) = &case.ended_reason {
            resource["cancelationReason"] = json!({"text": reason});
        }
    }
    Some(resource)
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    crate::case_list::read_case_resource(request, caller, "Appointment", id, to_fhir).await
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let mut filter = CaseFilter {
        limit: search.count.max(1),
        booked_only: true,
        ..CaseFilter::default()
    };
    let mut nothing = false;
    if let Some((_, value)) = search.single("patient")? {
        match reference_id("patient", value, "Patient")?.parse() {
            Ok(id) => filter.patient_id = Some(id),
            Err(_) => nothing = true,
        }
    }
    if let Some((_, value)) = search.single("location")? {
        filter.room = Some(reference_id("location", value, "Location")?.to_string());
    }
    let date = search.instants("date", |day| Some(request.app.time.start_of(day)))?;
    if date.from.is_some() || date.before.is_some() {
        let far_past = DateTime::<Utc>::MIN_UTC;
        let far_future = DateTime::<Utc>::MAX_UTC;
        filter.booked_between = Some((
            date.from.unwrap_or(far_past),
            date.before.unwrap_or(far_future),
        ));
    }
    let wanted: Vec<&str> = match search.single("status")? {
        Some((_, value)) => value.split(',').map(str::trim).collect(),
        None => vec!["booked", "arrived", "fulfilled", "cancelled"],
    };
    for status in &wanted {
        let known = [
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        ];
        if !known.contains(status) {
            return Err(FhirError::invalid(
                "status",
                format!("'{status}' is not an appointment status"),
            ));
        }
    }
    filter.states = CaseState::ALL
        .into_iter()
        .filter(|s| status_of(*s).is_some_and(|st| wanted.contains(&st)))
        .collect();
    if filter.states.is_empty() {
        nothing = true;
    }
    let ids = search.ids()?;
    let page = if nothing {
        None
    } else {
        Some(
            request
                .app
                .cases_page(caller, &filter, search.cursor.as_ref())
                .await?,
        )
    };
    let (items, next, total) = match page {
        Some(page) => (page.items, page.next, page.total),
        None => (Vec::new(), None, 0),
    };
    let shown: Vec<(Value, &Case)> = if search.count == 0 {
        Vec::new()
    } else {
        items
            .iter()
            .filter(|c| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&c.id.to_string()))
            })
            .filter_map(|c| to_fhir(c, &request.app.catalogue).map(|r| (r, c)))
            .collect()
    };
    crate::case_list::audit_cases_shown(request, caller, shown.iter().map(|(_, c)| *c)).await?;
    let exact = ids.is_none();
    let entries = shown
        .into_iter()
        .map(|(resource, case)| Entry {
            resource_type: "Appointment",
            id: case.id.to_string(),
            resource,
        })
        .collect();
    let next = if search.count == 0 { None } else { next };
    let mut bundle = bundle::searchset(
        &request.base,
        "Appointment",
        search,
        entries,
        next.as_ref(),
        total,
    );
    if !exact {
        if let Some(fields) = bundle.as_object_mut() {
            fields.remove("total");
        }
    }
    Ok(respond::fhir_json(StatusCode::OK, &bundle))
}
