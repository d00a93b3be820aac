//! `lightchain node --home DIR`: one validator of a network of node processes, and
//! `lightchain testnet init|start`: a local network of them.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use lightchain_devnet::home::{self, NodeEntry, TestnetSpec};
use serde::Serialize;

use crate::cmd::devnet::{RpcAccessArgs, serve_until_stopped, stop_signal};
use crate::shell::{Human, Shell};

/// Run one validator of a network of node processes, from its home folder.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain testnet init net --validators 4      # homes net/node0 .. net/node3
  lightchain node --home net/node0                # one per terminal or machine
  LIGHTCHAIN_RPC_TOKEN=secret lightchain node --home net/node0 --rpc-addr 0.0.0.0:26650

The home holds node.toml (index, P2P addresses of every validator, RPC address), genesis.json,
keys/validator.json (mode 0600) and state/ (blocks, state and WAL). Peers talk HTTP on their
P2P addresses, every message signed by its validator's key. The node serves the same JSON-RPC
as `lightchain devnet`; dev_* controls reach only this node's validator.")]
pub struct NodeArgs {
    /// The node's home folder (made by `lightchain testnet init`).
    #[arg(long, value_name = "DIR")]
    pub home: PathBuf,
    /// Serve JSON-RPC here instead of node.toml's address (non-loopback needs --rpc-token).
    #[arg(long, value_name = "ADDR")]
    pub rpc_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub access: RpcAccessArgs,
}

impl NodeArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let mut cfg = home::load(&self.home)
            .with_context(|| format!("cannot read the node's home {}", self.home.display()))?;
        if let Some(a) = self.rpc_addr {
            cfg.host = a.ip();
            cfg.port = a.port();
        }
        cfg.rpc_access = self.access.access();
        // Uploaded packages are checked in a child process of this very binary.
        cfg.package_checker = std::env::current_exe().ok();
        let setup = cfg.node.clone().context("a node setup")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (api, handle) = lightchain_devnet::try_spawn(cfg)
                .await
                .with_context(|| format!("cannot start node {}", setup.index))?;
            let status = api.status();
            let rpc = handle.rpc_url().unwrap_or_default();
            if shell.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "started", "index": setup.index, "chain_id": status.chain_id,
                        "rpc": rpc, "p2p": setup.listen.to_string(), "height": status.height,
                        "validators": status.validators})
                );
            } else if !shell.quiet {
                println!(
                    "  lightchain node {} of {} on {}: RPC {rpc}, P2P {}, height {} (Ctrl-C to stop)",
                    setup.index, status.validators, status.chain_id, setup.listen, status.height
                );
            }
            serve_until_stopped(shell, &api).await?;
            drop(handle);
            Ok(())
        })
    }
}

/// Make and run a local network of node processes.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    #[command(subcommand)]
    pub command: TestnetCommand,
}

#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    Init(TestnetInitArgs),
    Start(TestnetStartArgs),
}

/// Write a genesis, fresh validator keys (files 0600) and one home per node.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain testnet init net --validators 4
  lightchain testnet init net --validators 4 --base-port 30000 --json
  lightchain testnet init net --validators 3 --hosts 10.0.0.1,10.0.0.2,10.0.0.3

Node i serves JSON-RPC on BASE+2i and P2P on BASE+2i+1. To run nodes on different machines,
give --hosts (or edit `peers` and the addresses in each node.toml) and copy each home to its
machine. The genesis funds the deterministic dev accounts (their keys are public: for trying
things out).")]
pub struct TestnetInitArgs {
    /// Folder for the homes (node0, node1, ...).
    pub dir: PathBuf,
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub validators: u16,
    /// First port: node i uses BASE+2i (RPC) and BASE+2i+1 (P2P).
    #[arg(long, default_value_t = 26650, value_name = "PORT")]
    pub base_port: u16,
    /// Each node's address: one for all, or one per node (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1",
        value_name = "IP,..."
    )]
    pub hosts: Vec<IpAddr>,
    /// Chain id.
    #[arg(long, default_value = "lightchain-testnet")]
    pub chain_id: String,
    /// Number of funded dev accounts.
    #[arg(long, default_value_t = 10)]
    pub accounts: usize,
    /// A block every MS milliseconds instead of as soon as work is pending.
    #[arg(long, value_name = "MS")]
    pub block_time: Option<u64>,
    /// Seconds an executor has for a task (default: scaled with the model's gas).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub task_timeout: Option<u64>,
}

#[derive(Serialize)]
struct Nodes {
    nodes: Vec<NodeEntry>,
}

impl Human for Nodes {
    fn human(&self, s: &mut String) {
        for n in &self.nodes {
            s.push_str(&format!(
                "node {}  home {}  rpc {}  p2p {}\n",
                n.index,
                n.home.display(),
                n.rpc,
                n.p2p
            ));
        }
        s.push_str(&format!(
            "\nStart them with `lightchain testnet start {}`, or each with `lightchain node --home HOME`.",
            self.nodes
                .first()
                .and_then(|n| n.home.parent())
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ));
    }
}

impl TestnetArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        match self.command {
            TestnetCommand::Init(a) => {
                let spec = TestnetSpec {
                    validators: a.validators as usize,
                    base_port: a.base_port,
                    hosts: a.hosts,
                    chain_id: a.chain_id,
                    dev_accounts: a.accounts,
                    block_time: a.block_time.map(Duration::from_millis),
                    task_timeout: a.task_timeout.map(Duration::from_secs),
                };
                let nodes = home::init(&a.dir, &spec)
                    .with_context(|| format!("cannot make a testnet in {}", a.dir.display()))?;
                shell.emit(&Nodes { nodes })
            }
            TestnetCommand::Start(a) => a.run(shell),
        }
    }
}

/// Run every node of a testnet as a local process; Ctrl-C stops them all.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain testnet init net && lightchain testnet start net

Each node's output is prefixed with its index. A node that exits is reported; the others keep
running. Ctrl-C (or SIGTERM) stops every node, which keeps its state for the next start.")]
pub struct TestnetStartArgs {
    /// The testnet's folder (from `lightchain testnet init`).
    pub dir: PathBuf,
}

/// Starts `exe node --home HOME` with its output lines prefixed.
fn start_node(exe: &Path, index: usize, home: &Path, shell: &Shell) -> anyhow::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.arg("node").arg("--home").arg(home);
    if shell.json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start node {index}"))?;
    let forward = |r: Box<dyn std::io::Read + Send>, err: bool| {
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                if err {
                    eprintln!("[node {index}] {line}");
                } else {
                    println!("[node {index}] {line}");
                }
            }
        });
    };
    if let Some(o) = child.stdout.take() {
        forward(Box::new(o), false);
    }
    if let Some(e) = child.stderr.take() {
        forward(Box::new(e), true);
    }
    Ok(child)
}

/// Asks the children to stop (SIGTERM, so that they close their stores), then kills those
/// still running after 10 s.
fn stop_all(children: &mut [Option<Child>]) {
    #[cfg(unix)]
    {
        // Without a `kill` program, straight to SIGKILL below.
        let signalled = children.iter().flatten().all(|c| {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        for _ in 0..if signalled { 100 } else { 0 } {
            if children
                .iter_mut()
                .flatten()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for c in children.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl TestnetStartArgs {
    fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let homes = home::homes(&self.dir);
        if homes.is_empty() {
            bail!(
                "{} holds no testnet (no node0/node.toml); make one with `lightchain testnet init {}`",
                self.dir.display(),
                self.dir.display()
            );
        }
        let exe = std::env::current_exe().context("cannot find this program")?;
        let mut children = Vec::with_capacity(homes.len());
        for (i, h) in homes.iter().enumerate() {
            match start_node(&exe, i, h, shell) {
                Ok(c) => children.push(Some(c)),
                Err(e) => {
                    stop_all(&mut children);
                    return Err(e);
                }
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcome = rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let stop = stop_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    r = &mut stop => break r,
                    _ = tick.tick() => {
                        for (i, slot) in children.iter_mut().enumerate() {
                            if let Some(c) = slot
                                && let Ok(Some(status)) = c.try_wait()
                            {
                                eprintln!("error: node {i} exited ({status})");
                                *slot = None;
                            }
                        }
                        if children.iter().all(Option::is_none) {
                            bail!("every node exited");
                        }
                    }
                }
            }
        });
        stop_all(&mut children);
        outcome
    }
}
