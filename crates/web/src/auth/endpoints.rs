//! Every API endpoint and the permission it needs, in one table. The gate refuses any routed
//! endpoint missing from here, and a test walks every entry for every role.

use axum::http::Method;
use seldinger_domain::access::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No sign-in: health, the API description, signing in.
    Public,
    /// Any signed-in user (their own session).
    SignedIn,
    Requires(Permission),
}

use Permission as P;
use Rule::{Public, Requires, SignedIn};

pub const ENDPOINTS: &[(&str, &str, Rule)] = &[
    ("GET", "/api/v1/health", Public),
    ("GET", "/api/v1/health/live", Public),
    ("GET", "/api/v1/health/ready", Public),
    ("GET", "/api/v1/openapi.json", Public),
    // How the interfaces stand (queue depths, dead letters): for the administrator's monitoring
    // token; no patient data, only counts and route patterns.
    ("GET", "/api/v1/metrics", Requires(P::ReadMetrics)),
    ("POST", "/api/v1/session", Public),
    ("GET", "/api/v1/session", SignedIn),
    ("DELETE", "/api/v1/session", SignedIn),
    ("GET", "/api/v1/procedures", Requires(P::ReadReferenceData)),
    ("GET", "/api/v1/rooms", Requires(P::ReadReferenceData)),
    ("POST", "/api/v1/patients", Requires(P::RegisterPatients)),
    ("GET", "/api/v1/patients", Requires(P::ReadPatients)),
    ("GET", "/api/v1/patients/{id}", Requires(P::ReadPatients)),
    ("PUT", "/api/v1/patients/{id}", Requires(P::UpdatePatients)),
    (
        "GET",
        "/api/v1/patients/{id}/history",
        Requires(P::ReadPatients),
    ),
    (
        "POST",
        "/api/v1/patients/{id}/lab-results",
        Requires(P::RecordClinicalData),
    ),
    (
        "POST",
        "/api/v1/patients/{id}/medications",
        Requires(P::RecordClinicalData),
    ),
    (
        "PUT",
        "/api/v1/patients/{id}/lab-results/{entry}",
        Requires(P::RecordClinicalData),
    ),
    (
        "POST",
        "/api/v1/patients/{id}/lab-results/{entry}/entered-in-error",
        Requires(P::RecordClinicalData),
    ),
    (
        "PUT",
        "/api/v1/patients/{id}/medications/{entry}",
        Requires(P::RecordClinicalData),
    ),
    (
        "POST",
        "/api/v1/patients/{id}/medications/{entry}/entered-in-error",
        Requires(P::RecordClinicalData),
    ),
    ("POST", "/api/v1/referrals", Requires(P::CreateReferrals)),
    ("GET", "/api/v1/referrals", Requires(P::ReadReferrals)),
    ("GET", "/api/v1/referrals/{id}", Requires(P::ReadReferrals)),
    ("GET", "/api/v1/cases", Requires(P::ReadCases)),
    ("GET", "/api/v1/cases/{id}", Requires(P::ReadCases)),
    // Seeing the case is the entry ticket; the event itself needs its own permission
    // (Permission::for_case_event), checked by the handler once the event is read.
    (
        "POST",
        "/api/v1/cases/{id}/transitions",
        Requires(P::ReadCases),
    ),
    ("GET", "/api/v1/cases/{id}/history", Requires(P::ReadCases)),
    (
        "GET",
        "/api/v1/cases/{id}/checklist",
        Requires(P::ReadCases),
    ),
    ("GET", "/api/v1/readiness", Requires(P::ReadCases)),
    ("GET", "/api/v1/tasks", Requires(P::ReadCases)),
    // The calculator holds no patient identity and stores nothing.
    (
        "POST",
        "/api/v1/safety/evaluate",
        Requires(P::ReadReferenceData),
    ),
    ("GET", "/api/v1/cases/{id}/dose", Requires(P::ReadDose)),
    ("GET", "/api/v1/patients/{id}/dose", Requires(P::ReadDose)),
    ("GET", "/api/v1/dose/reports", Requires(P::ReadDose)),
    (
        "GET",
        "/api/v1/dose/reports/{sop_instance_uid}",
        Requires(P::ReadDose),
    ),
    (
        "POST",
        "/api/v1/dose/reports/{sop_instance_uid}/link",
        Requires(P::ManageDose),
    ),
    ("GET", "/api/v1/dose/statistics", Requires(P::ReadDose)),
    ("GET", "/api/v1/adverse-events", Requires(P::ReadCases)),
    ("GET", "/api/v1/adverse-events/{id}", Requires(P::ReadCases)),
    // Attribution is an IR physician's, the rest a reporter's: checked once the change is read.
    (
        "POST",
        "/api/v1/adverse-events/{id}/changes",
        Requires(P::ReadCases),
    ),
    (
        "POST",
        "/api/v1/cases/{id}/adverse-events",
        Requires(P::ReportAdverseEvents),
    ),
    ("GET", "/api/v1/cases/{id}/report", Requires(P::ReadCases)),
    (
        "POST",
        "/api/v1/cases/{id}/report",
        Requires(P::SignReports),
    ),
    ("GET", "/api/v1/devices", Requires(P::ReadCases)),
    ("GET", "/api/v1/devices/ivc-filters", Requires(P::ReadCases)),
    ("GET", "/api/v1/devices/{id}", Requires(P::ReadCases)),
    // Removal and exchange are clinical records, a permanent decision an IR physician's: the
    // handler checks which once it reads the event.
    (
        "POST",
        "/api/v1/devices/{id}/events",
        Requires(P::ReadCases),
    ),
    (
        "GET",
        "/api/v1/quality",
        Requires(P::ReadDeidentifiedOutcomes),
    ),
    (
        "GET",
        "/api/v1/quality/mm",
        Requires(P::ReadDeidentifiedOutcomes),
    ),
    (
        "GET",
        "/api/v1/quality/registry-export",
        Requires(P::ReadDeidentifiedOutcomes),
    ),
    (
        "POST",
        "/api/v1/cases/{id}/mm-notes",
        Requires(P::RecordMmNotes),
    ),
    ("GET", "/api/v1/follow-up-tasks", Requires(P::ReadCases)),
    // Who may close a task depends on its kind; the handler checks once the task is read.
    (
        "POST",
        "/api/v1/follow-up-tasks/{id}/complete",
        Requires(P::ReadCases),
    ),
    ("GET", "/api/v1/users", Requires(P::ManageUsers)),
    ("POST", "/api/v1/users", Requires(P::ManageUsers)),
    (
        "POST",
        "/api/v1/users/{username}/disable",
        Requires(P::ManageUsers),
    ),
    (
        "POST",
        "/api/v1/users/{username}/enable",
        Requires(P::ManageUsers),
    ),
    (
        "POST",
        "/api/v1/users/{username}/password",
        Requires(P::ManageUsers),
    ),
    ("GET", "/api/v1/tokens", Requires(P::ManageUsers)),
    ("POST", "/api/v1/tokens", Requires(P::ManageUsers)),
    ("DELETE", "/api/v1/tokens/{id}", Requires(P::ManageUsers)),
    ("GET", "/api/v1/audit", Requires(P::ReadAudit)),
    ("GET", "/api/v1/hl7/messages", Requires(P::ManageInterfaces)),
    (
        "GET",
        "/api/v1/hl7/messages/{id}",
        Requires(P::ManageInterfaces),
    ),
    (
        "POST",
        "/api/v1/hl7/messages/{id}/replay",
        Requires(P::ManageInterfaces),
    ),
    ("GET", "/api/v1/hl7/outbox", Requires(P::ManageInterfaces)),
    (
        "GET",
        "/api/v1/hl7/outbox/{id}",
        Requires(P::ManageInterfaces),
    ),
    (
        "POST",
        "/api/v1/hl7/outbox/{id}/send-again",
        Requires(P::ManageInterfaces),
    ),
];

pub fn rule_for(method: &Method, path: &str) -> Option<Rule> {
    ENDPOINTS
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, rule)| *rule)
}

/// The methods the table allows on `path` (with HEAD wherever GET is), for a 405's `Allow`.
pub fn methods_of(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ENDPOINTS
        .iter()
        .filter(|(_, p, _)| *p == path)
        .map(|(m, _, _)| *m)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}
