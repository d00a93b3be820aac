//! `lightchain init`, `package`, `test` and `inspect PKG`, driven as a new user would.

use crate::{Project, params, snap};

/// Masks what differs between machines (float figures from tract, checksums of files holding
/// them) so that snapshots compare the structure and the deterministic parts.
fn stable(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let l = if line.starts_with("accuracy ") {
            "accuracy [masked]".to_string()
        } else if line.starts_with("entry    accuracy.json") {
            "entry    accuracy.json [masked]".to_string()
        } else {
            line.to_string()
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn init_package_test_like_a_new_user() {
    let p = Project::new();
    let env = [params()];
    let run = |dir: &str, args: &[&str]| {
        let out = p
            .cmd(args)
            .current_dir(p.dir.path().join(dir))
            .envs(env.clone())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(".", &["init", "demo", "--template", "digits"]);
    assert_eq!(code, 0, "{err}");
    snap!("init_digits", out);
    // A second init into the same folder loses nothing.
    let (code, _, err) = run(".", &["init", "demo", "--template", "digits"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("already exists and is not empty; nothing was written"),
        "{err}"
    );

    let (code, out, err) = run("demo", &["package"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("packaged  ./digits-0.1.0.lcpkg"), "{out}");
    assert!(
        out.contains("3 test vector(s) executed, proven and verified"),
        "{out}"
    );

    let (code, out, err) = run("demo", &["test", "--junit", "junit.xml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    let junit = std::fs::read_to_string(p.dir.path().join("demo/junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"digits\" tests=\"4\" failures=\"0\""),
        "{junit}"
    );

    let (code, out, err) = run("demo", &["inspect", "digits-0.1.0.lcpkg"]);
    assert_eq!(code, 0, "{err}");
    snap!("inspect_package_digits", stable(&out));

    // The package works where an ONNX file does.
    let (code, out, err) = run(
        "demo",
        &["run", "digits-0.1.0.lcpkg", "--input", "tests/six.json"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("argmax agrees ([6])"), "{out}");
    let (code, _, err) = run(
        "demo",
        &[
            "prove",
            "digits-0.1.0.lcpkg",
            "-i",
            "tests/six.json",
            "-o",
            "six.bin",
            "--binary",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        "demo",
        &["verify", "digits-0.1.0.lcpkg", "--proof", "six.bin"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid proof"), "{out}");

    // A failing test vector: non-zero exit and a JUnit failure.
    let manifest = p.dir.path().join("demo/lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("label = 3", "label = 8")).unwrap();
    let (code, out, _) = run("demo", &["test", "--junit", "junit.xml"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("FAILED  three") && out.contains("expected class 8, got 3"),
        "{out}"
    );
    let junit = std::fs::read_to_string(p.dir.path().join("demo/junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"")
            && junit.contains("<failure message=\"expected class 8, got 3\"/>"),
        "{junit}"
    );
}

#[test]
fn manifest_errors_are_listed_with_lines() {
    let p = Project::new();
    let (code, _, err) = p.run(&["init", "m", "--template", "sentiment"]);
    assert_eq!(code, 0, "{err}");
    let manifest = p.dir.path().join("m/lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let bad = text
        .replace("dtype = \"i64\"", "dtype = \"int8\"")
        .replace("name = \"sentiment\"", "name = \"Sentiment Model\"");
    std::fs::write(&manifest, bad).unwrap();
    let (code, _, err) = p.run(&["package", "m"]);
    assert_eq!(code, 1);
    snap!("error_manifest", err);
}

#[test]
fn every_template_packages() {
    // The transformer, pipeline and stateful templates package in
    // `devnet::transformer_template_runs_as_a_proven_task`,
    // `devnet::pipeline_template_runs_as_one_proven_task` and
    // `state::the_stateful_template_keeps_a_running_average_per_account`.
    for t in ["digits", "fraud", "sentiment"] {
        let p = Project::new();
        let (code, _, err) = p.run(&["init", "x", "--template", t]);
        assert_eq!(code, 0, "{t}: {err}");
        let out = p
            .cmd(&["package", "x", "--json"])
            .envs([params()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["test_vectors"].as_u64().unwrap() >= 2, "{t}");
        for f in [
            "lightchain.toml",
            "model.onnx",
            ".github/workflows/lightchain.yml",
        ] {
            assert!(p.dir.path().join("x").join(f).exists(), "{t}: {f}");
        }
    }
}
