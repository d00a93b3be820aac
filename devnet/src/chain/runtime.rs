//! What the state transition needs beyond the state: loaded packages, keys, metered gas and
//! checked proofs, cached per validator. The caches hold pure functions of their keys (a
//! package's bytes, a model's program, a result's hash), so caching never changes what a
//! block means; checking a task result against its task lives here too.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use lightchain_aivm::gas;
use lightchain_aivm::proof::{ParamsCache, Proof, PublicInput};
use lightchain_aivm::segment::ModelKeys;
use lightchain_packager::Package;

use super::state::{ModelRecord, ProvingMode, State, Task, TaskStatus, state_key};
use super::{Address, Claim, NewState, SealedInput, TaskInput, TaskResult};
use crate::crypto;
use crate::lock::Lock;

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
    /// A validator's signed outputs for a task of an attested model: counted.
    Attested,
}

/// Why a validator cannot provide what checking or executing a task needs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the package of model {0} is not loaded")]
    NotLoaded(String),
    #[error(transparent)]
    Package(#[from] lightchain_packager::PackageError),
}

/// A package load's outcome, cached by the package's hash.
type LoadOutcome = Result<Arc<Package>, String>;

/// Per-validator caches: loaded packages (by content hash), keys (by deployed model), gas
/// (by package) and proof checks (by result hash).
pub struct Runtime {
    pub params: ParamsCache,
    packages: Lock<HashMap<[u8; 32], LoadOutcome>>,
    keys: Lock<HashMap<(String, bool), Arc<ModelKeys>>>,
    gas: Lock<HashMap<[u8; 32], gas::GasReport>>,
    checked: Lock<HashMap<[u8; 32], Result<Accepted, ResultError>>>,
}

/// Whether `task` waits for the result `r` now: its pending attempt's executor's result, or
/// for an attestation, any validator's first one for the pending attempt (why not, if not).
pub fn awaits(task: &Task, r: &TaskResult) -> Result<(), &'static str> {
    let TaskStatus::Pending {
        attempt, executor, ..
    } = task.status
    else {
        return Err("the task is not waiting for this executor");
    };
    if attempt != r.attempt {
        return Err("the task is not waiting for this executor");
    }
    match r.claim {
        // Any validator attests, once per task.
        Claim::Attestation { .. }
            if task.attestations.iter().any(|a| a.validator == r.executor) =>
        {
            Err("this validator attested already")
        }
        Claim::Attestation { .. } => Ok(()),
        _ if executor != r.executor => Err("the task is not waiting for this executor"),
        _ => Ok(()),
    }
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

    fn keys(&self, m: &ModelRecord, proving: bool) -> Result<Arc<ModelKeys>, RuntimeError> {
        if let Some(k) = self.keys.lock().get(&(m.model_id.clone(), proving)) {
            return Ok(k.clone());
        }
        // An executor's proving keys hold the verifying key too: no second derivation.
        if !proving && let Some(k) = self.keys.lock().get(&(m.model_id.clone(), true)) {
            return Ok(k.clone());
        }
        let pkg = self
            .package(m)
            .ok_or_else(|| RuntimeError::NotLoaded(m.model_id.clone()))?;
        let k = Arc::new(pkg.keys(&self.params, proving)?);
        self.keys
            .lock()
            .insert((m.model_id.clone(), proving), k.clone());
        Ok(k)
    }

    /// Keys with a proving key (executors).
    pub fn prover(&self, m: &ModelRecord) -> Result<Arc<ModelKeys>, RuntimeError> {
        self.keys(m, true)
    }

    /// Verifying keys, derived from the program alone.
    pub fn verifier(&self, m: &ModelRecord) -> Result<Arc<ModelKeys>, RuntimeError> {
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
        awaits(task, r).map_err(stale)?;
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
            Claim::Proof { .. } if model.mode == ProvingMode::Attested => Err(stale(
                "the model is attested: it takes attestations, not proofs",
            )),
            Claim::Proof {
                outputs,
                proof,
                state: new,
            } => self
                .check_proof(state, task, model, (outputs, proof), new.as_ref())
                .map(|()| Accepted::Proven),
            Claim::SubmitterFault { shared } => self
                .check_fault(task, model, v.index, shared)
                .map(Accepted::SubmitterFault),
            // Proven models take proofs only; an attestation's outputs are checked by the
            // other validators' attestations, not here.
            Claim::Attestation { .. } if model.mode != ProvingMode::Attested => Err(stale(
                "the model is proven: it takes proofs, not attestations",
            )),
            Claim::Attestation { .. } => Ok(Accepted::Attested),
        };
        if !matches!(out, Err(ResultError::Local(_))) {
            self.checked.lock().insert(key, out.clone());
        }
        out
    }

    /// A proof against its task: model, nonce, outputs, inputs, a stateful model's states,
    /// then verification. (The state a task starts from cannot change while it is pending: a
    /// stateful model takes one pending task per account, so the cached outcome stays true.)
    fn check_proof(
        &self,
        state: &State,
        task: &Task,
        model: &ModelRecord,
        (outputs, proof): (&[Vec<i64>], &[u8]),
        new: Option<&NewState>,
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
                let q = public_inputs(&pkg, inputs).map_err(|e| local(e.to_string()))?;
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
        check_states(state, task, &pkg, &proof, new)?;
        let keys = self.verifier(model).map_err(|e| local(e.to_string()))?;
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

/// The quantized public inputs of a task (without a stateful model's state: the chain keeps it).
pub fn public_inputs(
    pkg: &Package,
    inputs: &serde_json::Value,
) -> Result<Vec<Vec<i64>>, lightchain_aivm::AivmError> {
    let parsed = pkg
        .model
        .parse_task_inputs(&inputs.to_string(), pkg.program.state)?;
    let q = pkg.program.quantize_inputs(&parsed)?;
    pkg.program.check_task_inputs(&q)?;
    Ok(q)
}

/// The state the next task of a stateful model (`model_id`, `pkg`) submitted by `account`
/// starts from: the one the chain keeps, or the model's initial state (salt zero).
pub fn current_state(
    state: &State,
    pkg: &Package,
    (model_id, account): (&str, &Address),
) -> Result<lightchain_aivm::state::StateValue, lightchain_aivm::AivmError> {
    match state.states.get(&state_key(model_id, account)) {
        Some(s) => Ok(lightchain_aivm::state::StateValue {
            values: s.values.clone(),
            salt: Option::from(Fp::from_repr(s.salt)).unwrap_or(Fp::from(0)),
        }),
        None => {
            let init = pkg.manifest.state.as_ref().map_or(0.0, |s| s.initial);
            lightchain_aivm::state::initial(&pkg.program, init)
        }
    }
}

/// A stateful model's proof starts from the state the chain keeps for the task's submitter and
/// ends in the state the claim gives; a stateless model's claim gives none.
fn check_states(
    state: &State,
    task: &Task,
    pkg: &Package,
    proof: &Proof,
    new: Option<&NewState>,
) -> Result<(), ResultError> {
    let invalid = |e: &str| ResultError::Invalid(e.to_string());
    if !pkg.program.state {
        return match new {
            None => Ok(()),
            Some(_) => Err(invalid("a state for a model that keeps none")),
        };
    }
    let (Some(c), Some(new)) = (proof.state, new) else {
        return Err(invalid(
            "the model keeps state: the claim needs the new state and the proof both commitments",
        ));
    };
    let program = &pkg.program;
    let owner = (task.model_id.as_str(), &task.submitter);
    let old = current_state(state, pkg, owner).map_err(|e| ResultError::Local(e.to_string()))?;
    let old = lightchain_aivm::state::commitment(program, &old)
        .map_err(|e| ResultError::Local(e.to_string()))?;
    if old.to_repr() != c.old {
        return Err(invalid(
            "the proof starts from another state than the chain keeps for this account",
        ));
    }
    let salt = Option::<Fp>::from(Fp::from_repr(new.salt))
        .ok_or_else(|| invalid("the new state's salt is not a field element"))?;
    let opened = lightchain_aivm::state::StateValue {
        values: new.values.clone(),
        salt,
    };
    match lightchain_aivm::state::commitment(program, &opened) {
        Ok(n) if n.to_repr() == c.new => Ok(()),
        Ok(_) => Err(invalid(
            "the new state does not open the proof's new state commitment",
        )),
        Err(e) => Err(invalid(&format!("the new state: {e}"))),
    }
}
