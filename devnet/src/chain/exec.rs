//! The state transition: how a block is built, checked and applied. Every validator runs the
//! same deterministic [`apply`]; a proposed block is valid only if applying it succeeds and
//! gives the state root it claims. Applying a task result verifies its proof (or its claim that
//! the submitter lied); applying evidence checks that the result really is wrong.
//!
//! What the transition needs beyond the state (loaded packages, keys, verified proofs) comes
//! from [`Runtime`], whose caches hold pure functions of their keys (a package's bytes, a
//! model's program), so caching never changes what a block means.

use std::sync::Arc;

use lightchain_aivm::Program;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::Proof;

use super::error::{BlockError, TxError};
use super::params::{ChainParams, deployment_id_for};
use super::runtime::{Accepted, ResultError, Runtime, public_inputs};
use super::state::{
    Account, Attestation, EvidenceRecord, ModelRecord, ProvingMode, State, Task, TaskStatus,
    state_key,
};
use super::{attest, schedule};

pub use super::attest::{Tally, tally};
pub use super::schedule::{MAX_EVERY, MAX_RUNS, run_id, schedule_due, schedules_waiting};
use super::{Address, Block, Claim, Evidence, Receipt, SignedTx, TaskInput, TaskResult, TxKind};
use crate::crypto;

/// The executor of a task's attempt: a deterministic pick among the validators that are not
/// jailed and have not failed it.
pub fn assign(state: &State, task_id: &str, attempt: u32, failed: &[usize]) -> Option<usize> {
    let candidates: Vec<usize> = state
        .validators
        .iter()
        .filter(|v| v.jailed_until.is_none() && v.stake > 0 && !failed.contains(&v.index))
        .map(|v| v.index)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let h = blake3::hash(format!("{task_id}/{attempt}").as_bytes());
    let mut x = [0u8; 8];
    x.copy_from_slice(&h.as_bytes()[..8]);
    let x = u64::from_le_bytes(x);
    Some(candidates[(x % candidates.len() as u64) as usize])
}

pub(super) fn debit(state: &mut State, who: &Address, amount: u128) -> Result<(), TxError> {
    let a = state.accounts.entry(*who).or_default();
    if a.balance < amount {
        return Err(TxError::InsufficientBalance {
            needed: amount,
            available: a.balance,
        });
    }
    a.balance -= amount;
    Ok(())
}

pub(super) fn credit(state: &mut State, who: &Address, amount: u128) {
    state.accounts.entry(*who).or_default().balance += amount;
}

/// What applying a block produced beyond the state: receipts of completed tasks (without the
/// block hash and signers, which the caller fills in).
#[derive(Debug, Default)]
pub struct Applied {
    pub receipts: Vec<Receipt>,
}

/// Checks a transaction against the state before it enters the mempool: signature, nonce
/// (not in the past), gas limit against the quote, and balance.
pub fn precheck(
    rt: &Runtime,
    p: &ChainParams,
    state: &State,
    tx: &SignedTx,
    now_ms: u64,
) -> Result<(), TxError> {
    if !tx.signature_ok(&state.chain_id) {
        return Err(TxError::BadSignature);
    }
    let acct = state.account(&tx.body.sender());
    if tx.body.nonce < acct.nonce {
        return Err(TxError::NonceUsed {
            nonce: tx.body.nonce,
            next: acct.nonce,
        });
    }
    let mut scratch = state.clone();
    scratch.accounts.insert(
        tx.body.sender(),
        Account {
            nonce: tx.body.nonce,
            ..acct
        },
    );
    let at = Moment {
        height: state.height + 1,
        now_ms,
        proposer: 0,
    };
    apply_tx(rt, p, &mut scratch, tx, at).map(|_| ())
}

/// Where a transaction is applied: the block's height, its time and its proposer (who
/// receives the base fees).
#[derive(Clone, Copy, Debug)]
pub struct Moment {
    pub height: u64,
    pub now_ms: u64,
    pub proposer: usize,
}

/// Applies one transaction.
pub fn apply_tx(
    rt: &Runtime,
    p: &ChainParams,
    state: &mut State,
    tx: &SignedTx,
    at: Moment,
) -> Result<(), TxError> {
    if !tx.signature_ok(&state.chain_id) {
        return Err(TxError::BadSignature);
    }
    let from = tx.body.sender();
    let acct = state.account(&from);
    if tx.body.nonce != acct.nonce {
        return Err(TxError::NonceGap {
            nonce: tx.body.nonce,
            next: acct.nonce,
        });
    }
    let proposer_account = state
        .validators
        .get(at.proposer)
        .map(|v| v.account)
        .ok_or(TxError::UnknownProposer(at.proposer))?;
    let price = tx.body.gas_price as u128;
    match &tx.body.kind {
        TxKind::Transfer { to, amount } => {
            let fee = p.base_gas as u128 * price;
            let total = fee.checked_add(*amount).ok_or(TxError::Overflow)?;
            debit(state, &from, total)?;
            credit(state, to, *amount);
            credit(state, &proposer_account, fee);
        }
        TxKind::DeployModel { package } => {
            let pkg = rt.load_package(package).map_err(TxError::InvalidPackage)?;
            let vis = pkg.info.input_visibility;
            let id = deployment_id_for(&pkg.info.model_id, vis, pkg.info.mode);
            if state.models.contains_key(&id) {
                return Err(TxError::AlreadyDeployed {
                    id,
                    program: pkg.info.model_id.clone(),
                    visibility: vis,
                });
            }
            // The name and version the package's manifest declares (package.json could say
            // anything).
            if (pkg.info.name.as_str(), pkg.info.version.as_str())
                != (pkg.manifest.name.as_str(), pkg.manifest.version.as_str())
            {
                return Err(TxError::InvalidPackage(
                    "package.json's name or version is not the manifest's".into(),
                ));
            }
            super::registry::check_deploy(
                state,
                &from,
                (&pkg.info.name, &pkg.info.version),
                &pkg.info.model_id,
                (vis, pkg.info.mode),
            )?;
            let fee = (p.base_gas + p.deploy_gas_per_byte * package.len() as u64) as u128 * price;
            // A new version of a deployed name waits for the validators, where they approve.
            let pending_approval =
                p.approve_versions && super::registry::owner(state, &pkg.info.name).is_some();
            debit(state, &from, fee)?;
            credit(state, &proposer_account, fee);
            let hash = *blake3::hash(package).as_bytes();
            let g = rt.gas(&pkg, hash);
            state.models.insert(
                id.clone(),
                ModelRecord {
                    model_id: id,
                    program_id: pkg.info.model_id.clone(),
                    name: pkg.info.name.clone(),
                    version: pkg.info.version.clone(),
                    deployer: from,
                    height: at.height,
                    input_visibility: vis,
                    k: g.k,
                    gas: g.total,
                    package_hash: hash,
                    package_bytes: package.len() as u64,
                    mode: pkg.info.mode,
                    royalty_bps: pkg.manifest.royalty_bps,
                    pending_approval,
                    approvals: Vec::new(),
                },
            );
        }
        TxKind::SubmitTask {
            model_id,
            gas_limit,
            input,
        } => submit_task(rt, p, state, tx, at, (model_id, *gas_limit, input))?,
        TxKind::ScheduleTask {
            model_id,
            gas_limit,
            input,
            every,
            count,
            deposit,
        } => {
            let task = (model_id.as_str(), *gas_limit, input);
            let fee = p.base_gas as u128 * price;
            schedule::open(rt, state, tx, at, task, (*every, *count, *deposit), fee)?;
            credit(state, &proposer_account, fee);
        }
        TxKind::CancelSchedule { schedule_id } => {
            let fee = p.base_gas as u128 * price;
            schedule::cancel(state, &from, schedule_id, fee, at)?;
            credit(state, &proposer_account, fee);
        }
        // Free: only a validator's account may send one, once per version.
        TxKind::ApproveVersion { model_id } => super::registry::approve(state, &from, model_id)?,
        TxKind::Unjail { validator } => {
            let fee = p.base_gas as u128 * price;
            let v = state
                .validators
                .get(*validator)
                .ok_or(TxError::UnknownValidator(*validator))?;
            if v.account != from {
                return Err(TxError::NotValidatorAccount);
            }
            match v.jailed_until {
                None => return Err(TxError::NotJailed(*validator)),
                Some(h) if h > at.height => {
                    return Err(TxError::StillJailed {
                        validator: *validator,
                        until: h,
                    });
                }
                Some(_) => {}
            }
            debit(state, &from, fee)?;
            credit(state, &proposer_account, fee);
            state.validators[*validator].jailed_until = None;
        }
    }
    state.accounts.entry(from).or_default().nonce += 1;
    Ok(())
}

/// A task submission: the model is deployed, the gas limit covers its quote, the input has the
/// model's visibility (public inputs fit the model), the fee is held in escrow, and the task is
/// assigned to its first executor with a deadline from this block.
fn submit_task(
    rt: &Runtime,
    p: &ChainParams,
    state: &mut State,
    tx: &SignedTx,
    at: Moment,
    (model_id, gas_limit, input): (&str, u64, &TaskInput),
) -> Result<(), TxError> {
    let from = tx.body.sender();
    let model = check_task(rt, state, model_id, gas_limit, input)?;
    if rt.package(&model).is_some_and(|p| p.program.state)
        && let Some(t) = state.tasks.values().find(|t| {
            t.model_id == model.model_id
                && t.submitter == from
                && matches!(t.status, TaskStatus::Pending { .. })
        })
    {
        return Err(TxError::StatePending(t.id.clone()));
    }
    let fee = model.fee(tx.body.gas_price);
    debit(state, &from, fee)?;
    let id = crypto::hex(&tx.hash());
    let executor = assign(state, &id, 0, &[]).ok_or(TxError::NoExecutor)?;
    let task = NewTask {
        id,
        model: &model,
        submitter: from,
        gas_price: tx.body.gas_price,
        fee,
        input,
        schedule: None,
    };
    open_task(p, state, task, executor, at);
    Ok(())
}

/// Checks a task before it is submitted or scheduled: the model is deployed, the gas limit
/// covers its quote, the input has the model's visibility (public inputs fit the model).
/// Returns the model.
pub(super) fn check_task(
    rt: &Runtime,
    state: &State,
    model_id: &str,
    gas_limit: u64,
    input: &TaskInput,
) -> Result<ModelRecord, TxError> {
    let model = state
        .models
        .get(model_id)
        .ok_or_else(|| TxError::UnknownModel(model_id.to_string()))?
        .clone();
    if model.pending_approval {
        return Err(TxError::NotApproved(model_id.to_string()));
    }
    if gas_limit < model.gas {
        return Err(TxError::GasLimit {
            limit: gas_limit,
            quote: model.gas,
        });
    }
    match (input, model.input_visibility) {
        (TaskInput::Public { inputs }, Visibility::Public) => {
            let pkg = rt
                .package(&model)
                .ok_or_else(|| TxError::PackageNotLoaded(model_id.to_string()))?;
            public_inputs(&pkg, inputs).map_err(|e| TxError::InvalidInput(e.to_string()))?;
        }
        (TaskInput::Encrypted { keys, .. }, Visibility::Hashed) => {
            if keys.is_empty() {
                return Err(TxError::NoInputKeys);
            }
        }
        (_, model) => return Err(TxError::WrongVisibility { model }),
    }
    Ok(model)
}

/// A task about to be opened (its fee already taken from the submitter or a deposit).
pub(super) struct NewTask<'a> {
    pub(super) id: String,
    pub(super) model: &'a ModelRecord,
    pub(super) submitter: Address,
    pub(super) gas_price: u64,
    pub(super) fee: u128,
    pub(super) input: &'a TaskInput,
    pub(super) schedule: Option<String>,
}

/// Opens a task, assigned to `executor`, with its fee in escrow.
pub(super) fn open_task(
    p: &ChainParams,
    state: &mut State,
    t: NewTask,
    executor: usize,
    at: Moment,
) {
    state.tasks.insert(
        t.id.clone(),
        Task {
            id: t.id,
            model_id: t.model.model_id.clone(),
            submitter: t.submitter,
            gas: t.model.gas,
            gas_price: t.gas_price,
            fee: t.fee,
            input: t.input.clone(),
            submitted_height: at.height,
            failed_executors: vec![],
            attestations: vec![],
            schedule: t.schedule,
            // The deadline runs from the block that assigns the task, never from an
            // earlier one (an idle chain would otherwise time every new task out).
            status: TaskStatus::Pending {
                attempt: 0,
                executor,
                since_ms: at.now_ms,
                deadline_ms: at.now_ms + p.task_timeout(t.model.gas),
            },
        },
    );
}

/// Moves a task to its next executor after a failure, or fails it (refunding the fee) when
/// no validator is left to run it.
fn reassign_task(p: &ChainParams, state: &mut State, task_id: &str, failed: usize, now_ms: u64) {
    let Some(task) = state.tasks.get(task_id) else {
        return;
    };
    let TaskStatus::Pending { attempt, .. } = task.status else {
        return;
    };
    let mut failed_executors = task.failed_executors.clone();
    if !failed_executors.contains(&failed) {
        failed_executors.push(failed);
    }
    let next = assign(state, task_id, attempt + 1, &failed_executors);
    let Some(task) = state.tasks.get_mut(task_id) else {
        return;
    };
    task.failed_executors = failed_executors;
    match next {
        Some(e) => {
            task.status = TaskStatus::Pending {
                attempt: attempt + 1,
                executor: e,
                since_ms: now_ms,
                deadline_ms: now_ms + p.task_timeout(task.gas),
            }
        }
        None => {
            task.status = TaskStatus::Failed {
                reason: "every validator failed this task".into(),
                submitter_fault: false,
            };
            let (who, fee) = (task.submitter, task.fee);
            credit(state, &who, fee);
        }
    }
}

/// Fails a pending task that nobody is at fault for, refunding its fee to the submitter.
pub(super) fn fail_task(state: &mut State, task_id: &str, reason: String) {
    let Some(task) = state.tasks.get_mut(task_id) else {
        return;
    };
    task.status = TaskStatus::Failed {
        reason,
        submitter_fault: false,
    };
    let (who, fee) = (task.submitter, task.fee);
    credit(state, &who, fee);
}

/// Slashes and jails an executor whose result was wrong.
fn penalise(p: &ChainParams, state: &mut State, executor: usize, height: u64) -> u128 {
    let v = &mut state.validators[executor];
    let slashed = v.stake * p.slash_bps as u128 / 10_000;
    v.stake -= slashed;
    v.penalties += 1;
    v.jailed_until = Some(height + p.jail_blocks);
    state.burned += slashed;
    slashed
}

/// Applies a block to `state`. Any invalid content makes the whole block invalid.
pub fn apply(
    rt: &Runtime,
    p: &ChainParams,
    state: &mut State,
    block: &Block,
) -> Result<Applied, BlockError> {
    if block.height != state.height + 1 {
        return Err(BlockError::Height {
            height: block.height,
            last: state.height,
        });
    }
    if block.parent != state.last_hash {
        return Err(BlockError::Parent);
    }
    if block.timestamp_ms < state.last_timestamp_ms {
        return Err(BlockError::TimeBackwards);
    }
    if block.proposer >= state.validators.len() {
        return Err(BlockError::UnknownProposer(block.proposer));
    }
    let now = block.timestamp_ms;
    let at = Moment {
        height: block.height,
        now_ms: now,
        proposer: block.proposer,
    };
    for (i, tx) in block.txs.iter().enumerate() {
        apply_tx(rt, p, state, tx, at).map_err(|error| BlockError::Tx { index: i, error })?;
    }
    schedule::run_schedules(p, state, at);
    let mut applied = Applied::default();
    for r in &block.results {
        let outcome = rt
            .check_result(state, r)
            .map_err(|error| BlockError::Result {
                task: r.task_id.clone(),
                error,
            })?;
        let task = state
            .tasks
            .get_mut(&r.task_id)
            .ok_or_else(|| BlockError::UnknownTask(r.task_id.clone()))?;
        let (fee, gas_used, model_id) = (task.fee, task.gas, task.model_id.clone());
        match (outcome, &r.claim) {
            (
                Accepted::Proven,
                Claim::Proof {
                    outputs,
                    proof,
                    state: new,
                },
            ) => {
                task.status = TaskStatus::Completed {
                    height: block.height,
                    executor: r.executor,
                };
                if let Some(new) = new {
                    let key = state_key(&model_id, &task.submitter);
                    state.store_state(key, new, proof, (&r.task_id, block.height))?;
                }
                let account = state.validators[r.executor].account;
                let model = &state.models[&model_id];
                let (royalty, owner) = (model.royalty(fee), model.deployer);
                credit(state, &owner, royalty);
                credit(state, &account, fee - royalty);
                let model = &state.models[&model_id];
                let paid = (gas_used, fee);
                let receipt = receipt(rt, model, r, outputs, proof, block.height, paid)?;
                applied.receipts.push(receipt);
            }
            (Accepted::SubmitterFault(reason), _) => {
                task.status = TaskStatus::Failed {
                    reason: format!("submitter fault: {reason}"),
                    submitter_fault: true,
                };
                // The fee is not refunded: it is burned, so that neither the executor nor
                // anyone else gains from calling a submitter a liar.
                state.burned += fee;
            }
            (Accepted::Attested, Claim::Attestation { outputs }) => {
                task.attestations.push(Attestation {
                    validator: r.executor,
                    outputs: outputs.clone(),
                });
                let task = task.clone();
                let paid = (gas_used, fee);
                if let Some(receipt) = attest::settle(rt, state, &task, block.height, paid)? {
                    applied.receipts.push(receipt);
                }
            }
            (Accepted::Proven, Claim::SubmitterFault { .. } | Claim::Attestation { .. })
            | (Accepted::Attested, _) => {
                return Err(BlockError::FaultAsProof);
            }
        }
    }
    for Evidence { result: r, reason } in &block.evidence {
        match rt.check_result(state, r) {
            Err(ResultError::Invalid(_)) => {}
            Ok(_) => return Err(BlockError::ValidEvidence(r.task_id.clone())),
            Err(error) => {
                return Err(BlockError::Evidence {
                    task: r.task_id.clone(),
                    error,
                });
            }
        }
        let slashed = penalise(p, state, r.executor, block.height);
        state.evidence.push(EvidenceRecord {
            height: block.height,
            task_id: r.task_id.clone(),
            executor: r.executor,
            reason: reason.clone(),
            slashed,
        });
        reassign_task(p, state, &r.task_id, r.executor, now);
    }
    for id in &block.reassign {
        let task = state
            .tasks
            .get(id)
            .ok_or_else(|| BlockError::UnknownTask(id.clone()))?;
        match task.status {
            TaskStatus::Pending {
                executor,
                deadline_ms,
                ..
            } if deadline_ms <= now => {
                let attested = state
                    .models
                    .get(&task.model_id)
                    .is_some_and(|m| m.mode == ProvingMode::Attested);
                if attested {
                    let reason = format!(
                        "attestation: {} validator(s) attested before the deadline, short of more than 2/3 of the stake",
                        task.attestations.len()
                    );
                    fail_task(state, id, reason);
                } else {
                    reassign_task(p, state, id, executor, now);
                }
            }
            _ => return Err(BlockError::NotOverdue(id.clone())),
        }
    }
    state.height = block.height;
    state.last_timestamp_ms = now;
    Ok(applied)
}

/// The receipt of a proven task, with the gas and fee it paid (without the block hash and signers, which the caller fills
/// in).
fn receipt(
    rt: &Runtime,
    model: &ModelRecord,
    r: &TaskResult,
    outputs: &[Vec<i64>],
    proof: &[u8],
    height: u64,
    (gas_used, fee): (u64, u128),
) -> Result<Receipt, BlockError> {
    let fail = |reason: String| BlockError::Receipt {
        task: r.task_id.clone(),
        reason,
    };
    let pkg = rt
        .package(model)
        .ok_or_else(|| fail("the model's package is not loaded".into()))?;
    let parsed = Proof::from_bytes(proof).map_err(|e| fail(e.to_string()))?;
    let envelope: serde_json::Value =
        serde_json::from_str(&parsed.to_json()).map_err(|e| fail(e.to_string()))?;
    Ok(Receipt {
        task_id: r.task_id.clone(),
        model_id: model.model_id.clone(),
        outputs: outputs.to_vec(),
        outputs_float: pkg
            .program
            .dequantize_outputs(outputs)
            .into_iter()
            .map(|t| t.data)
            .collect(),
        proof: proof.to_vec(),
        public_inputs: envelope["public_inputs"].clone(),
        gas_used,
        fee,
        executor: r.executor,
        attempts: r.attempt + 1,
        block_height: height,
        block_hash: [0; 32],
        verified_by: vec![],
        mode: ProvingMode::Proven,
        attested_by: vec![],
    })
}

/// Checks a proposed block on a copy of the state: contents, proofs and the claimed root.
pub fn validate(
    rt: &Runtime,
    p: &ChainParams,
    state: &State,
    block: &Block,
    now_ms: u64,
) -> Result<(), BlockError> {
    if block.timestamp_ms > now_ms + p.max_skew_ms {
        return Err(BlockError::FutureTimestamp);
    }
    let mut s = state.clone();
    apply(rt, p, &mut s, block)?;
    if s.root() != block.state_root {
        return Err(BlockError::StateRoot);
    }
    Ok(())
}

/// Tasks past their deadline at `now_ms`.
pub fn overdue(state: &State, now_ms: u64) -> impl Iterator<Item = &Task> {
    state.tasks.values().filter(
        move |t| matches!(t.status, TaskStatus::Pending { deadline_ms, .. } if deadline_ms <= now_ms),
    )
}

/// What a proposer may include.
pub struct Pools<'a> {
    /// Transactions in the order to try them (each sender's by nonce).
    pub txs: &'a [SignedTx],
    pub results: &'a [TaskResult],
}

/// Builds the next block: the pool's transactions that apply (in order), valid results (and
/// evidence for wrong ones), and tasks past their deadline. Returns the block and the
/// transactions it dropped as invalid.
pub fn build(
    rt: &Runtime,
    p: &ChainParams,
    state: &State,
    pools: Pools,
    proposer: usize,
    now_ms: u64,
) -> (Block, Vec<[u8; 32]>) {
    let mut s = state.clone();
    let height = state.height + 1;
    let now = now_ms.max(state.last_timestamp_ms);
    let at = Moment {
        height,
        now_ms: now,
        proposer,
    };
    let mut txs = Vec::new();
    let mut dropped = Vec::new();
    for tx in pools.txs {
        let mut trial = s.clone();
        match apply_tx(rt, p, &mut trial, tx, at) {
            Ok(()) => {
                s = trial;
                txs.push(tx.clone());
            }
            Err(_) if tx.body.nonce > s.account(&tx.body.sender()).nonce => {} // a later nonce: wait
            Err(_) => dropped.push(tx.hash()),
        }
    }
    let mut results = Vec::new();
    let mut evidence = Vec::new();
    let mut resolved = Vec::new();
    // Attestations: one per validator and task, until the tally decides the task.
    let mut attesting: std::collections::HashMap<String, Task> = Default::default();
    for r in pools.results {
        if resolved.contains(&r.task_id) {
            continue;
        }
        if let Claim::Attestation { outputs } = &r.claim {
            let (Ok(Accepted::Attested), Some(base)) =
                (rt.check_result(&s, r), s.tasks.get(&r.task_id))
            else {
                continue;
            };
            let t = attesting
                .entry(r.task_id.clone())
                .or_insert_with(|| base.clone());
            if t.attestations.iter().any(|a| a.validator == r.executor) {
                continue;
            }
            t.attestations.push(Attestation {
                validator: r.executor,
                outputs: outputs.clone(),
            });
            results.push(r.clone());
            if tally(&s, t) != Tally::Open {
                resolved.push(r.task_id.clone());
            }
            continue;
        }
        match rt.check_result(&s, r) {
            Ok(_) => {
                resolved.push(r.task_id.clone());
                results.push(r.clone());
            }
            Err(ResultError::Invalid(e)) => {
                resolved.push(r.task_id.clone());
                evidence.push(Evidence {
                    result: r.clone(),
                    reason: e,
                });
            }
            Err(ResultError::Stale(_) | ResultError::Local(_)) => {}
        }
    }
    let reassign: Vec<String> = overdue(&s, now)
        .filter(|t| !resolved.contains(&t.id))
        .map(|t| t.id.clone())
        .collect();
    let mut block = Block {
        height,
        parent: state.last_hash,
        timestamp_ms: now,
        proposer,
        txs,
        results,
        evidence,
        reassign,
        state_root: [0; 32],
    };
    let mut after = state.clone();
    match apply(rt, p, &mut after, &block) {
        Ok(_) => block.state_root = after.root(),
        Err(_) => {
            // Defensive: never propose a block we would reject ourselves.
            block.results.clear();
            block.evidence.clear();
            block.reassign.clear();
            let mut after = state.clone();
            if apply(rt, p, &mut after, &block).is_err() {
                block.txs.clear();
                after = state.clone();
                let _ = apply(rt, p, &mut after, &block);
            }
            block.state_root = after.root();
        }
    }
    (block, dropped)
}

/// The program of a deployed model.
pub fn program(rt: &Runtime, state: &State, model_id: &str) -> Option<Arc<Program>> {
    state
        .models
        .get(model_id)
        .and_then(|m| rt.package(m))
        .map(|p| p.program.clone())
}
