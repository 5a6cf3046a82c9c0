-- Webhooks (see holdfast_store::WebhookStore). A subscription follows the orders its filter matches; the
-- indexer writes one outbox row per (subscription, change-log entry) owed, in the same transaction as the
-- change itself, with a copy of the entry (the change log may be compacted before delivery). Delivery
-- workers claim due rows with a lease, and record every attempt.
CREATE TABLE webhook_subscriptions (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT   NOT NULL,
    description           TEXT   NOT NULL,
    chain_id              BIGINT,
    escrow                BLOB,
    payer                 BLOB,
    payee                 BLOB,
    arbiter               BLOB,
    statuses              TEXT   NOT NULL,  -- comma-separated status names; '' = every status
    finality              TEXT   NOT NULL,  -- 'pending' | 'safe' | 'finalized'
    secret                TEXT   NOT NULL,  -- whsec_…: signs every delivery; never served or logged
    previous_secret       TEXT,             -- the secret before a rotation, also signing until …
    previous_secret_until BIGINT,           -- … this unix time (seconds)
    state                 TEXT   NOT NULL,  -- 'active' | 'paused' | 'disabled'
    state_reason          TEXT,
    from_seq              BIGINT NOT NULL,  -- change-log entries at or below it predate the subscription
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- Where the fan-out has read the change log up to (one row).
CREATE TABLE webhook_fanout (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    through BIGINT NOT NULL
);
INSERT INTO webhook_fanout (id, through) VALUES (1, 0);

CREATE TABLE webhook_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  BIGINT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    change_seq       BIGINT NOT NULL,
    chain_id         BIGINT NOT NULL,
    escrow           BLOB   NOT NULL,
    order_id         BLOB   NOT NULL,
    kind             TEXT   NOT NULL,  -- 'order_updated' | 'order_retracted'
    block_number     BIGINT NOT NULL,
    state            TEXT,             -- the entry's state (JSON), NULL: the order no longer exists
    status           TEXT   NOT NULL,  -- 'pending' | 'delivered' | 'cancelled'
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,  -- unix milliseconds
    lease_until      BIGINT NOT NULL,  -- unix milliseconds: a worker holds it until then
    first_attempt_at BIGINT,
    delivered_at     BIGINT,
    payload          TEXT,             -- the body as first sent (every retry sends the same bytes)
    created_at       BIGINT NOT NULL,
    UNIQUE (subscription_id, change_seq)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_outbox_by_order ON webhook_outbox (chain_id, escrow, order_id, subscription_id, change_seq);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id    BIGINT NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    attempted_at BIGINT NOT NULL,  -- unix milliseconds
    latency_ms   BIGINT NOT NULL,
    status_code  BIGINT,
    result       TEXT   NOT NULL,  -- 'delivered' | 'failed' | 'gone'
    error        TEXT,
    response     TEXT              -- the first bytes of the response body
);
CREATE INDEX webhook_attempts_by_outbox ON webhook_attempts (outbox_id, id);
