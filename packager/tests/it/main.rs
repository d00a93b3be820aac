//! Packager tests: manifest errors, schema checks, deterministic builds and corrupted packages.

use lightchain_aivm::proof::ParamsCache;
use lightchain_packager::{Manifest, PackageError, build, container, load};

use lightchain_test_utils::{edit, repo, template_project as project};

mod pipeline;
mod state;

fn params() -> ParamsCache {
    ParamsCache {
        dir: lightchain_test_utils::params_dir(),
    }
}

/// A template's manifest text.
fn manifest_of(template: &str) -> String {
    std::fs::read_to_string(repo().join(format!("templates/{template}/lightchain.toml"))).unwrap()
}

/// The problems a manifest text has, as shown.
fn issues(text: &str) -> Vec<String> {
    Manifest::parse(text)
        .unwrap_err()
        .iter()
        .map(|i| i.to_string())
        .collect()
}

#[test]
fn manifest_errors_name_their_lines_and_come_all_at_once() {
    let text = std::fs::read_to_string(repo().join("templates/digits/lightchain.toml")).unwrap();
    let bad = text.replace("version = \"0.1.0\"", "version = \"one\"").replace("range = [0.0, 1.0]", "range = [1.0, 0.0]").replace(
        "accuracy_target = 0.01        # largest relative error of the outputs against the float model",
        "accuracy_target = 7",
    );
    let issues = Manifest::parse(&bad).unwrap_err();
    let shown: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(issues.len(), 3, "{shown:?}");
    assert!(shown[0].starts_with("line 4: model.version"), "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("line 12: range must be")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|s| s.contains("accuracy_target")),
        "{shown:?}"
    );

    let unknown = text.replace("[limits]", "[limits]\nmemroy_mb = 64");
    let issues = Manifest::parse(&unknown).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0].line > 0 && issues[0].message.contains("unknown field `memroy_mb`"),
        "{:?}",
        issues[0]
    );
}

#[test]
fn schema_mismatches_are_reported_together_without_values() {
    let dir = project("digits");
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("shape = [1, 64]", "shape = [1, 32]")
            .replace(
                "dtype = \"f32\"\nshape = [1, 10]",
                "dtype = \"i64\"\nshape = [1, 9]",
            )
            .replace(
                "labels = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]\n",
                "",
            )
    });
    let err = build(dir.path(), &params(), false, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PackageError::Schema { .. }), "{msg}");
    assert!(
        msg.contains("input \"x\": dim 1 is 32 in the manifest, 64 in the model"),
        "{msg}"
    );
    // Input problems stop before outputs are checked (outputs need consistent inputs).
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("shape = [1, 32]", "shape = [1, 64]")
    });
    let msg = build(dir.path(), &params(), false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("output \"logits\": shape [1, 9] in the manifest, [1, 10] in the model"),
        "{msg}"
    );
    assert!(
        msg.contains("output \"logits\": dtype i64 in the manifest, f32 in the model"),
        "{msg}"
    );
}

#[test]
fn packaging_twice_gives_the_same_bytes_and_model_id() {
    let dir = project("digits");
    let (a, pa) = build(dir.path(), &params(), true, &mut |_| {}).unwrap();
    let (b, pb) = build(dir.path(), &params(), false, &mut |_| {}).unwrap();
    assert_eq!(a, b);
    assert_eq!(pa.info.model_id, pb.info.model_id);
    let loaded = load(&a).unwrap();
    assert_eq!(loaded.program.id().to_string(), pa.info.model_id);
    assert!(pa.accuracy.max_rel_error <= 0.01);
}

fn entries_of(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    container::read(bytes).unwrap()
}

#[test]
fn corrupted_packages_are_refused() {
    let dir = project("digits");
    let (bytes, _) = build(dir.path(), &params(), false, &mut |_| {}).unwrap();
    let refuse = |b: &[u8]| load(b).unwrap_err().to_string();

    // Truncated anywhere.
    for cut in [0, 5, 40, bytes.len() / 2, bytes.len() - 1] {
        let e = refuse(&bytes[..cut]);
        assert!(e.starts_with("invalid package"), "{e}");
    }
    // One flipped byte.
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x20;
    assert!(refuse(&flipped).contains("checksum mismatch"));
    // An entry changed and the file checksum recomputed: the entry's checksum catches it.
    let mut forged = bytes[..bytes.len() - 32].to_vec();
    let at = forged
        .windows(12)
        .position(|w| w == b"\"format\": 1,")
        .unwrap();
    forged[at + 10] = b'2';
    let sum = blake3::hash(&forged);
    forged.extend_from_slice(sum.as_bytes());
    assert!(
        refuse(&forged).contains("checksum mismatch in entry \"package.json\""),
        "{}",
        refuse(&forged)
    );
    // A newer format version.
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&2u32.to_le_bytes());
    let e = refuse(&newer);
    assert!(
        e.contains("format version 2 is newer than this lightchain reads (1); upgrade lightchain"),
        "{e}"
    );
    // A program that does not match the ONNX model (consistently re-checksummed and re-id'd).
    let mut entries = entries_of(&bytes);
    let program_at = entries
        .iter()
        .position(|(n, _)| n == "program.aivm")
        .unwrap();
    let mut program = lightchain_aivm::Program::decode(&entries[program_at].1).unwrap();
    if let lightchain_aivm::program::Op::Linear(lightchain_aivm::ops::linear::Linear {
        weight,
        ..
    }) = &mut program.nodes[0].op
    {
        weight[0] += 1;
    }
    entries[program_at].1 = program.encode();
    let info_at = entries
        .iter()
        .position(|(n, _)| n == "package.json")
        .unwrap();
    let mut info: serde_json::Value = serde_json::from_slice(&entries[info_at].1).unwrap();
    info["model_id"] = program.id().to_string().into();
    entries[info_at].1 = serde_json::to_vec(&info).unwrap();
    let e = refuse(&container::write(&entries));
    assert!(
        e.contains("the program does not match the ONNX model"),
        "{e}"
    );
    // And a wrong recorded id.
    let mut entries = entries_of(&bytes);
    let mut info: serde_json::Value = serde_json::from_slice(&entries[info_at].1).unwrap();
    info["model_id"] = "00".repeat(32).into();
    entries[info_at].1 = serde_json::to_vec(&info).unwrap();
    assert!(refuse(&container::write(&entries)).contains("does not match the recorded model id"));
}

#[test]
fn a_package_that_cannot_fit_its_memory_limit_is_refused() {
    let dir = project("digits");
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("memory_mb = 512", "memory_mb = 16")
    });
    let e = build(dir.path(), &params(), false, &mut |_| {}).unwrap_err();
    let shown = e.to_string();
    match e {
        PackageError::MemoryLimit {
            estimate_mb,
            limit_mb,
            k,
            reason,
        } => {
            assert_eq!(limit_mb, 16);
            assert!(estimate_mb > 16 && k >= 8);
            // Why no cut fits is said, not just that none does.
            assert!(reason.contains("MB") && shown.contains(&reason), "{shown}");
        }
        other => panic!("{other}"),
    }
    // Attested, the same model packages: executed and signed by validators, never proven,
    // so no keys and no proving limit; its test vectors still run through the executor.
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("[proving]\n", "[proving]\nmode = \"attested\"\n")
    });
    let (bytes, pkg) = build(dir.path(), &params(), true, &mut |_| {}).unwrap();
    assert_eq!(
        pkg.info.mode,
        lightchain_packager::manifest::ProvingMode::Attested
    );
    assert!(pkg.info.vk_digest.is_empty());
    let e = pkg.keys(&params(), false).unwrap_err();
    assert!(matches!(e, PackageError::Attested(_)), "{e}");
    assert_eq!(load(&bytes).unwrap().info.mode, pkg.info.mode);
    // A package whose package.json contradicts its manifest's mode is refused.
    let forged: Vec<(String, Vec<u8>)> = entries_of(&bytes)
        .into_iter()
        .map(|(n, d)| {
            if n == "package.json" {
                let t = String::from_utf8(d)
                    .unwrap()
                    .replace("  \"mode\": \"attested\"\n", "");
                (n, t.replace(",\n}", "\n}").into_bytes())
            } else {
                (n, d)
            }
        })
        .collect();
    let e = load(&lightchain_packager::container::write(&forged))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("package.json says proven but the manifest says attested"),
        "{e}"
    );
    // A bad mode is a manifest error with its line.
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("\"attested\"", "\"trusted\"")
    });
    let e = build(dir.path(), &params(), false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mode \"trusted\" must be \"proven\" or \"attested\""),
        "{e}"
    );
}

#[test]
fn a_failing_test_vector_fails_the_build() {
    let dir = project("digits");
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("label = 6", "label = 5")
    });
    let e = build(dir.path(), &params(), true, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert_eq!(e, "test vector six: expected class 5, got 6");
}
