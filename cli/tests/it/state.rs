//! Stateful models from the command line: the `stateful` template packages, tests and inspects;
//! on a devnet each task moves the account's state, which `task state` shows.

use crate::Project;
use crate::devnet::{run_in, start_devnet};

#[test]
fn the_stateful_template_keeps_a_running_average_per_account() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "w", "--template", "stateful"]).0, 0);
    let (code, out, err) = run(&["package", "w", "-o", "w.lcpkg"]);
    assert_eq!(code, 0, "{err}{out}");
    let (code, out, err) = run(&["test", "w"]);
    assert_eq!(code, 0, "{err}{out}");
    let node = start_devnet(&p, &[]);
    let url = node.url();
    let (code, out, err) = run(&["deploy", "w.lcpkg", "--rpc", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let model = serde_json::from_str::<serde_json::Value>(&out).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = || {
        let (code, out, err) = run(&["task", "state", &model, "--rpc", &url, "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let s0 = state();
    assert!(s0["task_id"].is_null(), "{s0}");
    assert_eq!(s0["values_float"], serde_json::json!([0.0, 0.0]));

    // A task gives only the features: the chain supplies the state.
    let features = r#"{"inputs":{"features":[[223.54,0.0,0.338,156.0,4.0,1835.0,0.0,1.0]]}}"#;
    std::fs::write(p.dir.path().join("task.json"), features).unwrap();
    let (code, out, err) = run(&[
        "task",
        "submit",
        &model,
        "-i",
        "task.json",
        "--wait",
        "--rpc",
        &url,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}{out}");
    let s1 = state();
    assert!(s1["task_id"].is_string(), "{s1}");
    assert_ne!(s1["commitment"], s0["commitment"]);
    let fraud = s1["values_float"][1].as_f64().unwrap();
    assert!(fraud > 0.1, "a quarter of a fraud score: {s1}");
    // Human form names the task that wrote it.
    let (code, out, _) = run(&["task", "state", &model, "--rpc", &url]);
    assert_eq!(code, 0);
    assert!(out.contains("written by task"), "{out}");

    // The state in a task's input is refused with the reason.
    let (code, out, err) = run(&[
        "task",
        "submit",
        &model,
        "-i",
        "w/tests/fraud.json",
        "--rpc",
        &url,
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("is the model's state"), "{err}");
    // Another account's state is its own.
    let (code, out, err) = run(&[
        "task",
        "state",
        &model,
        "--address",
        "0x0000000000000000000000000000000000000001",
        "--rpc",
        &url,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"task_id\": null") || out.contains("\"task_id\":null"),
        "{out}"
    );
}

/// `devnet --approve-versions`: a new version waits for the validators (`models` says so) until
/// `models approve` by validators holding more than 2/3 of the stake.
#[test]
fn a_new_version_waits_for_the_validators_approval() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "d", "--template", "digits"]).0, 0);
    assert_eq!(run(&["package", "d", "-o", "v1.lcpkg"]).0, 0);
    // Version 0.2.0 of the same name: another program (the fraud model).
    assert_eq!(run(&["init", "f", "--template", "fraud"]).0, 0);
    let manifest = p.dir.path().join("f/lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replacen("name = \"fraud\"", "name = \"digits\"", 1)
        .replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1);
    std::fs::write(&manifest, text).unwrap();
    let (code, out, err) = run(&["package", "f", "-o", "v2.lcpkg"]);
    assert_eq!(code, 0, "{err}{out}");
    let node = start_devnet(&p, &["--approve-versions"]);
    let url = node.url();
    assert_eq!(run(&["deploy", "v1.lcpkg", "--rpc", &url]).0, 0);
    let (code, out, err) = run(&["deploy", "v2.lcpkg", "--rpc", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v2 = serde_json::from_str::<serde_json::Value>(&out).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, out, _) = run(&["models", "--rpc", &url]);
    assert!(out.contains("awaiting the validators' approval"), "{out}");
    for (v, live) in [("0", false), ("1", false), ("2", true)] {
        let (code, out, err) = run(&[
            "models",
            "approve",
            &v2,
            "--validator",
            v,
            "--rpc",
            &url,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let a: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a["live"], live, "{out}");
    }
    let (code, out, _) = run(&["models", "--rpc", &url, "--json"]);
    assert_eq!(code, 0);
    let models: serde_json::Value = serde_json::from_str(&out).unwrap();
    let latest = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["latest"] == true)
        .unwrap();
    assert_eq!(latest["model_id"], v2.as_str());
    // A fourth approval of a live version is refused.
    let (code, _, err) = run(&["models", "approve", &v2, "--validator", "3", "--rpc", &url]);
    assert_ne!(code, 0);
    assert!(err.contains("not waiting for approval"), "{err}");
}
