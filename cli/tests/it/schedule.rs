//! Recurring tasks from the command line: `task schedule --wait --json` prints one line per
//! completed run and stops; a deposit too small stops with its reason and exit 1; `task
//! cancel` stops a schedule and says what it refunded.

use crate::Project;
use crate::devnet::{call, run_in, start_devnet};

/// The JSON values printed: one line per event, then (on an error) the error object.
fn lines(out: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter()
        .map(|v| v.unwrap_or_else(|e| panic!("{e}: {out}")))
        .collect()
}

#[test]
fn task_schedule_runs_every_n_blocks_and_stops() {
    let p = Project::new();
    let run = |args: &[&str]| run_in(&p, args);
    assert_eq!(run(&["init", "d", "--template", "digits"]).0, 0);
    assert_eq!(run(&["package", "d", "-o", "d.lcpkg"]).0, 0);
    let node = start_devnet(&p, &[]);
    let url = node.url();
    let (code, out, err) = run(&["deploy", "d.lcpkg", "--rpc", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let model = serde_json::from_str::<serde_json::Value>(&out).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let schedule = |extra: &[&str]| {
        let mut args = vec![
            "task",
            "schedule",
            &model,
            "-i",
            "d/tests/seven.json",
            "--rpc",
            &url,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // Every 2 blocks, 3 times: three completed runs, then the end.
    let (code, out, err) = schedule(&["--every", "2", "--count", "3", "--wait", "--json"]);
    assert_eq!(code, 0, "{err}{out}");
    let ls = lines(&out);
    // One line per run as it completes (runs may complete out of order).
    let mut runs: Vec<&serde_json::Value> = ls.iter().filter(|l| l["event"] == "run").collect();
    runs.sort_by_key(|r| r["run"].as_u64());
    assert_eq!(runs.len(), 3, "{out}");
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{out}");
    let tasks: Vec<String> = runs
        .iter()
        .map(|r| r["task_id"].as_str().unwrap().to_string())
        .collect();
    let mut heights = Vec::new();
    for t in &tasks {
        let (code, out, err) = run(&["task", "get", t, "--rpc", &url, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        heights.push(v["task"]["submitted_height"].as_u64().unwrap());
        assert_eq!(v["task"]["status"], "completed", "{v}");
        assert!(!v["task"]["receipt"]["proof"].as_str().unwrap().is_empty());
    }
    assert_eq!(heights, [heights[0], heights[0] + 2, heights[0] + 4]);
    assert_eq!(ls.last().unwrap()["status"], "finished", "{out}");

    // A deposit for one and a half runs: one run, then a clear reason and exit 1.
    let (code, out, err) = schedule(&[
        "--every",
        "1",
        "--count",
        "3",
        "--deposit",
        "1",
        "--wait",
        "--json",
    ]);
    assert_eq!(code, 1);
    // With --json the error is a JSON object on stdout.
    assert!(
        out.contains("does not pay for one run (") && err.is_empty(),
        "{err}{out}"
    );
    let gas = call(&url, "lc_getModel", serde_json::json!([model])).unwrap()["gas"]
        .as_u64()
        .unwrap();
    let deposit = (gas + gas / 2).to_string();
    let (code, out, _) = schedule(&[
        "--every",
        "1",
        "--count",
        "3",
        "--deposit",
        &deposit,
        "--wait",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let ls = lines(&out);
    assert_eq!(
        ls.iter().filter(|l| l["status"] == "completed").count(),
        1,
        "{out}"
    );
    let end = ls.last().unwrap();
    assert_eq!(
        end["error"]["message"].as_str().unwrap(),
        format!(
            "schedule {} stopped: the deposit ran out after 1 of 3 runs: {} left, a run costs {gas}",
            ls[0]["schedule_id"].as_str().unwrap(),
            gas / 2
        ),
        "{out}"
    );

    // Cancelled by its owner after its first run; the rest of the deposit comes back.
    let (code, out, err) = schedule(&["--every", "1000", "--count", "10", "--json"]);
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["schedule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = run(&["task", "cancel", &id, "--rpc", &url, "--json"]);
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["status"]["status"], "cancelled", "{c}");
    assert_eq!(c["runs"], 1, "{c}");
    assert_eq!(c["refunded"], (9 * gas).to_string(), "{c}");
    let (code, _, err) = run(&["task", "cancel", &id, "--rpc", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("is not active (cancelled)"), "{err}");
    // Another account cannot cancel someone's schedule.
    let (_, out, _) = schedule(&["--every", "1000", "--count", "2", "--json"]);
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["schedule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, err) = run(&["task", "cancel", &id, "--rpc", &url, "--account", "5"]);
    assert_eq!(code, 1);
    assert!(err.contains("only the schedule's owner"), "{err}");
}
