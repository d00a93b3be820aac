//! State across tasks: a stateful program (the `stateful` template: the fraud model plus a
//! running average of its scores) proves each task from the state the previous task wrote, and
//! the proof binds the old and the new state's commitments.

use std::sync::{Arc, OnceLock};

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::program::bit_range;
use lightchain_aivm::proof::{Keys, Proof, ProofError, StateCommitments};
use lightchain_aivm::state::{self, StateSpec, StateValue};
use lightchain_aivm::{AivmError, Inputs, Model, Program, QuantConfig};

use crate::proving::cache;
use crate::{fixtures_dir, load, read_inputs};

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

fn spec() -> StateSpec {
    StateSpec {
        input: "avg".into(),
        output: "new_avg".into(),
    }
}

/// The template's model and its three test inputs (each with a state `avg`).
fn model() -> (Model, Vec<Inputs>) {
    let dir = fixtures_dir().join("../templates/stateful");
    let model = load(&dir.join("model.onnx"));
    let inputs = ["legit", "fraud", "legit-2"]
        .iter()
        .map(|n| read_inputs(&model, &dir.join(format!("tests/{n}.json"))))
        .collect();
    (model, inputs)
}

fn stateful_config() -> QuantConfig {
    QuantConfig {
        state: Some(spec()),
        ..QuantConfig::default()
    }
}

/// A program and the quantized inputs of its test vectors (each with its state last).
type Compiled = (Arc<Program>, Vec<Vec<Vec<i64>>>);

/// The stateful program and the quantized inputs of the test vectors.
fn program() -> &'static Compiled {
    static CELL: OnceLock<Compiled> = OnceLock::new();
    CELL.get_or_init(|| {
        let (model, inputs) = model();
        let p = model.compile(&inputs, &stateful_config()).unwrap();
        let q = inputs
            .iter()
            .map(|i| p.quantize_inputs(i).unwrap())
            .collect();
        (Arc::new(p), q)
    })
}

fn keys(vis: Visibility) -> &'static (Keys, Keys) {
    static PUBLIC: OnceLock<(Keys, Keys)> = OnceLock::new();
    static HASHED: OnceLock<(Keys, Keys)> = OnceLock::new();
    let cell = if vis == Visibility::Public {
        &PUBLIC
    } else {
        &HASHED
    };
    cell.get_or_init(|| {
        let p = program().0.clone();
        // The verifier rebuilds its keys from the program's bytes alone.
        let decoded = Arc::new(Program::decode(&p.encode()).unwrap());
        (
            Keys::derive(p, vis, &cache(), true).unwrap(),
            Keys::derive(decoded, vis, &cache(), false).unwrap(),
        )
    })
}

#[test]
fn the_state_pair_shares_one_scale_and_range() {
    let (p, _) = program();
    assert!(p.state);
    let (i, o) = (p.inputs.last().unwrap(), p.outputs.last().unwrap());
    assert_eq!((i.name.as_str(), o.name.as_str()), ("avg", "new_avg"));
    assert_eq!(p.tensors[i.tensor], p.tensors[o.tensor]);
    // The marker is part of the program: its bytes and id, read back.
    let back = Program::decode(&p.encode()).unwrap();
    assert!(back.state);
    assert_eq!(back.id(), p.id());
    let (model, inputs) = model();
    let plain = model.compile(&inputs, &QuantConfig::default()).unwrap();
    assert!(!plain.state);
    assert_ne!(plain.id(), p.id());
    // A stateless program's bytes with a marker appended are another program; any other
    // trailing byte is refused.
    let mut bytes = plain.encode();
    bytes.push(2);
    assert!(Program::decode(&bytes).is_err());
}

#[test]
fn each_task_proves_from_the_state_the_last_one_wrote() {
    let (p, q) = program();
    for vis in [Visibility::Public, Visibility::Hashed] {
        let (prover, verifier) = keys(vis);
        let mut s = state::initial(p, 0.0).unwrap();
        for (n, input) in q.iter().enumerate() {
            let task = &input[..1];
            let nonce = [n as u8 + 1; 32];
            let (proof, new) = prover
                .prove_with_state(task, &s, nonce, None, &mut rng())
                .unwrap();
            verifier.verify(&proof).unwrap();
            let c = proof.state.expect("state commitments");
            assert_eq!(c.old, state::commitment(p, &s).unwrap().to_repr_bytes());
            assert_eq!(c.new, state::commitment(p, &new).unwrap().to_repr_bytes());
            assert_eq!(proof.outputs.len(), 1, "only probs is public");
            // The new state is the executor's: the program run on the task and the old state.
            let mut all = task.to_vec();
            all.push(s.values.clone());
            let outs = p.execute(&all).unwrap();
            assert_eq!(outs[0], proof.outputs[0]);
            assert_eq!(outs[1], new.values);
            // ... which is the running average, in fixed point.
            let deq = p.dequantize_outputs(&outs);
            let scale = p.tensors[p.inputs[1].tensor].scale;
            for j in 0..2 {
                let old = s.values[j] as f64 / f64::from(1u32 << scale);
                let want = 0.75 * old + 0.25 * deq[0].data[j];
                assert!((deq[1].data[j] - want).abs() < 2e-3, "{vis} task {n}");
            }
            // Both forms carry the commitments.
            assert_eq!(Proof::from_json(&proof.to_json()).unwrap(), proof);
            assert_eq!(Proof::from_bytes(&proof.to_bytes()).unwrap(), proof);
            s = new;
        }
    }
}

/// Commitments as canonical bytes.
trait ReprBytes {
    fn to_repr_bytes(&self) -> [u8; 32];
}

impl ReprBytes for halo2_proofs::pasta::Fp {
    fn to_repr_bytes(&self) -> [u8; 32] {
        ff::PrimeField::to_repr(self)
    }
}

#[test]
fn a_proof_does_not_hold_for_another_state() {
    let (p, q) = program();
    let (prover, verifier) = keys(Visibility::Public);
    let s = state::initial(p, 0.0).unwrap();
    let (proof, new) = prover
        .prove_with_state(&q[0][..1], &s, [9; 32], None, &mut rng())
        .unwrap();
    let other = state::commitment(p, &state::initial(p, 0.5).unwrap())
        .unwrap()
        .to_repr_bytes();
    // Claimed from another old state, or claiming another new state.
    let edits: [fn(&mut StateCommitments, [u8; 32]); 2] = [|c, o| c.old = o, |c, o| c.new = o];
    for edit in edits {
        let mut bad = proof.clone();
        edit(bad.state.as_mut().unwrap(), other);
        match verifier.verify(&bad) {
            Err(AivmError::InvalidProof(ProofError::Verification(_))) => {}
            r => panic!("a proof for another state: {r:?}"),
        }
    }
    // The same new values under another salt are another commitment.
    let resalted = StateValue {
        values: new.values.clone(),
        salt: new.salt + halo2_proofs::pasta::Fp::from(1),
    };
    let mut bad = proof.clone();
    bad.state.as_mut().unwrap().new = state::commitment(p, &resalted).unwrap().to_repr_bytes();
    assert!(verifier.verify(&bad).is_err());
    // Without its commitments the proof is refused by name.
    let mut bare = proof.clone();
    bare.state = None;
    match verifier.verify(&bare) {
        Err(AivmError::InvalidProof(ProofError::State(true))) => {}
        r => panic!("a stateful proof without state: {r:?}"),
    }
    // A stateful model cannot be proven as if it kept none, nor a stateless one with state.
    match prover.prove(&q[0][..1], [1; 32], &mut rng()) {
        Err(AivmError::State(m)) => assert!(m.contains("keeps state"), "{m}"),
        r => panic!("proved without state: {:?}", r.map(|_| ())),
    }
}

/// The widest states a chain can hold (every element at either end of the state's bounds: its
/// calibrated magnitude, to which each new state is clipped) prove, and the new state stays
/// within them, whatever the task input.
#[test]
fn the_widest_states_prove_and_stay_in_range() {
    let (p, q) = program();
    let (prover, verifier) = keys(Visibility::Public);
    let (lo, hi) = state::bounds(p).unwrap();
    let scale = state::meta(p).unwrap().scale;
    assert_eq!(
        (lo, hi),
        (-(1 << scale), 1 << scale),
        "the range [0, 1] calibrates ±1"
    );
    for v in [lo, hi] {
        let s = StateValue {
            values: vec![v; 2],
            salt: halo2_proofs::pasta::Fp::from(7),
        };
        let (proof, new) = prover
            .prove_with_state(&q[1][..1], &s, [3; 32], None, &mut rng())
            .unwrap();
        verifier.verify(&proof).unwrap();
        assert!(new.values.iter().all(|&x| (lo..=hi).contains(&x)));
    }
    // A state outside the bit range is refused before any proving.
    let (_, top) = bit_range(state::meta(p).unwrap().bits);
    let s = StateValue {
        values: vec![top + 1; 2],
        salt: halo2_proofs::pasta::Fp::from(7),
    };
    assert!(state::commitment(p, &s).is_err());
    assert!(
        prover
            .prove_with_state(&q[1][..1], &s, [3; 32], None, &mut rng())
            .is_err()
    );
}

#[test]
fn state_declarations_are_checked_against_the_model() {
    let (model, inputs) = model();
    let compile = |input: &str, output: &str| {
        let cfg = QuantConfig {
            state: Some(StateSpec {
                input: input.into(),
                output: output.into(),
            }),
            ..QuantConfig::default()
        };
        match model.compile(&inputs, &cfg) {
            Err(AivmError::State(m)) => m,
            r => panic!("{input} -> {output}: {:?}", r.map(|_| ())),
        }
    };
    let m = compile("mean", "new_avg");
    assert!(
        m.contains("\"mean\" is not a model input") && m.contains("\"avg\""),
        "{m}"
    );
    let m = compile("avg", "nope");
    assert!(m.contains("\"nope\" is not a model output"), "{m}");
    let m = compile("features", "new_avg");
    assert!(m.contains("last input"), "{m}");
}

/// A pipeline keeps state like any model: embed -> classify -> track, whose unbound input `avg`
/// is the state and whose output `new_avg` is the next one; the classifier's `probs` is
/// published, the embedding stays private.
#[test]
fn a_pipeline_keeps_its_state_in_its_last_stage() {
    use crate::builder::{Builder, node, tensor_f32};
    use lightchain_aivm::guard::guard_bytes;
    use lightchain_aivm::onnx::pipeline::{Stage, merge_bytes};
    use lightchain_aivm::{GuardLimits, ImportOptions};

    let tpl = fixtures_dir().join("../templates/pipeline");
    let guard = |b: Vec<u8>| guard_bytes(b, &GuardLimits::default()).unwrap();
    let embed = guard(std::fs::read(tpl.join("embed.onnx")).unwrap());
    let classify = guard(std::fs::read(tpl.join("classify.onnx")).unwrap());
    let track = guard(
        Builder::new(13)
            .input("x", &[1, 2])
            .input("avg", &[1, 2])
            .init(tensor_f32("decay", &[], &[0.75]))
            .init(tensor_f32("gain", &[], &[0.25]))
            .node(node("Mul", "keep", &["avg", "decay"], &["kept"], vec![]))
            .node(node("Mul", "add", &["x", "gain"], &["added"], vec![]))
            .node(node(
                "Add",
                "update",
                &["kept", "added"],
                &["new_avg"],
                vec![],
            ))
            .output("new_avg")
            .bytes(),
    );
    let b1 = vec![("x".to_string(), "embed.embedding".to_string())];
    let b2 = vec![("x".to_string(), "classify.probs".to_string())];
    let stages = [
        Stage {
            name: "embed",
            model: &embed,
            bind: &[],
        },
        Stage {
            name: "classify",
            model: &classify,
            bind: &b1,
        },
        Stage {
            name: "track",
            model: &track,
            bind: &b2,
        },
    ];
    let outputs = ["classify.probs".to_string(), "new_avg".to_string()];
    let bytes = merge_bytes(&stages, &outputs).unwrap();
    let model =
        Model::from_bytes(bytes, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let names: Vec<String> = model.inputs().iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, ["features", "avg"]);
    let dir = fixtures_dir().join("../templates/stateful/tests");
    let inputs: Vec<Inputs> = ["legit", "fraud", "legit-2"]
        .iter()
        .map(|n| read_inputs(&model, &dir.join(format!("{n}.json"))))
        .collect();
    let p = Arc::new(model.compile(&inputs, &stateful_config()).unwrap());
    assert!(p.state);
    let keys = Keys::derive(p.clone(), Visibility::Public, &cache(), true).unwrap();
    let q = p.quantize_inputs(&inputs[1]).unwrap();
    let s = state::initial(&p, 0.0).unwrap();
    let (proof, new) = keys
        .prove_with_state(&q[..1], &s, [5; 32], None, &mut rng())
        .unwrap();
    keys.verify(&proof).unwrap();
    assert_eq!(proof.outputs.len(), 1, "only classify.probs is public");
    let outs = p.execute(&[q[0].clone(), s.values.clone()]).unwrap();
    assert_eq!(outs[1], new.values);
    let deq = p.dequantize_outputs(&outs);
    for j in 0..2 {
        assert!((deq[1].data[j] - 0.25 * deq[0].data[j]).abs() < 2e-3);
    }
}
