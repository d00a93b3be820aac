//! Subscriptions over WebSocket (`GET /ws`, the same Host and Origin rules as `POST /`):
//! `{"method": "lc_subscribe", "params": ["newBlocks" | "tasks" | "validators"]}` answers with
//! a subscription id, then the server pushes `{"method": "lc_subscription", "params":
//! {"subscription": ID, "result": EVENT}}`:
//! - `newBlocks`: each committed block's summary (height, hash, time, proposer, the tasks it
//!   submits and completes, its signers), in height order, none skipped;
//! - `tasks`: a task whose status a new block changed (the task record, as `lc_getTask`);
//! - `validators`: the `lc_validatorStatus` list whenever it changes.
//!
//! `lc_unsubscribe [ID]` ends one. The chain is read every [`TICK`]; a client that reads too
//! slowly is dropped rather than buffered without bound.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RpcError, Server};
use crate::api::DevnetApi;
use crate::crypto;

/// How often the chain is read for events.
pub const TICK: Duration = Duration::from_millis(50);
/// Validator status is compared this often.
const VALIDATOR_EVERY: u32 = 10;
/// Largest frame a client may send (requests are small).
const MAX_FRAME: usize = 64 << 10;
/// Subscriptions per connection.
const MAX_SUBSCRIPTIONS: usize = 16;
/// Open connections per node (more are refused with 503).
pub const MAX_CONNECTIONS: usize = 32;
/// Blocks told per tick: a client far behind catches up over several.
const BLOCKS_PER_TICK: u64 = 32;
/// How long a client has to take a message.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Topic {
    NewBlocks,
    Tasks,
    Validators,
}

impl Topic {
    fn parse(s: &str) -> Option<Topic> {
        match s {
            "newBlocks" => Some(Topic::NewBlocks),
            "tasks" => Some(Topic::Tasks),
            "validators" => Some(Topic::Validators),
            _ => None,
        }
    }
}

pub(super) async fn upgrade(
    State(s): State<Server>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(d) = s.access.check_headers(&headers) {
        return super::denied(d);
    }
    let Ok(permit) = s.ws_slots.clone().try_acquire_owned() else {
        return super::denied(super::access::Denied(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {MAX_CONNECTIONS} subscription connections"),
        ));
    };
    let api = s.api.clone();
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            serve(socket, api).await;
            drop(permit);
        })
}

/// What a connection has already told its client.
struct Seen {
    height: u64,
    validators: Value,
    ticks: u32,
}

async fn serve(mut socket: WebSocket, api: DevnetApi) {
    let mut subs: Vec<(String, Topic)> = Vec::new();
    let mut next_id = 1u64;
    let mut seen = Seen {
        height: 0,
        validators: Value::Null,
        ticks: 0,
    };
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
                    _ => return,
                };
                let before = subs.len();
                let reply = request(text.as_str(), &mut subs, &mut next_id);
                if before == 0 && !subs.is_empty() {
                    // Events from now on.
                    seen.height = api.status().height;
                }
                let send = socket.send(Message::Text(reply.to_string().into()));
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, send).await, Ok(Ok(()))) {
                    return;
                }
            }
            _ = tick.tick() => {
                if subs.is_empty() {
                    continue;
                }
                for (sub, event) in events(&api, &subs, &mut seen) {
                    let note = json!({"jsonrpc": "2.0", "method": "lc_subscription",
                        "params": {"subscription": sub, "result": event}});
                    let send = socket.send(Message::Text(note.to_string().into()));
                    // A client that does not read within a few seconds is gone.
                    match tokio::time::timeout(SEND_TIMEOUT, send).await {
                        Ok(Ok(())) => {}
                        _ => return,
                    }
                }
            }
        }
    }
}

/// Answers one request: a subscription, an unsubscription, or an error.
fn request(text: &str, subs: &mut Vec<(String, Topic)>, next_id: &mut u64) -> Value {
    let err = super::error;
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return err(
                Value::Null,
                RpcError(PARSE_ERROR, format!("parse error: {e}")),
            );
        }
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return err(
            id,
            RpcError(INVALID_REQUEST, "a request names its method".into()),
        );
    };
    let param = req
        .get("params")
        .and_then(|p| p.get(0))
        .and_then(Value::as_str);
    match method {
        "lc_subscribe" => {
            let Some(topic) = param.and_then(Topic::parse) else {
                return err(
                    id,
                    RpcError(
                        INVALID_PARAMS,
                        "subscribe to newBlocks, tasks or validators".into(),
                    ),
                );
            };
            if subs.len() >= MAX_SUBSCRIPTIONS {
                return err(
                    id,
                    RpcError(
                        INVALID_REQUEST,
                        format!("at most {MAX_SUBSCRIPTIONS} subscriptions"),
                    ),
                );
            }
            let sub = format!("0x{:x}", *next_id);
            *next_id += 1;
            subs.push((sub.clone(), topic));
            json!({"jsonrpc": "2.0", "id": id, "result": sub})
        }
        "lc_unsubscribe" => {
            let before = subs.len();
            subs.retain(|(s, _)| Some(s.as_str()) != param);
            json!({"jsonrpc": "2.0", "id": id, "result": subs.len() < before})
        }
        _ => err(
            id,
            RpcError(
                METHOD_NOT_FOUND,
                "over WebSocket: lc_subscribe and lc_unsubscribe (other methods: POST /)".into(),
            ),
        ),
    }
}

/// The events since `seen`, for each subscription that wants them.
fn events(api: &DevnetApi, subs: &[(String, Topic)], seen: &mut Seen) -> Vec<(String, Value)> {
    let wants = |t: Topic| subs.iter().filter(move |(_, s)| *s == t).map(|(id, _)| id);
    let mut out = Vec::new();
    let height = api.status().height;
    // A revert lowers the height: start again from there.
    seen.height = seen.height.min(height);
    for h in seen.height + 1..=height.min(seen.height + BLOCKS_PER_TICK) {
        // Summarised under the view's lock: a block with packages is never copied.
        let Some((summary, submitted, completed, reassigned)) = api.with_view(|v| {
            let b = v.blocks.get(h as usize - 1)?;
            let submitted = b.block.submitted_tasks();
            let completed: Vec<String> =
                b.block.results.iter().map(|r| r.task_id.clone()).collect();
            let summary = json!({
                "height": h,
                "hash": crypto::hex(&b.hash),
                "timestamp_ms": b.block.timestamp_ms,
                "proposer": b.block.proposer,
                "txs": b.block.txs.len(),
                "submitted": submitted,
                "results": completed,
                "reassigned": b.block.reassign,
                "signers": b.signers,
            });
            Some((summary, submitted, completed, b.block.reassign.clone()))
        }) else {
            break;
        };
        for id in wants(Topic::NewBlocks) {
            out.push((id.clone(), summary.clone()));
        }
        let touched = submitted.iter().chain(&completed).chain(&reassigned);
        for task in touched.filter_map(|t| api.task(t)) {
            let v = serde_json::to_value(&task).unwrap_or(Value::Null);
            for id in wants(Topic::Tasks) {
                out.push((id.clone(), v.clone()));
            }
        }
        seen.height = h;
    }
    seen.ticks += 1;
    if seen.ticks.is_multiple_of(VALIDATOR_EVERY) && wants(Topic::Validators).next().is_some() {
        let v = serde_json::to_value(api.validator_status()).unwrap_or(Value::Null);
        if v != seen.validators {
            for id in wants(Topic::Validators) {
                out.push((id.clone(), v.clone()));
            }
            seen.validators = v;
        }
    }
    out
}
