//! The order read queries as SQL text plus parameters, built once and run by either path: sqlx (both
//! backends) or the inline SQLite reader ([`super::sqlite_read`]). Both run the same statement and decode
//! the same `state` column, so they cannot drift apart.
//!
//! Placeholders are numbered (`$1`, `$2`, …): Postgres' syntax, which SQLite also accepts (a named
//! parameter gets the next index in order of first appearance, so `$n` is bound at index `n`).

use std::fmt::Write as _;

use alloy::primitives::{Address, B256};

use holdfast_primitives::OrderKey;

use super::{OrderFilter, ScanPosition};

/// A bound parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// An integer (`BIGINT`).
    Int(i64),
    /// A 32-byte blob / `bytea`.
    Word(B256),
    /// A 20-byte blob / `bytea`.
    Addr(Address),
    /// Text.
    Text(&'static str),
}

/// SQL text and its parameters, `$n` bound to `params[n - 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlQuery {
    /// The statement.
    pub(crate) sql: String,
    /// Its parameters, in placeholder order.
    pub(crate) params: Vec<Param>,
}

impl SqlQuery {
    fn new(sql: &str) -> Self {
        Self { sql: sql.to_owned(), params: Vec::new() }
    }

    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Append the next placeholder and its value.
    fn bind(&mut self, p: Param) -> &mut Self {
        self.params.push(p);
        let _ = write!(self.sql, "${}", self.params.len());
        self
    }
}

fn int(v: u64) -> Param {
    Param::Int(v as i64)
}

/// The re-derivation's scan: live (not reverted) order events of `chain_id` in (escrow, order id, block,
/// log index) order, after the position `after`, at most `limit`. Columns: [`crate::rows::EVENT_COLUMNS`].
pub(crate) fn live_events_by_order(chain_id: u64, after: Option<ScanPosition>, limit: u32) -> SqlQuery {
    let mut q =
        SqlQuery::new(&format!("SELECT {} FROM events WHERE chain_id = ", crate::rows::EVENT_COLUMNS));
    q.bind(int(chain_id)).push(" AND order_id IS NOT NULL AND NOT reverted");
    if let Some((escrow, order_id, block, log)) = after {
        q.push(" AND (escrow, order_id, block_number, log_index) > (")
            .bind(Param::Addr(escrow))
            .push(", ")
            .bind(Param::Word(order_id))
            .push(", ")
            .bind(int(block))
            .push(", ")
            .bind(int(log))
            .push(")");
    }
    q.push(" ORDER BY escrow, order_id, block_number, log_index LIMIT ").bind(Param::Int(i64::from(limit)));
    q
}

/// The orders of `chain_id` with keys in (`after`, `upto`] (unbounded where `None`), in key order: the
/// re-derivation compares them with the orders it replayed. Columns: escrow, order_id, state.
pub(crate) fn orders_in_range(chain_id: u64, after: Option<OrderKey>, upto: Option<OrderKey>) -> SqlQuery {
    let mut q = SqlQuery::new("SELECT escrow, order_id, state FROM orders WHERE chain_id = ");
    q.bind(int(chain_id));
    if let Some((escrow, order_id)) = after {
        q.push(" AND (escrow, order_id) > (")
            .bind(Param::Addr(escrow))
            .push(", ")
            .bind(Param::Word(order_id))
            .push(")");
    }
    if let Some((escrow, order_id)) = upto {
        q.push(" AND (escrow, order_id) <= (")
            .bind(Param::Addr(escrow))
            .push(", ")
            .bind(Param::Word(order_id))
            .push(")");
    }
    q.push(" ORDER BY escrow, order_id");
    q
}

/// One order's state. With `escrow` `None`, the first escrow (by chain id, escrow) that has this id.
pub(crate) fn order(chain_id: Option<u64>, escrow: Option<Address>, order_id: B256) -> SqlQuery {
    let mut q = SqlQuery::new("SELECT state FROM orders WHERE order_id = ");
    q.bind(Param::Word(order_id));
    if let Some(c) = chain_id {
        q.push(" AND chain_id = ").bind(int(c));
    }
    if let Some(e) = escrow {
        q.push(" AND escrow = ").bind(Param::Addr(e));
    }
    q.push(" ORDER BY chain_id, escrow LIMIT 1");
    q
}

/// A page of order states matching `f`, in lock order.
pub(crate) fn orders(f: &OrderFilter) -> SqlQuery {
    let mut q = SqlQuery::new("SELECT state FROM orders WHERE 1 = 1");
    if let Some(c) = f.chain_id {
        q.push(" AND chain_id = ").bind(int(c));
    }
    for (col, v) in [
        (" AND escrow = ", f.escrow),
        (" AND payer = ", f.payer),
        (" AND payee = ", f.payee),
        (" AND arbiter = ", f.arbiter),
    ] {
        if let Some(a) = v {
            q.push(col).bind(Param::Addr(a));
        }
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").bind(Param::Text(s.as_str()));
    }
    if let Some(t) = f.locked_from {
        q.push(" AND lock_time >= ").bind(int(t));
    }
    if let Some(t) = f.locked_to {
        q.push(" AND lock_time < ").bind(int(t));
    }
    if let Some((b, l)) = f.after {
        q.push(" AND (lock_block, lock_log_index) > (").bind(int(b)).push(", ").bind(int(l)).push(")");
    }
    q.push(" ORDER BY lock_block, lock_log_index, chain_id, escrow LIMIT ")
        .bind(Param::Int(i64::from(f.limit)));
    q
}

/// The SQL dialect, where the statements differ (reading a JSON field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite (`json_extract`).
    Sqlite,
    /// Postgres (`->>` on the text column cast to `json`).
    Postgres,
}

impl Dialect {
    /// The `status` field of the JSON order state in column `col` (NULL when the column is NULL).
    fn state_status(self, col: &str) -> String {
        match self {
            Self::Sqlite => format!("json_extract({col}, '$.status')"),
            Self::Postgres => format!("({col}::json ->> 'status')"),
        }
    }
}

/// Up to `limit` change-log entries with `after < seq <= upto` matching `f` (its `after` and `limit` are
/// ignored); retractions ignore the status filter, and an update out of the filtered status matches when
/// the order's previous entry announced that status (see [`crate::FeedReader::changes`]).
///
/// The status an entry announced is that of the state it carries: an update's `status` column, a
/// retraction's re-derived state (its `status` column is the retracted state's). The previous entry of the
/// order is found with the `changes_by_order` index, only for the rows a status filter would otherwise drop.
pub(crate) fn changes(after: i64, upto: i64, f: &OrderFilter, limit: u32, dialect: Dialect) -> SqlQuery {
    let mut q = SqlQuery::new(
        "SELECT seq, kind, chain_id, escrow, order_id, block_number, state FROM changes WHERE seq > ",
    );
    q.bind(Param::Int(after)).push(" AND seq <= ").bind(Param::Int(upto));
    if let Some(c) = f.chain_id {
        q.push(" AND chain_id = ").bind(int(c));
    }
    for (col, v) in [
        (" AND escrow = ", f.escrow),
        (" AND payer = ", f.payer),
        (" AND payee = ", f.payee),
        (" AND arbiter = ", f.arbiter),
    ] {
        if let Some(a) = v {
            q.push(col).bind(Param::Addr(a));
        }
    }
    if let Some(s) = f.status {
        let announced = format!(
            "(SELECT CASE WHEN p.kind = 'order_updated' THEN p.status ELSE {} END FROM changes p \
             WHERE p.chain_id = changes.chain_id AND p.escrow = changes.escrow AND p.order_id = changes.order_id \
             AND p.seq < changes.seq ORDER BY p.seq DESC LIMIT 1)",
            dialect.state_status("p.state")
        );
        q.push(" AND (kind = 'order_retracted' OR status = ").bind(Param::Text(s.as_str()));
        q.push(" OR (kind = 'order_updated' AND ").push(&announced).push(" = ").bind(Param::Text(s.as_str()));
        q.push("))");
    }
    if let Some(t) = f.locked_from {
        q.push(" AND lock_time >= ").bind(int(t));
    }
    if let Some(t) = f.locked_to {
        q.push(" AND lock_time < ").bind(int(t));
    }
    q.push(" ORDER BY seq LIMIT ").bind(Param::Int(i64::from(limit)));
    q
}

/// Records the position change-log entries may be missing through (never lowered).
pub(crate) const MARK_COMPACTED: &str =
    "UPDATE change_log SET compacted_through = $1 WHERE id = 1 AND compacted_through < $1";

/// Deletes up to `$2` change-log entries at or below position `$1` that a newer entry of the same order
/// supersedes (found through `changes_by_order`).
pub(crate) const COMPACT_CHANGES: &str = "DELETE FROM changes WHERE seq IN (SELECT c.seq FROM changes c \
     WHERE c.seq <= $1 AND EXISTS (SELECT 1 FROM changes n WHERE n.chain_id = c.chain_id AND n.escrow = c.escrow \
     AND n.order_id = c.order_id AND n.seq > c.seq) ORDER BY c.seq LIMIT $2)";

/// The position change-log entries may be missing through.
pub(crate) const COMPACTED_THROUGH: &str = "SELECT compacted_through AS n FROM change_log WHERE id = 1";

#[cfg(test)]
mod tests {
    use holdfast_primitives::OrderStatus;

    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let q = order(Some(1), Some(Address::repeat_byte(2)), B256::repeat_byte(3));
        assert_eq!(
            q.sql,
            "SELECT state FROM orders WHERE order_id = $1 AND chain_id = $2 AND escrow = $3 \
             ORDER BY chain_id, escrow LIMIT 1"
        );
        assert_eq!(
            q.params,
            [Param::Word(B256::repeat_byte(3)), Param::Int(1), Param::Addr(Address::repeat_byte(2))]
        );
        let f = OrderFilter {
            payee: Some(Address::repeat_byte(4)),
            status: Some(OrderStatus::Held),
            after: Some((5, 6)),
            limit: 50,
            ..Default::default()
        };
        let q = orders(&f);
        assert_eq!(
            q.sql,
            "SELECT state FROM orders WHERE 1 = 1 AND payee = $1 AND status = $2 AND \
             (lock_block, lock_log_index) > ($3, $4) ORDER BY lock_block, lock_log_index, chain_id, escrow LIMIT $5"
        );
        assert_eq!(
            q.params,
            [
                Param::Addr(Address::repeat_byte(4)),
                Param::Text("held"),
                Param::Int(5),
                Param::Int(6),
                Param::Int(50)
            ]
        );
    }
}
