//! The chain state and its root.

use std::collections::BTreeMap;

use lightchain_aivm::circuit::Visibility;
pub use lightchain_packager::manifest::ProvingMode;
use serde::{Deserialize, Serialize};

use super::{Address, TaskInput, dec, hex32};

/// An account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    #[serde(with = "dec")]
    pub balance: u128,
    pub nonce: u64,
}

/// A deployed model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The deployed model's id: its program id and input visibility together
    /// ([`crate::chain::params::deployment_id`]).
    pub model_id: String,
    /// The id of its program (what proofs name).
    pub program_id: String,
    pub name: String,
    pub version: String,
    pub deployer: Address,
    pub height: u64,
    pub input_visibility: Visibility,
    pub k: u32,
    /// Gas of one task (the schedule's quote for the model's input shape).
    pub gas: u64,
    #[serde(with = "hex32")]
    pub package_hash: [u8; 32],
    pub package_bytes: u64,
    /// Proven (the default) or attested (executed and signed by the validators).
    #[serde(default, skip_serializing_if = "ProvingMode::is_proven")]
    pub mode: ProvingMode,
    /// The owner's share of each completed task's fee, in basis points (from the manifest).
    #[serde(default)]
    pub royalty_bps: u64,
    /// A new version waiting for the validators' approval (on a chain with
    /// [`super::ChainParams::approve_versions`]): not live, skipped by `NAME@latest`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_approval: bool,
    /// The validators that approved it, in index order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<usize>,
}

impl ModelRecord {
    /// The fee of one task at `gas_price`: the model's gas times the price.
    pub fn fee(&self, gas_price: u64) -> u128 {
        self.gas as u128 * gas_price as u128
    }

    /// The royalty out of a task's `fee`: what the model's deployer receives.
    pub fn royalty(&self, fee: u128) -> u128 {
        fee * self.royalty_bps as u128 / 10_000
    }
}

/// Where a task is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for `executor`'s result: assigned by the block at `since_ms`, due by
    /// `deadline_ms` (block times).
    Pending {
        attempt: u32,
        executor: usize,
        since_ms: u64,
        deadline_ms: u64,
    },
    Completed {
        height: u64,
        executor: usize,
    },
    /// The task will not run: no validator left to execute it (the fee was refunded), or the
    /// submitter's encrypted input does not match its commitment (`submitter_fault`: the fee
    /// is burned as a penalty).
    Failed {
        reason: String,
        #[serde(default)]
        submitter_fault: bool,
    },
}

/// A stateful model's state for one account (see `lightchain_aivm::state`): the values the
/// last completed task wrote, the salt of their commitment and the commitment its proof holds.
/// The values are public (every validator may have to prove the next task from them); the
/// commitment is what the next task's proof must start from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelState {
    pub values: Vec<i64>,
    #[serde(with = "hex32")]
    pub salt: [u8; 32],
    #[serde(with = "hex32")]
    pub commitment: [u8; 32],
    /// The task that wrote it, and the block that took its result.
    pub task_id: String,
    pub height: u64,
}

/// The key of a model's state for an account in [`State::states`].
pub fn state_key(model_id: &str, account: &Address) -> String {
    format!("{model_id}/{account}")
}

/// A submitted task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub model_id: String,
    pub submitter: Address,
    pub gas: u64,
    pub gas_price: u64,
    /// Fee held in escrow until the task completes.
    #[serde(with = "dec")]
    pub fee: u128,
    pub input: TaskInput,
    pub submitted_height: u64,
    /// Executors that failed this task (wrong result or missed deadline).
    pub failed_executors: Vec<usize>,
    /// The outputs each validator signed, for a task of an attested model (in the order the
    /// chain took them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
    /// The schedule whose run this task is (none for a task submitted by a transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(flatten)]
    pub status: TaskStatus,
}

/// One validator's signed outputs for a task of an attested model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub validator: usize,
    pub outputs: Vec<Vec<i64>>,
}

/// Where a recurring task's schedule is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ScheduleStatus {
    /// Runs start every `every` blocks.
    Active,
    /// Every run asked for was started; the deposit left was refunded.
    Finished,
    /// Its owner cancelled it at `height`; the deposit left was refunded.
    Cancelled { height: u64 },
    /// It stopped before its last run (the deposit ran out, or no validator could execute);
    /// the deposit left was refunded.
    Stopped { reason: String },
}

/// A recurring task: the chain itself starts a run (a task like a submitted one, paid from
/// the deposit) every `every` blocks, `count` times, until cancelled or the deposit runs out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The scheduling transaction's hash (hex).
    pub id: String,
    pub owner: Address,
    pub model_id: String,
    /// Gas and price of one run, fixed when scheduled: a run's fee is `gas * gas_price`.
    pub gas: u64,
    pub gas_price: u64,
    pub input: TaskInput,
    pub every: u64,
    pub count: u32,
    /// The task ids of the runs started so far, in order.
    pub runs: Vec<String>,
    /// The height at which the next run starts.
    pub next_height: u64,
    /// What is left of the deposit, held in escrow.
    #[serde(with = "dec")]
    pub deposit: u128,
    #[serde(flatten)]
    pub status: ScheduleStatus,
}

impl Schedule {
    /// The fee of one run.
    pub fn run_fee(&self) -> u128 {
        self.gas as u128 * self.gas_price as u128
    }
}

/// A validator as the chain sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    pub index: usize,
    /// Account that receives fees and holds the stake.
    pub account: Address,
    #[serde(with = "hex32")]
    pub account_key: [u8; 32],
    #[serde(with = "hex32")]
    pub consensus_key: [u8; 32],
    /// X25519 key task inputs are encrypted to.
    #[serde(with = "hex32")]
    pub encryption_key: [u8; 32],
    #[serde(with = "dec")]
    pub stake: u128,
    pub penalties: u32,
    /// Jailed (not assigned tasks) until this height, after a penalty; an `Unjail`
    /// transaction from the validator's account lifts it once the height is reached.
    #[serde(default)]
    pub jailed_until: Option<u64>,
}

/// A recorded offence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    pub height: u64,
    pub task_id: String,
    pub executor: usize,
    pub reason: String,
    #[serde(with = "dec")]
    pub slashed: u128,
}

/// The replicated state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub chain_id: String,
    pub height: u64,
    #[serde(with = "hex32")]
    pub last_hash: [u8; 32],
    pub last_timestamp_ms: u64,
    pub accounts: BTreeMap<Address, Account>,
    pub models: BTreeMap<String, ModelRecord>,
    pub tasks: BTreeMap<String, Task>,
    pub validators: Vec<ValidatorRecord>,
    pub evidence: Vec<EvidenceRecord>,
    /// Recurring tasks, by id.
    #[serde(default)]
    pub schedules: BTreeMap<String, Schedule>,
    /// Stateful models' states, by [`state_key`] (model and account); an account without one
    /// has the model's initial state.
    #[serde(default)]
    pub states: BTreeMap<String, ModelState>,
    /// Taken out of circulation: slashed stake and the fees of submitter faults.
    #[serde(with = "dec")]
    pub burned: u128,
}

impl State {
    /// The state root: blake3 of the state's canonical encoding.
    pub fn root(&self) -> [u8; 32] {
        super::encode::hash("lightchain-devnet state v4", self)
    }

    /// Every unit of currency: balances, stake, fees in escrow and what was burned. Nothing
    /// the chain does changes it.
    pub fn supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| a.balance).sum();
        let stake: u128 = self.validators.iter().map(|v| v.stake).sum();
        let escrow: u128 = self
            .tasks
            .values()
            .filter(|t| matches!(t.status, TaskStatus::Pending { .. }))
            .map(|t| t.fee)
            .sum();
        let deposits: u128 = self
            .schedules
            .values()
            .filter(|s| s.status == ScheduleStatus::Active)
            .map(|s| s.deposit)
            .sum();
        balances + stake + escrow + deposits + self.burned
    }

    /// Whether a validator is in jail at `height`.
    pub fn jailed(&self, validator: usize, height: u64) -> bool {
        self.validators
            .get(validator)
            .and_then(|v| v.jailed_until)
            .is_some_and(|_| height > 0)
    }

    pub fn account(&self, a: &Address) -> Account {
        self.accounts.get(a).cloned().unwrap_or_default()
    }

    /// Keeps the state a completed task wrote (its claim was checked: `new` opens the new
    /// state commitment of `proof`).
    pub(super) fn store_state(
        &mut self,
        key: String,
        new: &super::NewState,
        proof: &[u8],
        (task_id, height): (&str, u64),
    ) -> Result<(), super::BlockError> {
        let commitment = lightchain_aivm::proof::Proof::from_bytes(proof)
            .ok()
            .and_then(|p| p.state)
            .ok_or(super::BlockError::FaultAsProof)?
            .new;
        let state = ModelState {
            values: new.values.clone(),
            salt: new.salt,
            commitment,
            task_id: task_id.to_string(),
            height,
        };
        self.states.insert(key, state);
        Ok(())
    }
}
