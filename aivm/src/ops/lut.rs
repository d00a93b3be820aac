//! Nonlinear functions as lookup tables over a clamped, rescaled input domain. The table is
//! computed once, at quantization, and stored in the program, so every validator uses the same
//! integers whatever its libm does.

use halo2_proofs::plonk::Error as PlonkError;
use serde::{Deserialize, Serialize};

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, map_cells,
    params_if, table_bits,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::numel;
use crate::wire::{R, W};

const KIND: &str = "lut";

pub const ONNX: &[(&str, Lowering)] = &[
    ("Sigmoid", sigmoid),
    ("Tanh", tanh),
    ("Erf", erf),
    ("Gelu", gelu),
];

fn sigmoid(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    cx.unary(n, n.input(0)?, FOp::Lut(LutFn::Sigmoid))
}

fn tanh(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    cx.unary(n, n.input(0)?, FOp::Lut(LutFn::Tanh))
}

fn erf(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    cx.unary(n, n.input(0)?, FOp::Lut(LutFn::Erf))
}

/// `Gelu` (opset 20): `x · Φ(x)`, with `Φ` the standard normal distribution function
/// (`approximate = "none"`) or its tanh approximation (`"tanh"`). `Φ` saturates, so it is a
/// table; `x` is not, so the product is a multiplication of two activations.
fn gelu(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let cdf = match n.attr_s("approximate").as_deref() {
        None | Some("none") => LutFn::NormCdf,
        Some("tanh") => LutFn::TanhCdf,
        Some(other) => return Err(n.unsupported(&format!("approximate = \"{other}\""))),
    };
    let x = n.input(0)?;
    let id = cx.float_act(&x, n)?;
    let shape = cx.shape(&x);
    let phi = cx.push_part(n, "cdf", FOp::Lut(cdf), vec![id], shape.clone());
    Ok(cx.push(
        n,
        FOp::Binary(super::binary::BinKind::Mul),
        vec![id, phi],
        shape,
        crate::ir::DType::F32,
    ))
}

/// The integer op: `table[clamp(shift_signed(x, in_shift), lo, lo + len - 1) - lo]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lut {
    pub func: LutFn,
    pub in_shift: i32,
    pub lo: i64,
    pub table: Vec<i64>,
}

/// A tabulated function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LutFn {
    Sigmoid,
    Tanh,
    /// `exp(x)` on `x <= 0`, used by softmax.
    Exp,
    /// `1/sqrt(x)` on `x > 0`, used by LayerNormalization. Its domain comes from calibration
    /// (see [`build_table_on`]); at zero it takes the value half a step up.
    Rsqrt,
    /// The error function.
    Erf,
    /// `Φ(x) = (1 + erf(x/√2))/2`, the standard normal distribution function (exact `Gelu`).
    NormCdf,
    /// `(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2` (`Gelu` with `approximate = "tanh"`).
    TanhCdf,
}

impl LutFn {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            LutFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            LutFn::Tanh => x.tanh(),
            LutFn::Exp => x.exp(),
            LutFn::Rsqrt => 1.0 / x.sqrt(),
            LutFn::Erf => libm::erf(x),
            LutFn::NormCdf => 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            LutFn::TanhCdf => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }

    /// The input interval outside of which the function is treated as constant (for rsqrt, a
    /// default; quantization sizes its table from the calibrated input instead).
    pub fn domain(self) -> (f64, f64) {
        match self {
            LutFn::Sigmoid => (-10.0, 10.0),
            LutFn::Tanh => (-5.0, 5.0),
            LutFn::Exp => (-12.0, 0.0),
            LutFn::Rsqrt => (0.0, 4.0),
            // erf(4) and Φ(6) are within 2e-8 and 1e-9 of 1.
            LutFn::Erf => (-4.0, 4.0),
            LutFn::NormCdf | LutFn::TanhCdf => (-6.0, 6.0),
        }
    }

    /// Input scale of the table: steeper functions get finer steps (tanh's slope is up to 1,
    /// sigmoid's up to 1/4, erf's up to 1.13, Φ's up to 0.4; softmax must keep close logits
    /// apart). Tables are 1,281 (sigmoid, tanh), 3,073 (exp), 1,025 (erf) and 769 (Φ) rows.
    pub fn table_scale(self) -> u32 {
        match self {
            LutFn::Sigmoid => 6,
            LutFn::Tanh => 7,
            LutFn::Exp => 8,
            LutFn::Rsqrt => 9,
            LutFn::Erf => 7,
            LutFn::NormCdf | LutFn::TanhCdf => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LutFn::Sigmoid => "sigmoid",
            LutFn::Tanh => "tanh",
            LutFn::Exp => "exp",
            LutFn::Rsqrt => "rsqrt",
            LutFn::Erf => "erf",
            LutFn::NormCdf => "normal-cdf",
            LutFn::TanhCdf => "tanh-cdf",
        }
    }
}

/// Rescale by a signed shift: right shift with round-half-up for `shift > 0`, exact left shift
/// for `shift < 0`.
#[inline]
pub fn shift_signed(v: i64, shift: i32) -> i64 {
    if shift >= 0 {
        super::rescale(v, shift as u32)
    } else {
        v << (-shift) as u32
    }
}

/// Builds the table of `f` for integer inputs `lo..=hi` at `in_scale`, quantized at `out_scale`.
pub fn build_table(f: LutFn, in_scale: u32, out_scale: u32) -> (i64, i64, Vec<i64>) {
    build_table_on(f, f.domain(), in_scale, out_scale, i64::MAX)
}

/// [`build_table`] over the input interval `(dlo, dhi)`, with entries capped at `±cap` (the
/// output tensor's range). Rsqrt's pole is replaced by its value half a step above zero.
pub fn build_table_on(
    f: LutFn,
    (dlo, dhi): (f64, f64),
    in_scale: u32,
    out_scale: u32,
    cap: i64,
) -> (i64, i64, Vec<i64>) {
    let lo = (dlo * (1u64 << in_scale) as f64).floor() as i64;
    let hi = (dhi * (1u64 << in_scale) as f64).ceil() as i64;
    let half_step = 0.5 / (1u64 << in_scale) as f64;
    let table = (lo..=hi)
        .map(|c| {
            let mut x = super::dequantize(c, in_scale);
            if f == LutFn::Rsqrt {
                x = x.max(half_step);
            }
            super::quantize(f.apply(x), out_scale).clamp(-cap, cap)
        })
        .collect();
    (lo, hi, table)
}

/// Integer evaluation: `table[clamp(shift_signed(x), lo, lo + len - 1) - lo]`.
pub fn eval_i(x: &[i64], in_shift: i32, lo: i64, table: &[i64]) -> Vec<i64> {
    let hi = lo + table.len() as i64 - 1;
    x.iter()
        .map(|&v| table[(shift_signed(v, in_shift).clamp(lo, hi) - lo) as usize])
        .collect()
}

/// The table's `(input, output)` rows, from its lowest input `lo`.
pub fn rows(lo: i64, table: &[i64]) -> Vec<(i128, i128)> {
    table
        .iter()
        .enumerate()
        .map(|(i, &v)| (lo as i128 + i as i128, v as i128))
        .collect()
}

impl FloatOp for LutFn {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        a.ins[0].iter().map(|&v| self.apply(v)).collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let sx = q.meta(n.inputs[0]).scale;
        let (ts, s, bits, (lo, _hi, table)) = match self {
            LutFn::Rsqrt => {
                // The table spans the calibrated input range (with headroom) in at most 2,048
                // steps; entries are capped at the output tensor's range.
                let m_in = (q.max_abs(n.inputs[0]) * q.cfg.headroom).max(f64::MIN_POSITIVE);
                let fit = (2047.0 / m_in).log2().floor().clamp(0.0, 14.0) as u32;
                let ts = q.cfg.fixed_scale.map_or(fit, |s| s.min(fit));
                let m_out = q.max_abs(n.output);
                let s = q.choose(m_out);
                let bits = q.bits(m_out, s)?;
                let cap = (1i64 << (bits - 1)) - 1;
                (ts, s, bits, build_table_on(*self, (0.0, m_in), ts, s, cap))
            }
            LutFn::Sigmoid
            | LutFn::Tanh
            | LutFn::Exp
            | LutFn::Erf
            | LutFn::NormCdf
            | LutFn::TanhCdf => {
                let ts = q
                    .cfg
                    .fixed_scale
                    .map_or(self.table_scale(), |s| s.min(self.table_scale()));
                let s = q.choose(1.0);
                // The input is range-checked to its width, so the table needs only the part of
                // the domain that width can reach: the same outputs, often far fewer rows.
                let x = q.meta(n.inputs[0]);
                let reach = (1u64 << (x.bits - 1)) as f64 / (1u64 << x.scale) as f64;
                let (dlo, dhi) = self.domain();
                let domain = (dlo.max(-reach), dhi.min(reach));
                let table = build_table_on(*self, domain, ts, s, i64::MAX);
                (ts, s, q.bits(1.0, s)?, table)
            }
        };
        let op = Op::Lut(Lut {
            func: *self,
            in_shift: sx as i32 - ts as i32,
            lo,
            table,
        });
        Ok(Quantized::real(op, s, bits))
    }
}

impl IntOp for Lut {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(eval_i(a.ins[0], self.in_shift, self.lo, &self.table))
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(
            numel(&ins[0].shape) == numel(&out.shape)
                && !self.table.is_empty()
                && self.lo.checked_add(self.table.len() as i64).is_some()
                && self.in_shift.unsigned_abs() <= 62,
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        self.in_shift >= 0 || (magnitude(ins[0]) << self.in_shift.unsigned_abs()) < LIMIT
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        Some(table_bits(&self.table))
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

    /// The signed shift (a rescale, or an exact multiplication), the clamp to the table's
    /// domain (two comparisons), then one lookup.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (tag, in_bits) = (a.tag()?, a.in_meta[0].bits);
        let (lo, table) = (self.lo, &self.table);
        let hi = lo + table.len() as i64 - 1;
        map_cells(a.ins[0], |xi| {
            let (t, t_bits) = shifted(ctx, xi, self.in_shift, in_bits)?;
            let bits = t_bits
                .max(super::signed_bits(lo as i128))
                .max(super::signed_bits(hi as i128))
                + 1;
            let c = ctx.cmp_const(&t, lo as i128, false, bits)?;
            let c = ctx.cmp_const(&c, hi as i128, true, bits)?;
            let y = c.v.map(|cv| table[(cv - lo as i128) as usize] as i128);
            ctx.lut(tag, &c, y)
        })
    }

    fn encode(&self, w: &mut W) {
        w.u(match self.func {
            LutFn::Sigmoid => 0,
            LutFn::Tanh => 1,
            LutFn::Exp => 2,
            LutFn::Rsqrt => 3,
            LutFn::Erf => 4,
            LutFn::NormCdf => 5,
            LutFn::TanhCdf => 6,
        });
        w.i(self.in_shift as i64);
        w.i(self.lo);
        w.i64s(&self.table);
    }
}

impl Decode for Lut {
    fn decode(r: &mut R) -> Result<Self> {
        let func = match r.u()? {
            0 => LutFn::Sigmoid,
            1 => LutFn::Tanh,
            2 => LutFn::Exp,
            3 => LutFn::Rsqrt,
            4 => LutFn::Erf,
            5 => LutFn::NormCdf,
            6 => LutFn::TanhCdf,
            _ => return Err(AivmError::Decode("unknown table function".into())),
        };
        Ok(Lut {
            func,
            in_shift: r.i32()?,
            lo: r.i()?,
            table: r.i64s()?,
        })
    }
}

/// [`shift_signed`] in the circuit, with the bit width of its result.
pub fn shifted(
    ctx: &mut Ctx,
    x: &Cell,
    in_shift: i32,
    in_bits: u32,
) -> Result<(Cell, u32), PlonkError> {
    use std::cmp::Ordering;
    match in_shift.cmp(&0) {
        Ordering::Equal => Ok((x.clone(), in_bits)),
        Ordering::Greater => Ok((ctx.affine(0, &[(1, x)], in_shift as u32, in_bits)?, in_bits)),
        Ordering::Less => {
            let k = in_shift.unsigned_abs();
            let bits = in_bits + k;
            Ok((ctx.affine(0, &[(1i128 << k, x)], 0, bits)?, bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_table_is_monotone_and_centred() {
        let (lo, hi, t) = build_table(LutFn::Sigmoid, 6, 12);
        assert_eq!(hi - lo + 1, t.len() as i64);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t[(0 - lo) as usize], 2048);
        // clamping: far outside the domain gives the end values
        assert_eq!(
            eval_i(&[i64::MIN / 4, 0, i64::MAX / 4], 0, lo, &t),
            vec![t[0], 2048, *t.last().unwrap()]
        );
    }

    #[test]
    fn a_table_cut_to_the_inputs_reach_gives_the_same_outputs() {
        // 12-bit inputs at scale 10 reach |x| <= 2: a sigmoid table on [-2, 2] instead of
        // [-10, 10] (257 rows, not 1,281), and the same output for every input of that width;
        // also with |x| <= 8, and with the input scale below the table's (a left shift).
        for (sx, bits) in [(10u32, 12u32), (8, 12), (4, 6)] {
            let (flo, _, full) = build_table(LutFn::Sigmoid, 6, 12);
            let reach = (1u64 << (bits - 1)) as f64 / (1u64 << sx) as f64;
            let domain = (-reach.min(10.0), reach.min(10.0));
            let (lo, _, cut) = build_table_on(LutFn::Sigmoid, domain, 6, 12, i64::MAX);
            assert!(cut.len() < full.len());
            let xs: Vec<i64> = (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).collect();
            let shift = sx as i32 - 6;
            assert_eq!(eval_i(&xs, shift, lo, &cut), eval_i(&xs, shift, flo, &full));
        }
    }

    #[test]
    fn signed_shift() {
        assert_eq!(shift_signed(5, 1), 3);
        assert_eq!(shift_signed(5, -2), 20);
    }
}
