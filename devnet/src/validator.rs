//! One validator's application side: its copy of the chain, its mempool and result pool, block
//! building and checking for consensus, committing, and its executor, which proves the tasks
//! assigned to it in a worker thread.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ff::PrimeField;
use halo2_proofs::pasta::Fp;
use lightchain_aivm::proof::PublicInput;

use crate::chain::exec::{self, ChainParams, Pools, Runtime};
use crate::chain::state::TaskStatus;
use crate::chain::{
    Address, Block, CommittedBlock, Receipt, SealedInput, SignedTx, State, TaskInput, TaskResult,
};
use crate::crypto::{self, AccountKey};
use crate::net::{NetMsg, Network};
use crate::store::Store;

/// How a validator misbehaves (for fault-injection tests and demos).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    #[default]
    Honest,
    /// Claims an output off by one (its proof cannot verify).
    WrongOutput,
    /// Sends a proof with a flipped byte.
    CorruptProof,
    /// Never answers the tasks assigned to it.
    Silent,
}

/// What the API and RPC read: a validator's committed chain.
#[derive(Clone, Debug)]
pub struct ChainView {
    pub state: State,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    /// The transactions waiting in this validator's mempool.
    pub mempool: Vec<PendingTx>,
}

/// A mempool transaction as the API sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingTx {
    /// The transaction hash (a task's id), hex.
    pub hash: String,
    pub sender: Address,
    pub nonce: u64,
}

/// The keys of one validator.
pub struct ValidatorKeys {
    pub index: usize,
    pub account: AccountKey,
    pub consensus: malachitebft_signing_ed25519::PrivateKey,
    pub encryption: x25519_dalek::StaticSecret,
}

impl ValidatorKeys {
    /// Deterministic keys of validator `index`.
    pub fn dev(index: usize) -> ValidatorKeys {
        ValidatorKeys {
            index,
            account: AccountKey::from_secret(crypto::dev_secret("validator account", index)),
            consensus: malachitebft_signing_ed25519::PrivateKey::from(crypto::dev_secret(
                "validator consensus",
                index,
            )),
            encryption: x25519_dalek::StaticSecret::from(crypto::dev_secret(
                "validator encryption",
                index,
            )),
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A task an executor must prove.
#[derive(Clone, Debug)]
pub struct Job {
    pub task_id: String,
    pub attempt: u32,
    pub model_id: String,
    pub input: TaskInput,
}

/// The application half of a validator.
pub struct App {
    pub index: usize,
    pub params: ChainParams,
    pub rt: Arc<Runtime>,
    pub state: State,
    /// State after each committed height (index = height), for dev_revert.
    history: Vec<State>,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    pub mempool: Vec<SignedTx>,
    pub results: Vec<TaskResult>,
    pub view: Arc<RwLock<ChainView>>,
    store: Option<Arc<Store>>,
    jobs: Sender<Job>,
    started: HashSet<(String, u32)>,
    pub mine_requested: bool,
    pub block_time: Option<Duration>,
    pub last_commit: Instant,
    /// Consensus address -> validator index, to name a certificate's signers.
    pub signers: BTreeMap<[u8; 20], usize>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        params: ChainParams,
        rt: Arc<Runtime>,
        state: State,
        blocks: Vec<CommittedBlock>,
        receipts: BTreeMap<String, Receipt>,
        history: Vec<State>,
        view: Arc<RwLock<ChainView>>,
        store: Option<Arc<Store>>,
        jobs: Sender<Job>,
        block_time: Option<Duration>,
        signers: BTreeMap<[u8; 20], usize>,
    ) -> App {
        let mut app = App {
            index,
            params,
            rt,
            state,
            history,
            blocks,
            receipts,
            mempool: vec![],
            results: vec![],
            view,
            store,
            jobs,
            started: HashSet::new(),
            mine_requested: false,
            block_time,
            last_commit: Instant::now(),
            signers,
        };
        app.schedule_jobs();
        app
    }

    fn tasks_past_deadline(&self) -> bool {
        let now = now_ms();
        self.state
            .tasks
            .values()
            .any(|t| matches!(t.status, TaskStatus::Pending { since_ms, .. } if since_ms + self.params.task_timeout_ms <= now))
    }

    /// Whether a block should be produced now.
    pub fn has_work(&self) -> bool {
        match self.block_time {
            Some(bt) => self.last_commit.elapsed() >= bt,
            None => {
                self.mine_requested
                    || !self.mempool.is_empty()
                    || !self.results.is_empty()
                    || self.tasks_past_deadline()
            }
        }
    }

    pub fn on_tx(&mut self, tx: SignedTx) {
        let h = tx.hash();
        if self.mempool.iter().any(|t| t.hash() == h) {
            return;
        }
        if exec::precheck(&self.rt, &self.params, &self.state, &tx).is_ok() {
            self.mempool.push(tx);
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

    /// Builds this validator's proposal for the next height.
    pub fn build(&mut self) -> Block {
        let (block, dropped) = exec::build(
            &self.rt,
            &self.params,
            &self.state,
            Pools {
                txs: &self.mempool,
                results: &self.results,
            },
            self.index,
            now_ms(),
        );
        self.mempool.retain(|t| !dropped.contains(&t.hash()));
        block
    }

    /// Checks a proposed block (contents, proofs, state root).
    pub fn validate(&self, block: &Block) -> Result<(), String> {
        exec::validate(&self.rt, &self.params, &self.state, block, now_ms())
    }

    /// Applies a committed block.
    pub fn commit(&mut self, block: &Block, hash: [u8; 32], round: u32, signers: Vec<usize>) {
        if block.height != self.state.height + 1 {
            return;
        }
        let mut next = self.state.clone();
        let applied = match exec::apply(&self.rt, &self.params, &mut next, block) {
            Ok(a) => a,
            Err(e) => {
                // A block with a commit certificate is final; a failure here means this
                // validator's caches disagree with the others', which must not happen.
                panic!(
                    "validator {} cannot apply committed block {}: {e}",
                    self.index, block.height
                );
            }
        };
        next.last_hash = hash;
        self.state = next;
        self.history.push(self.state.clone());
        for mut r in applied.receipts {
            r.block_hash = hash;
            r.verified_by = signers
                .iter()
                .copied()
                .filter(|&v| v != r.executor)
                .collect();
            self.receipts.insert(r.task_id.clone(), r);
        }
        let committed = CommittedBlock {
            hash,
            block: block.clone(),
            round,
            signers,
        };
        if let Some(store) = &self.store {
            store.put(&committed, &self.state, &self.receipts, &self.rt);
        }
        self.blocks.push(committed);
        let included: HashSet<[u8; 32]> = block.txs.iter().map(|t| t.hash()).collect();
        let state = &self.state;
        self.mempool.retain(|t| {
            !included.contains(&t.hash()) && t.body.nonce >= state.account(&t.body.sender()).nonce
        });
        self.results.retain(|r| {
            matches!(state.tasks.get(&r.task_id).map(|t| &t.status),
                Some(TaskStatus::Pending { attempt, executor, .. }) if *attempt == r.attempt && *executor == r.executor)
        });
        self.mine_requested = false;
        self.last_commit = Instant::now();
        self.schedule_jobs();
        self.publish_view();
    }

    /// Queues the tasks assigned to this validator that it has not started.
    fn schedule_jobs(&mut self) {
        for t in self.state.tasks.values() {
            if let TaskStatus::Pending {
                attempt, executor, ..
            } = t.status
                && executor == self.index
                && self.started.insert((t.id.clone(), attempt))
            {
                let _ = self.jobs.send(Job {
                    task_id: t.id.clone(),
                    attempt,
                    model_id: t.model_id.clone(),
                    input: t.input.clone(),
                });
            }
        }
    }

    pub fn publish_view(&self) {
        let mut v = self.view.write().expect("view");
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
        v.mempool = self.pending();
    }

    fn pending(&self) -> Vec<PendingTx> {
        self.mempool
            .iter()
            .map(|t| PendingTx {
                hash: crypto::hex(&t.hash()),
                sender: t.body.sender(),
                nonce: t.body.nonce,
            })
            .collect()
    }

    /// Publishes the mempool alone (a new transaction changes nothing else).
    fn publish_mempool(&self) {
        let pending = self.pending();
        self.view.write().expect("view").mempool = pending;
    }

    /// Rolls the chain back to `height` (dev_revert).
    pub fn revert(&mut self, height: u64) {
        if height >= self.state.height {
            return;
        }
        self.state = self.history[height as usize].clone();
        self.history.truncate(height as usize + 1);
        self.blocks.truncate(height as usize);
        let tasks = &self.state.tasks;
        self.receipts.retain(|id, _| {
            matches!(
                tasks.get(id).map(|t| &t.status),
                Some(TaskStatus::Completed { .. })
            )
        });
        self.mempool.clear();
        self.results.clear();
        self.started.clear();
        if let Some(store) = &self.store {
            store.truncate(height, &self.state, &self.receipts);
        }
        self.schedule_jobs();
        let mut v = self.view.write().expect("view");
        v.blocks = self.blocks.clone();
        v.receipts = self.receipts.clone();
        drop(v);
        self.publish_view();
    }
}

/// The executor of one validator: proves its jobs and gossips the results.
pub fn run_executor(
    keys: Arc<ValidatorKeys>,
    rt: Arc<Runtime>,
    net: Network,
    behavior: Arc<RwLock<Behavior>>,
    jobs: Receiver<Job>,
) {
    while let Ok(job) = jobs.recv() {
        let b = *behavior.read().expect("behavior");
        if b == Behavior::Silent {
            continue;
        }
        match prove(&keys, &rt, &job, b) {
            Ok(result) => net.broadcast_all(keys.index, NetMsg::Result(result)),
            // An executor that cannot prove stays silent; the task is reassigned at its deadline.
            Err(_) => continue,
        }
    }
}

fn prove(keys: &ValidatorKeys, rt: &Runtime, job: &Job, b: Behavior) -> Result<TaskResult, String> {
    let pkg = rt.package(&job.model_id).ok_or("model not loaded")?;
    let prover = rt.prover(&job.model_id)?;
    let (inputs, salt) = match &job.input {
        TaskInput::Public { inputs } => (exec::public_inputs(&pkg, inputs)?, None),
        TaskInput::Encrypted {
            ciphertext,
            keys: wrapped,
            ..
        } => {
            let mine = wrapped
                .iter()
                .find(|k| k.validator == keys.index)
                .ok_or("the input is not encrypted to this validator")?;
            let plain = crypto::open(ciphertext, mine, &keys.encryption)
                .ok_or("cannot decrypt the input")?;
            let sealed: SealedInput = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            let salt = Option::<Fp>::from(Fp::from_repr(sealed.salt)).ok_or("invalid salt")?;
            (exec::public_inputs(&pkg, &sealed.inputs)?, Some(salt))
        }
    };
    let nonce: [u8; 32] = crypto::unhex(&job.task_id)
        .and_then(|n| n.try_into().ok())
        .ok_or("bad task id")?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let mut proof = prover
        .prove_with_salt(&inputs, nonce, salt, &mut rng)
        .map_err(|e| e.to_string())?;
    match b {
        Behavior::WrongOutput => proof.outputs[0][0] += 1,
        Behavior::CorruptProof => {
            let n = proof.proof.len();
            proof.proof[n / 2] ^= 0x40;
        }
        _ => {}
    }
    debug_assert!(!matches!(proof.input, PublicInput::Values(_)) || salt.is_none());
    let bytes = proof.to_bytes();
    let sig = keys.account.sign(&TaskResult::sign_bytes(
        &job.task_id,
        job.attempt,
        keys.index,
        &proof.outputs,
        &bytes,
    ));
    Ok(TaskResult {
        task_id: job.task_id.clone(),
        attempt: job.attempt,
        executor: keys.index,
        outputs: proof.outputs,
        proof: bytes,
        signature: sig,
    })
}
