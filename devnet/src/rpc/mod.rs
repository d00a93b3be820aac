//! JSON-RPC 2.0 over HTTP (axum): `POST /` with a request object or a batch (an array of
//! them). Malformed JSON is answered with error -32700, an invalid request with -32600, an
//! unknown method with -32601, bad parameters with -32602; a request without an `id` is a
//! notification and gets no answer. The body may be as large as the largest package, base64
//! encoded; a request runs at most [`RpcLimits::timeout`], and at most
//! [`RpcLimits::concurrency`] run at once. Who may call what, and from where (token, Host
//! header, CORS): [`access`].
//!
//! Methods: `lc_sendTransaction`, `lc_deployModel`, `lc_submitTask`, `lc_getTask`,
//! `lc_getSchedule`, `lc_getState`, `lc_getReceipt`, `lc_getBlock`, `lc_getModel`, `lc_listModels`, `lc_estimateGas`,
//! `lc_status`, `lc_validators`, `lc_validatorStatus`, `lc_getBalance`, subscriptions over
//! WebSocket ([`ws`]), and the devnet controls `dev_mine`, `dev_snapshot`,
//! `dev_revert`, `dev_increaseTime`, `dev_setBehavior`, `dev_kill`, `dev_revive`,
//! `dev_partition`, `dev_heal`, `dev_delay`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{options, post};
use axum::serve::ListenerExt;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

pub mod access;
pub mod types;
pub mod ws;

pub use access::RpcAccess;

use types::{Balance, Deployed, EstimateRequest, ModelOptions, ModelReply, Submitted, TaskReply};

use crate::api::DevnetApi;
use crate::chain::{Address, SignedTx, TxKind};
use crate::error::DevnetError;
use crate::validator::Behavior;

/// JSON-RPC error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const REFUSED: i64 = -32000;
pub const NOT_FOUND: i64 = -32001;
pub const TIMED_OUT: i64 = -32002;
pub const BUSY: i64 = -32005;

/// Limits of the RPC server.
#[derive(Clone, Debug)]
pub struct RpcLimits {
    /// Largest request body: a 64 MiB package, base64 (4/3) and JSON around it.
    pub body_bytes: usize,
    /// Longest a request may run.
    pub timeout: Duration,
    /// Requests running at once; more are refused with [`BUSY`].
    pub concurrency: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            body_bytes: 96 << 20,
            timeout: Duration::from_secs(120),
            concurrency: 64,
        }
    }
}

#[derive(Clone)]
struct Server {
    api: DevnetApi,
    limits: RpcLimits,
    access: RpcAccess,
    slots: Arc<Semaphore>,
    /// Open WebSocket connections.
    ws_slots: Arc<Semaphore>,
}

/// The router (for tests that serve it themselves).
pub fn router(api: DevnetApi) -> Router {
    let limits = api.config().rpc_limits.clone();
    let access = api.config().rpc_access.clone();
    let slots = Arc::new(Semaphore::new(limits.concurrency));
    Router::new()
        .route("/", post(handle))
        .route("/", options(preflight))
        .route("/ws", axum::routing::get(ws::upgrade))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .with_state(Server {
            api,
            limits,
            access,
            slots,
            ws_slots: Arc::new(Semaphore::new(ws::MAX_CONNECTIONS)),
        })
}

/// Serves the RPC on `host:port` (port 0: any free one); returns the address and the sender
/// that stops the server.
pub async fn serve(
    api: DevnetApi,
    host: IpAddr,
    port: u16,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>), DevnetError> {
    access::check_bind(host, &api.config().rpc_access)?;
    serve_app(SocketAddr::new(host, port), router(api)).await
}

/// Binds `addr` (port 0: any free one) and serves `app` there, with TCP_NODELAY (small
/// answers are not held for a delayed ACK), until the returned sender fires or is dropped.
pub(crate) async fn serve_app(
    addr: SocketAddr,
    app: Router,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>), DevnetError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevnetError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| DevnetError::Bind { addr, source })?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((local, tx))
}

/// A JSON-RPC error.
pub struct RpcError(pub i64, pub String);

impl From<DevnetError> for RpcError {
    fn from(e: DevnetError) -> Self {
        match e {
            DevnetError::NotFound(_) => RpcError(NOT_FOUND, e.to_string()),
            DevnetError::Timeout(_) => RpcError(TIMED_OUT, e.to_string()),
            _ => RpcError(REFUSED, e.to_string()),
        }
    }
}

fn error(id: Value, RpcError(code, message): RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn json_response(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(v).unwrap_or_default(),
    )
        .into_response()
}

/// A CORS preflight: answered for configured origins only.
async fn preflight(State(s): State<Server>, headers: HeaderMap) -> Response {
    match headers
        .get(header::ORIGIN)
        .and_then(|o| s.access.cors_origin(o))
    {
        Some(origin) => (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    header::HeaderValue::from_static("POST"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    header::HeaderValue::from_static("content-type, authorization"),
                ),
            ],
        )
            .into_response(),
        None => denied(access::Denied(
            StatusCode::FORBIDDEN,
            "cross-origin requests are not allowed; allow the origin with --rpc-cors".into(),
        )),
    }
}

/// A refusal before anything runs: the HTTP status with a JSON-RPC error body.
fn denied(access::Denied(status, message): access::Denied) -> Response {
    let body = error(Value::Null, RpcError(REFUSED, message));
    let mut r = (status, json_response(&body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

async fn handle(State(s): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(d) = s.access.check_headers(&headers) {
        return denied(d);
    }
    let mut r = answer(&s, &headers, &body).await;
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|o| s.access.cors_origin(o))
    {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    r
}

async fn answer(s: &Server, headers: &HeaderMap, body: &Bytes) -> Response {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return json_response(&error(
                Value::Null,
                RpcError(PARSE_ERROR, format!("parse error: {e}")),
            ));
        }
    };
    if let Err(d) = s.access.check_token(headers, &req) {
        return denied(d);
    }
    let answer = match req {
        Value::Array(items) if items.is_empty() => Some(error(
            Value::Null,
            RpcError(INVALID_REQUEST, "an empty batch".into()),
        )),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(a) = one(s, item).await {
                    out.push(a);
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => one(s, other).await,
    };
    match answer {
        Some(v) => json_response(&v),
        // Only notifications: nothing to answer.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Runs one request object; `None` for a notification.
async fn one(s: &Server, req: Value) -> Option<Value> {
    let Value::Object(obj) = &req else {
        return Some(error(
            Value::Null,
            RpcError(INVALID_REQUEST, "a request is a JSON object".into()),
        ));
    };
    let id = obj.get("id").cloned();
    let answer_id = id.clone().unwrap_or(Value::Null);
    if !matches!(
        id,
        None | Some(Value::Null | Value::String(_) | Value::Number(_))
    ) {
        return Some(error(
            Value::Null,
            RpcError(
                INVALID_REQUEST,
                "id must be a string, a number or null".into(),
            ),
        ));
    }
    let method = match (obj.get("jsonrpc"), obj.get("method")) {
        (Some(Value::String(v)), Some(Value::String(m))) if v == "2.0" => m.clone(),
        _ => {
            return Some(error(
                answer_id,
                RpcError(
                    INVALID_REQUEST,
                    "expected {\"jsonrpc\": \"2.0\", \"method\": ..., \"params\": [...], \"id\": ...}"
                        .into(),
                ),
            ));
        }
    };
    let params = match obj.get("params") {
        None => json!([]),
        Some(p @ Value::Array(_)) => p.clone(),
        Some(_) => {
            return Some(error(
                answer_id,
                RpcError(INVALID_PARAMS, "params must be an array".into()),
            ));
        }
    };
    let result = match s.slots.clone().try_acquire_owned() {
        Err(_) => Err(RpcError(
            BUSY,
            format!(
                "{} requests are in progress, the most this node runs at once; retry",
                s.limits.concurrency
            ),
        )),
        Ok(permit) => {
            let api = s.api.clone();
            // Calls may wait (dev_mine) or verify proofs: keep them off the async workers.
            let task = tokio::task::spawn_blocking(move || {
                let r = dispatch(&api, &method, &params);
                drop(permit);
                r
            });
            match tokio::time::timeout(s.limits.timeout, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(RpcError(INTERNAL_ERROR, "internal error".into())),
                Err(_) => Err(RpcError(
                    TIMED_OUT,
                    format!(
                        "the request did not finish within {} s",
                        s.limits.timeout.as_secs()
                    ),
                )),
            }
        }
    };
    id.as_ref()?;
    Some(match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": answer_id, "result": v}),
        Err(e) => error(answer_id, e),
    })
}

fn param<T: serde::de::DeserializeOwned>(
    params: &Value,
    i: usize,
    what: &str,
) -> Result<T, RpcError> {
    let v = params
        .get(i)
        .cloned()
        .ok_or_else(|| RpcError(INVALID_PARAMS, format!("missing parameter {i} ({what})")))?;
    serde_json::from_value(v)
        .map_err(|e| RpcError(INVALID_PARAMS, format!("parameter {i} ({what}): {e}")))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError(INTERNAL_ERROR, e.to_string()))
}

fn dispatch(api: &DevnetApi, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "lc_sendTransaction" => {
            let tx: SignedTx = param(params, 0, "signed transaction")?;
            Ok(json!(api.send_transaction(tx)?))
        }
        "lc_deployModel" => {
            let tx: SignedTx = param(params, 0, "signed DeployModel transaction")?;
            if !matches!(tx.body.kind, TxKind::DeployModel { .. }) {
                return Err(RpcError(
                    INVALID_PARAMS,
                    "expected a DeployModel transaction".into(),
                ));
            }
            let (tx_hash, model_id) = api.send_deployment(tx)?;
            to_value(Deployed { tx_hash, model_id })
        }
        "lc_submitTask" => {
            let tx: SignedTx = param(params, 0, "signed SubmitTask transaction")?;
            if !matches!(tx.body.kind, TxKind::SubmitTask { .. }) {
                return Err(RpcError(
                    INVALID_PARAMS,
                    "expected a SubmitTask transaction".into(),
                ));
            }
            let task_id = api.send_transaction(tx)?;
            to_value(Submitted { task_id })
        }
        "lc_getTask" => {
            let id: String = param(params, 0, "task id")?;
            match api.task(&id) {
                Some(task) => to_value(TaskReply::Known {
                    receipt: api.receipt(&id).map(Box::new),
                    task: Box::new(task),
                }),
                // Sent but not yet in a block: a status, not an error, so clients can wait.
                None if api.task_in_mempool(&id) => to_value(TaskReply::InMempool {
                    id,
                    status: types::MempoolStatus::Submitted,
                }),
                None => Err(RpcError(NOT_FOUND, format!("task {id} not found"))),
            }
        }
        "lc_getSchedule" => {
            let id: String = param(params, 0, "schedule id")?;
            match api.schedule(&id) {
                Some(sched) => to_value(sched),
                None => Err(RpcError(NOT_FOUND, format!("schedule {id} not found"))),
            }
        }
        "lc_getState" => state(api, params),
        "lc_getReceipt" => {
            let id: String = param(params, 0, "task id")?;
            to_value(api.receipt(&id))
        }
        "lc_getBlock" => {
            let h = match params.get(0) {
                None | Some(Value::Null) => api.status().height,
                Some(Value::String(s)) if s == "latest" => api.status().height,
                Some(v) => v.as_u64().ok_or_else(|| {
                    RpcError(INVALID_PARAMS, "a block height or \"latest\"".into())
                })?,
            };
            to_value(api.block(h))
        }
        "lc_getModel" => {
            let id: String = param(params, 0, "model id")?;
            let options: ModelOptions = match params.get(1) {
                None | Some(Value::Null) => ModelOptions::default(),
                Some(_) => param(params, 1, "{package: bool}")?,
            };
            let model = api
                .model(&id)
                .ok_or_else(|| RpcError(NOT_FOUND, format!("model {id} is not deployed")))?;
            let package = match options.package {
                true => api
                    .package_bytes(&model.model_id)
                    .map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
                false => None,
            };
            to_value(ModelReply { model, package })
        }
        "lc_estimateGas" => {
            let req: EstimateRequest = param(params, 0, "{model_id, inputs}")?;
            let price = params.get(1).and_then(|v| v.as_u64()).unwrap_or(1);
            to_value(api.estimate(&req.model_id, &req.inputs, price)?)
        }
        "lc_status" => to_value(api.status()),
        "lc_validators" => to_value(api.validators()),
        "lc_validatorStatus" => to_value(api.validator_status()),
        "lc_listModels" => to_value(api.models()),
        "lc_getBalance" => {
            let a: Address = param(params, 0, "address")?;
            to_value(Balance {
                account: api.balance(&a),
                next_nonce: api.next_nonce(&a),
            })
        }
        "dev_mine" => Ok(json!(api.mine()?)),
        "dev_snapshot" => Ok(json!(api.snapshot())),
        "dev_revert" => {
            let id: u64 = param(params, 0, "snapshot id")?;
            Ok(json!(api.revert(id)))
        }
        "dev_increaseTime" => {
            let s: u64 = param(params, 0, "seconds")?;
            Ok(json!(api.increase_time(s)))
        }
        "dev_setBehavior" => {
            let v: usize = param(params, 0, "validator index")?;
            let b: Behavior = param(
                params,
                1,
                "honest | wrong_output | corrupt_proof | silent | equivocating_proposer | double_vote | invalid_block | withhold_votes",
            )?;
            api.set_behavior(v, b)?;
            Ok(json!(true))
        }
        "dev_kill" => {
            let v: usize = param(params, 0, "validator index")?;
            api.kill(v)?;
            Ok(json!(true))
        }
        "dev_revive" => {
            let v: usize = param(params, 0, "validator index")?;
            api.revive(v)?;
            Ok(json!(true))
        }
        "dev_partition" => {
            let groups: Vec<Vec<usize>> = param(params, 0, "groups of validator indices")?;
            api.partition(groups)?;
            Ok(json!(true))
        }
        "dev_heal" => {
            api.heal();
            Ok(json!(true))
        }
        "dev_delay" => {
            let ms: u64 = param(params, 0, "milliseconds")?;
            api.delay(Duration::from_millis(ms));
            Ok(json!(true))
        }
        other => Err(RpcError(
            METHOD_NOT_FOUND,
            format!("unknown method {other}"),
        )),
    }
}

/// `lc_getState [model_id, address]`.
fn state(api: &DevnetApi, params: &Value) -> Result<Value, RpcError> {
    let model: String = param(params, 0, "model id")?;
    let a: Address = param(params, 1, "address")?;
    to_value(api.model_state(&model, &a)?)
}
