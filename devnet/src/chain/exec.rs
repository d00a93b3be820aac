//! The state transition: how a block is built, checked and applied. Every validator runs the
//! same deterministic [`apply`]; a proposed block is valid only if applying it succeeds and
//! gives the state root it claims. Applying a task result verifies its proof (or its claim that
//! the submitter lied); applying evidence checks that the result really is wrong.
//!
//! What the transition needs beyond the state (loaded packages, keys, verified proofs) comes
//! from [`Runtime`], whose caches hold pure functions of their keys (a package's bytes, a
//! model's program), so caching never changes what a block means.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{Keys, ParamsCache, Proof, PublicInput};
use lightchain_aivm::{Program, gas};
use lightchain_packager::Package;

use super::state::{Account, EvidenceRecord, ModelRecord, State, Task, TaskStatus};
use super::{
    Address, Block, Claim, Evidence, Receipt, SealedInput, SignedTx, TaskInput, TaskResult, TxKind,
};
use crate::crypto;
use crate::lock::Lock;

/// Chain parameters that every validator shares.
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// Gas of a transfer or deployment (paid to the block's proposer).
    pub base_gas: u64,
    /// Gas per byte of a deployed package.
    pub deploy_gas_per_byte: u64,
    /// A fixed time an executor has for a task (`--task-timeout`); by default the time scales
    /// with the model's gas ([`ChainParams::task_timeout`]).
    pub task_timeout_ms: Option<u64>,
    /// The fixed part of a task's time: loading the package, deriving keys, parameters.
    pub timeout_base_ms: u64,
    /// Time per million gas: gas is calibrated to about 1 µs of proving per unit, so 10 s
    /// per million leaves a tenfold margin for key derivation and a loaded machine.
    pub timeout_ms_per_mgas: u64,
    /// Share of an executor's stake taken per offence, in basis points.
    pub slash_bps: u32,
    /// Blocks a penalised executor stays jailed before it may unjail.
    pub jail_blocks: u64,
    /// Stake per unit of voting power.
    pub power_unit: u128,
    /// Largest accepted clock skew of a block timestamp.
    pub max_skew_ms: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            base_gas: 21_000,
            deploy_gas_per_byte: 16,
            task_timeout_ms: None,
            timeout_base_ms: 30_000,
            timeout_ms_per_mgas: 10_000,
            slash_bps: 1_000,
            jail_blocks: 20,
            power_unit: 10u128.pow(18),
            max_skew_ms: 5_000,
        }
    }
}

impl ChainParams {
    /// How long an executor has for one task of a model with `gas` gas.
    pub fn task_timeout(&self, gas: u64) -> u64 {
        self.task_timeout_ms.unwrap_or_else(|| {
            self.timeout_base_ms + gas.saturating_mul(self.timeout_ms_per_mgas) / 1_000_000
        })
    }

    /// A validator's voting power: its stake in units of [`ChainParams::power_unit`] (at
    /// least 1 while it has stake, so a slashed validator keeps a voice proportional to it).
    pub fn voting_power(&self, stake: u128) -> u64 {
        if stake == 0 {
            0
        } else {
            (stake / self.power_unit).clamp(1, u64::MAX as u128) as u64
        }
    }
}

/// The id of a deployed model: its program and its input visibility, so that the same
/// program deployed with public and with hashed inputs are two models.
pub fn deployment_id(program_id: &str, visibility: Visibility) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"lightchain-devnet model v1\n");
    h.update(program_id.as_bytes());
    h.update(match visibility {
        Visibility::Public => b"/public",
        Visibility::Hashed => b"/hashed",
    });
    crypto::hex(h.finalize().as_bytes())
}

/// Why a task result is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultError {
    /// The task does not wait for this result now (already completed, another attempt or
    /// executor, unknown task, a signature that is not the executor's): nobody's offence.
    Stale(String),
    /// The result itself is wrong (its proof fails or does not match the task, or it blames
    /// a submitter who did not lie): evidence against its executor.
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

/// What an accepted result does to its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The proof verifies: the task completes.
    Proven,
    /// The submitter's input does not match its commitment: the task fails, its fee burned.
    SubmitterFault(String),
}

/// A package load's outcome, cached by the package's hash.
type LoadOutcome = Result<Arc<Package>, String>;

/// Per-validator caches: loaded packages (by content hash), keys (by deployed model), gas
/// (by package) and proof checks (by result hash).
pub struct Runtime {
    pub params: ParamsCache,
    packages: Lock<HashMap<[u8; 32], LoadOutcome>>,
    keys: Lock<HashMap<(String, bool), Arc<Keys>>>,
    gas: Lock<HashMap<[u8; 32], gas::GasReport>>,
    checked: Lock<HashMap<[u8; 32], Result<Accepted, ResultError>>>,
}

impl Runtime {
    pub fn new(params: ParamsCache) -> Runtime {
        Runtime {
            params,
            packages: Default::default(),
            keys: Default::default(),
            gas: Default::default(),
            checked: Default::default(),
        }
    }

    /// Loads (guards, lowers and checks) a package, once per content. A panic while loading
    /// an untrusted file is caught and reported as an invalid package rather than taking the
    /// validator down.
    pub fn load_package(&self, bytes: &[u8]) -> Result<Arc<Package>, String> {
        let key = *blake3::hash(bytes).as_bytes();
        if let Some(r) = self.packages.lock().get(&key) {
            return r.clone();
        }
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| lightchain_packager::load(bytes)))
            .map_err(|_| "the package could not be loaded (the loader panicked)".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map(Arc::new);
        self.packages.lock().insert(key, r.clone());
        r
    }

    /// A deployed model's package (loaded when its deployment was checked or restored).
    pub fn package(&self, m: &ModelRecord) -> Option<Arc<Package>> {
        self.packages
            .lock()
            .get(&m.package_hash)
            .and_then(|r| r.clone().ok())
    }

    /// The gas of one task of a package's model, metered from its program (a package's own
    /// gas table is not trusted).
    pub fn gas(&self, pkg: &Package, package_hash: [u8; 32]) -> gas::GasReport {
        if let Some(g) = self.gas.lock().get(&package_hash) {
            return g.clone();
        }
        let g = gas::meter(&pkg.program, pkg.info.input_visibility);
        self.gas.lock().insert(package_hash, g.clone());
        g
    }

    fn keys(&self, m: &ModelRecord, proving: bool) -> Result<Arc<Keys>, String> {
        if let Some(k) = self.keys.lock().get(&(m.model_id.clone(), proving)) {
            return Ok(k.clone());
        }
        // An executor's proving keys hold the verifying key too: no second derivation.
        if !proving && let Some(k) = self.keys.lock().get(&(m.model_id.clone(), true)) {
            return Ok(k.clone());
        }
        let pkg = self
            .package(m)
            .ok_or_else(|| format!("the package of model {} is not loaded", m.model_id))?;
        let k = Arc::new(pkg.keys(&self.params, proving).map_err(|e| e.to_string())?);
        self.keys
            .lock()
            .insert((m.model_id.clone(), proving), k.clone());
        Ok(k)
    }

    /// Keys with a proving key (executors).
    pub fn prover(&self, m: &ModelRecord) -> Result<Arc<Keys>, String> {
        self.keys(m, true)
    }

    /// Verifying keys, derived from the program alone.
    pub fn verifier(&self, m: &ModelRecord) -> Result<Arc<Keys>, String> {
        self.keys(m, false)
    }

    /// Checks a task result against the task: that the task waits for it from this executor
    /// and is signed by it (against `state`, every time), then its claim (cached by the
    /// result's hash: that part depends on the result and the task alone).
    pub fn check_result(&self, state: &State, r: &TaskResult) -> Result<Accepted, ResultError> {
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
        let msg =
            TaskResult::sign_bytes(&state.chain_id, &r.task_id, r.attempt, r.executor, &r.claim);
        if !crypto::verify(&v.account_key, &msg, &r.signature) {
            return Err(stale("the executor's signature is invalid"));
        }
        let model = state
            .models
            .get(&task.model_id)
            .ok_or_else(|| ResultError::Local("the model is not deployed".into()))?;
        let key = r.hash();
        if let Some(c) = self.checked.lock().get(&key) {
            return c.clone();
        }
        let out = match &r.claim {
            Claim::Proof { outputs, proof } => self
                .check_proof(task, model, outputs, proof)
                .map(|()| Accepted::Proven),
            Claim::SubmitterFault { shared } => self
                .check_fault(task, model, v.index, shared)
                .map(Accepted::SubmitterFault),
        };
        if !matches!(out, Err(ResultError::Local(_))) {
            self.checked.lock().insert(key, out.clone());
        }
        out
    }

    /// A proof against its task: model, nonce, outputs, inputs, then verification.
    fn check_proof(
        &self,
        task: &Task,
        model: &ModelRecord,
        outputs: &[Vec<i64>],
        proof: &[u8],
    ) -> Result<(), ResultError> {
        let invalid = |e: &str| ResultError::Invalid(e.to_string());
        let local = ResultError::Local;
        let proof = Proof::from_bytes(proof).map_err(|e| invalid(&e.to_string()))?;
        if proof.model_id.to_string() != model.program_id {
            return Err(invalid("the proof is for another model"));
        }
        if crypto::hex(&proof.nonce) != task.id {
            return Err(invalid("the proof is bound to another task"));
        }
        if proof.outputs != outputs {
            return Err(invalid(
                "the outputs differ from the proof's public outputs",
            ));
        }
        let pkg = self
            .package(model)
            .ok_or_else(|| local("the model's package is not loaded".into()))?;
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
        let keys = self.verifier(model).map_err(local)?;
        keys.verify(&proof).map_err(|e| invalid(&e.to_string()))
    }

    /// An executor's claim that the submitter's encrypted input does not match its
    /// commitment, checked with the secret the executor revealed for its own wrapped key:
    /// the claim stands (with the reason) when the input does not open, is not a valid input
    /// or commits to something else; it is false (evidence) when the secret does not open
    /// the executor's key or the input matches.
    fn check_fault(
        &self,
        task: &Task,
        model: &ModelRecord,
        executor: usize,
        shared: &[u8; 32],
    ) -> Result<String, ResultError> {
        let invalid = |e: &str| ResultError::Invalid(e.to_string());
        let TaskInput::Encrypted {
            commitment,
            ciphertext,
            keys,
        } = &task.input
        else {
            return Err(invalid("the task's input is public"));
        };
        let Some(wrapped) = keys.iter().find(|k| k.validator == executor) else {
            return Ok("the input has no key for its executor".into());
        };
        let content = crypto::unwrap(wrapped, shared)
            .ok_or_else(|| invalid("the revealed secret does not open the executor's key"))?;
        let Some(plain) = crypto::decrypt(ciphertext, &content, commitment) else {
            return Ok("the input does not decrypt with its commitment".into());
        };
        let Ok(sealed) = serde_json::from_slice::<SealedInput>(&plain) else {
            return Ok("the decrypted input is not an input".into());
        };
        let pkg = self
            .package(model)
            .ok_or_else(|| ResultError::Local("the model's package is not loaded".into()))?;
        let q = match public_inputs(&pkg, &sealed.inputs) {
            Ok(q) => q,
            Err(e) => return Ok(format!("the decrypted input is invalid: {e}")),
        };
        let Some(salt) = Option::<Fp>::from(Fp::from_repr(sealed.salt)) else {
            return Ok("the decrypted salt is not a field element".into());
        };
        let c = lightchain_aivm::circuit::input_commitment(&pkg.program, &q, salt);
        if c.to_repr() == *commitment {
            return Err(invalid("the input matches its commitment"));
        }
        Ok("the input does not match its commitment".into())
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
pub fn precheck(
    rt: &Runtime,
    p: &ChainParams,
    state: &State,
    tx: &SignedTx,
    now_ms: u64,
) -> Result<(), String> {
    if !tx.signature_ok(&state.chain_id) {
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
) -> Result<(), String> {
    if !tx.signature_ok(&state.chain_id) {
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
        .get(at.proposer)
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
            let vis = pkg.info.input_visibility;
            let id = deployment_id(&pkg.info.model_id, vis);
            if state.models.contains_key(&id) {
                return Err(format!(
                    "model {id} ({} with {vis} inputs) is already deployed",
                    pkg.info.model_id
                ));
            }
            let fee = (p.base_gas + p.deploy_gas_per_byte * package.len() as u64) as u128 * price;
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
                        .package(&model)
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
            let executor = assign(state, &id, 0, &[]).ok_or("no validator can execute tasks")?;
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
                    submitted_height: at.height,
                    failed_executors: vec![],
                    // The deadline runs from the block that assigns the task, never from an
                    // earlier one (an idle chain would otherwise time every new task out).
                    status: TaskStatus::Pending {
                        attempt: 0,
                        executor,
                        since_ms: at.now_ms,
                        deadline_ms: at.now_ms + p.task_timeout(model.gas),
                    },
                },
            );
        }
        TxKind::Unjail { validator } => {
            let fee = p.base_gas as u128 * price;
            let v = state
                .validators
                .get(*validator)
                .ok_or_else(|| format!("unknown validator {validator}"))?;
            if v.account != from {
                return Err("only the validator's own account can unjail it".into());
            }
            match v.jailed_until {
                None => return Err(format!("validator {validator} is not jailed")),
                Some(h) if h > at.height => {
                    return Err(format!("validator {validator} is jailed until height {h}"));
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
    let task = state.tasks.get_mut(task_id).expect("checked above");
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
    let at = Moment {
        height: block.height,
        now_ms: now,
        proposer: block.proposer,
    };
    for (i, tx) in block.txs.iter().enumerate() {
        apply_tx(rt, p, state, tx, at).map_err(|e| format!("transaction {i}: {e}"))?;
    }
    let mut applied = Applied::default();
    for r in &block.results {
        let outcome = rt
            .check_result(state, r)
            .map_err(|e| format!("result for task {}: {e}", r.task_id))?;
        let task = state.tasks.get_mut(&r.task_id).expect("checked");
        let (fee, gas_used, model_id) = (task.fee, task.gas, task.model_id.clone());
        match (outcome, &r.claim) {
            (Accepted::Proven, Claim::Proof { outputs, proof }) => {
                task.status = TaskStatus::Completed {
                    height: block.height,
                    executor: r.executor,
                };
                let account = state.validators[r.executor].account;
                credit(state, &account, fee);
                let model = &state.models[&model_id];
                let pkg = rt
                    .package(model)
                    .ok_or("the model's package is not loaded")?;
                let parsed = Proof::from_bytes(proof).map_err(|e| e.to_string())?;
                let envelope: serde_json::Value =
                    serde_json::from_str(&parsed.to_json()).map_err(|e| e.to_string())?;
                applied.receipts.push(Receipt {
                    task_id: r.task_id.clone(),
                    model_id,
                    outputs: outputs.clone(),
                    outputs_float: pkg
                        .program
                        .dequantize_outputs(outputs)
                        .into_iter()
                        .map(|t| t.data)
                        .collect(),
                    proof: proof.clone(),
                    public_inputs: envelope["public_inputs"].clone(),
                    gas_used,
                    fee,
                    executor: r.executor,
                    attempts: r.attempt + 1,
                    block_height: block.height,
                    block_hash: [0; 32],
                    verified_by: vec![],
                });
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
            (Accepted::Proven, Claim::SubmitterFault { .. }) => {
                return Err("a fault claim was accepted as a proof".into());
            }
        }
    }
    for Evidence { result: r, reason } in &block.evidence {
        match rt.check_result(state, r) {
            Err(ResultError::Invalid(_)) => {}
            Ok(_) => {
                return Err(format!(
                    "evidence against task {}: the result is valid",
                    r.task_id
                ));
            }
            Err(e) => return Err(format!("evidence against task {}: {e}", r.task_id)),
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
            .ok_or_else(|| format!("reassignment of unknown task {id}"))?;
        match task.status {
            TaskStatus::Pending {
                executor,
                deadline_ms,
                ..
            } if deadline_ms <= now => {
                reassign_task(p, state, id, executor, now);
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
    for r in pools.results {
        if resolved.contains(&r.task_id) {
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
