//! `lightchain prove` and `lightchain verify` on the real binary.

use crate::Project;

fn setup() -> Project {
    let p = Project::new();
    p.copy("fixtures/ezkl/1l_mlp/network.onnx", "net.onnx")
        .copy("fixtures/ezkl/1l_mlp/input.json", "input.json");
    p.copy("fixtures/ezkl/2l_relu_fc/network.onnx", "other.onnx");
    p
}

fn params_env(p: &Project) -> Vec<(&'static str, String)> {
    let _ = p;
    vec![(
        "LIGHTCHAIN_PARAMS_DIR",
        std::env::temp_dir()
            .join("lightchain-test-params")
            .display()
            .to_string(),
    )]
}

#[test]
fn prove_then_verify_and_refuse_tampering() {
    let p = setup();
    let env = params_env(&p);
    let run = |args: &[&str]| {
        let out = p.cmd(args).envs(env.clone()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "prove",
        "net.onnx",
        "-i",
        "input.json",
        "-o",
        "proof.json",
        "--nonce",
        &"ab".repeat(32),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["k"], 8);
    assert!(v["proof_bytes"].as_u64().unwrap() > 1000);
    let (code, out, err) = run(&["verify", "net.onnx", "--proof", "proof.json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid proof for model"), "{out}");

    // A changed output in the envelope: refused, exit 1.
    let text = std::fs::read_to_string(p.dir.path().join("proof.json")).unwrap();
    let mut env_json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let o = env_json["public_inputs"]["outputs"][0][1].as_i64().unwrap();
    env_json["public_inputs"]["outputs"][0][1] = (o + 1).into();
    p.write("bad.json", serde_json::to_string(&env_json).unwrap());
    let (code, _, err) = run(&["verify", "net.onnx", "--proof", "bad.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid proof"), "{err}");

    // Another model: refused.
    let (code, _, err) = run(&["verify", "other.onnx", "--proof", "proof.json"]);
    assert_eq!(code, 1, "{err}");

    // The binary form verifies too.
    let (code, _, err) = run(&[
        "prove",
        "net.onnx",
        "-i",
        "input.json",
        "-o",
        "proof.bin",
        "--binary",
        "--input-visibility",
        "hashed",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["verify", "net.onnx", "--proof", "proof.bin"]);
    // Binary proofs do not carry the compile record: a raw ONNX file cannot be verified with them.
    assert_eq!(code, 1);
    assert!(err.contains("package"), "{err}");
}
