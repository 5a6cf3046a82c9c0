//! The webhook tables on Postgres: adding a subscription takes the change-log lock (so that its first owed
//! change is exactly the first one committed after it), and workers claim with `FOR UPDATE SKIP LOCKED`.
//! These transactions are sqlx's own, not [`PgTx`]: they send no commit notification (a worker would wake
//! itself with every claim).

use alloy::primitives::BlockNumber;
use holdfast_primitives::{
    OrderKey,
    webhook::{Announced, FanoutChange, FanoutSubscription},
};

use super::*;
use crate::{PgStore, PgTx, now, rows::i};

impl OutboxWriter for PgTx {
    async fn fanout_subscriptions(&mut self) -> Result<Vec<FanoutSubscription>> {
        let rows: Vec<SubscriptionRow> =
            sqlx::query_as(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY id"))
                .fetch_all(&mut *self.0)
                .await?;
        rows.into_iter().map(|r| Ok(r.decode()?.fanout())).collect()
    }

    async fn fanout_through(&mut self) -> Result<i64> {
        let r: ThroughRow =
            sqlx::query_as("SELECT through FROM webhook_fanout WHERE id = 1").fetch_one(&mut *self.0).await?;
        Ok(r.through)
    }

    async fn set_fanout_through(&mut self, seq: i64) -> Result<()> {
        sqlx::query("UPDATE webhook_fanout SET through = $1 WHERE id = 1")
            .bind(seq)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn change_filings_after(&mut self, after: i64) -> Result<Vec<FanoutChange>> {
        let rows: Vec<FilingRow> =
            sqlx::query_as(CHANGE_FILINGS_AFTER).bind(after).fetch_all(&mut *self.0).await?;
        rows.into_iter().map(FilingRow::decode).collect()
    }

    async fn announced(&mut self, chain_id: u64, key: OrderKey) -> Result<Vec<Announced>> {
        let rows: Vec<AnnouncedRow> = sqlx::query_as(ANNOUNCED)
            .bind(i(chain_id))
            .bind(key.0.as_slice())
            .bind(key.1.as_slice())
            .fetch_all(&mut *self.0)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Announced { subscription_id: r.subscription_id, block_number: u(r.block_number) })
            .collect())
    }

    async fn cancel_deliveries_above(
        &mut self,
        chain_id: u64,
        key: OrderKey,
        block: BlockNumber,
    ) -> Result<u64> {
        let done = sqlx::query(CANCEL_ABOVE)
            .bind(i(chain_id))
            .bind(key.0.as_slice())
            .bind(key.1.as_slice())
            .bind(i(block))
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
    }

    async fn enqueue_deliveries(&mut self, rows: &[(i64, i64)], now: i64) -> Result<()> {
        for (sub, seq) in rows {
            sqlx::query(ENQUEUE_ONE).bind(sub).bind(seq).bind(now).execute(&mut *self.0).await?;
        }
        Ok(())
    }
}

impl WebhookStore for PgStore {
    async fn add_subscription(&self, s: &NewSubscription) -> Result<Subscription> {
        let mut tx = self.pool().begin().await?;
        // The change-log lock (as `insert_changes` takes it): no indexing step is between appending its changes
        // and fanning them out, so `from_seq` splits the log exactly where the fan-out starts seeing it.
        sqlx::query("LOCK TABLE changes IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let f = &s.filter;
        let id: IdRow = sqlx::query_as(INSERT_SUBSCRIPTION)
            .bind(&s.url)
            .bind(&s.description)
            .bind(f.chain_id.map(i))
            .bind(f.escrow.map(|a| a.to_vec()))
            .bind(f.payer.map(|a| a.to_vec()))
            .bind(f.payee.map(|a| a.to_vec()))
            .bind(f.arbiter.map(|a| a.to_vec()))
            .bind(statuses_text(&f.statuses))
            .bind(finality_name(s.finality))
            .bind(&s.secret)
            .bind(i(now()))
            .fetch_one(&mut *tx)
            .await?;
        let row: SubscriptionRow = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.decode()
    }

    async fn subscription(&self, id: i64) -> Result<Option<Subscription>> {
        let row: Option<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(SubscriptionRow::decode).transpose()
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        let rows: Vec<SubscriptionRow> =
            sqlx::query_as(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY id"))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(SubscriptionRow::decode).collect()
    }

    async fn set_subscription_state(
        &self,
        id: i64,
        state: SubscriptionState,
        reason: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(SET_STATE)
            .bind(id)
            .bind(state.as_str())
            .bind(reason)
            .bind(i(now()))
            .execute(&mut *tx)
            .await?;
        if state == SubscriptionState::Active {
            sqlx::query(DUE_NOW).bind(id).bind(now_ms()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_subscription(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_secret(&self, id: i64, secret: &str, previous_until: u64) -> Result<bool> {
        let done = sqlx::query(ROTATE)
            .bind(id)
            .bind(secret)
            .bind(i(previous_until))
            .bind(i(now()))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn replay(&self, id: i64, from_seq: i64) -> Result<u64> {
        let done = sqlx::query(REPLAY).bind(id).bind(from_seq).bind(now_ms()).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }

    async fn claim_deliveries(&self, now: i64, lease_ms: i64, limit: u32) -> Result<Vec<Claim>> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<IdRow> = sqlx::query_as(&format!(
            "UPDATE webhook_outbox SET lease_until = $1 + $3 WHERE id IN ({DUE} FOR UPDATE OF o SKIP LOCKED) RETURNING id"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_ms)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The claimed rows and their subscriptions, one query each (ids bound as one value).
        let ids: Vec<i64> = ids.into_iter().map(|r| r.id).collect();
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.id = ANY($1) ORDER BY o.next_attempt_at, o.id"
        ))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut sub_ids: Vec<i64> = deliveries.iter().map(|d| d.subscription_id).collect();
        sub_ids.sort_unstable();
        sub_ids.dedup();
        let subs: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = ANY($1)"
        ))
        .bind(&sub_ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        claims(deliveries, subs)
    }

    async fn record_attempt(&self, a: &Attempt, payload: &str, after: &AfterAttempt) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        write_attempt(&mut tx, a, payload, after).await?;
        Ok(tx.commit().await?)
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        let mut ids: Vec<i64> = records.iter().map(|r| r.attempt.delivery_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() < records.len() {
            // Two attempts of one delivery: one at a time, in order (a multi-row update applies one of them).
            for r in records {
                write_attempt(&mut tx, &r.attempt, &r.payload, &r.after).await?;
            }
            return Ok(tx.commit().await?);
        }
        // Two statements for the lot (arrays bound as single values), as `write_attempt` does row by row.
        let attempts = records.iter().map(|r| &r.attempt);
        sqlx::query(INSERT_ATTEMPTS)
            .bind(attempts.clone().map(|a| a.delivery_id).collect::<Vec<_>>())
            .bind(attempts.clone().map(|a| a.attempted_at).collect::<Vec<_>>())
            .bind(attempts.clone().map(|a| i(a.latency_ms)).collect::<Vec<_>>())
            .bind(attempts.clone().map(|a| a.status_code.map(i64::from)).collect::<Vec<_>>())
            .bind(attempts.clone().map(|a| a.result.as_str()).collect::<Vec<_>>())
            .bind(attempts.clone().map(|a| a.error.as_deref()).collect::<Vec<_>>())
            .bind(attempts.map(|a| a.response.as_deref()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let cols: Vec<_> = records.iter().map(|r| after_columns(&r.attempt, &r.after)).collect();
        sqlx::query(AFTER_ATTEMPTS)
            .bind(records.iter().map(|r| r.attempt.delivery_id).collect::<Vec<_>>())
            .bind(cols.iter().map(|c| c.0).collect::<Vec<_>>())
            .bind(cols.iter().map(|c| c.1).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.attempt.attempted_at).collect::<Vec<_>>())
            .bind(cols.iter().map(|c| c.2).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        for r in records {
            if let AfterAttempt::Disable(reason) = &r.after {
                sqlx::query(DISABLE_SUBSCRIPTION_OF)
                    .bind(r.attempt.delivery_id)
                    .bind(reason)
                    .bind(i(now()))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(tx.commit().await?)
    }

    async fn deliveries(&self, id: i64, limit: u32) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.subscription_id = $1 ORDER BY o.id DESC LIMIT $2"
        ))
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(DeliveryRow::decode).collect()
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT outbox_id, attempted_at, latency_ms, status_code, result, error, response \
             FROM webhook_attempts WHERE outbox_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(AttemptRow::decode).collect()
    }

    async fn queue_stats(&self) -> Result<QueueStats> {
        let r: StatsRow = sqlx::query_as(QUEUE_STATS).fetch_one(self.pool()).await?;
        Ok(QueueStats { pending: u(r.pending), oldest_created_at: r.oldest })
    }
}

/// [`INSERT_ATTEMPT`] for many rows: `$1`…`$7` arrays of its columns.
const INSERT_ATTEMPTS: &str = "INSERT INTO webhook_attempts (outbox_id, attempted_at, latency_ms, status_code, \
     result, error, response) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
     $5::text[], $6::text[], $7::text[])";

/// [`AFTER_ATTEMPT`] for many distinct rows: `$1`…`$6` arrays of its parameters.
const AFTER_ATTEMPTS: &str = "UPDATE webhook_outbox o SET status = v.status, attempts = o.attempts + 1, \
     next_attempt_at = v.next, lease_until = 0, first_attempt_at = COALESCE(o.first_attempt_at, v.attempted_at), \
     delivered_at = v.delivered, payload = COALESCE(o.payload, v.payload) \
     FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[]) \
     AS v (id, status, next, attempted_at, delivered, payload) WHERE o.id = v.id";

/// The statements of one attempt's record, in `tx`.
async fn write_attempt(
    tx: &mut sqlx::PgConnection,
    a: &Attempt,
    payload: &str,
    after: &AfterAttempt,
) -> Result<()> {
    sqlx::query(INSERT_ATTEMPT)
        .bind(a.delivery_id)
        .bind(a.attempted_at)
        .bind(i(a.latency_ms))
        .bind(a.status_code.map(i64::from))
        .bind(a.result.as_str())
        .bind(a.error.as_deref())
        .bind(a.response.as_deref())
        .execute(&mut *tx)
        .await?;
    let (status, next, delivered) = after_columns(a, after);
    sqlx::query(AFTER_ATTEMPT)
        .bind(a.delivery_id)
        .bind(status)
        .bind(next)
        .bind(a.attempted_at)
        .bind(delivered)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    if let AfterAttempt::Disable(reason) = after {
        sqlx::query(DISABLE_SUBSCRIPTION_OF)
            .bind(a.delivery_id)
            .bind(reason)
            .bind(i(now()))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
