-- Read-path indexes for the API (issue 4 benchmarks), chosen so that the plan does not depend on table
-- statistics (autovacuum/ANALYZE may not have run after a large backfill):
-- * `GET /v1/orders/{orderId}` (`WHERE order_id = ? ORDER BY chain_id, escrow LIMIT 1`): the id and the
--   order in one index, no sort and no scan of the primary key. Replaces `orders_by_order_id`.
-- * `GET /v1/orders?payee=…&status=…` and `?payer=…&status=…` (in lock order): both equalities and the
--   page order in one index, so a page reads only its own rows instead of every order of that status.
CREATE INDEX orders_by_order_id_chain ON orders (order_id, chain_id, escrow);
DROP INDEX orders_by_order_id;
CREATE INDEX orders_by_payee_status ON orders (payee, status, lock_block, lock_log_index, chain_id, escrow);
CREATE INDEX orders_by_payer_status ON orders (payer, status, lock_block, lock_log_index, chain_id, escrow);
