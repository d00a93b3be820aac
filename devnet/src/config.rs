//! Devnet configuration: [`DevnetConfig::default`] for users, [`DevnetConfig::test`] for tests.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::chain::ChainParams;
use crate::consensus::node::Timeouts;
use crate::mempool::MempoolLimits;
use crate::rpc::{RpcAccess, RpcLimits};
use crate::validator::Behavior;

/// Devnet configuration.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub validators: usize,
    pub host: IpAddr,
    /// JSON-RPC port; 0 picks a free one.
    pub port: u16,
    /// `None`: a block as soon as work is pending; `Some`: one block per interval.
    pub block_time: Option<Duration>,
    /// Persist blocks, state, keys, acknowledged transactions and each validator's WAL
    /// here (in memory, WALs in a temporary folder, when `None`).
    pub state_dir: Option<PathBuf>,
    /// Funded dev accounts.
    pub accounts: usize,
    pub balance: u128,
    pub stake: u128,
    pub chain_id: String,
    pub chain: ChainParams,
    pub mempool: MempoolLimits,
    pub rpc_limits: RpcLimits,
    /// Token, CORS origins and allowed Host names of the RPC.
    pub rpc_access: RpcAccess,
    pub timeouts: Timeouts,
    /// Where proving parameters are cached.
    pub params_dir: Option<PathBuf>,
    /// Misbehaving validators, for fault injection.
    pub behaviors: Vec<(usize, Behavior)>,
    /// Serve JSON-RPC over HTTP.
    pub rpc: bool,
    /// Validators exchange their messages over HTTP on loopback (each its own listener; what
    /// separate processes do) instead of in-process channels.
    pub http_transport: bool,
    /// A program that checks an uploaded package in its own process before it reaches the
    /// validators (`PROGRAM check-package < package`, exit 0 when valid). Crafted models can
    /// crash model loaders; a crash there costs a child process, not the node.
    pub package_checker: Option<PathBuf>,
    /// Run one validator of a multi-process network instead of all of them
    /// (`lightchain node`); `validators` then follows the genesis.
    pub node: Option<NodeSetup>,
}

/// One validator of a network of node processes: its keys, the shared genesis, and where
/// it and its peers listen (see [`crate::home`]).
#[derive(Clone)]
pub struct NodeSetup {
    pub index: usize,
    pub keys: std::sync::Arc<crate::validator::ValidatorKeys>,
    pub genesis: crate::chain::State,
    /// This node's P2P listening address.
    pub listen: std::net::SocketAddr,
    /// Every validator's P2P address, by index (this node's own included).
    pub peers: Vec<std::net::SocketAddr>,
}

impl std::fmt::Debug for NodeSetup {
    // Never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSetup")
            .field("index", &self.index)
            .field("chain_id", &self.genesis.chain_id)
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
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
            mempool: MempoolLimits::default(),
            rpc_limits: RpcLimits::default(),
            rpc_access: RpcAccess::default(),
            timeouts: Timeouts::default(),
            params_dir: None,
            behaviors: vec![],
            rpc: true,
            http_transport: false,
            package_checker: None,
            node: None,
        }
    }
}

impl DevnetConfig {
    /// For tests: a free port, short task deadlines.
    pub fn test() -> Self {
        DevnetConfig {
            port: 0,
            chain: ChainParams {
                task_timeout_ms: Some(8_000),
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
    /// Validators talk over HTTP on loopback instead of channels.
    pub fn with_http_transport(mut self) -> Self {
        self.http_transport = true;
        self
    }

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

    /// A fixed task timeout instead of one that scales with the model's gas.
    #[must_use]
    pub fn with_task_timeout(mut self, t: Option<Duration>) -> Self {
        self.chain.task_timeout_ms = t.map(|t| t.as_millis() as u64);
        self
    }

    #[must_use]
    pub fn without_rpc(mut self) -> Self {
        self.rpc = false;
        self
    }
}
