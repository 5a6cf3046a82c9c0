-- The credit events (payouts the token refused and the escrow credited; withdrawals of credits), read by
-- account for `GET /v1/accounts/{address}/credits` and by re-derivation: rare, so a small partial index.
CREATE INDEX events_credit ON events (chain_id, escrow, block_number, log_index)
    WHERE kind IN ('payout_deferred', 'withdrawn');
