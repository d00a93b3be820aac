//! The API's view of a stateful model's state for one account.

use ff::PrimeField;
use serde::{Deserialize, Serialize};

use super::DevnetApi;
use crate::chain::Address;
use crate::chain::runtime::current_state;
use crate::chain::state::state_key;
use crate::error::{DevnetError, Result};

/// A stateful model's state for one account: what its next task starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub model_id: String,
    pub account: Address,
    /// The quantized values, and the same as numbers at the state's scale.
    pub values: Vec<i64>,
    pub values_float: Vec<f64>,
    /// The salted Poseidon commitment the next task's proof must start from.
    #[serde(with = "crate::chain::hex32")]
    pub commitment: [u8; 32],
    /// The task that wrote it and the block that took it; none while the account has the
    /// model's initial state.
    pub task_id: Option<String>,
    pub height: Option<u64>,
}

impl DevnetApi {
    /// The state the next task of `model_id` submitted by `account` starts from.
    pub fn model_state(&self, model_id: &str, account: &Address) -> Result<StateView> {
        let model = self
            .model(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let pkg = self
            .package(&model.model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not loaded")))?;
        if !pkg.program.state {
            return Err(DevnetError::BadRequest(format!(
                "model {model_id} keeps no state"
            )));
        }
        let key = state_key(&model.model_id, account);
        let (stored, state) = self.with_view(|v| {
            let state = current_state(&v.state, &pkg, (&model.model_id, account));
            (v.state.states.get(&key).cloned(), state)
        });
        let state = state?;
        let commitment = lightchain_aivm::state::commitment(&pkg.program, &state)?.to_repr();
        let scale = lightchain_aivm::state::meta(&pkg.program)?.scale;
        Ok(StateView {
            model_id: model.model_id,
            account: *account,
            values_float: state
                .values
                .iter()
                .map(|&v| lightchain_aivm::ops::dequantize(v, scale))
                .collect(),
            values: state.values,
            commitment,
            task_id: stored.as_ref().map(|s| s.task_id.clone()),
            height: stored.map(|s| s.height),
        })
    }
}
