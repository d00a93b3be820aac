//! `lightchain-devnet`: a multi-validator AIVM chain in one process, with full proving.
//!
//! [`spawn`] starts N validators (default 4), each with its own keys, chain state and AIVM
//! caches, connected by a simulated in-process network ([`net`]) and agreeing through
//! Malachite's Tendermint core ([`consensus`]). Tasks are executed and proven by a
//! deterministically chosen executor; every other validator verifies the proof before voting
//! for the block that carries it ([`chain::exec`]). A JSON-RPC 2.0 server ([`rpc`]) serves the
//! chain on loopback; [`store`] persists it with `--state DIR`.
//!
//! ```no_run
//! # async fn demo() {
//! let (api, handle) = lightchain_devnet::spawn(lightchain_devnet::DevnetConfig::test()).await;
//! println!("{} at height {}", handle.rpc_url().unwrap(), api.status().height);
//! # }
//! ```

pub mod chain;
pub mod consensus;
pub mod crypto;
pub mod net;
pub mod rpc;
pub mod store;
pub mod validator;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::ParamsCache;
use serde::{Deserialize, Serialize};

use chain::exec::{ChainParams, Runtime};
use chain::state::{Account, Task, ValidatorRecord};
use chain::{
    Address, CommittedBlock, Receipt, SealedInput, SignedTx, State, TaskInput, TxBody, TxKind,
};
use consensus::context::{Ed25519Signer, Validator, ValidatorSet};
use consensus::node::{Node, Timeouts};
use crypto::AccountKey;
use net::{NetMsg, Network};
use validator::{App, Behavior, ChainView, ValidatorKeys};

/// Errors of the devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("{0}")]
    Config(String),
    #[error("transaction refused: {0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage: {0}")]
    Store(String),
    #[error("cannot serve JSON-RPC on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out: {0}")]
    Timeout(String),
}

pub type Result<T, E = DevnetError> = std::result::Result<T, E>;

/// Devnet configuration.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub validators: usize,
    pub host: IpAddr,
    /// JSON-RPC port; 0 picks a free one.
    pub port: u16,
    /// `None`: a block as soon as work is pending; `Some`: one block per interval.
    pub block_time: Option<Duration>,
    /// Persist blocks and state here (in memory when `None`).
    pub state_dir: Option<PathBuf>,
    /// Funded dev accounts.
    pub accounts: usize,
    pub balance: u128,
    pub stake: u128,
    pub chain_id: String,
    pub chain: ChainParams,
    pub timeouts: Timeouts,
    /// Where proving parameters are cached.
    pub params_dir: Option<PathBuf>,
    /// Misbehaving validators, for fault injection.
    pub behaviors: Vec<(usize, Behavior)>,
    /// Serve JSON-RPC over HTTP.
    pub rpc: bool,
    /// A program that checks an uploaded package in its own process before it reaches the
    /// validators (`PROGRAM check-package < package`, exit 0 when valid). Crafted models can
    /// crash model loaders; a crash there costs a child process, not the node.
    pub package_checker: Option<PathBuf>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            validators: 4,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8645,
            block_time: None,
            state_dir: None,
            accounts: 10,
            balance: 10u128.pow(24),
            stake: 10u128.pow(21),
            chain_id: "lightchain-devnet".into(),
            chain: ChainParams::default(),
            timeouts: Timeouts::default(),
            params_dir: None,
            behaviors: vec![],
            rpc: true,
            package_checker: None,
        }
    }
}

impl DevnetConfig {
    /// For tests: a free port, short task deadlines.
    pub fn test() -> Self {
        DevnetConfig {
            port: 0,
            chain: ChainParams {
                task_timeout_ms: 8_000,
                ..ChainParams::default()
            },
            ..DevnetConfig::default()
        }
    }

    #[must_use]
    pub fn with_validators(mut self, n: usize) -> Self {
        self.validators = n;
        self
    }

    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    #[must_use]
    pub fn with_host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    #[must_use]
    pub fn with_block_time(mut self, t: Option<Duration>) -> Self {
        self.block_time = t;
        self
    }

    #[must_use]
    pub fn with_state_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.state_dir = dir;
        self
    }

    #[must_use]
    pub fn with_behavior(mut self, validator: usize, b: Behavior) -> Self {
        self.behaviors.push((validator, b));
        self
    }

    #[must_use]
    pub fn with_params_dir(mut self, dir: PathBuf) -> Self {
        self.params_dir = Some(dir);
        self
    }

    #[must_use]
    pub fn with_task_timeout(mut self, t: Duration) -> Self {
        self.chain.task_timeout_ms = t.as_millis() as u64;
        self
    }

    #[must_use]
    pub fn without_rpc(mut self) -> Self {
        self.rpc = false;
        self
    }
}

/// A funded dev account (keys derived from a fixed seed, like anvil's).
#[derive(Clone, Debug, Serialize)]
pub struct DevAccount {
    pub index: usize,
    pub address: Address,
    pub private_key: String,
    #[serde(serialize_with = "chain::dec::serialize")]
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
}

/// Transactions sent through the API: hash -> (sender, nonce, when).
type SentLog = HashMap<String, (Address, u64, Instant)>;

struct Inner {
    config: DevnetConfig,
    net: Network,
    views: Vec<Arc<RwLock<ChainView>>>,
    behaviors: Vec<Arc<RwLock<Behavior>>>,
    runtimes: Vec<Arc<Runtime>>,
    accounts: Vec<DevAccount>,
    /// Transactions sent through this API recently (hash -> sender, nonce, when): they count
    /// as pending until the validators' mempools show them.
    sent: Mutex<SentLog>,
    snapshots: Mutex<Vec<u64>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The devnet's in-process API (what the JSON-RPC server calls).
#[derive(Clone)]
pub struct DevnetApi {
    inner: Arc<Inner>,
}

/// Keeps the devnet alive; dropping it stops the validators and the server.
pub struct DevnetHandle {
    api: DevnetApi,
    rpc_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DevnetHandle {
    /// The JSON-RPC URL (`http://host:port`), when serving.
    pub fn rpc_url(&self) -> Option<String> {
        self.rpc_addr.map(|a| format!("http://{a}"))
    }

    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    pub fn dev_accounts(&self) -> &[DevAccount] {
        &self.api.inner.accounts
    }

    pub fn validators(&self) -> Vec<ValidatorRecord> {
        self.api.validators()
    }

    pub fn api(&self) -> &DevnetApi {
        &self.api
    }

    /// Stops everything now (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let inner = &self.api.inner;
        for i in 0..inner.net.len() {
            inner.net.faults.write().expect("faults").killed.remove(&i);
            inner.net.send(net::API, i, NetMsg::Stop);
        }
        let threads: Vec<_> = inner.threads.lock().expect("threads").drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for DevnetHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a devnet; panics if it cannot (see [`try_spawn`]).
pub async fn spawn(config: DevnetConfig) -> (DevnetApi, DevnetHandle) {
    try_spawn(config).await.expect("failed to start the devnet")
}

fn genesis(config: &DevnetConfig, keys: &[ValidatorKeys], accounts: &[DevAccount]) -> State {
    let mut accts = BTreeMap::new();
    for a in accounts {
        accts.insert(
            a.address,
            Account {
                balance: a.balance,
                nonce: 0,
            },
        );
    }
    let validators = keys
        .iter()
        .map(|k| {
            accts.entry(k.account.address()).or_insert(Account {
                balance: 0,
                nonce: 0,
            });
            ValidatorRecord {
                index: k.index,
                account: k.account.address(),
                account_key: k.account.public(),
                consensus_key: *k.consensus.public_key().as_bytes(),
                encryption_key: x25519_dalek::PublicKey::from(&k.encryption).to_bytes(),
                stake: config.stake,
                penalties: 0,
            }
        })
        .collect();
    State {
        chain_id: config.chain_id.clone(),
        height: 0,
        last_hash: [0; 32],
        last_timestamp_ms: 0,
        accounts: accts,
        models: BTreeMap::new(),
        tasks: BTreeMap::new(),
        validators,
        evidence: vec![],
    }
}

/// Starts a devnet: validators, consensus, and (unless disabled) the JSON-RPC server.
pub async fn try_spawn(config: DevnetConfig) -> Result<(DevnetApi, DevnetHandle)> {
    let n = config.validators;
    if !(1..=64).contains(&n) {
        return Err(DevnetError::Config(
            "--validators must be between 1 and 64".into(),
        ));
    }
    let keys: Vec<Arc<ValidatorKeys>> = (0..n).map(|i| Arc::new(ValidatorKeys::dev(i))).collect();
    let accounts: Vec<DevAccount> = (0..config.accounts)
        .map(|i| {
            let k = AccountKey::from_secret(crypto::dev_secret("account", i));
            DevAccount {
                index: i,
                address: k.address(),
                private_key: k.secret_hex(),
                balance: config.balance,
            }
        })
        .collect();
    let params = config
        .params_dir
        .clone()
        .map_or_else(ParamsCache::from_env, |dir| ParamsCache { dir });
    let store = match &config.state_dir {
        Some(dir) => Some(Arc::new(
            store::Store::open(dir).map_err(DevnetError::Store)?,
        )),
        None => None,
    };
    let loaded = match &store {
        Some(s) => s.load().map_err(DevnetError::Store)?,
        None => None,
    };
    let plain: Vec<ValidatorKeys> = (0..n).map(ValidatorKeys::dev).collect();
    let (states, blocks, receipts, packages) = match loaded {
        Some(l) => {
            if l.states[0].validators.len() != n {
                return Err(DevnetError::Config(format!(
                    "the state in {} was made with {} validators, not {n}",
                    config
                        .state_dir
                        .as_ref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                    l.states[0].validators.len()
                )));
            }
            (l.states, l.blocks, l.receipts, l.packages)
        }
        None => {
            let g = genesis(&config, &plain, &accounts);
            if let Some(s) = &store {
                s.init(&g).map_err(DevnetError::Store)?;
            }
            (vec![g], vec![], BTreeMap::new(), vec![])
        }
    };
    let vset = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator::new(k.consensus.public_key(), 1))
            .collect(),
    );
    let signers: BTreeMap<[u8; 20], usize> = keys
        .iter()
        .map(|k| {
            (
                consensus::context::Address::from_public_key(&k.consensus.public_key()).0,
                k.index,
            )
        })
        .collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| std::sync::mpsc::channel()).unzip();
    let net = Network::new(senders);
    let mut views = Vec::new();
    let mut behaviors = Vec::new();
    let mut runtimes = Vec::new();
    let mut threads = Vec::new();
    let last = states.last().expect("genesis").clone();
    for (i, rx) in receivers.into_iter().enumerate() {
        let rt = Arc::new(Runtime::new(params.clone()));
        for p in &packages {
            let _ = rt.load_package(p);
        }
        let view = Arc::new(RwLock::new(ChainView {
            state: last.clone(),
            blocks: blocks.clone(),
            receipts: receipts.clone(),
            mempool: vec![],
        }));
        let behavior = Arc::new(RwLock::new(
            config
                .behaviors
                .iter()
                .find(|(v, _)| *v == i)
                .map_or(Behavior::Honest, |(_, b)| *b),
        ));
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
        let app = App::new(
            i,
            config.chain.clone(),
            rt.clone(),
            last.clone(),
            blocks.clone(),
            receipts.clone(),
            states.clone(),
            view.clone(),
            store.clone(),
            jobs_tx,
            config.block_time,
            signers.clone(),
        );
        let k = keys[i].clone();
        let address = consensus::context::Address::from_public_key(&k.consensus.public_key());
        let node = Node::new(
            i,
            Ed25519Signer::new(k.consensus.clone()),
            vset.clone(),
            address,
            net.clone(),
            rx,
            config.timeouts,
            app,
        );
        threads.push(
            std::thread::Builder::new()
                .name(format!("validator-{i}"))
                .spawn(move || node.run())
                .expect("thread"),
        );
        let (k2, rt2, net2, b2) = (keys[i].clone(), rt.clone(), net.clone(), behavior.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("executor-{i}"))
                .spawn(move || validator::run_executor(k2, rt2, net2, b2, jobs_rx))
                .expect("thread"),
        );
        views.push(view);
        behaviors.push(behavior);
        runtimes.push(rt);
    }
    let inner = Arc::new(Inner {
        config: config.clone(),
        net,
        views,
        behaviors,
        runtimes,
        accounts,
        sent: Mutex::new(HashMap::new()),
        snapshots: Mutex::new(vec![]),
        threads: Mutex::new(threads),
    });
    let api = DevnetApi { inner };
    let mut handle = DevnetHandle {
        api: api.clone(),
        rpc_addr: None,
        shutdown: None,
    };
    if config.rpc {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DevnetError::Bind { addr, source })?;
        handle.rpc_addr = Some(
            listener
                .local_addr()
                .map_err(|source| DevnetError::Bind { addr, source })?,
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        handle.shutdown = Some(tx);
        let app = rpc::router(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    }
    Ok((api, handle))
}

impl DevnetApi {
    fn online(&self) -> Vec<usize> {
        let f = self.inner.net.faults.read().expect("faults");
        (0..self.inner.views.len())
            .filter(|i| !f.killed.contains(i))
            .collect()
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
            .max_by_key(|&i| self.inner.views[i].read().expect("view").state.height)
            .unwrap_or(0);
        f(&self.inner.views[best].read().expect("view"))
    }

    /// How long a transaction sent through this API counts as pending before it shows in a
    /// validator's mempool (gossip is in-process, so this is generous).
    const GOSSIP_GRACE: Duration = Duration::from_secs(10);

    /// Hashes, senders and nonces of the transactions waiting for a block: those in the online
    /// validators' mempools and those sent through this API moments ago.
    fn pending(&self) -> Vec<(String, Address, u64)> {
        self.pending_with(&mut self.inner.sent.lock().expect("sent"))
    }

    /// [`Self::pending`] with the sent-transaction log already locked.
    fn pending_with(&self, sent: &mut SentLog) -> Vec<(String, Address, u64)> {
        let mut out: Vec<(String, Address, u64)> = vec![];
        for i in self.online() {
            let v = self.inner.views[i].read().expect("view");
            out.extend(
                v.mempool
                    .iter()
                    .map(|t| (t.hash.clone(), t.sender, t.nonce)),
            );
        }
        sent.retain(|_, (_, _, at)| at.elapsed() < Self::GOSSIP_GRACE);
        out.extend(sent.iter().map(|(h, (a, n, _))| (h.clone(), *a, *n)));
        out
    }

    /// The account's chain nonce, past the run of nonces held by `pending` transactions.
    fn free_nonce(&self, a: &Address, pending: &[(String, Address, u64)]) -> u64 {
        let taken: std::collections::HashSet<u64> = pending
            .iter()
            .filter(|(_, s, _)| s == a)
            .map(|(_, _, n)| *n)
            .collect();
        let mut n = self.balance(a).nonce;
        while taken.contains(&n) {
            n += 1;
        }
        n
    }

    /// Each validator's view (tests compare them).
    pub fn views(&self) -> Vec<ChainView> {
        self.inner
            .views
            .iter()
            .map(|v| v.read().expect("view").clone())
            .collect()
    }

    pub fn config(&self) -> &DevnetConfig {
        &self.inner.config
    }

    pub fn dev_accounts(&self) -> &[DevAccount] {
        &self.inner.accounts
    }

    pub fn status(&self) -> Status {
        let online = self.online().len();
        self.with_view(|v| Status {
            chain_id: v.state.chain_id.clone(),
            height: v.state.height,
            last_hash: crypto::hex(&v.state.last_hash),
            validators: self.inner.views.len(),
            online,
            mempool: v.mempool.len(),
            models: v.state.models.len(),
            tasks: v.state.tasks.len(),
            block_time_ms: self.inner.config.block_time.map(|d| d.as_millis() as u64),
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
        self.pending().iter().any(|(h, _, _)| h == id) && self.task(id).is_none()
    }

    pub fn receipt(&self, id: &str) -> Option<Receipt> {
        self.with_view(|v| v.receipts.get(id).cloned())
    }

    pub fn model(&self, id: &str) -> Option<chain::state::ModelRecord> {
        self.with_view(|v| v.state.models.get(id).cloned())
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

    /// A deployed model's package bytes are kept by every validator's runtime.
    pub fn package(&self, id: &str) -> Option<Arc<lightchain_packager::Package>> {
        self.inner.runtimes.iter().find_map(|rt| rt.package(id))
    }

    /// Checks a transaction and gossips it to every validator's mempool.
    pub fn send_transaction(&self, tx: SignedTx) -> Result<String> {
        if let (TxKind::DeployModel { package }, Some(checker)) =
            (&tx.body.kind, &self.inner.config.package_checker)
        {
            check_package_out_of_process(checker, package)?;
        }
        let rt = self.runtime();
        self.with_view(|v| chain::exec::precheck(rt, &self.inner.config.chain, &v.state, &tx))
            .map_err(DevnetError::Refused)?;
        let sender = tx.body.sender();
        // Checked and recorded under one lock, so two requests cannot both take a nonce.
        let mut sent = self.inner.sent.lock().expect("sent");
        let pending = self.pending_with(&mut sent);
        if pending
            .iter()
            .any(|(_, a, n)| *a == sender && *n == tx.body.nonce)
        {
            return Err(DevnetError::Refused(format!(
                "nonce {} is taken by a pending transaction; the next nonce is {}",
                tx.body.nonce,
                self.free_nonce(&sender, &pending)
            )));
        }
        let hash = crypto::hex(&tx.hash());
        sent.insert(hash.clone(), (sender, tx.body.nonce, Instant::now()));
        drop(sent);
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Tx(tx.clone()));
        }
        Ok(hash)
    }

    /// The next nonce to use for an account: its chain nonce, past the run of nonces its
    /// pending transactions hold.
    pub fn next_nonce(&self, a: &Address) -> u64 {
        self.free_nonce(a, &self.pending())
    }

    /// The runtime of the first online validator (package and key caches).
    fn runtime(&self) -> &Runtime {
        &self.inner.runtimes[self.online().first().copied().unwrap_or(0)]
    }

    /// Sends a signed deployment; returns (transaction hash, model id). The package is checked
    /// (out of process where a checker is configured) before anything in this process loads it.
    pub fn send_deployment(&self, tx: SignedTx) -> Result<(String, String)> {
        let TxKind::DeployModel { package } = &tx.body.kind else {
            return Err(DevnetError::Refused(
                "expected a DeployModel transaction".into(),
            ));
        };
        let package = package.clone();
        let hash = self.send_transaction(tx)?;
        // Loaded (and cached) by the precheck in send_transaction.
        let id = self
            .runtime()
            .load_package(&package)
            .map_err(DevnetError::Refused)?
            .info
            .model_id
            .clone();
        Ok((hash, id))
    }

    /// Signs and sends a deployment and waits until it is committed; returns (transaction
    /// hash, model id).
    pub fn deploy(&self, key: &AccountKey, package: Vec<u8>) -> Result<(String, String)> {
        let body = TxBody {
            from: key.public(),
            nonce: self.next_nonce(&key.address()),
            gas_price: 1,
            kind: TxKind::DeployModel { package },
        };
        let (hash, id) = self.send_deployment(body.sign(key))?;
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
        let input = if encrypt || model.input_visibility == Visibility::Hashed {
            let pkg = self
                .package(model_id)
                .ok_or_else(|| DevnetError::NotFound("the model's package".into()))?;
            seal_input(&pkg, &self.validators(), inputs).map_err(DevnetError::Refused)?
        } else {
            TaskInput::Public { inputs }
        };
        let body = TxBody {
            from: key.public(),
            nonce: self.next_nonce(&key.address()),
            gas_price,
            kind: TxKind::SubmitTask {
                model_id: model_id.to_string(),
                gas_limit: model.gas,
                input,
            },
        };
        self.send_transaction(body.sign(key))
    }

    /// A quote for one task of a deployed model.
    pub fn estimate(
        &self,
        model_id: &str,
        inputs: &serde_json::Value,
        gas_price: u64,
    ) -> Result<lightchain_profiler::Estimate> {
        let pkg = self
            .package(model_id)
            .ok_or_else(|| DevnetError::NotFound(format!("model {model_id} is not deployed")))?;
        let parsed = pkg
            .model
            .parse_inputs(&inputs.to_string())
            .map_err(|e| DevnetError::Refused(e.to_string()))?;
        let metered = self.runtime().gas(&pkg);
        lightchain_profiler::estimate::quote(
            &pkg.program,
            &pkg.info.model_id,
            metered,
            &parsed,
            gas_price,
            None,
        )
        .map_err(|e| DevnetError::Refused(e.to_string()))
    }

    /// Waits until a task has a receipt (or failed).
    pub fn wait_receipt(&self, id: &str, timeout: Duration) -> Result<Receipt> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.receipt(id) {
                return Ok(r);
            }
            if let Some(Task {
                status: chain::state::TaskStatus::Failed { reason },
                ..
            }) = self.task(id)
            {
                return Err(DevnetError::Refused(format!("task {id} failed: {reason}")));
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

    /// Remembers the current height; returns the snapshot id.
    pub fn snapshot(&self) -> u64 {
        let h = self.status().height;
        let mut s = self.inner.snapshots.lock().expect("snapshots");
        s.push(h);
        (s.len() - 1) as u64
    }

    /// Rolls every validator back to a snapshot; `false` for an unknown id or when the online
    /// validators did not get there within 10 s.
    pub fn revert(&self, id: u64) -> bool {
        let Some(h) = self
            .inner
            .snapshots
            .lock()
            .expect("snapshots")
            .get(id as usize)
            .copied()
        else {
            return false;
        };
        for i in 0..self.inner.net.len() {
            self.inner.net.send(net::API, i, NetMsg::Revert(h));
        }
        // The reverted mempools are empty; so is what this API counted as pending.
        self.inner.sent.lock().expect("sent").clear();
        let start = Instant::now();
        let at = |i: usize| self.inner.views[i].read().expect("view").state.height == h;
        while !self.online().into_iter().all(at) {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Fault injection: how a validator behaves as an executor.
    pub fn set_behavior(&self, validator: usize, b: Behavior) -> Result<()> {
        let slot = self
            .inner
            .behaviors
            .get(validator)
            .ok_or_else(|| DevnetError::NotFound(format!("validator {validator}")))?;
        *slot.write().expect("behavior") = b;
        Ok(())
    }

    /// Fault injection: cut a validator off the network (it neither sends nor receives).
    pub fn kill(&self, validator: usize) -> Result<()> {
        if validator >= self.inner.net.len() {
            return Err(DevnetError::NotFound(format!("validator {validator}")));
        }
        self.inner
            .net
            .faults
            .write()
            .expect("faults")
            .killed
            .insert(validator);
        Ok(())
    }

    pub fn network(&self) -> &Network {
        &self.inner.net
    }
}

/// The longest a package check may take (packaging-time guards make real ones take seconds).
const CHECKER_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the package checker on `package` in a child process.
fn check_package_out_of_process(checker: &std::path::Path, package: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new(checker)
        .arg("check-package")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            DevnetError::Config(format!(
                "cannot run the package checker {}: {e}",
                checker.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A checker that exits early closes the pipe; its exit status says why.
        let _ = stdin.write_all(package);
    }
    // A loader that hangs costs the upload, not a request thread.
    let deadline = Instant::now() + CHECKER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DevnetError::Refused(format!(
                    "invalid package: checking it took longer than {} s",
                    CHECKER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(DevnetError::Config(format!("package checker: {e}"))),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_end(&mut stderr);
    }
    let msg = String::from_utf8_lossy(&stderr);
    let first = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the package checker crashed");
    Err(DevnetError::Refused(format!(
        "invalid package: {}",
        first.trim_start_matches("error: ")
    )))
}

/// Seals an input file's JSON for the validators: a random salt, the Poseidon commitment the
/// proof will carry, and the input encrypted to every validator's X25519 key.
pub fn seal_input(
    pkg: &lightchain_packager::Package,
    validators: &[ValidatorRecord],
    inputs: serde_json::Value,
) -> std::result::Result<TaskInput, String> {
    if pkg.info.input_visibility != Visibility::Hashed {
        return Err("this model proves with public inputs; package it with input_visibility = \"hashed\" to encrypt inputs".into());
    }
    let q = chain::exec::public_inputs(pkg, &inputs)?;
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let salt = lightchain_aivm::proof::random_salt(&mut rng);
    let commitment = lightchain_aivm::circuit::input_commitment(&pkg.program, &q, salt);
    use ff::PrimeField;
    let sealed = SealedInput {
        inputs,
        salt: salt.to_repr(),
    };
    let recipients: Vec<(usize, [u8; 32])> = validators
        .iter()
        .map(|v| (v.index, v.encryption_key))
        .collect();
    let (ciphertext, keys) = crypto::seal(
        &serde_json::to_vec(&sealed).map_err(|e| e.to_string())?,
        &recipients,
        &mut rng,
    );
    Ok(TaskInput::Encrypted {
        commitment: commitment.to_repr(),
        ciphertext,
        keys,
    })
}
