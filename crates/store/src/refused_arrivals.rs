//! Messages refused before their sender was established: one row per address and kind of
//! refusal, counting them, with the head of the latest. Nothing here is a message to apply or
//! replay; it is what the interface analyst reads to see who is knocking (migration 0030).

use crate::{parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// The most of a refused message kept: enough to read its header and see what it claimed.
pub const REFUSED_HEAD_BYTES: usize = 1024;

/// One refused arrival, as the interface saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedArrival {
    /// The address it came from (no port), or `file:NAME` for a batch file.
    pub peer_address: String,
    /// Why, as a short code: `unreadable`, `unknown_sender`, `address`, `certificate`.
    pub kind: String,
    /// MSH-3^MSH-4 as the message claimed it (empty when unreadable).
    pub claimed_sender: String,
    /// The whole reason, for the analyst (the sender was told less).
    pub reason: String,
    /// The address with its port (or the file), of the latest.
    pub last_peer: String,
    /// The latest one's first bytes.
    pub head: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// What the list shows of one address's refusals of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedArrivals {
    pub latest: RefusedArrival,
    pub arrivals: i64,
    pub first_at: DateTime<Utc>,
}

impl Store {
    /// Counts one refused arrival (keeping the head of the latest, capped).
    pub async fn note_refused_arrival(&self, arrival: &RefusedArrival) -> Result<(), StoreError> {
        let head = &arrival.head[..arrival.head.len().min(REFUSED_HEAD_BYTES)];
        let capped = |value: &str, most: usize| value.chars().take(most).collect::<String>();
        sqlx::query(
            "INSERT INTO hl7_refused_arrivals (peer_address, kind, claimed_sender, reason, \
             last_peer, head, arrivals, first_at, last_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) \
             ON CONFLICT (peer_address, kind) DO UPDATE SET \
             claimed_sender = excluded.claimed_sender, reason = excluded.reason, \
             last_peer = excluded.last_peer, head = excluded.head, \
             arrivals = hl7_refused_arrivals.arrivals + 1, last_at = excluded.last_at",
        )
        .bind(capped(&arrival.peer_address, 128))
        .bind(capped(&arrival.kind, 32))
        .bind(capped(&arrival.claimed_sender, 128))
        .bind(capped(&arrival.reason, 1024))
        .bind(capped(&arrival.last_peer, 160))
        .bind(head.to_vec())
        .bind(ts(arrival.at))
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    /// The refusals, most recent first, at most `limit`.
    pub async fn refused_arrivals(&self, limit: usize) -> Result<Vec<RefusedArrivals>, StoreError> {
        let rows = sqlx::query(
            "SELECT peer_address, kind, claimed_sender, reason, last_peer, head, arrivals, \
             first_at, last_at FROM hl7_refused_arrivals ORDER BY last_at DESC, peer_address, kind \
             LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RefusedArrivals {
                    latest: RefusedArrival {
                        peer_address: text(row, "peer_address")?,
                        kind: text(row, "kind")?,
                        claimed_sender: text(row, "claimed_sender")?,
                        reason: text(row, "reason")?,
                        last_peer: text(row, "last_peer")?,
                        head: row.try_get("head")?,
                        at: parse_ts(&text(row, "last_at")?)?,
                    },
                    arrivals: row.try_get("arrivals")?,
                    first_at: parse_ts(&text(row, "first_at")?)?,
                })
            })
            .collect()
    }
}
