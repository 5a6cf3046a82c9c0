-- The change log behind the API's change feed (`GET /v1/stream`): one row per change of an order's derived
-- state, appended in the same transaction as the change itself, so `seq` is a durable, gap-free (per reader)
-- resume position. `order_updated` rows carry the new state; `order_retracted` rows are written when a reorg
-- reverted a state already logged, and carry the re-derived state (NULL: the order no longer exists) with
-- the fixed fields (payer, payee, arbiter, lock_time) of the retracted state, so filtered readers see them.
CREATE TABLE changes (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id     BIGINT  NOT NULL,
    escrow       BYTEA   NOT NULL,
    order_id     BYTEA   NOT NULL,
    kind         TEXT    NOT NULL,  -- 'order_updated' | 'order_retracted'
    block_number BIGINT  NOT NULL,  -- updated: last block of the state; retracted: the fork block
    payer        BYTEA   NOT NULL,
    payee        BYTEA   NOT NULL,
    arbiter      BYTEA,
    status       TEXT    NOT NULL,
    lock_time    BIGINT  NOT NULL,
    state        TEXT               -- JSON of the derived OrderState (NULL: the order no longer exists)
);
CREATE INDEX changes_by_order ON changes (chain_id, escrow, order_id, seq);

-- Single-order lookups by id alone (`GET /v1/orders/{orderId}`).
CREATE INDEX orders_by_order_id ON orders (order_id);
CREATE INDEX orders_by_arbiter ON orders (arbiter, lock_block, lock_log_index);

-- Orders indexed before the change log existed: one `order_updated` each, in lock order.
INSERT INTO changes (chain_id, escrow, order_id, kind, block_number, payer, payee, arbiter, status, lock_time, state)
SELECT chain_id, escrow, order_id, 'order_updated', last_block, payer, payee, arbiter, status, lock_time, state
FROM orders ORDER BY lock_block, lock_log_index, chain_id, escrow;
