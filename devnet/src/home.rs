//! A node's home folder (`lightchain node --home DIR`) and a local testnet of them
//! (`lightchain testnet init DIR --validators N`).
//!
//! A home holds:
//! - `node.toml`: the validator's index, its P2P listening address, every validator's P2P
//!   address (`peers`, by index: edit them to run the nodes on different machines), its
//!   JSON-RPC address and block time;
//! - `genesis.json`: the chain's first state (validators with their public keys, funded
//!   accounts) and the chain parameters every node must share; the same file in every home;
//! - `keys/validator.json` (mode 0600): the validator's account, consensus and encryption
//!   secrets, never printed; a node refuses a key file that others can read;
//! - `state/`: what the node stores (blocks, state, receipts, packages in redb; its WAL).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chain::State;
use crate::config::{DevnetConfig, NodeSetup};
use crate::crypto;
use crate::error::{DevnetError, Result};
use crate::validator::ValidatorKeys;

pub const NODE_FILE: &str = "node.toml";
pub const GENESIS_FILE: &str = "genesis.json";
pub const KEY_FILE: &str = "keys/validator.json";

/// `node.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeFile {
    /// This node's validator index in the genesis.
    pub index: usize,
    /// Where this node listens for its peers.
    pub p2p_listen: SocketAddr,
    /// Every validator's P2P address, by index (this node's own included).
    pub peers: Vec<SocketAddr>,
    /// Where this node serves JSON-RPC (a non-loopback address needs a token).
    pub rpc: SocketAddr,
    /// A block every so many milliseconds (none: as soon as work is pending).
    #[serde(default)]
    pub block_time_ms: Option<u64>,
}

/// `genesis.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenesisFile {
    /// A fixed task timeout (none: scaled with the model's gas).
    #[serde(default)]
    pub task_timeout_ms: Option<u64>,
    /// How many of the deterministic dev accounts the genesis funds (their keys are public:
    /// for trying things out only).
    pub dev_accounts: usize,
    pub state: State,
}

/// `keys/validator.json`: hex secrets.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    index: usize,
    account: String,
    consensus: String,
    encryption: String,
}

/// What `testnet init` makes.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    pub validators: usize,
    /// Node `i` serves JSON-RPC on `base_port + 2i` and P2P on `base_port + 2i + 1`.
    pub base_port: u16,
    /// Each node's address (one for all, or one per node).
    pub hosts: Vec<IpAddr>,
    pub chain_id: String,
    pub dev_accounts: usize,
    pub block_time: Option<Duration>,
    pub task_timeout: Option<Duration>,
}

/// One node of a testnet, as `testnet init --json` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEntry {
    pub index: usize,
    pub home: PathBuf,
    pub rpc: String,
    pub p2p: String,
}

fn random_secret() -> [u8; 32] {
    crypto::random_encryption_key().to_bytes()
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DevnetError {
    DevnetError::Config(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// The homes of `dir`: `node0`, `node1`, ... in index order.
pub fn homes(dir: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("node{i}")))
        .take_while(|h| h.join(NODE_FILE).exists())
        .collect()
}

/// Makes a testnet in `dir`: one home per validator with fresh keys, one genesis. Refuses a
/// folder that already holds a testnet (keys are never overwritten).
pub fn init(dir: &Path, spec: &TestnetSpec) -> Result<Vec<NodeEntry>> {
    let n = spec.validators;
    if !(1..=64).contains(&n) {
        return Err(DevnetError::Config(
            "--validators must be between 1 and 64".into(),
        ));
    }
    if spec.hosts.len() != 1 && spec.hosts.len() != n {
        return Err(DevnetError::Config(format!(
            "{} hosts for {n} validators: give one for all, or one per node",
            spec.hosts.len()
        )));
    }
    let last = spec.base_port as usize + 2 * n - 1;
    if spec.base_port == 0 || last > u16::MAX as usize {
        return Err(DevnetError::Config(format!(
            "--base-port {} leaves no room for {n} nodes (2 ports each)",
            spec.base_port
        )));
    }
    if dir.join("node0").exists() {
        return Err(DevnetError::Config(format!(
            "{} already holds a testnet (node0); choose an empty folder",
            dir.display()
        )));
    }
    let host = |i: usize| spec.hosts[if spec.hosts.len() == 1 { 0 } else { i }];
    let port = |i: usize, k: usize| spec.base_port + (2 * i + k) as u16;
    let secrets: Vec<[[u8; 32]; 3]> = (0..n)
        .map(|_| [random_secret(), random_secret(), random_secret()])
        .collect();
    let keys: Vec<Arc<ValidatorKeys>> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| Arc::new(ValidatorKeys::from_secrets(i, s[0], s[1], s[2])))
        .collect();
    let config = DevnetConfig {
        validators: n,
        accounts: spec.dev_accounts,
        chain_id: spec.chain_id.clone(),
        ..DevnetConfig::default()
    };
    let accounts = crate::handle::dev_accounts(&config);
    let genesis = GenesisFile {
        task_timeout_ms: spec.task_timeout.map(|t| t.as_millis() as u64),
        dev_accounts: spec.dev_accounts,
        state: crate::handle::genesis(&config, &keys, &accounts),
    };
    let genesis_json = serde_json::to_string_pretty(&genesis)
        .map_err(|e| DevnetError::Config(format!("genesis: {e}")))?;
    let peers: Vec<SocketAddr> = (0..n)
        .map(|i| SocketAddr::new(host(i), port(i, 1)))
        .collect();
    let mut out = Vec::with_capacity(n);
    for (i, s) in secrets.iter().enumerate() {
        let home = dir.join(format!("node{i}"));
        let keys_dir = home.join("keys");
        std::fs::create_dir_all(&keys_dir).map_err(|e| io_err(&keys_dir, e))?;
        let key = KeyFile {
            index: i,
            account: crypto::hex(&s[0]),
            consensus: crypto::hex(&s[1]),
            encryption: crypto::hex(&s[2]),
        };
        let key_json = serde_json::to_vec_pretty(&key)
            .map_err(|e| DevnetError::Config(format!("key file: {e}")))?;
        write_private(&home.join(KEY_FILE), &key_json)?;
        let node = NodeFile {
            index: i,
            p2p_listen: peers[i],
            peers: peers.clone(),
            rpc: SocketAddr::new(host(i), port(i, 0)),
            block_time_ms: spec.block_time.map(|t| t.as_millis() as u64),
        };
        let toml = toml::to_string(&node).map_err(|e| DevnetError::Config(e.to_string()))?;
        let node_path = home.join(NODE_FILE);
        std::fs::write(&node_path, toml).map_err(|e| io_err(&node_path, e))?;
        let g = home.join(GENESIS_FILE);
        std::fs::write(&g, &genesis_json).map_err(|e| io_err(&g, e))?;
        out.push(NodeEntry {
            index: i,
            home,
            rpc: format!("http://{}", node.rpc),
            p2p: node.p2p_listen.to_string(),
        });
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, e))
}

fn secret(path: &Path, what: &str, hex: &str) -> Result<[u8; 32]> {
    crypto::unhex(hex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| io_err(path, format!("the {what} secret is not 32 hex bytes")))
}

/// Reads a key file, refusing one that others may read.
fn read_keys(path: &Path) -> Result<ValidatorKeys> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| io_err(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(io_err(
                path,
                format!(
                    "the key file is readable by others (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    let k: KeyFile = serde_json::from_str(&read(path)?).map_err(|e| io_err(path, e))?;
    Ok(ValidatorKeys::from_secrets(
        k.index,
        secret(path, "account", &k.account)?,
        secret(path, "consensus", &k.consensus)?,
        secret(path, "encryption", &k.encryption)?,
    ))
}

/// The node file of a home.
pub fn node_file(home: &Path) -> Result<NodeFile> {
    let path = home.join(NODE_FILE);
    toml::from_str(&read(&path)?).map_err(|e| io_err(&path, e))
}

/// The devnet configuration that runs a home's validator as one node process (its RPC
/// access rules and parameter cache are the caller's).
pub fn load(home: &Path) -> Result<DevnetConfig> {
    let node = node_file(home)?;
    let gpath = home.join(GENESIS_FILE);
    let genesis: GenesisFile =
        serde_json::from_str(&read(&gpath)?).map_err(|e| io_err(&gpath, e))?;
    let keys = read_keys(&home.join(KEY_FILE))?;
    let mut config = DevnetConfig {
        validators: genesis.state.validators.len(),
        host: node.rpc.ip(),
        port: node.rpc.port(),
        block_time: node.block_time_ms.map(Duration::from_millis),
        state_dir: Some(home.join("state")),
        accounts: genesis.dev_accounts,
        chain_id: genesis.state.chain_id.clone(),
        node: Some(NodeSetup {
            index: node.index,
            keys: Arc::new(keys),
            genesis: genesis.state,
            listen: node.p2p_listen,
            peers: node.peers,
        }),
        ..DevnetConfig::default()
    };
    config.chain.task_timeout_ms = genesis.task_timeout_ms;
    Ok(config)
}

#[cfg(test)]
mod tests;
