//! Real halo2 proofs: valid proofs verify with a verifier that rebuilt its keys from the program
//! alone; tampered proofs, wrong outputs, other nonces and other models' keys do not.

use std::sync::{Arc, OnceLock};

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::proof::{Keys, ParamsCache, Proof, PublicInput};
use lightchain_aivm::{AivmError, Program};

use crate::{compile, fixtures_dir, load, read_inputs};

pub fn cache() -> ParamsCache {
    ParamsCache {
        dir: std::env::temp_dir().join("lightchain-test-params"),
    }
}

pub fn program(name: &str) -> (Arc<Program>, Vec<Vec<i64>>) {
    let dir = fixtures_dir().join(name);
    let m = if dir.join("model.onnx").exists() {
        dir.join("model.onnx")
    } else {
        dir.join("network.onnx")
    };
    let model = load(&m);
    let inputs = read_inputs(&model, &dir.join("input.json"));
    let p = compile(&model, &inputs);
    let q = p.quantize_inputs(&inputs).unwrap();
    (Arc::new(p), q)
}

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// One proving key and proof of the small EZKL MLP, shared by the tests below.
fn mlp() -> &'static (Keys, Vec<Vec<i64>>, Proof) {
    static CELL: OnceLock<(Keys, Vec<Vec<i64>>, Proof)> = OnceLock::new();
    CELL.get_or_init(|| {
        let (p, q) = program("ezkl/1l_mlp");
        let keys = Keys::derive(p, Visibility::Public, &cache(), true).unwrap();
        let proof = keys.prove(&q, [9; 32], &mut rng()).unwrap();
        (keys, q, proof)
    })
}

fn fresh_verifier(p: &Arc<Program>, vis: Visibility) -> Keys {
    // From the program alone (e.g. decoded from a package): no proving key, no witness.
    let decoded = Arc::new(Program::decode(&p.encode()).unwrap());
    Keys::derive(decoded, vis, &cache(), false).unwrap()
}

#[test]
fn a_proof_verifies_with_a_fresh_verifier() {
    let (keys, q, proof) = mlp();
    let verifier = fresh_verifier(&keys.circuit.program, Visibility::Public);
    assert!(verifier.pk.is_none());
    verifier.verify(proof).unwrap();
    assert_eq!(proof.outputs, keys.circuit.program.execute(q).unwrap());
    // Through both serialised forms.
    verifier
        .verify(&Proof::from_json(&proof.to_json()).unwrap())
        .unwrap();
    verifier
        .verify(&Proof::from_bytes(&proof.to_bytes()).unwrap())
        .unwrap();
}

#[test]
fn flipped_proof_bytes_fail() {
    let (keys, _, proof) = mlp();
    let n = proof.proof.len();
    for i in (0..n).step_by(n / 24 + 1).chain([n - 1]) {
        let mut bad = proof.clone();
        bad.proof[i] ^= 0x01;
        assert!(
            keys.verify(&bad).is_err(),
            "flipping byte {i} of {n} still verified"
        );
    }
    let mut short = proof.clone();
    short.proof.truncate(n - 1);
    assert!(keys.verify(&short).is_err());
}

#[test]
fn changed_outputs_and_other_nonces_fail() {
    let (keys, _, proof) = mlp();
    for (t, i) in [(0usize, 0usize), (0, 3)] {
        for delta in [-1, 1] {
            let mut bad = proof.clone();
            bad.outputs[t][i] += delta;
            assert!(matches!(keys.verify(&bad), Err(AivmError::InvalidProof(_))));
        }
    }
    let mut other = proof.clone();
    other.nonce[0] ^= 1;
    assert!(
        keys.verify(&other).is_err(),
        "another task's nonce verified"
    );
    if let PublicInput::Values(v) = &proof.input {
        let mut bad = proof.clone();
        let mut v = v.clone();
        v[0][1] += 1;
        bad.input = PublicInput::Values(v);
        assert!(keys.verify(&bad).is_err(), "another input verified");
    }
}

#[test]
fn another_models_verifying_key_fails() {
    let (_, _, proof) = mlp();
    let (p2, _) = program("ezkl/2l_relu_fc");
    let other = fresh_verifier(&p2, Visibility::Public);
    // Refused by id, and cryptographically when the id is forged to match.
    assert!(other.verify(proof).is_err());
    let mut forged = proof.clone();
    forged.model_id = other.model_id;
    forged.k = other.k;
    assert!(other.verify(&forged).is_err());
}

#[test]
fn two_proofs_of_the_same_input_differ() {
    let (keys, q, proof) = mlp();
    let again = keys.prove(q, [9; 32], &mut rng()).unwrap();
    assert_ne!(again.proof, proof.proof, "proofs must be blinded");
    keys.verify(&again).unwrap();
}

#[test]
fn hashed_inputs_stay_out_of_the_public_inputs() {
    let (p, q) = program("ezkl/1l_mlp");
    let keys = Keys::derive(p.clone(), Visibility::Hashed, &cache(), true).unwrap();
    let proof = keys.prove(&q, [1; 32], &mut rng()).unwrap();
    assert!(matches!(proof.input, PublicInput::Commitment(_)));
    let json = proof.to_json();
    assert!(!json.contains("\"inputs\""), "{json}");
    fresh_verifier(&p, Visibility::Hashed)
        .verify(&proof)
        .unwrap();
    // The commitment is salted: proving the same input again gives another commitment.
    let again = keys.prove(&q, [1; 32], &mut rng()).unwrap();
    assert_ne!(again.input, proof.input);
    // A changed commitment does not verify.
    let mut bad = proof.clone();
    if let PublicInput::Commitment(c) = &mut bad.input {
        c[0] ^= 1;
    }
    assert!(keys.verify(&bad).is_err());
}

/// Every fixture and EZKL example with its compiled program and quantized input, except
/// lenet_5: it needs k = 17 and several GiB, so it is proven by `lightchain bench`
/// (BENCHMARKS.md) rather than in every test run.
fn provable_fixtures() -> impl Iterator<Item = (String, Arc<Program>, Vec<Vec<i64>>)> {
    crate::all_fixture_models()
        .into_iter()
        .filter(|(name, _, _)| name != "lenet_5")
        .map(|(name, model_path, _)| {
            let rel = model_path
                .parent()
                .unwrap()
                .strip_prefix(fixtures_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let (p, q) = program(&rel);
            (name, p, q)
        })
}

#[test]
fn every_fixture_and_ezkl_example_proves_and_verifies() {
    let mut proved = 0;
    for (name, p, q) in provable_fixtures() {
        let keys = Keys::derive(p.clone(), Visibility::Public, &cache(), true).unwrap();
        let proof = keys
            .prove(&q, [3; 32], &mut rng())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        fresh_verifier(&p, Visibility::Public)
            .verify(&proof)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: k = {}, proof {} bytes", proof.k, proof.proof.len());
        // Gas is metered at the k the row count predicts; the proof must use that k.
        assert_eq!(
            proof.k,
            lightchain_aivm::gas::meter(&p, Visibility::Public).k,
            "{name}"
        );
        proved += 1;
    }
    assert!(proved >= 29, "proved {proved}");
}

#[test]
fn hashed_input_keys_use_the_metered_k() {
    // Poseidon's rows are estimated when k is chosen (and metered); keys derived for hashed
    // inputs must land on that k, or a quote would price another domain than the proof's.
    for (name, p, _) in provable_fixtures() {
        let keys = Keys::derive(p.clone(), Visibility::Hashed, &cache(), false).unwrap();
        assert_eq!(
            keys.k,
            lightchain_aivm::gas::meter(&p, Visibility::Hashed).k,
            "{name}"
        );
    }
}
