//! `-x`: one weighted term per element (the dot gate with weight -1 and the bias gate pinning
//! its start to 0), so the output is exactly the negated input. The output keeps the input's
//! scale and needs one bit more (`-(-2^(b-1)) = 2^(b-1)`).

use halo2_proofs::plonk::Error as PlonkError;

use super::{Decode, FloatArgs, FloatOp, IntArgs, IntOp, LayoutArgs, Op, map_cells, params_if};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::numel;
use crate::wire::{R, W};

const KIND: &str = "neg";

pub const ONNX: &[(&str, Lowering)] = &[("Neg", lower)];

/// Negation, float and integer alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neg;

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    cx.unary(n, n.input(0)?, FOp::Neg(Neg))
}

impl FloatOp for Neg {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        a.ins[0].iter().map(|&v| -v).collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        Ok(Quantized::real(Op::Neg(Neg), x.scale, x.bits + 1))
    }
}

impl IntOp for Neg {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(a.ins[0].iter().map(|&v| -v).collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(numel(&ins[0].shape) == numel(&out.shape))
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        Some(ins[0].bits + 1)
    }

    fn macs(&self, out_len: usize) -> u64 {
        out_len as u64
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

    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        map_cells(a.ins[0], |x| ctx.dot(0, &[(-1, x)]).map(|(_, y)| y))
    }

    fn encode(&self, _w: &mut W) {}
}

impl Decode for Neg {
    fn decode(_r: &mut R) -> Result<Self> {
        Ok(Neg)
    }
}
