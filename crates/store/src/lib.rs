//! Seldinger's persistence: one code path over SQLite (the embedded default) and PostgreSQL.
//!
//! Every change is appended to the `events` table (append-only, enforced by triggers) and the
//! current-state projection is written in the same transaction, so what is read is always what
//! the events say. Optimistic concurrency: each stream's events are numbered, and a write names
//! the version it was based on; a stale write fails on the unique (stream, version) key and on
//! the projection's `WHERE version = expected`, and is refused, never merged.

mod access;
mod dose;
mod error;
mod followup;
mod inbox;
mod outbox;
mod page;
mod records;
mod scope;
#[cfg(feature = "test-support")]
pub mod testing;

pub use access::{ApiToken, AuditEntry, AuditFilter, Session, User};
pub use dose::{DoseReportFilter, NewDoseReport, StoredDoseReport};
pub use error::StoreError;
pub use followup::{FollowUpFilter, Standing};
pub use inbox::{
    Claim, Finish, InboundMessage, InboxFilter, InboxStatus, NewInboundMessage, Receipt,
};
pub use outbox::{NewOutboundMessage, OutboundMessage, OutboxCount, OutboxFilter, OutboxStatus};
pub use page::{Cursor, Page};
pub use records::{CaseFilter, RecordedEvent, WithCaseEvent};
pub use scope::Record;
pub use seldinger_domain::access::RowScope;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use std::path::Path;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql:// (got '{}')",
                redact(url)
            )))
        }
    }
}

/// Hides a password in a URL before it is logged or shown.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A connection pool on one engine, with the repository operations Seldinger needs.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        let options = match engine {
            // SQLite allows one writer at a time; a few connections serve concurrent readers.
            Engine::Sqlite => AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL for concurrent readers; synchronous=FULL so an acknowledged commit
                        // survives power loss, not only a process crash.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                        Ok(())
                    })
                }),
            Engine::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|e| StoreError::Connect {
                url: redact(url),
                source: e,
            })?;
        Ok(Store { pool, engine })
    }

    /// Opens (creating if needed) the SQLite database file in `data_dir`.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let file = data_dir.join("seldinger.db");
        Store::connect(&format!("sqlite://{}?mode=rwc", file.display())).await
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies the engine's migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Waits for in-flight queries, then closes every connection (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Adds `column IN (…)` for `values` to a filter built at run time (none: matches nothing).
pub(crate) fn push_in(
    column: &str,
    values: impl IntoIterator<Item = String>,
    conditions: &mut Vec<String>,
    params: &mut Vec<String>,
) {
    let mut placeholders = Vec::new();
    for value in values {
        params.push(value);
        placeholders.push(format!("${}", params.len()));
    }
    if placeholders.is_empty() {
        conditions.push("1 = 0".to_string());
    } else {
        conditions.push(format!("{column} IN ({})", placeholders.join(", ")));
    }
}

/// Runs a query with text parameters built at run time (filters), on either engine.
pub(crate) async fn fetch_with_text_params(
    conn: &mut AnyConnection,
    sql: &str,
    params: &[String],
) -> Result<Vec<AnyRow>, StoreError> {
    let mut query = sqlx::query(sql);
    for p in params {
        query = query.bind(p.clone());
    }
    Ok(query.fetch_all(conn).await?)
}

/// Timestamps are stored as fixed-width UTC text so they order correctly on both engines.
pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(value: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp '{value}': {e}")))
}

/// `WHERE a AND b …`, or nothing when there are no conditions.
pub(crate) fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String, StoreError> {
    row.try_get::<String, _>(column).map_err(StoreError::from)
}
