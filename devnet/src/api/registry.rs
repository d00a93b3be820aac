//! The API's side of version approval (a devnet with `approve_versions`).

use super::DevnetApi;
use crate::chain::TxKind;
use crate::crypto::AccountKey;
use crate::error::{DevnetError, Result};

impl DevnetApi {
    /// Signs and sends a validator's approval (`key` is its account key) of a version waiting
    /// for approval; returns the transaction hash.
    pub fn approve_version(
        &self,
        key: &AccountKey,
        model_id: &str,
        gas_price: u64,
    ) -> Result<String> {
        let model = self
            .model(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let kind = TxKind::ApproveVersion {
            model_id: model.model_id,
        };
        self.send_transaction(self.body(key, gas_price, kind).sign(key, self.chain_id()))
    }
}
