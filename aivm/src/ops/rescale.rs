//! `rescale(x, shift)`: aligns scales (before Concat). Quantization inserts it; no ONNX op and
//! no float op becomes one.

use halo2_proofs::plonk::Error as PlonkError;

use super::{Decode, IntArgs, IntOp, LayoutArgs, map_cells, params_if, shift_ok};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::program::{Invalid, TensorMeta};
use crate::tensor::numel;
use crate::wire::{R, W};

/// A rescale by `2^shift` with round-half-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rescale {
    pub shift: u32,
}

impl IntOp for Rescale {
    fn kind(&self) -> &'static str {
        "rescale"
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(a.ins[0]
            .iter()
            .map(|&v| super::rescale(v, self.shift))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(numel(&ins[0].shape) == numel(&out.shape) && shift_ok(self.shift))
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        None
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
        let bits = a.out.bits;
        map_cells(a.ins[0], |x| ctx.affine(0, &[(1, x)], self.shift, bits))
    }

    fn encode(&self, w: &mut W) {
        w.u(self.shift as u64);
    }
}

impl Decode for Rescale {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(Rescale { shift: r.u32()? })
    }
}
