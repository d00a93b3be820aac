//! The devnet's in-process API: what the JSON-RPC server (and tests) call. It reads the chain
//! from the most advanced online validator, gossips transactions to every validator, and
//! drives the devnet controls (mining, snapshots, time, faults).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod registry;
mod schedule;
mod state;

pub use state::StateView;

use crate::chain::Runtime;
use crate::chain::exec;
use crate::chain::params::deployment_id_for;
use crate::chain::state::{Account, ModelRecord, Task, TaskStatus, ValidatorRecord};
use crate::chain::{Address, CommittedBlock, Receipt, SignedTx, TaskInput, TxBody, TxKind};
use crate::clock::Clock;
use crate::config::DevnetConfig;
use crate::crypto::{self, AccountKey};
use crate::error::{DevnetError, Result};
use crate::handle::Slot;
use crate::lock::{Lock, Shared};
use crate::mempool::{MempoolError, replaces};
use crate::net::{self, NetMsg, Network};
use crate::store::Store;
use crate::validator::{Behavior, ChainView};

/// A funded dev account (keys derived from a fixed seed, like anvil's).
#[derive(Clone, Debug, Serialize)]
pub struct DevAccount {
    pub index: usize,
    pub address: Address,
    pub private_key: String,
    #[serde(serialize_with = "crate::chain::dec::serialize")]
    pub balance: u128,
}

impl DevAccount {
    pub fn key(&self) -> AccountKey {
        AccountKey::from_secret(crypto::dev_secret("account", self.index))
    }
}

/// Chain status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub chain_id: String,
    pub height: u64,
    pub last_hash: String,
    pub validators: usize,
    pub online: usize,
    pub mempool: usize,
    pub models: usize,
    pub tasks: usize,
    pub block_time_ms: Option<u64>,
    /// Validators that stopped, and why.
    #[serde(default)]
    pub stopped: Vec<(usize, String)>,
    /// Whether the fault controls (`dev_kill`, `dev_partition`, ...) act on every validator:
    /// an in-process devnet's, not a node process's.
    #[serde(default)]
    pub dev_controls: bool,
}

/// A transaction sent through this API: sender, nonce, gas price, when.
type Sent = (Address, u64, u64, Instant);

pub(crate) struct Inner {
    pub config: DevnetConfig,
    pub chain_id: String,
    pub net: Network,
    pub clock: Clock,
    /// The store (taken at shutdown, so that the database closes with the devnet).
    pub store: Lock<Option<Arc<Store>>>,
    /// The validators this process runs, by global index (all of them in a devnet, one in
    /// a `lightchain node`); the vectors below follow this order.
    pub local: Vec<usize>,
    pub views: Vec<Arc<Shared<ChainView>>>,
    pub behaviors: Vec<Arc<Shared<Behavior>>>,
    /// What each validator's executor did.
    pub stats: Vec<Arc<Shared<crate::executor::ExecStats>>>,
    pub runtimes: Vec<Arc<Runtime>>,
    pub slots: Vec<Slot>,
    pub accounts: Vec<DevAccount>,
    /// Transactions sent through this API recently: they count as pending until the
    /// validators' mempools show them.
    pub sent: Lock<HashMap<String, Sent>>,
    /// Transactions acknowledged through this API and perhaps not in a block yet, oldest
    /// first: sent again to every validator when one is revived or a fault healed, since
    /// mempools die with their validator (at most [`ACKED_KEPT`]).
    pub acked: Lock<std::collections::VecDeque<SignedTx>>,
    pub snapshots: Lock<Vec<u64>>,
}

/// A local validator as [`DevnetApi::validator_status`] reads it.
struct LocalStatus {
    index: usize,
    state: &'static str,
    height: u64,
    round: u32,
    stats: crate::executor::ExecStats,
    behavior: Option<String>,
}

/// Acknowledged transactions kept for sending again.
pub const ACKED_KEPT: usize = 65_536;

/// The devnet's in-process API (what the JSON-RPC server calls).
#[derive(Clone)]
pub struct DevnetApi {
    pub(crate) inner: Arc<Inner>,
}

impl DevnetApi {
    /// Positions (in [`Inner::local`]) of the local validators that run.
    fn online(&self) -> Vec<usize> {
        let f = self.inner.net.faults.read();
        (0..self.inner.views.len())
            .filter(|&p| {
                !f.killed.contains(&self.inner.local[p])
                    && self.inner.views[p].read().fatal.is_none()
            })
            .collect()
    }

    /// The validators this process runs (global indices).
    pub fn local_validators(&self) -> &[usize] {
        &self.inner.local
    }

    /// The chain as the most advanced online validator has it.
    pub fn view(&self) -> ChainView {
        self.with_view(|v| v.clone())
    }

    /// Reads the most advanced online validator's chain without copying it.
    pub fn with_view<R>(&self, f: impl FnOnce(&ChainView) -> R) -> R {
        let best = self
            .online()
            .into_iter()
            .max_by_key(|&i| self.inner.views[i].read().state.height)
            .unwrap_or(0);
        f(&self.inner.views[best].read())
    }

    /// Each local validator's view (tests compare them).
    pub fn views(&self) -> Vec<ChainView> {
        self.inner.views.iter().map(|v| v.read().clone()).collect()
    }

    pub fn chain_id(&self) -> &str {
        &self.inner.chain_id
    }

    /// Every validator as this process sees it: liveness, height and round of those it runs,
    /// and from the chain the proofs each verified, its votes and penalties.
    pub fn validator_status(&self) -> Vec<crate::rpc::types::ValidatorStatus> {
        let faults = self.inner.net.faults.read().clone();
        let largest = faults
            .partition
            .as_ref()
            .and_then(|g| g.iter().max_by_key(|g| g.len()).cloned());
        // Each local validator read before the best view is locked (never one lock twice).
        let locals: Vec<LocalStatus> = self
            .inner
            .local
            .iter()
            .enumerate()
            .map(|(p, &i)| {
                let (fatal, height, round) = {
                    let v = self.inner.views[p].read();
                    (v.fatal.is_some(), v.state.height, v.round)
                };
                let state = if faults.killed.contains(&i) {
                    "killed"
                } else if fatal {
                    "stopped"
                } else if largest.as_ref().is_some_and(|g| !g.contains(&i)) {
                    "partitioned"
                } else {
                    "online"
                };
                let behavior = serde_json::to_value(*self.inner.behaviors[p].read())
                    .ok()
                    .and_then(|b| b.as_str().map(str::to_string));
                let stats = self.inner.stats[p].read().clone();
                LocalStatus {
                    index: i,
                    state,
                    height,
                    round,
                    stats,
                    behavior,
                }
            })
            .collect();
        self.with_view(|best| {
            let mut verified = vec![0u64; best.state.validators.len()];
            for r in best.receipts.values() {
                for &v in &r.verified_by {
                    if let Some(c) = verified.get_mut(v) {
                        *c += 1;
                    }
                }
            }
            let mut votes = vec![0u64; best.state.validators.len()];
            for b in &best.blocks {
                for &v in &b.signers {
                    if let Some(c) = votes.get_mut(v) {
                        *c += 1;
                    }
                }
            }
            best.state
                .validators
                .iter()
                .map(|rec| {
                    let i = rec.index;
                    let local = locals.iter().find(|l| l.index == i).map(|l| {
                        (
                            l.state,
                            l.height,
                            l.round,
                            l.stats.clone(),
                            l.behavior.clone(),
                        )
                    });
                    crate::rpc::types::ValidatorStatus {
                        index: i,
                        state: local.as_ref().map_or("remote", |l| l.0).to_string(),
                        height: local.as_ref().map_or(best.state.height, |l| l.1),
                        round: local.as_ref().map(|l| l.2),
                        tasks_executed: local.as_ref().map(|l| l.3.tasks),
                        mean_prove_ms: local
                            .as_ref()
                            .filter(|l| l.3.tasks > 0)
                            .map(|l| l.3.prove_ms as f64 / l.3.tasks as f64),
                        proofs_verified: verified[i],
                        votes: votes[i],
                        penalties: rec.penalties,
                        jailed_until: rec.jailed_until,
                        stake: rec.stake,
                        behavior: local.and_then(|l| l.4),
                    }
                })
                .collect()
        })
    }

    /// Every deployed model with its name's owner and whether it is the name's latest
    /// version, by name then version.
    pub fn models(&self) -> Vec<crate::rpc::types::ListedModel> {
        use crate::chain::registry;
        self.with_view(|v| {
            let mut out: Vec<crate::rpc::types::ListedModel> = v
                .state
                .models
                .values()
                .map(|m| {
                    let latest = registry::resolve(&v.state, &format!("{}@latest", m.name))
                        .is_some_and(|l| l.model_id == m.model_id);
                    crate::rpc::types::ListedModel {
                        owner: registry::owner(&v.state, &m.name).unwrap_or(m.deployer),
                        latest,
                        model: m.clone(),
                    }
                })
                .collect();
            out.sort_by(|a, b| {
                a.model
                    .name
                    .cmp(&b.model.name)
                    .then(registry::compare_versions(
                        &a.model.version,
                        &b.model.version,
                    ))
            });
            out
        })
    }

    /// How long a transaction sent through this API counts as pending before it shows in a
    /// validator's mempool (gossip is in-process, so this is generous).
    const GOSSIP_GRACE: Duration = Duration::from_secs(10);

    /// Hashes, senders, nonces and gas prices of the transactions waiting for a block: those
    /// in the online validators' mempools and those sent through this API moments ago.
    fn pending_with(&self, sent: &mut HashMap<String, Sent>) -> Vec<(String, Address, u64, u64)> {
        let mut out: Vec<(String, Address, u64, u64)> = vec![];
        for i in self.online() {
            let v = self.inner.views[i].read();
            out.extend(
                v.mempool
                    .iter()
                    .map(|t| (t.hash.clone(), t.sender, t.nonce, t.gas_price)),
            );
        }
        sent.retain(|_, s| s.3.elapsed() < Self::GOSSIP_GRACE);
        out.extend(sent.iter().map(|(h, s)| (h.clone(), s.0, s.1, s.2)));
        out
    }

    /// The account's chain nonce, past the run of consecutive nonces held by `pending`.
    fn free_nonce(&self, a: &Address, pending: &[(String, Address, u64, u64)]) -> u64 {
        let taken: std::collections::HashSet<u64> =
            pending.iter().filter(|p| &p.1 == a).map(|p| p.2).collect();
        let mut n = self.balance(a).nonce;
        while taken.contains(&n) {
            n += 1;
        }
        n
    }

    pub fn config(&self) -> &DevnetConfig {
        &self.inner.config
    }

    pub fn dev_accounts(&self) -> &[DevAccount] {
        &self.inner.accounts
    }

    pub fn status(&self) -> Status {
        let online = self.online().len();
        let stopped = self
            .inner
            .views
            .iter()
            .zip(&self.inner.local)
            .filter_map(|(v, &i)| v.read().fatal.clone().map(|f| (i, f)))
            .collect();
        self.with_view(|v| Status {
            chain_id: v.state.chain_id.clone(),
            height: v.state.height,
            last_hash: crypto::hex(&v.state.last_hash),
            validators: self.inner.net.len(),
            online,
            mempool: v.mempool.len(),
            models: v.state.models.len(),
            tasks: v.state.tasks.len(),
            block_time_ms: self.inner.config.block_time.map(|d| d.as_millis() as u64),
            stopped,
            dev_controls: self.inner.config.node.is_none(),
        })
    }

    pub fn validators(&self) -> Vec<ValidatorRecord> {
        self.with_view(|v| v.state.validators.clone())
    }

    pub fn balance(&self, a: &Address) -> Account {
        self.with_view(|v| v.state.account(a))
    }

    pub fn block(&self, height: u64) -> Option<CommittedBlock> {
        let h = height.checked_sub(1)?;
        self.with_view(|v| v.blocks.get(h as usize).cloned())
    }

    pub fn task(&self, id: &str) -> Option<Task> {
        self.with_view(|v| v.state.tasks.get(id).cloned())
    }

    /// Whether a task waits for a block: sent, not yet included.
    pub fn task_in_mempool(&self, id: &str) -> bool {
        self.pending_with(&mut self.inner.sent.lock())
            .iter()
            .any(|p| p.0 == id)
            && self.task(id).is_none()
    }

    pub fn receipt(&self, id: &str) -> Option<Receipt> {
        self.with_view(|v| v.receipts.get(id).cloned())
    }

    /// A deployed model by id, `NAME@VERSION` or `NAME@latest`.
    pub fn model(&self, id: &str) -> Option<ModelRecord> {
        self.with_view(|v| crate::chain::registry::resolve(&v.state, id).cloned())
    }

    /// A deployed model's package bytes, from the block that deployed it.
    pub fn package_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let m = self.model(id)?;
        let block = self.block(m.height)?;
        block.block.txs.into_iter().find_map(|t| match t.body.kind {
            TxKind::DeployModel { package }
                if blake3::hash(&package).as_bytes() == &m.package_hash =>
            {
                Some(package)
            }
            _ => None,
        })
    }

    /// A deployed model's package, as the validators loaded it.
    pub fn package(&self, id: &str) -> Option<Arc<lightchain_packager::Package>> {
        let m = self.model(id)?;
        self.inner.runtimes.iter().find_map(|rt| rt.package(&m))
    }

    /// The runtime of the first online validator (package and key caches).
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtimes[self.online().first().copied().unwrap_or(0)]
    }

    /// Checks a transaction and gossips it to every validator's mempool. With `--state` it
    /// is stored before it is acknowledged, so that a node killed at any moment still has it.
    pub fn send_transaction(&self, tx: SignedTx) -> Result<String> {
        if let (TxKind::DeployModel { package }, Some(checker)) =
            (&tx.body.kind, &self.inner.config.package_checker)
        {
            crate::checker::check_package_out_of_process(checker, package)?;
        }
        let rt = self.runtime();
        let now = self.inner.clock.now_ms();
        let next = self.with_view(|v| {
            exec::precheck(rt, &self.inner.config.chain, &v.state, &tx, now)
                .map(|()| v.state.account(&tx.body.sender()).nonce)
        })?;
        let sender = tx.body.sender();
        let limits = &self.inner.config.mempool;
        if tx.body.nonce > next + limits.max_ahead {
            return Err(MempoolError::TooFarAhead {
                nonce: tx.body.nonce,
                next,
                max: limits.max_ahead,
            }
            .into());
        }
        let hash = tx.hash();
        let hex = crypto::hex(&hash);
        // Checked and recorded under one lock, so two requests cannot both take a nonce.
        let mut sent = self.inner.sent.lock();
        let pending = self.pending_with(&mut sent);
        if let Some(old) = pending
            .iter()
            .find(|p| p.1 == sender && p.2 == tx.body.nonce && p.0 != hex)
        {
            replaces(old.3, tx.body.gas_price, limits.replace_bump_pct).map_err(|needed| {
                MempoolError::Underpriced {
                    nonce: tx.body.nonce,
                    price: old.3,
                    needed,
                }
            })?;
        }
        if let Some(store) = self.inner.store.lock().as_ref() {
            store.add_pending(&hash, &tx)?;
        }
        sent.insert(
            hex.clone(),
            (sender, tx.body.nonce, tx.body.gas_price, Instant::now()),
        );
        drop(sent);
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Tx(tx.clone()));
        }
        let mut acked = self.inner.acked.lock();
        if acked.len() >= ACKED_KEPT {
            acked.pop_front();
        }
        acked.push_back(tx);
        Ok(hex)
    }

    /// Sends the acknowledged transactions that no block has taken yet (their nonce not yet
    /// used) to every validator again: a transaction that only the validators killed since
    /// held would otherwise be lost with their mempools.
    fn resend_acknowledged(&self) {
        let txs: Vec<SignedTx> = self.with_view(|v| {
            let mut acked = self.inner.acked.lock();
            acked.retain(|tx| tx.body.nonce >= v.state.account(&tx.body.sender()).nonce);
            acked.iter().cloned().collect()
        });
        for tx in txs {
            for i in 0..self.inner.net.len() {
                self.inner.net.send(net::API, i, NetMsg::Tx(tx.clone()));
            }
        }
    }

    /// The next nonce to use for an account: its chain nonce, past the run of nonces its
    /// pending transactions hold.
    pub fn next_nonce(&self, a: &Address) -> u64 {
        self.free_nonce(a, &self.pending_with(&mut self.inner.sent.lock()))
    }

    /// Sends a signed deployment; returns (transaction hash, model id). The package is checked
    /// (out of process where a checker is configured) before anything in this process loads it.
    pub fn send_deployment(&self, tx: SignedTx) -> Result<(String, String)> {
        let TxKind::DeployModel { package } = &tx.body.kind else {
            return Err(DevnetError::BadRequest(
                "expected a DeployModel transaction".into(),
            ));
        };
        let package = package.clone();
        let hash = self.send_transaction(tx)?;
        let pkg = self
            .runtime()
            .load_package(&package)
            .map_err(DevnetError::InvalidPackage)?;
        Ok((
            hash,
            deployment_id_for(&pkg.info.model_id, pkg.info.input_visibility, pkg.info.mode),
        ))
    }

    /// A transaction body from `key` with its next nonce.
    pub(crate) fn body(&self, key: &AccountKey, gas_price: u64, kind: TxKind) -> TxBody {
        TxBody {
            from: key.public(),
            nonce: self.next_nonce(&key.address()),
            gas_price,
            kind,
        }
    }

    /// Signs and sends a deployment and waits until it is committed; returns (transaction
    /// hash, model id).
    pub fn deploy(&self, key: &AccountKey, package: Vec<u8>) -> Result<(String, String)> {
        let tx = self
            .body(key, 1, TxKind::DeployModel { package })
            .sign(key, self.chain_id());
        let (hash, id) = self.send_deployment(tx)?;
        let start = Instant::now();
        while self.model(&id).is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                return Err(DevnetError::Timeout(format!("deployment of model {id}")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok((hash, id))
    }

    /// Signs and sends a task; `inputs` is an input file's JSON. With `encrypt` the input is
    /// sealed to the validators' X25519 keys and only its commitment is public. Returns the
    /// task id.
    pub fn submit_task(
        &self,
        key: &AccountKey,
        model_id: &str,
        inputs: serde_json::Value,
        encrypt: bool,
        gas_price: u64,
    ) -> Result<String> {
        let model = self
            .model(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let input = self.task_input(&model, inputs, encrypt)?;
        self.submit_input(key, &model, input, gas_price)
    }

    /// Signs and sends a task with an input as given (sealed or not).
    pub fn submit_input(
        &self,
        key: &AccountKey,
        model: &ModelRecord,
        input: TaskInput,
        gas_price: u64,
    ) -> Result<String> {
        self.send_transaction(self.task_tx(key, model, input, gas_price))
    }

    /// A signed task submission at the sender's next nonce, not sent: its task id is the hex
    /// of its hash (and its executor follows from that).
    pub fn task_tx(
        &self,
        key: &AccountKey,
        model: &ModelRecord,
        input: TaskInput,
        gas_price: u64,
    ) -> SignedTx {
        let kind = TxKind::SubmitTask {
            model_id: model.model_id.clone(),
            gas_limit: model.gas,
            input,
        };
        self.body(key, gas_price, kind).sign(key, self.chain_id())
    }

    /// A quote for one task of a deployed model.
    pub fn estimate(
        &self,
        model_id: &str,
        inputs: &serde_json::Value,
        gas_price: u64,
    ) -> Result<lightchain_aivm::gas::Estimate> {
        let m = self
            .model(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let pkg = self
            .package(&m.model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not loaded")))?;
        let parsed = pkg
            .model
            .parse_task_inputs(&inputs.to_string(), pkg.program.state)?;
        let metered = self.runtime().gas(&pkg, m.package_hash);
        let e = lightchain_aivm::gas::quote(
            &pkg.program,
            &pkg.info.model_id,
            metered,
            &parsed,
            gas_price,
        )?;
        // Proving memory as the package proves it: in segments when over its limit.
        Ok(lightchain_aivm::gas::Estimate {
            memory_mb: pkg.info.memory_estimate_mb,
            ..e
        })
    }

    /// Waits until a task has a receipt (or failed).
    pub fn wait_receipt(&self, id: &str, timeout: Duration) -> Result<Receipt> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.receipt(id) {
                return Ok(r);
            }
            if let Some(Task {
                status: TaskStatus::Failed { reason, .. },
                ..
            }) = self.task(id)
            {
                return Err(DevnetError::TaskFailed {
                    id: id.into(),
                    reason,
                });
            }
            if start.elapsed() > timeout {
                return Err(DevnetError::Timeout(format!(
                    "no receipt for task {id} after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Mines a block now (even an empty one); returns the new height.
    pub fn mine(&self) -> Result<u64> {
        let h = self.status().height;
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Mine);
        }
        let start = Instant::now();
        while self.status().height <= h {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(DevnetError::Timeout("mining a block".into()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(self.status().height)
    }

    /// Moves the chain's clock forward (blocks after this carry the later time); returns the
    /// total offset in seconds.
    pub fn increase_time(&self, seconds: u64) -> u64 {
        self.inner.clock.advance(seconds * 1000) / 1000
    }

    /// Remembers the current height; returns the snapshot id.
    pub fn snapshot(&self) -> u64 {
        let h = self.status().height;
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Keep(h));
        }
        let mut s = self.inner.snapshots.lock();
        s.push(h);
        (s.len() - 1) as u64
    }

    /// Rolls every validator back to a snapshot; `false` for an unknown id or when the online
    /// validators did not get there within 10 s.
    pub fn revert(&self, id: u64) -> bool {
        let Some(h) = self.inner.snapshots.lock().get(id as usize).copied() else {
            return false;
        };
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Revert(h));
        }
        // The reverted mempools are empty; so is what this API counted as pending.
        self.inner.sent.lock().clear();
        self.inner.acked.lock().clear();
        let start = Instant::now();
        let at = |i: usize| self.inner.views[i].read().state.height == h;
        while !self.online().into_iter().all(at) {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// The position of a validator this process runs.
    fn check_index(&self, validator: usize) -> Result<usize> {
        self.inner
            .local
            .iter()
            .position(|&v| v == validator)
            .ok_or_else(|| DevnetError::NotFound(format!("validator {validator} in this process")))
    }

    /// What a validator's executor did: tasks, and segments proven for itself and others.
    pub fn executor_stats(&self, validator: usize) -> Result<crate::executor::ExecStats> {
        let p = self.check_index(validator)?;
        Ok(self.inner.stats[p].read().clone())
    }

    /// Fault injection: how a validator behaves.
    pub fn set_behavior(&self, validator: usize, b: Behavior) -> Result<()> {
        let p = self.check_index(validator)?;
        *self.inner.behaviors[p].write() = b;
        Ok(())
    }

    /// Fault injection: crashes a validator (it stops; what it stored, its chain and its
    /// WAL, survives for [`Self::revive`]).
    pub fn kill(&self, validator: usize) -> Result<()> {
        let p = self.check_index(validator)?;
        self.inner.net.faults.write().killed.insert(validator);
        self.inner.slots[p].stop(&self.inner.net);
        Ok(())
    }

    /// Fault injection: restarts a crashed validator from what it stored; it replays its
    /// WAL and syncs the blocks it missed.
    pub fn revive(&self, validator: usize) -> Result<()> {
        let p = self.check_index(validator)?;
        self.inner.slots[p].start(&self.inner.net);
        self.inner.net.faults.write().killed.remove(&validator);
        self.resend_acknowledged();
        Ok(())
    }

    /// Fault injection: only validators in the same group reach each other.
    pub fn partition(&self, groups: Vec<Vec<usize>>) -> Result<()> {
        for &v in groups.iter().flatten() {
            if v >= self.inner.net.len() {
                return Err(DevnetError::NotFound(format!("validator {v}")));
            }
        }
        self.inner.net.faults.write().partition = Some(
            groups
                .into_iter()
                .map(|g| g.into_iter().collect())
                .collect(),
        );
        Ok(())
    }

    /// Fault injection: ends a partition and any delay.
    pub fn heal(&self) {
        {
            let mut f = self.inner.net.faults.write();
            f.partition = None;
            f.delay = Duration::ZERO;
        }
        self.resend_acknowledged();
    }

    /// Fault injection: delays every message between validators.
    pub fn delay(&self, d: Duration) {
        self.inner.net.faults.write().delay = d;
    }

    /// Fault injection: makes the store's writes fail (`--state` devnets), as a full disk
    /// would; validators that cannot store a block stop and say why.
    pub fn fail_storage(&self, on: bool) -> Result<()> {
        let store = self.inner.store.lock();
        let s = store
            .as_ref()
            .ok_or_else(|| DevnetError::Config("this devnet keeps no state".into()))?;
        s.fail_writes(on);
        Ok(())
    }

    pub fn network(&self) -> &Network {
        &self.inner.net
    }

    /// Stops every validator and closes the store (the handle does this on drop).
    pub(crate) fn shutdown(&self) {
        self.inner.net.faults.write().killed.clear();
        for slot in &self.inner.slots {
            slot.stop(&self.inner.net);
            slot.discard();
        }
        // The listeners hold the network that holds the transport: stop them and let go.
        if let Some(t) = self.inner.net.take_transport() {
            t.stop();
        }
        self.inner.store.lock().take();
    }
}
