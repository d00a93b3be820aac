//! Devnet tests: validators in one process commit blocks with proven tasks, agree on every
//! block, reject bad results, survive crashes, partitions, restarts and a Byzantine validator,
//! keep encrypted inputs private, and speak JSON-RPC 2.0 to the letter. (The short fault suite
//! is `tests/chaos.rs`, a binary of its own.)

mod attested;
mod basics;
mod encryption;
mod mempool;
mod recovery;
mod registry;
mod rpc;
mod schedule;
mod segments;
mod state;
mod transport;
mod ws;

use std::time::Duration;

pub use lightchain_test_utils::{copy_dir, params_dir, repo, template_dir};

#[path = "../common/mod.rs"]
mod common;
pub use common::{config, input, package};

pub const WAIT: Duration = Duration::from_secs(60);

/// A JSON-RPC call from a blocking client, off the async workers.
pub async fn rpc(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    raw(url, body.to_string()).await.1
}

/// Posts a raw body; returns the HTTP status and the answer (null when it has no body).
pub async fn raw(url: &str, body: String) -> (u16, serde_json::Value) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let resp = reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let v = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, v)
    })
    .await
    .unwrap()
}

/// Waits (polling) until `f` holds, or panics after `WAIT`.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
