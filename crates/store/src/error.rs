//! What can go wrong when reading or writing the record.

/// A store failure, worded for the person whose write it was.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the record since the caller read it.
    #[error("{what} was changed by someone else since version {expected} was read (it is now at version {current}); reload it and try again")]
    Conflict {
        what: String,
        expected: u64,
        current: u64,
    },
    /// A record with the same natural key exists (e.g. the MRN at that site).
    #[error("{0}")]
    Duplicate(String),
    /// The received message was applied already (by an earlier delivery of the same message).
    #[error("message {0} was applied already")]
    AlreadyApplied(String),
    /// A change in a batch did not go through, so the batch was rolled back whole: its changes
    /// are to be made again one at a time.
    #[error("a change in the batch did not go through; the batch was rolled back")]
    Spoiled,
    #[error("{0} not found")]
    NotFound(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back; never expected, always logged.
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database is not answering (down, unreachable, or every connection busy past the
    /// pool's wait): the request may be tried again later; nothing was written.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }

    pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
        matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
