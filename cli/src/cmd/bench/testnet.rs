//! `lightchain bench --testnet 4,7,10`: block time, task latency and proven tasks per second
//! with every validator a separate `lightchain node` process on loopback, driven over
//! JSON-RPC as a client would.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lightchain_devnet::chain::{TaskInput, TxBody, TxKind};
use lightchain_devnet::crypto::{self, AccountKey};
use lightchain_devnet::home::{self, TestnetSpec};
use serde::Serialize;
use serde_json::{Value, json};

use super::{BenchArgs, machine, this_command, write_section};
use crate::cmd::client::Rpc;
use crate::shell::{Human, Shell};

const BEGIN: &str = "<!-- bench:testnet:begin -->";
const END: &str = "<!-- bench:testnet:end -->";

#[derive(Serialize)]
struct Run {
    validators: usize,
    tasks: usize,
    median_ms: f64,
    p90_ms: f64,
    tasks_per_second: f64,
    /// Blocks committed while the saturating tasks ran, and their mean interval.
    blocks: u64,
    block_interval_ms: f64,
    /// From sending a deployment to its being committed (one block, carrying the package).
    deploy_commit_ms: f64,
}

#[derive(Serialize)]
struct TestnetReport {
    machine: String,
    command: String,
    model: String,
    runs: Vec<Run>,
    #[serde(skip)]
    table: String,
}

impl Human for TestnetReport {
    fn human(&self, out: &mut String) {
        out.push_str(&self.table);
    }
}

/// The node processes of one run; killed on drop.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A first port with `2n` free loopback ports after it.
fn free_base(n: usize) -> anyhow::Result<u16> {
    (0..400)
        .map(|k| 12_000 + k * 48)
        .find(|&b: &u16| {
            (0..2 * n as u16).all(|i| std::net::TcpListener::bind(("127.0.0.1", b + i)).is_ok())
        })
        .context("no free range of loopback ports")
}

fn start_nodes(dir: &Path, n: usize) -> anyhow::Result<(Procs, Vec<Rpc>)> {
    let spec = TestnetSpec {
        validators: n,
        base_port: free_base(n)?,
        hosts: vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
        chain_id: "lightchain-bench".into(),
        dev_accounts: 10,
        block_time: None,
        task_timeout: None,
    };
    let entries = home::init(dir, &spec)?;
    let exe = std::env::current_exe()?;
    let mut procs = Procs(Vec::with_capacity(n));
    for e in &entries {
        let log = std::fs::File::create(e.home.join("node.log"))?;
        procs.0.push(
            Command::new(&exe)
                .args(["node", "--quiet", "--home"])
                .arg(&e.home)
                .env_remove("LIGHTCHAIN_RPC_TOKEN")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        );
    }
    let rpcs: Vec<Rpc> = entries.iter().map(|e| Rpc::new(&e.rpc, None)).collect();
    let start = Instant::now();
    for (i, r) in rpcs.iter().enumerate() {
        while r.call("lc_status", json!([])).is_err() {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(120),
                "node {i} did not start: {}",
                std::fs::read_to_string(entries[i].home.join("node.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok((procs, rpcs))
}

fn height(rpc: &Rpc) -> anyhow::Result<u64> {
    Ok(rpc.call("lc_status", json!([]))?["height"]
        .as_u64()
        .unwrap_or(0))
}

/// Waits for a task's receipt on `rpc`.
fn wait_receipt(rpc: &Rpc, id: &str, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if !rpc.call("lc_getReceipt", json!([id]))?.is_null() {
            return Ok(());
        }
        let t = rpc.call("lc_getTask", json!([id]))?;
        if t["status"] == "failed" {
            anyhow::bail!("task {id} failed: {}", t["reason"]);
        }
        anyhow::ensure!(start.elapsed() < limit, "no receipt for task {id}");
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// One account's signer with its nonce kept here.
struct Sender {
    key: AccountKey,
    nonce: u64,
}

impl Sender {
    fn sign(&mut self, chain: &str, kind: TxKind) -> Value {
        let tx = TxBody {
            from: self.key.public(),
            nonce: self.nonce,
            gas_price: 1,
            kind,
        }
        .sign(&self.key, chain);
        self.nonce += 1;
        json!([tx])
    }
}

fn measure(
    package: &[u8],
    input: &Value,
    n_validators: usize,
    tasks: usize,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let (_procs, rpcs) = start_nodes(dir.path(), n_validators)?;
    let chain = "lightchain-bench";
    let mut senders: Vec<Sender> = (0..10)
        .map(|i| Sender {
            key: AccountKey::from_secret(crypto::dev_secret("account", i)),
            nonce: 0,
        })
        .collect();
    let deploy = senders[0].sign(
        chain,
        TxKind::DeployModel {
            package: package.to_vec(),
        },
    );
    let start = Instant::now();
    let model = rpcs[0].call("lc_deployModel", deploy)?["model_id"]
        .as_str()
        .context("lc_deployModel gave no model id")?
        .to_string();
    while rpcs[0].call("lc_getModel", json!([model])).is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "deployment not committed"
        );
        std::thread::sleep(Duration::from_millis(3));
    }
    let deploy_commit_ms = start.elapsed().as_secs_f64() * 1000.0;
    let gas = rpcs[0].call("lc_getModel", json!([model]))?["gas"]
        .as_u64()
        .context("lc_getModel gave no gas per task")?;
    let submit = |s: &mut Sender, to: &Rpc| -> anyhow::Result<String> {
        let kind = TxKind::SubmitTask {
            model_id: model.clone(),
            gas_limit: gas,
            input: TaskInput::Public {
                inputs: input.clone(),
            },
        };
        Ok(to.call("lc_submitTask", s.sign(chain, kind))?["task_id"]
            .as_str()
            .context("lc_submitTask gave no task id")?
            .to_string())
    };
    // One task at a time, through each node in turn, after two warm-up tasks.
    let mut lat = Vec::with_capacity(tasks);
    for i in 0..tasks + 2 {
        let rpc = &rpcs[i % rpcs.len()];
        let t = Instant::now();
        let id = submit(&mut senders[0], rpc)?;
        wait_receipt(rpc, &id, Duration::from_secs(120))?;
        if i >= 2 {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        pb.inc(1);
    }
    // Saturation: as many again at once, from every account, through every node.
    let h0 = height(&rpcs[0])?;
    let t = Instant::now();
    let mut ids = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let rpc = &rpcs[i % rpcs.len()];
        ids.push((i % rpcs.len(), submit(&mut senders[i % 10], rpc)?));
    }
    for (node, id) in &ids {
        wait_receipt(&rpcs[*node], id, Duration::from_secs(600))?;
        pb.inc(1);
    }
    let secs = t.elapsed().as_secs_f64();
    let blocks = height(&rpcs[0])?.saturating_sub(h0);
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    Ok(Run {
        validators: n_validators,
        tasks,
        median_ms: pct(0.5),
        p90_ms: pct(0.9),
        tasks_per_second: tasks as f64 / secs,
        blocks,
        block_interval_ms: secs * 1000.0 / blocks.max(1) as f64,
        deploy_commit_ms,
    })
}

impl BenchArgs {
    pub(super) fn run_testnet(&self, shell: &Shell, sizes: &[usize]) -> anyhow::Result<()> {
        let tasks = self.devnet.unwrap_or(20);
        anyhow::ensure!(tasks >= 1, "--devnet needs at least one task");
        let (package, pkg, input) = self.devnet_package()?;
        let mut runs = Vec::with_capacity(sizes.len());
        for &n in sizes {
            anyhow::ensure!(
                (1..=64).contains(&n),
                "--testnet sizes are 1 to 64 validators"
            );
            let pb = shell.progress(2 * tasks as u64 + 2, &format!("{n} node processes"));
            runs.push(measure(&package, &input, n, tasks, &pb)?);
            pb.finish_and_clear();
        }
        let mut table = String::from(
            "| node processes | tasks | latency median ms | p90 ms | proven tasks/s at saturation | blocks during saturation | mean block interval ms | deployment committed in ms |\n|---|---|---|---|---|---|---|---|\n",
        );
        for r in &runs {
            table.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {:.0} | {:.0} |\n",
                r.validators,
                r.tasks,
                r.median_ms,
                r.p90_ms,
                r.tasks_per_second,
                r.blocks,
                r.block_interval_ms,
                r.deploy_commit_ms
            ));
        }
        let report = TestnetReport {
            machine: machine(),
            command: this_command(),
            model: format!("{} (k = {})", self.devnet_model.display(), pkg.info.k),
            runs,
            table,
        };
        if !self.no_write {
            let section = format!(
                "{BEGIN}\nMeasured with `{}` (release build) on {}: every validator a separate `lightchain node` process on loopback (HTTP P2P, every message signed), model {}, instant mining. Latency: one task at a time, submitted through each node in turn, from submission to the receipt on that node, after two warm-up tasks. Saturation: as many tasks again submitted at once through every node from 10 accounts; tasks/s is their number over the time to the last receipt, block interval that time over the blocks committed meanwhile. All processes share this machine's cores, so larger networks measure CPU contention as much as consensus.\n\n{}{END}",
                report.command, report.machine, report.model, report.table
            );
            write_section(
                &self.out,
                "Node processes: block time and throughput",
                (BEGIN, END),
                &section,
            )?;
        }
        shell.emit(&report)
    }
}
