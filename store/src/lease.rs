//! One writer per chain on Postgres: a session-level advisory lock, held on a connection of its own, elects
//! the writer; an epoch (the fencing token in `writer_leases`, bumped by every new holder) is checked in
//! every indexing transaction of the writer's store handle, so that a writer that lost its lock cannot
//! commit afterwards.
//!
//! The lock's session is kept alive by a ping every `liveness / 4` and set to end after `liveness` idle
//! (`idle_session_timeout`): a writer that dies closes it at once; one that stops (SIGSTOP, a long pause, a
//! partition) loses it within `liveness`, and a standby then takes over.

use std::time::Duration;

use sqlx::{ConnectOptions, Connection, postgres::PgConnection};
use tokio::sync::watch;

use crate::{Error, PgStore, Result, now, rows::i};

/// The writer's lease of one chain; dropping it releases the lock (the connection closes).
#[derive(Debug)]
pub struct WriterLease {
    /// Chain id.
    pub chain_id: u64,
    /// The fencing token of this tenure.
    pub epoch: i64,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WriterLease {
    /// Resolves when the lock's session is gone (its ping failed): another process may be the writer now.
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|l| *l).await;
    }
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The advisory-lock key of a chain's writer (a fixed prefix, so that it cannot meet another application's
/// keys by chance).
fn lock_key(chain_id: u64) -> i64 {
    (0x486f_6c64_i64 << 32) | (chain_id & 0xffff_ffff) as i64
}

/// Who holds a chain's writer lease, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRecord {
    /// Current epoch.
    pub epoch: i64,
    /// Who acquired it last.
    pub holder: String,
    /// Unix seconds.
    pub since: i64,
}

impl PgStore {
    /// Try to become the writer of `chain_id`: `None` if another process holds the lock. On success the
    /// epoch is bumped (and recorded with `holder`) and this store handle's indexing transactions are fenced
    /// with it ([`PgStore::fence_writes`]).
    pub async fn try_acquire_writer(
        &self,
        chain_id: u64,
        holder: &str,
        liveness: Duration,
    ) -> Result<Option<WriterLease>> {
        let opts = self.pool().connect_options().as_ref().clone();
        let mut conn: PgConnection = opts.connect().await?;
        let ms = liveness.as_millis().max(1000);
        sqlx::query(&format!("SET idle_session_timeout = {ms}")).execute(&mut conn).await?;
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(chain_id))
            .fetch_one(&mut conn)
            .await?;
        if !got {
            conn.close().await?;
            return Ok(None);
        }
        let (epoch,): (i64,) = sqlx::query_as(
            "INSERT INTO writer_leases (chain_id, epoch, holder, since) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (chain_id) DO UPDATE SET epoch = writer_leases.epoch + 1, holder = excluded.holder, \
             since = excluded.since RETURNING epoch",
        )
        .bind(i(chain_id))
        .bind(holder)
        .bind(i(now()))
        .fetch_one(self.pool())
        .await?;
        self.fence_writes(chain_id, epoch, liveness);
        let (tx, lost) = watch::channel(false);
        let every = liveness / 4;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut conn).await {
                    tracing::warn!(chain_id, error = %e, "the writer lock's session is gone");
                    let _ = tx.send(true);
                    return;
                }
            }
        });
        Ok(Some(WriterLease { chain_id, epoch, lost, task }))
    }

    /// The recorded lease of a chain.
    pub async fn writer_lease(&self, chain_id: u64) -> Result<Option<LeaseRecord>> {
        Ok(sqlx::query_as("SELECT epoch, holder, since FROM writer_leases WHERE chain_id = $1")
            .bind(i(chain_id))
            .fetch_optional(self.pool())
            .await?)
    }

    /// Fence this handle (and its clones): every transaction it begins checks that `chain_id`'s epoch is
    /// still `epoch`, and fails with [`Error::Fenced`] otherwise. A transaction left idle for `liveness`
    /// (the process paused mid-transaction) is ended by Postgres, which releases its hold on the lease row,
    /// so that a standby's takeover is not blocked by it (and the paused transaction never commits).
    pub fn fence_writes(&self, chain_id: u64, epoch: i64, liveness: Duration) {
        *self.fence.lock().expect("not poisoned") = Some((chain_id, epoch, liveness));
    }

    /// The fence check of a new transaction (see [`PgStore::fence_writes`]): the lease row is read `FOR
    /// SHARE`, so a new holder's epoch bump waits for this transaction, and this one sees a bump committed
    /// before it.
    pub(crate) async fn check_fence(&self, conn: &mut PgConnection) -> Result<()> {
        let Some((chain_id, epoch, liveness)) = *self.fence.lock().expect("not poisoned") else {
            return Ok(());
        };
        // Only a paused client is idle inside an indexing transaction: each holds no RPC call, only SQL.
        let ms = liveness.as_millis().max(1000);
        sqlx::query(&format!("SET LOCAL idle_in_transaction_session_timeout = {ms}"))
            .execute(&mut *conn)
            .await?;
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT epoch FROM writer_leases WHERE chain_id = $1 FOR SHARE")
                .bind(i(chain_id))
                .fetch_optional(conn)
                .await?;
        match row {
            Some((current,)) if current == epoch => Ok(()),
            other => Err(Error::Fenced { chain_id, epoch, current: other.map(|(c,)| c) }),
        }
    }
}
