//! The API's task inputs and recurring tasks: schedule, cancel, read.

use super::DevnetApi;
use lightchain_aivm::circuit::Visibility;

use crate::chain::state::ModelRecord;
use crate::chain::state::Schedule;
use crate::chain::{TaskInput, TxKind};
use crate::crypto::AccountKey;
use crate::error::{DevnetError, Result};

impl DevnetApi {
    /// A task input for `model`: sealed to the validators when asked or when the model
    /// commits to its inputs, else public.
    pub(crate) fn task_input(
        &self,
        model: &ModelRecord,
        inputs: serde_json::Value,
        encrypt: bool,
    ) -> Result<TaskInput> {
        Ok(if encrypt || model.input_visibility == Visibility::Hashed {
            let pkg = self
                .package(&model.model_id)
                .ok_or_else(|| DevnetError::NotFound("the model's package".into()))?;
            crate::seal::seal_input(&pkg, &self.validators(), inputs)?
        } else {
            TaskInput::Public { inputs }
        })
    }

    /// Signs and sends a recurring task: a run every `every` blocks, `count` times, paid
    /// from `deposit` (default: every run's fee). Returns the schedule id.
    pub fn schedule_task(
        &self,
        key: &AccountKey,
        model_id: &str,
        inputs: serde_json::Value,
        (every, count): (u64, u32),
        deposit: Option<u128>,
        gas_price: u64,
    ) -> Result<String> {
        let model = self
            .model(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let input = self.task_input(&model, inputs, false)?;
        let kind = TxKind::ScheduleTask {
            model_id: model.model_id.clone(),
            gas_limit: model.gas,
            input,
            every,
            count,
            deposit: deposit.unwrap_or(model.fee(gas_price) * count as u128),
        };
        self.send_transaction(self.body(key, gas_price, kind).sign(key, self.chain_id()))
    }

    /// Signs and sends the cancellation of a schedule; returns the transaction hash.
    pub fn cancel_schedule(&self, key: &AccountKey, id: &str, gas_price: u64) -> Result<String> {
        let kind = TxKind::CancelSchedule {
            schedule_id: id.to_string(),
        };
        self.send_transaction(self.body(key, gas_price, kind).sign(key, self.chain_id()))
    }

    /// A schedule as the best validator's state records it.
    pub fn schedule(&self, id: &str) -> Option<Schedule> {
        self.with_view(|v| v.state.schedules.get(id).cloned())
    }
}
