//! One validator's application side: its copy of the chain, its mempool and result pool, block
//! building and checking for consensus, committing, and handing its executor (a worker thread,
//! [`crate::executor`]) the tasks assigned to it and the segments other executors ask of it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::chain::BlockError;
use crate::chain::exec::{self, Pools};
use crate::chain::runtime::{awaits, current_state};
use crate::chain::state::{ProvingMode, TaskStatus};
use crate::chain::{Block, CommittedBlock, Receipt, SignedTx, State, TaskResult};
use crate::chain::{ChainParams, Runtime};
use crate::clock::Clock;
use crate::crypto::{self, AccountKey};
use crate::executor::{Help, Job, Work};
use crate::lock::Shared;
use crate::mempool::{Mempool, MempoolLimits, PendingTx};
use crate::net::NetMsg;
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
    /// The consensus round it is in at the next height.
    pub round: u32,
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

    /// Keys from their secrets (a node's key file).
    pub fn from_secrets(
        index: usize,
        account: [u8; 32],
        consensus: [u8; 32],
        encryption: [u8; 32],
    ) -> ValidatorKeys {
        ValidatorKeys {
            index,
            account: AccountKey::from_secret(account),
            consensus: malachitebft_signing_ed25519::PrivateKey::from(consensus),
            encryption: x25519_dalek::StaticSecret::from(encryption),
        }
    }
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
    jobs: Sender<Work>,
    started: HashSet<(String, u32)>,
    /// Segments proven for other executors, by (task, attempt, segment): each once.
    helped: HashSet<(String, u32, usize)>,
    pub mine_requested: bool,
    pub block_time: Option<Duration>,
    pub last_commit: Instant,
}

/// How many recent states a validator keeps for `dev_revert`.
pub const KEEP_RECENT: usize = 64;

/// Whether the chain waits for this result: its task's executor's for the pending attempt, or
/// for an attested model any validator's first attestation of the pending attempt.
fn awaited(state: &State, r: &TaskResult) -> bool {
    state
        .tasks
        .get(&r.task_id)
        .is_some_and(|t| awaits(t, r).is_ok())
}

/// With instant mining, how often an otherwise idle chain makes a block while a schedule
/// waits for the height of its next run.
pub const SCHEDULE_PACE: Duration = Duration::from_millis(100);

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
        jobs: Sender<Work>,
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
            helped: HashSet::new(),
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
    /// instant mining, when a transaction can apply, a result waits, a task is overdue or a
    /// scheduled run is due (a transaction stuck behind a nonce gap is not work), and while
    /// a schedule waits for its next run's height, every [`SCHEDULE_PACE`].
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
                    || exec::schedule_due(&self.state)
                    // The heights between a schedule's runs, paced.
                    || (exec::schedules_waiting(&self.state)
                        && self.last_commit.elapsed() >= SCHEDULE_PACE)
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
        let pending = awaited(&self.state, &r);
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
        self.results.retain(|r| awaited(state, r));
        self.mine_requested = false;
        self.last_commit = Instant::now();
        self.schedule_jobs();
        self.publish_view();
        Ok(())
    }

    /// Queues the tasks assigned to this validator that it has not started, each with the
    /// validators that may prove its segments (in turn after this one; none jailed).
    fn schedule_jobs(&mut self) {
        let n = self.state.validators.len();
        let helpers: Vec<usize> = (1..n)
            .map(|d| (self.index + d) % n)
            .filter(|&i| {
                let v = &self.state.validators[i];
                v.jailed_until.is_none() && v.stake > 0
            })
            .collect();
        for t in self.state.tasks.values() {
            if let TaskStatus::Pending {
                attempt, executor, ..
            } = t.status
                && let Some(model) = self.state.models.get(&t.model_id)
                // Every validator attests the tasks of attested models.
                && (executor == self.index || model.mode == ProvingMode::Attested)
                && self.started.insert((t.id.clone(), attempt))
            {
                // A stateful model's task starts from the state the chain keeps now: no other
                // task of its model and submitter can complete while it is pending.
                let state = self
                    .rt
                    .package(model)
                    .filter(|p| p.program.state)
                    .and_then(|p| current_state(&self.state, &p, (&t.model_id, &t.submitter)).ok());
                let _ = self.jobs.send(Work::Task(Job {
                    task_id: t.id.clone(),
                    attempt,
                    model: model.clone(),
                    input: t.input.clone(),
                    helpers: helpers.clone(),
                    state,
                }));
            }
        }
    }

    /// A segment job or a segment proof from another validator. A job is proven only for a
    /// task that waits for its sender as executor (its model as this chain records it), once;
    /// a proof goes to this validator's executor, which checks it.
    pub fn on_segment(&mut self, from: usize, msg: NetMsg) {
        match msg {
            NetMsg::SegmentJob {
                task_id,
                attempt,
                job,
            } => {
                let Some(t) = self.state.tasks.get(&task_id) else {
                    return;
                };
                let waits = matches!(t.status,
                    TaskStatus::Pending { attempt: a, executor, .. } if a == attempt && executor == from);
                let Some(model) = self.state.models.get(&t.model_id) else {
                    return;
                };
                if waits && self.helped.insert((task_id.clone(), attempt, job.index)) {
                    let _ = self.jobs.send(Work::Help(Help {
                        task_id,
                        attempt,
                        executor: from,
                        model: model.clone(),
                        job,
                    }));
                }
            }
            NetMsg::SegmentProof(r) => {
                let _ = self.jobs.send(Work::Segment(r));
            }
            _ => {}
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

    /// Forgets what a restart loses: the mempool, the results, the jobs started, a request to
    /// mine (one that arrived after its block would otherwise mine another after a revert).
    pub fn restart(&mut self) {
        self.mine_requested = false;
        self.mempool.clear();
        self.results.clear();
        self.started.clear();
        self.helped.clear();
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
