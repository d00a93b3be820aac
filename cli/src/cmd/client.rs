//! `lightchain deploy` and `lightchain task`: send packages and tasks to a node over JSON-RPC.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use lightchain_aivm::circuit::Visibility;
use lightchain_devnet::chain::state::{ModelRecord, TaskStatus};
use lightchain_devnet::chain::{Address, TaskInput, TxBody, TxKind};
use lightchain_devnet::crypto::{self, AccountKey};
use lightchain_devnet::rpc::types::{
    Balance, Deployed, ModelReply, Status, Submitted, TaskReply, ValidatorRecord,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::shell::{Human, Shell, thousands};

/// Where the node is and who signs.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, env = "LIGHTCHAIN_RPC", default_value = "http://127.0.0.1:8645")]
    pub rpc: String,
    /// Private key (hex) of the sending account.
    #[arg(long, env = "LIGHTCHAIN_KEY", conflicts_with = "account")]
    pub key: Option<String>,
    /// Use devnet dev account N (keys printed in the devnet banner).
    #[arg(long, default_value_t = 0)]
    pub account: usize,
    /// Gas price.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u64,
}

impl NodeArgs {
    pub fn key(&self) -> anyhow::Result<AccountKey> {
        match &self.key {
            Some(hex) => {
                let b: [u8; 32] = crypto::unhex(hex)
                    .and_then(|b| b.try_into().ok())
                    .context("a private key is 64 hex digits")?;
                Ok(AccountKey::from_secret(b))
            }
            None => Ok(AccountKey::from_secret(crypto::dev_secret(
                "account",
                self.account,
            ))),
        }
    }

    pub fn rpc(&self) -> Rpc {
        Rpc {
            url: self.rpc.clone(),
            client: reqwest::blocking::Client::new(),
        }
    }
}

/// A JSON-RPC 2.0 client.
pub struct Rpc {
    url: String,
    client: reqwest::blocking::Client,
}

impl Rpc {
    pub fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .client
            .post(&self.url)
            .json(&body)
            .timeout(Duration::from_secs(120))
            .send()
            .with_context(|| format!("cannot reach the node at {}", self.url))?
            .json()
            .context("the node's answer is not JSON-RPC")?;
        if let Some(e) = resp.get("error") {
            bail!(
                "{method}: {}",
                e.get("message").and_then(|m| m.as_str()).unwrap_or("error")
            );
        }
        Ok(resp.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Calls a method and reads its reply as the type the node serialises it from.
    pub fn call_as<T: DeserializeOwned>(&self, method: &str, params: Value) -> anyhow::Result<T> {
        let v = self.call(method, params)?;
        serde_json::from_value(v)
            .with_context(|| format!("{method}: the node's reply is not in the expected form"))
    }

    /// The chain id that transactions are signed for.
    pub fn chain_id(&self) -> anyhow::Result<String> {
        Ok(self.call_as::<Status>("lc_status", json!([]))?.chain_id)
    }

    fn nonce(&self, a: &Address) -> anyhow::Result<u64> {
        let b: Balance = self.call_as("lc_getBalance", json!([a.to_string()]))?;
        Ok(b.next_nonce)
    }
}

/// Deploy a package to a node.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain devnet &                                        # a local node
  lightchain deploy digits-0.1.0.lcpkg                       # signed by dev account 0
  lightchain deploy model.lcpkg --rpc http://node:8645 --key $KEY --json")]
pub struct DeployArgs {
    /// The package.
    #[arg(value_name = "PKG.lcpkg")]
    pub package: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Return after sending, without waiting for the deployment to be committed.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Serialize)]
struct DeployReport {
    /// The deployed model's id (tasks name it).
    model_id: String,
    /// Its program's id (proofs name it).
    program_id: String,
    tx_hash: String,
    committed: Option<ModelRecord>,
}

impl Human for DeployReport {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "model id  {}\nprogram   {}\ntx        {}\n",
            self.model_id, self.program_id, self.tx_hash
        ));
        if let Some(m) = &self.committed {
            out.push_str(&format!(
                "deployed  at height {}, k = {}, {} gas per task\n",
                m.height,
                m.k,
                thousands(m.gas)
            ));
        }
    }
}

impl DeployArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let bytes = std::fs::read(&self.package)
            .with_context(|| format!("cannot read {}", self.package.display()))?;
        let pkg = lightchain_packager::load(&bytes)
            .with_context(|| format!("invalid package {}", self.package.display()))?;
        let key = self.node.key()?;
        let rpc = self.node.rpc();
        let tx = TxBody {
            from: key.public(),
            nonce: rpc.nonce(&key.address())?,
            gas_price: self.node.gas_price,
            kind: TxKind::DeployModel { package: bytes },
        }
        .sign(&key, &rpc.chain_id()?);
        // The node names the deployed model: its program and input visibility together.
        let Deployed { tx_hash, model_id } = rpc.call_as("lc_deployModel", json!([tx]))?;
        let mut committed = None;
        if !self.no_wait {
            let start = Instant::now();
            loop {
                if let Ok(m) = rpc.call_as::<ModelReply>("lc_getModel", json!([model_id])) {
                    committed = Some(m.model);
                    break;
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(120),
                    "the deployment was not committed within 120 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        shell.emit(&DeployReport {
            model_id,
            program_id: pkg.info.model_id.clone(),
            tx_hash,
            committed,
        })
    }
}

/// Submit and follow AI tasks on a node.
#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub cmd: TaskCmd,
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Submit a task: the model's input, signed and paid for.
    #[command(after_help = "Examples:
  lightchain task submit MODEL_ID --input tests/seven.json --wait
  lightchain task submit MODEL_ID -i input.json --encrypt        # hashed-input models only")]
    Submit {
        /// The deployed model's id.
        model_id: String,
        /// The input file (JSON).
        #[arg(long, short = 'i', value_name = "INPUT.json")]
        input: PathBuf,
        /// Encrypt the input to the validators; only its commitment is public.
        #[arg(long)]
        encrypt: bool,
        /// Gas limit (default: the task's quote).
        #[arg(long)]
        gas_limit: Option<u64>,
        /// Wait for the receipt.
        #[arg(long)]
        wait: bool,
        /// With --wait: write the receipt's proof (compact binary form) here.
        #[arg(long, value_name = "FILE", requires = "wait")]
        proof_out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Show a task and its receipt.
    #[command(after_help = "Examples:
  lightchain task get TASK_ID
  lightchain task get TASK_ID --proof-out proof.bin && lightchain verify model.lcpkg --proof proof.bin")]
    Get {
        task_id: String,
        /// Write the receipt's proof (compact binary form) here.
        #[arg(long, value_name = "FILE")]
        proof_out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Follow a task until it completes (JSON lines with --json).
    Watch {
        task_id: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Serialize)]
struct TaskReport {
    task: TaskReply,
}

impl Human for TaskReport {
    fn human(&self, out: &mut String) {
        let t = &self.task;
        let model = match t {
            TaskReply::Known { task, .. } => task.model_id.as_str(),
            TaskReply::InMempool { .. } => "",
        };
        out.push_str(&format!(
            "task      {}\nmodel     {}\nstatus    {}\n",
            t.id(),
            model,
            t.status()
        ));
        if let Some(r) = t.receipt() {
            out.push_str(&format!(
                "outputs   {:?}\ngas       {}  fee {}\nproof     {} bytes, executor {}, verified by {:?}\nblock     {}\n",
                r.outputs_float,
                r.gas_used,
                r.fee,
                r.proof.len(),
                r.executor,
                r.verified_by,
                r.block_height
            ));
        }
    }
}

impl TaskArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        match self.cmd {
            TaskCmd::Submit {
                model_id,
                input,
                encrypt,
                gas_limit,
                wait,
                proof_out,
                node,
            } => {
                let rpc = node.rpc();
                let key = node.key()?;
                let inputs: Value = serde_json::from_str(
                    &std::fs::read_to_string(&input)
                        .with_context(|| format!("cannot read {}", input.display()))?,
                )
                .with_context(|| format!("{} is not JSON", input.display()))?;
                let reply: ModelReply =
                    rpc.call_as("lc_getModel", json!([model_id, {"package": true}]))?;
                let hashed = reply.model.input_visibility == Visibility::Hashed;
                let task_input = if encrypt || hashed {
                    let b64 = reply
                        .package
                        .as_deref()
                        .context("the node did not return the model's package")?;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64)?;
                    let pkg = lightchain_packager::load(&bytes)?;
                    let validators: Vec<ValidatorRecord> =
                        rpc.call_as("lc_validators", json!([]))?;
                    lightchain_devnet::seal_input(&pkg, &validators, inputs)?
                } else {
                    TaskInput::Public { inputs }
                };
                let gas_limit = gas_limit.unwrap_or(reply.model.gas);
                let tx = TxBody {
                    from: key.public(),
                    nonce: rpc.nonce(&key.address())?,
                    gas_price: node.gas_price,
                    kind: TxKind::SubmitTask {
                        model_id: model_id.clone(),
                        gas_limit,
                        input: task_input,
                    },
                }
                .sign(&key, &rpc.chain_id()?);
                let Submitted { task_id: id } = rpc.call_as("lc_submitTask", json!([tx]))?;
                if wait {
                    watch(&rpc, &id, shell, false)?;
                }
                let task = rpc.call_as("lc_getTask", json!([id]))?;
                write_proof(&task, proof_out.as_ref())?;
                shell.emit(&TaskReport { task })
            }
            TaskCmd::Get {
                task_id,
                proof_out,
                node,
            } => {
                let task = node.rpc().call_as("lc_getTask", json!([task_id]))?;
                write_proof(&task, proof_out.as_ref())?;
                shell.emit(&TaskReport { task })
            }
            TaskCmd::Watch { task_id, node } => {
                let rpc = node.rpc();
                watch(&rpc, &task_id, shell, true)?;
                shell.emit(&TaskReport {
                    task: rpc.call_as("lc_getTask", json!([task_id]))?,
                })
            }
        }
    }
}

/// Writes a completed task's proof (binary form) to `path`.
fn write_proof(task: &TaskReply, path: Option<&PathBuf>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let receipt = task.receipt().context("the task has no receipt yet")?;
    std::fs::write(path, &receipt.proof).with_context(|| format!("cannot write {}", path.display()))
}

/// A task's attempt and executor (null where its status has none), as the stream shows them.
fn attempt_executor(t: &TaskReply) -> (Value, Value) {
    match t {
        TaskReply::Known { task, .. } => match task.status {
            TaskStatus::Pending {
                attempt, executor, ..
            } => (json!(attempt), json!(executor)),
            TaskStatus::Completed { executor, .. } => (Value::Null, json!(executor)),
            TaskStatus::Failed { .. } => (Value::Null, Value::Null),
        },
        TaskReply::InMempool { .. } => (Value::Null, Value::Null),
    }
}

/// Polls a task until it completes or fails; with `stream`, prints each change (JSON lines
/// `{"event": "status", ...}` with --json).
fn watch(rpc: &Rpc, id: &str, shell: &Shell, stream: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let t: TaskReply = rpc.call_as("lc_getTask", json!([id]))?;
        let (attempt, executor) = attempt_executor(&t);
        let status = format!("{}/{attempt}", t.status());
        if stream && status != last {
            if shell.json {
                println!(
                    "{}",
                    json!({"event": "status", "task_id": id, "status": t.status(), "attempt": attempt, "executor": executor, "elapsed_ms": start.elapsed().as_millis()})
                );
            } else if !shell.quiet {
                println!(
                    "{:>7} ms  {} (attempt {attempt}, executor {executor})",
                    start.elapsed().as_millis(),
                    t.status(),
                );
            }
            last = status;
        }
        if let TaskReply::Known { task, .. } = &t {
            match &task.status {
                TaskStatus::Completed { .. } => return Ok(()),
                TaskStatus::Failed { reason, .. } => bail!("task {id} failed: {reason}"),
                TaskStatus::Pending { .. } => {}
            }
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(300),
            "task {id} did not complete within 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
