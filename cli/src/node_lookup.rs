//! The API's node (`holdfast run`, `holdfast dev`): asked for the receipt of a transaction the store has
//! no escrow event of, so that `GET /v1/transactions/{txHash}` answers a failed transaction (`TX_FAILED`)
//! or one that never touched the escrow (`TX_NOT_FOUND`) at once instead of waiting in vain.

use alloy::{
    primitives::B256,
    providers::{DynProvider, Provider, ProviderBuilder},
};
use futures::future::BoxFuture;
use holdfast_api::{LookupError, NodeTx, TxLookup};
use tokio::sync::Mutex;
use url::Url;

/// A node of one chain, connected on first use and again after a failed call (a websocket that dropped),
/// so that a node down when the process starts, or restarted since, is used once it is back.
pub(crate) struct NodeLookup {
    url: Url,
    chain_id: u64,
    provider: Mutex<Option<DynProvider>>,
}

impl NodeLookup {
    pub(crate) fn new(url: Url, chain_id: u64) -> Self {
        Self { url, chain_id, provider: Mutex::new(None) }
    }

    async fn provider(&self) -> Result<DynProvider, LookupError> {
        let mut slot = self.provider.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = ProviderBuilder::new().connect(self.url.as_str()).await?.erased();
        *slot = Some(p.clone());
        Ok(p)
    }
}

impl TxLookup for NodeLookup {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn lookup(&self, tx: B256) -> BoxFuture<'_, Result<NodeTx, LookupError>> {
        Box::pin(async move {
            let provider = self.provider().await?;
            match provider.get_transaction_receipt(tx).await {
                Ok(None) => Ok(NodeTx::NotMined),
                Ok(Some(r)) => {
                    let block = r.block_number.unwrap_or_default();
                    Ok(if r.status() { NodeTx::Succeeded { block } } else { NodeTx::Failed { block } })
                }
                Err(e) => {
                    // Reconnect on the next call.
                    *self.provider.lock().await = None;
                    Err(e.into())
                }
            }
        })
    }
}
