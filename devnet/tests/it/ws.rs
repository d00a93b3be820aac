//! Subscriptions over WebSocket: blocks in order, task status changes, validator events; the
//! same Host and Origin rules as the HTTP RPC; what is not a subscription is refused.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use lightchain_devnet::spawn;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::{config, input, package};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(url: &str) -> Socket {
    let (ws, _) = tungstenite::connect(url.replace("http://", "ws://") + "/ws").unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    ws
}

fn ask(ws: &mut Socket, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    ws.send(Message::Text(req.to_string().into())).unwrap();
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no answer to {method}"
        );
        if let Ok(Message::Text(t)) = ws.read() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v.get("id").is_some() {
                return v;
            }
        }
    }
}

/// Reads notifications until `f` has seen what it wants (returns true) or 60 s pass.
fn until(ws: &mut Socket, what: &str, mut f: impl FnMut(&str, &Value) -> bool) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no event: {what}"
        );
        if let Ok(Message::Text(t)) = ws.read() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let p = &v["params"];
            if f(p["subscription"].as_str().unwrap_or(""), &p["result"]) {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_push_blocks_tasks_and_validator_events() {
    let (api, handle) = spawn(config()).await;
    let url = handle.rpc_url().unwrap();
    let key = handle.dev_accounts()[2].key();
    tokio::task::block_in_place(|| {
        let mut ws = connect(&url);
        let blocks = ask(&mut ws, "lc_subscribe", json!(["newBlocks"]))["result"].clone();
        let tasks = ask(&mut ws, "lc_subscribe", json!(["tasks"]))["result"].clone();
        let vals = ask(&mut ws, "lc_subscribe", json!(["validators"]))["result"].clone();
        assert!(blocks.is_string() && tasks.is_string() && vals.is_string());
        assert_ne!(blocks, tasks);
        until(&mut ws, "the validators", |s, v| {
            s == vals
                && v.as_array()
                    .is_some_and(|a| a.len() == 4 && a[0]["state"] == "online")
        });

        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        let id = api
            .submit_task(&key, &model, input("digits", "six.json"), false, 1)
            .unwrap();
        // Every block in order, the task's submission and completion among them.
        let (mut last, mut submitted, mut completed) = (0u64, false, false);
        let mut task_done = false;
        until(&mut ws, "the task's blocks and status", |s, v| {
            if s == blocks {
                let h = v["height"].as_u64().unwrap();
                assert!(last == 0 || h == last + 1, "height {h} after {last}");
                last = h;
                submitted |= v["submitted"].as_array().unwrap().iter().any(|t| t == &id);
                completed |= v["results"].as_array().unwrap().iter().any(|t| t == &id);
            }
            if s == tasks && v["id"] == id.as_str() && v["status"] == "completed" {
                task_done = true;
            }
            submitted && completed && task_done
        });

        // A validator killed shows as such.
        api.kill(3).unwrap();
        until(&mut ws, "validator 3 killed", |s, v| {
            s == vals && v[3]["state"] == "killed"
        });
        // Unsubscribed: no more block events for it.
        assert_eq!(
            ask(&mut ws, "lc_unsubscribe", json!([blocks]))["result"],
            true
        );
        assert_eq!(
            ask(&mut ws, "lc_unsubscribe", json!([blocks]))["result"],
            false
        );

        // What is not a subscription is refused.
        let e = ask(&mut ws, "lc_subscribe", json!(["everything"]));
        assert_eq!(e["error"]["code"], -32602, "{e}");
        let e = ask(&mut ws, "lc_getTask", json!([id]));
        assert_eq!(e["error"]["code"], -32601, "{e}");

        // A browser page from elsewhere cannot open one.
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(
            url.replace("http://", "ws://") + "/ws",
        )
        .unwrap();
        req.headers_mut()
            .insert("origin", "http://evil.example".parse().unwrap());
        match tungstenite::connect(req) {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
    });
    // The HTTP methods the dashboard reads.
    let s = crate::rpc(&url, "lc_validatorStatus", json!([])).await;
    let v = s["result"].as_array().unwrap();
    assert_eq!(v.len(), 4);
    assert_eq!(v[3]["state"], "killed");
    let executed: u64 = v.iter().filter_map(|x| x["tasks_executed"].as_u64()).sum();
    // One task (a second executor's result, after a missed deadline on a slow machine).
    assert!(executed >= 1, "{s}");
    let verified: u64 = v
        .iter()
        .map(|x| x["proofs_verified"].as_u64().unwrap())
        .sum();
    assert!(verified >= 2, "{s}");
    assert!(
        v.iter()
            .all(|x| x["votes"].as_u64().unwrap() <= api.status().height)
    );
    let m = crate::rpc(&url, "lc_listModels", json!([])).await;
    assert_eq!(m["result"][0]["name"], "digits", "{m}");
    let st = crate::rpc(&url, "lc_status", json!([])).await;
    assert_eq!(st["result"]["dev_controls"], true);
}
