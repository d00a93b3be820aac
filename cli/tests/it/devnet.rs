//! `lightchain devnet`, `deploy`, `task` and `verify` together, as separate processes talking
//! JSON-RPC, the way a developer uses them.

use std::time::{Duration, Instant};

use lightchain_test_utils::DevnetProcess;

use crate::{Project, params};

#[test]
fn devnet_deploy_task_and_offline_verification() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "proj", "--template", "digits"]).0, 0);
    let (code, _, err) = run(&["package", "proj", "-o", "digits.lcpkg"]);
    assert_eq!(code, 0, "{err}");

    let node = start_devnet(&p, &[]);
    let (url, cfg) = (node.url(), &node.config);
    assert_eq!(cfg["validators"].as_array().unwrap().len(), 4);
    let key = cfg["accounts"][1]["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (model, t) = deploy_and_submit(
        &p,
        "digits.lcpkg",
        "proj/tests/six.json",
        "six.bin",
        &url,
        &key,
    );
    assert_eq!(predicted(&t), 6);

    // The receipt's proof verifies offline with the package alone.
    let (code, out, err) = run(&["verify", "digits.lcpkg", "--proof", "six.bin"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid proof"), "{out}");

    // So does the receipt as any node serves it (`task get --json`), bound to its task:
    // a receipt that names another task, other outputs or another model is refused.
    let (code, out, err) = run(&[
        "task",
        "get",
        t["task"]["id"].as_str().unwrap(),
        "--rpc",
        &url,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(p.dir.path().join("task.json"), &out).unwrap();
    let (code, out, err) = run(&["verify", "digits.lcpkg", "--receipt", "task.json", "--json"]);
    assert_eq!(code, 0, "{err}{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["receipt"]["task_id"], t["task"]["id"], "{out}");
    let task: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.dir.path().join("task.json")).unwrap())
            .unwrap();
    let receipt = task["task"]["receipt"].clone();
    let forged = |f: &dyn Fn(&mut serde_json::Value), what: &str| {
        let mut r = receipt.clone();
        f(&mut r);
        std::fs::write(p.dir.path().join("forged.json"), r.to_string()).unwrap();
        let (code, _, err) = run(&["verify", "digits.lcpkg", "--receipt", "forged.json"]);
        assert_eq!(code, 1, "{what}");
        assert!(err.contains(what), "{what}: {err}");
    };
    forged(&|r| r["task_id"] = "00".repeat(32).into(), "bound to task");
    forged(
        &|r| r["model_id"] = "11".repeat(32).into(),
        "deploys as model",
    );
    forged(
        &|r| r["outputs"][0][0] = 12345.into(),
        "outputs are not the proof's",
    );
    forged(&|r| r["outputs_float"][0][0] = 99.5.into(), "float outputs");
    forged(
        &|r| r["public_inputs"]["nonce"] = "x".into(),
        "public inputs",
    );
    forged(
        &|r| {
            // A byte of the proof flipped (base64 re-encoded).
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut bytes = b64.decode(r["proof"].as_str().unwrap()).unwrap();
            let n = bytes.len();
            bytes[n - 40] ^= 1;
            r["proof"] = b64.encode(bytes).into();
        },
        "invalid",
    );

    // An uploaded package is checked in a child process before it reaches the validators:
    // garbage is refused with the loader's error, and the node keeps serving.
    let poor_key = lightchain_devnet::crypto::AccountKey::from_secret([7; 32]);
    let tx = lightchain_devnet::chain::TxBody {
        from: poor_key.public(),
        nonce: 0,
        gas_price: 1,
        kind: lightchain_devnet::chain::TxKind::DeployModel {
            package: b"LCPKG\0\r\nnot really a package".to_vec(),
        },
    }
    .sign(&poor_key, "lightchain-devnet");
    let resp: serde_json::Value = reqwest::blocking::Client::new()
        .post(&url)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "lc_sendTransaction", "params": [tx]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let msg = resp["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("invalid package"), "{resp}");
    let status: serde_json::Value = reqwest::blocking::Client::new()
        .post(&url)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "lc_status", "params": []}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(status["result"]["online"], 4);

    // A task that cannot pay is refused at submission, with a clear error.
    let poor = "11".repeat(32);
    let (code, _, err) = run(&[
        "task",
        "submit",
        &model,
        "-i",
        "proj/tests/six.json",
        "--rpc",
        &url,
        "--key",
        &poor,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("insufficient balance"), "{err}");
    // So is a gas limit below the quote.
    let (code, _, err) = run(&[
        "task",
        "submit",
        &model,
        "-i",
        "proj/tests/six.json",
        "--rpc",
        &url,
        "--key",
        &key,
        "--gas-limit",
        "10",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("below the task's quote"), "{err}");
}

/// Starts `lightchain devnet` with `args` in `p`; it is serving when this returns.
/// The transformer template end to end: packaged (its test vectors proven), deployed, and run
/// as a proven task on a 4-validator devnet, whose receipt's proof verifies offline.
#[test]
fn transformer_template_runs_as_a_proven_task() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "vit", "--template", "transformer"]).0, 0);
    let (code, out, err) = run(&["package", "vit", "-o", "vit.lcpkg", "--json"]);
    assert_eq!(code, 0, "{err}");
    let pkg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pkg["test_vectors"], 2, "{pkg}");

    let node = start_devnet(&p, &[]);
    let key = node.config["accounts"][1]["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, t) = deploy_and_submit(
        &p,
        "vit.lcpkg",
        "vit/tests/three.json",
        "three.bin",
        &node.url(),
        &key,
    );
    assert_eq!(predicted(&t), 3, "{t}");
    // Within the template's 512 MB the executor proved it in segments (2^15 rows in one
    // circuit), and the receipt's proof verifies offline, every segment and link.
    let (code, out, err) = run(&["verify", "vit.lcpkg", "--proof", "three.bin", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true, "{out}");
    assert!(v["segments"].as_u64().unwrap() > 1, "{out}");
    assert!(v["k"].as_u64().unwrap() <= 13, "{out}");
}

/// The pipeline template end to end: `init`, `package`, `test`, `inspect` (its stages), then one
/// proven task on a 4-validator devnet; the receipt shows the last stage's output only (the
/// embedding between the stages is private) and its proof verifies offline.
#[test]
fn pipeline_template_runs_as_one_proven_task() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "fp", "--template", "pipeline"]).0, 0);
    let (code, out, err) = run(&["package", "fp", "-o", "fp.lcpkg", "--json"]);
    assert_eq!(code, 0, "{err}");
    let pkg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pkg["test_vectors"], 3, "{pkg}");
    let (code, out, err) = run(&["test", "fp"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&["inspect", "fp.lcpkg"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stages   embed (embed.onnx)\n"), "{out}");
    assert!(
        out.contains("classify (classify.onnx): x <- embed.embedding"),
        "{out}"
    );

    let node = start_devnet(&p, &[]);
    let key = node.config["accounts"][1]["private_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, t) = deploy_and_submit(
        &p,
        "fp.lcpkg",
        "fp/tests/fraud.json",
        "fraud.bin",
        &node.url(),
        &key,
    );
    assert_eq!(predicted(&t), 1, "{t}");
    let outs = t["task"]["receipt"]["outputs_float"].as_array().unwrap();
    assert_eq!(outs.len(), 1, "only the last stage's output: {t}");
    assert_eq!(outs[0].as_array().unwrap().len(), 2, "{t}");
    let (code, out, err) = run(&["verify", "fp.lcpkg", "--proof", "fraud.bin", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true, "{out}");
    drop(node);

    // The short version of `lightchain bench --pipeline`: one proof against one per stage,
    // and the pipeline's latency on a devnet of its own.
    let (code, out, err) = run(&[
        "bench",
        "--pipeline",
        "fp",
        "--devnet",
        "2",
        "--no-write",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stages: Vec<&str> = r["per_stage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["stage embed alone", "stage classify alone"], "{r}");
    assert!(r["one_proof"]["proof_bytes"].as_u64().unwrap() > 0, "{r}");
    assert!(r["devnet_median_ms"].as_f64().unwrap() > 0.0, "{r}");
    // A project without stages is not a pipeline.
    assert_eq!(run(&["init", "d", "--template", "digits"]).0, 0);
    let (code, _, err) = run(&["bench", "--pipeline", "d", "--no-write"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a pipeline project"), "{err}");
}

/// Runs the CLI in the project with the shared proving parameters: (exit code, stdout, stderr).
pub fn run_in(p: &Project, args: &[&str]) -> (i32, String, String) {
    let out = p.cmd(args).envs([params()]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Deploys a package, submits one task on `input` and waits for it, writing its proof to
/// `proof_out`; returns the model id and the completed task.
fn deploy_and_submit(
    p: &Project,
    package: &str,
    input: &str,
    proof_out: &str,
    url: &str,
    key: &str,
) -> (String, serde_json::Value) {
    let (code, out, err) = run_in(
        p,
        &["deploy", package, "--rpc", url, "--key", key, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let model = d["model_id"].as_str().unwrap().to_string();
    let (code, out, err) = run_in(
        p,
        &[
            "task",
            "submit",
            &model,
            "-i",
            input,
            "--rpc",
            url,
            "--key",
            key,
            "--wait",
            "--proof-out",
            proof_out,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}{out}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["task"]["status"], "completed", "{t}");
    (model, t)
}

/// The index of the largest value of a task receipt's first float output.
fn predicted(t: &serde_json::Value) -> usize {
    let outs: Vec<f64> = t["task"]["receipt"]["outputs_float"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    (0..outs.len())
        .max_by(|&a, &b| outs[a].total_cmp(&outs[b]))
        .unwrap()
}

pub fn start_devnet(p: &Project, args: &[&str]) -> DevnetProcess {
    DevnetProcess::spawn(
        &assert_cmd::cargo::cargo_bin("lightchain"),
        p.dir.path(),
        args,
    )
}

pub fn call(
    url: &str,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let r: serde_json::Value = reqwest::blocking::Client::new()
        .post(url)
        .timeout(Duration::from_secs(30))
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .map_err(|e| e.to_string())?
        .json()
        .map_err(|e| e.to_string())?;
    match r.get("error") {
        Some(e) => Err(e.to_string()),
        None => Ok(r["result"].clone()),
    }
}

#[test]
fn a_devnet_killed_under_load_restarts_without_losing_anything() {
    use lightchain_devnet::chain::{TaskInput, TxBody, TxKind};
    let p = Project::new();
    p.copy("templates/digits/tests/six.json", "six.json");
    crate::testnet::digits_package(&p);
    let state = p.dir.path().join("state");
    let state_arg = state.display().to_string();
    let mut node = start_devnet(&p, &["--state", &state_arg]);
    let url = node.url();
    let out = p
        .cmd(&["deploy", "digits.lcpkg", "--rpc", &url, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = model["model_id"].as_str().unwrap().to_string();
    let m = call(&url, "lc_getModel", serde_json::json!([model])).unwrap();
    let key = lightchain_devnet::crypto::AccountKey::from_secret(
        lightchain_devnet::crypto::dev_secret("account", 2),
    );
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.dir.path().join("six.json")).unwrap())
            .unwrap();
    let task = |nonce: u64| {
        TxBody {
            from: key.public(),
            nonce,
            gas_price: 1,
            kind: TxKind::SubmitTask {
                model_id: model.clone(),
                gas_limit: m["gas"].as_u64().unwrap(),
                input: TaskInput::Public {
                    inputs: input.clone(),
                },
            },
        }
        .sign(&key, "lightchain-devnet")
    };
    // Tasks as fast as the node takes them; SIGKILL once some are done and some are not.
    let mut acknowledged = Vec::new();
    let mut nonce = 0;
    let mut blocks = Vec::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = call(&url, "lc_submitTask", serde_json::json!([task(nonce)])) {
            acknowledged.push(r["task_id"].as_str().unwrap().to_string());
            nonce += 1;
        }
        let done = acknowledged
            .iter()
            .filter(|id| {
                call(&url, "lc_getReceipt", serde_json::json!([id])).is_ok_and(|r| !r.is_null())
            })
            .count();
        if done >= 3 && acknowledged.len() >= done + 2 {
            // The committed chain as the node reports it, just before it dies.
            let h = call(&url, "lc_status", serde_json::json!([])).unwrap()["height"]
                .as_u64()
                .unwrap();
            for height in 1..=h {
                let b = call(&url, "lc_getBlock", serde_json::json!([height])).unwrap();
                blocks.push(b["hash"].as_str().unwrap().to_string());
            }
            node.child.kill().unwrap(); // SIGKILL
            node.child.wait().unwrap();
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "too slow");
    }
    // Back from the same state: every block it had, every task it acknowledged.
    let node = start_devnet(&p, &["--state", &state_arg]);
    let url = node.url();
    for (i, hash) in blocks.iter().enumerate() {
        let b = call(&url, "lc_getBlock", serde_json::json!([i + 1])).unwrap();
        assert_eq!(b["hash"].as_str().unwrap(), hash, "block {} changed", i + 1);
    }
    let start = Instant::now();
    for id in &acknowledged {
        loop {
            let t = call(&url, "lc_getTask", serde_json::json!([id]))
                .unwrap_or_else(|e| panic!("acknowledged task {id} lost: {e}"));
            if t["status"] == "completed" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "task {id} never completed: {t}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The short version of `lightchain bench --devnet`: latency one task at a time, then tasks per
/// second with as many submitted at once, every one proven and verified by the validators.
#[test]
fn bench_devnet_reports_latency_and_saturation_throughput() {
    let p = Project::new();
    let model = lightchain_test_utils::repo().join("fixtures/ezkl/1l_mlp");
    let model = model.to_str().unwrap();
    let (code, out, err) = run_in(
        &p,
        &[
            "bench",
            "--devnet",
            "3",
            "--devnet-model",
            model,
            "--no-write",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["tasks"], 3);
    assert_eq!(r["latency_ms"].as_array().unwrap().len(), 3);
    let (median, p99) = (
        r["median_ms"].as_f64().unwrap(),
        r["p99_ms"].as_f64().unwrap(),
    );
    assert!(median > 0.0 && p99 >= median, "{r}");
    assert!(
        r["tasks_per_second_at_saturation"].as_f64().unwrap() > 0.0,
        "{r}"
    );
}

/// RPC security from the command line: a node on a public address needs a token; with one,
/// deploys need it (401 without or with another, said clearly) while reads stay open; a node
/// that is down is a clear error and a non-zero exit.
#[test]
fn the_rpc_token_guards_writes_from_the_command_line() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    let (code, _, err) = run(&["devnet", "--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("without a token"), "{err}");

    assert_eq!(run(&["init", "proj", "--template", "digits"]).0, 0);
    let (code, _, err) = run(&["package", "proj", "-o", "digits.lcpkg"]);
    assert_eq!(code, 0, "{err}");
    let node = start_devnet(&p, &["--rpc-token", "s3cret-token", "--validators", "1"]);
    let url = node.url();
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "digits.lcpkg", "--rpc", &url];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, _, err) = deploy(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("HTTP 401") && err.contains("needs a token"),
        "{err}"
    );
    let (code, _, err) = deploy(&["--token", "wrong"]);
    assert_eq!(code, 1);
    assert!(err.contains("refused the token"), "{err}");
    // With the token (here from the environment) it deploys.
    let mut args = vec!["deploy", "digits.lcpkg", "--rpc", &url, "--json"];
    args.push("--no-wait");
    let out = p
        .cmd(&args)
        .envs([params()])
        .env("LIGHTCHAIN_RPC_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = d["model_id"].as_str().unwrap().to_string();
    // A profile holds the node, its token and a stored key: the task is signed by that key.
    let dev3 = lightchain_devnet::crypto::AccountKey::from_secret(
        lightchain_devnet::crypto::dev_secret("account", 3),
    );
    p.write("dev3.hex", dev3.secret_hex());
    assert_eq!(run(&["keys", "import", "ci", "--file", "dev3.hex"]).0, 0);
    p.write(
        "config/config.toml",
        format!("[profiles.tok]\nrpc = \"{url}\"\ntoken = \"s3cret-token\"\nkey = \"ci\"\n"),
    );
    p.copy("templates/digits/tests/six.json", "six.json");
    let (code, out, err) = run(&[
        "task",
        "submit",
        &model,
        "-i",
        "six.json",
        "--profile",
        "tok",
        "--wait",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let b = call(
        &url,
        "lc_getBalance",
        serde_json::json!([dev3.address().to_string()]),
    )
    .unwrap();
    assert_eq!(b["next_nonce"], 1, "{b}");
    // Reads need no token.
    let (code, out, err) = run(&["status", "--rpc", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["validators"], 1, "{out}");
    assert_eq!(s["online"], 1, "{out}");
    drop(node);

    // A node that is not there: a clear error, exit 1 (after the reads' retries).
    let (code, _, _) = run(&["status", "--rpc", "http://127.0.0.1:9", "--json"]);
    assert_eq!(code, 1);
    let (code, _, err) = run(&["status", "--rpc", "http://127.0.0.1:9"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the node at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn models_lists_names_and_versions_and_tasks_take_name_at_latest() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    crate::testnet::digits_package(&p);
    let node = start_devnet(&p, &[]);
    let url = node.url();
    let (code, out, _) = run(&["models", "--rpc", &url]);
    assert_eq!(code, 0);
    assert!(out.contains("no models deployed"), "{out}");
    let (code, _, err) = run(&["deploy", "digits.lcpkg", "--rpc", &url]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["models", "--rpc", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("digits") && out.contains("0.1.0") && out.contains("(latest)"),
        "{out}"
    );
    let (code, out, _) = run(&["models", "--rpc", &url, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["models"][0]["latest"], true, "{v}");
    let owner = v["models"][0]["owner"].as_str().unwrap().to_string();
    assert_eq!(v["models"][0]["deployer"], owner.as_str());
    let model = v["models"][0]["model_id"].as_str().unwrap().to_string();
    let (code, out, err) = run(&[
        "task",
        "submit",
        "digits@latest",
        "-i",
        "proj/tests/six.json",
        "--rpc",
        &url,
        "--wait",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["task"]["model_id"], model.as_str(), "{t}");
    assert_eq!(t["task"]["status"], "completed");
    let (code, _, err) = run(&[
        "task",
        "submit",
        "digits@9.9.9",
        "-i",
        "proj/tests/six.json",
        "--rpc",
        &url,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("digits@9.9.9"), "{err}");
}
