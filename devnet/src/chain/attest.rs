//! Attested mode: for a model packaged with `[proving] mode = "attested"`, every validator
//! executes a task and signs its outputs (a [`super::Claim::Attestation`]); the outputs signed
//! by more than 2/3 of the stake stand, and when no outputs can get there the task fails with
//! every validator's signed outputs kept as the evidence.

use super::Receipt;
use super::error::BlockError;
use super::exec::{credit, fail_task};
use super::runtime::Runtime;
use super::state::{ModelRecord, ProvingMode, State, Task, TaskStatus};
use crate::crypto;

/// Settles a task after a new attestation: completes it when outputs stand (the fee shared
/// by the validators that signed them; returns the receipt), fails it when the validators
/// are split (the fee refunded), else leaves it open.
pub(super) fn settle(
    rt: &Runtime,
    state: &mut State,
    task: &Task,
    height: u64,
    (gas_used, fee): (u64, u128),
) -> Result<Option<Receipt>, BlockError> {
    match tally(state, task) {
        Tally::Open => Ok(None),
        Tally::Split(reason) => {
            fail_task(state, &task.id, reason);
            Ok(None)
        }
        Tally::Agreed { outputs, by } => {
            let model = state.models[&task.model_id].clone();
            let receipt =
                attested_receipt(rt, &model, task, (outputs, &by), height, (gas_used, fee))?;
            if let Some(t) = state.tasks.get_mut(&task.id) {
                t.status = TaskStatus::Completed {
                    height,
                    executor: receipt.executor,
                };
            }
            // The royalty to the model's owner, the rest shared by the attesters.
            let royalty = model.royalty(fee);
            credit(state, &model.deployer, royalty);
            let paid = fee - royalty;
            let share = paid / by.len() as u128;
            for (i, &v) in by.iter().enumerate() {
                let account = state.validators[v].account;
                let rest = if i == 0 {
                    paid - share * by.len() as u128
                } else {
                    0
                };
                credit(state, &account, share + rest);
            }
            Ok(Some(receipt))
        }
    }
}

/// Where the attestations of a task stand.
#[derive(Debug, PartialEq)]
pub enum Tally {
    /// Validators holding more than 2/3 of the stake signed these outputs.
    Agreed {
        outputs: Vec<Vec<i64>>,
        by: Vec<usize>,
    },
    /// No outputs can reach more than 2/3 any more: the validators disagree (the reason
    /// lists who signed what).
    Split(String),
    /// Not decided yet.
    Open,
}

/// A short digest of outputs, to name them in a disagreement.
fn outputs_digest(outputs: &[Vec<i64>]) -> String {
    let mut w = lightchain_aivm::wire::W(Vec::new());
    for o in outputs {
        w.len(o.len());
        for &v in o {
            w.i(v);
        }
    }
    crypto::hex(&blake3::hash(&w.0).as_bytes()[..8])
}

/// Tallies a task's attestations by the attesters' stake: outputs signed by more than 2/3 of
/// the total stake stand; when no outputs can get there even with every validator that has
/// not attested yet, the task is split.
pub fn tally(state: &State, task: &Task) -> Tally {
    let stake = |v: usize| state.validators.get(v).map_or(0, |x| x.stake);
    let total: u128 = state.validators.iter().map(|v| v.stake).sum();
    // (outputs, who signed them, their stake)
    type Group<'a> = (&'a Vec<Vec<i64>>, Vec<usize>, u128);
    let mut groups: Vec<Group> = Vec::new();
    for a in &task.attestations {
        match groups.iter_mut().find(|g| *g.0 == a.outputs) {
            Some(g) => {
                g.1.push(a.validator);
                g.2 += stake(a.validator);
            }
            None => groups.push((&a.outputs, vec![a.validator], stake(a.validator))),
        }
    }
    if let Some(g) = groups.iter().find(|g| g.2 * 3 > total * 2) {
        let mut by = g.1.clone();
        by.sort_unstable();
        return Tally::Agreed {
            outputs: g.0.clone(),
            by,
        };
    }
    let attested: u128 = groups.iter().map(|g| g.2).sum();
    let left = total - attested;
    if groups.iter().all(|g| (g.2 + left) * 3 <= total * 2) && !groups.is_empty() {
        let said: Vec<String> = groups
            .iter()
            .map(|g| {
                let mut v = g.1.clone();
                v.sort_unstable();
                format!("validators {v:?} signed outputs {}", outputs_digest(g.0))
            })
            .collect();
        return Tally::Split(format!(
            "attestation: the validators disagree ({}); no outputs have more than 2/3 of the stake",
            said.join("; ")
        ));
    }
    Tally::Open
}

/// The receipt of an attested task: the outputs more than 2/3 of the stake signed, no proof.
fn attested_receipt(
    rt: &Runtime,
    model: &ModelRecord,
    task: &Task,
    (outputs, by): (Vec<Vec<i64>>, &[usize]),
    height: u64,
    (gas_used, fee): (u64, u128),
) -> Result<Receipt, BlockError> {
    let pkg = rt.package(model).ok_or_else(|| BlockError::Receipt {
        task: task.id.clone(),
        reason: "the model's package is not loaded".into(),
    })?;
    let (executor, attempt) = match task.status {
        TaskStatus::Pending {
            executor, attempt, ..
        } => (executor, attempt),
        _ => (by[0], 0),
    };
    Ok(Receipt {
        task_id: task.id.clone(),
        model_id: model.model_id.clone(),
        outputs_float: pkg
            .program
            .dequantize_outputs(&outputs)
            .into_iter()
            .map(|t| t.data)
            .collect(),
        outputs,
        proof: vec![],
        public_inputs: serde_json::Value::Null,
        gas_used,
        fee,
        executor,
        attempts: attempt + 1,
        block_height: height,
        block_hash: [0; 32],
        verified_by: vec![],
        mode: ProvingMode::Attested,
        attested_by: by.to_vec(),
    })
}
