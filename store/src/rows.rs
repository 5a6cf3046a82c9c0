//! Rows as both backends return them (`sqlx::FromRow`: INTEGER/BIGINT → `i64`, BLOB/bytea → `Vec<u8>`,
//! TEXT → `String`), and their decoding into domain types. Amounts are stored as decimal text (exact), the
//! order state as JSON.

use alloy::primitives::{Address, B256, Bytes, U256};
use holdfast_primitives::{
    BlockRef, ChainMeta, Change, ChangeKind, DecodedEvent, EscrowEvent, EventPos, Heights, OrderKey,
    OrderState, RawEvent, Reconciliation,
    change::{ChangeFiling, LastChange},
};

use crate::{Error, Result, StoredEvent};

pub(crate) fn i(v: u64) -> i64 {
    v as i64
}
pub(crate) fn u(v: i64) -> u64 {
    v as u64
}
pub(crate) fn b256(v: &[u8]) -> Result<B256> {
    B256::try_from(v).map_err(|_| Error::corrupt_value(format!("expected 32 bytes, got {}", v.len())))
}
pub(crate) fn address(v: &[u8]) -> Result<Address> {
    Address::try_from(v).map_err(|_| Error::corrupt_value(format!("expected 20 bytes, got {}", v.len())))
}
pub(crate) fn u256(s: &str) -> Result<U256> {
    U256::from_str_radix(s, 10).map_err(|e| Error::corrupt(format!("amount {s:?}"), e))
}
pub(crate) fn topics_bytes(topics: &[B256]) -> Vec<u8> {
    topics.iter().flat_map(|t| t.0).collect()
}
fn parse_topics(v: &[u8]) -> Result<Vec<B256>> {
    if !v.len().is_multiple_of(32) {
        return Err(Error::corrupt_value("topics length not a multiple of 32"));
    }
    v.chunks(32).map(b256).collect()
}
/// Decode a stored `state` column (every read path, both backends).
pub(crate) fn parse_state(json: &str) -> Result<OrderState> {
    serde_json::from_str(json).map_err(|e| Error::corrupt("order state", e))
}
/// The `remaining` amount of a stored order state, without decoding the rest of it (reconciliation sums
/// it over every open order).
pub(crate) fn state_remaining(json: &str) -> Result<U256> {
    #[derive(serde::Deserialize)]
    struct Remaining {
        remaining: String,
    }
    let r: Remaining = serde_json::from_str(json).map_err(|e| Error::corrupt("order state", e))?;
    u256(&r.remaining)
}
/// Encode an order state for the `state` column.
pub(crate) fn state_json(o: &OrderState) -> Result<String> {
    serde_json::to_string(o).map_err(|e| Error::corrupt("order state", e))
}

/// The columns of [`EventRow`].
pub(crate) const EVENT_COLUMNS: &str = "seq, chain_id, escrow, block_number, block_hash, block_timestamp, tx_hash, \
                                        tx_index, log_index, topics, data, reverted";

/// A row of `events`.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    pub(crate) seq: i64,
    pub(crate) chain_id: i64,
    pub(crate) escrow: Vec<u8>,
    pub(crate) block_number: i64,
    pub(crate) block_hash: Vec<u8>,
    pub(crate) block_timestamp: i64,
    pub(crate) tx_hash: Vec<u8>,
    pub(crate) tx_index: i64,
    pub(crate) log_index: i64,
    pub(crate) topics: Vec<u8>,
    pub(crate) data: Vec<u8>,
    pub(crate) reverted: bool,
}

impl EventRow {
    /// The stored event, decoded.
    pub(crate) fn stored(self) -> Result<StoredEvent> {
        let (seq, reverted) = (self.seq, self.reverted);
        let DecodedEvent { raw, event } = self.decoded()?;
        Ok(StoredEvent { seq, raw, event, reverted })
    }

    /// Of credit-event `rows`, the stored events of `account` (matched after decoding: the account is a
    /// topic).
    pub(crate) fn credit_events_of(rows: Vec<Self>, account: Address) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for row in rows {
            let e = row.stored()?;
            if e.event.credit_account() == Some(account) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The raw log and its decoded form.
    pub(crate) fn decoded(self) -> Result<DecodedEvent> {
        let raw = RawEvent {
            chain_id: u(self.chain_id),
            escrow: address(&self.escrow)?,
            pos: EventPos {
                block_number: u(self.block_number),
                block_hash: b256(&self.block_hash)?,
                block_timestamp: u(self.block_timestamp),
                tx_hash: b256(&self.tx_hash)?,
                tx_index: u(self.tx_index),
                log_index: u(self.log_index),
            },
            topics: parse_topics(&self.topics)?,
            data: Bytes::from(self.data),
        };
        let event = EscrowEvent::decode(&raw.topics, &raw.data)
            .ok_or_else(|| Error::corrupt_value("stored event does not decode"))?;
        Ok(DecodedEvent { raw, event })
    }
}

/// A row of `chain_meta`.
#[derive(sqlx::FromRow)]
pub(crate) struct ChainMetaRow {
    chain_id: i64,
    genesis_hash: Vec<u8>,
    cursor_number: i64,
    cursor_hash: Vec<u8>,
    head: i64,
    safe: i64,
    finalized: i64,
    updated_at: i64,
}

impl TryFrom<ChainMetaRow> for ChainMeta {
    type Error = Error;
    fn try_from(r: ChainMetaRow) -> Result<Self> {
        Ok(Self {
            chain_id: u(r.chain_id),
            genesis_hash: b256(&r.genesis_hash)?,
            cursor: u(r.cursor_number),
            cursor_hash: b256(&r.cursor_hash)?,
            heights: Heights { head: u(r.head), safe: u(r.safe), finalized: u(r.finalized) },
            updated_at: u(r.updated_at),
        })
    }
}

/// A row of `blocks`.
#[derive(sqlx::FromRow)]
pub(crate) struct BlockRow {
    number: i64,
    hash: Vec<u8>,
    parent_hash: Vec<u8>,
    timestamp: i64,
}

impl TryFrom<BlockRow> for BlockRef {
    type Error = Error;
    fn try_from(r: BlockRow) -> Result<Self> {
        Ok(Self {
            number: u(r.number),
            hash: b256(&r.hash)?,
            parent_hash: b256(&r.parent_hash)?,
            timestamp: u(r.timestamp),
        })
    }
}

/// An order key.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    escrow: Vec<u8>,
    order_id: Vec<u8>,
}

impl KeyRow {
    pub(crate) fn key(&self) -> Result<OrderKey> {
        Ok((address(&self.escrow)?, b256(&self.order_id)?))
    }
}

/// An order key with its stored state.
#[derive(sqlx::FromRow)]
pub(crate) struct OrderRow {
    pub(crate) escrow: Vec<u8>,
    pub(crate) order_id: Vec<u8>,
    pub(crate) state: String,
}

impl OrderRow {
    pub(crate) fn keyed(self) -> Result<(OrderKey, OrderState)> {
        Ok(((address(&self.escrow)?, b256(&self.order_id)?), parse_state(&self.state)?))
    }

    pub(crate) fn encoded(self) -> Result<(OrderKey, EncodedOrder)> {
        Ok(((address(&self.escrow)?, b256(&self.order_id)?), EncodedOrder(self.state)))
    }
}

/// An order's stored state, still encoded: compared with a derived state by encoding that one (cheaper than
/// decoding every stored order during a re-derivation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedOrder(String);

impl holdfast_primitives::derive::StoredOrder for EncodedOrder {
    /// Whether `o` encodes to exactly the stored JSON: encoded straight into a comparison with it, with
    /// no buffer, stopping at the first byte that differs.
    fn holds(&self, o: &OrderState) -> bool {
        let mut rest = Matches(self.0.as_bytes());
        serde_json::to_writer(&mut rest, o).is_ok() && rest.0.is_empty()
    }
}

/// A writer that accepts exactly the bytes it holds, in order (and fails at the first other byte).
struct Matches<'a>(&'a [u8]);

impl std::io::Write for Matches<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(std::io::Error::other("differs from the stored state")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// (block hash, log index) of an inserted event.
#[derive(sqlx::FromRow)]
pub(crate) struct EventKeyRow {
    block_hash: Vec<u8>,
    log_index: i64,
}

impl EventKeyRow {
    pub(crate) fn key(&self) -> Result<(B256, u64)> {
        Ok((b256(&self.block_hash)?, u(self.log_index)))
    }
}

/// A credit balance.
#[derive(sqlx::FromRow)]
pub(crate) struct CreditRow {
    escrow: Vec<u8>,
    account: Vec<u8>,
    amount: String,
}

impl CreditRow {
    pub(crate) fn entry(&self) -> Result<((Address, Address), U256)> {
        Ok(((address(&self.escrow)?, address(&self.account)?), u256(&self.amount)?))
    }
}

/// A change-log row to insert, its state already encoded (so an order upserted and logged in the same step
/// is serialised once).
pub(crate) struct EncodedChange<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) filing: ChangeFiling,
    pub(crate) block_number: u64,
    pub(crate) state: Option<&'a str>,
}

impl<'a> EncodedChange<'a> {
    /// The `order_updated` entry of an order whose state encodes to `json`.
    pub(crate) fn updated(o: &OrderState, json: &'a str) -> Self {
        Self {
            kind: ChangeKind::OrderUpdated,
            filing: ChangeFiling::of(o),
            block_number: o.last_pos().block_number,
            state: Some(json),
        }
    }

    /// Encode the states of `rows` (`json` holds the encodings, in order).
    pub(crate) fn encode_all(rows: &[holdfast_primitives::change::NewChange]) -> Result<Vec<Option<String>>> {
        rows.iter().map(|r| r.state.as_ref().map(state_json).transpose()).collect()
    }

    /// The rows to insert for `rows`, whose states [`EncodedChange::encode_all`] encoded into `json`.
    pub(crate) fn views(
        rows: &[holdfast_primitives::change::NewChange],
        json: &'a [Option<String>],
    ) -> Vec<Self> {
        rows.iter()
            .zip(json)
            .map(|(r, json)| Self {
                kind: r.kind,
                filing: r.filing.clone(),
                block_number: r.block_number,
                state: json.as_deref(),
            })
            .collect()
    }
}

/// A row of `changes` as the feed reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    seq: i64,
    kind: String,
    chain_id: i64,
    escrow: Vec<u8>,
    order_id: Vec<u8>,
    block_number: i64,
    state: Option<String>,
}

impl TryFrom<ChangeRow> for Change {
    type Error = Error;
    fn try_from(r: ChangeRow) -> Result<Self> {
        Ok(Self {
            seq: r.seq,
            kind: ChangeKind::parse(&r.kind)
                .ok_or_else(|| Error::corrupt_value(format!("unknown change kind {:?}", r.kind)))?,
            chain_id: u(r.chain_id),
            escrow: address(&r.escrow)?,
            order_id: b256(&r.order_id)?,
            block_number: u(r.block_number),
            state: r.state.as_deref().map(parse_state).transpose()?,
        })
    }
}

/// The last change-log entry of an order, as a rollback reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct LastChangeRow {
    chain_id: i64,
    escrow: Vec<u8>,
    order_id: Vec<u8>,
    payer: Vec<u8>,
    payee: Vec<u8>,
    arbiter: Option<Vec<u8>>,
    status: String,
    lock_time: i64,
    state: Option<String>,
}

impl LastChangeRow {
    pub(crate) fn keyed(self) -> Result<(OrderKey, LastChange)> {
        let filing = ChangeFiling {
            chain_id: u(self.chain_id),
            escrow: address(&self.escrow)?,
            order_id: b256(&self.order_id)?,
            payer: address(&self.payer)?,
            payee: address(&self.payee)?,
            arbiter: self.arbiter.as_deref().map(address).transpose()?,
            status: self.status,
            lock_time: u(self.lock_time),
        };
        let state = self.state.as_deref().map(parse_state).transpose()?;
        Ok(((filing.escrow, filing.order_id), LastChange { filing, state }))
    }
}

/// A row of `reconciliations`.
#[derive(sqlx::FromRow)]
pub(crate) struct ReconciliationRow {
    chain_id: i64,
    escrow: Vec<u8>,
    block_number: i64,
    expected: String,
    actual: String,
    ok: bool,
    checked_at: i64,
}

impl TryFrom<ReconciliationRow> for Reconciliation {
    type Error = Error;
    fn try_from(r: ReconciliationRow) -> Result<Self> {
        Ok(Self {
            chain_id: u(r.chain_id),
            escrow: address(&r.escrow)?,
            block_number: u(r.block_number),
            expected: u256(&r.expected)?,
            actual: u256(&r.actual)?,
            ok: r.ok,
            checked_at: u(r.checked_at),
        })
    }
}

/// `COUNT(*)` / `MAX(…)`.
#[derive(sqlx::FromRow)]
pub(crate) struct CountRow {
    pub(crate) n: Option<i64>,
}

/// One `state` column.
#[derive(sqlx::FromRow)]
pub(crate) struct StateRow {
    pub(crate) state: String,
}

/// One `amount` column.
#[derive(sqlx::FromRow)]
pub(crate) struct AmountRow {
    pub(crate) amount: String,
}
