//! The IR case lifecycle: an explicit state machine from referral to closure.
//!
//! ```text
//! referred ──accept──▶ vetted ──schedule──▶ scheduled ──check_in──▶ checked_in ──start_procedure──▶ in_room
//!    │ ▲ └─decline─▶ declined                 │ ▲ reschedule                       (time-out done)     │
//!    │ └─provide_information─┐                └─┘                                                      ▼
//!    └─request_information─▶ more_information_requested          procedure_complete ◀─complete_procedure
//!                                                                  │
//!    cancel: from referred, more_information_requested,             ▼ admit_to_recovery (or discharge)
//!            vetted, scheduled, checked_in ─▶ cancelled          in_recovery ─discharge─▶ discharged
//!                                                                  discharged ─start_follow_up─▶ follow_up ─close─▶ closed
//!                                                                  discharged ─close─▶ closed
//! ```
//! A case's current state is the fold of its events ([`Case::replay`]); [`Case::decide`] checks
//! a proposed event against the current state before it is recorded.

use crate::assessment::{Consent, FastingTimes, PreAssessment};
use crate::catalogue::{
    AccessRoute, GuidanceModality, ProcedureCatalogue, ProcedureId, Sedation, SheathFrench,
};
use crate::event::EventMeta;
use crate::ids::{CaseId, PatientId, ReferralId, RoomId};
use crate::procedure_record::{
    nest, AldreteScore, Complication, DeviceLeft, DrugGiven, ProcedureDetails, VitalSigns,
};
use crate::referral::Urgency;
use crate::validation::{optional_text, required_text, ValidationErrors};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Referred,
    MoreInformationRequested,
    Vetted,
    Declined,
    Scheduled,
    CheckedIn,
    InRoom,
    ProcedureComplete,
    InRecovery,
    Discharged,
    FollowUp,
    Closed,
    Cancelled,
}

impl CaseState {
    pub const ALL: [CaseState; 13] = [
        CaseState::Referred,
        CaseState::MoreInformationRequested,
        CaseState::Vetted,
        CaseState::Declined,
        CaseState::Scheduled,
        CaseState::CheckedIn,
        CaseState::InRoom,
        CaseState::ProcedureComplete,
        CaseState::InRecovery,
        CaseState::Discharged,
        CaseState::FollowUp,
        CaseState::Closed,
        CaseState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Referred => "referred",
            CaseState::MoreInformationRequested => "more_information_requested",
            CaseState::Vetted => "vetted",
            CaseState::Declined => "declined",
            CaseState::Scheduled => "scheduled",
            CaseState::CheckedIn => "checked_in",
            CaseState::InRoom => "in_room",
            CaseState::ProcedureComplete => "procedure_complete",
            CaseState::InRecovery => "in_recovery",
            CaseState::Discharged => "discharged",
            CaseState::FollowUp => "follow_up",
            CaseState::Closed => "closed",
            CaseState::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        CaseState::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                let allowed: Vec<&str> = CaseState::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "'{value}' is not a case state; use one of: {}",
                    allowed.join(", ")
                )
            })
    }

    /// Before the patient is in the room: the states a case may be cancelled from.
    pub fn is_pre_procedure(self) -> bool {
        matches!(
            self,
            CaseState::Referred
                | CaseState::MoreInformationRequested
                | CaseState::Vetted
                | CaseState::Scheduled
                | CaseState::CheckedIn
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CaseState::Declined | CaseState::Closed | CaseState::Cancelled
        )
    }

    /// The one place the lifecycle graph is written down: where `event` leads from `self`.
    fn next(self, event: EventKind) -> Option<CaseState> {
        use CaseState as S;
        use EventKind as E;
        match (self, event) {
            (S::Referred, E::Accept) => Some(S::Vetted),
            (S::Referred, E::Decline) => Some(S::Declined),
            (S::Referred, E::RequestInformation) => Some(S::MoreInformationRequested),
            (S::MoreInformationRequested, E::ProvideInformation) => Some(S::Referred),
            (S::MoreInformationRequested, E::Decline) => Some(S::Declined),
            (S::Vetted, E::Schedule) => Some(S::Scheduled),
            (S::Scheduled, E::Schedule) => Some(S::Scheduled),
            (S::Scheduled, E::CheckIn) => Some(S::CheckedIn),
            (S::CheckedIn, E::StartProcedure) => Some(S::InRoom),
            (S::InRoom, E::CompleteProcedure) => Some(S::ProcedureComplete),
            (S::ProcedureComplete, E::AdmitToRecovery) => Some(S::InRecovery),
            (S::ProcedureComplete | S::InRecovery, E::Discharge) => Some(S::Discharged),
            (S::Discharged, E::StartFollowUp) => Some(S::FollowUp),
            (S::Discharged | S::FollowUp, E::Close) => Some(S::Closed),
            (state, E::Cancel) if state.is_pre_procedure() => Some(S::Cancelled),
            // Recording the assessment, fasting or consent keeps the case where it is.
            (state, E::RecordAssessment | E::RecordFasting | E::RecordConsent)
                if state.is_pre_procedure() =>
            {
                Some(state)
            }
            // The access plan may be recorded or changed until the room.
            (S::Vetted | S::Scheduled | S::CheckedIn, E::ReviseAccess) => Some(self),
            // A physician may accept blocking safety items any time before the room.
            (S::Vetted | S::Scheduled | S::CheckedIn, E::OverrideSafetyBlocks) => Some(self),
            // The procedure record: details, drugs and devices while the patient is with us.
            (
                S::InRoom | S::ProcedureComplete | S::InRecovery,
                E::RecordProcedure | E::RecordDrugGiven | E::RecordVitalSigns | E::RecordDeviceLeft,
            ) => Some(self),
            // A complication may come to light any time after the procedure began.
            (
                S::InRoom
                | S::ProcedureComplete
                | S::InRecovery
                | S::Discharged
                | S::FollowUp
                | S::Closed,
                E::RecordComplication,
            ) => Some(self),
            (S::InRecovery, E::RecordRecoveryScore) => Some(self),
            // The accession number identifies the imaging study (worklist, dose reports): given
            // once the case is vetted, for as long as the case is open.
            (state, E::AssignAccession)
                if !matches!(state, S::Referred | S::MoreInformationRequested)
                    && !state.is_terminal() =>
            {
                Some(state)
            }
            _ => None,
        }
    }

    /// The events allowed from this state, by name.
    pub fn allowed_events(self) -> Vec<&'static str> {
        EventKind::ALL
            .into_iter()
            .filter(|e| self.next(*e).is_some())
            .map(EventKind::as_str)
            .collect()
    }

    /// Where `event` leads from this state, or why it may not happen.
    pub fn transition(self, event: &CaseEvent) -> Result<CaseState, TransitionError> {
        let kind = event.kind();
        self.next(kind).ok_or_else(|| TransitionError::NotAllowed {
            from: self,
            event: kind.as_str(),
            allowed: self.allowed_events(),
        })
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of events that move a case, for the lifecycle table and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Referred,
    Accept,
    ReviseAccess,
    Decline,
    RequestInformation,
    ProvideInformation,
    Schedule,
    CheckIn,
    StartProcedure,
    CompleteProcedure,
    AdmitToRecovery,
    Discharge,
    StartFollowUp,
    Close,
    Cancel,
    RecordAssessment,
    RecordFasting,
    RecordConsent,
    OverrideSafetyBlocks,
    AssignAccession,
    RecordProcedure,
    RecordDrugGiven,
    RecordVitalSigns,
    RecordDeviceLeft,
    RecordComplication,
    RecordRecoveryScore,
}

impl EventKind {
    pub const ALL: [EventKind; 26] = [
        EventKind::Referred,
        EventKind::Accept,
        EventKind::ReviseAccess,
        EventKind::Decline,
        EventKind::RequestInformation,
        EventKind::ProvideInformation,
        EventKind::Schedule,
        EventKind::CheckIn,
        EventKind::StartProcedure,
        EventKind::CompleteProcedure,
        EventKind::AdmitToRecovery,
        EventKind::Discharge,
        EventKind::StartFollowUp,
        EventKind::Close,
        EventKind::Cancel,
        EventKind::RecordAssessment,
        EventKind::RecordFasting,
        EventKind::RecordConsent,
        EventKind::OverrideSafetyBlocks,
        EventKind::AssignAccession,
        EventKind::RecordProcedure,
        EventKind::RecordDrugGiven,
        EventKind::RecordVitalSigns,
        EventKind::RecordDeviceLeft,
        EventKind::RecordComplication,
        EventKind::RecordRecoveryScore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Referred => "referred",
            EventKind::Accept => "accept",
            EventKind::ReviseAccess => "revise_access",
            EventKind::Decline => "decline",
            EventKind::RequestInformation => "request_information",
            EventKind::ProvideInformation => "provide_information",
            EventKind::Schedule => "schedule",
            EventKind::CheckIn => "check_in",
            EventKind::StartProcedure => "start_procedure",
            EventKind::CompleteProcedure => "complete_procedure",
            EventKind::AdmitToRecovery => "admit_to_recovery",
            EventKind::Discharge => "discharge",
            EventKind::StartFollowUp => "start_follow_up",
            EventKind::Close => "close",
            EventKind::Cancel => "cancel",
            EventKind::RecordAssessment => "record_assessment",
            EventKind::RecordFasting => "record_fasting",
            EventKind::RecordConsent => "record_consent",
            EventKind::OverrideSafetyBlocks => "override_safety_blocks",
            EventKind::AssignAccession => "assign_accession",
            EventKind::RecordProcedure => "record_procedure",
            EventKind::RecordDrugGiven => "record_drug_given",
            EventKind::RecordVitalSigns => "record_vital_signs",
            EventKind::RecordDeviceLeft => "record_device_left",
            EventKind::RecordComplication => "record_complication",
            EventKind::RecordRecoveryScore => "record_recovery_score",
        }
    }
}

/// The vetting physician's decision to accept, with the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vetting {
    pub procedure_id: ProcedureId,
    pub modality: GuidanceModality,
    pub sedation: Sedation,
    pub priority: Urgency,
    /// Whether iodinated contrast is planned (contrast allergy, renal and metformin rules).
    #[serde(default)]
    pub iodinated_contrast: bool,
    /// The planned access route (clinical-rules.md §1.2: the arterial INR rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_route: Option<AccessRoute>,
    /// The planned sheath size (§1.1: above 7 F an arterial procedure is high bleeding risk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheath_french: Option<SheathFrench>,
}

/// Where and when the case is booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Booking {
    pub room: RoomId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Who is to do it, as the booking names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performing_physician: Option<String>,
}

/// How the imaging study of a case is known to every other system: the accession number (DICOM
/// SH, at most 16 characters) and the Study Instance UID (DICOM UI). Given once, at the first
/// booking, and the same in the worklist, HL7 messages and dose reports after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StudyIdentity {
    pub accession_number: String,
    pub study_instance_uid: String,
}

impl StudyIdentity {
    /// A new identity from a random (version 4) UUID, for a case booked on `on` (the
    /// department's date): the UID is the UUID as a number under the 2.25 arc (ISO/IEC 9834-8,
    /// DICOM PS3.5 B.2: no registered root needed); the accession number is the date and the
    /// UUID's last 40 random bits, 16 characters (`YYMMDD` + 10 hex digits).
    pub fn new(on: chrono::NaiveDate, random: uuid::Uuid) -> StudyIdentity {
        let bits = random.as_u128();
        StudyIdentity {
            accession_number: format!("{}{:010X}", on.format("%y%m%d"), bits & 0xFF_FFFF_FFFF),
            study_instance_uid: format!("2.25.{bits}"),
        }
    }
}

/// The time-out done in the room before the procedure starts (WHO checklist, adapted for IR by
/// CIRSE; clinical-rules.md §8). Every item must be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeOut {
    pub completed_at: DateTime<Utc>,
    pub team_introduced: bool,
    pub patient_identity_confirmed: bool,
    pub procedure_and_site_confirmed: bool,
    pub consent_confirmed: bool,
    pub imaging_available: bool,
    pub equipment_available: bool,
}

impl TimeOut {
    fn unconfirmed(&self) -> Vec<&'static str> {
        [
            ("team_introduced", self.team_introduced),
            (
                "patient_identity_confirmed",
                self.patient_identity_confirmed,
            ),
            (
                "procedure_and_site_confirmed",
                self.procedure_and_site_confirmed,
            ),
            ("consent_confirmed", self.consent_confirmed),
            ("imaging_available", self.imaging_available),
            ("equipment_available", self.equipment_available),
        ]
        .into_iter()
        .filter(|(_, done)| !done)
        .map(|(name, _)| name)
        .collect()
    }
}

/// A change to a case, as recorded. Who, when and why travel beside it in [`EventMeta`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseEvent {
    /// Opens the case; recorded with the referral, never sent to the transitions endpoint.
    Referred {
        patient_id: PatientId,
        referral_id: ReferralId,
        urgency: Urgency,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_procedure: Option<ProcedureId>,
    },
    Accept {
        procedure_id: ProcedureId,
        modality: GuidanceModality,
        sedation: Sedation,
        priority: Urgency,
        /// Whether iodinated contrast is planned; absent means no.
        #[serde(default)]
        iodinated_contrast: bool,
        /// femoral, radial, brachial, pedal, venous, none or other (§1.2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_route: Option<AccessRoute>,
        /// Sheath size in French.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sheath_french: Option<SheathFrench>,
    },
    /// The access route and sheath size planned at vetting, recorded or changed before the room;
    /// changing a recorded plan needs a reason (in the event's metadata).
    ReviseAccess {
        access_route: AccessRoute,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sheath_french: Option<SheathFrench>,
    },
    /// The reason is required, in the event's metadata.
    Decline,
    RequestInformation {
        question: String,
    },
    ProvideInformation {
        answer: String,
    },
    /// Books the case, or rebooks it (a reason is then required). Without `duration_minutes`
    /// the catalogue's typical room time is used and recorded.
    Schedule {
        room: RoomId,
        start: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_minutes: Option<u32>,
        /// The imaging study the case is done as: given at the first booking (the application
        /// assigns one when none is sent), kept through every rebooking.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        study: Option<StudyIdentity>,
        /// Who is to do it, by name (the worklist's Scheduled Performing Physician); at a
        /// rebooking, none named keeps the one named before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        performing_physician: Option<String>,
    },
    CheckIn,
    StartProcedure {
        time_out: TimeOut,
    },
    CompleteProcedure,
    AdmitToRecovery,
    Discharge,
    StartFollowUp,
    Close,
    /// The reason is required, in the event's metadata.
    Cancel,
    /// The pre-procedure assessment (replaces any earlier one).
    RecordAssessment {
        assessment: PreAssessment,
    },
    RecordFasting {
        fasting: FastingTimes,
    },
    RecordConsent {
        consent: Consent,
    },
    /// An IR physician accepts the named blocking checklist items (reason required). The safety
    /// rules still show them; the case may go in-room despite them.
    OverrideSafetyBlocks {
        rules: Vec<String>,
    },
    /// The accession number of the case's imaging study (DICOM SH: up to 16 characters). The
    /// store refuses one already given to another case.
    AssignAccession {
        accession_number: String,
    },
    /// The procedure as done (replaces an earlier record of it).
    RecordProcedure {
        details: ProcedureDetails,
    },
    RecordDrugGiven {
        drug: DrugGiven,
    },
    RecordVitalSigns {
        vitals: VitalSigns,
    },
    RecordDeviceLeft {
        device: DeviceLeft,
    },
    RecordComplication {
        complication: Complication,
    },
    RecordRecoveryScore {
        score: AldreteScore,
    },
}

/// An enum's name as words ("IvcFilter" → "ivc filter"), for history lines.
pub(crate) fn words<T: std::fmt::Debug>(value: T) -> String {
    let name = format!("{value:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

impl CaseEvent {
    /// One line for a history: what changed, in the department's words and on its clock.
    pub fn summary(&self, time: &crate::DepartmentTime) -> String {
        use CaseEvent as E;
        let at = |t: DateTime<Utc>| time.format(t, "%Y-%m-%d %H:%M");
        let hm = |t: DateTime<Utc>| time.format(t, "%H:%M");
        match self {
            E::Referred {
                urgency,
                requested_procedure,
                ..
            } => match requested_procedure {
                Some(p) => format!("referred ({}) for {p}", words(urgency)),
                None => format!("referred ({})", words(urgency)),
            },
            E::Accept {
                procedure_id,
                modality,
                sedation,
                priority,
                iodinated_contrast,
                access_route,
                sheath_french,
            } => format!(
                "accepted: {procedure_id}, {modality} guidance, {sedation} sedation, {}{}{}",
                words(priority),
                if *iodinated_contrast {
                    ", iodinated contrast"
                } else {
                    ""
                },
                access_words(*access_route, *sheath_french)
            ),
            E::ReviseAccess {
                access_route,
                sheath_french,
            } => format!(
                "access planned:{}",
                access_words(Some(*access_route), *sheath_french).trim_start_matches(',')
            ),
            E::Decline => "declined".into(),
            E::RequestInformation { question } => format!("asked the referrer: {question}"),
            E::ProvideInformation { answer } => format!("the referrer answered: {answer}"),
            E::Schedule {
                room,
                start,
                duration_minutes,
                performing_physician,
                ..
            } => {
                let booked = match duration_minutes {
                    Some(m) => format!("booked in {room} at {} for {m} min", at(*start)),
                    None => format!("booked in {room} at {}", at(*start)),
                };
                match performing_physician {
                    Some(name) => format!("{booked}, by {name}"),
                    None => booked,
                }
            }
            E::CheckIn => "checked in".into(),
            E::StartProcedure { time_out } => {
                format!(
                    "time-out at {}; procedure started",
                    hm(time_out.completed_at)
                )
            }
            E::CompleteProcedure => "procedure complete".into(),
            E::AdmitToRecovery => "admitted to recovery".into(),
            E::Discharge => "discharged".into(),
            E::StartFollowUp => "follow-up started".into(),
            E::Close => "closed".into(),
            E::Cancel => "cancelled".into(),
            E::RecordAssessment { assessment } => format!(
                "assessment: {}{}",
                words(assessment.setting),
                assessment
                    .asa_class
                    .map(|asa| format!(", ASA {asa}"))
                    .unwrap_or_default()
            ),
            E::RecordFasting { .. } => "fasting times recorded".into(),
            E::RecordConsent { consent } => format!(
                "consent obtained by {} at {}",
                consent.obtained_by,
                at(consent.obtained_at)
            ),
            E::OverrideSafetyBlocks { rules } => {
                format!(
                    "overridden at the start gate (blocked or missing data): {}",
                    rules.join(", ")
                )
            }
            E::AssignAccession { accession_number } => {
                format!("accession number {accession_number}")
            }
            E::RecordProcedure { details } => format!(
                "procedure recorded: {} guidance, access {}{}",
                details.guidance,
                details.access_site,
                match details.technical_success {
                    Some(true) => ", technical success",
                    Some(false) => ", technical failure",
                    None => "",
                }
            ),
            E::RecordDrugGiven { drug } => {
                format!("given {} {} at {}", drug.drug, drug.dose, hm(drug.at))
            }
            E::RecordVitalSigns { vitals } => {
                let mut parts = Vec::new();
                if let Some(hr) = vitals.heart_rate {
                    parts.push(format!("HR {hr}"));
                }
                if let (Some(sys), Some(dia)) = (vitals.systolic, vitals.diastolic) {
                    parts.push(format!("BP {sys}/{dia}"));
                }
                if let Some(spo2) = vitals.spo2 {
                    parts.push(format!("SpO₂ {spo2}%"));
                }
                if let Some(rr) = vitals.respiratory_rate {
                    parts.push(format!("RR {rr}"));
                }
                format!(
                    "vital signs ({}) at {}: {}",
                    words(vitals.phase),
                    hm(vitals.at),
                    parts.join(", ")
                )
            }
            E::RecordDeviceLeft { device } => {
                format!(
                    "device left: {}, {}{}",
                    words(device.kind),
                    device.description,
                    device
                        .udi
                        .as_ref()
                        .map(|u| format!(" ({})", u.summary()))
                        .unwrap_or_default()
                )
            }
            E::RecordComplication { complication } => format!(
                "complication ({}, SIR{}): {}",
                words(complication.severity),
                complication
                    .cirse_grade
                    .map(|g| format!("; CIRSE grade {g}"))
                    .unwrap_or_default(),
                complication.description
            ),
            E::RecordRecoveryScore { score } => {
                format!("modified Aldrete {} at {}", score.total(), hm(score.at))
            }
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            CaseEvent::Referred { .. } => EventKind::Referred,
            CaseEvent::Accept { .. } => EventKind::Accept,
            CaseEvent::ReviseAccess { .. } => EventKind::ReviseAccess,
            CaseEvent::Decline => EventKind::Decline,
            CaseEvent::RequestInformation { .. } => EventKind::RequestInformation,
            CaseEvent::ProvideInformation { .. } => EventKind::ProvideInformation,
            CaseEvent::Schedule { .. } => EventKind::Schedule,
            CaseEvent::CheckIn => EventKind::CheckIn,
            CaseEvent::StartProcedure { .. } => EventKind::StartProcedure,
            CaseEvent::CompleteProcedure => EventKind::CompleteProcedure,
            CaseEvent::AdmitToRecovery => EventKind::AdmitToRecovery,
            CaseEvent::Discharge => EventKind::Discharge,
            CaseEvent::StartFollowUp => EventKind::StartFollowUp,
            CaseEvent::Close => EventKind::Close,
            CaseEvent::Cancel => EventKind::Cancel,
            CaseEvent::RecordAssessment { .. } => EventKind::RecordAssessment,
            CaseEvent::RecordFasting { .. } => EventKind::RecordFasting,
            CaseEvent::RecordConsent { .. } => EventKind::RecordConsent,
            CaseEvent::OverrideSafetyBlocks { .. } => EventKind::OverrideSafetyBlocks,
            CaseEvent::AssignAccession { .. } => EventKind::AssignAccession,
            CaseEvent::RecordProcedure { .. } => EventKind::RecordProcedure,
            CaseEvent::RecordDrugGiven { .. } => EventKind::RecordDrugGiven,
            CaseEvent::RecordVitalSigns { .. } => EventKind::RecordVitalSigns,
            CaseEvent::RecordDeviceLeft { .. } => EventKind::RecordDeviceLeft,
            CaseEvent::RecordComplication { .. } => EventKind::RecordComplication,
            CaseEvent::RecordRecoveryScore { .. } => EventKind::RecordRecoveryScore,
        }
    }
}

/// The name the API and the event log use for what a command proposes.
pub type CaseCommand = CaseEvent;

/// Why a proposed event was refused. Messages name the current state and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {event} a case that is {from}; allowed from {from}: {}", list_or_none(.allowed))]
    NotAllowed {
        from: CaseState,
        event: &'static str,
        allowed: Vec<&'static str>,
    },
    #[error("{event} needs a reason")]
    ReasonRequired { event: &'static str },
    #[error("a case is opened only by a new referral")]
    AlreadyOpen,
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The safety checklist stops the procedure (a block, or data still missing) and no physician
    /// has overridden these items (clinical-rules.md §8, start gate).
    #[error("the safety checklist stops the procedure (blocked or missing data): {}; enter what is missing, or an IR physician may override with a reason", .rules.join(", "))]
    SafetyBlocked { rules: Vec<String> },
}

/// ", femoral access, 6 F sheath" (empty when nothing is planned).
fn access_words(route: Option<AccessRoute>, sheath: Option<SheathFrench>) -> String {
    let mut out = String::new();
    if let Some(route) = route {
        out.push_str(&format!(", {route} access"));
    }
    if let Some(sheath) = sheath {
        out.push_str(&format!(", {} F sheath", sheath.french()));
    }
    out
}

fn list_or_none(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "nothing (the case has ended)".into()
    } else {
        allowed.join(", ")
    }
}

/// A physician's acceptance of blocking checklist items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SafetyOverride {
    pub rules: Vec<String>,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// The current record of an IR case, as its events say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    pub id: CaseId,
    pub patient_id: PatientId,
    pub referral_id: ReferralId,
    pub state: CaseState,
    pub urgency: Urgency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_procedure: Option<ProcedureId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vetting: Option<Vetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<Booking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_out: Option<TimeOut>,
    /// The reason given for declining or cancelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<PreAssessment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fasting: Option<FastingTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Blocking checklist items an IR physician has accepted, with who, when and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_overrides: Vec<SafetyOverride>,
    /// Identifies the imaging study in worklists and dose reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    /// The imaging study's DICOM Study Instance UID, given at the first booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_instance_uid: Option<String>,
    /// The procedure as done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<ProcedureDetails>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drugs_given: Vec<DrugGiven>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vital_signs: Vec<VitalSigns>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices_left: Vec<DeviceLeft>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub complications: Vec<Complication>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_scores: Vec<AldreteScore>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure_completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharged_at: Option<DateTime<Utc>>,
    /// Number of events applied; a write must name the version it was based on.
    pub version: u64,
}

impl Case {
    /// The procedure the case is for: the one IR vetted it for, else the one requested.
    pub fn planned_procedure(&self) -> Option<&ProcedureId> {
        self.vetting
            .as_ref()
            .map(|v| &v.procedure_id)
            .or(self.requested_procedure.as_ref())
    }

    /// The first event of a case, recorded with its referral.
    pub fn open(
        id: CaseId,
        patient_id: PatientId,
        referral_id: ReferralId,
        urgency: Urgency,
        requested_procedure: Option<ProcedureId>,
        meta: &EventMeta,
    ) -> (Case, CaseEvent) {
        let event = CaseEvent::Referred {
            patient_id,
            referral_id,
            urgency,
            requested_procedure: requested_procedure.clone(),
        };
        let case = Case {
            id,
            patient_id,
            referral_id,
            state: CaseState::Referred,
            urgency,
            requested_procedure,
            vetting: None,
            information_request: None,
            booking: None,
            time_out: None,
            ended_reason: None,
            assessment: None,
            fasting: None,
            consent: None,
            safety_overrides: Vec::new(),
            accession_number: None,
            study_instance_uid: None,
            procedure: None,
            drugs_given: Vec::new(),
            vital_signs: Vec::new(),
            devices_left: Vec::new(),
            complications: Vec::new(),
            recovery_scores: Vec::new(),
            opened_at: meta.at,
            updated_at: meta.at,
            checked_in_at: None,
            procedure_started_at: None,
            procedure_completed_at: None,
            discharged_at: None,
            version: 1,
        };
        (case, event)
    }

    /// The study identity a booking records: the one sent at the first booking (checked), none
    /// at a rebooking (the case keeps its own; a different one is refused: every system already
    /// knows the study by it).
    fn study_for_booking(
        &self,
        sent: Option<StudyIdentity>,
    ) -> Result<Option<StudyIdentity>, TransitionError> {
        let invalid = |field: &str, detail: String| {
            TransitionError::Invalid(ValidationErrors::single(field, detail))
        };
        let Some(sent) = sent else {
            return Ok(None);
        };
        let study = StudyIdentity {
            accession_number: sent.accession_number.trim().to_string(),
            study_instance_uid: sent.study_instance_uid.trim().to_string(),
        };
        if let Some(uid) = &self.study_instance_uid {
            if uid != &study.study_instance_uid {
                return Err(invalid(
                    "event.study.study_instance_uid",
                    format!(
                        "the case's study is {uid}, given at its first booking; it does not change"
                    ),
                ));
            }
            return Ok(None);
        }
        check_accession_number(&study.accession_number)
            .map_err(|m| invalid("event.study.accession_number", m))?;
        if let Some(own) = &self.accession_number {
            if own != &study.accession_number {
                return Err(invalid(
                    "event.study.accession_number",
                    format!("the case already has accession number {own}"),
                ));
            }
        }
        check_uid(&study.study_instance_uid)
            .map_err(|m| invalid("event.study.study_instance_uid", m))?;
        Ok(Some(study))
    }

    /// The procedure as recorded, as the lines of a plain-text report (what goes out as the
    /// report until the structured report exists): procedure, when, operators, guidance and
    /// access, contrast, findings, technical success, devices left, drugs and complications.
    /// Empty until the procedure is recorded.
    pub fn report_lines(&self, procedure_name: &str, time: &crate::DepartmentTime) -> Vec<String> {
        let Some(details) = &self.procedure else {
            return Vec::new();
        };
        let at = |t: DateTime<Utc>| time.format(t, "%Y-%m-%d %H:%M");
        let mut lines = vec![format!("Procedure: {procedure_name}")];
        match (self.procedure_started_at, self.procedure_completed_at) {
            (Some(start), Some(end)) => {
                lines.push(format!("Performed: {} to {}", at(start), at(end)))
            }
            (Some(start), None) => lines.push(format!("Started: {}", at(start))),
            _ => {}
        }
        let operators: Vec<String> = details
            .operators
            .iter()
            .map(|o| format!("{} ({})", o.name, words(o.role)))
            .collect();
        lines.push(format!("Operators: {}", operators.join(", ")));
        lines.push(format!(
            "Guidance: {}; access: {}",
            details.guidance, details.access_site
        ));
        match (&details.contrast_agent, details.contrast_volume_ml) {
            (Some(agent), Some(ml)) => lines.push(format!("Contrast: {agent}, {ml} mL")),
            (Some(agent), None) => lines.push(format!("Contrast: {agent}")),
            _ => lines.push("Contrast: none recorded".into()),
        }
        lines.push(format!("Findings: {}", details.findings));
        lines.push(format!(
            "Technical success: {}",
            match details.technical_success {
                Some(true) => "yes",
                Some(false) => "no",
                None => "not stated",
            }
        ));
        for device in &self.devices_left {
            lines.push(format!(
                "Device left: {} ({})",
                device.description,
                words(device.kind)
            ));
        }
        for drug in &self.drugs_given {
            lines.push(format!(
                "Drug given: {} {} at {}",
                drug.drug,
                drug.dose,
                at(drug.at)
            ));
        }
        if self.complications.is_empty() {
            lines.push("Complications: none recorded".into());
        }
        for complication in &self.complications {
            lines.push(format!(
                "Complication: {} (SIR {}) at {}",
                complication.description,
                words(complication.severity),
                at(complication.at)
            ));
        }
        lines
    }

    /// Checks a proposed event against this case and completes it (e.g. the booking's length
    /// from the catalogue); the result is what gets recorded.
    pub fn decide(
        &self,
        proposed: CaseEvent,
        meta: &EventMeta,
        catalogue: &ProcedureCatalogue,
    ) -> Result<CaseEvent, TransitionError> {
        if matches!(proposed, CaseEvent::Referred { .. }) {
            return Err(TransitionError::AlreadyOpen);
        }
        self.state.transition(&proposed)?;
        let has_reason = meta.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
        let rebooking =
            matches!(proposed, CaseEvent::Schedule { .. }) && self.state == CaseState::Scheduled;
        // Changing an access plan already recorded needs a reason; recording the first does not.
        let changes_access = matches!(proposed, CaseEvent::ReviseAccess { .. })
            && self
                .vetting
                .as_ref()
                .is_some_and(|v| v.access_route.is_some() || v.sheath_french.is_some());
        let reason_required = changes_access
            || matches!(
                proposed,
                CaseEvent::Decline | CaseEvent::Cancel | CaseEvent::OverrideSafetyBlocks { .. }
            );
        if (reason_required || rebooking) && !has_reason {
            let event = if rebooking {
                "rescheduling"
            } else if changes_access {
                "changing the planned access"
            } else {
                proposed.kind().as_str()
            };
            return Err(TransitionError::ReasonRequired { event });
        }
        let invalid = |field: &str, detail: String| {
            TransitionError::Invalid(ValidationErrors::single(field, detail))
        };
        match proposed {
            CaseEvent::Accept {
                ref procedure_id, ..
            } => {
                catalogue
                    .find(procedure_id.as_str())
                    .map_err(|e| invalid("event.procedure_id", e))?;
                Ok(proposed)
            }
            CaseEvent::RequestInformation { question } => {
                let question = required_text(&question, crate::validation::LONG_TEXT)
                    .map_err(|e| invalid("event.question", e))?;
                Ok(CaseEvent::RequestInformation { question })
            }
            CaseEvent::ProvideInformation { answer } => {
                let answer = required_text(&answer, crate::validation::LONG_TEXT)
                    .map_err(|e| invalid("event.answer", e))?;
                Ok(CaseEvent::ProvideInformation { answer })
            }
            CaseEvent::Schedule {
                room,
                start,
                duration_minutes,
                study,
                performing_physician,
            } => {
                let study = self.study_for_booking(study)?;
                let performing_physician = optional_text(
                    performing_physician.as_deref(),
                    crate::validation::SHORT_TEXT,
                )
                .map_err(|e| invalid("event.performing_physician", e))?
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty());
                let minutes = match duration_minutes {
                    Some(m) if (5..=720).contains(&m) => m,
                    Some(m) => {
                        return Err(invalid(
                            "event.duration_minutes",
                            format!("{m} is outside 5-720 minutes"),
                        ))
                    }
                    None => self
                        .vetting
                        .as_ref()
                        .and_then(|v| catalogue.get(&v.procedure_id))
                        .map(|p| p.room_minutes)
                        .ok_or_else(|| {
                            invalid(
                                "event.duration_minutes",
                                "is required: the vetted procedure is not in the catalogue".into(),
                            )
                        })?,
                };
                Ok(CaseEvent::Schedule {
                    room,
                    start,
                    duration_minutes: Some(minutes),
                    study,
                    performing_physician,
                })
            }
            CaseEvent::StartProcedure { time_out } => {
                let missing = time_out.unconfirmed();
                if !missing.is_empty() {
                    return Err(invalid(
                        "event.time_out",
                        format!(
                            "the time-out is not complete: not confirmed: {}",
                            missing.join(", ")
                        ),
                    ));
                }
                if time_out.completed_at > meta.at {
                    return Err(invalid(
                        "event.time_out.completed_at",
                        "must not be in the future".into(),
                    ));
                }
                Ok(CaseEvent::StartProcedure { time_out })
            }
            CaseEvent::RecordAssessment { assessment } => {
                assessment
                    .check(meta.at)
                    .map_err(TransitionError::Invalid)?;
                Ok(CaseEvent::RecordAssessment { assessment })
            }
            CaseEvent::RecordFasting { fasting } => {
                fasting.check(meta.at).map_err(TransitionError::Invalid)?;
                Ok(CaseEvent::RecordFasting { fasting })
            }
            CaseEvent::RecordConsent { consent } => {
                consent.check(meta.at).map_err(TransitionError::Invalid)?;
                let consent = Consent {
                    obtained_by: consent.obtained_by.trim().to_string(),
                    ..consent
                };
                Ok(CaseEvent::RecordConsent { consent })
            }
            CaseEvent::OverrideSafetyBlocks { rules } => {
                let rules: Vec<String> = rules
                    .iter()
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect();
                if rules.is_empty() {
                    return Err(invalid(
                        "event.rules",
                        "name the checklist items (rule ids) being overridden: blocks, or data that is missing".into(),
                    ));
                }
                Ok(CaseEvent::OverrideSafetyBlocks { rules })
            }
            CaseEvent::AssignAccession { accession_number } => {
                let accession_number = accession_number.trim().to_string();
                check_accession_number(&accession_number)
                    .map_err(|message| invalid("event.accession_number", message))?;
                Ok(CaseEvent::AssignAccession { accession_number })
            }
            CaseEvent::RecordProcedure { details } => Ok(CaseEvent::RecordProcedure {
                details: details
                    .check()
                    .map_err(|e| TransitionError::Invalid(nest("event.details", e)))?,
            }),
            CaseEvent::RecordDrugGiven { drug } => Ok(CaseEvent::RecordDrugGiven {
                drug: drug
                    .check(meta.at)
                    .map_err(|e| TransitionError::Invalid(nest("event.drug", e)))?,
            }),
            CaseEvent::RecordVitalSigns { vitals } => Ok(CaseEvent::RecordVitalSigns {
                vitals: vitals
                    .check(meta.at)
                    .map_err(|e| TransitionError::Invalid(nest("event.vitals", e)))?,
            }),
            CaseEvent::RecordDeviceLeft { device } => Ok(CaseEvent::RecordDeviceLeft {
                device: device
                    .check(meta.at)
                    .map_err(|e| TransitionError::Invalid(nest("event.device", e)))?,
            }),
            CaseEvent::RecordComplication { complication } => Ok(CaseEvent::RecordComplication {
                complication: complication
                    .check(meta.at)
                    .map_err(|e| TransitionError::Invalid(nest("event.complication", e)))?,
            }),
            CaseEvent::RecordRecoveryScore { score } => Ok(CaseEvent::RecordRecoveryScore {
                score: score
                    .check(meta.at)
                    .map_err(|e| TransitionError::Invalid(nest("event.score", e)))?,
            }),
            other => Ok(other),
        }
    }

    /// Applies a recorded event. Refuses what the lifecycle does not allow, so a corrupted log
    /// cannot produce an impossible case.
    pub fn apply(&mut self, event: &CaseEvent, meta: &EventMeta) -> Result<(), TransitionError> {
        if matches!(event, CaseEvent::Referred { .. }) {
            return Err(TransitionError::AlreadyOpen);
        }
        let next = self.state.transition(event)?;
        match event {
            CaseEvent::Accept {
                procedure_id,
                modality,
                sedation,
                priority,
                iodinated_contrast,
                access_route,
                sheath_french,
            } => {
                self.vetting = Some(Vetting {
                    procedure_id: procedure_id.clone(),
                    modality: *modality,
                    sedation: *sedation,
                    priority: *priority,
                    iodinated_contrast: *iodinated_contrast,
                    access_route: *access_route,
                    sheath_french: *sheath_french,
                });
                self.information_request = None;
            }
            CaseEvent::ReviseAccess {
                access_route,
                sheath_french,
            } => {
                if let Some(vetting) = self.vetting.as_mut() {
                    vetting.access_route = Some(*access_route);
                    vetting.sheath_french = *sheath_french;
                }
            }
            CaseEvent::RequestInformation { question } => {
                self.information_request = Some(question.clone())
            }
            CaseEvent::ProvideInformation { .. } => self.information_request = None,
            CaseEvent::Schedule {
                room,
                start,
                duration_minutes,
                study,
                performing_physician,
            } => {
                if let Some(study) = study {
                    self.accession_number = Some(study.accession_number.clone());
                    self.study_instance_uid = Some(study.study_instance_uid.clone());
                }
                let minutes = i64::from(duration_minutes.unwrap_or(0));
                let performing_physician = performing_physician.clone().or_else(|| {
                    self.booking
                        .as_ref()
                        .and_then(|b| b.performing_physician.clone())
                });
                self.booking = Some(Booking {
                    room: room.clone(),
                    start: *start,
                    end: *start + Duration::minutes(minutes),
                    performing_physician,
                });
            }
            CaseEvent::CheckIn => self.checked_in_at = Some(meta.at),
            CaseEvent::StartProcedure { time_out } => {
                self.time_out = Some(time_out.clone());
                self.procedure_started_at = Some(meta.at);
            }
            CaseEvent::CompleteProcedure => self.procedure_completed_at = Some(meta.at),
            CaseEvent::Discharge => self.discharged_at = Some(meta.at),
            CaseEvent::RecordAssessment { assessment } => {
                self.assessment = Some(assessment.clone())
            }
            CaseEvent::RecordFasting { fasting } => self.fasting = Some(fasting.clone()),
            CaseEvent::RecordConsent { consent } => self.consent = Some(consent.clone()),
            CaseEvent::OverrideSafetyBlocks { rules } => {
                self.safety_overrides.push(SafetyOverride {
                    rules: rules.clone(),
                    by: meta.actor.as_str().to_string(),
                    at: meta.at,
                    reason: meta.reason.clone().unwrap_or_default(),
                })
            }
            CaseEvent::AssignAccession { accession_number } => {
                self.accession_number = Some(accession_number.clone())
            }
            CaseEvent::RecordProcedure { details } => self.procedure = Some(details.clone()),
            CaseEvent::RecordDrugGiven { drug } => self.drugs_given.push(drug.clone()),
            CaseEvent::RecordVitalSigns { vitals } => self.vital_signs.push(vitals.clone()),
            CaseEvent::RecordDeviceLeft { device } => self.devices_left.push(device.clone()),
            CaseEvent::RecordComplication { complication } => {
                self.complications.push(complication.clone())
            }
            CaseEvent::RecordRecoveryScore { score } => self.recovery_scores.push(score.clone()),
            CaseEvent::Decline | CaseEvent::Cancel => self.ended_reason = meta.reason.clone(),
            _ => {}
        }
        self.state = next;
        self.updated_at = meta.at;
        self.version += 1;
        Ok(())
    }

    /// Whether the case may go in-room given its safety checklist: every item that blocks or
    /// still misses data must have been resolved or overridden by a physician (clinical-rules.md
    /// §8 start gate; decision support, never a dead end).
    pub fn check_safety_for_start(
        &self,
        checklist: &crate::safety::Checklist,
    ) -> Result<(), TransitionError> {
        let overridden: std::collections::BTreeSet<&str> = self
            .safety_overrides
            .iter()
            .flat_map(|o| o.rules.iter().map(String::as_str))
            .collect();
        let open: Vec<String> = checklist
            .stops_start()
            .map(|i| i.rule.clone())
            .filter(|r| !overridden.contains(r.as_str()))
            .collect();
        if open.is_empty() {
            Ok(())
        } else {
            Err(TransitionError::SafetyBlocked { rules: open })
        }
    }

    /// The §4 discharge criteria apply after moderate sedation or general anaesthesia: the
    /// modified Aldrete score measures recovery from them (clinical-rules.md §4, "Sedation and
    /// recovery"), and local anaesthesia alone leaves nothing to recover from, as §4's fasting
    /// rule also treats it.
    pub fn needs_recovery_score(&self) -> bool {
        self.vetting.as_ref().is_some_and(|v| {
            matches!(
                v.sedation,
                crate::Sedation::Moderate | crate::Sedation::General
            )
        })
    }

    /// The score taken last (by its time, so one recorded late does not hide a newer one).
    pub fn latest_recovery_score(&self) -> Option<&crate::procedure_record::AldreteScore> {
        self.recovery_scores.iter().max_by_key(|s| s.at)
    }

    /// What keeps a sedated patient in recovery: after moderate sedation or general anaesthesia
    /// the latest modified Aldrete score must meet the discharge criteria (clinical-rules.md §4).
    /// Empty when they are met, or when no sedation was planned.
    pub fn discharge_criteria_unmet(
        &self,
        reference: &crate::safety::SafetyReference,
    ) -> Vec<String> {
        if !self.needs_recovery_score() {
            return Vec::new();
        }
        match self.latest_recovery_score() {
            None => vec!["no recovery score is recorded".into()],
            Some(score) => score.readiness(reference).reasons,
        }
    }

    /// A discharge against the §4 criteria is the nurse's or physician's call, not the table's,
    /// but it must say why (e.g. transferred to a ward for monitoring); the reason is kept.
    pub fn check_discharge(
        &self,
        reference: &crate::safety::SafetyReference,
        reason: Option<&str>,
    ) -> Result<(), TransitionError> {
        let unmet = self.discharge_criteria_unmet(reference);
        if unmet.is_empty() || reason.is_some_and(|r| !r.trim().is_empty()) {
            return Ok(());
        }
        Err(TransitionError::Invalid(ValidationErrors::single(
            "reason",
            format!(
                "the discharge criteria (clinical-rules.md §4) are not met: {}; record a new \
                 recovery score, or give the reason for discharging now (e.g. transferred to a \
                 ward for monitoring)",
                unmet.join("; ")
            ),
        )))
    }

    /// Rebuilds a case from its whole history, oldest first.
    pub fn replay<'a>(
        id: CaseId,
        history: impl IntoIterator<Item = (&'a CaseEvent, &'a EventMeta)>,
    ) -> Result<Case, TransitionError> {
        let mut history = history.into_iter();
        let mut case = match history.next() {
            Some((
                CaseEvent::Referred {
                    patient_id,
                    referral_id,
                    urgency,
                    requested_procedure,
                },
                meta,
            )) => {
                Case::open(
                    id,
                    *patient_id,
                    *referral_id,
                    *urgency,
                    requested_procedure.clone(),
                    meta,
                )
                .0
            }
            Some((other, _)) => {
                return Err(TransitionError::NotAllowed {
                    from: CaseState::Referred,
                    event: other.kind().as_str(),
                    allowed: vec!["referred"],
                })
            }
            None => {
                return Err(TransitionError::Invalid(ValidationErrors::single(
                    "history", "is empty",
                )))
            }
        };
        for (event, meta) in history {
            case.apply(event, meta)?;
        }
        Ok(case)
    }
}

#[cfg(test)]
mod tests;

/// DICOM UI (PS3.5 §6.2, §9.1): at most 64 characters, numeric components separated by
/// periods, no component with a leading zero (except "0" itself), none empty.
pub fn check_uid(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 64 {
        return Err(format!(
            "'{value}' is {} characters; a UID has 1 to 64 (DICOM UI)",
            value.len()
        ));
    }
    let bad = value.split('.').any(|part| {
        part.is_empty()
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
    });
    if bad {
        return Err(format!(
            "'{value}' is not a UID: digits in components separated by periods, no leading zeros"
        ));
    }
    Ok(())
}

/// DICOM SH (PS3.5 §6.2): at most 16 characters, no backslash, no control characters.
fn check_accession_number(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > 16 {
        return Err(format!(
            "'{value}' is {} characters; an accession number has at most 16 (DICOM SH)",
            value.chars().count()
        ));
    }
    if value.chars().any(|c| c == '\\' || c.is_control()) {
        return Err("must not contain a backslash or control characters (DICOM SH)".into());
    }
    Ok(())
}
