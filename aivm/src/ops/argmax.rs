//! ArgMax: the index of the first maximum of each group (ties go to the lowest index, as ONNX's
//! default), or of the last (`select_last_index = 1`), proven with the one-hot argmax gadget:
//! for the last maximum it walks the group backwards, so that the first maximum it meets is the
//! last one.

use halo2_proofs::plonk::Error as PlonkError;

use super::group::{Group, GroupSpec, groups_ok};
use super::{Decode, FloatArgs, FloatOp, IntArgs, IntOp, LayoutArgs, Op, params_if, signed_bits};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{DType, FOp, Node};
use crate::onnx::attrs::reduced_shape;
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer, bits_for};
use crate::tensor::{norm_axis, numel};
use crate::wire::{R, W};

const KIND: &str = "argmax";

pub const ONNX: &[(&str, Lowering)] = &[("ArgMax", lower)];

/// ArgMax over groups, float and integer alike: ties go to the first maximum, or with `LAST`
/// to the last. Two ops (two program tags), one implementation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgMaxOf<const LAST: bool> {
    pub groups: GroupSpec,
}

/// ONNX's default ArgMax: the first maximum.
pub type ArgMax = ArgMaxOf<false>;
/// ArgMax with `select_last_index = 1`: the last maximum.
pub type ArgMaxLast = ArgMaxOf<true>;

impl<const LAST: bool> ArgMaxOf<LAST> {
    fn op(&self) -> Op {
        let groups = self.groups.clone();
        if LAST {
            Op::ArgMaxLast(ArgMaxLast { groups })
        } else {
            Op::ArgMax(ArgMax { groups })
        }
    }
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let a = norm_axis(n.attr_i("axis", 0), s.len()).ok_or_else(|| n.err("axis out of range"))?;
    let out = reduced_shape(&s, &[a], n.attr_i("keepdims", 1) != 0);
    let id = cx.act(&x, n)?;
    let groups = GroupSpec::Axes {
        shape: s,
        axes: vec![a],
    };
    let op = if n.attr_i("select_last_index", 0) != 0 {
        FOp::ArgMaxLast(ArgMaxLast { groups })
    } else {
        FOp::ArgMax(ArgMax { groups })
    };
    Ok(cx.push(n, op, vec![id], out, DType::I64))
}

/// Index of the first (or, with `last`, the last) maximum of each group.
pub fn argmax<T: PartialOrd + Copy>(groups: &[Group], x: &[T], last: bool) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let mut best = 0;
            for (j, &i) in g.members.iter().enumerate() {
                let b = x[g.members[best]];
                if x[i] > b || (last && x[i] == b) {
                    best = j;
                }
            }
            best as i64
        })
        .collect()
}

impl<const LAST: bool> FloatOp for ArgMaxOf<LAST> {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        argmax(&self.groups.groups(), a.ins[0], LAST)
            .into_iter()
            .map(|i| i as f64)
            .collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, _q: &mut Quantizer, _n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let len = self.groups.groups().first().map_or(1, |g| g.members.len());
        Ok(Quantized {
            op: self.op(),
            scale: 0,
            bits: bits_for(len as f64, 0),
            dtype: DType::I64,
        })
    }
}

impl<const LAST: bool> IntOp for ArgMaxOf<LAST> {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(argmax(&self.groups.groups(), a.ins[0], LAST))
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let in_len = numel(&ins[0].shape);
        params_if(
            matches!(self.groups, GroupSpec::Axes { .. })
                && groups_ok(&self.groups, in_len)
                && self.groups.len() == numel(&out.shape),
        )
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        let len = self.groups.groups().first().map_or(1, |g| g.members.len());
        Some(signed_bits(len as i128 - 1))
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

    /// The one-hot argmax gadget per group.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (x, in_bits) = (a.ins[0], a.in_meta[0].bits);
        self.groups
            .groups()
            .iter()
            .map(|g| {
                let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
                ctx.argmax_of(&xs, LAST, in_bits)
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        self.groups.encode(w);
    }
}

impl<const LAST: bool> Decode for ArgMaxOf<LAST> {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(ArgMaxOf {
            groups: GroupSpec::decode(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_breaks_ties_low_or_high() {
        let g = GroupSpec::Axes {
            shape: vec![4],
            axes: vec![0],
        }
        .groups();
        assert_eq!(argmax(&g, &[1, 5, 5, 2], false), vec![1]);
        assert_eq!(argmax(&g, &[1, 5, 5, 2], true), vec![2]);
    }
}
