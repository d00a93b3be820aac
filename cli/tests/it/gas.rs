//! `lightchain estimate`, `profile` and `gas-snapshot` on a template project.

use crate::Project;

fn env() -> [(&'static str, String); 1] {
    [(
        "LIGHTCHAIN_PARAMS_DIR",
        std::env::temp_dir()
            .join("lightchain-test-params")
            .display()
            .to_string(),
    )]
}

#[test]
fn estimate_profile_and_gas_snapshot() {
    let p = Project::new();
    let run = |dir: &str, args: &[&str]| {
        let out = p
            .cmd(args)
            .current_dir(p.dir.path().join(dir))
            .envs(env())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(".", &["init", "d", "--template", "digits"]).0, 0);
    let (code, _, err) = run("d", &["package"]);
    assert_eq!(code, 0, "{err}");

    // A quote without a profile has no predicted time; with one, it has.
    let (code, out, err) = run(
        "d",
        &[
            "estimate",
            "digits-0.1.0.lcpkg",
            "-i",
            "tests/seven.json",
            "--gas-price",
            "5",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gas = v["gas"].as_u64().unwrap();
    assert_eq!(v["fee"].as_u64().unwrap(), 5 * gas);
    assert!(v["predicted_seconds"].is_null());
    let (code, out, err) = run(
        "d",
        &[
            "profile",
            "digits-0.1.0.lcpkg",
            "--runs",
            "1",
            "--sizes",
            "1,2",
            "--plot",
            "cost.svg",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let prof: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(prof["sizes"].as_array().unwrap().len(), 2);
    assert_eq!(prof["sizes"][0]["gas"].as_u64().unwrap(), gas);
    assert!(
        p.dir
            .path()
            .join("d/digits-0.1.0.lcpkg.profile.json")
            .exists()
            && p.dir.path().join("d/cost.svg").exists()
    );
    let (_, out, _) = run(
        "d",
        &[
            "estimate",
            "digits-0.1.0.lcpkg",
            "-i",
            "tests/seven.json",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["predicted_seconds"].as_f64().unwrap() > 0.0);

    // A bad input is refused with shapes, not values.
    p.write("d/short.json", r#"{"inputs": {"x": [[0.5, 0.25]]}}"#);
    let (code, _, err) = run("d", &["estimate", "digits-0.1.0.lcpkg", "-i", "short.json"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected shape [1, 64] f32, got [1, 2]") && !err.contains("0.25"),
        "{err}"
    );

    // gas-snapshot: written, checked, and a change caught.
    let (code, _, err) = run("d", &["gas-snapshot"]);
    assert_eq!(code, 0, "{err}");
    let snap = std::fs::read_to_string(p.dir.path().join("d/.gas-snapshot")).unwrap();
    assert_eq!(
        snap,
        format!(
            "digits::seven (gas: {gas})\ndigits::six (gas: {gas})\ndigits::three (gas: {gas})\n"
        )
    );
    assert_eq!(run("d", &["gas-snapshot", "--check"]).0, 0);
    let manifest = p.dir.path().join("d/lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "input_visibility = \"public\"",
            "input_visibility = \"hashed\"",
        ),
    )
    .unwrap();
    let (code, out, _) = run("d", &["gas-snapshot", "--check"]);
    assert_eq!(code, 1);
    assert!(out.contains("changed  digits::seven:"), "{out}");
}
