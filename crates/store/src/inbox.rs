//! The inbox of messages received from hospital systems (HL7 v2): each kept as the bytes that
//! arrived, with its outcome, so it can be audited, answered again identically when re-sent, and
//! replayed once the cause of a failure is fixed.

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::{parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where a received message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxStatus {
    /// Stored, not yet finished: being applied now, or its first attempt was cut short.
    Received,
    /// Applied and acknowledged (AA).
    Applied,
    /// Its content was wrong (AE): a dead letter until replayed.
    Failed,
    /// Refused before its content was read (AR): unknown sender, type or version; unreadable.
    Refused,
}

impl InboxStatus {
    pub const ALL: [InboxStatus; 4] = [
        InboxStatus::Received,
        InboxStatus::Applied,
        InboxStatus::Failed,
        InboxStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Received => "received",
            InboxStatus::Applied => "applied",
            InboxStatus::Failed => "failed",
            InboxStatus::Refused => "refused",
        }
    }

    pub fn parse(value: &str) -> Result<InboxStatus, String> {
        InboxStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                format!(
                    "'{value}' is not an inbox status; use received, applied, failed or refused"
                )
            })
    }

    /// Failed and refused messages wait on the dead-letter list.
    pub fn is_dead_letter(self) -> bool {
        matches!(self, InboxStatus::Failed | InboxStatus::Refused)
    }
}

/// A message as it arrived, before anything is done with it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInboundMessage {
    pub id: String,
    /// MSH-3 and MSH-4 (`APP^FACILITY`), when the header could be read.
    pub sender: Option<String>,
    /// MSH-10, when the header could be read.
    pub control_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The peer's address (or the batch file's name).
    pub peer: String,
    /// MSH-9 as sent, e.g. `ADT^A08^ADT_A01`; empty when unreadable.
    pub message_type: String,
    /// MSH-12 as sent.
    pub version: String,
    /// SHA-256 of `raw`, hex: a control id re-used for different content is told apart.
    pub content_sha256: String,
    pub raw: Vec<u8>,
    /// The patient the message is about (`SITE/MRN`), when known: per-patient order and search.
    pub patient_key: Option<String>,
    /// The certificate the sender presented over mutual TLS, as the interface wrote it down
    /// (its fingerprint, subject and names): a replay checks it against the sender's binding.
    pub peer_certificate: Option<String>,
}

/// A received message with its outcome.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// The message as it arrived.
    pub arrived: NewInboundMessage,
    pub status: InboxStatus,
    /// The acknowledgement sent (or to send again when re-sent).
    pub ack: Option<String>,
    /// HL7 table 0357 code of a failure.
    pub error_code: Option<String>,
    /// Where in the message the failure is, e.g. `PID-3.4` (ERR-2 style).
    pub error_location: Option<String>,
    pub error_reason: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Deliveries and replays that reached the application.
    pub attempts: i64,
}

/// What receiving a message found.
#[derive(Debug, Clone)]
pub enum Receipt {
    /// First time this (sender, control id) arrived: stored, to be applied.
    New(InboundMessage),
    /// Arrived before; its stored outcome stands (a `Received` one is still to be finished).
    Again(InboundMessage),
}

/// How a message's processing ended.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: InboxStatus,
    pub ack: String,
    pub error_code: Option<String>,
    pub error_location: Option<String>,
    pub error_reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// How the write that applies a received message marks it, in the write's own commit: the
/// message is kept (when it is not in the inbox yet), marked applied, and its answer stored — so
/// the change, "applied" and the answer are one commit.
#[derive(Debug, Default)]
pub struct Claim {
    /// The acknowledgement the sender gets once the write commits.
    pub ack: String,
    /// The message as received, when it is not in the inbox yet (replays are).
    pub new: Option<NewInboundMessage>,
    /// Set once a write has kept the message; if that write's use case then succeeds, it is
    /// committed, and nothing is left to store.
    pub kept: std::sync::atomic::AtomicBool,
}

impl Claim {
    pub fn new(ack: String, new: Option<NewInboundMessage>) -> Claim {
        Claim {
            ack,
            new,
            kept: Default::default(),
        }
    }

    pub fn was_kept(&self) -> bool {
        self.kept.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl PartialEq for Claim {
    fn eq(&self, other: &Claim) -> bool {
        self.ack == other.ack && self.new == other.new
    }
}

/// Which messages a list shows.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// None: every status.
    pub statuses: Option<Vec<InboxStatus>>,
    pub sender: Option<String>,
    pub limit: usize,
}

const COLUMNS: &str = "id, sender, control_id, received_at, peer, message_type, version, \
    content_sha256, raw, patient_key, status, ack, error_code, error_location, error_reason, \
    finished_at, attempts, peer_certificate";

fn message(row: &AnyRow) -> Result<InboundMessage, StoreError> {
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(InboundMessage {
        arrived: NewInboundMessage {
            id: text(row, "id")?,
            sender: row.try_get("sender")?,
            control_id: row.try_get("control_id")?,
            received_at: parse_ts(&text(row, "received_at")?)?,
            peer: text(row, "peer")?,
            message_type: text(row, "message_type")?,
            version: text(row, "version")?,
            content_sha256: text(row, "content_sha256")?,
            raw: row.try_get("raw")?,
            patient_key: row.try_get("patient_key")?,
            peer_certificate: row.try_get("peer_certificate")?,
        },
        status: InboxStatus::parse(&text(row, "status")?).map_err(StoreError::Corrupt)?,
        ack: row.try_get("ack")?,
        error_code: row.try_get("error_code")?,
        error_location: row.try_get("error_location")?,
        error_reason: row.try_get("error_reason")?,
        finished_at: finished.as_deref().map(parse_ts).transpose()?,
        attempts: row.try_get("attempts")?,
    })
}

/// Marks a received message applied, on the transaction of the change it made (called for the
/// first audit row that names it): inserted as applied when it is new, updated when it was kept
/// before (a replay). Applied already — a delivery of the same message got there first — the
/// change is refused, so it happens once.
pub(crate) async fn claim(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    claim: Option<&Claim>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kept = |result: Result<(), StoreError>| {
        if result.is_ok() {
            if let Some(claim) = claim {
                claim.kept.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        result
    };
    if let Some(Claim {
        ack,
        new: Some(new),
        ..
    }) = claim
    {
        let finish = Finish {
            status: InboxStatus::Applied,
            ack: ack.clone(),
            error_code: None,
            error_location: None,
            error_reason: None,
            at,
        };
        return kept(match insert(conn, new, &finish, false).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::AlreadyApplied(id.to_string())),
            Err(StoreError::Database(e)) if StoreError::is_unique_violation(&e) => {
                Err(StoreError::AlreadyApplied(id.to_string()))
            }
            Err(e) => Err(e),
        });
    }
    let claimed = sqlx::query(
        "UPDATE hl7_messages SET status = 'applied', finished_at = $1, ack = COALESCE($2, ack), \
         error_code = NULL, error_location = NULL, error_reason = NULL \
         WHERE id = $3 AND status <> 'applied'",
    )
    .bind(ts(at))
    .bind(claim.map(|c| c.ack.clone()))
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    kept(if claimed.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::AlreadyApplied(id.to_string()))
    })
}

/// Inserts a message with its outcome; `quietly`: a row with the same sender and control id
/// already there is left as it is (0 rows) instead of refused.
async fn insert(
    conn: &mut sqlx::AnyConnection,
    new: &NewInboundMessage,
    finish: &Finish,
    quietly: bool,
) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO hl7_messages (id, sender, control_id, received_at, peer, message_type, \
         version, content_sha256, raw, patient_key, status, ack, error_code, error_location, \
         error_reason, finished_at, peer_certificate) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17){}",
        if quietly {
            " ON CONFLICT (sender, control_id) DO NOTHING"
        } else {
            ""
        }
    );
    let result = sqlx::query(&sql)
        .bind(new.id.clone())
        .bind(new.sender.clone())
        .bind(new.control_id.clone())
        .bind(ts(new.received_at))
        .bind(new.peer.clone())
        .bind(new.message_type.clone())
        .bind(new.version.clone())
        .bind(new.content_sha256.clone())
        .bind(new.raw.clone())
        .bind(new.patient_key.clone())
        .bind(finish.status.as_str().to_string())
        .bind(finish.ack.clone())
        .bind(finish.error_code.clone())
        .bind(finish.error_location.clone())
        .bind(finish.error_reason.clone())
        .bind(ts(finish.at))
        .bind(new.peer_certificate.clone())
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected())
}

impl Store {
    /// The message this sender sent with this control id, if it arrived before.
    pub async fn find_message(
        &self,
        sender: &str,
        control_id: &str,
    ) -> Result<Option<InboundMessage>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hl7_messages WHERE sender = $1 AND control_id = $2"
        ))
        .bind(sender.to_string())
        .bind(control_id.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .as_ref()
        .map(message)
        .transpose()
    }

    /// Keeps a message with its outcome, in one commit. When a row with the same sender and
    /// control id is there (the write that applied this message inserted it, or another delivery
    /// of it got there first), that row stands and is returned.
    pub async fn record_message(
        &self,
        new: &NewInboundMessage,
        finish: &Finish,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let mut conn = self.write_conn().await?;
        if insert(&mut conn, new, finish, true).await? == 1 {
            return Ok(None);
        }
        drop(conn);
        match (&new.sender, &new.control_id) {
            (Some(sender), Some(control_id)) => self.find_message(sender, control_id).await,
            _ => Ok(None),
        }
    }

    /// Stores a message as it arrived, durably, before anything is done with it. The same sender
    /// and control id again finds the first one instead (its status says what was answered).
    pub async fn receive_message(&self, new: &NewInboundMessage) -> Result<Receipt, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO hl7_messages (id, sender, control_id, received_at, peer, message_type, \
             version, content_sha256, raw, patient_key, status, peer_certificate) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received', $11) \
             ON CONFLICT (sender, control_id) DO NOTHING",
        )
        .bind(new.id.clone())
        .bind(new.sender.clone())
        .bind(new.control_id.clone())
        .bind(ts(new.received_at))
        .bind(new.peer.clone())
        .bind(new.message_type.clone())
        .bind(new.version.clone())
        .bind(new.content_sha256.clone())
        .bind(new.raw.clone())
        .bind(new.patient_key.clone())
        .bind(new.peer_certificate.clone())
        .execute(&mut *self.write_conn().await?)
        .await?;
        if inserted.rows_affected() == 1 {
            let stored = self
                .inbound_message(&new.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("message {} vanished", new.id)))?;
            return Ok(Receipt::New(stored));
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hl7_messages WHERE sender = $1 AND control_id = $2"
        ))
        .bind(new.sender.clone())
        .bind(new.control_id.clone())
        .fetch_one(&mut *self.conn().await?)
        .await?;
        let earlier = message(&row)?;
        if earlier.status == InboxStatus::Received {
            sqlx::query("UPDATE hl7_messages SET attempts = attempts + 1 WHERE id = $1")
                .bind(earlier.arrived.id.clone())
                .execute(&mut *self.write_conn().await?)
                .await?;
        }
        Ok(Receipt::Again(earlier))
    }

    /// Records how a message's processing ended, unless a write already marked it applied.
    pub async fn finish_message(&self, id: &str, finish: &Finish) -> Result<(), StoreError> {
        let sql = if finish.status == InboxStatus::Applied {
            // A write that applied the message marked it already, with its answer, in the
            // write's own commit: then this changes nothing (and costs no flush to disk).
            "UPDATE hl7_messages SET ack = $1, finished_at = $2, \
             status = 'applied', error_code = $3, error_location = $4, error_reason = $5 \
             WHERE id = $6 AND status <> 'applied'"
        } else {
            "UPDATE hl7_messages SET ack = $1, finished_at = $2, error_code = $3, \
             error_location = $4, error_reason = $5, status = $7 \
             WHERE id = $6 AND status <> 'applied'"
        };
        let mut query = sqlx::query(sql)
            .bind(finish.ack.clone())
            .bind(ts(finish.at))
            .bind(finish.error_code.clone())
            .bind(finish.error_location.clone())
            .bind(finish.error_reason.clone())
            .bind(id.to_string());
        if finish.status != InboxStatus::Applied {
            query = query.bind(finish.status.as_str().to_string());
        }
        query.execute(&mut *self.write_conn().await?).await?;
        Ok(())
    }

    /// Counts one more attempt at a message (a replay from the dead-letter list).
    pub async fn count_message_attempt(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE hl7_messages SET attempts = attempts + 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    pub async fn inbound_message(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM hl7_messages WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .as_ref()
            .map(message)
            .transpose()
    }

    /// A page of received messages, newest first.
    pub async fn inbound_messages_page(
        &self,
        filter: &InboxFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<InboundMessage>, StoreError> {
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
        if let Some(sender) = &filter.sender {
            params.push(sender.clone());
            conditions.push(format!("sender = ${}", params.len()));
        }
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(1000)
        };
        self.page(
            PagedQuery {
                from: "hl7_messages",
                columns: COLUMNS,
                order: Order {
                    key: "received_at",
                    id: "id",
                    descending: true,
                    numeric: false,
                },
                conditions,
                params,
            },
            after,
            limit,
            |rows: &[AnyRow]| rows.iter().map(message).collect(),
        )
        .await
    }
}

/// How many messages wait on each side of the HL7 interface, for monitoring: the outbox's owed
/// (pending) and refused-by-the-receiver (rejected) per destination, and the inbox's dead
/// letters (failed: content wrong, until replayed) and messages received but not finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDepths {
    /// (destination, status, count), pending and rejected only.
    pub outbox: Vec<(String, String, i64)>,
    /// (status, count): failed and received.
    pub inbox: Vec<(String, i64)>,
}

impl Store {
    /// The interface's queue depths (see [`QueueDepths`]): counts over the status indexes of
    /// the rows that still wait, not a scan of every message ever handled.
    pub async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        let mut conn = self.conn().await?;
        let outbox = sqlx::query(
            "SELECT destination, status, COUNT(*) AS n FROM hl7_outbox \
             WHERE status IN ('pending', 'rejected') GROUP BY destination, status",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok((
                text(row, "destination")?,
                text(row, "status")?,
                row.try_get("n")?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let inbox = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM hl7_messages \
             WHERE status IN ('failed', 'received') GROUP BY status",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((text(row, "status")?, row.try_get("n")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(QueueDepths { outbox, inbox })
    }
}
