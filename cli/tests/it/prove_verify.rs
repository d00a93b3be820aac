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
    // `prove` stored the verifying key; `verify` rebuilt it from there (and every refusal
    // below is by the stored key). With the cache off it is derived.
    assert!(
        out.contains("key       the stored key of this circuit"),
        "{out}"
    );
    let out = p
        .cmd(&["verify", "net.onnx", "--proof", "proof.json", "--json"])
        .env(
            "LIGHTCHAIN_PARAMS_DIR",
            std::env::temp_dir().join("lightchain-test-params"),
        )
        .env("LIGHTCHAIN_VK_CACHE", "off")
        .output()
        .unwrap();
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (v["valid"].clone(), v["verifying_keys_cached"].clone()),
        (true.into(), 0.into())
    );

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

/// Under a memory limit its circuit exceeds, a model proves in segments; `verify` checks every
/// segment and link, and refuses an envelope whose link or segment was changed.
#[test]
fn a_memory_limit_cuts_the_proof_into_segments() {
    let p = Project::new();
    p.copy("fixtures/op_elementwise/model.onnx", "m.onnx")
        .copy("fixtures/op_elementwise/input.json", "input.json");
    let prove = |limit: &str, out: &str| {
        run(
            &p,
            &[
                "prove",
                "m.onnx",
                "-i",
                "input.json",
                "-o",
                out,
                "--memory-limit",
                limit,
                "--json",
            ],
        )
    };
    // In one circuit (k = 9) by default.
    let (code, out, err) = prove("512", "one.json");
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["segments"], 1);
    // Within 44 MB (k = 8): three segments.
    let (code, out, err) = prove("44", "cut.json");
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["segments"], 3, "{out}");
    assert_eq!(v["k"], 8);
    let (code, out, err) = run(&p, &["verify", "m.onnx", "--proof", "cut.json", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["segments"], 3);
    // Below what any one node needs: refused, naming the node and the way out.
    let (code, out, err) = prove("40", "none.json");
    assert_eq!(code, 1);
    // With --json the error is the JSON on stdout.
    let err = format!("{out}{err}");
    assert!(
        err.contains("alone needs k = 8") && err.contains("--memory-limit"),
        "{err}"
    );

    let text = std::fs::read_to_string(p.dir.path().join("cut.json")).unwrap();
    let tamper = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = json(&text);
        f(&mut v);
        p.write(name, serde_json::to_string(&v).unwrap());
        let (code, _, err) = run(&p, &["verify", "m.onnx", "--proof", name]);
        assert_eq!(code, 1, "{name} verified");
        assert!(err.contains("invalid proof"), "{name}: {err}");
    };
    tamper("dropped.json", &|v| {
        v["segments"]["proofs"].as_array_mut().unwrap().pop();
    });
    tamper("swapped.json", &|v| {
        v["segments"]["proofs"].as_array_mut().unwrap().swap(0, 2);
    });
    tamper("output.json", &|v| {
        let o = v["public_inputs"]["outputs"][3][0].as_i64().unwrap();
        v["public_inputs"]["outputs"][3][0] = (o + 1).into();
    });
    // Cut at other nodes (the program has 4): the segment proofs are for other circuits.
    tamper("recut.json", &|v| {
        let other = if v["segments"]["ends"] == serde_json::json!([1, 2, 4]) {
            serde_json::json!([1, 3, 4])
        } else {
            serde_json::json!([1, 2, 4])
        };
        v["segments"]["ends"] = other;
    });
}
