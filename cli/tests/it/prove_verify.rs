//! `lightchain prove` and `lightchain verify` on the real binary: the verifier decides the
//! program from its own settings, never from the proof.

use crate::Project;

fn setup() -> Project {
    let p = Project::new();
    p.copy("fixtures/ezkl/1l_mlp/network.onnx", "net.onnx")
        .copy("fixtures/ezkl/1l_mlp/input.json", "input.json");
    p.copy("fixtures/ezkl/2l_relu_fc/network.onnx", "other.onnx");
    p
}

/// Runs the binary with the tests' parameter cache: (exit code, stdout, stderr).
fn run(p: &Project, args: &[&str]) -> (i32, String, String) {
    let out = p
        .cmd(args)
        .env(
            "LIGHTCHAIN_PARAMS_DIR",
            std::env::temp_dir().join("lightchain-test-params"),
        )
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn prove_then_verify_and_refuse_tampering() {
    let p = setup();
    let (code, out, err) = run(
        &p,
        &[
            "prove",
            "net.onnx",
            "-i",
            "input.json",
            "-o",
            "proof.json",
            "--nonce",
            &"ab".repeat(32),
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["k"], 8);
    assert!(v["proof_bytes"].as_u64().unwrap() > 1000);
    assert_eq!(
        v["settings"]["default_range"],
        serde_json::json!([-1.0, 1.0])
    );
    assert_eq!(
        v["verify_with"],
        "lightchain verify net.onnx --proof proof.json"
    );
    let (code, out, err) = run(&p, &["verify", "net.onnx", "--proof", "proof.json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid proof for model"), "{out}");
    assert!(out.contains("default calibration"), "{out}");

    // A changed output in the envelope: refused, exit 1.
    let text = std::fs::read_to_string(p.dir.path().join("proof.json")).unwrap();
    let mut env_json = json(&text);
    let o = env_json["public_inputs"]["outputs"][0][1].as_i64().unwrap();
    env_json["public_inputs"]["outputs"][0][1] = (o + 1).into();
    p.write("bad.json", serde_json::to_string(&env_json).unwrap());
    let (code, _, err) = run(&p, &["verify", "net.onnx", "--proof", "bad.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid proof"), "{err}");

    // The nonce's last byte changed: refused.
    let mut env_json = json(&text);
    let nonce = env_json["public_inputs"]["nonce"]
        .as_str()
        .unwrap()
        .to_string();
    env_json["public_inputs"]["nonce"] = format!("{}ac", &nonce[..62]).into();
    p.write("nonce.json", serde_json::to_string(&env_json).unwrap());
    let (code, _, err) = run(&p, &["verify", "net.onnx", "--proof", "nonce.json"]);
    assert_eq!(code, 1, "a changed last nonce byte verified: {err}");
    assert!(err.contains("invalid proof"), "{err}");

    // Another model: refused.
    let (code, _, err) = run(&p, &["verify", "other.onnx", "--proof", "proof.json"]);
    assert_eq!(code, 1, "{err}");

    // The binary form carries no compile record, and needs none.
    let (code, _, err) = run(
        &p,
        &[
            "prove",
            "net.onnx",
            "-i",
            "input.json",
            "-o",
            "proof.bin",
            "--binary",
            "--input-visibility",
            "hashed",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &p,
        &["verify", "net.onnx", "--proof", "proof.bin", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["input_visibility"], "hashed");
    let (code, _, err) = run(
        &p,
        &[
            "verify",
            "net.onnx",
            "--proof",
            "proof.bin",
            "--input-visibility",
            "public",
        ],
    );
    assert_eq!(code, 1, "{err}");
}

#[test]
fn the_verifier_decides_the_compile_settings() {
    let p = setup();
    let (code, out, err) = run(
        &p,
        &[
            "prove",
            "net.onnx",
            "-i",
            "input.json",
            "-o",
            "s1.json",
            "--scale",
            "1",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let proved = json(&out);
    assert_eq!(
        proved["verify_with"],
        "lightchain verify net.onnx --proof s1.json --scale 1"
    );
    // Default settings compile another program: refused, saying what to give.
    let (code, _, err) = run(&p, &["verify", "net.onnx", "--proof", "s1.json"]);
    assert_eq!(code, 1, "a --scale 1 proof verified with default settings");
    assert!(
        err.contains("invalid proof") && err.contains("--scale"),
        "{err}"
    );
    // The verifier's own --scale 1: accepted, and the report says what was verified.
    let (code, out, err) = run(
        &p,
        &[
            "verify", "net.onnx", "--proof", "s1.json", "--scale", "1", "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["model_id"], proved["model_id"]);
    assert_eq!(v["settings"]["scale"], 1);
    assert_eq!(v["model"]["path"], "net.onnx");
    assert_eq!(v["model"]["blake3"].as_str().unwrap().len(), 64);
    // Another scale: refused.
    let (code, _, _) = run(
        &p,
        &["verify", "net.onnx", "--proof", "s1.json", "--scale", "2"],
    );
    assert_eq!(code, 1);
    // An expected model id: the proof's compile record is used only to rebuild that id.
    let id = proved["model_id"].as_str().unwrap();
    let (code, _, err) = run(
        &p,
        &["verify", "net.onnx", "--proof", "s1.json", "--model-id", id],
    );
    assert_eq!(code, 0, "{err}");
    let other = "00".repeat(32);
    let (code, _, err) = run(
        &p,
        &[
            "verify",
            "net.onnx",
            "--proof",
            "s1.json",
            "--model-id",
            &other,
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not the expected"), "{err}");
    // A compile record edited to another scale cannot pass for the expected id.
    let text = std::fs::read_to_string(p.dir.path().join("s1.json")).unwrap();
    let mut forged = json(&text);
    forged["compile"]["quant"]["fixed_scale"] = 3.into();
    p.write("forged.json", serde_json::to_string(&forged).unwrap());
    let (code, _, _) = run(
        &p,
        &[
            "verify",
            "net.onnx",
            "--proof",
            "forged.json",
            "--model-id",
            id,
        ],
    );
    assert_eq!(code, 1);
}

#[test]
fn calibration_files_travel_with_the_proof() {
    let p = setup();
    // Inputs beyond the default range need calibration data, on both sides.
    p.write("wide.json", r#"{"input_data": [[9.5, -7.25, 12.0]]}"#);
    let (code, _, err) = run(
        &p,
        &["prove", "net.onnx", "-i", "wide.json", "-o", "w.json"],
    );
    assert_eq!(code, 1, "an input outside the default calibration proved");
    assert!(err.contains("--calibrate"), "{err}");
    let (code, out, err) = run(
        &p,
        &[
            "prove",
            "net.onnx",
            "-i",
            "wide.json",
            "-o",
            "w.json",
            "--calibrate",
            "wide.json",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(&out)["verify_with"],
        "lightchain verify net.onnx --proof w.json --calibrate wide.json"
    );
    let (code, _, _) = run(&p, &["verify", "net.onnx", "--proof", "w.json"]);
    assert_eq!(code, 1);
    let (code, out, err) = run(
        &p,
        &[
            "verify",
            "net.onnx",
            "--proof",
            "w.json",
            "--calibrate",
            "wide.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("calibrated on wide.json"), "{out}");
    // `run` compiles the same program and computes the same outputs.
    let (code, out, err) = run(
        &p,
        &[
            "run",
            "net.onnx",
            "-i",
            "wide.json",
            "--calibrate",
            "wide.json",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let proof = json(&std::fs::read_to_string(p.dir.path().join("w.json")).unwrap());
    assert_eq!(json(&out)["model_id"], proof["model_id"]);
}
