//! The inline SQLite reader (order reads on the calling thread, without sqlx's worker-thread handoff)
//! answers exactly what the sqlx pool answers, sees every commit made before the read, and fails with typed
//! errors.

use alloy::primitives::{Address, B256, U256};
use holdfast_primitives::OrderStatus;
use holdfast_store::{Error, OrderFilter, OrderReader, SqliteStore, Store};

use crate::harness::{Chain, GEN_BATCH, TestDb, index};

const DAY: u64 = 86_400;

fn sqlite(store: &Store) -> &SqliteStore {
    match store {
        Store::Sqlite(s) => s,
        Store::Postgres(_) => panic!("not a SQLite store"),
    }
}

/// Every page of `f` through both paths, following the cursor; returns the number of orders seen.
async fn same_pages(inline: &SqliteStore, pooled: &SqliteStore, mut f: OrderFilter) -> usize {
    let mut seen = 0;
    loop {
        let a = inline.orders(&f).await.unwrap();
        let b = pooled.orders(&f).await.unwrap();
        assert_eq!(a, b, "filter {f:?}");
        seen += a.len();
        match a.last() {
            Some(o) if a.len() == f.limit as usize => {
                f.after = Some((o.locked.pos.block_number, o.locked.pos.log_index))
            }
            _ => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_reads_match_the_pool() {
    let c = Chain::start().await;
    let g = c.load_generator().await;
    let next = c.generate(g, 1, 4).await;
    // A few orders with another payer, payee and an arbiter, one of them released.
    let by = c.now().await + DAY;
    for n in 0..5u64 {
        let arbiter = if n % 2 == 0 { c.addr(3) } else { Address::ZERO };
        c.lock(1, B256::from(U256::from(next + n)), c.addr(2), 1_000 + n, arbiter, by, 60).await;
    }
    c.escrow()
        .release(B256::from(U256::from(next)), U256::from(1_000))
        .from(c.addr(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    index(&c, &store).await;
    let inline = sqlite(&store);
    assert!(inline.inline_reads());
    let pooled = inline.clone().without_inline_reads();
    assert!(!pooled.inline_reads());

    // Every order, by id alone, with its chain, with its escrow, with both; and unknown ones.
    let escrow = c.escrow;
    let total = 4 * GEN_BATCH + 5;
    for n in 1..next + 5 {
        let id = B256::from(U256::from(n));
        let a = inline.order(None, None, id).await.unwrap();
        assert!(a.is_some(), "order {n}");
        assert_eq!(a, pooled.order(None, None, id).await.unwrap());
        for (chain, esc) in [(Some(31337), None), (None, Some(escrow)), (Some(31337), Some(escrow))] {
            assert_eq!(inline.order(chain, esc, id).await.unwrap(), a, "order {n} {chain:?} {esc:?}");
            assert_eq!(pooled.order(chain, esc, id).await.unwrap(), a);
        }
    }
    for (chain, esc, n) in
        [(None, None, 0), (None, None, next + 5), (Some(1), None, 1), (None, Some(c.addr(9)), 1)]
    {
        let id = B256::from(U256::from(n));
        assert_eq!(inline.order(chain, esc, id).await.unwrap(), None);
        assert_eq!(pooled.order(chain, esc, id).await.unwrap(), None);
    }

    // Lists: every filter the API passes, paged with the cursor.
    let lock_times: Vec<u64> = inline
        .orders(&OrderFilter { limit: 500, ..Default::default() })
        .await
        .unwrap()
        .iter()
        .map(|o| o.locked.pos.block_timestamp)
        .collect();
    let (first, last) = (lock_times[0], *lock_times.last().unwrap());
    let filters = [
        OrderFilter { limit: 500, ..Default::default() },
        OrderFilter { limit: 50, ..Default::default() },
        OrderFilter { limit: 7, chain_id: Some(31337), escrow: Some(escrow), ..Default::default() },
        OrderFilter {
            limit: 50,
            payee: Some(c.addr(7)),
            status: Some(OrderStatus::Held),
            ..Default::default()
        },
        OrderFilter {
            limit: 50,
            payee: Some(c.addr(7)),
            status: Some(OrderStatus::Released),
            ..Default::default()
        },
        OrderFilter { limit: 2, payer: Some(c.addr(1)), ..Default::default() },
        OrderFilter {
            limit: 2,
            payee: Some(c.addr(2)),
            status: Some(OrderStatus::Held),
            ..Default::default()
        },
        OrderFilter { limit: 3, arbiter: Some(c.addr(3)), ..Default::default() },
        OrderFilter { limit: 50, locked_from: Some(first + 1), locked_to: Some(last), ..Default::default() },
        OrderFilter { limit: 50, payer: Some(c.addr(9)), ..Default::default() },
        OrderFilter { limit: 50, chain_id: Some(1), ..Default::default() },
    ];
    let mut counts = Vec::new();
    for f in filters {
        counts.push(same_pages(inline, &pooled, f).await);
    }
    assert_eq!(counts[0], total as usize);
    assert_eq!(counts[1], total as usize);
    assert_eq!(counts[5], 5);
    assert_eq!(counts[6], 4);
    assert_eq!(counts[7], 3);
    assert_eq!(counts[9] + counts[10], 0);
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_reads_see_the_commit_made_just_before() {
    let c = Chain::start().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let indexer = index(&c, &store).await;
    // A second store over the same file: the API of `holdfast serve`, with the indexer in another process.
    let other = db.store().await;
    let by = c.now().await + DAY;
    for n in 1..=10u8 {
        let id = B256::with_last_byte(n);
        c.lock(1, id, c.addr(2), 100, Address::ZERO, by, 60).await;
        for s in [&store, &other] {
            assert_eq!(sqlite(s).order(None, None, id).await.unwrap(), None);
        }
        indexer.sync_to_head().await.unwrap();
        // No waiting: the read right after the commit sees it, in this process and in the other store.
        for s in [&store, &other] {
            let o = sqlite(s).order(None, None, id).await.unwrap().expect("committed just before");
            assert_eq!(o.status, OrderStatus::Held);
            let page = sqlite(s).orders(&OrderFilter { limit: 100, ..Default::default() }).await.unwrap();
            assert_eq!(page.len(), usize::from(n));
        }
        c.escrow()
            .release(id, U256::from(100))
            .from(c.addr(1))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        indexer.sync_to_head().await.unwrap();
        for s in [&store, &other] {
            let o = sqlite(s).order(None, None, id).await.unwrap().unwrap();
            assert_eq!(o.status, OrderStatus::Released, "order {n}");
        }
    }
    other.close().await;
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_read_errors_are_typed() {
    let c = Chain::start().await;
    let by = c.now().await + DAY;
    c.lock(1, B256::with_last_byte(1), c.addr(2), 100, Address::ZERO, by, 60).await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    index(&c, &store).await;
    let s = sqlite(&store);
    let id = B256::with_last_byte(1);
    assert!(s.order(None, None, id).await.unwrap().is_some());

    // A state that does not decode: a corrupt store, on both paths.
    sqlx::query("UPDATE orders SET state = '{\"not\": \"a state\"}'").execute(s.pool()).await.unwrap();
    let err = s.order(None, None, id).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let err = s.clone().without_inline_reads().order(None, None, id).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");

    // A database error of the inline connection is `Error::Sqlite`.
    sqlx::query("ALTER TABLE orders RENAME TO orders_gone").execute(s.pool()).await.unwrap();
    let err = s.orders(&OrderFilter { limit: 5, ..Default::default() }).await.unwrap_err();
    assert!(matches!(err, Error::Sqlite(_)), "{err:?}");
    let err = s.order(None, None, id).await.unwrap_err();
    assert!(matches!(err, Error::Sqlite(_)), "{err:?}");
    sqlx::query("ALTER TABLE orders_gone RENAME TO orders").execute(s.pool()).await.unwrap();
    assert!(matches!(s.order(None, None, id).await, Err(Error::Corrupt { .. })));

    // Once the store is closed, reads fail as they do through a closed pool.
    store.close().await;
    let err = s.order(None, None, id).await.unwrap_err();
    assert!(matches!(err, Error::Db(sqlx::Error::PoolClosed)), "{err:?}");

    // An in-memory store has no inline reader (another connection would see another database).
    let memory = Store::connect("sqlite::memory:").await.unwrap();
    assert!(!sqlite(&memory).inline_reads());
    assert_eq!(memory.order(None, None, id).await.unwrap(), None);
    memory.close().await;
    db.cleanup(store).await;
}
