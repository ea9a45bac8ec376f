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
        .execute(admin.pool())
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
    /// Runs arbitrary SQL: only for tests that prove what the database itself refuses.
    pub async fn execute_raw_for_tests(&self, sql: &str) -> Result<u64, crate::StoreError> {
        Ok(sqlx::query(sql).execute(self.pool()).await?.rows_affected())
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
