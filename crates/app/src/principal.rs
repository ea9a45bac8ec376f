//! Who is acting, what they may see, and the audit row of what they did.

use crate::{App, AppError};
use seldinger_domain::access::{grant, Permission, Role, RowScope};
use seldinger_domain::Actor;
use seldinger_store::{AuditEntry, Record};

/// An authenticated user acting in a role, as an adapter proved it (session, API token, a
/// configured system user for an interface).
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    /// The role acted in: the user's own, or the narrower one of the token used.
    pub role: Role,
    /// Where the request came from, for the audit trail.
    pub client_addr: String,
    /// A reason given to open records outside the caller's scope (break-glass): flagged for review.
    pub break_glass_reason: Option<String>,
    /// The received message (HL7 inbox id) this principal is applying, when an interface acts:
    /// every write names it, and the store marks the message applied in the same commit, so a
    /// message re-sent after a crash is never applied twice.
    pub via_message: Option<String>,
    /// How the write marks that message applied in its own commit (kept, answered).
    pub via_claim: Option<std::sync::Arc<seldinger_store::Claim>>,
}

impl Principal {
    /// The imaging system this is, when a DICOM association's calling AE title (the DICOM
    /// adapter names its principal `dicom:<calling AE title>`): what it says may change only its
    /// own room's cases.
    pub fn dicom_station(&self) -> Option<&str> {
        (self.role == Role::Interface)
            .then(|| self.username.strip_prefix("dicom:"))
            .flatten()
    }

    /// The rows this principal may see under `permission`; the store applies it in the query.
    pub fn scope(&self, permission: Permission) -> RowScope {
        RowScope::of(self.role, &self.username, permission)
    }

    /// Refuses unless the role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        grant(self.role, permission)
            .map(|_| ())
            .ok_or(AppError::Forbidden {
                role: self.role,
                permission,
            })
    }

    pub fn actor(&self) -> Result<Actor, AppError> {
        Actor::parse(&self.username).map_err(|e| AppError::bad_request("user", e))
    }

    /// The audit row of `note`, done now by this principal.
    pub fn audit_entry(&self, at: chrono::DateTime<chrono::Utc>, note: Audit<'_>) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at,
            username: self.username.clone(),
            role: self.role.as_str().to_string(),
            action: note.action.to_string(),
            resource_type: note.resource_type.to_string(),
            resource_id: note.resource_id,
            patient_id: note.patient_id,
            client_addr: self.client_addr.clone(),
            outcome: note.outcome.to_string(),
            break_glass_reason: note.break_glass_reason,
            via_message: self.via_message.clone(),
            via_claim: self.via_claim.clone(),
        }
    }
}

/// One audit line: what the principal did to which record.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub break_glass_reason: Option<String>,
    /// `allowed`, or `denied` for a refused attempt on patient data.
    pub outcome: &'a str,
}

impl<'a> Audit<'a> {
    /// An access to a record that belongs to a patient.
    pub fn of(
        action: &'a str,
        resource_type: &'a str,
        resource_id: impl ToString,
        patient_id: impl ToString,
    ) -> Self {
        Audit {
            action,
            resource_type,
            resource_id: Some(resource_id.to_string()),
            patient_id: Some(patient_id.to_string()),
            break_glass_reason: None,
            outcome: "allowed",
        }
    }

    /// Flags the access as outside the caller's scope, with the reason they gave (none: in scope).
    pub fn break_glass(mut self, reason: impl Into<Option<String>>) -> Self {
        self.break_glass_reason = reason.into();
        self
    }
}

/// How a record was opened: within scope, or by break-glass with the reason to flag.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub break_glass_reason: Option<String>,
}

impl From<&Opened> for Option<String> {
    fn from(opened: &Opened) -> Self {
        opened.break_glass_reason.clone()
    }
}

impl App {
    /// Whether `who` may open one existing record under `permission`: within their scope, or by
    /// break-glass with a reason (the roles that treat patients); otherwise it reads as "not
    /// found", so a refusal never says whether the record exists.
    pub async fn open(
        &self,
        who: &Principal,
        permission: Permission,
        record: Record,
        id: &str,
        what: &str,
    ) -> Result<Opened, AppError> {
        let scope = who.scope(permission);
        if scope == RowScope::Nothing {
            return Err(AppError::Forbidden {
                role: who.role,
                permission,
            });
        }
        if scope.is_department() || self.store.in_scope(&scope, record, id).await? {
            return Ok(Opened::default());
        }
        match &who.break_glass_reason {
            Some(reason) if who.role.may_break_glass() => Ok(Opened {
                break_glass_reason: Some(reason.clone()),
            }),
            _ => Err(AppError::NotFound(what.to_string())),
        }
    }

    /// A record read from the store, opened for `who` under read_cases (in scope, or by
    /// break-glass); absent or out of reach, it is "not found" either way.
    pub(crate) async fn opened<T>(
        &self,
        who: &Principal,
        found: Option<T>,
        record: Record,
        id: &str,
        what: &str,
    ) -> Result<(T, Opened), AppError> {
        let found = found.ok_or_else(|| AppError::NotFound(what.to_string()))?;
        let opened = self
            .open(who, Permission::ReadCases, record, id, what)
            .await?;
        Ok((found, opened))
    }

    /// Records reads in the audit log, in one commit. Called before the data is returned: if the
    /// trail cannot be written, nothing is shown.
    pub async fn audit_reads(
        &self,
        who: &Principal,
        notes: Vec<Audit<'_>>,
    ) -> Result<(), AppError> {
        let at = self.clock.now();
        let entries: Vec<AuditEntry> = notes
            .into_iter()
            .map(|note| who.audit_entry(at, note))
            .collect();
        Ok(self.store.append_audit_batch(&entries).await?)
    }
}
