//! `max(x, 0)`: one comparison with a constant per element; the output keeps the input's scale.

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

const KIND: &str = "relu";

pub const ONNX: &[(&str, Lowering)] = &[("Relu", lower)];

/// ReLU, float and integer alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relu;

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    cx.unary(n, n.input(0)?, FOp::Relu(Relu))
}

impl FloatOp for Relu {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        a.ins[0].iter().map(|&v| v.max(0.0)).collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        Ok(Quantized::real(Op::Relu(Relu), x.scale, x.bits))
    }
}

impl IntOp for Relu {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(a.ins[0].iter().map(|&v| v.max(0)).collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(numel(&ins[0].shape) == numel(&out.shape))
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        Some(ins[0].bits)
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

    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let bits = a.in_meta[0].bits;
        map_cells(a.ins[0], |x| ctx.cmp_const(x, 0, false, bits))
    }

    fn encode(&self, _w: &mut W) {}
}

impl Decode for Relu {
    fn decode(_r: &mut R) -> Result<Self> {
        Ok(Relu)
    }
}
