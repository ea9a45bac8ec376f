//! Seldinger's application layer: the use cases, one call each. A call takes the [`Principal`]
//! acting and does, in order: the permission, the row scope (or a reasoned break-glass), the
//! expected version, the safety gate, the domain's decision, and the store write with its audit
//! row in one commit. The HTTP API, the pages, and the DICOM, HL7 and FHIR interfaces call these
//! and nothing else writes; no adapter reaches into another.
//!
//! Row scope is decided here once per call ([`Principal::scope`]) and applied by the store in the
//! query itself, so a list never loads a row its reader may not see.

mod adverse_events;
mod audit;
mod authentication;
mod board;
mod cases;
mod clock;
mod devices;
mod dose;
mod error;
mod facts;
mod followup;
mod interfaces;
mod kept;
mod lists;
mod mpps;
mod outbox;
mod patients;
mod principal;
mod quality;
mod reports;
mod worklist;

pub use adverse_events::{AdverseEventStanding, ADVERSE_EVENTS_AT_MOST};
pub use authentication::{
    constant_time_eq, secret_hash, Authenticated, Credential, Presented, TokenLimits,
    TOKEN_DAYS_DEFAULT,
};
pub use board::{BoardCase, BoardDay, BoardStamp, BOARD_ADD_ON_AT_MOST, BOARD_BOOKED_AT_MOST};
pub use cases::CaseEventRequest;
pub use clock::{Clock, FixedClock, ManualClock, StartedClock, SystemClock};
pub use devices::{DeviceStanding, DEVICES_AT_MOST};
pub use dose::{LinkChange, Linked};
pub use error::AppError;
pub use facts::Correction;
pub use followup::permission_to_complete;
pub use interfaces::{DetailsOutcome, MessageHandler, Replayed, Shown};
pub use lists::{DoseByCase, StaffMember};
pub use mpps::{StepError, StepToReview};
pub use outbox::{CaseNotice, Notice, Outbound, Route};
pub use principal::{Audit, Opened, Principal};
pub use quality::{JudgedRate, MmCase, MonthQuality, ProcedureQuality, QualityDashboard};
pub use reports::{ReportRequest, ReportView};
pub use worklist::{WorklistEntry, WorklistRead, ON_THE_WORKLIST};

use seldinger_domain::discharge::DischargeTexts;
use seldinger_domain::dose_stats::ReferenceLevels;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{DepartmentTime, ProcedureCatalogue};
use seldinger_store::Store;
use std::sync::Arc;

/// The department's shared state every use case reads: the store, the reference tables the rules
/// judge by, the clock and the department's wall clock.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub catalogue: Arc<ProcedureCatalogue>,
    /// Thresholds, drugs and holds the safety engine judges by.
    pub safety: Arc<SafetyReference>,
    pub clock: Arc<dyn Clock>,
    /// The department's diagnostic reference levels (clinical-rules.md §5: none shipped).
    pub dose_levels: Arc<ReferenceLevels>,
    /// The department's thresholds on its quality measures (clinical-rules.md §6: none shipped).
    pub quality_thresholds: Arc<seldinger_domain::quality::Thresholds>,
    /// Plain-language discharge texts (department policy; the shipped ones unless replaced).
    pub discharge_texts: Option<Arc<DischargeTexts>>,
    /// The department's wall clock: its days and the times shown.
    pub time: DepartmentTime,
    /// Replays and shows stored HL7 messages (the HL7 adapter, when it runs).
    pub messages: Option<Arc<dyn MessageHandler>>,
    /// The destinations owed messages when cases change (the HL7 outbox), when configured.
    pub outbound: Option<Outbound>,
    /// Boards lately built (shared by the app's clones).
    pub board_cache: Arc<board::BoardCache>,
    /// Periods' dose by case lately read (shared by the app's clones).
    pub dose_cache: Arc<lists::DoseCache>,
    /// The placer-order namespaces the hospital's order systems own (from the HL7 interface
    /// file): a referral filed here — by a person or a FHIR client — cannot take an order number
    /// in them, or the real order would be refused as a duplicate and lost.
    pub order_namespaces: Arc<Vec<String>>,
}

/// Records by a key (their id, their case's id): the facts of a list read once per table, then
/// looked up per row.
pub(crate) fn keyed<K: std::hash::Hash + Eq, T>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
) -> std::collections::HashMap<K, T> {
    items.into_iter().map(|item| (key(&item), item)).collect()
}

/// A patient's facts for the safety checklist from drugs and labs read for a whole list, one
/// query per table (borrowed, not taken: a patient may have two cases on the list).
pub(crate) fn facts_from<'a>(
    patient: &'a seldinger_domain::patient::Patient,
    medications: &'a std::collections::HashMap<
        seldinger_domain::PatientId,
        Vec<seldinger_domain::clinical::Medication>,
    >,
    labs: &'a std::collections::HashMap<
        seldinger_domain::PatientId,
        Vec<seldinger_domain::clinical::LabResult>,
    >,
) -> seldinger_domain::safety::PatientFacts<'a> {
    seldinger_domain::safety::PatientFacts {
        details: &patient.details,
        medications: medications.get(&patient.id).map_or(&[][..], Vec::as_slice),
        labs: labs.get(&patient.id).map_or(&[][..], Vec::as_slice),
    }
}

/// Records grouped by a key (their case): each group in the order given.
pub(crate) fn grouped<K: std::hash::Hash + Eq, T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
) -> std::collections::HashMap<K, Vec<T>> {
    let mut groups = std::collections::HashMap::<K, Vec<T>>::new();
    for item in items {
        groups.entry(key(&item)).or_default().push(item);
    }
    groups
}

impl App {
    /// The same application with every change made in `batch`, which the caller commits.
    pub fn in_batch(&self, batch: &seldinger_store::Batch) -> App {
        App {
            store: batch.store().clone(),
            ..self.clone()
        }
    }

    pub fn new(
        store: Store,
        catalogue: ProcedureCatalogue,
        safety: SafetyReference,
        clock: Arc<dyn Clock>,
    ) -> Self {
        App {
            store,
            catalogue: Arc::new(catalogue),
            safety: Arc::new(safety),
            clock,
            dose_levels: Arc::default(),
            quality_thresholds: Arc::default(),
            discharge_texts: None,
            time: DepartmentTime::default(),
            messages: None,
            outbound: None,
            board_cache: Arc::default(),
            dose_cache: Arc::default(),
            order_namespaces: Arc::default(),
        }
    }

    /// The department's date now (its time zone, not UTC's).
    pub fn today(&self) -> chrono::NaiveDate {
        self.time.date_of(self.clock.now())
    }
}
