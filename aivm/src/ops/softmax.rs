//! Softmax over groups of elements: per group, `d = x - max`, an exp table on `d`, the sum, and
//! one division per element. The output keeps the input's layout.

use halo2_proofs::plonk::Error as PlonkError;

use super::group::{Group, GroupSpec, groups_ok};
use super::lut::{LutFn, build_table, rows, shift_signed};
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

/// See [`softmax_i`]; the table is `exp` on `[lo, 0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Softmax {
    pub groups: GroupSpec,
    pub in_shift: i32,
    pub lo: i64,
    pub table: Vec<i64>,
    pub out_scale: u32,
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

/// Integer softmax: per group, `d = x - max`, `t = clamp(rescale(d), lo, 0)`, `e = table[t - lo]`,
/// `y = floor(e·2^out_scale / Σe)`. The maximum's `e` is the table's top entry, so `Σe > 0`.
pub fn softmax_i(
    groups: &[Group],
    x: &[i64],
    in_shift: i32,
    lo: i64,
    table: &[i64],
    out_scale: u32,
) -> Vec<i64> {
    let mut y = vec![0; x.len()];
    for g in groups {
        let m = g.members.iter().map(|&i| x[i]).max().unwrap_or(0);
        let e: Vec<i64> = g
            .members
            .iter()
            .map(|&i| table[(shift_signed(x[i] - m, in_shift).max(lo) - lo) as usize])
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
        let (lo, _hi, table) = build_table(LutFn::Exp, ts, EXP_SCALE);
        let s = q.choose(1.0);
        let op = Op::Softmax(Softmax {
            groups: self.groups.clone(),
            in_shift: sx as i32 - ts as i32,
            lo,
            table,
            out_scale: s,
        });
        Ok(Quantized::real(op, s, q.bits(1.0, s)?))
    }
}

impl IntOp for Softmax {
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
            &self.table,
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
                && self.lo + self.table.len() as i64 - 1 == 0
                && self.in_shift.unsigned_abs() <= 62
                && self.out_scale <= 40,
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        let x = magnitude(ins[0]);
        let len = self.groups.groups().first().map_or(0, |g| g.members.len()) as i128;
        let t = &self.table;
        t.iter().all(|&e| e >= 0)
            && t.last().is_some_and(|&e| e > 0)
            && (self.in_shift >= 0 || ((2 * x) << self.in_shift.unsigned_abs()) < LIMIT)
            && (max_abs(t) << self.out_scale) < LIMIT
            && max_abs(t) * len.max(1) < LIMIT
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
        out_len as u64
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        Some(rows(self.lo, &self.table))
    }

    /// The group maximum, `x - max` shifted to the table's scale, clamped below, looked up in
    /// the exp table, summed, and divided.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (tag, x) = (a.tag()?, a.ins[0]);
        let (in_bits, out_bits) = (a.in_meta[0].bits, a.out.bits);
        let (lo, table) = (self.lo, &self.table);
        let mut out: Vec<Option<Cell>> = vec![None; x.len()];
        let top = table.iter().copied().max().unwrap_or(1).max(1) as i128;
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
                let e = c.v.map(|cv| table[(cv - lo as i128) as usize] as i128);
                es.push(ctx.lut(tag, &c, e)?);
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
    }
}

impl Decode for Softmax {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(Softmax {
            groups: GroupSpec::decode(r)?,
            in_shift: r.i32()?,
            lo: r.i()?,
            table: r.i64s()?,
            out_scale: r.u32()?,
        })
    }
}
