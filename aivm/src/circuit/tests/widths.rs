//! Random one-op programs at every bit width `Program::validate` allows (2 to 48 bits; the
//! quantizer stops at 40), with inputs at their extremes: the honest witness satisfies the circuit
//! (honest prove ⇒ verify), any other claimed output does not (verify ⇒ the executor's output),
//! and a program whose output overflows its declared width can be neither executed nor proven.

use proptest::prelude::*;

use super::*;
use crate::ops::binary::BinKind;
use crate::ops::copy::CopySpec;
use crate::ops::group::{GroupSpec, Pool2d};
use crate::ops::linear::LinearGeom;
use crate::ops::reduce::ReduceKind;
use crate::ops::signed_bits;
use crate::program::bit_range;
use crate::tensor::Tensor;

/// splitmix64 with the draws these tests need.
struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.int(lo, hi)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.int(0, xs.len() as i64 - 1) as usize]
    }

    /// A bit width, often an edge: the smallest, the limb spans, the quantizer's and
    /// `validate`'s largest.
    fn bits(&mut self, max: u32) -> u32 {
        let edges = [2, 3, 8, 12, 16, 24, 25, 28, 29, 32, 33, 40, 47, 48];
        let b = if self.int(0, 2) == 0 {
            self.int(2, 48) as u32
        } else {
            self.pick(&edges)
        };
        b.min(max)
    }

    /// A value of `bits` bits, often an extreme.
    fn value(&mut self, bits: u32) -> i64 {
        let (lo, hi) = bit_range(bits);
        match self.int(0, 5) {
            0 => lo,
            1 => hi,
            2 => 0,
            3 => self.pick(&[lo + 1, hi - 1, -1, 1]).clamp(lo, hi),
            _ => self.int(lo, hi),
        }
    }

    fn values(&mut self, bits: u32, n: usize) -> Vec<i64> {
        (0..n).map(|_| self.value(bits)).collect()
    }
}

/// Bit length of a magnitude.
fn bitlen(m: u128) -> u32 {
    128 - m.leading_zeros()
}

/// The shift that brings a worst-case magnitude `worst` within 47 bits, plus a little.
fn shift_for(rng: &mut Rng, worst: u128) -> u32 {
    (bitlen(worst) + 1).saturating_sub(47) + rng.int(0, 3) as u32
}

/// A random one-op program (output width 48 where the circuit range-checks it, the exact
/// static width otherwise) and its inputs.
fn draft(rng: &mut Rng) -> (&'static str, Program, Vec<Vec<i64>>) {
    let mut p = P::default();
    let family = rng.pick(&[
        "linear", "affine", "add", "mul", "relu", "leaky", "clip", "lut", "softmax", "sum", "mean",
        "max", "argmax", "pool", "copy", "rescale", "gather", "neg", "matmul",
    ]);
    let axes = |n: usize| GroupSpec::Axes {
        shape: vec![2, n],
        axes: vec![1],
    };
    let mut ins = Vec::new();
    let unary = |p: &mut P, rng: &mut Rng, op: Op, bits: u32, ins: &mut Vec<Vec<i64>>| {
        let i = p.input(&[1, 4], bits);
        ins.push(rng.values(bits, 4));
        let y = p.node(op, &[i], &[1, 4], 48);
        p.output(y);
    };
    match family {
        "linear" => {
            let b = rng.bits(48);
            let (k, n) = (rng.int(1, 11) as usize, rng.int(1, 2) as usize);
            let wb = rng.int(1, (58 - b as i64).clamp(1, 16)) as u32;
            let weight: Vec<i64> = (0..k * n).map(|_| rng.value(wb)).collect();
            let bias: Vec<i64> = (0..n).map(|_| rng.value((b + wb - 1).min(56))).collect();
            let worst = ((k as u128) << (b + wb - 2)) + (1u128 << (b + wb - 2).min(56));
            let op = Op::Linear(crate::ops::linear::Linear {
                geom: LinearGeom::MatMul {
                    batch: 1,
                    m: 1,
                    k,
                    n,
                },
                weight,
                bias,
                shift: shift_for(rng, worst * 2),
            });
            let i = p.input(&[1, k], b);
            ins.push(rng.values(b, k));
            let y = p.node(op, &[i], &[1, n], 48);
            p.output(y);
        }
        "affine" => {
            let b = rng.bits(48);
            let mb = rng.int(1, (58 - b as i64).clamp(1, 16)) as u32;
            let mul = Tensor::new(vec![4], rng.values(mb, 4));
            let add = Tensor::new(vec![4], rng.values((b + mb - 1).min(56), 4));
            let worst = 1u128 << (b + mb - 1).max((b + mb - 1).min(56));
            let op = Op::Affine(crate::ops::affine::Affine {
                mul: Some(mul),
                add: Some(add),
                shift: shift_for(rng, worst * 2),
            });
            unary(&mut p, rng, op, b, &mut ins);
        }
        "add" => {
            let (b1, b2) = (rng.bits(48), rng.bits(48));
            let (la, lb) = (rng.int(0, 8) as u32, rng.int(0, 8) as u32);
            let worst = (1u128 << (b1 - 1 + la)) + (1u128 << (b2 - 1 + lb));
            let kind = rng.pick(&[BinKind::Add, BinKind::Sub]);
            let op = Op::Binary(crate::ops::binary::Binary {
                kind,
                la,
                lb,
                shift: shift_for(rng, worst),
            });
            let a = p.input(&[1, 4], b1);
            let c = p.input(&[1, 1], b2);
            ins.push(rng.values(b1, 4));
            ins.push(rng.values(b2, 1));
            let y = p.node(op, &[a, c], &[1, 4], 48);
            p.output(y);
        }
        "mul" => {
            let b1 = rng.bits(48);
            let b2 = rng.bits(62 - b1);
            let worst = 1u128 << (b1 + b2 - 2);
            let op = Op::Binary(crate::ops::binary::Binary {
                kind: BinKind::Mul,
                la: 0,
                lb: 0,
                shift: shift_for(rng, worst),
            });
            let a = p.input(&[1, 4], b1);
            let c = p.input(&[1, 4], b2);
            ins.push(rng.values(b1, 4));
            ins.push(rng.values(b2, 4));
            let y = p.node(op, &[a, c], &[1, 4], 48);
            p.output(y);
        }
        "matmul" => {
            // Batched, B broadcast over A's batch: [2, m, k] x [1, k, n].
            let (m, k, n) = (
                rng.int(1, 2) as usize,
                rng.int(1, 9) as usize,
                rng.int(1, 2) as usize,
            );
            let b1 = rng.bits(48);
            let b2 = rng.bits(62 - b1 - bitlen(k as u128));
            let worst = (k as u128) << (b1 + b2 - 2);
            let op = Op::MatMul(crate::ops::matmul::MatMul {
                geom: crate::ops::matmul::MatGeom {
                    a_batch: vec![2],
                    b_batch: vec![1],
                    m,
                    k,
                    n,
                },
                shift: shift_for(rng, worst),
            });
            let a = p.input(&[2, m, k], b1);
            let c = p.input(&[1, k, n], b2);
            ins.push(rng.values(b1, 2 * m * k));
            ins.push(rng.values(b2, k * n));
            let y = p.node(op, &[a, c], &[2, m, n], 48);
            p.output(y);
        }
        "relu" => {
            let b = rng.bits(48);
            unary(&mut p, rng, Op::Relu(crate::ops::relu::Relu), b, &mut ins);
        }
        "neg" => {
            // The output needs one bit more than the input: -(-2^(b-1)) = 2^(b-1).
            let b = rng.bits(47);
            unary(&mut p, rng, Op::Neg(crate::ops::neg::Neg), b, &mut ins);
        }
        "leaky" => {
            let b = rng.bits(44);
            let ab = rng.int(2, (61 - b as i64).min(20)) as u32;
            let op = Op::LeakyRelu(crate::ops::leaky_relu::LeakyRelu {
                alpha: rng.value(ab),
                alpha_scale: 16,
            });
            unary(&mut p, rng, op, b, &mut ins);
        }
        "clip" => {
            let b = rng.bits(48);
            let (x, y) = (rng.value(b.min(47) + 1), rng.value(b.min(47) + 1));
            let op = Op::Clip(crate::ops::clip::Clip {
                lo: (rng.int(0, 3) > 0).then_some(x.min(y)),
                hi: (rng.int(0, 3) > 0).then_some(x.max(y)),
            });
            unary(&mut p, rng, op, b, &mut ins);
        }
        "lut" => {
            let b = rng.bits(48);
            let len = rng.int(1, 40) as usize;
            let tb = rng.bits(40);
            let in_shift = rng.int(-4, 6) as i32;
            let in_shift = if b + in_shift.unsigned_abs() > 58 && in_shift < 0 {
                0
            } else {
                in_shift
            };
            let op = Op::Lut(crate::ops::lut::Lut {
                func: crate::ops::lut::LutFn::Sigmoid,
                in_shift,
                lo: rng.int(-(1 << 20), 1 << 20),
                table: rng.values(tb, len),
            });
            unary(&mut p, rng, op, b, &mut ins);
        }
        "softmax" => {
            let b = rng.bits(48);
            let n = rng.int(1, 6) as usize;
            let len = rng.int(1, 16) as usize;
            let tb = rng.int(2, 30) as u32;
            let mut table: Vec<i64> = (0..len).map(|_| rng.int(0, 1 << (tb - 1))).collect();
            table[len - 1] = table[len - 1].max(1);
            let in_shift = rng.int(-3, 8) as i32;
            let in_shift = if b + 1 + in_shift.unsigned_abs() > 58 && in_shift < 0 {
                0
            } else {
                in_shift
            };
            let out_scale = rng.int(0, 20) as u32;
            let op = if rng.int(0, 1) == 0 {
                Op::Softmax(crate::ops::softmax::Softmax {
                    groups: axes(n),
                    in_shift,
                    lo: 1 - len as i64,
                    table,
                    out_scale,
                    split_bits: 0,
                })
            } else {
                // exp split in two tables, over a domain of up to 4,000 steps at scale 0..8.
                let n_u = rng.int(1, 4000);
                let scale = rng.int(0, 8) as u32;
                let (split_bits, table) = crate::ops::softmax::split_exp_table(n_u, scale);
                Op::SoftmaxSplit(crate::ops::softmax::SoftmaxSplit {
                    groups: axes(n),
                    in_shift,
                    lo: -n_u,
                    table,
                    out_scale,
                    split_bits,
                })
            };
            let i = p.input(&[2, n], b);
            ins.push(rng.values(b, 2 * n));
            let y = p.node(op, &[i], &[2, n], 48);
            p.output(y);
        }
        "sum" | "mean" | "max" | "argmax" => {
            let b = rng.bits(48);
            let n = rng.int(1, 9) as usize;
            let i = p.input(&[2, n], b);
            ins.push(rng.values(b, 2 * n));
            let op = match family {
                "argmax" => Op::ArgMax(crate::ops::argmax::ArgMax { groups: axes(n) }),
                f => Op::Reduce(crate::ops::reduce::Reduce {
                    kind: match f {
                        "sum" => ReduceKind::Sum,
                        "mean" => ReduceKind::Mean,
                        _ => ReduceKind::Max,
                    },
                    groups: axes(n),
                    shift: if f == "sum" { rng.int(0, 4) as u32 } else { 0 },
                }),
            };
            let y = p.node(op, &[i], &[2], 48);
            p.output(y);
        }
        "pool" => {
            let b = rng.bits(48);
            let (h, w) = (rng.int(2, 4) as usize, rng.int(2, 4) as usize);
            let (kh, kw) = (rng.int(1, 2) as usize, rng.int(1, 2) as usize);
            let pad = [
                rng.int(0, kh as i64 - 1) as usize,
                rng.int(0, kw as i64 - 1) as usize,
            ];
            let pool = Pool2d {
                n: 1,
                c: 1,
                h,
                w,
                kh,
                kw,
                stride: [1, 1],
                pad,
                oh: h + pad[0] - kh + 1,
                ow: w + pad[1] - kw + 1,
                count_include_pad: rng.int(0, 1) == 1,
            };
            let (oh, ow) = (pool.oh, pool.ow);
            let kind = rng.pick(&[ReduceKind::Max, ReduceKind::Mean]);
            let op = Op::Reduce(crate::ops::reduce::Reduce {
                kind,
                groups: GroupSpec::Pool2d(pool),
                shift: 0,
            });
            let i = p.input(&[1, 1, h, w], b);
            ins.push(rng.values(b, h * w));
            let y = p.node(op, &[i], &[1, 1, oh, ow], 48);
            p.output(y);
        }
        "copy" => {
            let (b1, b2) = (rng.bits(48), rng.bits(48));
            let a = p.input(&[2, 3], b1);
            let c = p.input(&[2, 1], b2);
            ins.push(rng.values(b1, 6));
            ins.push(rng.values(b2, 2));
            let cat = p.node(
                Op::Copy(CopySpec::Concat {
                    axis: 1,
                    in_shapes: vec![vec![2, 3], vec![2, 1]],
                }),
                &[a, c],
                &[2, 4],
                b1.max(b2),
            );
            let t = p.node(
                Op::Copy(CopySpec::Transpose {
                    in_shape: vec![2, 4],
                    perm: vec![1, 0],
                }),
                &[cat],
                &[4, 2],
                b1.max(b2),
            );
            p.output(t);
        }
        "rescale" => {
            let b = rng.bits(48);
            let op = Op::Rescale(crate::ops::rescale::Rescale {
                shift: rng.int(0, 50) as u32,
            });
            unary(&mut p, rng, op, b, &mut ins);
        }
        _ => {
            let rows = rng.int(1, 5) as usize;
            let tb = rng.bits(40);
            let table = Tensor::new(vec![rows, 2], rng.values(tb, rows * 2));
            let i = p.input_typed(&[3], rng.bits(48).max(4), DType::I64);
            ins.push((0..3).map(|_| rng.int(0, rows as i64 - 1)).collect());
            let y = p.node(
                Op::Gather(crate::ops::gather::Gather { table }),
                &[i],
                &[3, 2],
                48,
            );
            p.output(y);
        }
    }
    (family, p.build_unchecked(), ins)
}

/// A random valid program whose output width is `out` bits past what its outputs need
/// (`out = 0`: exactly what they need), and its inputs.
fn random_program(seed: u64, extra: i32) -> (&'static str, Arc<Program>, Vec<Vec<i64>>) {
    let mut rng = Rng(crate::rng::SplitMix64(seed));
    loop {
        let (family, mut p, ins) = draft(&mut rng);
        let y = p.outputs[0].tensor;
        // Ops the circuit range-checks take any width; the others need their static width.
        p.tensors[y].bits = 48;
        if p.validate().is_err() {
            if let Some(need) = (2..=48).find(|&b| {
                p.tensors[y].bits = b;
                p.validate().is_ok()
            }) {
                p.tensors[y].bits = need;
            } else {
                continue;
            }
        }
        let Ok(out) = p.execute(&ins) else {
            continue;
        };
        let need = out[0]
            .iter()
            .map(|&v| signed_bits(v as i128))
            .max()
            .unwrap_or(2);
        let bits = (need as i32 + extra).clamp(1, 48) as u32;
        let before = p.tensors[y].bits;
        p.tensors[y].bits = bits;
        if p.validate().is_err() {
            if extra < 0 {
                // A statically bounded op: its width cannot be declared too small.
                continue;
            }
            p.tensors[y].bits = before;
        }
        return (family, Arc::new(p), ins);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Honest witnesses satisfy the circuit at every width, and no other output does.
    #[test]
    fn every_width_proves_exactly_the_executors_output(seed in any::<u64>(), extra in 0i32..3, hashed in any::<bool>(), which in any::<prop::sample::Index>(), delta in prop_oneof![Just(-1i64), Just(1)]) {
        let (family, p, ins) = random_program(seed, extra);
        let vis = if hashed { Visibility::Hashed } else { Visibility::Public };
        let case = Case::new(p, ins, vis);
        if let Err(e) = case.honest_result() {
            panic!("{family}: the honest witness fails: {} failures, first {}", e.len(), e[0]);
        }
        let honest = case.instance_of(&case.laid, &case.honest);
        let n_out = case.executor_outputs().len();
        prop_assert_eq!(&honest[honest.len() - n_out..], &case.executor_outputs()[..]);
        let mut claimed = honest.clone();
        let at = honest.len() - n_out + which.index(n_out);
        claimed[at] += fp(delta as i128);
        prop_assert!(run_mock(&case, &claimed, None, &HashMap::new()).is_err(), "{} accepted another output", family);
    }

    /// An output wider than its declared width: the executor refuses it, and the circuit
    /// cannot prove it either.
    #[test]
    fn an_overflowing_output_is_neither_executed_nor_proven(seed in any::<u64>()) {
        let (family, p, ins) = random_program(seed, -1);
        prop_assume!(p.execute(&ins).is_err());
        let circuit = AivmCircuit::new(p, Visibility::Public).with_witness(Witness::new(ins, Fp::from(SALT)));
        let (laid, trace) = testing::with(None, HashMap::new(), true, || dry_layout(&circuit));
        let case = Case { honest: trace.unwrap(), laid, k: circuit.min_k(), cfg: config(), circuit };
        let inst = case.instance_of(&case.laid, &case.honest);
        prop_assert!(run_mock(&case, &inst, None, &HashMap::new()).is_err(), "{} proved an overflow", family);
    }
}

#[test]
fn hashed_inputs_commit_injectively() {
    // The collision of the old 32-bit packing: x0 - 2^32 and x1 + 1 packed like x0 and x1.
    let mut p = P::default();
    let i = p.input(&[2], 40);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[2], 40);
    let program = p.output(y).build();
    let salt = Fp::from(99);
    let a = vec![vec![5i64 << 32, 7]];
    let b = vec![vec![(5i64 << 32) - (1 << 32), 8]];
    assert_ne!(
        input_commitment(&program, &a, salt),
        input_commitment(&program, &b, salt)
    );
    // Every input of three 2-bit elements packs differently.
    let mut p = P::default();
    let i = p.input(&[3], 2);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[3], 2);
    let small = p.output(y).build();
    let mut seen = std::collections::HashSet::new();
    for v in 0..64i64 {
        let x = vec![(0..3).map(|k| ((v >> (2 * k)) & 3) - 2).collect::<Vec<_>>()];
        let packed: Vec<[u8; 32]> = pack_inputs(&small, &x)
            .iter()
            .map(|f| f.to_repr())
            .collect();
        assert!(seen.insert(packed), "{x:?}");
    }
    // Wide inputs fill a field element without passing 254 bits.
    let mut p = P::default();
    let i = p.input(&[11], 48);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[11], 48);
    let wide = p.output(y).build();
    let slots = pack_slots(&wide);
    assert_eq!(slots.len(), 3);
    assert!(
        slots
            .iter()
            .all(|s| s.iter().map(|x| x.2).sum::<u32>() <= PACK_BITS)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Two different inputs within range never pack alike, at any widths.
    #[test]
    fn packing_is_injective(bits in proptest::collection::vec(2u32..=48, 1..8), seed in any::<u64>(), at in any::<prop::sample::Index>()) {
        let mut p = P::default();
        let ids: Vec<usize> = bits.iter().map(|&b| p.input(&[3], b)).collect();
        for &t in &ids {
            let y = p.node(Op::Relu(crate::ops::relu::Relu), &[t], &[3], p.0.tensors[t].bits);
            p.output(y);
        }
        let program = p.build();
        let mut rng = Rng(crate::rng::SplitMix64(seed));
        let x: Vec<Vec<i64>> = bits.iter().map(|&b| rng.values(b, 3)).collect();
        let mut other = x.clone();
        let k = at.index(bits.len());
        let j = rng.int(0, 2) as usize;
        let (lo, hi) = bit_range(bits[k]);
        other[k][j] = if x[k][j] == hi { lo } else { x[k][j] + 1 };
        prop_assert_ne!(pack_inputs(&program, &x), pack_inputs(&program, &other));
    }
}

#[test]
fn validate_refuses_what_no_layout_can_take() {
    let refused = |op: Op, in_bits: u32, out_bits: u32, why: &str| {
        let mut p = P::default();
        let i = p.input(&[1, 3], in_bits);
        let y = p.node(op, &[i], &[1, 3], out_bits);
        p.output(y);
        let e = p.build_unchecked().validate().expect_err(why).to_string();
        assert!(e.contains("bits") || e.contains("rescale"), "{why}: {e}");
    };
    // Outputs no gate range-checks must fit their declared width by construction.
    refused(
        Op::Relu(crate::ops::relu::Relu),
        20,
        19,
        "a ReLU narrower than its input",
    );
    refused(
        Op::Clip(crate::ops::clip::Clip {
            lo: Some(-(1 << 20)),
            hi: None,
        }),
        8,
        8,
        "a Clip whose bound does not fit",
    );
    // alpha = 3: -128·3 = -384 needs 10 bits.
    refused(
        Op::LeakyRelu(crate::ops::leaky_relu::LeakyRelu {
            alpha: 3 << 16,
            alpha_scale: 16,
        }),
        8,
        9,
        "a LeakyReLU that grows past its width",
    );
    refused(
        Op::Lut(crate::ops::lut::Lut {
            func: crate::ops::lut::LutFn::Tanh,
            in_shift: 0,
            lo: 0,
            table: vec![0, 1 << 20],
        }),
        8,
        16,
        "a table with entries wider than the output",
    );
    let mut p = P::default();
    let i = p.input(&[3], 8);
    let y = p.node(
        Op::Reduce(crate::ops::reduce::Reduce {
            kind: ReduceKind::Max,
            groups: GroupSpec::Axes {
                shape: vec![3],
                axes: vec![0],
            },
            shift: 1,
        }),
        &[i],
        &[1],
        8,
    );
    p.output(y);
    let e = p.build_unchecked().validate().unwrap_err().to_string();
    assert!(e.contains("takes no rescale"), "{e}");
    // The widest tensors validate allows.
    let mut p = P::default();
    let i = p.input(&[1, 3], 49);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[1, 3], 49);
    p.output(y);
    assert!(p.build_unchecked().validate().is_err());
}
