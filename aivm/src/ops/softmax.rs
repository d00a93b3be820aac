//! Softmax over groups of elements: per group, `d = x - max`, `exp(d)` by table, the sum, and
//! one division per element. The output keeps the input's layout.
//!
//! Two ops share this module. [`Softmax`] (the first encoding, still read) looks `exp` up in one
//! table over the whole clamped domain, 3,073 rows at the default scale, which alone sets `k` for
//! small models. [`SoftmaxSplit`], what quantization produces now, writes `u = -d` as
//! `h·2^b + l` and takes `exp(-u) = A[h]·B[l]` from two tables of a few dozen rows each: the
//! prover supplies `h` as a key into `A`'s part of the table, `l = u - 2^b·h` is range-checked to
//! `b` bits (which also keeps the key out of `B`'s part), and the product is rescaled.

use halo2_proofs::plonk::Error as PlonkError;

use super::group::{Group, GroupSpec, groups_ok};
use super::lut::{LutFn, rows, shift_signed};
use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, max_abs,
    params_if, signed_bits,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::{norm_axis, numel};
use crate::wire::{R, W};

const KIND: &str = "softmax";

/// The scale of the exp table's entries.
const EXP_SCALE: u32 = 16;

pub const ONNX: &[(&str, Lowering)] = &[("Softmax", lower)];

/// The float op: the groups each softmax normalises.
#[derive(Clone, Debug, PartialEq)]
pub struct FSoftmax {
    pub groups: GroupSpec,
}

/// See [`softmax_i`]. Without `SPLIT` the table is `exp` on `[lo, 0]`. With `SPLIT`, for
/// `u = -d` in `[0, -lo]`: `exp(-u) = rescale(A[u >> b]·B[u mod 2^b], EXP_SCALE)`, the table
/// holding `B` (keys `0..2^b`) then `A` (keys `2^b..`), `b = split_bits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftmaxOf<const SPLIT: bool> {
    pub groups: GroupSpec,
    pub in_shift: i32,
    pub lo: i64,
    pub table: Vec<i64>,
    pub out_scale: u32,
    /// `b`, with `SPLIT` (0 otherwise).
    pub split_bits: u32,
}

/// Softmax with one exp table (the first encoding).
pub type Softmax = SoftmaxOf<false>;
/// Softmax with exp as the product of two small tables.
pub type SoftmaxSplit = SoftmaxOf<true>;

impl<const SPLIT: bool> SoftmaxOf<SPLIT> {
    /// `exp` of a clamped difference `t` in `[lo, 0]`, at `EXP_SCALE`.
    fn exp(&self, t: i64) -> i64 {
        if SPLIT {
            let (u, b) = (-t, self.split_bits);
            let (h, l) = ((u >> b) as usize, (u & ((1 << b) - 1)) as usize);
            super::rescale(self.table[(1 << b) + h] * self.table[l], EXP_SCALE)
        } else {
            self.table[(t - self.lo) as usize]
        }
    }

    /// The table's layout fits its parameters.
    fn table_ok(&self) -> bool {
        if !SPLIT {
            return self.split_bits == 0 && self.lo + self.table.len() as i64 - 1 == 0;
        }
        let b = self.split_bits;
        (1..=16).contains(&b)
            && self.lo <= 0
            && self.lo > -(1 << 40)
            && self.table.len() as i64 == (1 << b) + ((-self.lo) >> b) + 1
    }

    /// The largest `exp` value (the sum's bound per element).
    fn top(&self) -> i128 {
        if SPLIT {
            let b = 1usize << self.split_bits;
            let (bt, at) = self.table.split_at(b.min(self.table.len()));
            ((max_abs(at) * max_abs(bt)) >> EXP_SCALE) + 1
        } else {
            max_abs(&self.table)
        }
    }
}

/// `exp(-u)` for `u` in `[0, n_u]` (integers at `scale`) as two tables at `EXP_SCALE`: `B` on
/// `[0, 2^b)` then `A[h] = exp(-h·2^b)` for `h` in `[0, n_u >> b]`, with `b` half of `n_u`'s bits.
pub fn split_exp_table(n_u: i64, scale: u32) -> (u32, Vec<i64>) {
    let bits = 64 - (n_u.max(1) as u64).leading_zeros();
    let b = bits.div_ceil(2).max(1);
    let e = |u: i64| super::quantize((-super::dequantize(u, scale)).exp(), EXP_SCALE);
    let table = (0..1i64 << b)
        .map(e)
        .chain((0..=n_u >> b).map(|h| e(h << b)))
        .collect();
    (b, table)
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let default = if n.opset >= 13 { -1 } else { 1 };
    let a =
        norm_axis(n.attr_i("axis", default), s.len()).ok_or_else(|| n.err("axis out of range"))?;
    let axes = if n.opset >= 13 {
        vec![a]
    } else {
        (a..s.len()).collect()
    };
    let groups = GroupSpec::Axes { shape: s, axes };
    cx.unary(n, x, FOp::Softmax(FSoftmax { groups }))
}

/// Float softmax over each group; output has the input's layout.
pub fn softmax_f(groups: &[Group], x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for g in groups {
        let m = g
            .members
            .iter()
            .map(|&i| x[i])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = g.members.iter().map(|&i| (x[i] - m).exp()).sum();
        for &i in &g.members {
            y[i] = (x[i] - m).exp() / s;
        }
    }
    y
}

/// Integer softmax: per group, `d = x - max`, `t = clamp(rescale(d), lo, 0)`, `e = exp(t)` (by
/// table), `y = floor(e·2^out_scale / Σe)`. The maximum's `e` is `exp(0) > 0`, so `Σe > 0`.
pub fn softmax_i(
    groups: &[Group],
    x: &[i64],
    in_shift: i32,
    lo: i64,
    exp: impl Fn(i64) -> i64,
    out_scale: u32,
) -> Vec<i64> {
    let mut y = vec![0; x.len()];
    for g in groups {
        let m = g.members.iter().map(|&i| x[i]).max().unwrap_or(0);
        let e: Vec<i64> = g
            .members
            .iter()
            .map(|&i| exp(shift_signed(x[i] - m, in_shift).max(lo)))
            .collect();
        let s: i64 = e.iter().sum();
        for (&i, &ei) in g.members.iter().zip(&e) {
            y[i] = (ei << out_scale) / s;
        }
    }
    y
}

impl FloatOp for FSoftmax {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        softmax_f(&self.groups.groups(), a.ins[0])
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let sx = q.meta(n.inputs[0]).scale;
        let top = LutFn::Exp.table_scale();
        let ts = q.cfg.fixed_scale.map_or(top, |s| s.min(top));
        let lo = (LutFn::Exp.domain().0 * (1u64 << ts) as f64).floor() as i64;
        let (split_bits, table) = split_exp_table(-lo, ts);
        let s = q.choose(1.0);
        let op = Op::SoftmaxSplit(SoftmaxSplit {
            groups: self.groups.clone(),
            in_shift: sx as i32 - ts as i32,
            lo,
            table,
            out_scale: s,
            split_bits,
        });
        Ok(Quantized::real(op, s, q.bits(1.0, s)?))
    }
}

impl<const SPLIT: bool> IntOp for SoftmaxOf<SPLIT> {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        let g = self.groups.groups();
        Ok(softmax_i(
            &g,
            a.ins[0],
            self.in_shift,
            self.lo,
            |t| self.exp(t),
            self.out_scale,
        ))
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let in_len = numel(&ins[0].shape);
        params_if(
            in_len == numel(&out.shape)
                && matches!(self.groups, GroupSpec::Axes { .. })
                && groups_ok(&self.groups, in_len)
                && !self.table.is_empty()
                && self.table_ok()
                && self.in_shift.unsigned_abs() <= 62
                && self.out_scale <= 40,
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        let x = magnitude(ins[0]);
        let len = self.groups.groups().first().map_or(0, |g| g.members.len()) as i128;
        let t = &self.table;
        let top = self.top();
        t.iter().all(|&e| e >= 0)
            && (!SPLIT || max_abs(t) < 1 << 30)
            && self.exp(0) > 0
            && (self.in_shift >= 0 || ((2 * x) << self.in_shift.unsigned_abs()) < LIMIT)
            && (top << self.out_scale) < LIMIT
            && top * len.max(1) < LIMIT
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        Some(signed_bits(1i128 << self.out_scale))
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn params(&self) -> u64 {
        0
    }

    fn lookups(&self, out_len: usize) -> u64 {
        out_len as u64 * if SPLIT { 2 } else { 1 }
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        Some(rows(if SPLIT { 0 } else { self.lo }, &self.table))
    }

    /// The group maximum, `x - max` shifted to the table's scale, clamped below, `exp` by the
    /// table (or the two tables and a product), summed, and divided.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (tag, x) = (a.tag()?, a.ins[0]);
        let (in_bits, out_bits) = (a.in_meta[0].bits, a.out.bits);
        let lo = self.lo;
        let mut out: Vec<Option<Cell>> = vec![None; x.len()];
        let top = self.top().max(1);
        for g in self.groups.groups() {
            let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
            let m = ctx.max_of(&xs, in_bits)?;
            let mut es = Vec::with_capacity(xs.len());
            for xi in &xs {
                let (t, t_bits) = if self.in_shift >= 0 {
                    let bits = in_bits + 1;
                    let shift = self.in_shift as u32;
                    (ctx.affine(0, &[(1, *xi), (-1, &m)], shift, bits)?, bits)
                } else {
                    let k = self.in_shift.unsigned_abs();
                    let bits = in_bits + 1 + k;
                    let terms = [(1i128 << k, *xi), (-(1i128 << k), &m)];
                    (ctx.affine(0, &terms, 0, bits)?, bits)
                };
                let bits = t_bits.max(signed_bits(lo as i128)) + 1;
                let c = ctx.cmp_const(&t, lo as i128, false, bits)?;
                es.push(if SPLIT {
                    self.split_exp(ctx, tag, &c)?
                } else {
                    let e = c.v.map(|cv| self.exp(cv as i64) as i128);
                    ctx.lut(tag, &c, e)?
                });
            }
            let terms: Vec<(i128, &Cell)> = es.iter().map(|e| (1, e)).collect();
            let (_, s) = ctx.dot(0, &terms)?;
            let sbits = signed_bits(top * es.len() as i128);
            for (&i, e) in g.members.iter().zip(&es) {
                out[i] = Some(ctx.softmax_div(e, &s, self.out_scale, sbits, out_bits)?);
            }
        }
        out.into_iter()
            .map(|c| c.ok_or(PlonkError::Synthesis))
            .collect()
    }

    fn encode(&self, w: &mut W) {
        self.groups.encode(w);
        w.i(self.in_shift as i64);
        w.i(self.lo);
        w.i64s(&self.table);
        w.u(self.out_scale as u64);
        if SPLIT {
            w.u(self.split_bits as u64);
        }
    }
}

impl<const SPLIT: bool> Decode for SoftmaxOf<SPLIT> {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(SoftmaxOf {
            groups: GroupSpec::decode(r)?,
            in_shift: r.i32()?,
            lo: r.i()?,
            table: r.i64s()?,
            out_scale: r.u32()?,
            split_bits: if SPLIT { r.u32()? } else { 0 },
        })
    }
}

impl<const SPLIT: bool> SoftmaxOf<SPLIT> {
    /// With `SPLIT`, `exp(c)` for a clamped difference `c` in `[lo, 0]`: the prover's key `2^b + h` looked up
    /// in `A`'s part, `l = -c - 2^b·key + 2^(2b)` (that is `u - 2^b·h`) range-checked to `b`
    /// bits, which holds only for the key of `h = u >> b` (a key in `B`'s part makes `l` at least
    /// `2^b`), `l` looked up in `B`'s part, and the product rescaled to `EXP_SCALE`.
    fn split_exp(&self, ctx: &mut Ctx, tag: u64, c: &Cell) -> Result<Cell, PlonkError> {
        let scope = ctx.enter("split_exp", ctx.row);
        let b = self.split_bits;
        let base = 1i128 << b;
        let u = c.v.map(|cv| -cv);
        let h = u.map(|u| u >> b);
        let row = ctx.next_row();
        let key = ctx.advice(ctx.cfg.v, row, h.map(|h| base + h))?;
        let ea = key
            .v
            .and_then(|k| self.table.get(k as usize))
            .map(|&e| e as i128);
        let ea = ctx.lut(tag, &key, ea)?;
        let (_, l) = ctx.dot(base * base, &[(-1, c), (-base, &key)])?;
        let l = ctx.range_copy(&l, 0, b)?;
        let eb =
            l.v.and_then(|l| self.table.get(l as usize))
                .map(|&e| e as i128);
        let eb = ctx.lut(tag, &l, eb)?;
        let e = ctx.mul(&ea, &eb, EXP_SCALE, signed_bits(self.top()) + 1);
        ctx.leave(scope);
        e
    }
}
