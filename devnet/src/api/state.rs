//! The API's view of a stateful model's state for one account.

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use serde::{Deserialize, Serialize};

use super::DevnetApi;
use crate::chain::Address;
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
        let stored = self.with_view(|v| v.state.states.get(&key).cloned());
        let (state, task_id, height) = match stored {
            Some(s) => {
                let salt = Option::from(Fp::from_repr(s.salt)).unwrap_or(Fp::from(0));
                let value = lightchain_aivm::state::StateValue {
                    values: s.values,
                    salt,
                };
                (value, Some(s.task_id), Some(s.height))
            }
            None => {
                let init = pkg.manifest.state.as_ref().map_or(0.0, |s| s.initial);
                (
                    lightchain_aivm::state::initial(&pkg.program, init)?,
                    None,
                    None,
                )
            }
        };
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
            task_id,
            height,
        })
    }
}
