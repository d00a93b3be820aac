//! Starting a devnet ([`try_spawn`]): keys, genesis or the stored chain, one consensus thread
//! and one executor thread per validator, and the JSON-RPC server; and the handle that stops
//! it all when dropped. A validator's thread can stop (a crash, `dev_kill`) and start again
//! from what it stored (`dev_revive`): its [`Slot`] keeps what survives a restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use lightchain_aivm::proof::ParamsCache;

use crate::api::{DevAccount, DevnetApi, Inner};
use crate::chain::Runtime;
use crate::chain::State;
use crate::chain::state::{Account, ValidatorRecord};
use crate::clock::Clock;
use crate::config::DevnetConfig;
use crate::consensus::context::{Address, Ed25519Signer};
use crate::consensus::node::{Node, Timeouts, Wiring};
use crate::consensus::wal::Wal;
use crate::crypto::{self, AccountKey};
use crate::error::{DevnetError, Result};
use crate::executor::{ExecStats, Executor};
use crate::lock::{Lock, Shared};
use crate::net::{NetMsg, Network};
use crate::store::{Loaded, Store};
use crate::validator::{App, Behavior, ChainView, Restored, ValidatorKeys};

/// What a validator keeps across a restart of its thread: its keys, its WAL file, its
/// behaviour, and (while stopped) its app with the chain it stored.
pub struct Slot {
    pub index: usize,
    keys: Arc<ValidatorKeys>,
    wal_path: PathBuf,
    durable: bool,
    timeouts: Timeouts,
    behavior: Arc<Shared<Behavior>>,
    thread: Lock<Option<JoinHandle<App>>>,
    parked: Lock<Option<App>>,
}

impl Slot {
    /// Starts the validator's consensus thread with `app`.
    fn spawn(&self, net: &Network, app: App) {
        let (tx, rx) = std::sync::mpsc::channel();
        net.reconnect(self.index, tx);
        let wal = match Wal::open(&self.wal_path, self.durable) {
            Ok(w) => w,
            Err(e) => {
                app.view.write().fatal = Some(format!(
                    "validator {} cannot open its WAL {}: {e}",
                    self.index,
                    self.wal_path.display()
                ));
                *self.parked.lock() = Some(app);
                return;
            }
        };
        let wiring = Wiring {
            index: self.index,
            signer: Ed25519Signer::new(self.keys.consensus.clone()),
            address: Address::of(self.keys.consensus.public_key().as_bytes()),
            net: net.clone(),
            rx,
            timeouts: self.timeouts,
            wal,
            behavior: self.behavior.clone(),
        };
        let node = Node::new(wiring, app);
        let t = std::thread::Builder::new()
            .name(format!("validator-{}", self.index))
            .spawn(move || node.run())
            .expect("thread");
        *self.thread.lock() = Some(t);
    }

    /// Stops the validator's thread; its app waits for [`Slot::start`].
    pub fn stop(&self, net: &Network) {
        let Some(t) = self.thread.lock().take() else {
            return;
        };
        net.deliver(crate::net::API, self.index, NetMsg::Stop);
        if let Ok(app) = t.join() {
            *self.parked.lock() = Some(app);
        }
    }

    /// Drops a stopped validator's app (and its hold on the store) for good.
    pub fn discard(&self) {
        self.parked.lock().take();
    }

    /// Starts a stopped validator again: it keeps its chain and WAL, loses its mempool.
    pub fn start(&self, net: &Network) {
        if self.thread.lock().is_some() {
            return;
        }
        let Some(mut app) = self.parked.lock().take() else {
            return;
        };
        app.view.write().fatal = None;
        app.restart();
        self.spawn(net, app);
    }
}

/// Keeps the devnet alive; dropping it stops the validators and the server.
pub struct DevnetHandle {
    api: DevnetApi,
    rpc_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The WAL folder of an in-memory devnet, removed at shutdown.
    temp_wal: Option<PathBuf>,
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
        self.api.shutdown();
        if let Some(dir) = self.temp_wal.take() {
            let _ = std::fs::remove_dir_all(dir);
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

pub(crate) fn genesis(
    config: &DevnetConfig,
    keys: &[Arc<ValidatorKeys>],
    accounts: &[DevAccount],
) -> State {
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
                jailed_until: None,
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
        schedules: BTreeMap::new(),
        states: BTreeMap::new(),
        burned: 0,
    }
}

/// The validators' encryption secrets: stored ones, or fresh ones from the operating
/// system's randomness (stored with `--state`).
fn encryption_keys(store: Option<&Store>, n: usize) -> Result<Vec<x25519_dalek::StaticSecret>> {
    if let Some(s) = store {
        let stored = s.encryption_keys()?;
        if !stored.is_empty() {
            if stored.len() != n {
                return Err(DevnetError::Config(format!(
                    "the state holds encryption keys for {} validators, not {n}",
                    stored.len()
                )));
            }
            return Ok(stored
                .into_values()
                .map(x25519_dalek::StaticSecret::from)
                .collect());
        }
    }
    let fresh: Vec<x25519_dalek::StaticSecret> =
        (0..n).map(|_| crypto::random_encryption_key()).collect();
    if let Some(s) = store {
        s.put_encryption_keys(&fresh.iter().map(|k| k.to_bytes()).collect::<Vec<_>>())?;
    }
    Ok(fresh)
}

/// A fresh folder for the WALs of an in-memory devnet.
fn temp_wal_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("lightchain-devnet-wal-{}-{n}", std::process::id()))
}

/// The funded dev accounts.
pub(crate) fn dev_accounts(config: &DevnetConfig) -> Vec<DevAccount> {
    (0..config.accounts)
        .map(|i| {
            let k = AccountKey::from_secret(crypto::dev_secret("account", i));
            DevAccount {
                index: i,
                address: k.address(),
                private_key: k.secret_hex(),
                balance: config.balance,
            }
        })
        .collect()
}

/// The chain a devnet starts from: the stored one, or genesis (stored when there is a store).
fn restore_or_genesis(
    config: &DevnetConfig,
    store: Option<&Store>,
    keys: &[Arc<ValidatorKeys>],
    accounts: &[DevAccount],
) -> Result<Loaded> {
    let n = config.validators;
    if let Some(l) = store.map(Store::load).transpose()?.flatten() {
        if l.state.validators.len() != n {
            return Err(DevnetError::Config(format!(
                "the state in {} was made with {} validators, not {n}",
                config
                    .state_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                l.state.validators.len()
            )));
        }
        return Ok(l);
    }
    let g = genesis(config, keys, accounts);
    if let Some(s) = store {
        s.init(&g)?;
    }
    Ok(Loaded::at_genesis(g))
}

/// What every validator of a devnet starts with.
struct Boot<'a> {
    config: &'a DevnetConfig,
    start: &'a Loaded,
    params: ParamsCache,
    store: Option<Arc<Store>>,
    /// The WAL folder of an in-memory devnet.
    temp_wal: Option<PathBuf>,
    net: Network,
    clock: Clock,
}

/// One started validator: what the API keeps of it.
struct Started {
    view: Arc<Shared<ChainView>>,
    behavior: Arc<Shared<Behavior>>,
    stats: Arc<Shared<ExecStats>>,
    runtime: Arc<Runtime>,
    slot: Slot,
}

impl Boot<'_> {
    /// Starts validator `k`: its runtime (with the stored packages loaded), its app, its
    /// consensus thread and its executor thread.
    fn start(&self, k: &Arc<ValidatorKeys>) -> Result<Started> {
        let (i, start, config) = (k.index, self.start, self.config);
        let rt = Arc::new(Runtime::new(self.params.clone()));
        for p in &start.packages {
            let _ = rt.load_package(p);
        }
        let view = Arc::new(Shared::new(ChainView {
            state: start.state.clone(),
            blocks: start.blocks.clone(),
            receipts: start.receipts.clone(),
            mempool: vec![],
            fatal: None,
            round: 0,
        }));
        let behavior = Arc::new(Shared::new(
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
            self.clock.clone(),
            Restored {
                state: start.state.clone(),
                blocks: start.blocks.clone(),
                receipts: start.receipts.clone(),
            },
            view.clone(),
            self.store.clone(),
            jobs_tx,
            config.block_time,
            config.mempool.clone(),
        );
        let wal_path = match (&self.store, &self.temp_wal) {
            (Some(s), _) => s.wal_path(i),
            (None, d) => d
                .clone()
                .unwrap_or_default()
                .join(format!("validator-{i}.wal")),
        };
        let slot = Slot {
            index: i,
            keys: k.clone(),
            wal_path,
            durable: self.store.is_some(),
            timeouts: config.timeouts,
            behavior: behavior.clone(),
            thread: Lock::new(None),
            parked: Lock::new(None),
        };
        slot.spawn(&self.net, app);
        let stats = Arc::new(Shared::new(ExecStats::default()));
        let executor = Executor::new(
            k.clone(),
            start.state.chain_id.clone(),
            rt.clone(),
            self.net.clone(),
            behavior.clone(),
            stats.clone(),
            jobs_rx,
        );
        std::thread::Builder::new()
            .name(format!("executor-{i}"))
            .spawn(move || executor.run())
            .map_err(DevnetError::Thread)?;
        Ok(Started {
            view,
            behavior,
            stats,
            runtime: rt,
            slot,
        })
    }
}

/// The keys of the validators this process runs, and the chain they start from.
fn keys_and_start(
    config: &DevnetConfig,
    store: Option<&Store>,
    accounts: &[DevAccount],
) -> Result<(Vec<Arc<ValidatorKeys>>, Loaded)> {
    let Some(node) = &config.node else {
        let keys: Vec<Arc<ValidatorKeys>> = encryption_keys(store, config.validators)?
            .into_iter()
            .enumerate()
            .map(|(i, e)| Arc::new(ValidatorKeys::new(i, e)))
            .collect();
        let start = restore_or_genesis(config, store, &keys, accounts)?;
        return Ok((keys, start));
    };
    let k = &node.keys;
    let matches = node.genesis.validators.get(node.index).is_some_and(|v| {
        v.account_key == k.account.public()
            && v.consensus_key == *k.consensus.public_key().as_bytes()
            && v.encryption_key == x25519_dalek::PublicKey::from(&k.encryption).to_bytes()
    });
    if !matches || k.index != node.index {
        return Err(DevnetError::Config(format!(
            "the node's keys are not those of validator {} in its genesis",
            node.index
        )));
    }
    let start = match store.map(Store::load).transpose()?.flatten() {
        Some(l)
            if l.state.chain_id != node.genesis.chain_id
                || !same_keys(&l.state.validators, &node.genesis.validators) =>
        {
            return Err(DevnetError::Config(format!(
                "the stored chain ({}) is not the genesis's ({}): its validators or chain id \
                 differ; move the node's state/ folder away to start from this genesis",
                l.state.chain_id, node.genesis.chain_id
            )));
        }
        Some(l) => l,
        None => {
            if let Some(s) = store {
                s.init(&node.genesis)?;
            }
            Loaded::at_genesis(node.genesis.clone())
        }
    };
    Ok((vec![k.clone()], start))
}

/// Whether two validator lists name the same validators with the same keys.
fn same_keys(a: &[ValidatorRecord], b: &[ValidatorRecord]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.index, x.account_key, x.consensus_key, x.encryption_key)
                == (y.index, y.account_key, y.consensus_key, y.encryption_key)
        })
}

/// The validators' P2P links: each its own loopback listener in a devnet, this node's
/// listener and its peers' addresses in a node process.
async fn start_transport(
    config: &DevnetConfig,
    net: &Network,
    keys: &[Arc<ValidatorKeys>],
    state: &State,
) -> Result<()> {
    if !config.http_transport && config.node.is_none() {
        return Ok(());
    }
    let links = match &config.node {
        Some(node) => crate::transport::Links {
            listen: vec![(node.index, node.listen)],
            peers: node.peers.iter().copied().map(Some).collect(),
            me: Some(node.index),
        },
        None => crate::transport::Links::loopback(
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            config.validators,
        ),
    };
    let auth = crate::transport::PeerAuth {
        chain_id: state.chain_id.clone(),
        secrets: keys.iter().map(|k| (k.index, k.account.clone())).collect(),
        publics: state.validators.iter().map(|v| v.account_key).collect(),
    };
    let t = crate::transport::Transport::start(net, links, auth).await?;
    net.set_transport(Arc::new(t));
    Ok(())
}

/// Starts a devnet: validators, consensus, and (unless disabled) the JSON-RPC server. With
/// `config.node`, one validator of a network of node processes.
pub async fn try_spawn(mut config: DevnetConfig) -> Result<(DevnetApi, DevnetHandle)> {
    if let Some(node) = &config.node {
        config.validators = node.genesis.validators.len();
        config.chain_id = node.genesis.chain_id.clone();
        if node.peers.len() != config.validators || node.index >= config.validators {
            return Err(DevnetError::Config(format!(
                "the node config lists {} peers and index {} for {} validators",
                node.peers.len(),
                node.index,
                config.validators
            )));
        }
    }
    let n = config.validators;
    if !(1..=64).contains(&n) {
        return Err(DevnetError::Config(
            "--validators must be between 1 and 64".into(),
        ));
    }
    // Before anything starts: an RPC it would refuse to serve stops it here.
    if config.rpc {
        crate::rpc::access::check_bind(config.host, &config.rpc_access)?;
    }
    let accounts = dev_accounts(&config);
    let params = config
        .params_dir
        .clone()
        .map_or_else(ParamsCache::from_env, |dir| ParamsCache { dir });
    let store = match &config.state_dir {
        Some(dir) => Some(Arc::new(Store::open(dir)?)),
        None => None,
    };
    let (keys, start) = keys_and_start(&config, store.as_deref(), &accounts)?;
    let boot = Boot {
        config: &config,
        start: &start,
        params,
        temp_wal: store.is_none().then(temp_wal_dir),
        store: store.clone(),
        net: Network::new((0..n).map(|_| std::sync::mpsc::channel().0).collect()),
        clock: Clock::default(),
    };
    start_transport(&config, &boot.net, &keys, &start.state).await?;
    let (mut views, mut behaviors, mut runtimes, mut slots) = (vec![], vec![], vec![], vec![]);
    let mut stats = vec![];
    for k in &keys {
        let v = boot.start(k).inspect_err(|_| {
            // Listeners hold the network that holds them: stop them, or the ports stay bound.
            if let Some(t) = boot.net.take_transport() {
                t.stop();
            }
        })?;
        views.push(v.view);
        behaviors.push(v.behavior);
        stats.push(v.stats);
        runtimes.push(v.runtime);
        slots.push(v.slot);
    }
    let inner = Arc::new(Inner {
        local: keys.iter().map(|k| k.index).collect(),
        chain_id: start.state.chain_id.clone(),
        config: config.clone(),
        net: boot.net.clone(),
        clock: boot.clock.clone(),
        store: Lock::new(store.clone()),
        views,
        behaviors,
        stats,
        runtimes,
        slots,
        accounts,
        sent: Lock::new(Default::default()),
        acked: Lock::new(Default::default()),
        snapshots: Lock::new(vec![]),
    });
    let temp_wal = boot.temp_wal.clone();
    let api = DevnetApi { inner };
    // Transactions acknowledged before a restart and not in a block: sent again (those whose
    // nonce a block used meanwhile are forgotten).
    let mut stale = Vec::new();
    for tx in start.pending {
        if api.send_transaction(tx.clone()).is_err() {
            stale.push(tx.hash());
        }
    }
    if let Some(s) = &store {
        s.drop_pending(&stale)?;
    }
    let mut handle = DevnetHandle {
        api: api.clone(),
        rpc_addr: None,
        shutdown: None,
        temp_wal,
    };
    if config.rpc {
        let (addr, tx) = crate::rpc::serve(api.clone(), config.host, config.port).await?;
        handle.rpc_addr = Some(addr);
        handle.shutdown = Some(tx);
    }
    Ok((api, handle))
}
