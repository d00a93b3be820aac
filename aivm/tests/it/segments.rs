//! Segment proofs: a program cut into segments proves and verifies segment by segment, with a
//! verifier that rebuilt every segment's keys from the program and the cuts; swapped, dropped,
//! reordered or mixed segments, segments of another task and forged links are refused.

use std::sync::{Arc, OnceLock};

use lightchain_aivm::circuit::{AivmCircuit, Visibility};
use lightchain_aivm::proof::{Keys, Proof, PublicInput};
use lightchain_aivm::segment::{Cut, SegmentKeys, plan, segments};
use lightchain_aivm::split::{self, Split};
use lightchain_aivm::{AivmError, Program};

use lightchain_aivm::{GuardLimits, ImportOptions, Inputs, Model, tensor::Tensor};

use crate::builder::{A, Builder, attr, floats, node, tensor_f32};
use crate::compile;
use crate::proving::cache;

/// A chain with a skip, `h1 = relu(W1·x)`, `h(i+1) = relu(W(i+1)·hi)`, `y = W5·(h1 + h4)`,
/// cut to fit 2^MAX_K rows: several segments, with `h1` a link read by two later segments.
/// A program, its quantized input and its cuts.
type Chain = (Arc<Program>, Vec<Vec<i64>>, Vec<usize>);

/// The largest segment domain of the tests.
const MAX_K: u32 = 10;

fn cut() -> &'static Chain {
    static CELL: OnceLock<Chain> = OnceLock::new();
    CELL.get_or_init(|| {
        let n = 40;
        let gemm = |name: &str, x: &str, w: &str, y: &str| {
            node("Gemm", name, &[x, w], &[y], vec![attr("transB", A::I(1))])
        };
        let relu = |name: &str, x: &str, y: &str| node("Relu", name, &[x], &[y], vec![]);
        let weights = |name: &str, seed| tensor_f32(name, &[n, n], &floats((n * n) as usize, seed));
        let m = Builder::new(13)
            .input("x", &[1, n])
            .init(weights("w1", 1))
            .init(weights("w2", 2))
            .init(weights("w3", 3))
            .init(weights("w4", 4))
            .init(weights("w5", 5))
            .node(gemm("g1", "x", "w1", "a1"))
            .node(relu("r1", "a1", "h1"))
            .node(gemm("g2", "h1", "w2", "a2"))
            .node(relu("r2", "a2", "h2"))
            .node(gemm("g3", "h2", "w3", "a3"))
            .node(relu("r3", "a3", "h3"))
            .node(gemm("g4", "h3", "w4", "a4"))
            .node(relu("r4", "a4", "h4"))
            .node(node("Add", "skip", &["h1", "h4"], &["s"], vec![]))
            .node(gemm("g5", "s", "w5", "y"))
            .output("y")
            .bytes();
        let model =
            Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
        let x = Tensor::new(
            vec![1, n as usize],
            floats(n as usize, 9).iter().map(|&v| v as f64).collect(),
        );
        let inputs = Inputs { tensors: vec![x] };
        let p = Arc::new(compile(&model, &inputs));
        let q = p.quantize_inputs(&inputs).unwrap();
        let cut = plan(&p, Visibility::Public, MAX_K).unwrap();
        assert!(cut.splits.is_empty());
        (p, q, cut.ends)
    })
}

/// A cut without splits.
fn whole(ends: &[usize]) -> Cut {
    Cut {
        splits: Vec::new(),
        ends: ends.to_vec(),
    }
}

fn rng() -> rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// Keys from the program alone, decoded as a verifier would read it, and the cuts.
fn verifier(p: &Program, vis: Visibility, ends: &[usize]) -> SegmentKeys {
    let decoded = Arc::new(Program::decode(&p.encode()).unwrap());
    SegmentKeys::derive(decoded, vis, &whole(ends), &cache(), false).unwrap()
}

/// Two proofs of one task (same inputs and nonce, fresh salts), and the verifier.
fn proofs(vis: Visibility) -> &'static (SegmentKeys, Proof, Proof) {
    static PUBLIC: OnceLock<(SegmentKeys, Proof, Proof)> = OnceLock::new();
    static HASHED: OnceLock<(SegmentKeys, Proof, Proof)> = OnceLock::new();
    let cell = if vis == Visibility::Public {
        &PUBLIC
    } else {
        &HASHED
    };
    cell.get_or_init(|| {
        let (p, q, ends) = cut();
        let prover = SegmentKeys::derive(p.clone(), vis, &whole(ends), &cache(), false).unwrap();
        let a = prover.prove(q, [3; 32], None, 2, &mut rng()).unwrap();
        let b = prover.prove(q, [3; 32], None, 2, &mut rng()).unwrap();
        (verifier(p, vis, ends), a, b)
    })
}

fn refused_with(keys: &SegmentKeys, proof: &Proof, what: &str) {
    match keys.verify(proof) {
        Err(AivmError::InvalidProof(e)) => {
            let e = e.to_string();
            assert!(e.contains(what), "refused, but for \"{e}\", not \"{what}\"");
        }
        other => panic!("not refused as \"{what}\": {other:?}"),
    }
}

#[test]
fn the_cut_fits_and_links_every_segment() {
    let (p, _, ends) = cut();
    let whole = AivmCircuit::new(p.clone(), Visibility::Public).min_k();
    let segs = segments(p, ends).unwrap();
    assert!(whole > MAX_K);
    assert!(segs.len() >= 3, "{ends:?}");
    for s in &segs {
        let k = AivmCircuit::with_io(s.program.clone(), Visibility::Public, s.io).min_k();
        assert!(k <= MAX_K, "segment {:?} needs k = {k}", s.nodes);
    }
    // Only the first segment reads the task's input, only the last writes the output; every
    // other boundary is a link, and a link skips a segment (the skip connection: read two
    // segments later, not carried through the middle one).
    assert_eq!(segs[0].io.task_inputs, 1);
    assert!(
        segs[1..]
            .iter()
            .all(|s| s.io.task_inputs == 0 && !s.links_in.is_empty())
    );
    assert!(
        segs[..segs.len() - 1]
            .iter()
            .all(|s| s.public_out.is_empty() && !s.links_out.is_empty())
    );
    assert_eq!(segs.last().unwrap().public_out, vec![0]);
    let skips = (0..segs.len()).any(|i| {
        segs[i].links_out.iter().any(|t| {
            segs.iter().skip(i + 2).any(|s| s.links_in.contains(t))
                && !segs[i + 1].links_in.contains(t)
        })
    });
    assert!(skips, "no link skips a segment");
    // Bad cuts are refused.
    let n = p.nodes.len();
    for bad in [
        vec![],
        vec![0, n],
        vec![2, 2, n],
        vec![3, 2, n],
        vec![2, n - 1],
        vec![2, n + 1],
    ] {
        assert!(segments(p, &bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_segmented_proof_verifies_through_both_forms() {
    for vis in [Visibility::Public, Visibility::Hashed] {
        let (keys, a, _) = proofs(vis);
        let (p, q, _) = cut();
        keys.verify(a).unwrap();
        assert_eq!(a.outputs, p.execute(q).unwrap());
        assert_eq!(a.segments.as_ref().unwrap().proofs.len(), cut().2.len());
        let json = Proof::from_json(&a.to_json()).unwrap();
        assert_eq!(&json, a);
        let bytes = Proof::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(&bytes, a);
        keys.verify(&bytes).unwrap();
        match (&a.input, vis) {
            (PublicInput::Values(v), Visibility::Public) => assert_eq!(v, q),
            (PublicInput::Commitment(_), Visibility::Hashed) => {}
            other => panic!("{other:?}"),
        }
        // A single-circuit verifier refuses it, and a segmented verifier a single proof.
        let single = Keys::derive(p.clone(), vis, &cache(), false).unwrap();
        assert!(single.verify(a).is_err());
    }
}

#[test]
fn swapped_dropped_reordered_or_mixed_segments_are_refused() {
    let (keys, a, b) = proofs(Visibility::Public);
    let segs = |p: &Proof| p.segments.clone().unwrap();
    // Two segment proofs swapped (their k agree: all three prove at k = 8).
    let mut swapped = a.clone();
    swapped.segments.as_mut().unwrap().proofs.swap(0, 1);
    refused_with(keys, &swapped, "segment 0");
    // The last segment dropped.
    let mut dropped = a.clone();
    dropped.segments.as_mut().unwrap().proofs.pop();
    refused_with(keys, &dropped, "2 segment proofs for 3 segments");
    // Cut elsewhere (the same count of segments, other nodes).
    let mut recut = a.clone();
    let ends = &mut recut.segments.as_mut().unwrap().ends;
    ends[0] += 1;
    refused_with(keys, &recut, "other nodes");
    // Segment 1 taken from another proof of the same task: its links were salted otherwise.
    let mut mixed = a.clone();
    mixed.segments.as_mut().unwrap().proofs[1] = segs(b).proofs[1].clone();
    refused_with(keys, &mixed, "segment 1");
    // Every proof of b with a's link table, and the reverse: each link must be the
    // producer's and the reader's at once.
    let mut table = a.clone();
    table.segments.as_mut().unwrap().links = segs(b).links;
    refused_with(keys, &table, "segment 0");
    // A link commitment changed.
    let mut forged = a.clone();
    forged.segments.as_mut().unwrap().links[0].1[0] ^= 1;
    refused_with(keys, &forged, "segment");
    // A link dropped from the table.
    let mut missing = a.clone();
    missing.segments.as_mut().unwrap().links.pop();
    refused_with(keys, &missing, "link table");
    // Another nonce (the segments of another task), other outputs.
    let mut other = a.clone();
    other.nonce[0] ^= 1;
    refused_with(keys, &other, "segment 0");
    let mut wrong = a.clone();
    wrong.outputs[0][0] += 1;
    refused_with(keys, &wrong, "segment 2");
    // A tampered byte in one segment's proof.
    let mut tampered = a.clone();
    tampered.segments.as_mut().unwrap().proofs[2].1[40] ^= 1;
    refused_with(keys, &tampered, "segment 2");
}

/// Segments proven apart (as devnet helpers do): each job proves on keys of its own (another
/// prover's), its proof is checked against its job before it goes into the envelope, and
/// the assembled envelope verifies; a proof of another job, or of the same job with another
/// witness, is refused by the check.
#[test]
fn segment_jobs_prove_apart_and_assemble() {
    let (p, q, ends) = cut();
    let planner = &proofs(Visibility::Public).0;
    let (skeleton, jobs) = planner.plan_proof(q, [5; 32], None, &mut rng()).unwrap();
    assert_eq!(jobs.len(), ends.len());
    // The job's Debug shows shapes, never values.
    let shown = format!("{:?}", jobs[0]);
    assert!(
        shown.contains("index: 0") && !shown.contains(&q[0][1].to_string()),
        "{shown}"
    );
    let helper =
        SegmentKeys::derive(p.clone(), Visibility::Public, &whole(ends), &cache(), false).unwrap();
    let proofs: Vec<(u32, Vec<u8>)> = jobs
        .iter()
        .map(|j| {
            let proof = helper.prove_segment(j).unwrap();
            planner.check_segment(j, &proof).unwrap();
            proof
        })
        .collect();
    // A proof of segment 1 is not one of segment 2 (k agrees, the instance does not).
    assert!(planner.check_segment(&jobs[2], &proofs[1]).is_err());
    // A helper that proves its job with other values (not the planned activations) is caught.
    let mut lying = jobs[1].clone();
    lying.witness.inputs[0][0] += 1;
    let bad = helper.prove_segment(&lying).unwrap();
    assert!(planner.check_segment(&jobs[1], &bad).is_err());
    // Another salt for its output link: the commitment in the instance no longer opens.
    let mut salted = jobs[1].clone();
    salted.witness.links[1] += halo2_proofs::pasta::Fp::from(1u64);
    let bad = helper.prove_segment(&salted).unwrap();
    assert!(planner.check_segment(&jobs[1], &bad).is_err());
    // The envelope with every proof verifies for a verifier that saw none of it.
    let proof = planner.assemble(skeleton.clone(), proofs.clone()).unwrap();
    verifier(p, Visibility::Public, ends)
        .verify(&proof)
        .unwrap();
    // One proof short, it does not assemble.
    assert!(planner.assemble(skeleton, proofs[..2].to_vec()).is_err());
    // A hashed task's salt goes only to the segment that hashes the task's inputs.
    let hashed = &self::proofs(Visibility::Hashed).0;
    let (_, jobs) = hashed.plan_proof(q, [5; 32], None, &mut rng()).unwrap();
    let zero = halo2_proofs::pasta::Fp::from(0u64);
    assert_ne!(jobs[0].witness.salt, zero);
    assert!(jobs[1..].iter().all(|j| j.witness.salt == zero));
}

#[test]
fn a_hashed_task_keeps_its_input_commitment() {
    // The first segment commits to the task's inputs exactly as the single circuit does, so a
    // commitment published before the task is the segmented proof's too.
    let (keys, a, b) = proofs(Visibility::Hashed);
    assert_ne!(a.input, b.input, "fresh salts");
    let (p, q, ends) = cut();
    let salt = lightchain_aivm::proof::random_salt(&mut rng());
    let c = lightchain_aivm::circuit::input_commitment(p, q, salt);
    let prover =
        SegmentKeys::derive(p.clone(), Visibility::Hashed, &whole(ends), &cache(), false).unwrap();
    let proof = prover.prove(q, [4; 32], Some(salt), 1, &mut rng()).unwrap();
    assert_eq!(
        proof.input,
        PublicInput::Commitment(ff::PrimeField::to_repr(&c))
    );
    keys.verify(&proof).unwrap();
    let mut other = proof.clone();
    other.input = a.input.clone();
    refused_with(keys, &other, "segment 0");
}

/// A small LeNet-like network: two convolution chains (`y·y + y` then pooling; ReLU), a
/// flatten and a matrix product, the shapes lenet_5 has at a tenth of its size.
fn convnet() -> (Arc<Program>, Vec<Vec<i64>>) {
    let w = |name: &str, dims: &[i64], seed| {
        let n = dims.iter().product::<i64>() as usize;
        tensor_f32(name, dims, &floats(n, seed))
    };
    let m = Builder::new(13)
        .input("x", &[1, 2, 12, 12])
        .init(w("w1", &[4, 2, 3, 3], 1))
        .init(w("b1", &[4], 2))
        .init(w("w2", &[6, 4, 3, 3], 3))
        .init(w("w3", &[24, 10], 4))
        .node(node(
            "Conv",
            "c1",
            &["x", "w1", "b1"],
            &["a"],
            vec![attr("pads", A::Is(&[1, 1, 1, 1]))],
        ))
        .node(node("Mul", "sq", &["a", "a"], &["a2"], vec![]))
        .node(node("Add", "res", &["a2", "a"], &["a3"], vec![]))
        .node(node(
            "AveragePool",
            "p1",
            &["a3"],
            &["h1"],
            vec![
                attr("kernel_shape", A::Is(&[2, 2])),
                attr("strides", A::Is(&[2, 2])),
            ],
        ))
        .node(node("Conv", "c2", &["h1", "w2"], &["b"], vec![]))
        .node(node("Relu", "r2", &["b"], &["h2"], vec![]))
        .node(node(
            "MaxPool",
            "p2",
            &["h2"],
            &["h3"],
            vec![
                attr("kernel_shape", A::Is(&[2, 2])),
                attr("strides", A::Is(&[2, 2])),
            ],
        ))
        .node(node("Flatten", "f", &["h3"], &["v"], vec![]))
        .node(node("MatMul", "fc", &["v", "w3"], &["y"], vec![]))
        .output("y")
        .bytes();
    let model = Model::from_bytes(m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let x = Tensor::new(
        vec![1, 2, 12, 12],
        floats(288, 5).iter().map(|&v| v as f64).collect(),
    );
    let inputs = Inputs { tensors: vec![x] };
    let p = Arc::new(compile(&model, &inputs));
    let q = p.quantize_inputs(&inputs).unwrap();
    (p, q)
}

/// Inputs across the whole calibrated range: its ends and spread values.
fn widest(p: &Program, seed: u64) -> Vec<Vec<i64>> {
    p.inputs
        .iter()
        .map(|io| {
            let meta = &p.tensors[io.tensor];
            let (lo, hi) = lightchain_aivm::program::bit_range(meta.bits);
            let n: usize = meta.shape.iter().product();
            floats(n, seed)
                .iter()
                .enumerate()
                .map(|(i, &f)| match (i + seed as usize) % 3 {
                    0 => lo,
                    1 => hi,
                    _ => ((f as f64 + 1.0) / 2.0 * (hi - lo) as f64) as i64 + lo,
                })
                .map(|v| v.clamp(lo, hi))
                .collect()
        })
        .collect()
}

#[test]
fn every_split_computes_what_the_program_computes() {
    let (p, q) = convnet();
    let starts: Vec<usize> = (0..p.nodes.len())
        .filter(|&i| split::chain(&p, i).is_some())
        .collect();
    assert_eq!(
        starts.len(),
        3,
        "two convolution chains and the matrix product"
    );
    let (c1, r1) = split::limits(&p, starts[0]).unwrap();
    assert_eq!((c1, r1), (4, 6), "4 channels, 6 pooled rows");
    // The calibration input, scaled copies of it, and the widest inputs (which overflow the
    // calibrated widths: the split program must refuse exactly those too).
    let scaled = |f: f64| -> Vec<Vec<i64>> {
        q.iter()
            .map(|t| t.iter().map(|&v| (v as f64 * f) as i64).collect())
            .collect()
    };
    let inputs: Vec<Vec<Vec<i64>>> = [q.clone(), scaled(-1.0), scaled(0.5), scaled(-0.25)]
        .into_iter()
        .chain((0..4).map(|s| widest(&p, s)))
        .collect();
    let expect: Vec<_> = inputs.iter().map(|x| p.execute(x).ok()).collect();
    assert!(expect.iter().filter(|e| e.is_some()).count() >= 3);
    let mut tried = 0;
    for &start in &starts {
        let (c, r) = split::limits(&p, start).unwrap();
        for ch in 1..=c {
            for rows in 1..=r {
                if ch * rows < 2 {
                    continue;
                }
                let s = Split {
                    node: start,
                    channels: ch,
                    rows,
                };
                let q = split::apply(&p, s).unwrap();
                for (x, e) in inputs.iter().zip(&expect) {
                    assert_eq!(&q.execute(x).ok(), e, "{s:?}");
                }
                tried += 1;
            }
        }
    }
    assert!(tried > 30, "{tried}");
    // Splits of splits: every chain split, the second one's input read piece by piece.
    let both = split::apply_all(
        &p,
        &[Split {
            node: starts[0],
            channels: 2,
            rows: 3,
        }],
    )
    .unwrap();
    let second = (0..both.nodes.len())
        .filter(|&i| split::chain(&both, i).is_some() && both.nodes[i].name == "c2")
        .collect::<Vec<_>>();
    let twice = split::apply(
        &both,
        Split {
            node: second[0],
            channels: 3,
            rows: 2,
        },
    )
    .unwrap();
    for (x, e) in inputs.iter().zip(&expect) {
        assert_eq!(&twice.execute(x).ok(), e);
    }
    // The first chain's Concat is gone: the second chain's parts read its pieces.
    assert!(twice.nodes.iter().all(|n| n.name != "p1/concat"));
    // Bad splits are refused.
    for bad in [(0, 1), (1, 1), (c1 + 1, 1), (1, r1 + 1)] {
        let s = Split {
            node: starts[0],
            channels: bad.0,
            rows: bad.1,
        };
        assert!(split::apply(&p, s).is_err(), "{bad:?}");
    }
    assert!(
        split::apply(
            &p,
            Split {
                node: starts[0] + 1,
                channels: 2,
                rows: 1
            }
        )
        .is_err()
    );
}

#[test]
fn a_split_network_proves_within_the_limit_and_refuses_other_splits() {
    let (p, q) = convnet();
    let whole = AivmCircuit::new(p.clone(), Visibility::Public).min_k();
    // The first convolution (4 channels, k = 12 alone) splits by channel to fit 2^11 rows.
    let cut = plan(&p, Visibility::Public, 11).unwrap();
    assert!(whole > 11, "{whole}");
    assert!(!cut.splits.is_empty(), "{cut:?}");
    let keys = SegmentKeys::derive(p.clone(), Visibility::Public, &cut, &cache(), false).unwrap();
    assert!(keys.k() <= 11);
    let proof = keys.prove(&q, [6; 32], None, 2, &mut rng()).unwrap();
    assert_eq!(proof.outputs, p.execute(&q).unwrap());
    let decoded = Arc::new(Program::decode(&p.encode()).unwrap());
    let verifier = SegmentKeys::derive(
        decoded.clone(),
        Visibility::Public,
        &proof.segments.as_ref().unwrap().cut(),
        &cache(),
        false,
    )
    .unwrap();
    verifier
        .verify(&Proof::from_bytes(&proof.to_bytes()).unwrap())
        .unwrap();
    verifier
        .verify(&Proof::from_json(&proof.to_json()).unwrap())
        .unwrap();
    // The envelope claiming another split: the verifier's keys are for this one.
    let mut other = proof.clone();
    other.segments.as_mut().unwrap().splits[0].1 += 1;
    refused_with(&verifier, &other, "other nodes");
}
