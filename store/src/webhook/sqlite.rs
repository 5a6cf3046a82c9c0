//! The webhook tables on SQLite (the database's one writer lock serialises the fan-out and the claims).

use alloy::primitives::BlockNumber;
use holdfast_primitives::{
    OrderKey,
    webhook::{Announced, FanoutChange, FanoutSubscription},
};

use super::*;
use crate::{SqliteStore, SqliteTx, Storage, WriteTx, now, rows::i};

impl OutboxWriter for SqliteTx {
    async fn fanout_subscriptions(&mut self) -> Result<Vec<FanoutSubscription>> {
        let rows: Vec<SubscriptionRow> =
            sqlx::query_as(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY id"))
                .fetch_all(&mut *self.conn)
                .await?;
        rows.into_iter().map(|r| Ok(r.decode()?.fanout())).collect()
    }

    async fn fanout_through(&mut self) -> Result<i64> {
        let r: ThroughRow = sqlx::query_as("SELECT through FROM webhook_fanout WHERE id = 1")
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(r.through)
    }

    async fn set_fanout_through(&mut self, seq: i64) -> Result<()> {
        sqlx::query("UPDATE webhook_fanout SET through = $1 WHERE id = 1")
            .bind(seq)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn change_filings_after(&mut self, after: i64) -> Result<Vec<FanoutChange>> {
        let rows: Vec<FilingRow> =
            sqlx::query_as(CHANGE_FILINGS_AFTER).bind(after).fetch_all(&mut *self.conn).await?;
        rows.into_iter().map(FilingRow::decode).collect()
    }

    async fn announced(&mut self, chain_id: u64, key: OrderKey) -> Result<Vec<Announced>> {
        let rows: Vec<AnnouncedRow> = sqlx::query_as(ANNOUNCED)
            .bind(i(chain_id))
            .bind(key.0.as_slice())
            .bind(key.1.as_slice())
            .fetch_all(&mut *self.conn)
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
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn enqueue_deliveries(&mut self, rows: &[(i64, i64)], now: i64) -> Result<()> {
        for (sub, seq) in rows {
            sqlx::query(ENQUEUE_ONE).bind(sub).bind(seq).bind(now).execute(&mut *self.conn).await?;
        }
        Ok(())
    }
}

impl WebhookStore for SqliteStore {
    async fn add_subscription(&self, s: &NewSubscription) -> Result<Subscription> {
        let mut tx = self.begin().await?;
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
            .fetch_one(&mut *tx.conn)
            .await?;
        let row: SubscriptionRow = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id.id)
        .fetch_one(&mut *tx.conn)
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
        let mut tx = self.begin().await?;
        let done = sqlx::query(SET_STATE)
            .bind(id)
            .bind(state.as_str())
            .bind(reason)
            .bind(i(now()))
            .execute(&mut *tx.conn)
            .await?;
        if state == SubscriptionState::Active {
            sqlx::query(DUE_NOW).bind(id).bind(now_ms()).execute(&mut *tx.conn).await?;
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
        let mut tx = self.begin().await?;
        let ids: Vec<IdRow> = sqlx::query_as(&format!(
            "UPDATE webhook_outbox SET lease_until = $1 + $3 WHERE id IN ({DUE}) RETURNING id"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_ms)
        .fetch_all(&mut *tx.conn)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The claimed rows and their subscriptions, one query each (ids bound as one value).
        let ids: Vec<i64> = ids.into_iter().map(|r| r.id).collect();
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.id IN (SELECT value FROM json_each($1)) ORDER BY o.next_attempt_at, o.id"
        ))
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .fetch_all(&mut *tx.conn)
        .await?;
        let mut sub_ids: Vec<i64> = deliveries.iter().map(|d| d.subscription_id).collect();
        sub_ids.sort_unstable();
        sub_ids.dedup();
        let subs: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id IN (SELECT value FROM json_each($1))"
        ))
        .bind(serde_json::to_string(&sub_ids).unwrap_or_default())
        .fetch_all(&mut *tx.conn)
        .await?;
        tx.commit().await?;
        claims(deliveries, subs)
    }

    async fn record_attempt(&self, a: &Attempt, payload: &str, after: &AfterAttempt) -> Result<()> {
        let mut tx = self.begin().await?;
        write_attempt(&mut tx, a, payload, after).await?;
        tx.commit().await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for r in records {
            write_attempt(&mut tx, &r.attempt, &r.payload, &r.after).await?;
        }
        tx.commit().await
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

/// The statements of one attempt's record, in `tx`.
async fn write_attempt(tx: &mut SqliteTx, a: &Attempt, payload: &str, after: &AfterAttempt) -> Result<()> {
    sqlx::query(INSERT_ATTEMPT)
        .bind(a.delivery_id)
        .bind(a.attempted_at)
        .bind(i(a.latency_ms))
        .bind(a.status_code.map(i64::from))
        .bind(a.result.as_str())
        .bind(a.error.as_deref())
        .bind(a.response.as_deref())
        .execute(&mut *tx.conn)
        .await?;
    let (status, next, delivered) = after_columns(a, after);
    sqlx::query(AFTER_ATTEMPT)
        .bind(a.delivery_id)
        .bind(status)
        .bind(next)
        .bind(a.attempted_at)
        .bind(delivered)
        .bind(payload)
        .execute(&mut *tx.conn)
        .await?;
    if let AfterAttempt::Disable(reason) = after {
        sqlx::query(DISABLE_SUBSCRIPTION_OF)
            .bind(a.delivery_id)
            .bind(reason)
            .bind(i(now()))
            .execute(&mut *tx.conn)
            .await?;
    }
    Ok(())
}
