//! `lightchain deploy` and `lightchain task`: send packages and tasks to a node over JSON-RPC.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use lightchain_aivm::circuit::Visibility;
use lightchain_devnet::chain::state::{ModelRecord, TaskStatus};
use lightchain_devnet::chain::{Address, SignedTx, TaskInput, TxBody, TxKind};
use lightchain_devnet::crypto::{self, AccountKey};
use lightchain_devnet::rpc::types::{
    Balance, Deployed, ModelReply, Status, Submitted, TaskReply, ValidatorRecord,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::shell::{Human, Shell, thousands};

/// The node URL when neither a flag, the environment nor a profile gives one.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8645";

/// Where the node is: flags, then environment, then the config file's profile.
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// The node's JSON-RPC URL [default: the profile's, else http://127.0.0.1:8645].
    #[arg(long, env = "LIGHTCHAIN_RPC")]
    pub rpc: Option<String>,
    /// The node's RPC token, sent as `Authorization: Bearer TOKEN` (needed for deploys and
    /// submissions when the node has one).
    #[arg(
        long,
        env = "LIGHTCHAIN_RPC_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A profile of config.toml (`lightchain keys --help` shows the file): its rpc, token and key.
    #[arg(long, env = "LIGHTCHAIN_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

impl RpcArgs {
    /// The profile these arguments name (or the config's default; empty without a config).
    fn profile(&self) -> anyhow::Result<crate::cmd::keys::Profile> {
        crate::cmd::keys::Config::load()?.profile(self.profile.as_deref())
    }

    pub fn rpc(&self) -> anyhow::Result<Rpc> {
        let (url, token) = self.url_and_token()?;
        Ok(Rpc::new(&url, token))
    }

    /// The node's URL and token, from flags, environment or profile.
    pub fn url_and_token(&self) -> anyhow::Result<(String, Option<String>)> {
        let p = self.profile()?;
        Ok((
            self.rpc
                .clone()
                .or(p.rpc)
                .unwrap_or_else(|| DEFAULT_RPC.to_string()),
            self.token.clone().or(p.token),
        ))
    }
}

/// Where the node is and who signs.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub conn: RpcArgs,
    /// Private key (hex) of the sending account.
    #[arg(long, env = "LIGHTCHAIN_KEY", conflicts_with_all = ["account", "from"], hide_env_values = true)]
    pub key: Option<String>,
    /// Sign with a stored key (`lightchain keys list`).
    #[arg(long, value_name = "NAME", conflicts_with = "account")]
    pub from: Option<String>,
    /// Use devnet dev account N (keys printed in the devnet banner) [default: the profile's
    /// key, else 0].
    #[arg(long)]
    pub account: Option<usize>,
    /// Gas price.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u64,
}

/// A failed call: worth retrying (a read), or not.
enum Failure {
    Transient(anyhow::Error),
    Final(anyhow::Error),
}

impl NodeArgs {
    /// The signing key: --key, --from, --account, the profile's key, dev account 0.
    pub fn key(&self) -> anyhow::Result<AccountKey> {
        if let Some(hex) = &self.key {
            return crate::cmd::keys::parse_secret(hex);
        }
        if let Some(name) = &self.from {
            return crate::cmd::keys::load_key(name);
        }
        if let Some(n) = self.account {
            return Ok(AccountKey::from_secret(crypto::dev_secret("account", n)));
        }
        match self.conn.profile()?.key {
            Some(name) => crate::cmd::keys::load_key(&name),
            None => Ok(AccountKey::from_secret(crypto::dev_secret("account", 0))),
        }
    }

    pub fn rpc(&self) -> anyhow::Result<Rpc> {
        self.conn.rpc()
    }
}

/// A JSON-RPC 2.0 client.
pub struct Rpc {
    url: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
}

/// Attempts of a read (idempotent) call when the node cannot be reached or is busy.
const READ_ATTEMPTS: u32 = 4;

impl Rpc {
    /// A client of the node at `url`.
    pub fn new(url: &str, token: Option<String>) -> Rpc {
        Rpc {
            url: url.to_string(),
            token,
            client: reqwest::blocking::Client::new(),
        }
    }

    /// Calls a method. Reads are retried with backoff (0.25, 0.5, 1 s) when the node cannot be
    /// reached, times out, or is busy; writes are sent once.
    pub fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let attempts = if lightchain_devnet::rpc::access::is_write(method) {
            1
        } else {
            READ_ATTEMPTS
        };
        let (mut wait, mut attempt) = (Duration::from_millis(250), 1);
        loop {
            match self.once(method, &body) {
                Err(Failure::Transient(_)) if attempt < attempts => {
                    std::thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                Err(Failure::Transient(e) | Failure::Final(e)) => return Err(e),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Calls a write method once, showing the upload of its body on `pb` (packages can be
    /// tens of MB).
    pub fn upload(
        &self,
        method: &str,
        params: Value,
        pb: &indicatif::ProgressBar,
    ) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let bytes = serde_json::to_vec(&body)?;
        let len = bytes.len() as u64;
        pb.set_length(len);
        let reader = pb.wrap_read(std::io::Cursor::new(bytes));
        let body = reqwest::blocking::Body::sized(reader, len);
        let r = self.send(method, body);
        pb.finish_and_clear();
        r.map_err(|(Failure::Transient(e) | Failure::Final(e))| e)
    }

    fn once(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::Final(e.into()))?;
        self.send(method, reqwest::blocking::Body::from(bytes))
    }

    fn send(&self, method: &str, body: reqwest::blocking::Body) -> Result<Value, Failure> {
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(Duration::from_secs(120));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| {
            let why = if e.is_timeout() {
                "it did not answer in time"
            } else if e.is_connect() {
                "connection refused or unreachable: is it running, and is the URL right?"
            } else {
                "the request failed"
            };
            Failure::Transient(anyhow::anyhow!(
                "cannot reach the node at {} ({why})",
                self.url
            ))
        })?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let answer: Option<Value> = serde_json::from_str(&text).ok();
        let message = answer
            .as_ref()
            .and_then(|a| a["error"]["message"].as_str())
            .map(str::to_string);
        let fail = |what: String| Failure::Final(anyhow::anyhow!("{method}: {what}"));
        match status.as_u16() {
            401 => {
                let hint = if self.token.is_some() {
                    "the node refused the token"
                } else {
                    "the node needs a token: --token or LIGHTCHAIN_RPC_TOKEN"
                };
                return Err(fail(format!("HTTP 401, {hint}")));
            }
            413 => {
                return Err(fail(
                    "HTTP 413, the request is larger than the node accepts".into(),
                ));
            }
            502..=504 => {
                return Err(Failure::Transient(anyhow::anyhow!(
                    "{method}: HTTP {status} from {}",
                    self.url
                )));
            }
            200 | 204 => {}
            _ => {
                return Err(fail(format!(
                    "HTTP {status}{}",
                    message.map(|m| format!(", {m}")).unwrap_or_default()
                )));
            }
        }
        let answer = answer.ok_or_else(|| fail("the node's answer is not JSON-RPC".into()))?;
        if let Some(e) = answer.get("error") {
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("error");
            // Busy: retry a read later.
            if e.get("code").and_then(Value::as_i64) == Some(lightchain_devnet::rpc::BUSY) {
                return Err(Failure::Transient(anyhow::anyhow!("{method}: {msg}")));
            }
            return Err(fail(msg.to_string()));
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
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

    /// A transaction of `kind` from `key` at its next free nonce, signed for this node's chain.
    pub fn sign(&self, key: &AccountKey, gas_price: u64, kind: TxKind) -> anyhow::Result<SignedTx> {
        Ok(TxBody {
            from: key.public(),
            nonce: self.nonce(&key.address())?,
            gas_price,
            kind,
        }
        .sign(key, &self.chain_id()?))
    }

    /// The account's next free nonce (past its pending transactions).
    pub fn nonce(&self, a: &Address) -> anyhow::Result<u64> {
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
        let rpc = self.node.rpc()?;
        let tx = rpc.sign(
            &key,
            self.node.gas_price,
            TxKind::DeployModel { package: bytes },
        )?;
        // The node names the deployed model: its program and input visibility together.
        let pb = shell.bytes_progress(0, "uploading");
        let Deployed { tx_hash, model_id } =
            serde_json::from_value(rpc.upload("lc_deployModel", json!([tx]), &pb)?)
                .context("lc_deployModel: the node's reply is not in the expected form")?;
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
  lightchain task submit MODEL_ID -i input.json --encrypt        # hashed-input models only
  lightchain task submit digits@latest -i seven.json --wait      # a name's latest version")]
    Submit {
        /// The deployed model: its id, NAME@VERSION or NAME@latest.
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
    /// Schedule a recurring task: the chain runs it every N blocks, M times, each run proven,
    /// receipted and paid from a deposit.
    #[command(after_help = "Examples:
  lightchain task schedule MODEL_ID -i input.json --every 2 --count 3 --wait
  lightchain task schedule digits@latest -i seven.json --every 10 --count 100 --json
  lightchain task schedule MODEL_ID -i in.json --every 5 --count 10 --deposit 500000
  lightchain task cancel SCHEDULE_ID

The deposit (default: every run's fee) is held in escrow; each run takes its fee from it. A
schedule stops when its runs are done, when it is cancelled, or when the deposit cannot pay
the next run; what is left is refunded. With --wait, one line per completed run (a JSON line
with --json), and exit 1 if the schedule stops before its last run.")]
    Schedule(crate::cmd::schedule::ScheduleArgs),
    /// Show a stateful model's state for an account: what its next task starts from.
    #[command(after_help = "Examples:
  lightchain task state fraud-watch@latest
  lightchain task state MODEL_ID --address 0x1234... --json

A stateful model (`[state]` in its manifest) keeps one state per account; each task starts from
it and its proof commits to the state it read and the one it wrote.")]
    State(crate::cmd::state::StateArgs),
    /// Cancel a recurring task (its owner only); the rest of its deposit is refunded.
    Cancel {
        schedule_id: String,
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
        if let Some(r) = t.receipt().filter(|r| !r.attested_by.is_empty()) {
            out.push_str(&format!(
                "outputs   {:?}\ngas       {}  fee {}\nattested  by validators {:?} (more than 2/3 of the stake; no proof)\nblock     {}\n",
                r.outputs_float, r.gas_used, r.fee, r.attested_by, r.block_height
            ));
        } else if let Some(r) = t.receipt() {
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
                let rpc = node.rpc()?;
                let key = node.key()?;
                let (reply, task_input) = task_input(&rpc, &model_id, &input, encrypt)?;
                let gas_limit = gas_limit.unwrap_or(reply.model.gas);
                let kind = TxKind::SubmitTask {
                    // NAME@latest resolved now: the task names one exact model.
                    model_id: reply.model.model_id.clone(),
                    gas_limit,
                    input: task_input,
                };
                let tx = rpc.sign(&key, node.gas_price, kind)?;
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
                let task = node.rpc()?.call_as("lc_getTask", json!([task_id]))?;
                write_proof(&task, proof_out.as_ref())?;
                shell.emit(&TaskReport { task })
            }
            TaskCmd::Schedule(args) => args.run(shell),
            TaskCmd::State(args) => args.run(shell),
            TaskCmd::Cancel { schedule_id, node } => {
                crate::cmd::schedule::cancel(&schedule_id, &node, shell)
            }
            TaskCmd::Watch { task_id, node } => {
                let rpc = node.rpc()?;
                watch(&rpc, &task_id, shell, true)?;
                shell.emit(&TaskReport {
                    task: rpc.call_as("lc_getTask", json!([task_id]))?,
                })
            }
        }
    }
}

/// Resolves a model on the node (its id, `NAME@VERSION` or `NAME@latest`, checked) and reads
/// an input file into a task input for it: sealed to the validators when asked or when the
/// model commits to its inputs, else public.
pub fn task_input(
    rpc: &Rpc,
    model_id: &str,
    input: &std::path::Path,
    encrypt: bool,
) -> anyhow::Result<(ModelReply, TaskInput)> {
    let inputs: Value = serde_json::from_str(
        &std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {}", input.display()))?,
    )
    .with_context(|| format!("{} is not JSON", input.display()))?;
    let reply: ModelReply = rpc.call_as("lc_getModel", json!([model_id, {"package": true}]))?;
    check_resolution(model_id, &reply.model)?;
    let hashed = reply.model.input_visibility == Visibility::Hashed;
    let task_input = if encrypt || hashed {
        let b64 = reply
            .package
            .as_deref()
            .context("the node did not return the model's package")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64)?;
        let pkg = lightchain_packager::load(&bytes)?;
        let validators: Vec<ValidatorRecord> = rpc.call_as("lc_validators", json!([]))?;
        lightchain_devnet::seal_input(&pkg, &validators, inputs)?
    } else {
        TaskInput::Public { inputs }
    };
    Ok((reply, task_input))
}

/// Checks that the model a node resolved is the one asked for: the same id, or for
/// `NAME@VERSION` / `NAME@latest` that name (and version): a node cannot swap the model a
/// task is signed for.
fn check_resolution(asked: &str, got: &ModelRecord) -> anyhow::Result<()> {
    let ok = match asked.split_once('@') {
        None => got.model_id == asked,
        Some((name, "latest")) => got.name == name,
        Some((name, version)) => got.name == name && got.version == version,
    };
    anyhow::ensure!(
        ok,
        "the node answered model {} ({} {}) for {asked}",
        got.model_id,
        got.name,
        got.version
    );
    Ok(())
}

/// Writes a completed task's proof (binary form) to `path`.
fn write_proof(task: &TaskReply, path: Option<&PathBuf>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let receipt = task.receipt().context("the task has no receipt yet")?;
    anyhow::ensure!(
        receipt.attested_by.is_empty(),
        "the task's model is attested: its receipt has no proof (attested by validators {:?})",
        receipt.attested_by
    );
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

/// Show a node's chain: id, height, validators online, models, tasks, mempool.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain status                                   # the local devnet
  lightchain status --rpc http://node:8645 --json     # in CI: exits 1 when the node is down")]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: RpcArgs,
}

#[derive(Serialize)]
struct StatusReport {
    rpc: String,
    #[serde(flatten)]
    status: Status,
}

impl Human for StatusReport {
    fn human(&self, out: &mut String) {
        let s = &self.status;
        out.push_str(&format!(
            "node        {}
chain       {} at height {} (block {})
validators  {} online of {}
models      {}, tasks {}, mempool {}
mining      {}
",
            self.rpc,
            s.chain_id,
            s.height,
            s.last_hash.get(..16).unwrap_or(&s.last_hash),
            s.online,
            s.validators,
            s.models,
            s.tasks,
            s.mempool,
            s.block_time_ms
                .map_or("instant".to_string(), |t| format!("a block every {t} ms"))
        ));
        for (v, why) in &s.stopped {
            out.push_str(&format!("stopped     validator {v}: {why}\n"));
        }
    }
}

impl StatusArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let rpc = self.conn.rpc()?;
        let status: Status = rpc.call_as("lc_status", json!([]))?;
        shell.emit(&StatusReport {
            rpc: rpc.url.clone(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_cannot_swap_the_model_a_task_is_signed_for() {
        let m = ModelRecord {
            model_id: "ab".repeat(32),
            program_id: "cd".repeat(32),
            name: "digits".into(),
            version: "0.2.0".into(),
            deployer: lightchain_devnet::chain::Address([1; 20]),
            height: 3,
            input_visibility: Visibility::Public,
            k: 9,
            gas: 1,
            package_hash: [0; 32],
            package_bytes: 1,
            mode: Default::default(),
            royalty_bps: 0,
            pending_approval: false,
            approvals: Vec::new(),
        };
        for ok in [&"ab".repeat(32)[..], "digits@latest", "digits@0.2.0"] {
            assert!(check_resolution(ok, &m).is_ok(), "{ok}");
        }
        for bad in [
            &"ef".repeat(32)[..],
            "fraud@latest",
            "digits@0.1.0",
            "digits",
        ] {
            let e = check_resolution(bad, &m).unwrap_err().to_string();
            assert!(e.contains("the node answered model"), "{bad}: {e}");
        }
    }
}
