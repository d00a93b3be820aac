//! `lightchain devnet`: a local chain of validators with full proving, served over JSON-RPC.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lightchain_devnet::{DevnetConfig, DevnetHandle, try_spawn};
use serde::Serialize;

use crate::shell::{Shell, thousands};

/// Run a local devnet: N validators in one process that execute, prove and verify every task.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain devnet --demo                       # deploy a bundled model and run a few tasks
  lightchain devnet --dashboard                  # with the terminal dashboard (q quits)
  lightchain devnet --validators 7 --block-time 2000
  lightchain devnet --state .devnet --port 0 --config-out devnet.json
  LIGHTCHAIN_RPC_TOKEN=$(openssl rand -hex 16) lightchain devnet --host 0.0.0.0

JSON-RPC 2.0 on http://HOST:PORT: lc_deployModel, lc_submitTask, lc_getTask, lc_getReceipt,
lc_getBlock, lc_getModel, lc_estimateGas, lc_status, lc_validators, lc_getBalance, and the
devnet controls dev_mine, dev_snapshot, dev_revert, dev_increaseTime, dev_setBehavior,
dev_kill, dev_revive, dev_partition, dev_heal, dev_delay (see the README).")]
pub struct DevnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub validators: u16,
    /// JSON-RPC port (0 picks a free one).
    #[arg(long, default_value_t = 8645)]
    pub port: u16,
    /// Address to serve on (loopback by default; any other needs --rpc-token).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[command(flatten)]
    pub access: RpcAccessArgs,
    /// Produce a block every MS milliseconds instead of as soon as work is pending.
    #[arg(long, value_name = "MS")]
    pub block_time: Option<u64>,
    /// Persist blocks and state in DIR; a restarted devnet continues from it.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Number of funded dev accounts.
    #[arg(long, default_value_t = 10)]
    pub accounts: usize,
    /// Seconds an executor has for a task before it is reassigned (default: 30 s plus 10 s
    /// per million gas of the task's model).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub task_timeout: Option<u64>,
    /// A new version of a deployed model name goes live only once validators holding more
    /// than 2/3 of the stake approve it (`lightchain models approve`); until then
    /// NAME@latest skips it and its tasks are refused.
    #[arg(long)]
    pub approve_versions: bool,
    /// Write the chain id, RPC URL, validators and dev accounts (with keys) as JSON.
    #[arg(long, value_name = "FILE")]
    pub config_out: Option<PathBuf>,
    /// Deploy a bundled digits classifier, run a few tasks and print their results.
    #[arg(long)]
    pub demo: bool,
    /// Show the terminal dashboard instead of log lines (q quits and stops the devnet).
    #[arg(long, conflicts_with = "demo")]
    pub dashboard: bool,
    /// With --dashboard: the input file `s` submits (default: zeros in the model's shapes).
    #[arg(long, value_name = "INPUT.json", requires = "dashboard")]
    pub input: Option<PathBuf>,
    /// Stop after the demo instead of serving.
    #[arg(long, hide = true)]
    pub exit_after_demo: bool,
}

/// Who may call a node's JSON-RPC (devnet and node).
#[derive(Debug, Args)]
pub struct RpcAccessArgs {
    /// Token that write methods (deploy, submit, dev_*) need as `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "LIGHTCHAIN_RPC_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub rpc_token: Option<String>,
    /// Let browsers on ORIGIN call the RPC (CORS; repeatable, `*` for any). None by default.
    #[arg(long, value_name = "ORIGIN")]
    pub rpc_cors: Vec<String>,
    /// Accept requests whose Host header is NAME (besides IP addresses and localhost; a guard
    /// against DNS rebinding). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub rpc_allow_host: Vec<String>,
}

impl RpcAccessArgs {
    pub fn access(&self) -> lightchain_devnet::rpc::RpcAccess {
        lightchain_devnet::rpc::RpcAccess {
            token: self.rpc_token.clone(),
            cors_origins: self.rpc_cors.clone(),
            allowed_hosts: self.rpc_allow_host.clone(),
        }
    }
}

#[derive(Serialize)]
struct ConfigOut<'a> {
    chain_id: &'a str,
    rpc_url: Option<String>,
    mining: String,
    validators: Vec<lightchain_devnet::chain::state::ValidatorRecord>,
    accounts: &'a [lightchain_devnet::DevAccount],
}

fn fmt_balance(b: u128) -> String {
    let whole = b / 10u128.pow(18);
    format!("{} LC", thousands(whole as u64))
}

fn banner(handle: &DevnetHandle, cfg: &DevnetConfig, height: u64) -> String {
    let mut s = String::new();
    s.push_str("\n  lightchain devnet\n  ================\n\n");
    s.push_str(&format!("  Chain id     {}\n", cfg.chain_id));
    s.push_str(&format!(
        "  RPC          {}\n",
        handle.rpc_url().unwrap_or_default()
    ));
    s.push_str(&format!(
        "  Mining       {}\n",
        cfg.block_time.map_or(
            "instant (a block as soon as work is pending)".to_string(),
            |t| format!("a block every {} ms", t.as_millis())
        )
    ));
    s.push_str(&format!(
        "  State        {}\n",
        cfg.state_dir
            .as_ref()
            .map_or("in memory".to_string(), |d| format!(
                "{} (height {height})",
                d.display()
            ))
    ));
    s.push_str(&format!(
        "\n  Validators ({}), each executes, proves and verifies tasks\n",
        cfg.validators
    ));
    for v in handle.validators() {
        s.push_str(&format!(
            "  ({}) {}  stake {}  encryption key {}\n",
            v.index,
            v.account,
            fmt_balance(v.stake),
            lightchain_devnet::crypto::hex(&v.encryption_key)
        ));
    }
    s.push_str(&format!(
        "\n  Dev accounts ({}), {} each\n",
        handle.dev_accounts().len(),
        fmt_balance(cfg.balance)
    ));
    for a in handle.dev_accounts() {
        s.push_str(&format!(
            "  ({}) {}  private key 0x{}\n",
            a.index, a.address, a.private_key
        ));
    }
    s.push('\n');
    s
}

/// The digits template, packaged (what the demo deploys).
fn demo_package(shell: &Shell) -> anyhow::Result<(Vec<u8>, PathBuf, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("digits");
    for (t, path, bytes) in crate::cmd::init::TEMPLATE_FILES {
        if *t == "digits" {
            let dest = project.join(path);
            std::fs::create_dir_all(dest.parent().expect("a parent"))?;
            std::fs::write(dest, bytes)?;
        }
    }
    let (pb, mut progress) = crate::cmd::package::stage_progress(shell);
    let (bytes, _) = lightchain_packager::build(
        &project,
        &lightchain_aivm::proof::ParamsCache::from_env(),
        false,
        &mut progress,
    )?;
    pb.finish_and_clear();
    Ok((bytes, project, dir))
}

fn run_demo(
    shell: &Shell,
    api: &lightchain_devnet::DevnetApi,
    handle: &DevnetHandle,
) -> anyhow::Result<()> {
    let say = |s: String| {
        if !shell.quiet && !shell.json {
            println!("{s}");
        }
    };
    let (package, project, _dir) = demo_package(shell).context("cannot package the demo model")?;
    let key = handle.dev_accounts()[0].key();
    let (_, model) = api
        .deploy(&key, package)
        .context("cannot deploy the demo model")?;
    let m = api.model(&model).context("the model is not on chain")?;
    say(format!(
        "  demo: deployed digits (model {}…, k = {}, {} gas per task)\n",
        &model[..16],
        m.k,
        thousands(m.gas)
    ));
    for (file, label) in [("seven.json", 7), ("six.json", 6), ("three.json", 3)] {
        let inputs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(project.join("tests").join(file))?)?;
        let start = Instant::now();
        let id = api.submit_task(&key, &model, inputs, false, 1)?;
        let r = api.wait_receipt(&id, Duration::from_secs(120))?;
        let latency = start.elapsed();
        let out = &r.outputs_float[0];
        let class = (0..out.len())
            .max_by(|&a, &b| out[a].total_cmp(&out[b]))
            .unwrap_or(0);
        if shell.json {
            println!(
                "{}",
                serde_json::json!({"event": "task", "task_id": id, "class": class, "expected": label, "gas": r.gas_used,
                    "proof_bytes": r.proof.len(), "executor": r.executor, "verified_by": r.verified_by,
                    "block": r.block_height, "latency_ms": latency.as_millis()})
            );
        }
        say(format!(
            "  task {}…  digit {class} (expected {label})  gas {}  proof {} B  executor {}  verified by {:?}  block {}  {} ms",
            &id[..12],
            thousands(r.gas_used),
            r.proof.len(),
            r.executor,
            r.verified_by,
            r.block_height,
            latency.as_millis()
        ));
    }
    say(String::new());
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM: how a long-running command is asked to stop.
pub async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("waiting for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}

/// Serves until Ctrl-C or SIGTERM, saying when a validator stops (its store fails, it
/// cannot apply a committed block); the others go on.
pub async fn serve_until_stopped(
    shell: &Shell,
    api: &lightchain_devnet::DevnetApi,
) -> anyhow::Result<()> {
    let mut reported = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = &mut stop => return r,
            _ = tick.tick() => {
                for (v, reason) in api.status().stopped {
                    if reported.insert(v) {
                        if shell.json {
                            println!("{}", serde_json::json!({"event": "validator_stopped", "validator": v, "reason": reason}));
                        } else {
                            eprintln!("error: validator {v} stopped: {reason}");
                        }
                    }
                }
            }
        }
    }
}

impl DevnetArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let cfg = DevnetConfig {
            validators: self.validators as usize,
            host: self.host,
            port: self.port,
            block_time: self.block_time.map(Duration::from_millis),
            state_dir: self.state.clone(),
            accounts: self.accounts,
            // Uploaded packages are checked in a child process of this very binary.
            package_checker: std::env::current_exe().ok(),
            rpc_access: self.access.access(),
            ..DevnetConfig::default()
        }
        .with_task_timeout(self.task_timeout.map(Duration::from_secs));
        let cfg = DevnetConfig {
            chain: lightchain_devnet::chain::ChainParams {
                approve_versions: self.approve_versions,
                ..cfg.chain
            },
            ..cfg
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (api, handle) = try_spawn(cfg.clone())
                .await
                .context("cannot start the devnet")?;
            let height = api.status().height;
            let config = ConfigOut {
                chain_id: &cfg.chain_id,
                rpc_url: handle.rpc_url(),
                mining: cfg
                    .block_time
                    .map_or("instant".into(), |t| format!("{}ms", t.as_millis())),
                validators: handle.validators(),
                accounts: handle.dev_accounts(),
            };
            if let Some(p) = &self.config_out {
                std::fs::write(p, serde_json::to_string_pretty(&config)?)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            if self.dashboard {
                let input = crate::cmd::dashboard::read_input(self.input.as_ref())?;
                let opts = crate::dashboard::Options {
                    title: "lightchain devnet".into(),
                    url: handle.rpc_url().context("the dashboard needs the RPC")?,
                    token: self.access.rpc_token.clone(),
                    input,
                };
                tokio::task::block_in_place(|| crate::dashboard::run(opts))?;
                drop(handle);
                return Ok(());
            }
            if shell.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "started", "config": config})
                );
            } else if !shell.quiet {
                print!("{}", banner(&handle, &cfg, height));
            }
            if self.demo {
                let (api2, shell2) = (api.clone(), shell.clone());
                let handle_ref = &handle;
                tokio::task::block_in_place(|| run_demo(&shell2, &api2, handle_ref))?;
                if self.exit_after_demo {
                    return Ok(());
                }
            }
            if !shell.quiet && !shell.json {
                println!(
                    "  Listening on {} (Ctrl-C to stop)",
                    handle.rpc_url().unwrap_or_default()
                );
            }
            serve_until_stopped(shell, &api).await?;
            drop(handle);
            Ok(())
        })
    }
}
