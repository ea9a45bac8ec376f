//! Who may do what: roles, permissions and the one matrix that joins them.
//!
//! The HTTP layer maps every endpoint (and every case event) to a [`Permission`]; this module
//! says which roles hold it and with what [`Scope`]. `docs/roles.md` is generated from here
//! ([`matrix_markdown`]) and a test keeps it in step.

use crate::lifecycle::EventKind;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    IrPhysician,
    IrNurse,
    Radiographer,
    Scheduler,
    ReferringClinician,
    MedicalPhysicist,
    QualityLead,
    Administrator,
    /// A hospital system sending HL7 v2 (patient administration, order entry, laboratory): a
    /// service account, never a person at a screen.
    Interface,
    /// The monitoring system (Prometheus): reads the metrics and nothing else — a stolen
    /// monitoring token reads no patient, message or user.
    Monitoring,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::IrPhysician,
        Role::IrNurse,
        Role::Radiographer,
        Role::Scheduler,
        Role::ReferringClinician,
        Role::MedicalPhysicist,
        Role::QualityLead,
        Role::Administrator,
        Role::Interface,
        Role::Monitoring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IrPhysician => "ir_physician",
            Role::IrNurse => "ir_nurse",
            Role::Radiographer => "radiographer",
            Role::Scheduler => "scheduler",
            Role::ReferringClinician => "referring_clinician",
            Role::MedicalPhysicist => "medical_physicist",
            Role::QualityLead => "quality_lead",
            Role::Administrator => "administrator",
            Role::Interface => "interface",
            Role::Monitoring => "monitoring",
        }
    }

    pub fn parse(value: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("'{value}' is not a role; use one of: {}", names.join(", "))
            })
    }

    /// Whether every permission of `self` is held by `than` at least as widely: a token made for
    /// a user of role `than` may act as `self` (never wider than its user).
    pub fn is_within(self, than: Role) -> bool {
        let reach = |scope: Option<Scope>| match scope {
            None => 0,
            Some(Scope::OwnReferrals) => 1,
            Some(Scope::Department) => 2,
        };
        Permission::ALL
            .iter()
            .all(|p| reach(grant(self, *p)) <= reach(grant(than, *p)))
            && (!self.may_break_glass() || than.may_break_glass())
    }

    /// Roles that treat patients may open a record outside their normal scope by giving a
    /// reason (break-glass); the access is flagged for review.
    pub fn may_break_glass(self) -> bool {
        matches!(
            self,
            Role::IrPhysician | Role::IrNurse | Role::Radiographer | Role::ReferringClinician
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an endpoint or a case event requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Catalogue and rooms: reference data, no patient data.
    ReadReferenceData,
    ReadPatients,
    RegisterPatients,
    UpdatePatients,
    /// Labs, medications and other clinical facts the safety rules read.
    RecordClinicalData,
    CreateReferrals,
    ReadReferrals,
    ReadCases,
    /// Accept, decline or ask for more information: a physician's decision.
    VetCases,
    ScheduleCases,
    CancelCases,
    /// Check-in through discharge and follow-up: the day's work.
    RunProcedures,
    CloseCases,
    OverrideSafetyBlocks,
    ReadDose,
    /// Link dose reports to cases by hand (the unmatched queue) and close dose reviews.
    ManageDose,
    ReadDeidentifiedOutcomes,
    ReadAudit,
    ManageUsers,
    /// The HL7 inbox: received messages, dead letters and their replay (they hold patient data).
    ManageInterfaces,
    /// Merge two records of one patient (HL7 A40 from the patient administration system).
    MergePatients,
    /// Report what an imaging system performed (DICOM MPPS): the step, and the end of the
    /// procedure it implies for a case already in the room.
    RecordPerformedSteps,
    /// Decide that a device stays in the patient for good, with the reason: an IR physician's
    /// decision (clinical-rules.md §7), which ends its tracking.
    DeclareDevicesPermanent,
    /// Report an adverse event of a procedure, at any time after it began, and correct or
    /// withdraw such a report with a reason (clinical-rules.md §6).
    ReportAdverseEvents,
    /// Record whether an adverse event is the procedure's: a physician's word (§6).
    AttributeAdverseEvents,
    /// Write, sign and add to the procedure report: the IR physician's.
    SignReports,
    /// Add the M&M meeting's discussion and actions to a case with a moderate or worse adverse
    /// event (§6): IR physicians, who hold the meeting on identified cases.
    RecordMmNotes,
    /// The operational metrics (`/api/v1/metrics`): counts and latencies, no patient data.
    ReadMetrics,
}

impl Permission {
    pub const ALL: [Permission; 28] = [
        Permission::ReadReferenceData,
        Permission::ReadPatients,
        Permission::RegisterPatients,
        Permission::UpdatePatients,
        Permission::RecordClinicalData,
        Permission::CreateReferrals,
        Permission::ReadReferrals,
        Permission::ReadCases,
        Permission::VetCases,
        Permission::ScheduleCases,
        Permission::CancelCases,
        Permission::RunProcedures,
        Permission::CloseCases,
        Permission::OverrideSafetyBlocks,
        Permission::ReadDose,
        Permission::ManageDose,
        Permission::ReadDeidentifiedOutcomes,
        Permission::ReadAudit,
        Permission::ManageUsers,
        Permission::ManageInterfaces,
        Permission::MergePatients,
        Permission::RecordPerformedSteps,
        Permission::DeclareDevicesPermanent,
        Permission::ReportAdverseEvents,
        Permission::AttributeAdverseEvents,
        Permission::SignReports,
        Permission::RecordMmNotes,
        Permission::ReadMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadReferenceData => "read_reference_data",
            Permission::ReadPatients => "read_patients",
            Permission::RegisterPatients => "register_patients",
            Permission::UpdatePatients => "update_patients",
            Permission::RecordClinicalData => "record_clinical_data",
            Permission::CreateReferrals => "create_referrals",
            Permission::ReadReferrals => "read_referrals",
            Permission::ReadCases => "read_cases",
            Permission::VetCases => "vet_cases",
            Permission::ScheduleCases => "schedule_cases",
            Permission::CancelCases => "cancel_cases",
            Permission::RunProcedures => "run_procedures",
            Permission::CloseCases => "close_cases",
            Permission::OverrideSafetyBlocks => "override_safety_blocks",
            Permission::ReadDose => "read_dose",
            Permission::ManageDose => "manage_dose",
            Permission::ReadDeidentifiedOutcomes => "read_deidentified_outcomes",
            Permission::ReadAudit => "read_audit",
            Permission::ManageUsers => "manage_users",
            Permission::ManageInterfaces => "manage_interfaces",
            Permission::MergePatients => "merge_patients",
            Permission::RecordPerformedSteps => "record_performed_steps",
            Permission::DeclareDevicesPermanent => "declare_devices_permanent",
            Permission::ReportAdverseEvents => "report_adverse_events",
            Permission::AttributeAdverseEvents => "attribute_adverse_events",
            Permission::SignReports => "sign_reports",
            Permission::RecordMmNotes => "record_mm_notes",
            Permission::ReadMetrics => "read_metrics",
        }
    }

    /// The permission a case event needs.
    pub fn for_case_event(kind: EventKind) -> Permission {
        match kind {
            EventKind::Accept
            | EventKind::ReviseAccess
            | EventKind::Decline
            | EventKind::RequestInformation => Permission::VetCases,
            // Answering the vetting physician's question is the referrer's (or their proxy's) job.
            EventKind::ProvideInformation => Permission::CreateReferrals,
            EventKind::Schedule | EventKind::AssignAccession => Permission::ScheduleCases,
            EventKind::Cancel => Permission::CancelCases,
            EventKind::CheckIn
            | EventKind::StartProcedure
            | EventKind::CompleteProcedure
            | EventKind::AdmitToRecovery
            | EventKind::Discharge
            | EventKind::StartFollowUp => Permission::RunProcedures,
            EventKind::Close => Permission::CloseCases,
            EventKind::RecordAssessment
            | EventKind::RecordFasting
            | EventKind::RecordConsent
            | EventKind::RecordProcedure
            | EventKind::RecordDrugGiven
            | EventKind::RecordVitalSigns
            | EventKind::RecordDeviceLeft
            | EventKind::RecordComplication
            | EventKind::RecordRecoveryScore => Permission::RecordClinicalData,
            EventKind::OverrideSafetyBlocks => Permission::OverrideSafetyBlocks,
            // Opening a case happens only through a new referral.
            EventKind::Referred => Permission::CreateReferrals,
        }
    }
}

/// How far a granted permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every record in the department.
    Department,
    /// Only patients, referrals and cases the user referred (break-glass reaches further).
    OwnReferrals,
}

/// Which patients' rows a caller may see, for one permission: decided here, once, from the role's
/// grant, and turned by the store into the WHERE clause of every list and every single read — so
/// no page or endpoint filters rows after loading them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowScope {
    /// Every patient of the department.
    Department,
    /// The referrals and cases this user filed (with their tasks and dose), and the patients
    /// this user registered. A referral is not a key to the rest of a patient's record.
    ReferredBy(String),
    /// No row that identifies a patient (roles without the permission: quality lead, administrator).
    Nothing,
}

impl RowScope {
    /// The rows `username` in `role` may see under `permission`.
    pub fn of(role: Role, username: &str, permission: Permission) -> RowScope {
        match grant(role, permission) {
            Some(Scope::Department) => RowScope::Department,
            Some(Scope::OwnReferrals) => RowScope::ReferredBy(username.to_string()),
            None => RowScope::Nothing,
        }
    }

    pub fn is_department(&self) -> bool {
        *self == RowScope::Department
    }
}

/// The matrix: whether `role` holds `permission`, and how far it reaches.
pub fn grant(role: Role, permission: Permission) -> Option<Scope> {
    use Permission as P;
    use Role as R;
    let department = Some(Scope::Department);
    match (role, permission) {
        // The metrics, and nothing else: not even reference data.
        (R::Monitoring, P::ReadMetrics) => department,
        (R::Monitoring, _) => None,
        (_, P::ReadReferenceData) => department,
        (
            R::IrPhysician,
            P::ManageUsers
            | P::ReadAudit
            | P::ManageInterfaces
            | P::MergePatients
            | P::RecordPerformedSteps
            | P::ReadMetrics,
        ) => None,
        (R::IrPhysician, _) => department,
        (
            R::IrNurse,
            P::ReadPatients
            | P::RegisterPatients
            | P::UpdatePatients
            | P::RecordClinicalData
            | P::CreateReferrals
            | P::ReadReferrals
            | P::ReadCases
            | P::ScheduleCases
            | P::CancelCases
            | P::RunProcedures
            | P::CloseCases
            | P::ReadDose
            | P::ReportAdverseEvents,
        ) => department,
        (
            R::Radiographer,
            P::ReadPatients
            | P::ReadReferrals
            | P::ReadCases
            | P::RunProcedures
            | P::ReadDose
            | P::ReportAdverseEvents,
        ) => department,
        (
            R::Scheduler,
            P::ReadPatients
            | P::RegisterPatients
            | P::UpdatePatients
            | P::CreateReferrals
            | P::ReadReferrals
            | P::ReadCases
            | P::ScheduleCases
            | P::CancelCases,
        ) => department,
        (R::ReferringClinician, P::RegisterPatients | P::CreateReferrals) => department,
        // A referrer often hears of a complication first: of their own patients' procedures.
        (
            R::ReferringClinician,
            P::ReadPatients | P::ReadReferrals | P::ReadCases | P::ReportAdverseEvents,
        ) => Some(Scope::OwnReferrals),
        (R::MedicalPhysicist, P::ReadPatients | P::ReadCases | P::ReadDose | P::ManageDose) => {
            department
        }
        (R::QualityLead, P::ReadDeidentifiedOutcomes | P::ReadAudit) => department,
        (
            R::Administrator,
            P::ManageUsers | P::ReadAudit | P::ManageInterfaces | P::ReadMetrics,
        ) => department,
        // What the hospital's systems send: patients, their labs, orders and their cancellation.
        (
            R::Interface,
            P::ReadPatients
            | P::RegisterPatients
            | P::UpdatePatients
            | P::MergePatients
            | P::RecordClinicalData
            | P::CreateReferrals
            | P::ReadReferrals
            | P::ReadCases
            | P::CancelCases
            | P::RecordPerformedSteps,
        ) => department,
        _ => None,
    }
}

/// The matrix as a Markdown table (rows: permissions; columns: roles).
pub fn matrix_markdown() -> String {
    let mut out = String::from("| permission |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for permission in Permission::ALL {
        out.push_str(&format!("| {} |", permission.as_str()));
        for role in Role::ALL {
            out.push_str(match grant(role, permission) {
                Some(Scope::Department) => " yes |",
                Some(Scope::OwnReferrals) => " own |",
                None => " — |",
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_physicians_vet_and_override() {
        for role in Role::ALL {
            let physician = role == Role::IrPhysician;
            assert_eq!(
                grant(role, Permission::VetCases).is_some(),
                physician,
                "{role}"
            );
            assert_eq!(
                grant(role, Permission::OverrideSafetyBlocks).is_some(),
                physician,
                "{role}"
            );
        }
    }

    #[test]
    fn a_role_is_within_itself_and_no_role_is_within_a_narrower_one() {
        for role in Role::ALL {
            assert!(role.is_within(role), "{role}");
        }
        // An administrator cannot act as a physician (patient data), nor the reverse (users).
        assert!(!Role::IrPhysician.is_within(Role::Administrator));
        assert!(!Role::Administrator.is_within(Role::IrPhysician));
        // A physician's token may be narrowed to a radiographer's, not the other way.
        assert!(Role::Radiographer.is_within(Role::IrPhysician));
        assert!(!Role::IrPhysician.is_within(Role::Radiographer));
        // A referrer sees their own only: a department-wide role is wider.
        assert!(!Role::Scheduler.is_within(Role::ReferringClinician));
    }

    #[test]
    fn only_administrators_manage_users() {
        for role in Role::ALL {
            assert_eq!(
                grant(role, Permission::ManageUsers).is_some(),
                role == Role::Administrator,
                "{role}"
            );
        }
    }

    #[test]
    fn quality_leads_and_administrators_see_no_identifiable_patient_data() {
        for role in [Role::QualityLead, Role::Administrator] {
            for p in [
                Permission::ReadPatients,
                Permission::ReadCases,
                Permission::ReadReferrals,
                Permission::ReadDose,
            ] {
                assert_eq!(grant(role, p), None, "{role} {p:?}");
            }
        }
    }

    #[test]
    fn referrers_see_only_their_own() {
        for p in [
            Permission::ReadPatients,
            Permission::ReadReferrals,
            Permission::ReadCases,
        ] {
            assert_eq!(
                grant(Role::ReferringClinician, p),
                Some(Scope::OwnReferrals)
            );
        }
        assert_eq!(grant(Role::ReferringClinician, Permission::ReadDose), None);
    }

    #[test]
    fn the_documented_matrix_is_the_matrix() {
        let doc = include_str!("../../../docs/roles.md");
        assert!(doc.contains(&matrix_markdown()), "docs/roles.md is out of date; regenerate with: cargo run -q -p seldinger-domain --example roles_matrix");
    }
}
