//! JSON-RPC: every method, and the protocol to the letter (parse errors, invalid requests,
//! batches, notifications, limits).

use lightchain_devnet::spawn;

use crate::{WAIT, config, input, package, raw, rpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_methods() {
    let (api, handle) = spawn(config()).await;
    let url = handle.rpc_url().unwrap();
    let key = handle.dev_accounts()[5].key();
    let (_, model) = api.deploy(&key, package("digits")).unwrap();

    let s = rpc(&url, "lc_status", serde_json::json!([])).await;
    assert_eq!(s["id"], 7);
    assert_eq!(s["result"]["validators"], 4);
    assert!(s["result"]["height"].as_u64().unwrap() >= 1);
    let v = rpc(&url, "lc_validators", serde_json::json!([])).await;
    assert_eq!(v["result"].as_array().unwrap().len(), 4);
    let b = rpc(
        &url,
        "lc_getBalance",
        serde_json::json!([handle.dev_accounts()[5].address.to_string()]),
    )
    .await;
    assert_eq!(b["result"]["nonce"], 1);
    assert_eq!(b["result"]["next_nonce"], 1);
    let est = rpc(
        &url,
        "lc_estimateGas",
        serde_json::json!([{"model_id": model, "inputs": input("digits", "seven.json")}, 3]),
    )
    .await;
    let gas = api.model(&model).unwrap().gas;
    assert_eq!(est["result"]["gas"], gas);
    assert_eq!(est["result"]["fee"], 3 * gas);
    let blk = rpc(&url, "lc_getBlock", serde_json::json!(["latest"])).await;
    assert_eq!(
        blk["result"]["block"]["txs"][0]["body"]["kind"]["type"],
        "deploy_model"
    );
    let m = rpc(&url, "lc_getModel", serde_json::json!([model])).await;
    assert_eq!(m["result"]["name"], "digits");
    assert!(m["result"]["package"].is_null());
    let m = rpc(
        &url,
        "lc_getModel",
        serde_json::json!([model, {"package": true}]),
    )
    .await;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(m["result"]["package"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, package("digits"));

    // Tasks through RPC, signed by the client.
    let tx = lightchain_devnet::chain::TxBody {
        from: key.public(),
        nonce: 1,
        gas_price: 1,
        kind: lightchain_devnet::chain::TxKind::SubmitTask {
            model_id: model.clone(),
            gas_limit: gas,
            input: lightchain_devnet::chain::TaskInput::Public {
                inputs: input("digits", "three.json"),
            },
        },
    }
    .sign(&key, api.chain_id());
    let sent = rpc(&url, "lc_submitTask", serde_json::json!([tx])).await;
    let id = sent["result"]["task_id"].as_str().unwrap().to_string();
    // Right after submission the task is known (in the mempool or already in a block).
    let t = rpc(&url, "lc_getTask", serde_json::json!([id])).await;
    assert!(t["error"].is_null(), "{t}");
    // A second transaction with the same nonce and price is refused, not silently dropped
    // later (a higher price would replace the first while it is pending).
    let dup = lightchain_devnet::chain::TxBody {
        from: key.public(),
        nonce: 1,
        gas_price: 1,
        kind: lightchain_devnet::chain::TxKind::SubmitTask {
            model_id: model.clone(),
            gas_limit: gas,
            input: lightchain_devnet::chain::TaskInput::Public {
                inputs: input("digits", "six.json"),
            },
        },
    }
    .sign(&key, api.chain_id());
    let refused = rpc(&url, "lc_submitTask", serde_json::json!([dup])).await;
    let msg = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("nonce 1"), "{refused}");
    let id2 = id.clone();
    let api2 = api.clone();
    tokio::task::spawn_blocking(move || api2.wait_receipt(&id2, WAIT).unwrap())
        .await
        .unwrap();
    let r = rpc(&url, "lc_getReceipt", serde_json::json!([id])).await;
    assert_eq!(r["result"]["task_id"], id);
    let t = rpc(&url, "lc_getTask", serde_json::json!([id])).await;
    assert_eq!(t["result"]["status"], "completed");

    // dev_ controls: snapshot, mine, revert.
    let snap = rpc(&url, "dev_snapshot", serde_json::json!([])).await["result"]
        .as_u64()
        .unwrap();
    let h0 = api.status().height;
    let mined = rpc(&url, "dev_mine", serde_json::json!([])).await["result"]
        .as_u64()
        .unwrap();
    assert_eq!(mined, h0 + 1);
    assert_eq!(
        rpc(&url, "dev_revert", serde_json::json!([snap])).await["result"],
        true
    );
    assert_eq!(api.status().height, h0);
    assert!(api.views().iter().all(|v| v.state.height == h0));
    // The chain goes on after a revert.
    assert_eq!(
        rpc(&url, "dev_mine", serde_json::json!([])).await["result"],
        h0 + 1
    );

    // Errors.
    let e = rpc(&url, "lc_nope", serde_json::json!([])).await;
    assert_eq!(e["error"]["code"], -32601);
    let e = rpc(&url, "lc_getTask", serde_json::json!([])).await;
    assert_eq!(e["error"]["code"], -32602);
    let e = rpc(&url, "lc_getModel", serde_json::json!(["00"])).await;
    assert_eq!(e["error"]["code"], -32001);
    let bad = lightchain_devnet::chain::TxBody {
        nonce: 99,
        ..tx.body.clone()
    }
    .sign(&handle.dev_accounts()[6].key(), api.chain_id());
    let e = rpc(&url, "lc_submitTask", serde_json::json!([bad])).await;
    assert_eq!(e["error"]["code"], -32000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_2_0_to_the_letter() {
    let mut cfg = config().with_validators(1);
    cfg.rpc_limits.body_bytes = 1 << 20;
    let (_api, handle) = spawn(cfg).await;
    let url = handle.rpc_url().unwrap();
    // Malformed JSON: a parse error, as JSON, with a null id.
    let (status, v) = raw(&url, "{\"jsonrpc\": \"2.0\", \"method\": ".into()).await;
    assert_eq!(status, 200);
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["id"], serde_json::Value::Null);
    assert_eq!(v["jsonrpc"], "2.0");
    // A batch of two requests: two answers, by id.
    let (_, v) = raw(
        &url,
        r#"[{"jsonrpc": "2.0", "id": 1, "method": "lc_status"},
            {"jsonrpc": "2.0", "id": "b", "method": "lc_nope", "params": []}]"#
            .into(),
    )
    .await;
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{v}");
    let by_id = |id: serde_json::Value| answers.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(by_id(1.into())["result"]["validators"], 1);
    assert_eq!(by_id("b".into())["error"]["code"], -32601);
    // A notification (no id) gets no answer; a batch of only notifications gets nothing.
    let (status, v) = raw(&url, r#"{"jsonrpc": "2.0", "method": "lc_status"}"#.into()).await;
    assert_eq!((status, v), (204, serde_json::Value::Null));
    let (status, _) = raw(
        &url,
        r#"[{"jsonrpc": "2.0", "method": "lc_status"}]"#.into(),
    )
    .await;
    assert_eq!(status, 204);
    // Invalid requests.
    for body in [
        r#"[]"#,
        r#"{"jsonrpc": "1.0", "id": 1, "method": "lc_status"}"#,
        r#"{"jsonrpc": "2.0", "id": 1}"#,
        r#"{"jsonrpc": "2.0", "id": [1], "method": "lc_status"}"#,
        r#"3"#,
    ] {
        let (_, v) = raw(&url, body.into()).await;
        assert_eq!(v["error"]["code"], -32600, "{body}: {v}");
    }
    let (_, v) = raw(
        &url,
        r#"[1, {"jsonrpc": "2.0", "id": 2, "method": "lc_status"}]"#.into(),
    )
    .await;
    assert_eq!(v[0]["error"]["code"], -32600);
    assert!(v[1]["result"].is_object());
    // Bad params.
    let (_, v) = raw(
        &url,
        r#"{"jsonrpc": "2.0", "id": 1, "method": "lc_getTask", "params": {"id": "x"}}"#.into(),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602);
    // Over the body limit: refused before it is read (HTTP 413).
    let big = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "lc_status", "params": ["{}"]}}"#,
        "x".repeat(2 << 20)
    );
    let (status, _) = raw(&url, big).await;
    assert_eq!(status, 413);
    // The default limit takes the largest package, base64-encoded.
    assert!(lightchain_devnet::rpc::RpcLimits::default().body_bytes > (64 * 4 / 3) << 20);
}

/// Posts `body` with extra headers (blocking, off the async workers): status, answer, and the
/// CORS header of the reply.
async fn post_with(
    url: &str,
    method: reqwest::Method,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value, Option<String>) {
    let (url, body) = (url.to_string(), body.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut req = reqwest::blocking::Client::new()
            .request(method, url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let cors = resp
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().unwrap();
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, v, cors)
    })
    .await
    .unwrap()
}

/// A node with a token: reads stay open, every write method (alone or in a batch) needs the
/// bearer token (401 without it or with another), a Host header naming another site is
/// refused (DNS rebinding), and browsers only get in from a configured origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_methods_need_the_token_and_browsers_are_kept_out() {
    let mut cfg = config().with_validators(1);
    cfg.rpc_access.token = Some("s3cret-token".into());
    cfg.rpc_access.cors_origins = vec!["https://app.example".into()];
    let (api, handle) = spawn(cfg).await;
    let url = handle.rpc_url().unwrap();
    let post = reqwest::Method::POST;
    let status = r#"{"jsonrpc": "2.0", "id": 1, "method": "lc_status"}"#;
    let mine = r#"{"jsonrpc": "2.0", "id": 2, "method": "dev_mine"}"#;
    let batch = format!("[{status}, {mine}]");
    let height = api.status().height;

    let (code, v, _) = post_with(&url, post.clone(), status, &[]).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["result"]["height"].is_u64(), "{v}");
    for (body, auth) in [
        (mine, None),
        (mine, Some("Bearer wrong")),
        (mine, Some("s3cret-token")),
        (batch.as_str(), None),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (code, v, _) = post_with(&url, post.clone(), body, &headers).await;
        assert_eq!(code, 401, "{body} {auth:?}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("token"),
            "{v}"
        );
    }
    // Nothing ran: no block was mined.
    assert_eq!(api.status().height, height);
    let bearer = [("authorization", "Bearer s3cret-token")];
    let (code, v, _) = post_with(&url, post.clone(), mine, &bearer).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["result"].as_u64().unwrap() > height, "{v}");

    // DNS rebinding: a page on evil.example whose name resolves to this node.
    let (code, _, _) =
        post_with(&url, post.clone(), status, &[("host", "evil.example:8645")]).await;
    assert_eq!(code, 403);
    // Browsers: refused from other origins, let in (with CORS) from the configured one.
    let (code, _, cors) = post_with(
        &url,
        post.clone(),
        status,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!((code, cors), (403, None));
    let (code, _, cors) = post_with(
        &url,
        post.clone(),
        status,
        &[("origin", "https://app.example")],
    )
    .await;
    assert_eq!((code, cors.as_deref()), (200, Some("https://app.example")));
    let pre = reqwest::Method::OPTIONS;
    let (code, _, cors) =
        post_with(&url, pre.clone(), "", &[("origin", "https://app.example")]).await;
    assert_eq!((code, cors.as_deref()), (204, Some("https://app.example")));
    let (code, _, cors) = post_with(&url, pre, "", &[("origin", "https://evil.example")]).await;
    assert_eq!((code, cors), (403, None));
}

/// Without a token the node refuses to serve on anything but loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_address_without_a_token_is_refused() {
    let cfg = config()
        .with_validators(1)
        .with_host("0.0.0.0".parse().unwrap());
    let e = lightchain_devnet::try_spawn(cfg)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("without a token"), "{e}");
}
