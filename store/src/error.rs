//! Storage errors.

/// Result alias for the storage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a store operation can fail with. A caller tells a database fault (retry) from a corrupt store or a
/// bad URL (stop) by the variant, and reaches the driver's own error through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (connection refused or lost, disk full, read-only, a constraint).
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The inline SQLite reader's connection failed (the API's order reads on SQLite).
    #[error("database (sqlite reader): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failed (or the store was migrated by a newer Holdfast).
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("corrupt store: {what}")]
    Corrupt {
        /// What could not be decoded.
        what: String,
        /// The decoder's error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// This store handle is fenced with a writer lease that another process has taken over since: it must
    /// not write (see `PgStore::try_acquire_writer`).
    #[error(
        "chain {chain_id}: this process no longer holds the writer lease (its epoch {epoch}, now {current:?}): \
         another indexer took over; write refused"
    )]
    Fenced {
        /// Chain id.
        chain_id: u64,
        /// This handle's epoch.
        epoch: i64,
        /// The recorded epoch (`None`: no lease recorded).
        current: Option<i64>,
    },
    /// The URL names no supported backend.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The lock that serialises SQLite migrations between processes could not be taken.
    #[error("cannot lock {path} to migrate the SQLite store: {source}")]
    MigrationLock {
        /// The lock file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A stored value that does not decode, with the decoder's error.
    pub(crate) fn corrupt(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Corrupt { what: what.into(), source: Some(Box::new(source)) }
    }

    /// A stored value that does not decode.
    pub(crate) fn corrupt_value(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into(), source: None }
    }
}
