//! One writer per chain on Postgres: the advisory lock elects it, and the epoch fences it. A writer whose
//! lock session ended (as Postgres ends it after `idle_session_timeout` when the writer is paused) and was
//! taken over cannot commit anything afterwards, even though it still believes it is the writer.

use std::time::{Duration, Instant};

use holdfast_store::{Error, PgStore, Storage, WriteTx};

use crate::harness::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_was_taken_over_cannot_commit() {
    let db = TestDb::postgres().await;
    // Two processes' store handles (independent pools and fences).
    let a = PgStore::connect(&db.url).await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    let liveness = Duration::from_secs(2);
    let lease_a = a.try_acquire_writer(7, "a", liveness).await.unwrap().expect("a becomes the writer");
    assert_eq!(lease_a.epoch, 1);
    assert!(b.try_acquire_writer(7, "b", liveness).await.unwrap().is_none(), "two writers of one chain");
    // Another chain is independent.
    let other = b.try_acquire_writer(8, "b", liveness).await.unwrap().expect("chain 8 is free");
    drop(other);
    let b = PgStore::connect(&db.url).await.unwrap();
    a.begin().await.unwrap().commit().await.unwrap();

    // `a` pauses in the middle of a transaction (it holds the lease row FOR SHARE); its lock session ends
    // (here: terminated, as the idle timeout would), `b` takes over: the paused transaction does not block
    // the takeover for longer than the liveness (Postgres ends it), and it never commits.
    let paused = a.begin().await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .execute(b.pool())
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let lease_b = loop {
        if let Some(l) = b.try_acquire_writer(7, "b", liveness).await.unwrap() {
            break l;
        }
        assert!(Instant::now() < deadline, "b never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(lease_b.epoch, 2);
    assert!(
        paused.commit().await.is_err(),
        "a transaction of the paused writer committed after the takeover"
    );
    assert_eq!(b.writer_lease(7).await.unwrap().unwrap().holder, "b");

    // `a` resumes and tries to write: refused, with the epochs.
    match a.begin().await {
        Err(Error::Fenced { chain_id: 7, epoch: 1, current: Some(2) }) => {}
        other => panic!("a fenced writer began a transaction: {other:?}"),
    }
    b.begin().await.unwrap().commit().await.unwrap();
    drop((lease_a, lease_b));
    a.pool().close().await;
    db.cleanup(holdfast_store::Store::Postgres(b)).await;
}
