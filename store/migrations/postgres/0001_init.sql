-- Holdfast indexer schema (Postgres). Raw events are the source of truth; orders and credits are derived.
CREATE TABLE chain_meta (
    chain_id      BIGINT  PRIMARY KEY,
    genesis_hash  BYTEA    NOT NULL,
    cursor_number BIGINT  NOT NULL,  -- last block fully indexed
    cursor_hash   BYTEA    NOT NULL,
    head          BIGINT  NOT NULL,
    safe          BIGINT  NOT NULL,
    finalized     BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Headers of the unfinalized window (and the newest finalized block): the reorg detector's memory.
CREATE TABLE blocks (
    chain_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    hash        BYTEA   NOT NULL,
    parent_hash BYTEA   NOT NULL,
    timestamp   BIGINT NOT NULL,
    PRIMARY KEY (chain_id, number)
);

CREATE TABLE events (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id        BIGINT  NOT NULL,
    escrow          BYTEA    NOT NULL,
    block_number    BIGINT  NOT NULL,
    block_hash      BYTEA    NOT NULL,
    block_timestamp BIGINT  NOT NULL,
    tx_hash         BYTEA    NOT NULL,
    tx_index        BIGINT  NOT NULL,
    log_index       BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    order_id        BYTEA,
    topics          BYTEA    NOT NULL,
    data            BYTEA    NOT NULL,
    reverted        BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (chain_id, block_hash, log_index)
);
CREATE INDEX events_by_order ON events (chain_id, escrow, order_id, block_number, log_index);
CREATE INDEX events_by_block ON events (chain_id, block_number);
CREATE INDEX events_by_tx ON events (tx_hash);

CREATE TABLE orders (
    chain_id       BIGINT  NOT NULL,
    escrow         BYTEA    NOT NULL,
    order_id       BYTEA    NOT NULL,
    payer          BYTEA    NOT NULL,
    payee          BYTEA    NOT NULL,
    arbiter        BYTEA,
    status         TEXT    NOT NULL,
    lock_block     BIGINT  NOT NULL,
    lock_log_index BIGINT  NOT NULL,
    lock_time      BIGINT  NOT NULL,
    last_block     BIGINT  NOT NULL,
    anomalies      BIGINT  NOT NULL,
    state          TEXT    NOT NULL,  -- JSON of the derived OrderState
    PRIMARY KEY (chain_id, escrow, order_id)
);
CREATE INDEX orders_by_lock ON orders (lock_block, lock_log_index);
CREATE INDEX orders_by_payer ON orders (payer, lock_block, lock_log_index);
CREATE INDEX orders_by_payee ON orders (payee, lock_block, lock_log_index);
CREATE INDEX orders_by_status ON orders (status, lock_block, lock_log_index);

CREATE TABLE credits (
    chain_id BIGINT NOT NULL,
    escrow   BYTEA   NOT NULL,
    account  BYTEA   NOT NULL,
    amount   TEXT   NOT NULL,
    PRIMARY KEY (chain_id, escrow, account)
);

-- Events that were illegal for their order's state (impossible with a correct contract).
CREATE TABLE anomalies (
    chain_id     BIGINT NOT NULL,
    escrow       BYTEA   NOT NULL,
    order_id     BYTEA,
    block_number BIGINT NOT NULL,
    block_hash   BYTEA   NOT NULL,
    log_index    BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);

CREATE TABLE reconciliations (
    chain_id     BIGINT  NOT NULL,
    escrow       BYTEA    NOT NULL,
    block_number BIGINT  NOT NULL,
    expected     TEXT    NOT NULL,  -- sum of remainders + credits
    actual       TEXT    NOT NULL,  -- token.balanceOf(escrow)
    ok           BOOLEAN NOT NULL,
    checked_at   BIGINT  NOT NULL,
    PRIMARY KEY (chain_id, escrow)
);
