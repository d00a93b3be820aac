//! LeakyReLU: `x` for `x >= 0`, else `rescale(x·alpha, alpha_scale)`; the output keeps the
//! input's scale and is as wide as the wider branch.

use halo2_proofs::plonk::Error as PlonkError;

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, map_cells,
    params_if, shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta, bit_range};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::numel;
use crate::wire::{R, W};

const KIND: &str = "leaky_relu";

/// The scale of the quantized slope.
const ALPHA_SCALE: u32 = 16;

pub const ONNX: &[(&str, Lowering)] = &[("LeakyRelu", lower)];

/// The float op: the negative slope.
#[derive(Clone, Debug, PartialEq)]
pub struct FLeakyRelu {
    pub alpha: f32,
}

/// The integer op: the slope at `alpha_scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakyRelu {
    pub alpha: i64,
    pub alpha_scale: u32,
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let alpha = n.attr_f("alpha", 0.01);
    cx.unary(n, n.input(0)?, FOp::LeakyRelu(FLeakyRelu { alpha }))
}

/// Integer LeakyReLU: `x` for `x >= 0`, else `rescale(x·alpha, alpha_scale)`.
#[inline]
pub fn leaky_relu_i(x: i64, alpha: i64, alpha_scale: u32) -> i64 {
    if x >= 0 {
        x
    } else {
        super::rescale(x * alpha, alpha_scale)
    }
}

/// Signed bit width of `rescale(x·alpha, alpha_scale)` over every `x` of `in_bits` bits: the
/// range LeakyReLU's negative branch is checked to, and (with `in_bits`) its output's width.
pub fn leaky_z_bits(in_bits: u32, alpha: i64, alpha_scale: u32) -> u32 {
    let (lo, hi) = bit_range(in_bits);
    [lo, hi]
        .iter()
        .map(|&x| {
            let v = x as i128 * alpha as i128;
            let half = if alpha_scale == 0 {
                0
            } else {
                1i128 << (alpha_scale - 1)
            };
            super::signed_bits((v + half) >> alpha_scale)
        })
        .max()
        .unwrap_or(2)
}

impl FloatOp for FLeakyRelu {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        let alpha = self.alpha as f64;
        a.ins[0]
            .iter()
            .map(|&v| if v >= 0.0 { v } else { v * alpha })
            .collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        let alpha = super::quantize(self.alpha as f64, ALPHA_SCALE);
        let z_bits = leaky_z_bits(x.bits, alpha, ALPHA_SCALE);
        let op = Op::LeakyRelu(LeakyRelu {
            alpha,
            alpha_scale: ALPHA_SCALE,
        });
        Ok(Quantized::real(op, x.scale, x.bits.max(z_bits)))
    }
}

impl IntOp for LeakyRelu {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(a.ins[0]
            .iter()
            .map(|&v| leaky_relu_i(v, self.alpha, self.alpha_scale))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(numel(&ins[0].shape) == numel(&out.shape) && shift_ok(self.alpha_scale))
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        magnitude(ins[0]) * (self.alpha.unsigned_abs() as i128) < LIMIT
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        let b = ins[0].bits;
        Some(b.max(leaky_z_bits(b, self.alpha, self.alpha_scale)))
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn params(&self) -> u64 {
        0
    }

    fn lookups(&self, _out_len: usize) -> u64 {
        0
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        None
    }

    /// `z = rescale(x·alpha)` always, then a sign-selected `x` or `z`.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let in_bits = a.in_meta[0].bits;
        let z_bits = leaky_z_bits(in_bits, self.alpha, self.alpha_scale);
        map_cells(a.ins[0], |xi| {
            let z = ctx.affine(0, &[(self.alpha as i128, xi)], self.alpha_scale, z_bits)?;
            ctx.select_nonneg(xi, &z, in_bits)
        })
    }

    fn encode(&self, w: &mut W) {
        w.i(self.alpha);
        w.u(self.alpha_scale as u64);
    }
}

impl Decode for LeakyRelu {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(LeakyRelu {
            alpha: r.i()?,
            alpha_scale: r.u32()?,
        })
    }
}
