//! The outbox of messages owed to hospital systems (HL7 v2): each written in the commit of the
//! change it tells of, then sent by the interface in order, retried until the receiver answers,
//! and kept with that answer.

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::{parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where an owed message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Not yet acknowledged: waiting its turn, or waiting to try again.
    Pending,
    /// The receiver accepted it (AA or CA).
    Sent,
    /// The receiver refused it (AE, AR or a commit reject): kept until sent again by hand.
    Rejected,
    /// Nothing this destination is sent for it (the reason is kept).
    Skipped,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 4] = [
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Rejected,
        OutboxStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Rejected => "rejected",
            OutboxStatus::Skipped => "skipped",
        }
    }

    pub fn parse(value: &str) -> Result<OutboxStatus, String> {
        OutboxStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                format!("'{value}' is not an outbox status; use pending, sent, rejected or skipped")
            })
    }
}

/// A message owed to a destination, as the change that owes it writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboundMessage {
    pub id: String,
    /// The destination's name, as configured.
    pub destination: String,
    pub patient_id: String,
    pub case_id: Option<String>,
    /// What happened: booked, rescheduled, cancelled, declined, report, report_corrected.
    pub trigger: String,
    /// The record as it was when the change committed (JSON), rendered into HL7 when sent.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// An owed message with how its sending went.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// The sending order.
    pub seq: i64,
    pub owed: NewOutboundMessage,
    pub status: OutboxStatus,
    /// Tries that reached no answer, or the receiver's refusal.
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// MSH-10 of the rendered message.
    pub control_id: Option<String>,
    /// The HL7 text sent (segments separated by CR), once rendered.
    pub message: Option<String>,
    /// The receiver's acknowledgement.
    pub ack: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Which owed messages a list shows.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub statuses: Option<Vec<OutboxStatus>>,
    pub destination: Option<String>,
    pub case_id: Option<String>,
    pub limit: usize,
}

/// How many messages a destination has in each status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCount {
    pub destination: String,
    pub status: OutboxStatus,
    pub count: i64,
}

const COLUMNS: &str = "seq, id, destination, patient_id, case_id, trigger_event, payload, \
    created_at, status, attempts, next_attempt_at, last_error, control_id, message, ack, \
    finished_at";

fn outbound(row: &AnyRow) -> Result<OutboundMessage, StoreError> {
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(OutboundMessage {
        seq: row.try_get("seq")?,
        owed: NewOutboundMessage {
            id: text(row, "id")?,
            destination: text(row, "destination")?,
            patient_id: text(row, "patient_id")?,
            case_id: row.try_get("case_id")?,
            trigger: text(row, "trigger_event")?,
            payload: text(row, "payload")?,
            created_at: parse_ts(&text(row, "created_at")?)?,
        },
        status: OutboxStatus::parse(&text(row, "status")?).map_err(StoreError::Corrupt)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: parse_ts(&text(row, "next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        control_id: row.try_get("control_id")?,
        message: row.try_get("message")?,
        ack: row.try_get("ack")?,
        finished_at: finished.as_deref().map(parse_ts).transpose()?,
    })
}

/// Writes owed messages on the transaction of the change that owes them.
pub(crate) async fn insert_owed(
    conn: &mut sqlx::AnyConnection,
    owed: &[NewOutboundMessage],
) -> Result<(), StoreError> {
    for message in owed {
        sqlx::query(
            "INSERT INTO hl7_outbox (id, destination, patient_id, case_id, trigger_event, \
             payload, created_at, status, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $7)",
        )
        .bind(message.id.clone())
        .bind(message.destination.clone())
        .bind(message.patient_id.clone())
        .bind(message.case_id.clone())
        .bind(message.trigger.clone())
        .bind(message.payload.clone())
        .bind(ts(message.created_at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// A destination's pending messages in sending order, oldest first.
    pub async fn outbox_pending(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hl7_outbox WHERE destination = $1 AND status = 'pending' \
             ORDER BY seq LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(destination.to_string())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(outbound).collect()
    }

    /// Takes or renews `destination`'s sending lease for `holder` until `until`: granted when no
    /// one holds it, `holder` already does, or the holder's lease ran out by `now`. One statement,
    /// so two nodes asking at once cannot both be granted (PostgreSQL re-checks the condition on
    /// the row it locked; SQLite has one writer).
    pub async fn outbox_lease_hold(
        &self,
        destination: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let granted = sqlx::query(
            "INSERT INTO hl7_sender_leases (destination, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (destination) DO UPDATE \
             SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE hl7_sender_leases.holder = excluded.holder \
             OR hl7_sender_leases.expires_at <= $4",
        )
        .bind(destination.to_string())
        .bind(holder.to_string())
        .bind(ts(until))
        .bind(ts(now))
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(granted.rows_affected() == 1)
    }

    /// Gives up `destination`'s lease if `holder` has it (its queue is empty), so the next
    /// change's own node can send at once.
    pub async fn outbox_lease_release(
        &self,
        destination: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM hl7_sender_leases WHERE destination = $1 AND holder = $2")
            .bind(destination.to_string())
            .bind(holder.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Keeps the HL7 text of an owed message before its first try; rendered once, so a retry
    /// sends the same control id. Returns the text kept (an earlier rendering stands).
    pub async fn outbox_rendered(
        &self,
        id: &str,
        control_id: &str,
        message: &str,
    ) -> Result<(String, String), StoreError> {
        let kept_now = sqlx::query(
            "UPDATE hl7_outbox SET control_id = $1, message = $2 WHERE id = $3 AND message IS NULL",
        )
        .bind(control_id.to_string())
        .bind(message.to_string())
        .bind(id.to_string())
        .execute(&mut *self.write_conn().await?)
        .await?;
        if kept_now.rows_affected() == 1 {
            return Ok((control_id.to_string(), message.to_string()));
        }
        let kept = self
            .outbound_message(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("outbound message {id} vanished")))?;
        match (kept.control_id, kept.message) {
            (Some(control_id), Some(message)) => Ok((control_id, message)),
            _ => Err(StoreError::Corrupt(format!(
                "outbound message {id} has no text after rendering"
            ))),
        }
    }

    /// Records how an owed message ended: sent, rejected (with the answer and why) or skipped.
    pub async fn outbox_finished(
        &self,
        id: &str,
        status: OutboxStatus,
        ack: Option<&str>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE hl7_outbox SET status = $1, ack = $2, last_error = COALESCE($3, last_error), \
             finished_at = $4, \
             attempts = attempts + $5 WHERE id = $6 AND status = 'pending'",
        )
        .bind(status.as_str().to_string())
        .bind(ack.map(str::to_string))
        .bind(error.map(str::to_string))
        .bind(ts(at))
        .bind(i64::from(status != OutboxStatus::Skipped))
        .bind(id.to_string())
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// A try that got no answer (the receiver down, the connection lost, no ACK in time):
    /// counted, and tried again at `next`.
    pub async fn outbox_retry_at(
        &self,
        id: &str,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE hl7_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(error.to_string())
        .bind(ts(next))
        .bind(id.to_string())
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// Puts a rejected or skipped message back in its destination's queue, to be rendered anew
    /// (with a new control id: the receiver would answer the old one as before). Returns whether
    /// it was one to send again.
    pub async fn outbox_send_again(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE hl7_outbox SET status = 'pending', next_attempt_at = $1, control_id = NULL, \
             message = NULL, ack = NULL, finished_at = NULL \
             WHERE id = $2 AND status IN ('rejected', 'skipped')",
        )
        .bind(ts(at))
        .bind(id.to_string())
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(changed.rows_affected() == 1)
    }

    pub async fn outbound_message(&self, id: &str) -> Result<Option<OutboundMessage>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM hl7_outbox WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .as_ref()
            .map(outbound)
            .transpose()
    }

    /// How many messages each destination has in each status.
    pub async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT destination, status, COUNT(*) AS n FROM hl7_outbox \
             GROUP BY destination, status ORDER BY destination, status",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxCount {
                    destination: text(row, "destination")?,
                    status: OutboxStatus::parse(&text(row, "status")?)
                        .map_err(StoreError::Corrupt)?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }

    /// A page of owed messages, newest first.
    pub async fn outbound_messages_page(
        &self,
        filter: &OutboxFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<OutboundMessage>, StoreError> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        if let Some(statuses) = &filter.statuses {
            crate::push_in(
                "status",
                statuses.iter().map(|s| s.as_str().to_string()),
                &mut conditions,
                &mut params,
            );
        }
        if let Some(destination) = &filter.destination {
            params.push(destination.clone());
            conditions.push(format!("destination = ${}", params.len()));
        }
        if let Some(case_id) = &filter.case_id {
            params.push(case_id.clone());
            conditions.push(format!("case_id = ${}", params.len()));
        }
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(1000)
        };
        self.page(
            PagedQuery {
                from: "hl7_outbox",
                columns: COLUMNS,
                order: Order {
                    key: "seq",
                    id: "seq",
                    descending: true,
                    numeric: true,
                },
                conditions,
                params,
            },
            after,
            limit,
            |rows: &[AnyRow]| rows.iter().map(outbound).collect(),
        )
        .await
    }
}
