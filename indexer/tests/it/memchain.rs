//! The sync loop over an in-memory chain ([`ChainSource`] without a node): reorgs of random depth roll back
//! to the same store as a fresh index of the new chain, and a fork below finality halts. No anvil, so many
//! cases run in a second; `HOLDFAST_DRILL_SCALE=N` runs N times as many (default 12 cases).

use std::sync::{Arc, Mutex, atomic::AtomicU64};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, BlockNumber, U256},
    rpc::types::Log,
    sol_types::SolEvent,
};
use holdfast_indexer::{
    Deployment, Error, FinalityPolicy, IndexerConfig, Result,
    source::{ChainSource, HeadStream},
    sync::Indexer,
};
use holdfast_primitives::{BlockRef, Heights, bindings::IHoldfastEscrow};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::harness::{TestDb, drill_scale, snapshot};

const CHAIN_ID: u64 = 31337;
const SAFE: u64 = 2;
const FINALIZED: u64 = 8;

fn escrow() -> Address {
    Address::repeat_byte(0xE5)
}

/// The escrow's orders as a generator sees them: order id → remaining (0: settled or never locked).
#[derive(Clone, Default)]
struct Model {
    remaining: Vec<u64>,
    locked: Vec<bool>,
}

#[derive(Clone)]
struct Block {
    header: BlockRef,
    logs: Vec<Log>,
    /// The escrow's token balance after the block (sum of what is held).
    balance: U256,
    /// The model after the block.
    model: Model,
}

#[derive(Clone, Default)]
struct MemChain {
    blocks: Arc<Mutex<Vec<Block>>>,
    /// The finalized height: `head - FINALIZED`, never lower than before (as on a real chain, a reorg
    /// that shortens the chain does not move finality back).
    finalized: Arc<Mutex<BlockNumber>>,
}

fn random_b256() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}

fn order_id(i: usize) -> B256 {
    B256::with_last_byte(i as u8 + 1)
}

fn log(header: &BlockRef, index: u64, data: alloy::primitives::LogData) -> Log {
    Log {
        inner: alloy::primitives::Log { address: escrow(), data },
        block_hash: Some(header.hash),
        block_number: Some(header.number),
        block_timestamp: Some(header.timestamp),
        transaction_hash: Some(random_b256()),
        transaction_index: Some(index),
        log_index: Some(index),
        removed: false,
    }
}

impl MemChain {
    fn new(orders: usize) -> Self {
        let genesis = BlockRef { number: 0, hash: random_b256(), parent_hash: B256::ZERO, timestamp: 1_000 };
        let model = Model { remaining: vec![0; orders], locked: vec![false; orders] };
        Self {
            blocks: Arc::new(Mutex::new(vec![Block {
                header: genesis,
                logs: vec![],
                balance: U256::ZERO,
                model,
            }])),
            finalized: Arc::default(),
        }
    }

    /// Head, safe and finalized heights now.
    fn heights_now(&self) -> Heights {
        let head = self.head_number();
        let mut finalized = self.finalized.lock().unwrap();
        *finalized = (*finalized).max(head.saturating_sub(FINALIZED));
        Heights { head, safe: head.saturating_sub(SAFE).max(*finalized), finalized: *finalized }
    }

    /// Mine `n` blocks of random legal escrow events (locks and partial or full releases).
    fn mine(&self, n: usize, rng: &mut StdRng) {
        let mut blocks = self.blocks.lock().unwrap();
        for _ in 0..n {
            let parent = blocks.last().unwrap().clone();
            let header = BlockRef {
                number: parent.header.number + 1,
                hash: random_b256(),
                parent_hash: parent.header.hash,
                timestamp: parent.header.timestamp + 12,
            };
            let mut model = parent.model.clone();
            let mut logs = Vec::new();
            for index in 0..rng.random_range(0..4u64) {
                let i = rng.random_range(0..model.remaining.len());
                let data = if !model.locked[i] {
                    let amount = rng.random_range(1..1_000u64);
                    model.locked[i] = true;
                    model.remaining[i] = amount;
                    IHoldfastEscrow::Locked {
                        orderId: order_id(i),
                        payer: Address::repeat_byte(1),
                        payee: Address::repeat_byte(2),
                        arbiter: Address::ZERO,
                        amount: U256::from(amount),
                        deliverBy: 10_000_000,
                        disputeWindow: 3_600,
                        status: IHoldfastEscrow::Status::Held,
                    }
                    .encode_log_data()
                } else if model.remaining[i] > 0 {
                    let amount = rng.random_range(1..=model.remaining[i]);
                    model.remaining[i] -= amount;
                    let status = if model.remaining[i] == 0 {
                        IHoldfastEscrow::Status::Settled
                    } else {
                        IHoldfastEscrow::Status::Held
                    };
                    IHoldfastEscrow::Released {
                        orderId: order_id(i),
                        by: Address::repeat_byte(1),
                        amount: U256::from(amount),
                        remaining: U256::from(model.remaining[i]),
                        status,
                    }
                    .encode_log_data()
                } else {
                    continue;
                };
                logs.push(log(&header, index, data));
            }
            let balance = U256::from(model.remaining.iter().sum::<u64>());
            blocks.push(Block { header, logs, balance, model });
        }
    }

    /// Replace every block above `fork` (not below finality) with `n` new ones.
    fn reorg(&self, fork: BlockNumber, n: usize, rng: &mut StdRng) {
        assert!(fork >= self.heights_now().finalized, "a test reorg below finality");
        self.blocks.lock().unwrap().truncate(fork as usize + 1);
        self.mine(n, rng);
    }

    fn head_number(&self) -> BlockNumber {
        self.blocks.lock().unwrap().last().unwrap().header.number
    }

    fn config(&self) -> IndexerConfig {
        let deployment =
            Deployment { chain_id: CHAIN_ID, escrow: escrow(), start_block: 1, token: Some(Address::ZERO) };
        let mut cfg = IndexerConfig::new("http://memchain.invalid".parse().unwrap(), vec![deployment]);
        cfg.finality = FinalityPolicy::Depth { safe: SAFE, finalized: FINALIZED };
        cfg.backfill.initial_range = 3;
        cfg
    }
}

impl ChainSource for MemChain {
    async fn chain_id(&self) -> Result<u64> {
        Ok(CHAIN_ID)
    }
    async fn head(&self) -> Result<BlockNumber> {
        Ok(self.head_number())
    }
    async fn header(&self, at: BlockNumberOrTag) -> Result<Option<BlockRef>> {
        let h = self.heights_now();
        let blocks = self.blocks.lock().unwrap();
        let n = match at {
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Safe => h.safe,
            BlockNumberOrTag::Finalized => h.finalized,
            _ => h.head,
        };
        Ok(blocks.get(n as usize).map(|b| b.header))
    }
    async fn headers(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<BlockRef>> {
        let blocks = self.blocks.lock().unwrap();
        Ok(blocks[from as usize..=to as usize].iter().map(|b| b.header).collect())
    }
    async fn heights(&self, _policy: FinalityPolicy) -> Result<Heights> {
        Ok(self.heights_now())
    }
    async fn logs(
        &self,
        _addresses: &[Address],
        _topics: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        _range: &AtomicU64,
        _min_range: u64,
    ) -> Result<Vec<Log>> {
        let blocks = self.blocks.lock().unwrap();
        let to = to.min(blocks.len() as u64 - 1);
        Ok(blocks[from as usize..=to as usize].iter().flat_map(|b| b.logs.clone()).collect())
    }
    async fn block_logs(&self, _addresses: &[Address], _topics: &[B256], block: B256) -> Result<Vec<Log>> {
        let blocks = self.blocks.lock().unwrap();
        blocks
            .iter()
            .find(|b| b.header.hash == block)
            .map(|b| b.logs.clone())
            .ok_or(Error::MissingBlock { number: 0 }) // an unknown hash (the node would not know it either)
    }
    async fn balance_of(&self, _token: Address, _account: Address, block: B256) -> Result<U256> {
        let blocks = self.blocks.lock().unwrap();
        blocks
            .iter()
            .find(|b| b.header.hash == block)
            .map(|b| b.balance)
            .ok_or(Error::MissingBlock { number: 0 }) // an unknown hash (the node would not know it either)
    }
    async fn escrow_token(&self, _escrow: Address) -> Result<Address> {
        Ok(Address::ZERO)
    }
    async fn new_heads(&self) -> Result<Option<HeadStream>> {
        Ok(None)
    }
    async fn reconnect(&self) -> Result<Self> {
        Ok(self.clone())
    }
}

fn cases() -> u64 {
    12 * drill_scale() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorgs_over_an_in_memory_chain_equal_a_fresh_index() {
    for case in 0..cases() {
        let mut rng = StdRng::seed_from_u64(case);
        let chain = MemChain::new(6);
        chain.mine(rng.random_range(20..60), &mut rng);
        let db = TestDb::sqlite().await;
        let store = db.store().await;
        let indexer = Indexer::with_source(chain.config(), store.clone(), chain.clone()).await.unwrap();
        indexer.sync_to_head().await.unwrap();
        for _ in 0..3 {
            // A reorg within the finality depth, replacing the tip with up to twice as many blocks.
            if chain.heights_now().finalized == chain.head_number() {
                chain.mine(1, &mut rng);
            }
            let h = chain.heights_now();
            let depth = rng.random_range(1..=(h.head - h.finalized).max(1));
            let fork = h.head - depth;
            chain.reorg(fork, rng.random_range(1..=2 * depth as usize), &mut rng);
            indexer.sync_to_head().await.unwrap();
            chain.mine(rng.random_range(0..5), &mut rng);
            indexer.sync_to_head().await.unwrap();
        }
        let fresh_db = TestDb::sqlite().await;
        let fresh = fresh_db.store().await;
        Indexer::with_source(chain.config(), fresh.clone(), chain.clone())
            .await
            .unwrap()
            .sync_to_head()
            .await
            .unwrap();
        let (got, want) = (snapshot(&store).await, snapshot(&fresh).await);
        assert!(!want.is_empty(), "case {case}: the chain locked nothing");
        assert_eq!(got, want, "case {case}: the store after reorgs differs from a fresh index");
        let recon = indexer.reconcile().await.unwrap();
        assert!(recon.iter().all(|r| r.ok), "case {case}: {recon:?}");
        db.cleanup(store).await;
        fresh_db.cleanup(fresh).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_below_finality_halts_and_changes_nothing() {
    let mut rng = StdRng::seed_from_u64(7);
    let chain = MemChain::new(4);
    chain.mine(40, &mut rng);
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let indexer = Indexer::with_source(chain.config(), store.clone(), chain.clone()).await.unwrap();
    indexer.sync_to_head().await.unwrap();
    let before = snapshot(&store).await;
    // Below finality: what a lagging or broken node would serve.
    let fork = chain.heights_now().finalized - 3;
    chain.blocks.lock().unwrap().truncate(fork as usize + 1);
    chain.mine(20, &mut rng);
    let err = indexer.sync_to_head().await.unwrap_err();
    assert!(matches!(err, Error::ReorgBelowFinality { .. }), "{err}");
    assert_eq!(snapshot(&store).await, before, "a refused rollback wrote something");
    db.cleanup(store).await;
}
