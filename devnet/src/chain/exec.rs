//! Building, checking and applying blocks. Every validator runs the same deterministic
//! [`apply`]; a proposed block is valid only if applying it succeeds and gives the state root it
//! claims. Applying a task result verifies its proof; applying evidence checks that the proof
//! really fails.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{Keys, ParamsCache, Proof, PublicInput};
use lightchain_aivm::{Program, gas};
use lightchain_packager::Package;

use super::state::{Account, EvidenceRecord, ModelRecord, State, Task, TaskStatus};
use super::{Address, Block, Evidence, Receipt, SignedTx, TaskInput, TaskResult, TxKind};
use crate::crypto;

/// Chain parameters that every validator shares.
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// Gas of a transfer or deployment (paid to the block's proposer).
    pub base_gas: u64,
    /// Gas per byte of a deployed package.
    pub deploy_gas_per_byte: u64,
    /// How long an executor has for a task before it is reassigned.
    pub task_timeout_ms: u64,
    /// Stake taken from an executor per offence.
    pub slash: u128,
    /// Largest accepted clock skew of a block timestamp.
    pub max_skew_ms: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            base_gas: 21_000,
            deploy_gas_per_byte: 16,
            task_timeout_ms: 60_000,
            slash: 1_000_000_000,
            max_skew_ms: 5_000,
        }
    }
}

/// Why a task result is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultError {
    /// The task does not wait for this result now (already completed, another attempt or
    /// executor, unknown task, a signature that is not the executor's): nobody's offence.
    Stale(String),
    /// The result itself is wrong (its proof fails or does not match the task): evidence
    /// against its executor.
    Invalid(String),
    /// This validator could not check it (keys, parameters): neither accepted nor evidence.
    Local(String),
}

impl std::fmt::Display for ResultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultError::Stale(e) => write!(f, "stale: {e}"),
            ResultError::Invalid(e) | ResultError::Local(e) => f.write_str(e),
        }
    }
}

/// A package load's outcome, cached by the package's hash.
type LoadOutcome = Result<Arc<Package>, String>;

/// Per-validator caches: loaded packages, keys and verification outcomes. Everything here is a
/// pure function of its key, so caching never changes what a block means.
pub struct Runtime {
    pub params: ParamsCache,
    packages: Mutex<HashMap<[u8; 32], LoadOutcome>>,
    by_model: Mutex<HashMap<String, Arc<Package>>>,
    verifiers: Mutex<HashMap<String, Arc<Keys>>>,
    provers: Mutex<HashMap<String, Arc<Keys>>>,
    /// Gas of one task of each loaded model (metering lays the circuit out: done once).
    gas: Mutex<HashMap<String, gas::GasReport>>,
    /// Outcomes of proof checks (never of state checks), by result hash.
    checked: Mutex<HashMap<[u8; 32], Result<(), ResultError>>>,
}

impl Runtime {
    pub fn new(params: ParamsCache) -> Runtime {
        Runtime {
            params,
            packages: Default::default(),
            by_model: Default::default(),
            verifiers: Default::default(),
            provers: Default::default(),
            gas: Default::default(),
            checked: Default::default(),
        }
    }

    /// Loads (guards, lowers and checks) a package. A panic while loading an untrusted file is
    /// caught and reported as an invalid package rather than taking the validator down.
    pub fn load_package(&self, bytes: &[u8]) -> Result<Arc<Package>, String> {
        let key = *blake3::hash(bytes).as_bytes();
        if let Some(r) = self.packages.lock().expect("cache").get(&key) {
            return r.clone();
        }
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| lightchain_packager::load(bytes)))
            .map_err(|_| "the package could not be loaded (the loader panicked)".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map(Arc::new);
        if let Ok(p) = &r {
            self.by_model
                .lock()
                .expect("cache")
                .insert(p.info.model_id.clone(), p.clone());
        }
        self.packages.lock().expect("cache").insert(key, r.clone());
        r
    }

    /// The gas of one task of a package's model, metered from its program (a package's own
    /// gas table is not trusted).
    pub fn gas(&self, pkg: &Package) -> gas::GasReport {
        let id = &pkg.info.model_id;
        if let Some(g) = self.gas.lock().expect("cache").get(id) {
            return g.clone();
        }
        let g = gas::meter(&pkg.program, pkg.info.input_visibility);
        self.gas
            .lock()
            .expect("cache")
            .insert(id.clone(), g.clone());
        g
    }

    /// A deployed model's package (loaded when its deployment was applied).
    pub fn package(&self, model_id: &str) -> Option<Arc<Package>> {
        self.by_model.lock().expect("cache").get(model_id).cloned()
    }

    fn keys(&self, model_id: &str, proving: bool) -> Result<Arc<Keys>, String> {
        let cache = if proving {
            &self.provers
        } else {
            &self.verifiers
        };
        if let Some(k) = cache.lock().expect("cache").get(model_id) {
            return Ok(k.clone());
        }
        // An executor's proving keys hold the verifying key too: no second derivation.
        if !proving && let Some(k) = self.provers.lock().expect("cache").get(model_id) {
            return Ok(k.clone());
        }
        let pkg = self
            .package(model_id)
            .ok_or_else(|| format!("model {model_id} is not deployed"))?;
        let k = Arc::new(pkg.keys(&self.params, proving).map_err(|e| e.to_string())?);
        cache
            .lock()
            .expect("cache")
            .insert(model_id.to_string(), k.clone());
        Ok(k)
    }

    /// Keys with a proving key (executors).
    pub fn prover(&self, model_id: &str) -> Result<Arc<Keys>, String> {
        self.keys(model_id, true)
    }

    /// Verifying keys, derived from the program alone.
    pub fn verifier(&self, model_id: &str) -> Result<Arc<Keys>, String> {
        self.keys(model_id, false)
    }

    /// Checks a task result against the task: that the task waits for it from this executor
    /// and is signed by it (against `state`, every time), then its public inputs and proof
    /// (cached by the result's hash: that part depends on the result and the task alone).
    pub fn check_result(&self, state: &State, r: &TaskResult) -> Result<(), ResultError> {
        let stale = |e: &str| ResultError::Stale(e.to_string());
        let task = state
            .tasks
            .get(&r.task_id)
            .ok_or_else(|| stale("unknown task"))?;
        match task.status {
            TaskStatus::Pending {
                attempt, executor, ..
            } if attempt == r.attempt && executor == r.executor => {}
            _ => return Err(stale("the task is not waiting for this executor")),
        }
        let v = state
            .validators
            .get(r.executor)
            .ok_or_else(|| stale("unknown executor"))?;
        let msg = TaskResult::sign_bytes(&r.task_id, r.attempt, r.executor, &r.outputs, &r.proof);
        if !crypto::verify(&v.account_key, &msg, &r.signature) {
            return Err(stale("the executor's signature is invalid"));
        }
        let key = r.hash();
        if let Some(c) = self.checked.lock().expect("cache").get(&key) {
            return c.clone();
        }
        let out = self.check_proof(task, r);
        if !matches!(out, Err(ResultError::Local(_))) {
            self.checked.lock().expect("cache").insert(key, out.clone());
        }
        out
    }

    /// The result's proof against its task: model, nonce, outputs, inputs, then verification.
    fn check_proof(&self, task: &Task, r: &TaskResult) -> Result<(), ResultError> {
        let invalid = |e: &str| ResultError::Invalid(e.to_string());
        let local = |e: String| ResultError::Local(e);
        let proof = Proof::from_bytes(&r.proof).map_err(|e| invalid(&e.to_string()))?;
        if proof.model_id.to_string() != task.model_id {
            return Err(invalid("the proof is for another model"));
        }
        if crypto::hex(&proof.nonce) != task.id {
            return Err(invalid("the proof is bound to another task"));
        }
        if proof.outputs != r.outputs {
            return Err(invalid(
                "the outputs differ from the proof's public outputs",
            ));
        }
        let pkg = self
            .package(&task.model_id)
            .ok_or_else(|| local("the model is not deployed".into()))?;
        match (&task.input, &proof.input) {
            (TaskInput::Public { inputs }, PublicInput::Values(v)) => {
                // The task's inputs were checked when it was submitted.
                let q = public_inputs(&pkg, inputs).map_err(local)?;
                if &q != v {
                    return Err(invalid("the proof's inputs are not the task's"));
                }
            }
            (TaskInput::Encrypted { commitment, .. }, PublicInput::Commitment(c)) => {
                if c != commitment {
                    return Err(invalid("the proof's input commitment is not the task's"));
                }
            }
            _ => {
                return Err(invalid(
                    "the proof's input visibility does not match the task",
                ));
            }
        }
        let keys = self.verifier(&task.model_id).map_err(local)?;
        keys.verify(&proof).map_err(|e| invalid(&e.to_string()))
    }
}

/// The quantized public inputs of a task.
pub fn public_inputs(pkg: &Package, inputs: &serde_json::Value) -> Result<Vec<Vec<i64>>, String> {
    let parsed = pkg
        .model
        .parse_inputs(&inputs.to_string())
        .map_err(|e| e.to_string())?;
    let q = pkg
        .program
        .quantize_inputs(&parsed)
        .map_err(|e| e.to_string())?;
    pkg.program.check_inputs(&q).map_err(|e| e.to_string())?;
    Ok(q)
}

/// The executor of a task's attempt: a deterministic pick among the validators that have not
/// failed it.
pub fn assign(task_id: &str, attempt: u32, n: usize, failed: &[usize]) -> Option<usize> {
    let candidates: Vec<usize> = (0..n).filter(|i| !failed.contains(i)).collect();
    if candidates.is_empty() {
        return None;
    }
    let h = blake3::hash(format!("{task_id}/{attempt}").as_bytes());
    let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    Some(candidates[(x % candidates.len() as u64) as usize])
}

fn debit(state: &mut State, who: &Address, amount: u128) -> Result<(), String> {
    let a = state.accounts.entry(*who).or_default();
    if a.balance < amount {
        return Err(format!(
            "insufficient balance: {} needed, {} available",
            amount, a.balance
        ));
    }
    a.balance -= amount;
    Ok(())
}

fn credit(state: &mut State, who: &Address, amount: u128) {
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
pub fn precheck(rt: &Runtime, p: &ChainParams, state: &State, tx: &SignedTx) -> Result<(), String> {
    if !tx.signature_ok() {
        return Err("invalid signature".into());
    }
    let acct = state.account(&tx.body.sender());
    if tx.body.nonce < acct.nonce {
        return Err(format!(
            "nonce {} is already used (next is {})",
            tx.body.nonce, acct.nonce
        ));
    }
    let mut scratch = state.clone();
    scratch.accounts.insert(
        tx.body.sender(),
        Account {
            nonce: tx.body.nonce,
            ..acct
        },
    );
    apply_tx(rt, p, &mut scratch, tx, state.height + 1, 0).map(|_| ())
}

/// Applies one transaction. `proposer` receives the base fees.
pub fn apply_tx(
    rt: &Runtime,
    p: &ChainParams,
    state: &mut State,
    tx: &SignedTx,
    height: u64,
    proposer: usize,
) -> Result<(), String> {
    if !tx.signature_ok() {
        return Err("invalid signature".into());
    }
    let from = tx.body.sender();
    let acct = state.account(&from);
    if tx.body.nonce != acct.nonce {
        return Err(format!(
            "nonce {} is not the account's next nonce {}",
            tx.body.nonce, acct.nonce
        ));
    }
    let proposer_account = state
        .validators
        .get(proposer)
        .map(|v| v.account)
        .ok_or("unknown proposer")?;
    let price = tx.body.gas_price as u128;
    match &tx.body.kind {
        TxKind::Transfer { to, amount } => {
            let fee = p.base_gas as u128 * price;
            let total = fee
                .checked_add(*amount)
                .ok_or("the amount plus the fee overflows")?;
            debit(state, &from, total)?;
            credit(state, to, *amount);
            credit(state, &proposer_account, fee);
        }
        TxKind::DeployModel { package } => {
            let pkg = rt.load_package(package)?;
            let id = pkg.info.model_id.clone();
            if state.models.contains_key(&id) {
                return Err(format!("model {id} is already deployed"));
            }
            let fee = (p.base_gas + p.deploy_gas_per_byte * package.len() as u64) as u128 * price;
            debit(state, &from, fee)?;
            credit(state, &proposer_account, fee);
            let g = rt.gas(&pkg);
            state.models.insert(
                id.clone(),
                ModelRecord {
                    model_id: id,
                    name: pkg.info.name.clone(),
                    version: pkg.info.version.clone(),
                    deployer: from,
                    height,
                    input_visibility: pkg.info.input_visibility,
                    k: g.k,
                    gas: g.total,
                    package_hash: *blake3::hash(package).as_bytes(),
                    package_bytes: package.len() as u64,
                },
            );
        }
        TxKind::SubmitTask {
            model_id,
            gas_limit,
            input,
        } => {
            let model = state
                .models
                .get(model_id)
                .ok_or_else(|| format!("model {model_id} is not deployed"))?
                .clone();
            if *gas_limit < model.gas {
                return Err(format!(
                    "gas limit {gas_limit} is below the task's quote of {} gas",
                    model.gas
                ));
            }
            match (input, model.input_visibility) {
                (TaskInput::Public { inputs }, Visibility::Public) => {
                    let pkg = rt
                        .package(model_id)
                        .ok_or("the model's package is not loaded")?;
                    public_inputs(&pkg, inputs)?;
                }
                (TaskInput::Encrypted { keys, .. }, Visibility::Hashed) => {
                    if keys.is_empty() {
                        return Err("an encrypted input needs keys for the validators".into());
                    }
                }
                (TaskInput::Public { .. }, Visibility::Hashed) => {
                    return Err("this model commits to its inputs: submit them encrypted".into());
                }
                (TaskInput::Encrypted { .. }, Visibility::Public) => {
                    return Err(
                        "this model proves with public inputs: it cannot take encrypted inputs"
                            .into(),
                    );
                }
            }
            let fee = model.gas as u128 * price;
            debit(state, &from, fee)?;
            let id = crypto::hex(&tx.hash());
            let n = state.validators.len();
            let executor = assign(&id, 0, n, &[]).ok_or("no validators")?;
            state.tasks.insert(
                id.clone(),
                Task {
                    id,
                    model_id: model_id.clone(),
                    submitter: from,
                    gas: model.gas,
                    gas_price: tx.body.gas_price,
                    fee,
                    input: input.clone(),
                    submitted_height: height,
                    failed_executors: vec![],
                    status: TaskStatus::Pending {
                        attempt: 0,
                        executor,
                        since_ms: state.last_timestamp_ms,
                    },
                },
            );
        }
    }
    state.accounts.entry(from).or_default().nonce += 1;
    Ok(())
}

/// Moves a task to its next executor after a failure, or fails it (refunding the fee) when
/// every validator has failed it.
fn reassign_task(state: &mut State, task_id: &str, failed: usize, now_ms: u64) {
    let n = state.validators.len();
    let Some(task) = state.tasks.get_mut(task_id) else {
        return;
    };
    let TaskStatus::Pending { attempt, .. } = task.status else {
        return;
    };
    if !task.failed_executors.contains(&failed) {
        task.failed_executors.push(failed);
    }
    match assign(task_id, attempt + 1, n, &task.failed_executors) {
        Some(e) => {
            task.status = TaskStatus::Pending {
                attempt: attempt + 1,
                executor: e,
                since_ms: now_ms,
            }
        }
        None => {
            task.status = TaskStatus::Failed {
                reason: "every validator failed this task".into(),
            };
            let (who, fee) = (task.submitter, task.fee);
            credit(state, &who, fee);
        }
    }
}

/// Applies a block to `state`. Any invalid content makes the whole block invalid.
pub fn apply(
    rt: &Runtime,
    p: &ChainParams,
    state: &mut State,
    block: &Block,
) -> Result<Applied, String> {
    if block.height != state.height + 1 {
        return Err(format!(
            "height {} does not follow {}",
            block.height, state.height
        ));
    }
    if block.parent != state.last_hash {
        return Err("the parent hash is not the last block's".into());
    }
    if block.timestamp_ms < state.last_timestamp_ms {
        return Err("the timestamp goes back in time".into());
    }
    if block.proposer >= state.validators.len() {
        return Err("unknown proposer".into());
    }
    let now = block.timestamp_ms;
    for (i, tx) in block.txs.iter().enumerate() {
        apply_tx(rt, p, state, tx, block.height, block.proposer)
            .map_err(|e| format!("transaction {i}: {e}"))?;
    }
    let mut applied = Applied::default();
    for r in &block.results {
        rt.check_result(state, r)
            .map_err(|e| format!("result for task {}: {e}", r.task_id))?;
        let task = state.tasks.get_mut(&r.task_id).expect("checked");
        task.status = TaskStatus::Completed {
            height: block.height,
            executor: r.executor,
        };
        let (fee, gas_used, model_id) = (task.fee, task.gas, task.model_id.clone());
        let attempts = r.attempt + 1;
        let account = state.validators[r.executor].account;
        credit(state, &account, fee);
        let pkg = rt.package(&model_id).ok_or("the model is not deployed")?;
        let proof = Proof::from_bytes(&r.proof).map_err(|e| e.to_string())?;
        let envelope: serde_json::Value =
            serde_json::from_str(&proof.to_json()).map_err(|e| e.to_string())?;
        applied.receipts.push(Receipt {
            task_id: r.task_id.clone(),
            model_id,
            outputs: r.outputs.clone(),
            outputs_float: pkg
                .program
                .dequantize_outputs(&r.outputs)
                .into_iter()
                .map(|t| t.data)
                .collect(),
            proof: r.proof.clone(),
            public_inputs: envelope["public_inputs"].clone(),
            gas_used,
            fee,
            executor: r.executor,
            attempts,
            block_height: block.height,
            block_hash: [0; 32],
            verified_by: vec![],
        });
    }
    for Evidence { result: r, reason } in &block.evidence {
        match rt.check_result(state, r) {
            Err(ResultError::Invalid(_)) => {}
            Ok(()) => {
                return Err(format!(
                    "evidence against task {}: the result is valid",
                    r.task_id
                ));
            }
            Err(e) => return Err(format!("evidence against task {}: {e}", r.task_id)),
        }
        let v = &mut state.validators[r.executor];
        let slashed = p.slash.min(v.stake);
        v.stake -= slashed;
        v.penalties += 1;
        state.evidence.push(EvidenceRecord {
            height: block.height,
            task_id: r.task_id.clone(),
            executor: r.executor,
            reason: reason.clone(),
            slashed,
        });
        reassign_task(state, &r.task_id, r.executor, now);
    }
    for id in &block.reassign {
        let task = state
            .tasks
            .get(id)
            .ok_or_else(|| format!("reassignment of unknown task {id}"))?;
        match task.status {
            TaskStatus::Pending {
                executor, since_ms, ..
            } if since_ms + p.task_timeout_ms <= now => {
                reassign_task(state, id, executor, now);
            }
            _ => return Err(format!("task {id} is not past its deadline")),
        }
    }
    state.height = block.height;
    state.last_timestamp_ms = now;
    Ok(applied)
}

/// Checks a proposed block on a copy of the state: contents, proofs and the claimed root.
pub fn validate(
    rt: &Runtime,
    p: &ChainParams,
    state: &State,
    block: &Block,
    now_ms: u64,
) -> Result<(), String> {
    if block.timestamp_ms > now_ms + p.max_skew_ms {
        return Err("the timestamp is in the future".into());
    }
    let mut s = state.clone();
    apply(rt, p, &mut s, block)?;
    if s.root() != block.state_root {
        return Err("the state root does not match".into());
    }
    Ok(())
}

/// What a proposer may include.
pub struct Pools<'a> {
    pub txs: &'a [SignedTx],
    pub results: &'a [TaskResult],
}

/// Builds the next block: the mempool transactions that apply (in order), valid results (and
/// evidence for invalid ones), and tasks past their deadline. Returns the block and the
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
    let mut txs = Vec::new();
    let mut dropped = Vec::new();
    let mut pending: Vec<&SignedTx> = pools.txs.iter().collect();
    // Lowest nonce first per sender, so that a sender's queued transactions apply in order.
    pending.sort_by_key(|t| t.body.nonce);
    for tx in pending {
        let mut trial = s.clone();
        match apply_tx(rt, p, &mut trial, tx, height, proposer) {
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
    for r in pools.results {
        if resolved.contains(&r.task_id) {
            continue;
        }
        match rt.check_result(&s, r) {
            Ok(()) => {
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
    let reassign: Vec<String> = s
        .tasks
        .values()
        .filter(|t| !resolved.contains(&t.id))
        .filter(|t| matches!(t.status, TaskStatus::Pending { since_ms, .. } if since_ms + p.task_timeout_ms <= now))
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
pub fn program(rt: &Runtime, model_id: &str) -> Option<Arc<Program>> {
    rt.package(model_id).map(|p| p.program.clone())
}
