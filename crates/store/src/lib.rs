//! Seldinger's persistence: one code path over SQLite (the embedded default) and PostgreSQL.
//!
//! Every change is appended to the `events` table (append-only, enforced by triggers) and the
//! current-state projection is written in the same transaction, so what is read is always what
//! the events say. Optimistic concurrency: each stream's events are numbered, and a write names
//! the version it was based on; a stale write fails on the unique (stream, version) key and on
//! the projection's `WHERE version = expected`, and is refused, never merged.

mod access;
mod adverse_events;
mod devices;
mod dose;
mod error;
mod followup;
mod inbox;
mod outbox;
mod page;
mod performed_steps;
mod quality;
mod records;
mod refused_arrivals;
mod reports;
mod scope;
#[cfg(feature = "test-support")]
pub mod testing;

pub use access::{ApiToken, AuditEntry, AuditFilter, Session, SignInStrikes, User};
pub use adverse_events::AdverseEventFilter;
pub use devices::DeviceFilter;
pub use dose::{DoseReportFilter, NewDoseReport, StoredDoseReport};
pub use error::StoreError;
pub use followup::{FollowUpFilter, Standing};
pub use inbox::{
    Claim, Finish, InboundMessage, InboxFilter, InboxStatus, NewInboundMessage, QueueDepths,
    Receipt,
};
pub use outbox::{NewOutboundMessage, OutboundMessage, OutboxCount, OutboxFilter, OutboxStatus};
pub use page::{Cursor, Page};
pub use performed_steps::StepMessage;
pub use records::{
    CaseFilter, FiledReferral, PatientFilter, RecordedEvent, ReferralFilter, WithCaseEvent,
};
pub use refused_arrivals::{RefusedArrival, RefusedArrivals, REFUSED_HEAD_BYTES};
pub use scope::Record;
pub use seldinger_domain::access::RowScope;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::OwnedMappedMutexGuard;

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

/// A connection pool on one engine, with the repository operations Seldinger needs; or, for a
/// [`Batch`], one open transaction every operation runs in (see [`Tx`] for its writes).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The connections writes use, apart from the readers' pool, so a write never queues for
    /// a connection behind a hundred reads (every audited page view is a write): SQLite's one
    /// writer, a few on PostgreSQL.
    writer_pool: AnyPool,
    engine: Engine,
    batch: Option<BatchTransaction>,
    /// In a batch: set when a write in it did not commit (see [`Tx`]).
    spoiled: Arc<AtomicBool>,
    /// Set when PostgreSQL was last found unreachable, cleared when a connection is had again:
    /// while set, a request waits only briefly for one, so an outage is answered at once.
    unreachable: Arc<AtomicBool>,
    /// SQLite has one writer at a time: this process's writers take turns here before they take
    /// a connection, rather than each holding one of the few while SQLite's busy handler sleeps
    /// (which left readers, health checks included, waiting for a connection).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Audit entries waiting to be committed together (see `append_audit_batch`).
    audit_group: Arc<AuditGroup>,
}

/// Audit entries appended at the same moment, and the turn to lead their commit.
#[derive(Default)]
pub(crate) struct AuditGroup {
    #[allow(clippy::type_complexity)]
    pub(crate) waiting: std::sync::Mutex<
        Vec<(
            Vec<AuditEntry>,
            tokio::sync::oneshot::Sender<Result<(), StoreError>>,
        )>,
    >,
    pub(crate) leader: Arc<tokio::sync::Mutex<()>>,
}

/// How long a write waits for its turn on SQLite: as long as SQLite's own busy timeout.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

type BatchTransaction = Arc<tokio::sync::Mutex<Option<sqlx::Transaction<'static, sqlx::Any>>>>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .field("batch", &self.batch.is_some())
            .finish()
    }
}

/// The connection an operation runs on: one from the pool, or the batch's transaction.
pub(crate) enum Conn {
    Pooled(PoolConnection<sqlx::Any>),
    /// SQLite, for a write: taken once this process's turn to write came (see `write_conn`).
    Writer {
        conn: PoolConnection<sqlx::Any>,
        _turn: tokio::sync::OwnedMutexGuard<()>,
    },
    Batch(OwnedMappedMutexGuard<Option<sqlx::Transaction<'static, sqlx::Any>>, AnyConnection>),
}

impl std::ops::Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Pooled(c) | Conn::Writer { conn: c, .. } => c,
            Conn::Batch(c) => c,
        }
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(c) | Conn::Writer { conn: c, .. } => c,
            Conn::Batch(c) => c,
        }
    }
}

/// A write's transaction. Outside a batch, its own (`BEGIN` … `COMMIT`). In a batch, the
/// batch's, with no savepoint of its own (two statements fewer per write): a write that does
/// not commit — refused, failed, or rolled back — spoils the batch, which then cannot commit;
/// its owner rolls it back and makes its changes again one at a time.
pub(crate) enum Tx<'c> {
    Own(sqlx::Transaction<'c, sqlx::Any>),
    InBatch(&'c mut AnyConnection, SpoilUnlessCommitted),
}

/// Spoils its batch when dropped, unless the write it belongs to committed.
pub(crate) struct SpoilUnlessCommitted(Option<Arc<AtomicBool>>);

impl SpoilUnlessCommitted {
    fn committed(mut self) {
        self.0 = None;
    }
}

impl Drop for SpoilUnlessCommitted {
    fn drop(&mut self) {
        // Left without a commit (an error returned early, or a rollback): its writes stay in
        // the batch's transaction, so the batch must not commit.
        if let Some(spoiled) = &self.0 {
            spoiled.store(true, Ordering::SeqCst);
        }
    }
}

impl Tx<'_> {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Own(tx) => tx.commit().await?,
            Tx::InBatch(_, guard) => guard.committed(),
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        // In a batch, dropping the guard spoils the batch: that is its rollback.
        if let Tx::Own(tx) = self {
            tx.rollback().await?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Tx::Own(tx) => tx,
            Tx::InBatch(conn, _) => conn,
        }
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Tx::Own(tx) => tx,
            Tx::InBatch(conn, _) => conn,
        }
    }
}

/// Many changes made in one transaction and made durable by one commit: each operation of the
/// batch's [`Store`] runs inside it, later operations read what earlier ones wrote, and
/// nothing is visible to anyone else, or durable, until [`Batch::commit`]. A write in it that
/// does not go through spoils it (see [`Tx`]): its commit is then refused
/// ([`StoreError::Spoiled`]) and everything rolled back. Dropped without a commit, it is rolled
/// back. Why: one flush per batch instead of one per change (HL7 messages, decision 0006).
pub struct Batch {
    store: Store,
}

impl Batch {
    /// The store whose every operation runs in this batch.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Commits every change of the batch at once (one flush).
    pub async fn commit(self) -> Result<(), StoreError> {
        let taken = match &self.store.batch {
            Some(batch) => batch.lock().await.take(),
            None => None,
        };
        match taken {
            Some(tx) if self.store.spoiled.load(Ordering::SeqCst) => {
                tx.rollback().await?;
                Err(StoreError::Spoiled)
            }
            Some(mut tx) => {
                // PostgreSQL answers COMMIT of a transaction a failed statement aborted with a
                // rollback, not an error: ask first, so a lost batch is never reported committed.
                // (SQLite keeps its transaction after a failed statement; one it rolled back
                // itself — disk full, I/O error — makes COMMIT fail.)
                if self.store.engine == Engine::Postgres {
                    sqlx::query("SELECT 1").execute(&mut *tx).await?;
                }
                Ok(tx.commit().await?)
            }
            None => Err(StoreError::Config("the batch was already finished".into())),
        }
    }
}

/// How long a request waits for a PostgreSQL connection before the store says the database is
/// unavailable.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// PostgreSQL connections for writes, beside the readers' 16.
const POSTGRES_WRITERS: u32 = 4;

/// The same wait once the database was found unreachable, until it answers again.
const POOL_WAIT_WHILE_UNREACHABLE: std::time::Duration = std::time::Duration::from_millis(300);

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        let sqlite = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
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
                })
        };
        // A request waits at most POOL_WAIT for a PostgreSQL connection: with the server gone
        // it is answered "unavailable, retry" in seconds rather than hanging on the pool.
        let open = async |on_sqlite: u32, on_postgres: u32| {
            let options = match engine {
                Engine::Sqlite => sqlite(on_sqlite),
                Engine::Postgres => AnyPoolOptions::new()
                    .max_connections(on_postgres)
                    .acquire_timeout(POOL_WAIT),
            };
            options.connect(url).await.map_err(|e| StoreError::Connect {
                url: redact(url),
                source: e,
            })
        };
        // SQLite allows one writer at a time; a few connections serve concurrent readers.
        let pool = open(8, 16).await?;
        // Writes have connections of their own (every audited page view writes): SQLite's one
        // writer, a few on PostgreSQL.
        let writer_pool = open(1, POSTGRES_WRITERS).await?;
        Ok(Store {
            pool,
            writer_pool,
            engine,
            batch: None,
            spoiled: Arc::default(),
            unreachable: Arc::default(),
            writer: Arc::default(),
            audit_group: Arc::default(),
        })
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
        self.writer_pool.close().await;
        self.pool.close().await;
    }

    /// Whether the database answers (health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Copies the embedded SQLite database, while it serves, into a new file at `to` (one
    /// consistent snapshot: SQLite's `VACUUM INTO`), written beside it first and renamed only
    /// once the copy passes SQLite's integrity check, so a file at `to` is always whole.
    /// PostgreSQL is backed up with its own tools (docs/deploy.md): refused here.
    pub async fn backup_to(&self, to: &Path) -> Result<(), StoreError> {
        if self.engine != Engine::Sqlite {
            return Err(StoreError::Config(
                "PostgreSQL is backed up with pg_basebackup and WAL archiving (docs/deploy.md), not by Seldinger".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Config(format!(
                "{} exists already: a backup never overwrites a file",
                to.display()
            )));
        }
        let partial = to.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let mut conn = self.conn().await?;
        sqlx::query("VACUUM INTO $1")
            .bind(partial.display().to_string())
            .execute(&mut *conn)
            .await?;
        // Checked through this connection, attached: opening it as a store would turn it to WAL.
        sqlx::query("ATTACH DATABASE $1 AS backup_copy")
            .bind(partial.display().to_string())
            .execute(&mut *conn)
            .await?;
        let verdict: Result<String, StoreError> = async {
            Ok(sqlx::query("PRAGMA backup_copy.integrity_check")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?)
        }
        .await;
        sqlx::query("DETACH DATABASE backup_copy")
            .execute(&mut *conn)
            .await?;
        let verdict = verdict?;
        if verdict != "ok" {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Corrupt(format!(
                "the copy failed SQLite's integrity check: {verdict}"
            )));
        }
        std::fs::rename(&partial, to).map_err(|e| {
            StoreError::Corrupt(format!(
                "renaming the checked copy to {}: {e}",
                to.display()
            ))
        })?;
        Ok(())
    }

    /// The department's change sequence (migration 0023): it moves with every committed event,
    /// performed step or room, so a polling screen compares it instead of rebuilding itself.
    pub async fn change_sequence(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM change_sequence WHERE id = 1")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get("seq")?)
    }

    /// Opens a batch: a transaction that every operation of its store runs in, until committed.
    /// On SQLite it takes the write lock at once, so a read inside it never has to be upgraded.
    pub async fn begin_batch(&self) -> Result<Batch, StoreError> {
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        };
        Ok(Batch {
            store: Store {
                pool: self.pool.clone(),
                writer_pool: self.writer_pool.clone(),
                engine: self.engine,
                batch: Some(Arc::new(tokio::sync::Mutex::new(Some(tx)))),
                spoiled: Arc::default(),
                unreachable: self.unreachable.clone(),
                writer: self.writer.clone(),
                audit_group: self.audit_group.clone(),
            },
        })
    }

    /// Marks the batch this store runs in as not to be committed: its owner rolls it back and
    /// makes its changes again one at a time (for a case only that way handles well). Nothing
    /// outside a batch.
    pub fn spoil_batch(&self) {
        if self.batch.is_some() {
            self.spoiled.store(true, Ordering::SeqCst);
        }
    }

    /// Whether this store runs in a batch (its changes wait for the batch's commit).
    pub fn in_batch(&self) -> bool {
        self.batch.is_some()
    }

    /// A write's transaction on `conn` (see [`Tx`]).
    pub(crate) async fn begin<'c>(&self, conn: &'c mut Conn) -> Result<Tx<'c>, StoreError> {
        Ok(match self.batch {
            Some(_) => Tx::InBatch(conn, SpoilUnlessCommitted(Some(self.spoiled.clone()))),
            None => Tx::Own(sqlx::Connection::begin(&mut **conn).await?),
        })
    }

    /// A connection for a write, from the writers' own pool outside a batch (so a write never
    /// queues behind reads); on SQLite also taken after this process's earlier writes are done
    /// (writes wait their turn without holding a connection). In a batch, the batch's.
    pub(crate) async fn write_conn(&self) -> Result<Conn, StoreError> {
        if self.batch.is_some() {
            return self.conn().await;
        }
        let waited = std::time::Instant::now();
        let conn = match self.engine {
            Engine::Postgres => Conn::Pooled(self.postgres_connection(&self.writer_pool).await?),
            Engine::Sqlite => {
                let turn = tokio::time::timeout(WRITER_WAIT, self.writer.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::from(sqlx::Error::PoolTimedOut))?;
                Conn::Writer {
                    conn: self.writer_pool.acquire().await?,
                    _turn: turn,
                }
            }
        };
        metrics::histogram!("seldinger_db_writer_wait_seconds")
            .record(waited.elapsed().as_secs_f64());
        Ok(conn)
    }

    /// The connection the next operation runs on.
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.batch {
            None => {
                let waited = std::time::Instant::now();
                let conn = match self.engine {
                    Engine::Postgres => self.postgres_connection(&self.pool).await?,
                    Engine::Sqlite => self.pool.acquire().await?,
                };
                // Under load a read's cost is mostly this wait, once per read a request makes.
                metrics::histogram!("seldinger_db_reader_wait_seconds")
                    .record(waited.elapsed().as_secs_f64());
                Ok(Conn::Pooled(conn))
            }
            Some(batch) => {
                tokio::sync::OwnedMutexGuard::try_map(batch.clone().lock_owned().await, |tx| {
                    tx.as_deref_mut()
                })
                .map(Conn::Batch)
                .map_err(|_| StoreError::Config("the batch was already finished".into()))
            }
        }
    }

    /// A PostgreSQL connection from `pool`, waiting briefly once the server was found gone.
    async fn postgres_connection(
        &self,
        pool: &AnyPool,
    ) -> Result<PoolConnection<sqlx::Any>, StoreError> {
        let wait = if self.unreachable.load(Ordering::Relaxed) {
            POOL_WAIT_WHILE_UNREACHABLE
        } else {
            POOL_WAIT
        };
        let acquired = tokio::time::timeout(wait, pool.acquire())
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            .map_err(StoreError::from);
        match &acquired {
            Ok(_) => self.unreachable.store(false, Ordering::Relaxed),
            Err(e) if e.is_unavailable() => self.unreachable.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
        acquired
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
    #[cfg(feature = "test-support")]
    testing::record_statement(sql, params);
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
