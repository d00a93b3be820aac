//! Each constraint of the circuit is necessary: for every gate polynomial, lookup argument and
//! family of copy constraints, a malicious witness (assigned cells overridden, the instance it
//! claims computed from them) that the circuit rejects through that constraint alone, and that
//! the circuit with that constraint deleted accepts. Most forge the claimed output; the rest
//! forge the input, its commitment or the nonce the proof is bound to.
//!
//! `every_constraint_is_necessary` runs them all, checks that no constraint of the
//! configuration is left without one, and keeps `docs/soundness.md` (the table) up to date.

use ff::Field as _;

use super::*;
use crate::circuit::config::FUNCTION_LOOKUP;
use crate::circuit::ctx::CopyFamily as C;
use crate::ops::group::GroupSpec;
use crate::ops::linear::LinearGeom;
use crate::ops::lut::LutFn;
use crate::ops::reduce::ReduceKind;
use crate::tensor::Tensor;

type Case3 = (Target, &'static str, fn() -> Shown);

/// `y = 4 + x·[1, 2, 3]ᵀ`, rescaled by `2^shift` to `out_bits`.
fn linear(shift: u32, out_bits: u32, x: [i64; 3]) -> Case {
    let mut p = P::default();
    let i = p.input(&[1, 3], 8);
    let geom = LinearGeom::MatMul {
        batch: 1,
        m: 1,
        k: 3,
        n: 1,
    };
    let op = Op::Linear(crate::ops::linear::Linear {
        geom,
        weight: vec![1, 2, 3],
        bias: vec![4],
        shift,
    });
    let y = p.node(op, &[i], &[1, 1], out_bits);
    Case::public(p.output(y).build(), vec![x.to_vec()])
}

fn unary(op: Op, in_bits: u32, out_bits: u32, x: i64, vis: Visibility) -> Case {
    let mut p = P::default();
    let i = p.input(&[1, 1], in_bits);
    let y = p.node(op, &[i], &[1, 1], out_bits);
    Case::new(p.output(y).build(), vec![vec![x]], vis)
}

/// A segment's relu: it reads its input from a link and writes its output to one.
fn link_relu(x: i64) -> Case {
    let mut p = P::default();
    let i = p.input(&[1, 1], 8);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[1, 1], 8);
    let io = crate::circuit::Io {
        task_inputs: 0,
        public_outputs: 0,
    };
    Case::with_io(p.output(y).build(), vec![vec![x]], Visibility::Public, io)
}

/// A stateful program: `y = relu(x)` public, and the state `s` written back as `relu(s)`.
fn state_relu(x: i64, s: i64) -> Case {
    let mut p = P::default();
    let i = p.input(&[1, 1], 8);
    let st = p.input(&[1, 1], 8);
    let y = p.node(Op::Relu(crate::ops::relu::Relu), &[i], &[1, 1], 8);
    let ns = p.node(Op::Relu(crate::ops::relu::Relu), &[st], &[1, 1], 8);
    let mut prog = p.output(y).output(ns).build_unchecked();
    prog.state = true;
    prog.validate().expect("a valid stateful program");
    Case::new(Arc::new(prog), vec![vec![x], vec![s]], Visibility::Public)
}

fn relu(x: i64) -> Case {
    unary(
        Op::Relu(crate::ops::relu::Relu),
        8,
        8,
        x,
        Visibility::Public,
    )
}

fn group3() -> GroupSpec {
    GroupSpec::Axes {
        shape: vec![3],
        axes: vec![0],
    }
}

fn reduce(kind: ReduceKind, bits: u32, out_bits: u32, x: [i64; 3]) -> Case {
    let mut p = P::default();
    let i = p.input(&[3], bits);
    let op = Op::Reduce(crate::ops::reduce::Reduce {
        kind,
        groups: group3(),
        shift: 0,
    });
    let y = p.node(op, &[i], &[1], out_bits);
    Case::public(p.output(y).build(), vec![x.to_vec()])
}

fn argmax() -> Case {
    let mut p = P::default();
    let i = p.input(&[3], 8);
    let y = p.node(
        Op::ArgMax(crate::ops::argmax::ArgMax { groups: group3() }),
        &[i],
        &[1],
        3,
    );
    Case::public(p.output(y).build(), vec![vec![3, 7, 5]])
}

/// ArgMax of `[7, 3, 7]` taking the last maximum (`select_last_index = 1`): 2.
fn argmax_last() -> Case {
    let mut p = P::default();
    let i = p.input(&[3], 8);
    let y = p.node(
        Op::ArgMaxLast(crate::ops::argmax::ArgMaxLast { groups: group3() }),
        &[i],
        &[1],
        3,
    );
    Case::public(p.output(y).build(), vec![vec![7, 3, 7]])
}

/// Softmax of `[3, 1, 2]` with `exp` split in two tables: `u = -(x - max)` in `[0, 8]`, `b = 2`,
/// `B = exp(-l)` on keys 0..4, `A = exp(-4h)` on keys 4..7.
fn softmax_split() -> Case {
    let mut p = P::default();
    let i = p.input(&[3], 8);
    let (split_bits, table) = crate::ops::softmax::split_exp_table(8, 0);
    assert_eq!((split_bits, table.len()), (2, 7));
    let op = Op::SoftmaxSplit(crate::ops::softmax::SoftmaxSplit {
        groups: group3(),
        in_shift: 0,
        lo: -8,
        table,
        out_scale: 8,
        split_bits,
    });
    let y = p.node(op, &[i], &[3], 12);
    Case::public(p.output(y).build(), vec![vec![3, 1, 2]])
}

/// Softmax of `[3, 1, 2]` with a five-entry exp table on `[-4, 0]`.
fn softmax() -> Case {
    let mut p = P::default();
    let i = p.input(&[3], 8);
    let op = Op::Softmax(crate::ops::softmax::Softmax {
        groups: group3(),
        in_shift: 0,
        lo: -4,
        table: vec![1, 3, 8, 22, 64],
        out_scale: 8,
        split_bits: 0,
    });
    let y = p.node(op, &[i], &[3], 12);
    Case::public(p.output(y).build(), vec![vec![3, 1, 2]])
}

fn lut() -> Case {
    let op = Op::Lut(crate::ops::lut::Lut {
        func: LutFn::Sigmoid,
        in_shift: 0,
        lo: -2,
        table: vec![1, 2, 4, 6, 7],
    });
    unary(op, 8, 8, 1, Visibility::Public)
}

/// Rows `[10, 11]`, `[20, 21]`, `[30, 31]` gathered by one index (0).
fn gather() -> Case {
    let mut p = P::default();
    let i = p.input_typed(&[1], 8, DType::I64);
    let table = Tensor::new(vec![3, 2], vec![10, 11, 20, 21, 30, 31]);
    let y = p.node(
        Op::Gather(crate::ops::gather::Gather { table }),
        &[i],
        &[1, 2],
        8,
    );
    Case::public(p.output(y).build(), vec![vec![0]])
}

fn binary_mul() -> Case {
    let mut p = P::default();
    let a = p.input(&[1, 1], 8);
    let b = p.input(&[1, 1], 8);
    let op = Op::Binary(crate::ops::binary::Binary {
        kind: crate::ops::binary::BinKind::Mul,
        la: 0,
        lb: 0,
        shift: 0,
    });
    let y = p.node(op, &[a, b], &[1, 1], 16);
    Case::public(p.output(y).build(), vec![vec![5], vec![-3]])
}

/// `[5, -3]·[2, 7]ᵀ = -11`, by the product chain of MatMul of two activations.
fn matmul_act() -> Case {
    let mut p = P::default();
    let a = p.input(&[1, 2], 8);
    let b = p.input(&[2, 1], 8);
    let op = Op::MatMul(crate::ops::matmul::MatMul {
        geom: crate::ops::matmul::MatGeom {
            a_batch: vec![],
            b_batch: vec![],
            m: 1,
            k: 2,
            n: 1,
        },
        shift: 0,
    });
    let y = p.node(op, &[a, b], &[1, 1], 16);
    Case::public(p.output(y).build(), vec![vec![5, -3], vec![2, 7]])
}

/// An input of `bits` bits passed through to the output (no check but its range check).
fn passthrough(bits: u32) -> Case {
    let mut p = P::default();
    let i = p.input(&[1, 1], bits);
    let y = p.node(
        Op::Copy(crate::ops::copy::CopySpec::Reshape),
        &[i],
        &[1],
        bits,
    );
    Case::public(p.output(y).build(), vec![vec![0]])
}

/// A forged input one past its range, caught only by the lookup of limb `j` (the limb that
/// holds the input's top bit).
fn input_overflow(j: usize) -> Shown {
    let lb = passthrough(8).lb();
    let bits = lb * j as u32 + 1;
    let case = passthrough(bits);
    assert_eq!(case.lb(), lb);
    let row = case.row("range", 0);
    case.forge()
        .set(case.cfg.v, row, 1i128 << bits)
        .check(Target::Lookup(RANGE_LOOKUPS_NAMES[j]))
}

const RANGE_LOOKUPS_NAMES: [&str; 4] = crate::circuit::config::RANGE_LOOKUPS;

/// The field element `(a - r)/d` (not an integer: a quotient wrapped around the field).
fn wrapped(a: i128, r: i128, d: i128) -> Fp {
    (fp(a) - fp(r)) * fp(d).invert().unwrap()
}

fn cases() -> Vec<Case3> {
    use Target::{Copy, Gate, Lookup};
    vec![
        (
            Gate("dot", "acc_next"),
            "Linear [5,-3,7]·[1,2,3]+4 = 24: final accumulator 29",
            || {
                let c = linear(0, 16, [5, -3, 7]);
                let r = c.row("dot", 0);
                c.forge()
                    .set(c.cfg.acc, r + 1, 29)
                    .check(Gate("dot", "acc_next"))
            },
        ),
        (
            Gate("bias", "acc_start"),
            "the same Linear: the chain starts at 11, not the bias 4",
            || {
                let c = linear(0, 16, [5, -3, 7]);
                let r = c.row("dot", 0);
                c.forge()
                    .set(c.cfg.acc, r, 11)
                    .check(Gate("bias", "acc_start"))
            },
        ),
        (
            Copy(C::DotLane),
            "the same Linear: its first operand copied as 6 instead of 5",
            || {
                let c = linear(0, 16, [5, -3, 7]);
                let r = c.row("dot", 0);
                c.forge().set(c.cfg.lane[0], r, 6).check(Copy(C::DotLane))
            },
        ),
        (
            Gate("rescale", "division"),
            "rescale of 30 by 2^4 (= 2 rem 6): quotient 3",
            || {
                let c = linear(4, 12, [5, -3, 9]);
                let r = c.row("rescale", 0);
                assert_eq!((c.get(c.cfg.y, r), c.get(c.cfg.v, r)), (2, 6));
                c.forge()
                    .set(c.cfg.y, r, 3)
                    .check(Gate("rescale", "division"))
            },
        ),
        (
            Gate("rng2", "remainder_limbs"),
            "the same rescale: quotient 1, remainder 22 with the limbs of 6",
            || {
                let c = linear(4, 12, [5, -3, 9]);
                let r = c.row("rescale", 0);
                c.forge()
                    .set(c.cfg.y, r, 1)
                    .set(c.cfg.v, r, 22)
                    .limbs(r, 0, &[6, 0])
                    .check(Gate("rng2", "remainder_limbs"))
            },
        ),
        (
            Gate("rng2", "output_limbs"),
            "the same rescale: remainder 7 and the quotient (38-7)/16 in the field",
            || {
                let c = linear(4, 12, [5, -3, 9]);
                let r = c.row("rescale", 0);
                c.forge()
                    .set(c.cfg.v, r, 7)
                    .set_field(c.cfg.y, r, wrapped(38, 7, 16))
                    .check(Gate("rng2", "output_limbs"))
            },
        ),
        (
            Copy(C::RescaleOutput),
            "a rescale to 16 bits (output checked in its own row): the quotient wrapped in the field",
            || {
                let c = linear(4, 16, [5, -3, 9]);
                let r = c.row("rescale", 0);
                c.forge()
                    .set(c.cfg.v, r, 7)
                    .set_field(c.cfg.y, r, wrapped(38, 7, 16))
                    .check(Copy(C::RescaleOutput))
            },
        ),
        (
            Gate("div_hi", "remainder_below_divisor"),
            "mean of [1,3,4] (= 3): 2 with remainder 3 = the divisor",
            || {
                let c = reduce(ReduceKind::Mean, 8, 12, [1, 3, 4]);
                let r = c.row("rescale", 0);
                assert_eq!((c.get(c.cfg.y, r), c.get(c.cfg.v, r)), (3, 0));
                c.forge()
                    .set(c.cfg.y, r, 2)
                    .set(c.cfg.v, r, 3)
                    .set(c.cfg.v, r + 1, 0)
                    .check(Gate("div_hi", "remainder_below_divisor"))
            },
        ),
        (Gate("mul", "product"), "5·(-3) = -15: product -14", || {
            let c = binary_mul();
            let r = c.row("mul", 0);
            c.forge()
                .set(c.cfg.acc, r, -14)
                .check(Gate("mul", "product"))
        }),
        (
            Gate("pdot", "acc_next"),
            "MatMul [5,-3]·[2,7] = -11: final accumulator -10",
            || {
                let c = matmul_act();
                let r = c.row("pdot", 0);
                assert_eq!(c.get(c.cfg.acc, r + 1), -11);
                c.forge()
                    .set(c.cfg.acc, r + 1, -10)
                    .check(Gate("pdot", "acc_next"))
            },
        ),
        (
            Copy(C::MulOperand),
            "5·(-3): the first factor copied as 6",
            || {
                let c = binary_mul();
                let r = c.row("mul", 0);
                c.forge()
                    .set(c.cfg.lane[0], r, 6)
                    .check(Copy(C::MulOperand))
            },
        ),
        (
            Gate("cmp", "bit"),
            "relu(5): sign bit 2, which selects 10",
            || {
                let c = relu(5);
                let r = c.row("max_c", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 2)
                    .set(c.cfg.v, r, 16)
                    .set(c.cfg.y, r, 10)
                    .check(Gate("cmp", "bit"))
            },
        ),
        (
            Gate("cmp", "sign"),
            "relu(5): sign bit 0 (output 0) with the decomposition of 5",
            || {
                let c = relu(5);
                let r = c.row("max_c", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 0)
                    .set(c.cfg.v, r, 5)
                    .check(Gate("cmp", "sign"))
            },
        ),
        (
            Gate("rng", "limbs"),
            "relu(5): sign bit 0 (output 0), the negative decomposition -6 with zero limbs",
            || {
                let c = relu(5);
                let r = c.row("max_c", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 0)
                    .limbs(r, 0, &[0, 0, 0, 0])
                    .check(Gate("rng", "limbs"))
            },
        ),
        (
            Gate("rng_cont", "limbs_and_rest"),
            "relu(5) on a 40-bit input: sign bit 0, decomposition -6, zero limbs and zero rest",
            || {
                let c = unary(
                    Op::Relu(crate::ops::relu::Relu),
                    40,
                    40,
                    5,
                    Visibility::Public,
                );
                let r = c.row("max_c", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 0)
                    .limbs(r, 0, &[0, 0, 0, 0])
                    .set(c.cfg.v, r + 1, 0)
                    .limbs(r + 1, 0, &[0, 0, 0, 0])
                    .check(Gate("rng_cont", "limbs_and_rest"))
            },
        ),
        (
            Copy(C::CmpOperand),
            "relu(5): the compared value copied as -5",
            || {
                let c = relu(5);
                let r = c.row("max_c", 0);
                c.forge()
                    .set(c.cfg.lane[0], r, -5)
                    .check(Copy(C::CmpOperand))
            },
        ),
        (Gate("max_c", "select"), "relu(5) = 6", || {
            let c = relu(5);
            let r = c.row("max_c", 0);
            c.forge().set(c.cfg.y, r, 6).check(Gate("max_c", "select"))
        }),
        (Gate("min_c", "select"), "clip(5, max 10) = 4", || {
            let op = Op::Clip(crate::ops::clip::Clip {
                lo: None,
                hi: Some(10),
            });
            let c = unary(op, 8, 8, 5, Visibility::Public);
            let r = c.row("min_c", 0);
            c.forge().set(c.cfg.y, r, 4).check(Gate("min_c", "select"))
        }),
        (
            Gate("leaky", "select"),
            "leaky_relu(-8, 0.25) = -2: -1",
            || {
                let c = leaky();
                let r = c.row("leaky", 0);
                c.forge().set(c.cfg.y, r, -1).check(Gate("leaky", "select"))
            },
        ),
        (
            Copy(C::SelectOperand),
            "leaky_relu(-8, 0.25): the negative branch copied as -3",
            || {
                let c = leaky();
                let r = c.row("leaky", 0);
                c.forge()
                    .set(c.cfg.lane[2], r, -3)
                    .check(Copy(C::SelectOperand))
            },
        ),
        (
            Gate("mchain", "product"),
            "max [3,7,5] = 9, the product chain ended at 0",
            || {
                let c = reduce(ReduceKind::Max, 8, 8, [3, 7, 5]);
                let r = c.row("mchain", 0);
                c.forge()
                    .set(c.cfg.y, r, 9)
                    .set(c.cfg.acc, r + 3, 0)
                    .check(Gate("mchain", "product"))
            },
        ),
        (
            Gate("mchain", "same_max"),
            "max [3,7,5] = 3, each row's maximum its own element",
            || {
                let c = reduce(ReduceKind::Max, 8, 8, [3, 7, 5]);
                let r = c.row("mchain", 0);
                c.forge()
                    .set(c.cfg.y, r, 3)
                    .set(c.cfg.y, r + 1, 7)
                    .set(c.cfg.y, r + 2, 5)
                    .set(c.cfg.y, r + 3, 3)
                    .check(Gate("mchain", "same_max"))
            },
        ),
        (
            Gate("mchain", "difference"),
            "max [3,7,5] = 5, the range-checked difference for 7 set to 2",
            || {
                let c = reduce(ReduceKind::Max, 8, 8, [3, 7, 5]);
                let r = c.row("mchain", 0);
                c.forge()
                    .set(c.cfg.y, r, 5)
                    .set(c.cfg.v, r + 1, 2)
                    .set(c.cfg.acc, r + 2, -4)
                    .check(Gate("mchain", "difference"))
            },
        ),
        (
            Copy(C::MaxOperand),
            "max [3,7,5] = 5, the 7 copied into the chain as 4",
            || {
                let c = reduce(ReduceKind::Max, 8, 8, [3, 7, 5]);
                let r = c.row("mchain", 0);
                c.forge()
                    .set(c.cfg.y, r, 5)
                    .set(c.cfg.lane[0], r + 1, 4)
                    .check(Copy(C::MaxOperand))
            },
        ),
        (
            Copy(C::RangeCopy),
            "max of 40-bit [3,7,5] = 5, the deferred range check of -2 made on a copy holding 2",
            || {
                let c = reduce(ReduceKind::Max, 40, 40, [3, 7, 5]);
                let r = c.row("mchain", 0);
                // Three deferred checks of two rows each follow the end row.
                c.forge()
                    .set(c.cfg.y, r, 5)
                    .set(c.cfg.v, r + 4 + 2, 2)
                    .check(Copy(C::RangeCopy))
            },
        ),
        (
            Gate("argmax", "one_hot_bit"),
            "argmax [3,7,5] = 0 with weights (0, 2, -1) and maximum 9",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r + 1, 2)
                    .set(l[1], r + 2, -1)
                    .set(c.cfg.y, r, 9)
                    .check(Gate("argmax", "one_hot_bit"))
            },
        ),
        (
            Gate("argmax", "prefix"),
            "argmax [3,7,5] = 2 (maximum 5), the prefix raised to 3 before the 7",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r + 1, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 5)
                    .set(l[2], r + 1, 3)
                    .set(l[2], r + 3, 1)
                    .check(Gate("argmax", "prefix"))
            },
        ),
        (
            Gate("argmax", "sum"),
            "argmax [3,7,5] = 0, the selected sum set to 7",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r, 1)
                    .set(l[1], r + 1, 0)
                    .set(l[3], r + 3, 7)
                    .check(Gate("argmax", "sum"))
            },
        ),
        (
            Gate("argmax", "index"),
            "argmax [3,7,5] = 2, the index chain ending at 2",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge().set(l[4], r + 3, 2).check(Gate("argmax", "index"))
            },
        ),
        (
            Gate("argmax", "same_max"),
            "argmax [3,7,5] = 0: maximum 7 in the rows, 3 at the end",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r, 1)
                    .set(l[1], r + 1, 0)
                    .set(c.cfg.y, r + 3, 3)
                    .check(Gate("argmax", "same_max"))
            },
        ),
        (
            Gate("argmax", "order"),
            "argmax [3,7,5] = 2 (maximum 5), the 7's ordering slack set to 0",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r + 1, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 5)
                    .set(c.cfg.v, r + 1, 0)
                    .check(Gate("argmax", "order"))
            },
        ),
        (
            Gate("argmax", "order"),
            "last argmax [7,3,7] = 2 (walked backwards): the first 7 claimed, the last 7's slack 0",
            || {
                let c = argmax_last();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                assert_eq!(c.get(l[4], r + 3), 2);
                c.forge()
                    .set(l[1], r, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.v, r, 0)
                    .check(Gate("argmax", "order"))
            },
        ),
        (
            Copy(C::ArgmaxOperand),
            "argmax [3,7,5] = 2, the 7 copied into the chain as 4",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[0], r + 1, 4)
                    .set(l[1], r + 1, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 5)
                    .check(Copy(C::ArgmaxOperand))
            },
        ),
        (
            Gate("argmax_start", "prefix_zero"),
            "argmax [3,7,5] = 3 (outside the group): prefix from -1, two ones, maximum 12",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[2], r, -1)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 12)
                    .check(Gate("argmax_start", "prefix_zero"))
            },
        ),
        (
            Gate("argmax_start", "sum_zero"),
            "argmax [3,7,5] = 0, the selected sum starting at 4",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r, 1)
                    .set(l[1], r + 1, 0)
                    .set(l[3], r, 4)
                    .check(Gate("argmax_start", "sum_zero"))
            },
        ),
        (
            Gate("argmax_start", "index_zero"),
            "argmax [3,7,5] = 6, the index chain starting at 5",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[4], r, 5)
                    .check(Gate("argmax_start", "index_zero"))
            },
        ),
        (
            Gate("argmax_end", "exactly_one"),
            "argmax [3,7,5] = 2 with ones at 0 and 2 (maximum 8)",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r, 1)
                    .set(l[1], r + 1, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 8)
                    .check(Gate("argmax_end", "exactly_one"))
            },
        ),
        (
            Gate("argmax_end", "max_taken"),
            "argmax [3,7,5] = 2 with a maximum of 8 that no element has",
            || {
                let c = argmax();
                let (r, l) = (c.row("argmax", 0), c.cfg.lane);
                c.forge()
                    .set(l[1], r + 1, 0)
                    .set(l[1], r + 2, 1)
                    .set(c.cfg.y, r, 8)
                    .check(Gate("argmax_end", "max_taken"))
            },
        ),
        (
            Gate("sdiv", "division"),
            "softmax [3,1,2] = [174, 21, 59]/256: first output 175",
            || {
                let c = softmax();
                let r = c.row("sdiv", 0);
                assert_eq!(c.get(c.cfg.y, r), 174);
                c.forge()
                    .set(c.cfg.y, r, 175)
                    .check(Gate("sdiv", "division"))
            },
        ),
        (
            Gate("sdiv", "remainder_below_sum"),
            "the same softmax: first output 173 with remainder 122 > the sum 94",
            || {
                let c = softmax();
                let r = c.row("sdiv", 0);
                assert_eq!(c.get(c.cfg.v, r), 28);
                c.forge()
                    .set(c.cfg.y, r, 173)
                    .set(c.cfg.v, r, 122)
                    .set(c.cfg.v, r + 1, 0)
                    .check(Gate("sdiv", "remainder_below_sum"))
            },
        ),
        (
            Copy(C::SoftmaxNumerator),
            "the same softmax: the first exp value copied as 65",
            || {
                let c = softmax();
                let r = c.row("sdiv", 0);
                c.forge()
                    .set(c.cfg.lane[0], r, 65)
                    .check(Copy(C::SoftmaxNumerator))
            },
        ),
        (
            Copy(C::SoftmaxSum),
            "the same softmax: the sum copied as 95",
            || {
                let c = softmax();
                let r = c.row("sdiv", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 95)
                    .check(Copy(C::SoftmaxSum))
            },
        ),
        (Lookup(FUNCTION_LOOKUP), "sigmoid table at 1 = 6: 5", || {
            let c = lut();
            let r = c.row("lut", 0);
            c.forge().set(c.cfg.y, r, 5).check(Lookup(FUNCTION_LOOKUP))
        }),
        (
            Copy(C::LutOperand),
            "the same table: looked up at 2 (= 7) instead of 1",
            || {
                let c = lut();
                let r = c.row("lut", 0);
                c.forge()
                    .set(c.cfg.lane[0], r, 2)
                    .set(c.cfg.y, r, 7)
                    .check(Copy(C::LutOperand))
            },
        ),
        (
            Gate("gather", "key"),
            "row 0 of [[10,11],[20,21],[30,31]]: key 2, so [20, 11]",
            || {
                let c = gather();
                let r = c.row("gather", 0);
                c.forge()
                    .set(c.cfg.lane[0], r, 2)
                    .check(Gate("gather", "key"))
            },
        ),
        (
            Copy(C::GatherIndex),
            "the same gather: index copied as 1 into the first row, so [20, 11]",
            || {
                let c = gather();
                let r = c.row("gather", 0);
                c.forge()
                    .set(c.cfg.lane[1], r, 1)
                    .check(Copy(C::GatherIndex))
            },
        ),
        (
            Lookup(RANGE_LOOKUPS_NAMES[0]),
            "a 1-bit input 0 claimed as 2",
            || input_overflow(0),
        ),
        (
            Lookup(RANGE_LOOKUPS_NAMES[0]),
            "split softmax of [3,1,2]: exp(-1) as B[3]·A[1] = exp(-7), key 3 in B's part, l = 5",
            || {
                let c = softmax_split();
                // The third element (u = 1): honest key 4 + 0, l = 1.
                let r = c.row("split_exp", 2);
                assert_eq!(c.get(c.cfg.v, r), 4);
                c.forge()
                    .set(c.cfg.v, r, 3)
                    .check(Lookup(RANGE_LOOKUPS_NAMES[0]))
            },
        ),
        (
            Lookup(RANGE_LOOKUPS_NAMES[1]),
            "an input of limb width + 1 bits one past its range",
            || input_overflow(1),
        ),
        (
            Lookup(RANGE_LOOKUPS_NAMES[2]),
            "an input of 2 limb widths + 1 bits one past its range",
            || input_overflow(2),
        ),
        (
            Lookup(RANGE_LOOKUPS_NAMES[3]),
            "an input of 3 limb widths + 1 bits one past its range",
            || input_overflow(3),
        ),
        (
            Copy(C::PublicInput),
            "relu(5) claimed for the public input 6",
            || {
                let c = relu(5);
                let i = NONCE_ROWS;
                c.forge()
                    .instance(move |inst| inst[i] = fp(6))
                    .check(Copy(C::PublicInput))
            },
        ),
        (Copy(C::Output), "relu(5) = 6 in the instance", || {
            let c = relu(5);
            c.forge()
                .instance(|inst| *inst.last_mut().unwrap() = fp(6))
                .check(Copy(C::Output))
        }),
        (
            Copy(C::Nonce),
            "a witness made for one nonce, claimed for another (high half + 1)",
            || {
                let c = relu(5);
                let row = c.circuit.generate_witness().unwrap();
                let [lo, hi] = nonce_fields(&[7; 32]);
                c.forge()
                    .set_field(c.cfg.acc, row, lo)
                    .set_field(c.cfg.y, row, hi)
                    .instance(|inst| inst[1] += Fp::one())
                    .check(Copy(C::Nonce))
            },
        ),
        (
            Copy(C::Commitment),
            "hashed relu(5) with another input commitment",
            || {
                let c = unary(
                    Op::Relu(crate::ops::relu::Relu),
                    8,
                    8,
                    5,
                    Visibility::Hashed,
                );
                c.forge()
                    .instance(|inst| inst[NONCE_ROWS] += Fp::one())
                    .check(Copy(C::Commitment))
            },
        ),
        (
            Copy(C::PackLane),
            "hashed relu(5) computed on 5 with the commitment of 6: 6 copied into the packing",
            || {
                let c = unary(
                    Op::Relu(crate::ops::relu::Relu),
                    8,
                    8,
                    5,
                    Visibility::Hashed,
                );
                let r = c.row("pack", 0);
                c.forge().set(c.cfg.lane[0], r, 6).check(Copy(C::PackLane))
            },
        ),
        (
            Copy(C::PackLane),
            "a segment's relu(5) whose output link commits to 6: 6 copied into the link's packing",
            || {
                let c = link_relu(5);
                // The input link is packed first, the output link second.
                let r = c.row("pack", 1);
                c.forge().set(c.cfg.lane[0], r, 6).check(Copy(C::PackLane))
            },
        ),
        (
            Copy(C::Commitment),
            "a segment's relu(5) claiming another commitment for the link it reads",
            || {
                let c = link_relu(5);
                c.forge()
                    .instance(|inst| inst[NONCE_ROWS] += Fp::one())
                    .check(Copy(C::Commitment))
            },
        ),
        (
            Copy(C::PackLane),
            "a stateful relu whose new state relu(5) commits to 6: 6 copied into the state's packing",
            || {
                let c = state_relu(3, 5);
                // The old state is packed first, the new state second.
                let r = c.row("pack", 1);
                c.forge().set(c.cfg.lane[0], r, 6).check(Copy(C::PackLane))
            },
        ),
        (
            Copy(C::Commitment),
            "a stateful relu claiming another old state's commitment",
            || {
                let c = state_relu(3, 5);
                // After the nonce and the public input x.
                c.forge()
                    .instance(|inst| inst[NONCE_ROWS + 1] += Fp::one())
                    .check(Copy(C::Commitment))
            },
        ),
        (
            Copy(C::HashInput),
            "hashed relu(5) with the commitment of a packed element one higher",
            || {
                let c = unary(
                    Op::Relu(crate::ops::relu::Relu),
                    8,
                    8,
                    5,
                    Visibility::Hashed,
                );
                let packed = c.honest.values[&(c.cfg.acc, c.laid.packed_rows[0][0])];
                let row = c.circuit.generate_witness().unwrap();
                let forged = packed + Fp::one();
                c.forge()
                    .set_field(c.cfg.lane[0], row, forged)
                    .instance(move |inst| inst[NONCE_ROWS] = commit(Fp::from(SALT), &[forged]))
                    .check(Copy(C::HashInput))
            },
        ),
    ]
}

fn leaky() -> Case {
    let op = Op::LeakyRelu(crate::ops::leaky_relu::LeakyRelu {
        alpha: 1 << 14,
        alpha_scale: 16,
    });
    unary(op, 8, 8, -8, Visibility::Public)
}

/// Gates of the Poseidon chip (halo2_gadgets' `Pow5Chip`), which this suite does not mutate.
const UPSTREAM: &str = "The Poseidon chip's own gates (`full round`, `partial rounds`, `pad-and-add`) \
come from `halo2_gadgets` 0.6 (`Pow5Chip`, the chip Zcash's Orchard circuit uses, audited with it); \
they cannot be switched off from outside the chip. What binds the commitment to the inputs on our \
side is covered above: the packing lanes, the copies into the hash and the commitment's instance cell, \
and `hashed_inputs_commit_injectively` (no two inputs in range pack alike).";

#[test]
fn every_constraint_is_necessary() {
    let cfg = config();
    let mut rows = Vec::new();
    let all = cases();
    for (target, what, run) in &all {
        let shown = run();
        assert!(
            shown.instance_forged,
            "{target}: the forgery claims the honest instance"
        );
        let forged = if shown.output_forged {
            "output"
        } else {
            "input, commitment or nonce"
        };
        rows.push(format!("| {target} | {what} | {forged} |"));
    }
    // No constraint without a forgery.
    let covered: Vec<Target> = all.iter().map(|c| c.0).collect();
    let mut missing = Vec::new();
    for g in &cfg.gate_info {
        for p in &g.polys {
            if !covered.contains(&Target::Gate(g.name, p)) {
                missing.push(Target::Gate(g.name, p).to_string());
            }
        }
    }
    for l in &cfg.lookup_names {
        if !covered.contains(&Target::Lookup(l)) {
            missing.push(Target::Lookup(l).to_string());
        }
    }
    for f in C::ALL {
        if !covered.contains(&Target::Copy(f)) {
            missing.push(Target::Copy(f).to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "constraints without a forgery: {missing:?}"
    );
    let table = format!(
        "# Soundness: every constraint is necessary\n\n\
         Generated by `cargo test -p lightchain-aivm every_constraint_is_necessary` \
         (`aivm/src/circuit/tests/forgeries.rs`); do not edit by hand.\n\n\
         For each gate polynomial, lookup argument and family of copy constraints of the AIVM \
         circuit, a malicious witness: assigned cells overridden (later cells computed from the \
         forged ones, as a cheating prover would) and the instance it claims. MockProver rejects \
         it, and every failure it reports is that constraint's; with that constraint deleted \
         from the circuit, MockProver accepts it. \"Forges\" says what the accepted witness \
         would have proven wrongly.\n\n\
         | constraint | forgery | forges |\n|---|---|---|\n{}\n\n{UPSTREAM}\n",
        rows.join("\n")
    );
    let path = crate::circuit::tests::manifest_dir().join("../docs/soundness.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if old != table {
        assert!(
            std::env::var_os("CI").is_none(),
            "docs/soundness.md is out of date: run this test locally and commit it"
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, table).unwrap();
    }
}
