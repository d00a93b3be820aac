//! Real halo2 proofs at the widths that broke before: maxima, argmax, pooling and softmax over
//! values of magnitude up to 12 (25-bit and wider tensors, past one range-check row), a hashed
//! input with a 1.7e9 feature (a 33-bit input), the whole nonce, and the parameter cache.

use std::sync::Arc;

use lightchain_aivm::circuit::{Visibility, input_commitment};
use lightchain_aivm::proof::{Keys, ParamsCache, Proof};
use lightchain_aivm::{AivmError, GuardLimits, ImportOptions, Inputs, Model, QuantConfig, Tensor};

use crate::builder::{A, Builder, attr, node, tensor_f32};
use crate::proving::cache;

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// Compiles `bytes` calibrated on `x`, proves `x` with `vis` inputs, verifies with keys derived
/// from the decoded program alone, and checks the proven outputs are the executor's.
fn prove_and_verify(name: &str, bytes: Vec<u8>, x: Tensor<f64>, vis: Visibility) -> Proof {
    let model = Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let inputs = Inputs { tensors: vec![x] };
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.quantize_inputs(&inputs).unwrap();
    let expected = p.execute(&q).unwrap();
    let widest = p.tensors.iter().map(|t| t.bits).max().unwrap();
    assert!(widest > 24, "{name}: only {widest}-bit tensors");
    let p = Arc::new(p);
    let keys = Keys::derive(p.clone(), vis, &cache(), true).unwrap();
    let proof = keys
        .prove(&q, [5; 32], &mut rng())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(proof.outputs, expected, "{name}");
    let decoded = Arc::new(lightchain_aivm::Program::decode(&p.encode()).unwrap());
    let verifier = Keys::derive(decoded, vis, &cache(), false).unwrap();
    verifier
        .verify(&proof)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut wrong = proof.clone();
    wrong.outputs[0][0] += 1;
    assert!(
        verifier.verify(&wrong).is_err(),
        "{name}: another output verified"
    );
    proof
}

const X: [f64; 10] = [5.0, -6.0, 7.5, 1.0, 0.0, 3.0, -2.0, 9.0, 4.0, 8.0];

fn row(values: &[f64]) -> Tensor<f64> {
    Tensor::new(vec![1, values.len()], values.to_vec())
}

#[test]
fn argmax_over_wide_values_and_ties_proves() {
    // The maximum 9 at index 7; then three maxima (indices 0, 3 and 7), where the default takes
    // the first and select_last_index the last.
    let ties = [9.0, -6.0, 7.5, 9.0, 0.0, 3.0, -2.0, 9.0, 4.0, 8.0];
    for (x, last, want) in [(&X, 0, 7), (&ties, 0, 0), (&ties, 1, 7)] {
        let m = Builder::new(13)
            .input("x", &[1, 10])
            .output("y")
            .node(node(
                "ArgMax",
                "am",
                &["x"],
                &["y"],
                vec![attr("axis", A::I(1)), attr("select_last_index", A::I(last))],
            ))
            .bytes();
        let proof = prove_and_verify("argmax", m, row(x), Visibility::Public);
        assert_eq!(
            proof.outputs,
            vec![vec![want]],
            "{x:?}, select_last_index = {last}"
        );
    }
}

#[test]
fn neg_over_wide_values_proves() {
    let m = Builder::new(13)
        .input("x", &[1, 10])
        .output("y")
        .node(node("Neg", "n", &["x"], &["y"], vec![]))
        .bytes();
    let model = Model::from_bytes(
        m.clone(),
        &ImportOptions::default(),
        &GuardLimits::default(),
    )
    .unwrap();
    let inputs = Inputs {
        tensors: vec![row(&X)],
    };
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.quantize_inputs(&inputs).unwrap();
    let proof = prove_and_verify("neg", m, row(&X), Visibility::Public);
    let negated: Vec<i64> = q[0].iter().map(|v| -v).collect();
    assert_eq!(proof.outputs, vec![negated]);
}

#[test]
fn gelu_over_wide_values_proves() {
    // x · Φ(x): a table lookup on a clamped, rescaled copy of x, then a product with x itself,
    // proven over inputs far outside the table's domain (±6).
    let m = Builder::new(20)
        .input("x", &[1, 10])
        .output("y")
        .node(node("Gelu", "g", &["x"], &["y"], vec![]))
        .bytes();
    let proof = prove_and_verify("gelu", m, row(&X), Visibility::Public);
    let y = &proof.outputs[0];
    // Gelu(-6) is 0 to 1e-8, Gelu(9) is 9, Gelu(8) is 8.
    assert!(y[1].abs() * 1000 < y[7], "{y:?}");
    assert!(y[7] > y[9] && y[9] > y[0], "{y:?}");
}

#[test]
fn matmul_of_two_activations_over_wide_values_proves() {
    // x·xᵀ (one chain of ten products over three rows of the product gate) and xᵀ·x (a
    // hundred one-product chains), the products of wide activations up to 81.
    let t = node("Transpose", "t", &["x"], &["xt"], vec![]);
    let inner = Builder::new(13)
        .input("x", &[1, 10])
        .output("y")
        .node(t.clone())
        .node(node("MatMul", "mm", &["x", "xt"], &["y"], vec![]))
        .bytes();
    let proof = prove_and_verify("x·xᵀ", inner, row(&X), Visibility::Public);
    let squares: f64 = X.iter().map(|v| v * v).sum();
    assert_eq!(proof.outputs[0].len(), 1);
    assert!(proof.outputs[0][0] > 0, "{:?}", proof.outputs);
    let outer = Builder::new(13)
        .input("x", &[1, 10])
        .output("y")
        .node(t)
        .node(node("MatMul", "mm", &["xt", "x"], &["y"], vec![]))
        .bytes();
    let proof = prove_and_verify("xᵀ·x", outer, row(&X), Visibility::Public);
    let y = &proof.outputs[0];
    assert_eq!(y.len(), 100);
    // The diagonal holds the squares, whose sum is the inner product above, at the same scale.
    let diag: i64 = (0..10).map(|i| y[i * 11]).sum();
    let ratio = diag as f64 / squares;
    assert!(
        ratio > 0.0 && (y[77] as f64 / 81.0 - ratio).abs() < 0.01 * ratio,
        "{y:?}"
    );
}

#[test]
fn self_attention_block_proves() {
    // Two heads over four tokens: both activation products of attention and its softmax, on
    // inputs up to 9 in magnitude.
    let m = crate::op_variants::attention_block(4, 8, 2, 11);
    let x: Vec<f64> = (0..32).map(|i| X[i % 10] - (i / 10) as f64).collect();
    let proof = prove_and_verify(
        "attention",
        m,
        Tensor::new(vec![1, 4, 8], x),
        Visibility::Public,
    );
    assert_eq!(proof.outputs[0].len(), 32);
}

#[test]
fn reduce_max_over_wide_values_proves() {
    let m = Builder::new(13)
        .input("x", &[1, 10])
        .output("y")
        .node(node(
            "ReduceMax",
            "rm",
            &["x"],
            &["y"],
            vec![attr("axes", A::Is(&[1]))],
        ))
        .bytes();
    let x = row(&[-12.0, 11.5, 3.0, -7.25, 12.0, 0.5, -1.0, 9.0, -12.0, 2.0]);
    prove_and_verify("reduce_max", m, x, Visibility::Public);
}

#[test]
fn max_pool_over_wide_values_proves() {
    let m = Builder::new(13)
        .input("x", &[1, 1, 4, 4])
        .output("y")
        .node(node(
            "MaxPool",
            "mp",
            &["x"],
            &["y"],
            vec![
                attr("kernel_shape", A::Is(&[2, 2])),
                attr("strides", A::Is(&[2, 2])),
            ],
        ))
        .bytes();
    let v: Vec<f64> = (0..16).map(|i| ((i * 7 % 25) as f64) - 12.0).collect();
    prove_and_verify(
        "max_pool",
        m,
        Tensor::new(vec![1, 1, 4, 4], v),
        Visibility::Public,
    );
}

#[test]
fn softmax_over_wide_values_proves() {
    let m = Builder::new(13)
        .input("x", &[1, 10])
        .output("y")
        .node(node(
            "Softmax",
            "sm",
            &["x"],
            &["y"],
            vec![attr("axis", A::I(1))],
        ))
        .bytes();
    let x = row(&[-12.0, 11.5, 3.0, -7.25, 12.0, 0.5, -1.0, 9.0, -12.0, 2.0]);
    prove_and_verify("softmax", m, x, Visibility::Public);
}

#[test]
fn a_hashed_timestamp_feature_proves_and_binds() {
    // A Unix timestamp next to two ordinary features: a 33-bit input.
    let m = Builder::new(13)
        .input("x", &[1, 3])
        .output("y")
        .init(tensor_f32(
            "w",
            &[2, 3],
            &[1e-9, 0.5, -0.25, -2e-9, 0.125, 1.0],
        ))
        .init(tensor_f32("b", &[2], &[0.1, -0.2]))
        .node(node(
            "Gemm",
            "fc",
            &["x", "w", "b"],
            &["y"],
            vec![attr("transB", A::I(1))],
        ))
        .bytes();
    let x = row(&[1.7e9, 0.5, -3.0]);
    let proof = prove_and_verify("timestamp", m.clone(), x.clone(), Visibility::Hashed);
    let model = Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let inputs = Inputs { tensors: vec![x] };
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    assert!(p.tensors[p.inputs[0].tensor].bits > 32);
    // The pair that collided when inputs were packed in 32-bit slots.
    let q = p.quantize_inputs(&inputs).unwrap();
    let mut shifted = q.clone();
    shifted[0][0] -= 1 << 32;
    shifted[0][1] += 1;
    let salt = halo2_proofs::pasta::Fp::from(3);
    assert_ne!(
        input_commitment(&p, &q, salt),
        input_commitment(&p, &shifted, salt)
    );
    assert!(matches!(
        proof.input,
        lightchain_aivm::proof::PublicInput::Commitment(_)
    ));
}

#[test]
fn every_nonce_byte_is_bound() {
    let (p, q) = crate::proving::program("ezkl/1l_mlp");
    let keys = Keys::derive(p, Visibility::Public, &cache(), true).unwrap();
    let proof = keys.prove(&q, [9; 32], &mut rng()).unwrap();
    keys.verify(&proof).unwrap();
    for byte in [0, 15, 16, 30, 31] {
        let mut other = proof.clone();
        other.nonce[byte] ^= 1;
        assert!(
            keys.verify(&other).is_err(),
            "a proof verified with nonce byte {byte} changed"
        );
    }
}

#[test]
fn a_tampered_parameters_file_is_refused_by_name() {
    let good = cache().get(8).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tampered = ParamsCache {
        dir: dir.path().to_path_buf(),
    };
    let mut bytes = Vec::new();
    good.write(&mut bytes).unwrap();
    // One generator changed: a valid-looking file of the right size and k.
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(tampered.path(8), &bytes).unwrap();
    match tampered.get(8) {
        Err(AivmError::ParamsMismatch { path, k }) => {
            assert_eq!((path, k), (tampered.path(8), 8));
        }
        other => panic!("a tampered file was accepted: {:?}", other.map(|_| ())),
    }
    // Deleted, it is generated again, and matches.
    std::fs::remove_file(tampered.path(8)).unwrap();
    tampered.get(8).unwrap();
    assert_eq!(std::fs::read(tampered.path(8)).unwrap().len(), bytes.len());
}
