//! MockProver tests of the circuit: every fixture's witness satisfies it, and each soundness
//! rule has a witness mutation that must fail.

use std::path::Path;
use std::sync::Arc;

use halo2_proofs::dev::MockProver;
use halo2_proofs::pasta::Fp;

use super::*;
use crate::{GuardLimits, ImportOptions, Model, QuantConfig};

pub(crate) fn fixture(path: &str) -> (Arc<Program>, Vec<Vec<i64>>) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(path);
    let (m, i) = if base.join("model.onnx").exists() {
        (base.join("model.onnx"), base.join("input.json"))
    } else {
        (base.join("network.onnx"), base.join("input.json"))
    };
    let model = Model::load(&m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let inputs = model
        .parse_inputs(&std::fs::read_to_string(i).unwrap())
        .unwrap();
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.quantize_inputs(&inputs).unwrap();
    (Arc::new(p), q)
}

pub(crate) fn mock(
    program: &Arc<Program>,
    inputs: &[Vec<i64>],
    vis: Visibility,
    tamper: Option<Tamper>,
) -> Result<(), String> {
    let outputs = program.execute(inputs).unwrap();
    mock_claim(program, inputs, vis, tamper, &outputs, 7)
}

/// MockProver with a claimed output and nonce in the instance.
pub(crate) fn mock_claim(
    program: &Arc<Program>,
    inputs: &[Vec<i64>],
    vis: Visibility,
    tamper: Option<Tamper>,
    outputs: &[Vec<i64>],
    nonce: u64,
) -> Result<(), String> {
    let salt = Fp::from(12345);
    let input_part: Vec<Fp> = match vis {
        Visibility::Public => inputs
            .iter()
            .flatten()
            .map(|&v| ctx::fp(v as i128))
            .collect(),
        Visibility::Hashed => vec![input_commitment(program, inputs, salt)],
    };
    let instance = super::instance(Fp::from(nonce), &input_part, outputs);
    let mut c = AivmCircuit::new(program.clone(), vis).with_witness(Witness {
        inputs: inputs.to_vec(),
        salt,
    });
    c.tamper = tamper;
    let k = c.min_k();
    let prover = MockProver::run(k, &c, vec![instance]).map_err(|e| format!("{e:?}"))?;
    prover
        .verify()
        .map_err(|e| format!("{} failures, first: {:?}", e.len(), e.first()))
}

#[test]
fn fixtures_satisfy_the_circuit() {
    for name in [
        "ezkl/1l_mlp",
        "ezkl/1l_relu",
        "ezkl/1l_sigmoid",
        "ezkl/1l_softmax",
        "ezkl/1l_conv",
        "op_pool",
        "op_reduce",
        "op_activations",
        "op_elementwise",
        "sentiment_embed",
        "op_shape",
        "breast_cancer_tabular",
    ] {
        let (p, q) = fixture(name);
        mock(&p, &q, Visibility::Public, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn hashed_inputs_satisfy_the_circuit() {
    let (p, q) = fixture("ezkl/1l_mlp");
    mock(&p, &q, Visibility::Hashed, None).unwrap();
}

fn must_fail(program: &Arc<Program>, inputs: &[Vec<i64>], t: Tamper) -> String {
    // The untampered witness satisfies the circuit, so any failure is the tamper's.
    mock(program, inputs, Visibility::Public, None).unwrap();
    match mock(program, inputs, Visibility::Public, Some(t.clone())) {
        Ok(()) => panic!("{t:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn rescale_remainder_out_of_range_fails() {
    let (p, q) = fixture("ezkl/1l_mlp");
    let e = must_fail(&p, &q, Tamper::RescaleRemainder(0));
    assert!(e.contains("Lookup") || e.contains("rng"), "{e}");
    must_fail(&p, &q, Tamper::RescaleRemainder(3));
}

#[test]
fn accumulator_wrapped_past_the_field_fails() {
    let (p, q) = fixture("ezkl/1l_mlp");
    must_fail(&p, &q, Tamper::RescaleWrap(0));
    let (p, q) = fixture("digits_mlp");
    must_fail(&p, &q, Tamper::RescaleWrap(5));
}

#[test]
fn relu_sign_of_zero_cannot_flip() {
    let (p, _) = fixture("ezkl/1l_relu");
    // One zero, one positive, one negative input: flipping any sign bit fails.
    let q = vec![vec![0, 5, -3]];
    for i in 0..3 {
        must_fail(&p, &q, Tamper::FlipSign(i));
    }
}

#[test]
fn lookup_values_outside_the_table_fail() {
    let (p, mut q) = fixture("ezkl/1l_sigmoid");
    q[0][0] = 0; // sigmoid(0) = 1/2 is in the table; (tag, 0, 0) is not
    let e = must_fail(&p, &q, Tamper::LutValue(0, 0));
    assert!(e.contains("Lookup"), "{e}");
    // Off by one from the table value.
    let t = &p
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            crate::program::Op::Lut { table, lo, .. } => Some((table.clone(), *lo)),
            _ => None,
        })
        .unwrap();
    let mid = t.0[(0 - t.1) as usize] as i128;
    must_fail(&p, &q, Tamper::LutValue(0, mid + 1));
    must_fail(&p, &q, Tamper::LutValue(1, -1));
}

#[test]
fn argmax_needs_one_hot_and_the_lowest_tied_index() {
    let (p, q) = fixture("op_reduce");
    must_fail(&p, &q, Tamper::ArgmaxTwoOnes(0));
    // A tie in the first row: the first index must win.
    let mut tied = q.clone();
    let row = &mut tied[0][0..6];
    let m = *row.iter().max().unwrap();
    row[1] = m;
    row[4] = m;
    must_fail(&p, &tied, Tamper::ArgmaxLastTie(0));
}

#[test]
fn wrong_outputs_and_nonces_fail() {
    let (p, q) = fixture("ezkl/1l_mlp");
    let out = p.execute(&q).unwrap();
    mock_claim(&p, &q, Visibility::Public, None, &out, 1).unwrap();
    for delta in [-1, 1] {
        let mut bad = out.clone();
        bad[0][2] += delta;
        assert!(mock_claim(&p, &q, Visibility::Public, None, &bad, 1).is_err());
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Verification succeeds if and only if the claimed output equals the executor's.
        #[test]
        fn verifies_iff_output_is_the_executors(x in proptest::collection::vec(-30000i64..30000, 3), which in 0usize..4, delta in -2i64..=2) {
            let (p, _) = fixture("ezkl/1l_mlp");
            let q = vec![x];
            let out = p.execute(&q).unwrap();
            let mut claimed = out.clone();
            claimed[0][which] += delta;
            let ok = mock_claim(&p, &q, Visibility::Public, None, &claimed, 3).is_ok();
            prop_assert_eq!(ok, claimed == out);
        }
    }
}
