//! Fresh, real, migrated databases for tests: a SQLite file in a temporary directory, and a new
//! PostgreSQL database on the server named by `SELDINGER_TEST_POSTGRES_URL`.
//!
//! Without that variable the PostgreSQL half is skipped with a note, unless
//! `SELDINGER_REQUIRE_POSTGRES=1` (set by `scripts/test`, so CI never skips it silently).

use crate::{Engine, Store};
use tempfile::TempDir;

/// A migrated store that lives as long as this value (the SQLite file is deleted on drop).
pub struct TestDatabase {
    pub store: Store,
    /// The URL the store was opened with, for a second connection or a server under test.
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    pub fn engine(&self) -> Engine {
        self.store.engine()
    }

    /// The same (migrated) database reached at `url` instead: through a proxy a test can cut.
    pub async fn reached_at(&self, url: &str) -> TestDatabase {
        TestDatabase {
            store: Store::connect(url)
                .await
                .expect("connect at the other address"),
            url: url.to_string(),
            _dir: None,
        }
    }
}

pub async fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    let store = Store::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    TestDatabase {
        store,
        url,
        _dir: Some(dir),
    }
}

fn postgres_required() -> bool {
    std::env::var("SELDINGER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A brand-new PostgreSQL database, or `None` when no server is configured (and none is required).
pub async fn postgres() -> Option<TestDatabase> {
    let admin_url = match std::env::var("SELDINGER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if postgres_required() => {
            panic!("SELDINGER_REQUIRE_POSTGRES=1 but SELDINGER_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("note: SELDINGER_TEST_POSTGRES_URL not set; PostgreSQL half of this test skipped (scripts/test sets it)");
            return None;
        }
    };
    let name = format!("seldinger_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Store::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL for tests: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin.pool)
        .await
        .expect("create test database");
    admin.close().await;
    let url = with_database(&admin_url, &name);
    let store = Store::connect(&url)
        .await
        .expect("connect to test database");
    store.migrate().await.expect("migrate PostgreSQL");
    Some(TestDatabase {
        store,
        url,
        _dir: None,
    })
}

/// Every engine available: SQLite always, PostgreSQL when configured.
pub async fn engines() -> Vec<TestDatabase> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

impl Store {
    /// Statements per second one connection runs (`SELECT 1`, each awaited): the benchmarks'
    /// yardstick for a change that takes several statements.
    pub async fn statement_rate(&self, seconds: f64) -> Result<f64, crate::StoreError> {
        let mut conn = self.conn().await?;
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            n += 1;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    /// Runs arbitrary SQL: only for tests that prove what the database itself refuses.
    pub async fn execute_raw_for_tests(&self, sql: &str) -> Result<u64, crate::StoreError> {
        Ok(sqlx::query(sql)
            .execute(&mut *self.conn().await?)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swaps_the_database_in_a_url() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}

/// Synthetic clinical records for tests of other crates (a booked case for a dose report to
/// find, say), made through the same store calls the application uses.
pub mod records {
    use crate::Store;
    use chrono::{DateTime, Utc};
    use seldinger_domain::lifecycle::{Case, CaseEvent};
    use seldinger_domain::patient::{PatientDetails, PatientInput};
    use seldinger_domain::referral::{ReferralDetails, ReferralInput, Urgency};
    use seldinger_domain::{
        Actor, CaseId, EventMeta, PatientId, ProcedureCatalogue, Referral, ReferralId, RoomId,
    };
    use uuid::Uuid;

    pub fn catalogue() -> ProcedureCatalogue {
        ProcedureCatalogue::parse(
            include_str!("../../../catalog/procedures.toml"),
            "procedures.toml",
        )
        .expect("shipped catalogue")
    }

    fn meta(at: DateTime<Utc>) -> EventMeta {
        EventMeta {
            actor: Actor::parse("test.nurse").expect("actor"),
            at,
            reason: Some("test".into()),
        }
    }

    /// Registers a patient with this MRN at site MAIN.
    pub async fn patient(store: &Store, mrn: &str, at: DateTime<Utc>) -> PatientId {
        patient_named(store, mrn, "Synthetic", at).await
    }

    /// Registers a patient with this MRN and family name at site MAIN.
    pub async fn patient_named(
        store: &Store,
        mrn: &str,
        family: &str,
        at: DateTime<Utc>,
    ) -> PatientId {
        let input = PatientInput {
            site: "MAIN".into(),
            mrn: mrn.into(),
            family_name: family.into(),
            given_name: "Sam".into(),
            birth_date: "1955-03-02".into(),
            sex: "male".into(),
            ..Default::default()
        };
        let id = PatientId(Uuid::new_v4());
        let details = PatientDetails::parse(&input, at).expect("valid patient");
        store
            .register_patient(id, details, &meta(at), &[])
            .await
            .expect("registered");
        id
    }

    /// A referred case for an existing patient.
    pub async fn referred_case(
        store: &Store,
        patient_id: PatientId,
        procedure: &str,
        at: DateTime<Utc>,
    ) -> Case {
        let input = ReferralInput {
            patient_id: patient_id.to_string(),
            requesting_clinician: "Dr Ward".into(),
            requesting_service: "oncology".into(),
            indication: "synthetic indication".into(),
            requested_procedure: Some(procedure.into()),
            urgency: "routine".into(),
            ..Default::default()
        };
        let details = ReferralDetails::parse(&input, &catalogue()).expect("valid referral");
        let referral = Referral {
            id: ReferralId(Uuid::new_v4()),
            patient_id,
            case_id: CaseId(Uuid::new_v4()),
            received_at: at,
            details,
            version: 1,
        };
        let m = meta(at);
        let (case, opening) = Case::open(
            referral.case_id,
            patient_id,
            referral.id,
            Urgency::Routine,
            None,
            &m,
        );
        store
            .create_referral(&referral, &case, &opening, &m, &[])
            .await
            .expect("referral stored");
        case
    }

    /// Applies and records one event as the test user.
    pub async fn step(
        store: &Store,
        case: &Case,
        event: CaseEvent,
        at: DateTime<Utc>,
    ) -> Result<Case, crate::StoreError> {
        let m = meta(at);
        let decided = case.decide(event, &m, &catalogue()).expect("allowed");
        let mut after = case.clone();
        after.apply(&decided, &m).expect("applies");
        store
            .record_case_event(&after, case.version, &decided, &m, Default::default())
            .await?;
        Ok(after)
    }

    /// A case for a new patient with this MRN: vetted for a fluoroscopy-guided embolization and
    /// booked into `room` from `start` for `minutes`.
    pub async fn booked_case(
        store: &Store,
        mrn: &str,
        room: &str,
        start: DateTime<Utc>,
        minutes: u32,
    ) -> Case {
        let patient = patient(store, mrn, start).await;
        book(store, patient, room, start, minutes, None).await
    }

    /// As [`booked_case`], for an existing patient, with the accession number and Study
    /// Instance UID the application assigns at booking.
    pub async fn booked_case_for(
        store: &Store,
        patient: PatientId,
        room: &str,
        start: DateTime<Utc>,
        minutes: u32,
    ) -> Case {
        let study =
            seldinger_domain::lifecycle::StudyIdentity::new(start.date_naive(), Uuid::new_v4());
        book(store, patient, room, start, minutes, Some(study)).await
    }

    async fn book(
        store: &Store,
        patient: PatientId,
        room: &str,
        start: DateTime<Utc>,
        minutes: u32,
        study: Option<seldinger_domain::lifecycle::StudyIdentity>,
    ) -> Case {
        let case = referred_case(store, patient, "haemorrhage-embolization", start).await;
        let accept = CaseEvent::Accept {
            procedure_id: seldinger_domain::ProcedureId::parse("haemorrhage-embolization")
                .expect("id"),
            modality: seldinger_domain::GuidanceModality::Fluoroscopy,
            sedation: seldinger_domain::Sedation::Local,
            priority: Urgency::Routine,
            iodinated_contrast: false,
            access_route: None,
            sheath_french: None,
        };
        let case = step(store, &case, accept, start).await.expect("accept");
        let schedule = CaseEvent::Schedule {
            room: RoomId::parse(room).expect("room"),
            start,
            duration_minutes: Some(minutes),
            study,
            performing_physician: None,
        };
        step(store, &case, schedule, start).await.expect("schedule")
    }

    /// An audit row of `username` reading case number `n` (`case-{n}`), as a nurse.
    pub fn case_read(username: &str, action: &str, n: usize) -> crate::AuditEntry {
        crate::AuditEntry {
            seq: 0,
            at: crate::testing::test_clock(),
            username: username.into(),
            role: "ir_nurse".into(),
            action: action.into(),
            resource_type: "case".into(),
            resource_id: Some(format!("case-{n}")),
            patient_id: None,
            client_addr: "127.0.0.1".into(),
            outcome: "allowed".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        }
    }
}

/// A TCP proxy between the server and PostgreSQL that the test cuts (every connection dropped,
/// new ones refused) and restores on the same port: the database "gone" without stopping the
/// PostgreSQL server other tests share.
pub struct CuttableProxy {
    addr: std::net::SocketAddr,
    target: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CuttableProxy {
    /// A proxy before this PostgreSQL database, and the database's URL through it.
    pub async fn before(db: &TestDatabase) -> (CuttableProxy, String) {
        let rest = db.url.split_once("://").map_or("", |(_, rest)| rest);
        let at = rest.rsplit_once('@').map_or(rest, |(_, at)| at);
        let host_port = at.split(['/', '?']).next().unwrap_or_default();
        let target = if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:5432")
        };
        let proxy = CuttableProxy::start(target).await;
        // Only the address after any credentials is replaced.
        let at_start = db.url.len() - at.len();
        let proxied = format!(
            "{}{}",
            &db.url[..at_start],
            at.replacen(host_port, &proxy.addr.to_string(), 1)
        );
        (proxy, proxied)
    }

    async fn start(target: String) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut proxy = CuttableProxy {
            addr: listener.local_addr().expect("address"),
            target,
            tasks: Default::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("tasks").push(pipe);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }

    /// Takes connections again, on the same port.
    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("the proxy's port again");
        self.serve(listener);
    }
}

/// Where a record's projection and its events disagree (a half-written change): each row whose
/// version is not its stream's latest, and each stream with events but no row. Empty when whole.
pub async fn projections_out_of_step(store: &Store) -> Vec<String> {
    let mut found = Vec::new();
    let mut conn = store.conn().await.expect("connection");
    for (table, stream) in [
        ("patients", "patient"),
        ("referrals", "referral"),
        ("cases", "case"),
        ("follow_up_tasks", "follow_up_task"),
    ] {
        let behind = format!(
            "SELECT t.id AS id FROM {table} t WHERE t.version <> \
             (SELECT MAX(e.stream_version) FROM events e \
              WHERE e.stream_type = '{stream}' AND e.stream_id = t.id) \
             OR NOT EXISTS (SELECT 1 FROM events e \
              WHERE e.stream_type = '{stream}' AND e.stream_id = t.id)"
        );
        let orphaned = format!(
            "SELECT DISTINCT e.stream_id AS id FROM events e WHERE e.stream_type = '{stream}' \
             AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = e.stream_id)"
        );
        for (sql, what) in [
            (behind, "row not at its latest event"),
            (orphaned, "events without a row"),
        ] {
            for row in sqlx::query(&sql)
                .fetch_all(&mut *conn)
                .await
                .expect("integrity query")
            {
                let id: String = sqlx::Row::try_get(&row, "id").expect("id");
                found.push(format!("{table} {id}: {what}"));
            }
        }
    }
    found
}

/// A statement a list ran, with the values bound to it, for its query plan.
#[derive(Debug, Clone)]
pub struct RecordedStatement {
    pub sql: String,
    pub params: Vec<String>,
}

static RECORDED: std::sync::Mutex<Option<Vec<RecordedStatement>>> = std::sync::Mutex::new(None);

/// From now on, the lists' statements (paged and capped) are kept for [`recorded_statements`].
/// Process-wide: a test that records runs alone in its binary.
pub fn record_statements() {
    *RECORDED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// The statements kept since [`record_statements`]; recording stops.
pub fn recorded_statements() -> Vec<RecordedStatement> {
    RECORDED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default()
}

pub(crate) fn record_statement(sql: &str, params: &[String]) {
    if let Some(kept) = RECORDED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        kept.push(RecordedStatement {
            sql: sql.to_string(),
            params: params.to_vec(),
        });
    }
}

/// How the engine would run `statement`, a line per plan step. On PostgreSQL sequential scans
/// are priced out first (`enable_seqscan = off`), so a `Seq Scan` left in the plan means no
/// index can serve the statement — whatever the table's size, which a test database cannot have.
pub async fn query_plan(store: &Store, statement: &RecordedStatement) -> Vec<String> {
    use sqlx::Row;
    let mut conn = store.conn().await.expect("connection");
    let explain = match store.engine() {
        Engine::Sqlite => format!("EXPLAIN QUERY PLAN {}", statement.sql),
        Engine::Postgres => {
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut *conn)
                .await
                .expect("price out sequential scans");
            format!("EXPLAIN {}", statement.sql)
        }
    };
    let mut query = sqlx::query(&explain);
    for p in &statement.params {
        query = query.bind(p.clone());
    }
    let rows = query
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("explain {}: {e}", statement.sql));
    if store.engine() == Engine::Postgres {
        sqlx::query("RESET enable_seqscan")
            .execute(&mut *conn)
            .await
            .expect("reset");
    }
    rows.iter()
        .map(|row| match store.engine() {
            Engine::Sqlite => row.try_get::<String, _>("detail"),
            Engine::Postgres => row.try_get::<String, _>(0),
        })
        .collect::<Result<_, _>>()
        .expect("plan text")
}

/// The instant the tests that run the real binary or the real listeners start their clock at:
/// `SELDINGER_TEST_CLOCK` (RFC 3339) if set — to run the suite as on a Saturday, a Monday or at
/// 23:50 UTC — else a fixed working Thursday morning (after the HL7 fixtures' result times), so no answer depends on the day CI runs.
pub fn test_clock() -> chrono::DateTime<chrono::Utc> {
    const DEFAULT: &str = "2026-12-03T09:30:00Z";
    let text = std::env::var("SELDINGER_TEST_CLOCK")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| DEFAULT.to_string());
    chrono::DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("SELDINGER_TEST_CLOCK '{text}' is not an RFC 3339 instant: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The tests' clock now: [`test_clock`] when the test process first asked, running on at the
/// machine's pace. A server a test starts is given this (`SELDINGER_CLOCK`), so the test, its
/// servers and a second node started later all agree on the time.
pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    static STARTED: std::sync::OnceLock<(chrono::DateTime<chrono::Utc>, std::time::Instant)> =
        std::sync::OnceLock::new();
    let (start, since) = STARTED.get_or_init(|| (test_clock(), std::time::Instant::now()));
    *start + chrono::Duration::from_std(since.elapsed()).unwrap_or_default()
}
