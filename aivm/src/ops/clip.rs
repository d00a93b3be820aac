//! Clip: `min(max(x, lo), hi)` with optional constant bounds at the input's scale; each bound
//! is one comparison with a constant.

use halo2_proofs::plonk::Error as PlonkError;

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LayoutArgs, Op, map_cells, params_if, signed_bits,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{FOp, Node};
use crate::onnx::{Const, Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::numel;
use crate::wire::{R, W};

const KIND: &str = "clip";

pub const ONNX: &[(&str, Lowering)] = &[("Clip", lower)];

/// The float op.
#[derive(Clone, Debug, PartialEq)]
pub struct FClip {
    pub lo: Option<f32>,
    pub hi: Option<f32>,
}

/// The integer op: bounds at the input's scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clip {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let (lo, hi) = if n.opset >= 11 {
        let scalar = |c: Option<Const>| c.map(|c| c.floats().first().copied().unwrap_or(0.0));
        (
            scalar(n.opt_const(1, "min")?),
            scalar(n.opt_const(2, "max")?),
        )
    } else {
        (n.attr("min").map(|a| a.f), n.attr("max").map(|a| a.f))
    };
    if let (Some(l), Some(h)) = (lo, hi)
        && l > h
    {
        return Err(n.err("min is greater than max"));
    }
    cx.unary(n, n.input(0)?, FOp::Clip(FClip { lo, hi }))
}

impl FloatOp for FClip {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        a.ins[0]
            .iter()
            .map(|&v| {
                let v = self.lo.map_or(v, |l| v.max(l as f64));
                self.hi.map_or(v, |h| v.min(h as f64))
            })
            .collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        let sx = x.scale;
        let op = Op::Clip(Clip {
            lo: self.lo.map(|l| super::quantize(l as f64, sx)),
            hi: self.hi.map(|h| super::quantize(h as f64, sx)),
        });
        Ok(Quantized::real(op, sx, x.bits))
    }
}

impl IntOp for Clip {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(a.ins[0]
            .iter()
            .map(|&v| {
                let v = self.lo.map_or(v, |l| v.max(l));
                self.hi.map_or(v, |h| v.min(h))
            })
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(numel(&ins[0].shape) == numel(&out.shape))
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        let sb = |v: i64| signed_bits(v as i128);
        // With both bounds the result lies in `[min(lo, hi), hi]`, whatever the input's width.
        if let (Some(l), Some(h)) = (self.lo, self.hi) {
            return Some(sb(l).max(sb(h)));
        }
        Some(
            ins[0]
                .bits
                .max(self.lo.map_or(1, sb))
                .max(self.hi.map_or(1, sb)),
        )
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

    /// `max(x, lo)` then `min(·, hi)`, each one comparison row.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let in_bits = a.in_meta[0].bits;
        map_cells(a.ins[0], |xi| {
            let mut y = xi.clone();
            if let Some(l) = self.lo {
                let bits = in_bits.max(signed_bits(l as i128)) + 1;
                y = ctx.cmp_const(&y, l as i128, false, bits)?;
            }
            if let Some(h) = self.hi {
                let bits = in_bits.max(signed_bits(h as i128)) + 1;
                y = ctx.cmp_const(&y, h as i128, true, bits)?;
            }
            Ok(y)
        })
    }

    fn encode(&self, w: &mut W) {
        w.opt_i(self.lo);
        w.opt_i(self.hi);
    }
}

impl Decode for Clip {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(Clip {
            lo: r.opt_i()?,
            hi: r.opt_i()?,
        })
    }
}
