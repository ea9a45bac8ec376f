//! What other systems are owed when a case changes — a booking, a rebooking, a cancellation, a
//! decline of their order, the procedure report — decided here and written in the change's own
//! commit (the outbox), then sent by an adapter (HL7 v2) that renders each in its destination's
//! style. The outbox pages and "send again" are the administrator's.

use crate::{App, AppError, Audit, Principal};
use chrono::{DateTime, Utc};
use seldinger_domain::access::Permission;
use seldinger_domain::lifecycle::{Case, CaseEvent};
use seldinger_domain::{Patient, Referral, Room};
use seldinger_store::{
    Cursor, NewOutboundMessage, OutboundMessage, OutboxCount, OutboxFilter, OutboxStatus, Page,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What happened to a case that other systems are told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// Booked into a room for the first time.
    Booked,
    /// Moved to another time or room.
    Rescheduled,
    /// Cancelled after booking, or an order from another system cancelled before it.
    Cancelled,
    /// An order from another system declined at vetting.
    Declined,
    /// The procedure recorded and complete: the report.
    Report,
    /// The procedure record changed after the report went out.
    ReportCorrected,
    /// The structured report signed by the IR physician: final.
    ReportSigned,
    /// An addendum to a signed report: the report again, with its addenda.
    ReportAddendum,
}

impl Notice {
    pub const ALL: [Notice; 8] = [
        Notice::Booked,
        Notice::Rescheduled,
        Notice::Cancelled,
        Notice::Declined,
        Notice::Report,
        Notice::ReportCorrected,
        Notice::ReportSigned,
        Notice::ReportAddendum,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Booked => "booked",
            Notice::Rescheduled => "rescheduled",
            Notice::Cancelled => "cancelled",
            Notice::Declined => "declined",
            Notice::Report => "report",
            Notice::ReportCorrected => "report_corrected",
            Notice::ReportSigned => "report_signed",
            Notice::ReportAddendum => "report_addendum",
        }
    }

    pub fn parse(value: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == value)
    }

    /// The notice a recorded event owes, if any (`before` and `after` the event).
    pub fn of(before: &Case, event: &CaseEvent, after: &Case, from_order: bool) -> Option<Notice> {
        match event {
            CaseEvent::Schedule { .. } if before.booking.is_some() => Some(Notice::Rescheduled),
            CaseEvent::Schedule { .. } => Some(Notice::Booked),
            CaseEvent::Cancel if before.booking.is_some() || from_order => Some(Notice::Cancelled),
            CaseEvent::Decline if from_order => Some(Notice::Declined),
            CaseEvent::CompleteProcedure if after.procedure.is_some() => Some(Notice::Report),
            CaseEvent::RecordProcedure { .. } if after.procedure_completed_at.is_some() => {
                // A record that replaces one already reported corrects the report.
                if before.procedure.is_some() && before.procedure_completed_at.is_some() {
                    Some(Notice::ReportCorrected)
                } else {
                    Some(Notice::Report)
                }
            }
            _ => None,
        }
    }
}

/// One destination and what it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: String,
    pub notices: Vec<Notice>,
}

/// The configured destinations, and how the sender is woken when something is owed.
#[derive(Clone)]
pub struct Outbound {
    pub routes: Vec<Route>,
    /// Called after a commit that owes messages (the sender then goes at once, not at its next
    /// look).
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

/// The record as it was when a notice became owed: what the adapter renders from, so a message
/// sent later (after a restart, a receiver down for a day) still says what was true then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseNotice {
    pub notice: Notice,
    pub at: DateTime<Utc>,
    /// Who made the change (user name).
    pub by: String,
    /// The reason given (a cancellation's, a rebooking's, a decline's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub case: Case,
    pub patient: Patient,
    pub referral: Referral,
    /// The vetted (or else requested) catalogue procedure: id and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Room>,
    /// The procedure as recorded, as report lines (reports only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<String>,
}

fn outbox_note<'a>(action: &'a str, message: &OutboundMessage) -> Audit<'a> {
    Audit {
        action,
        resource_type: "hl7_outbound",
        resource_id: Some(message.owed.id.clone()),
        patient_id: Some(message.owed.patient_id.clone()),
        break_glass_reason: None,
        outcome: "allowed",
    }
}

impl App {
    /// The messages `event` owes the configured destinations, with the record as it is after
    /// it; none when no destination is configured or it tells nothing.
    pub(crate) async fn owed_by(
        &self,
        before: &Case,
        event: &CaseEvent,
        after: &Case,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vec<NewOutboundMessage>, AppError> {
        if self.outbound.is_none() {
            return Ok(Vec::new());
        }
        // Most events (vital signs, drugs, scores) tell no one: decided before any read.
        if Notice::of(before, event, after, true).is_none() {
            return Ok(Vec::new());
        }
        let referral = self.store.referral(after.referral_id).await?;
        let from_order = referral
            .as_ref()
            .is_some_and(|r| r.details.placer_order.is_some());
        let Some(notice) = Notice::of(before, event, after, from_order) else {
            return Ok(Vec::new());
        };
        self.owed_notice(after, notice, referral, by, reason, at, None)
            .await
    }

    /// The messages a notice about `after` owes the destinations that take it, with the record
    /// as it is then; `report` gives the report's lines (else the record's, for a report).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn owed_notice(
        &self,
        after: &Case,
        notice: Notice,
        referral: Option<Referral>,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
        report: Option<Vec<String>>,
    ) -> Result<Vec<NewOutboundMessage>, AppError> {
        let Some(outbound) = &self.outbound else {
            return Ok(Vec::new());
        };
        let routes: Vec<&Route> = outbound
            .routes
            .iter()
            .filter(|r| r.notices.contains(&notice))
            .collect();
        if routes.is_empty() {
            return Ok(Vec::new());
        }
        let referral = referral
            .ok_or_else(|| AppError::NotFound(format!("referral {}", after.referral_id)))?;
        let patient = self
            .store
            .patient(after.patient_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("patient {}", after.patient_id)))?;
        let procedure = after
            .planned_procedure()
            .and_then(|id| self.catalogue.get(id))
            .map(|p| (p.id.to_string(), p.name.clone()));
        let room = match &after.booking {
            Some(booking) => self
                .store
                .rooms()
                .await?
                .into_iter()
                .find(|r| r.id == booking.room),
            None => None,
        };
        let report = match (notice, report) {
            (_, Some(lines)) => lines,
            (Notice::Report | Notice::ReportCorrected, None) => after.report_lines(
                procedure.as_ref().map_or("", |(_, name)| name.as_str()),
                &self.time,
            ),
            _ => Vec::new(),
        };
        let snapshot = CaseNotice {
            notice,
            at,
            by: by.to_string(),
            reason: reason.map(str::to_string),
            case: after.clone(),
            patient,
            referral,
            procedure,
            room,
            report,
        };
        let payload =
            serde_json::to_string(&snapshot).map_err(seldinger_store::StoreError::from)?;
        Ok(routes
            .into_iter()
            .map(|route| NewOutboundMessage {
                id: uuid::Uuid::new_v4().to_string(),
                destination: route.destination.clone(),
                patient_id: after.patient_id.to_string(),
                case_id: Some(after.id.to_string()),
                trigger: notice.as_str().to_string(),
                payload: payload.clone(),
                created_at: at,
            })
            .collect())
    }

    /// Wakes the sender after a commit that owed messages.
    pub(crate) fn wake_sender(&self, owed: &[NewOutboundMessage]) {
        // In a batch nothing is there to read until it commits: its owner wakes them then.
        if !owed.is_empty() && !self.store.in_batch() {
            self.wake_senders();
        }
    }

    /// Tells every destination's sender to look at its queue (after a batch is committed).
    pub fn wake_senders(&self) {
        if let Some(outbound) = &self.outbound {
            (outbound.wake)();
        }
    }

    /// A destination's messages waiting to go, in sending order (the sender's read).
    pub async fn owed_messages(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<OutboundMessage>, AppError> {
        Ok(self.store.outbox_pending(destination, limit).await?)
    }

    /// Takes or renews the lease to send `destination`'s messages until `until` (see
    /// `Store::outbox_lease_hold`); false while another sender holds it.
    pub async fn hold_sending_lease(
        &self,
        destination: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        Ok(self
            .store
            .outbox_lease_hold(destination, holder, now, until)
            .await?)
    }

    /// Gives the lease up (nothing left to send).
    pub async fn release_sending_lease(
        &self,
        destination: &str,
        holder: &str,
    ) -> Result<(), AppError> {
        Ok(self.store.outbox_lease_release(destination, holder).await?)
    }

    /// Keeps a message's HL7 text before its first try; returns the text to send (an earlier
    /// rendering stands, so every try carries the same control id).
    pub async fn keep_rendered(
        &self,
        id: &str,
        control_id: &str,
        text: &str,
    ) -> Result<(String, String), AppError> {
        Ok(self.store.outbox_rendered(id, control_id, text).await?)
    }

    /// Records how a message's sending ended (sent, rejected or skipped).
    pub async fn finish_outbound(
        &self,
        id: &str,
        status: OutboxStatus,
        ack: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .outbox_finished(id, status, ack, error, self.clock.now())
            .await?)
    }

    /// Records a try that got no answer; the next is at `next`.
    pub async fn retry_outbound(
        &self,
        id: &str,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), AppError> {
        Ok(self.store.outbox_retry_at(id, error, next).await?)
    }

    /// A page of the outbox, newest first, with each destination's counts. The messages hold
    /// patient data: the view is audited.
    pub async fn outbox_page(
        &self,
        who: &Principal,
        filter: &OutboxFilter,
        after: Option<&Cursor>,
    ) -> Result<(Page<OutboundMessage>, Vec<OutboxCount>), AppError> {
        who.require(Permission::ManageInterfaces)?;
        let page = self.store.outbound_messages_page(filter, after).await?;
        let counts = self.store.outbox_counts().await?;
        let notes = page.items.iter().map(|m| outbox_note("read", m)).collect();
        self.audit_reads(who, notes).await?;
        Ok((page, counts))
    }

    /// One owed message with its sending history; audited.
    pub async fn outbound_message(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<OutboundMessage, AppError> {
        who.require(Permission::ManageInterfaces)?;
        let message = self
            .store
            .outbound_message(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("outbound message {id}")))?;
        self.audit_reads(who, vec![outbox_note("read", &message)])
            .await?;
        Ok(message)
    }

    /// Puts a rejected or skipped message back in its queue once the cause is fixed (the
    /// receiver's mapping, the destination's style); rendered anew from the record as it was,
    /// with a new control id. Audited as the administrator's.
    pub async fn send_again(&self, who: &Principal, id: &str) -> Result<OutboundMessage, AppError> {
        who.require(Permission::ManageInterfaces)?;
        let message = self
            .store
            .outbound_message(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("outbound message {id}")))?;
        if !self.store.outbox_send_again(id, self.clock.now()).await? {
            return Err(AppError::invalid(
                "status",
                format!(
                    "message {id} is {}: only rejected and skipped messages are sent again",
                    message.status.as_str()
                ),
            ));
        }
        self.audit_reads(who, vec![outbox_note("send_again", &message)])
            .await?;
        if let Some(outbound) = &self.outbound {
            (outbound.wake)();
        }
        self.store
            .outbound_message(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("outbound message {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use seldinger_domain::lifecycle::Booking;
    use seldinger_domain::procedure_record::{Operator, OperatorRole, ProcedureDetails};
    use seldinger_domain::{
        Actor, CaseId, EventMeta, GuidanceModality, PatientId, ReferralId, RoomId, Urgency,
    };

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0)
            .single()
            .expect("valid")
    }

    fn case() -> Case {
        let meta = EventMeta {
            actor: Actor::parse("dr.test").expect("actor"),
            at: Utc
                .with_ymd_and_hms(2026, 12, 2, 8, 0, 0)
                .single()
                .expect("time"),
            reason: None,
        };
        Case::open(
            CaseId(uuid::Uuid::from_u128(1)),
            PatientId(uuid::Uuid::from_u128(2)),
            ReferralId(uuid::Uuid::from_u128(3)),
            Urgency::Routine,
            None,
            &meta,
        )
        .0
    }

    fn booked(mut case: Case) -> Case {
        let start = Utc
            .with_ymd_and_hms(2026, 12, 3, 9, 0, 0)
            .single()
            .expect("time");
        case.booking = Some(Booking {
            room: RoomId::parse("angio-1").expect("room"),
            start,
            end: start + chrono::Duration::minutes(60),
            performing_physician: None,
        });
        case
    }

    fn recorded(mut case: Case) -> Case {
        case.procedure = Some(ProcedureDetails {
            operators: vec![Operator {
                name: "Dr Test".into(),
                role: OperatorRole::Primary,
            }],
            guidance: GuidanceModality::Fluoroscopy,
            access_site: "right common femoral artery".into(),
            contrast_agent: None,
            contrast_volume_ml: None,
            findings: "done".into(),
            technical_success: Some(true),
        });
        case
    }

    fn completed(mut case: Case) -> Case {
        case.procedure_completed_at = Some(at());
        case
    }

    #[test]
    fn which_changes_other_systems_are_told_of() {
        let schedule = CaseEvent::Schedule {
            room: RoomId::parse("angio-1").expect("room"),
            start: at(),
            duration_minutes: None,
            study: None,
            performing_physician: None,
        };
        let unbooked = case();
        let with_booking = booked(case());
        let of = |before: &Case, event: &CaseEvent, after: &Case, order: bool| {
            Notice::of(before, event, after, order)
        };
        assert_eq!(
            of(&unbooked, &schedule, &with_booking, false),
            Some(Notice::Booked)
        );
        assert_eq!(
            of(&with_booking, &schedule, &with_booking, false),
            Some(Notice::Rescheduled)
        );
        // A cancellation is news to others once booked, or to the system that ordered it.
        assert_eq!(
            of(&with_booking, &CaseEvent::Cancel, &with_booking, false),
            Some(Notice::Cancelled)
        );
        assert_eq!(of(&unbooked, &CaseEvent::Cancel, &unbooked, false), None);
        assert_eq!(
            of(&unbooked, &CaseEvent::Cancel, &unbooked, true),
            Some(Notice::Cancelled)
        );
        assert_eq!(of(&unbooked, &CaseEvent::Decline, &unbooked, false), None);
        assert_eq!(
            of(&unbooked, &CaseEvent::Decline, &unbooked, true),
            Some(Notice::Declined)
        );
        // The report: complete with a record, or a record after completion; a record that
        // replaces a reported one corrects it; a record before completion is not reported yet.
        let in_room = booked(case());
        let with_record = recorded(booked(case()));
        let done = completed(with_record.clone());
        assert_eq!(
            of(&with_record, &CaseEvent::CompleteProcedure, &done, false),
            Some(Notice::Report)
        );
        assert_eq!(
            of(
                &in_room,
                &CaseEvent::CompleteProcedure,
                &completed(booked(case())),
                false
            ),
            None
        );
        let record = CaseEvent::RecordProcedure {
            details: done.procedure.clone().expect("record"),
        };
        assert_eq!(of(&in_room, &record, &with_record, false), None);
        let completed_unrecorded = completed(booked(case()));
        assert_eq!(
            of(&completed_unrecorded, &record, &done, false),
            Some(Notice::Report)
        );
        assert_eq!(
            of(&done, &record, &done, false),
            Some(Notice::ReportCorrected)
        );
        assert_eq!(of(&done, &CaseEvent::Discharge, &done, false), None);
    }
}
