//! JSON-RPC 2.0 over HTTP (axum): `POST /` with `{"jsonrpc": "2.0", "id": …, "method": …,
//! "params": [...]}`. Methods: `lc_sendTransaction`, `lc_deployModel`, `lc_submitTask`,
//! `lc_getTask`, `lc_getReceipt`, `lc_getBlock`, `lc_getModel`, `lc_estimateGas`, `lc_status`,
//! `lc_validators`, `lc_getBalance`, and the devnet controls `dev_mine`, `dev_snapshot`,
//! `dev_revert`, `dev_setBehavior`, `dev_kill`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::chain::{Address, SignedTx, TxKind};
use crate::validator::Behavior;
use crate::{DevnetApi, DevnetError};

/// JSON-RPC error codes.
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const REFUSED: i64 = -32000;
const NOT_FOUND: i64 = -32001;

pub fn router(api: DevnetApi) -> Router {
    Router::new().route("/", post(handle)).with_state(api)
}

struct RpcError(i64, String);

impl From<DevnetError> for RpcError {
    fn from(e: DevnetError) -> Self {
        match e {
            DevnetError::NotFound(_) => RpcError(NOT_FOUND, e.to_string()),
            _ => RpcError(REFUSED, e.to_string()),
        }
    }
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

async fn handle(State(api): State<DevnetApi>, Json(req): Json<Value>) -> Json<Value> {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req
        .get("method")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let params = req.get("params").cloned().unwrap_or(json!([]));
    let result = match (req.get("jsonrpc").and_then(|v| v.as_str()), method) {
        (Some("2.0"), Some(m)) => {
            let api = api.clone();
            // Calls may wait (dev_mine) or verify proofs: keep them off the async workers.
            tokio::task::spawn_blocking(move || dispatch(&api, &m, &params))
                .await
                .unwrap_or_else(|_| Err(RpcError(REFUSED, "internal error".into())))
        }
        _ => Err(RpcError(
            INVALID_REQUEST,
            "expected a JSON-RPC 2.0 request".into(),
        )),
    };
    Json(match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(RpcError(code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    })
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError(REFUSED, e.to_string()))
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
            let (hash, model_id) = api.send_deployment(tx)?;
            Ok(json!({"tx_hash": hash, "model_id": model_id}))
        }
        "lc_submitTask" => {
            let tx: SignedTx = param(params, 0, "signed SubmitTask transaction")?;
            if !matches!(tx.body.kind, TxKind::SubmitTask { .. }) {
                return Err(RpcError(
                    INVALID_PARAMS,
                    "expected a SubmitTask transaction".into(),
                ));
            }
            let hash = api.send_transaction(tx)?;
            Ok(json!({"task_id": hash}))
        }
        "lc_getTask" => {
            let id: String = param(params, 0, "task id")?;
            match api.task(&id) {
                Some(t) => {
                    let mut v = to_value(&t)?;
                    v["receipt"] = to_value(api.receipt(&id))?;
                    Ok(v)
                }
                // Sent but not yet in a block: a status, not an error, so clients can wait.
                None if api.task_in_mempool(&id) => Ok(json!({"id": id, "status": "submitted"})),
                None => Err(RpcError(NOT_FOUND, format!("task {id} not found"))),
            }
        }
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
            let with_package = params
                .get(1)
                .and_then(|v| v.get("package"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let m = api
                .model(&id)
                .ok_or_else(|| RpcError(NOT_FOUND, format!("model {id} is not deployed")))?;
            let mut v = to_value(&m)?;
            if with_package {
                let pkg = api.package_bytes(&id);
                v["package"] =
                    json!(pkg.map(|p| base64::engine::general_purpose::STANDARD.encode(p)));
            }
            Ok(v)
        }
        "lc_estimateGas" => {
            let req: Value = param(params, 0, "{model_id, inputs}")?;
            let model_id = req
                .get("model_id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| RpcError(INVALID_PARAMS, "model_id is required".into()))?;
            let inputs = req.get("inputs").cloned().ok_or_else(|| {
                RpcError(
                    INVALID_PARAMS,
                    "inputs is required (an input file's JSON)".into(),
                )
            })?;
            let price = params.get(1).and_then(|v| v.as_u64()).unwrap_or(1);
            to_value(api.estimate(model_id, &inputs, price)?)
        }
        "lc_status" => to_value(api.status()),
        "lc_validators" => to_value(api.validators()),
        "lc_getBalance" => {
            let a: Address = param(params, 0, "address")?;
            let mut v = to_value(api.balance(&a))?;
            // The nonce to sign the account's next transaction with (past its pending ones).
            v["next_nonce"] = json!(api.next_nonce(&a));
            Ok(v)
        }
        "dev_mine" => Ok(json!(api.mine()?)),
        "dev_snapshot" => Ok(json!(api.snapshot())),
        "dev_revert" => {
            let id: u64 = param(params, 0, "snapshot id")?;
            Ok(json!(api.revert(id)))
        }
        "dev_setBehavior" => {
            let v: usize = param(params, 0, "validator index")?;
            let b: Behavior = param(params, 1, "honest | wrong_output | corrupt_proof | silent")?;
            api.set_behavior(v, b)?;
            Ok(json!(true))
        }
        "dev_kill" => {
            let v: usize = param(params, 0, "validator index")?;
            api.kill(v)?;
            Ok(json!(true))
        }
        other => Err(RpcError(
            METHOD_NOT_FOUND,
            format!("unknown method {other}"),
        )),
    }
}
