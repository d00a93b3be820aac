//! One validator's application side: its copy of the chain, its mempool and result pool, block
//! building and checking for consensus, committing, and its executor, which proves the tasks
//! assigned to it in a worker thread.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use ff::PrimeField;
use halo2_proofs::pasta::Fp;

use crate::chain::BlockError;
use crate::chain::exec::{self, Pools};
use crate::chain::runtime::{RuntimeError, public_inputs};
use crate::chain::state::{ModelRecord, TaskStatus};
use crate::chain::{
    Block, Claim, CommittedBlock, Receipt, SealedInput, SignedTx, State, TaskInput, TaskResult,
};
use crate::chain::{ChainParams, Runtime};
use crate::clock::Clock;
use crate::crypto::{self, AccountKey};
use crate::lock::Shared;
use crate::mempool::{Mempool, MempoolLimits, PendingTx};
use crate::net::{NetMsg, Network};
use crate::store::Store;

/// How a validator misbehaves (for fault-injection tests and demos).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    #[default]
    Honest,
    /// As an executor: claims an output off by one (its proof cannot verify).
    WrongOutput,
    /// As an executor: sends a proof with a flipped byte.
    CorruptProof,
    /// As an executor: never answers the tasks assigned to it.
    Silent,
    /// As a proposer: sends one block to half of the validators and another to the rest.
    EquivocatingProposer,
    /// Signs a second, conflicting vote next to each vote it casts.
    DoubleVote,
    /// As a proposer: proposes blocks whose state root is wrong.
    InvalidBlock,
    /// Casts no votes.
    WithholdVotes,
}

/// What the API and RPC read: a validator's committed chain.
#[derive(Clone, Debug)]
pub struct ChainView {
    pub state: State,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    /// The transactions waiting in this validator's mempool.
    pub mempool: Vec<PendingTx>,
    /// Why this validator stopped, if it did (a storage failure, a block it cannot apply).
    pub fatal: Option<String>,
}

/// The keys of one validator: its account and consensus keys are the deterministic dev keys
/// of its index (like anvil's accounts); its encryption key is random (kept with `--state`).
pub struct ValidatorKeys {
    pub index: usize,
    pub account: AccountKey,
    pub consensus: malachitebft_signing_ed25519::PrivateKey,
    pub encryption: x25519_dalek::StaticSecret,
}

impl ValidatorKeys {
    pub fn new(index: usize, encryption: x25519_dalek::StaticSecret) -> ValidatorKeys {
        ValidatorKeys {
            index,
            account: AccountKey::from_secret(crypto::dev_secret("validator account", index)),
            consensus: malachitebft_signing_ed25519::PrivateKey::from(crypto::dev_secret(
                "validator consensus",
                index,
            )),
            encryption,
        }
    }
}

/// A task an executor must prove.
#[derive(Clone, Debug)]
pub struct Job {
    pub task_id: String,
    pub attempt: u32,
    pub model: ModelRecord,
    pub input: TaskInput,
}

/// Why a validator stopped: it could not keep its chain (a block it cannot apply, storage
/// that fails). It stops rather than go on with a chain it does not have.
#[derive(Clone, Debug)]
pub struct Fatal(pub String);

/// The application half of a validator.
pub struct App {
    pub index: usize,
    pub chain_id: String,
    pub params: ChainParams,
    pub rt: Arc<Runtime>,
    pub clock: Clock,
    pub state: State,
    /// States of the last [`KEEP_RECENT`] heights and of the heights `dev_snapshot` marked,
    /// for `dev_revert` (a full copy per height would grow with the chain).
    recent: std::collections::VecDeque<State>,
    kept: BTreeMap<u64, State>,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    pub mempool: Mempool,
    pub results: Vec<TaskResult>,
    pub view: Arc<Shared<ChainView>>,
    store: Option<Arc<Store>>,
    jobs: Sender<Job>,
    started: HashSet<(String, u32)>,
    pub mine_requested: bool,
    pub block_time: Option<Duration>,
    pub last_commit: Instant,
}

/// How many recent states a validator keeps for `dev_revert`.
pub const KEEP_RECENT: usize = 64;

/// What a validator starts from.
pub struct Restored {
    pub state: State,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        params: ChainParams,
        rt: Arc<Runtime>,
        clock: Clock,
        restored: Restored,
        view: Arc<Shared<ChainView>>,
        store: Option<Arc<Store>>,
        jobs: Sender<Job>,
        block_time: Option<Duration>,
        limits: MempoolLimits,
    ) -> App {
        let state = restored.state;
        let mut app = App {
            index,
            chain_id: state.chain_id.clone(),
            params,
            rt,
            clock,
            recent: std::collections::VecDeque::from([state.clone()]),
            kept: BTreeMap::new(),
            state,
            blocks: restored.blocks,
            receipts: restored.receipts,
            mempool: Mempool::new(limits),
            results: vec![],
            view,
            store,
            jobs,
            started: HashSet::new(),
            mine_requested: false,
            block_time,
            last_commit: Instant::now(),
        };
        app.schedule_jobs();
        app
    }

    /// The state after `height`, if this validator still has it (the current one, a recent
    /// one, or one a snapshot kept).
    pub fn state_at(&self, height: u64) -> Option<&State> {
        self.recent
            .iter()
            .rev()
            .find(|s| s.height == height)
            .or_else(|| self.kept.get(&height))
    }

    /// Keeps the state after `height` for a later `dev_revert` (dev_snapshot).
    pub fn keep(&mut self, height: u64) {
        if let Some(s) = self.state_at(height).cloned() {
            self.kept.insert(height, s);
        }
    }

    /// Whether a block should be produced now: with a block time, when it has passed; with
    /// instant mining, when a transaction can apply, a result waits or a task is overdue (a
    /// transaction stuck behind a nonce gap is not work).
    pub fn has_work(&self) -> bool {
        match self.block_time {
            Some(bt) => self.last_commit.elapsed() >= bt,
            None => {
                self.mine_requested
                    || self.mempool.has_ready(&self.state)
                    || !self.results.is_empty()
                    || exec::overdue(&self.state, self.clock.now_ms())
                        .next()
                        .is_some()
            }
        }
    }

    pub fn on_tx(&mut self, tx: SignedTx) {
        let now = self.clock.now_ms();
        if exec::precheck(&self.rt, &self.params, &self.state, &tx, now).is_err() {
            return;
        }
        let next = self.state.account(&tx.body.sender()).nonce;
        if self.mempool.insert(tx, next, Instant::now()).is_ok() {
            self.publish_mempool();
        }
    }

    pub fn on_result(&mut self, r: TaskResult) {
        let pending = matches!(
            self.state.tasks.get(&r.task_id).map(|t| &t.status),
            Some(TaskStatus::Pending { attempt, executor, .. }) if *attempt == r.attempt && *executor == r.executor
        );
        if pending && !self.results.iter().any(|x| x.hash() == r.hash()) {
            self.results.push(r);
        }
    }

    /// Periodic housekeeping: drops mempool transactions that can never apply.
    pub fn tick(&mut self) {
        if self.mempool.prune(&self.state, Instant::now()) > 0 {
            self.publish_mempool();
        }
    }

    /// Builds this validator's proposal for the next height.
    pub fn build(&mut self) -> Block {
        let txs = self.mempool.ready(&self.state);
        let (block, dropped) = exec::build(
            &self.rt,
            &self.params,
            &self.state,
            Pools {
                txs: &txs,
                results: &self.results,
            },
            self.index,
            self.clock.now_ms(),
        );
        self.mempool.remove(&dropped);
        block
    }

    /// Checks a proposed block (contents, proofs, state root).
    pub fn validate(&self, block: &Block) -> Result<(), BlockError> {
        exec::validate(
            &self.rt,
            &self.params,
            &self.state,
            block,
            self.clock.now_ms(),
        )
    }

    /// Applies a committed block. A block with a commit certificate is final: if this
    /// validator cannot apply or store it, it must stop rather than go on without it.
    pub fn commit(&mut self, committed: CommittedBlock) -> Result<(), Fatal> {
        let block = &committed.block;
        if block.height != self.state.height + 1 {
            return Ok(());
        }
        let mut next = self.state.clone();
        let applied = exec::apply(&self.rt, &self.params, &mut next, block).map_err(|e| {
            Fatal(format!(
                "validator {} cannot apply committed block {}: {e}",
                self.index, block.height
            ))
        })?;
        next.last_hash = committed.hash;
        let mut receipts = Vec::new();
        for mut r in applied.receipts {
            r.block_hash = committed.hash;
            r.verified_by = committed
                .signers
                .iter()
                .copied()
                .filter(|&v| v != r.executor)
                .collect();
            receipts.push(r);
        }
        if let Some(store) = &self.store {
            store
                .put(&committed, &next, &receipts, &self.rt)
                .map_err(|e| {
                    Fatal(format!(
                        "validator {} cannot store block {}: {e}",
                        self.index, block.height
                    ))
                })?;
        }
        self.state = next;
        self.recent.push_back(self.state.clone());
        if self.recent.len() > KEEP_RECENT {
            self.recent.pop_front();
        }
        for r in receipts {
            self.receipts.insert(r.task_id.clone(), r);
        }
        let included: Vec<[u8; 32]> = block.txs.iter().map(|t| t.hash()).collect();
        self.blocks.push(committed);
        self.mempool.remove(&included);
        self.mempool.prune(&self.state, Instant::now());
        let state = &self.state;
        self.results.retain(|r| {
            matches!(state.tasks.get(&r.task_id).map(|t| &t.status),
                Some(TaskStatus::Pending { attempt, executor, .. }) if *attempt == r.attempt && *executor == r.executor)
        });
        self.mine_requested = false;
        self.last_commit = Instant::now();
        self.schedule_jobs();
        self.publish_view();
        Ok(())
    }

    /// Queues the tasks assigned to this validator that it has not started.
    fn schedule_jobs(&mut self) {
        for t in self.state.tasks.values() {
            if let TaskStatus::Pending {
                attempt, executor, ..
            } = t.status
                && executor == self.index
                && let Some(model) = self.state.models.get(&t.model_id)
                && self.started.insert((t.id.clone(), attempt))
            {
                let _ = self.jobs.send(Job {
                    task_id: t.id.clone(),
                    attempt,
                    model: model.clone(),
                    input: t.input.clone(),
                });
            }
        }
    }

    pub fn publish_view(&self) {
        let mut v = self.view.write();
        v.state = self.state.clone();
        let seen = v.blocks.len();
        if seen < self.blocks.len() {
            // New blocks only: copying the whole chain on every commit grows with its length.
            let new = &self.blocks[seen..];
            for id in new
                .iter()
                .flat_map(|b| b.block.results.iter().map(|r| &r.task_id))
            {
                if let Some(r) = self.receipts.get(id) {
                    v.receipts.insert(id.clone(), r.clone());
                }
            }
            v.blocks.extend_from_slice(new);
        } else if seen > self.blocks.len() {
            v.blocks = self.blocks.clone();
            v.receipts = self.receipts.clone();
        }
        v.mempool = self.mempool.pending();
    }

    /// Publishes the mempool alone (a new transaction changes nothing else).
    fn publish_mempool(&self) {
        let pending = self.mempool.pending();
        self.view.write().mempool = pending;
    }

    /// Forgets what a restart loses: the mempool, the results, the jobs started.
    pub fn restart(&mut self) {
        self.mempool.clear();
        self.results.clear();
        self.started.clear();
        self.schedule_jobs();
        self.publish_view();
    }

    /// Rolls the chain back to `height` (dev_revert): to a state it kept (a recent height or
    /// a snapshot's); `false` when it has none.
    pub fn revert(&mut self, height: u64) -> Result<bool, Fatal> {
        if height >= self.state.height {
            return Ok(true);
        }
        let Some(state) = self.state_at(height).cloned() else {
            return Ok(false);
        };
        self.state = state;
        self.recent.retain(|s| s.height <= height);
        self.kept.retain(|&h, _| h <= height);
        self.blocks.truncate(height as usize);
        let tasks = &self.state.tasks;
        self.receipts.retain(|id, _| {
            matches!(
                tasks.get(id).map(|t| &t.status),
                Some(TaskStatus::Completed { .. })
            )
        });
        if let Some(store) = &self.store {
            store
                .truncate(height, &self.state, &self.receipts)
                .map_err(|e| Fatal(format!("cannot roll the store back: {e}")))?;
        }
        self.restart();
        let mut v = self.view.write();
        v.blocks = self.blocks.clone();
        v.receipts = self.receipts.clone();
        drop(v);
        self.publish_view();
        Ok(true)
    }
}

/// The executor of one validator: proves its jobs and gossips the results.
pub fn run_executor(
    keys: Arc<ValidatorKeys>,
    chain_id: String,
    rt: Arc<Runtime>,
    net: Network,
    behavior: Arc<Shared<Behavior>>,
    jobs: Receiver<Job>,
) {
    while let Ok(job) = jobs.recv() {
        let b = *behavior.read();
        if b == Behavior::Silent {
            continue;
        }
        match execute(&keys, &chain_id, &rt, &job, b) {
            Ok(result) => net.broadcast_all(keys.index, NetMsg::Result(result)),
            // An executor that cannot prove stays silent; the task is reassigned at its deadline.
            Err(_) => continue,
        }
    }
}

/// What an executor makes of an encrypted input: the input and its salt, or the reason the
/// submitter is at fault with the secret that lets the chain check it.
enum Opened {
    Input(Vec<Vec<i64>>, Fp),
    Fault([u8; 32]),
}

/// Why an executor could not produce a result (it stays silent; the task times out).
#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    Runtime(#[from] crate::chain::runtime::RuntimeError),
    #[error(transparent)]
    Aivm(#[from] lightchain_aivm::AivmError),
    #[error("the input's key does not open")]
    KeyDoesNotOpen,
    #[error("the task id is not a 32-byte nonce")]
    BadTaskId,
}

/// Opens an encrypted input with this validator's key and checks it against its commitment
/// before anything is proven: a submitter who committed to something else is caught here,
/// not blamed on the executor. A key that does not open at all cannot be shown to be the
/// submitter's doing, so then the executor stays silent (and is not penalised for it).
fn open_input(
    keys: &ValidatorKeys,
    pkg: &lightchain_packager::Package,
    commitment: &[u8; 32],
    ciphertext: &[u8],
    wrapped: &[crypto::WrappedKey],
) -> Result<Opened, ExecError> {
    let Some(mine) = wrapped.iter().find(|k| k.validator == keys.index) else {
        return Ok(Opened::Fault([0; 32]));
    };
    let shared = crypto::shared_secret(mine, &keys.encryption);
    let content = crypto::unwrap(mine, &shared).ok_or(ExecError::KeyDoesNotOpen)?;
    let fault = Ok(Opened::Fault(shared));
    let Some(plain) = crypto::decrypt(ciphertext, &content, commitment) else {
        return fault;
    };
    let Ok(sealed) = serde_json::from_slice::<SealedInput>(&plain) else {
        return fault;
    };
    let Ok(q) = public_inputs(pkg, &sealed.inputs) else {
        return fault;
    };
    let Some(salt) = Option::<Fp>::from(Fp::from_repr(sealed.salt)) else {
        return fault;
    };
    if lightchain_aivm::circuit::input_commitment(&pkg.program, &q, salt).to_repr() != *commitment {
        return fault;
    }
    Ok(Opened::Input(q, salt))
}

fn execute(
    keys: &ValidatorKeys,
    chain_id: &str,
    rt: &Runtime,
    job: &Job,
    b: Behavior,
) -> Result<TaskResult, ExecError> {
    let pkg = rt
        .package(&job.model)
        .ok_or_else(|| RuntimeError::NotLoaded(job.model.model_id.clone()))?;
    let (inputs, salt) = match &job.input {
        TaskInput::Public { inputs } => (public_inputs(&pkg, inputs)?, None),
        TaskInput::Encrypted {
            commitment,
            ciphertext,
            keys: wrapped,
        } => match open_input(keys, &pkg, commitment, ciphertext, wrapped)? {
            Opened::Input(q, salt) => (q, Some(salt)),
            Opened::Fault(shared) => {
                return Ok(sign(keys, chain_id, job, Claim::SubmitterFault { shared }));
            }
        },
    };
    let nonce: [u8; 32] = crypto::unhex(&job.task_id)
        .and_then(|n| n.try_into().ok())
        .ok_or(ExecError::BadTaskId)?;
    let prover = rt.prover(&job.model)?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let mut proof = prover.prove_with_salt(&inputs, nonce, salt, &mut rng)?;
    match b {
        Behavior::WrongOutput => proof.outputs[0][0] += 1,
        Behavior::CorruptProof => {
            let n = proof.proof.len();
            proof.proof[n / 2] ^= 0x40;
        }
        _ => {}
    }
    let claim = Claim::Proof {
        outputs: proof.outputs.clone(),
        proof: proof.to_bytes(),
    };
    Ok(sign(keys, chain_id, job, claim))
}

fn sign(keys: &ValidatorKeys, chain_id: &str, job: &Job, claim: Claim) -> TaskResult {
    let signature = keys.account.sign(&TaskResult::sign_bytes(
        chain_id,
        &job.task_id,
        job.attempt,
        keys.index,
        &claim,
    ));
    TaskResult {
        task_id: job.task_id.clone(),
        attempt: job.attempt,
        executor: keys.index,
        claim,
        signature,
    }
}
