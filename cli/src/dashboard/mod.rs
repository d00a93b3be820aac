//! The terminal dashboard (`lightchain dashboard --rpc URL`, `lightchain devnet --dashboard`):
//! [`data`] reads the node (subscriptions, else polling) on a thread of its own, [`app`] holds
//! the state and the keys, [`ui`] draws it. The terminal is restored on exit, on Ctrl-C, on
//! SIGTERM and on panic.

pub mod app;
pub mod data;
pub mod ui;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use lightchain_devnet::chain::{TaskInput, TxKind};
use lightchain_devnet::crypto::{self, AccountKey};
use serde_json::{Value, json};

use crate::cmd::client::Rpc;
use app::{Action, App, Controls};
use data::{Data, Feed, Link};

/// What the dashboard watches.
pub struct Options {
    pub title: String,
    pub url: String,
    pub token: Option<String>,
    /// A task input file for `s` (else zeros of the model's input shapes).
    pub input: Option<Value>,
}

/// The fault keys over the node's `dev_*` methods; `s` signs with dev account 0.
pub struct RpcControls {
    rpc: Rpc,
    input: Option<Value>,
}

/// Zeros in the shapes of a model's inputs (`{"inputs": {name: [[0, ...]]}}`).
fn zeros(shapes: &[(String, Vec<usize>)]) -> Value {
    fn nest(shape: &[usize]) -> Value {
        match shape.split_first() {
            None => json!(0.0),
            Some((&n, rest)) => Value::Array((0..n).map(|_| nest(rest)).collect()),
        }
    }
    let m: serde_json::Map<String, Value> =
        shapes.iter().map(|(n, s)| (n.clone(), nest(s))).collect();
    json!({ "inputs": m })
}

impl RpcControls {
    fn submit(&self, model_id: &str) -> anyhow::Result<String> {
        use base64::Engine as _;
        let reply = self
            .rpc
            .call("lc_getModel", json!([model_id, {"package": true}]))?;
        let b64 = reply["package"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the node gave no package"))?;
        let pkg =
            lightchain_packager::load(&base64::engine::general_purpose::STANDARD.decode(b64)?)?;
        let inputs = match &self.input {
            Some(v) => v.clone(),
            None => {
                let shapes: Vec<(String, Vec<usize>)> = pkg
                    .model
                    .inputs()
                    .into_iter()
                    .map(|v| (v.name, v.shape))
                    .collect();
                zeros(&shapes)
            }
        };
        // A hashed-input model takes its input sealed to the validators.
        let input = if reply["input_visibility"] == "hashed" {
            let validators: Vec<lightchain_devnet::chain::state::ValidatorRecord> =
                serde_json::from_value(self.rpc.call("lc_validators", json!([]))?)?;
            lightchain_devnet::seal_input(&pkg, &validators, inputs)?
        } else {
            TaskInput::Public { inputs }
        };
        let key = AccountKey::from_secret(crypto::dev_secret("account", 0));
        let kind = TxKind::SubmitTask {
            model_id: model_id.to_string(),
            gas_limit: reply["gas"].as_u64().unwrap_or(0),
            input,
        };
        let tx = self.rpc.sign(&key, 1, kind)?;
        let id = self.rpc.call("lc_submitTask", json!([tx]))?["task_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(format!(
            "submitted task {}…",
            id.chars().take(12).collect::<String>()
        ))
    }
}

impl Controls for RpcControls {
    fn act(&mut self, a: &Action) -> anyhow::Result<String> {
        match a {
            Action::Kill(v) => {
                self.rpc.call("dev_kill", json!([v]))?;
                Ok(format!("validator {v} killed"))
            }
            Action::Revive(v) => {
                self.rpc.call("dev_revive", json!([v]))?;
                Ok(format!("validator {v} revived"))
            }
            Action::Partition(v, true) => {
                let n = self.rpc.call("lc_status", json!([]))?["validators"]
                    .as_u64()
                    .unwrap_or(0) as usize;
                let others: Vec<usize> = (0..n).filter(|i| i != v).collect();
                self.rpc.call("dev_partition", json!([[[v], others]]))?;
                Ok(format!("validator {v} partitioned off (x again heals)"))
            }
            Action::Partition(_, false) => {
                self.rpc.call("dev_heal", json!([]))?;
                Ok("partition healed".into())
            }
            Action::Byzantine(v, on) => {
                let b = if *on { "wrong_output" } else { "honest" };
                self.rpc.call("dev_setBehavior", json!([v, b]))?;
                Ok(format!("validator {v} is now {b}"))
            }
            Action::Submit(m) => self.submit(m),
        }
    }
}

/// Reads the node into `shared` until `stop`.
fn feed_loop(mut feed: Feed, shared: Arc<Mutex<(Data, u64)>>, stop: Arc<AtomicBool>) {
    let mut d = Data::default();
    let mut link = Link::Connecting;
    while !stop.load(Ordering::Relaxed) {
        d.link = match feed.refresh(&mut d) {
            Ok(()) => link.clone(),
            Err(e) => Link::Down(format!("{e:#}").chars().take(60).collect()),
        };
        if let Ok(mut s) = shared.lock() {
            s.0 = d.clone();
            s.1 += 1;
        }
        link = feed.wait(Duration::from_secs(1));
    }
}

/// Waits for SIGTERM on a thread of its own and raises `flag`.
fn on_sigterm(flag: Arc<AtomicBool>) {
    #[cfg(unix)]
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                flag.store(true, Ordering::Relaxed);
            }
        });
    });
    #[cfg(not(unix))]
    let _ = flag;
}

/// Runs the dashboard until `q`, Ctrl-C or SIGTERM.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(&opts.title, color);
    let mut controls = RpcControls {
        rpc: Rpc::new(&opts.url, opts.token.clone()),
        input: opts.input.clone(),
    };
    let shared = Arc::new(Mutex::new((Data::default(), 0u64)));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = Feed::new(&opts.url, opts.token.clone());
    let feeder = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || feed_loop(feed, shared, stop))
    };
    // The feed stops whichever way this returns.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop = StopOnDrop(stop.clone());
    let term_flag = Arc::new(AtomicBool::new(false));
    on_sigterm(term_flag.clone());
    // Installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()?;
    let mut seen = 0;
    let result = (|| -> anyhow::Result<()> {
        while !app.quit && !term_flag.load(Ordering::Relaxed) {
            if let Ok(s) = shared.lock()
                && s.1 != seen
            {
                seen = s.1;
                app.update(s.0.clone());
            }
            terminal.draw(|f| f.render_widget(&app, f.area()))?;
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => app.on_key(k, &mut controls),
                    // Drawn at the new size on the next turn.
                    _ => {}
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    // Not joined: it may be inside an RPC call; it sees the flag within a second.
    drop(feeder);
    result
}
