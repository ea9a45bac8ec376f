//! Task: the follow-up each case owes (§7 device and treatment follow-up, §5 dose checks): what
//! to do, for whom, its due window, who owes it (roles), and whether it was done or withdrawn.

use crate::bundle::{self, Entry};
use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{reference_id, token, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_app::Audit;
use seldinger_domain::access::Role;
use seldinger_domain::followup::{FollowUpTask, TaskStatus};
use seldinger_store::{FollowUpFilter, Standing};
use serde_json::{json, Value};

/// The kinds of follow-up (§5, §7) as a code system.
pub const FOLLOW_UP_SYSTEM: &str = "urn:seldinger:follow-up";

pub const RESOURCE: Resource = Resource {
    name: "Task",
    documentation: "Follow-up owed after a procedure (IVC filter retrieval review, drain and tube exchanges, dose skin checks, …) with its due window (restriction.period), the roles that owe it (owner) and where it stands: requested (not yet due), ready (due; businessStatus says overdue past its window), completed, cancelled (withdrawn).",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id)",
        },
        Param {
            name: "status",
            kind: Kind::Token,
            documentation: "requested, ready, completed or cancelled",
        },
        Param {
            name: "owner",
            kind: Kind::Token,
            documentation: "a role that owes it: ir_physician, ir_nurse, medical_physicist, …",
        },
        Param {
            name: "period",
            kind: Kind::Date,
            documentation: "due windows overlapping this date or span",
        },
    ],
    history: false,
    create: false,
};

fn fhir_status(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::NotYetDue => "requested",
        TaskStatus::Due | TaskStatus::Overdue => "ready",
        TaskStatus::Done => "completed",
        TaskStatus::Withdrawn => "cancelled",
    }
}

pub fn to_fhir(task: &FollowUpTask, now: DateTime<Utc>) -> Value {
    let status = task.status(now);
    let mut period = json!({"start": instant(task.due_from)});
    if let Some(until) = task.due_until {
        period["end"] = json!(instant(until));
    }
    let owners: Vec<&str> = task.roles.iter().map(|r| r.as_str()).collect();
    let closed = task.completed.as_ref().or(task.withdrawn.as_ref());
    let last_modified = closed.map_or(task.created_at, |c| c.at);
    let mut resource = json!({
        "resourceType": "Task",
        "id": task.id.to_string(),
        "meta": {"versionId": task.version.to_string(), "lastUpdated": instant(last_modified)},
        "status": fhir_status(status),
        "businessStatus": {"text": status.class()},
        "intent": "order",
        "code": {
            "coding": [{"system": FOLLOW_UP_SYSTEM, "code": task.kind.as_str()}],
            "text": task.kind.as_str().replace('_', " "),
        },
        "description": task.instructions,
        "for": {"reference": format!("Patient/{}", task.patient_id)},
        "authoredOn": instant(task.created_at),
        "lastModified": instant(last_modified),
        "owner": {"display": owners.join(", ")},
        "restriction": {"period": period},
        "reasonCode": {"text": task.citation},
    });
    if let Some(closed) = closed {
        resource["note"] = json!([{
            "authorString": closed.by,
            "time": instant(closed.at),
            "text": closed.note,
        }]);
    }
    resource
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let not_found = || FhirError::not_found(format!("Task/{id}"));
    let task_id: uuid::Uuid = id.parse().map_err(|_| not_found())?;
    let (task, opened) = request
        .app
        .follow_up_task(caller, task_id)
        .await
        .map_err(|e| match FhirError::from(e) {
            e if e.status == StatusCode::NOT_FOUND => not_found(),
            e => e,
        })?;
    request
        .app
        .audit_reads(
            caller,
            vec![
                Audit::of("fhir-read", "follow_up_task", task.id, task.patient_id)
                    .break_glass(&opened),
            ],
        )
        .await?;
    let resource = to_fhir(&task, request.app.clock.now());
    Ok(respond::resource(
        StatusCode::OK,
        &resource,
        task.version,
        task.completed
            .as_ref()
            .or(task.withdrawn.as_ref())
            .map_or(task.created_at, |c| c.at),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let now = request.app.clock.now();
    let mut filter = FollowUpFilter::default();
    let mut nothing = false;
    if let Some((_, value)) = search.single("patient")? {
        match reference_id("patient", value, "Patient")?.parse() {
            Ok(id) => filter.patient_id = Some(id),
            Err(_) => nothing = true,
        }
    }
    if let Some((_, value)) = search.single("status")? {
        let mut statuses = Vec::new();
        for status in value.split(',').map(str::trim) {
            let matching: Vec<TaskStatus> = TaskStatus::ALL
                .iter()
                .copied()
                .filter(|s| fhir_status(*s) == status)
                .collect();
            let known = [
                "draft",
                "requested",
                "received",
                "accepted",
                "rejected",
                "ready",
                "cancelled",
                "in-progress",
                "on-hold",
                "failed",
                "completed",
                "entered-in-error",
            ];
            if matching.is_empty() && !known.contains(&status) {
                return Err(FhirError::invalid(
                    "status",
                    format!("'{status}' is not a task status: requested, ready, completed, cancelled (and FHIR's others, which match none here)"),
                ));
            }
            statuses.extend(matching);
        }
        filter.standing = Some(Standing { statuses, now });
    }
    if let Some((_, value)) = search.single("owner")? {
        let wanted = token(value).code.unwrap_or_default();
        filter.owed_by = Some(Role::parse(wanted).map_err(|e| FhirError::invalid("owner", e))?);
    }
    let period = search.instants("period", |day| Some(request.app.time.start_of(day)))?;
    filter.due_window_from = period.from;
    filter.due_window_before = period.before;
    let ids = search.ids()?;
    if nothing {
        return Ok(respond::fhir_json(
            StatusCode::OK,
            &bundle::searchset(&request.base, "Task", search, Vec::new(), None, 0),
        ));
    }
    let page = request
        .app
        .follow_up_tasks_page(
            caller,
            &filter,
            search.cursor.as_ref(),
            search.count.max(1) as usize,
        )
        .await?;
    // `_id` narrows what the page holds; a page may then show fewer than asked.
    let shown: Vec<FollowUpTask> = if search.count == 0 {
        Vec::new()
    } else {
        page.items
            .into_iter()
            .filter(|t| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&t.id.to_string()))
            })
            .collect()
    };
    request
        .app
        .audit_reads(
            caller,
            shown
                .iter()
                .map(|t| Audit::of("fhir-search", "follow_up_task", t.id, t.patient_id))
                .collect(),
        )
        .await?;
    let total = if ids.is_some() {
        None
    } else {
        Some(page.total)
    };
    let entries = shown
        .iter()
        .map(|t| Entry {
            resource_type: "Task",
            id: t.id.to_string(),
            resource: to_fhir(t, now),
        })
        .collect();
    let next = if search.count == 0 {
        None
    } else {
        page.next.as_ref()
    };
    let mut bundle = bundle::searchset(
        &request.base,
        "Task",
        search,
        entries,
        next,
        total.unwrap_or(0),
    );
    if total.is_none() {
        // Counted after the page was read: no exact total to give.
        if let Some(fields) = bundle.as_object_mut() {
            fields.remove("total");
        }
    }
    Ok(respond::fhir_json(StatusCode::OK, &bundle))
}
