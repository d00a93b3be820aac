//! What the dashboard shows ([`Data`]) and how it comes from a node ([`Feed`]): JSON-RPC reads,
//! woken by the node's WebSocket subscriptions (`lc_subscribe` to new blocks, task updates and
//! validator events), or every second when the node offers none (polling).

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lightchain_devnet::chain::CommittedBlock;
use lightchain_devnet::crypto;
use lightchain_devnet::rpc::types::ValidatorStatus;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;

use crate::cmd::client::Rpc;

/// Blocks, tasks and chart points kept.
pub const KEEP_BLOCKS: usize = 200;
pub const KEEP_TASKS: usize = 500;
pub const KEEP_POINTS: usize = 120;

/// How the data arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Link {
    /// Not yet connected.
    #[default]
    Connecting,
    /// Subscribed over WebSocket: updates as they happen.
    Live,
    /// No subscription: read every second.
    Polling,
    /// The node cannot be reached (why).
    Down(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockRow {
    pub height: u64,
    pub hash: String,
    pub timestamp_ms: u64,
    pub proposer: usize,
    pub txs: usize,
    /// Tasks submitted and completed in it.
    pub submitted: usize,
    pub completed: usize,
    pub signers: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub model_id: String,
    pub model: String,
    /// `submitted`, `pending`, `completed` or `failed`.
    pub status: String,
    pub gas: u64,
    pub fee: String,
    pub submitted_height: u64,
    /// From the block that took it to the block with its result (block times).
    pub latency_ms: Option<u64>,
    pub proof_bytes: Option<usize>,
    pub executor: Option<usize>,
    pub verifiers: Vec<usize>,
    /// The failure's reason.
    pub reason: Option<String>,
    /// The receipt as the node serves it (outputs, public inputs), once completed.
    pub receipt: Option<Value>,
}

impl TaskRow {
    pub fn is_final(&self) -> bool {
        self.status == "completed" || self.status == "failed"
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub k: u32,
    pub gas: u64,
    pub height: u64,
}

/// Everything on screen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Data {
    pub rpc: String,
    pub chain_id: String,
    pub height: u64,
    pub link: Link,
    /// The node lets the fault keys act on every validator (an in-process devnet).
    pub dev_controls: bool,
    pub validators: Vec<ValidatorStatus>,
    /// Newest first.
    pub blocks: Vec<BlockRow>,
    /// Newest first.
    pub tasks: Vec<TaskRow>,
    pub models: Vec<ModelRow>,
    /// Completed tasks' latency (ms) and gas, oldest first.
    pub latency: Vec<u64>,
    pub gas: Vec<u64>,
    /// Tasks (submitted + completed) per block, oldest first.
    pub tasks_per_block: Vec<u64>,
}

type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

/// Reads a node into a [`Data`].
pub struct Feed {
    rpc: Rpc,
    url: String,
    ws: Option<Socket>,
    last_ws_try: Option<Instant>,
    /// Block times by height, for latencies.
    times: BTreeMap<u64, u64>,
}

fn parse<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{what}: unexpected reply ({e})"))
}

impl Feed {
    pub fn new(url: &str, token: Option<String>) -> Feed {
        Feed {
            rpc: Rpc::new(url, token),
            url: url.to_string(),
            ws: None,
            last_ws_try: None,
            times: BTreeMap::new(),
        }
    }

    /// Subscribes over WebSocket (at most every 10 s while it fails).
    fn connect_ws(&mut self) {
        if self.ws.is_some()
            || self
                .last_ws_try
                .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        self.last_ws_try = Some(Instant::now());
        let url = format!(
            "{}/ws",
            self.url
                .trim_end_matches('/')
                .replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1)
        );
        let Ok((mut ws, _)) = tungstenite::connect(url) else {
            return;
        };
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        }
        for (i, topic) in ["newBlocks", "tasks", "validators"].iter().enumerate() {
            let req =
                json!({"jsonrpc": "2.0", "id": i, "method": "lc_subscribe", "params": [topic]});
            if ws
                .send(tungstenite::Message::Text(req.to_string().into()))
                .is_err()
            {
                return;
            }
        }
        self.ws = Some(ws);
    }

    /// Waits up to `most` for something to read: a notification (returns at once) or, when
    /// polling, the end of the wait.
    pub fn wait(&mut self, most: Duration) -> Link {
        self.connect_ws();
        let start = Instant::now();
        while let Some(ws) = &mut self.ws {
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    if t.as_str().contains("lc_subscription") {
                        return Link::Live;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    self.ws = None;
                    break;
                }
            }
            if start.elapsed() >= most {
                return Link::Live;
            }
        }
        std::thread::sleep(most.saturating_sub(start.elapsed()));
        Link::Polling
    }

    /// Brings `d` up to date with the node.
    pub fn refresh(&mut self, d: &mut Data) -> anyhow::Result<()> {
        let status = self.rpc.call("lc_status", json!([]))?;
        d.rpc = self.url.clone();
        d.chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
        d.dev_controls = status["dev_controls"].as_bool().unwrap_or(false);
        let height = status["height"].as_u64().unwrap_or(0);
        // A revert: forget what is above the new top.
        d.blocks.retain(|b| b.height <= height);
        self.times.retain(|h, _| *h <= height);
        let known = d.blocks.first().map_or(0, |b| b.height);
        let from = known.max(height.saturating_sub(KEEP_BLOCKS as u64)) + 1;
        let mut new_tasks = Vec::new();
        for h in from..=height {
            let b: Option<CommittedBlock> =
                parse(self.rpc.call("lc_getBlock", json!([h]))?, "lc_getBlock")?;
            let Some(b) = b else { break };
            self.times.insert(h, b.block.timestamp_ms);
            let submitted = b.block.submitted_tasks();
            d.blocks.insert(
                0,
                BlockRow {
                    height: h,
                    hash: crypto::hex(&b.hash),
                    timestamp_ms: b.block.timestamp_ms,
                    proposer: b.block.proposer,
                    txs: b.block.txs.len(),
                    submitted: submitted.len(),
                    completed: b.block.results.len(),
                    signers: b.signers.clone(),
                },
            );
            push_point(
                &mut d.tasks_per_block,
                (submitted.len() + b.block.results.len()) as u64,
            );
            new_tasks.extend(submitted);
        }
        d.blocks.truncate(KEEP_BLOCKS);
        d.height = height;
        let models: Vec<Value> =
            parse(self.rpc.call("lc_listModels", json!([]))?, "lc_listModels")?;
        d.models = models
            .iter()
            .map(|m| ModelRow {
                id: m["model_id"].as_str().unwrap_or_default().to_string(),
                name: m["name"].as_str().unwrap_or_default().to_string(),
                version: m["version"].as_str().unwrap_or_default().to_string(),
                k: m["k"].as_u64().unwrap_or(0) as u32,
                gas: m["gas"].as_u64().unwrap_or(0),
                height: m["height"].as_u64().unwrap_or(0),
            })
            .collect();
        d.models.sort_by_key(|m| std::cmp::Reverse(m.height));
        for id in new_tasks {
            if !d.tasks.iter().any(|t| t.id == id) {
                d.tasks.insert(
                    0,
                    TaskRow {
                        id,
                        status: "submitted".into(),
                        ..TaskRow::default()
                    },
                );
            }
        }
        d.tasks.truncate(KEEP_TASKS);
        self.refresh_tasks(d)?;
        d.validators = parse(
            self.rpc.call("lc_validatorStatus", json!([]))?,
            "lc_validatorStatus",
        )?;
        Ok(())
    }

    /// Reads every task not yet final (at most 64 per refresh).
    fn refresh_tasks(&mut self, d: &mut Data) -> anyhow::Result<()> {
        let names: BTreeMap<&str, &str> = d
            .models
            .iter()
            .map(|m| (m.id.as_str(), m.name.as_str()))
            .collect();
        let mut done = Vec::new();
        for t in d.tasks.iter_mut().filter(|t| !t.is_final()).take(64) {
            let v = self.rpc.call("lc_getTask", json!([t.id]))?;
            let before = t.is_final();
            fill_task(t, &v, &self.times);
            if let Some(n) = names.get(t.model_id.as_str()) {
                t.model = (*n).to_string();
            }
            if !before && t.status == "completed" {
                done.push((t.latency_ms, t.gas));
            }
        }
        for (latency, gas) in done {
            if let Some(l) = latency {
                push_point(&mut d.latency, l);
            }
            push_point(&mut d.gas, gas);
        }
        Ok(())
    }
}

fn push_point(v: &mut Vec<u64>, x: u64) {
    v.push(x);
    if v.len() > KEEP_POINTS {
        v.remove(0);
    }
}

/// Fills a task row from `lc_getTask`'s reply.
pub fn fill_task(t: &mut TaskRow, v: &Value, times: &BTreeMap<u64, u64>) {
    t.status = v["status"].as_str().unwrap_or("submitted").to_string();
    t.model_id = v["model_id"].as_str().unwrap_or_default().to_string();
    t.gas = v["gas"].as_u64().unwrap_or(0);
    t.fee = v["fee"].as_str().unwrap_or_default().to_string();
    t.submitted_height = v["submitted_height"].as_u64().unwrap_or(0);
    t.executor = v["executor"].as_u64().map(|e| e as usize);
    t.reason = v["reason"].as_str().map(str::to_string);
    if let Some(r) = v.get("receipt").filter(|r| !r.is_null()) {
        t.executor = r["executor"].as_u64().map(|e| e as usize);
        t.verifiers = r["verified_by"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect()
            })
            .unwrap_or_default();
        // The proof travels base64: 3 bytes per 4 characters.
        t.proof_bytes = r["proof"]
            .as_str()
            .map(|p| p.trim_end_matches('=').len() * 3 / 4);
        let done = r["block_height"].as_u64().and_then(|h| times.get(&h));
        let start = times.get(&t.submitted_height);
        t.latency_ms = done.zip(start).map(|(d, s)| d.saturating_sub(*s));
        let mut r = r.clone();
        if let Some(o) = r.as_object_mut() {
            o.remove("proof");
        }
        t.receipt = Some(r);
    }
}
