//! ArgMax: the index of the first maximum of each group (ties go to the lowest index, as ONNX's
//! default), proven with the one-hot argmax gadget.

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

/// ArgMax over groups, float and integer alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgMax {
    pub groups: GroupSpec,
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    if n.attr_i("select_last_index", 0) != 0 {
        return Err(n.unsupported("select_last_index = 1"));
    }
    let a = norm_axis(n.attr_i("axis", 0), s.len()).ok_or_else(|| n.err("axis out of range"))?;
    let out = reduced_shape(&s, &[a], n.attr_i("keepdims", 1) != 0);
    let id = cx.act(&x, n)?;
    let groups = GroupSpec::Axes {
        shape: s,
        axes: vec![a],
    };
    Ok(cx.push(n, FOp::ArgMax(ArgMax { groups }), vec![id], out, DType::I64))
}

/// Index of the first maximum of each group.
pub fn argmax<T: PartialOrd + Copy>(groups: &[Group], x: &[T]) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let mut best = 0;
            for (j, &i) in g.members.iter().enumerate() {
                if x[i] > x[g.members[best]] {
                    best = j;
                }
            }
            best as i64
        })
        .collect()
}

impl FloatOp for ArgMax {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        argmax(&self.groups.groups(), a.ins[0])
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
            op: Op::ArgMax(self.clone()),
            scale: 0,
            bits: bits_for(len as f64, 0),
            dtype: DType::I64,
        })
    }
}

impl IntOp for ArgMax {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(argmax(&self.groups.groups(), a.ins[0]))
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
                ctx.argmax_of(&xs, in_bits)
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        self.groups.encode(w);
    }
}

impl Decode for ArgMax {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(ArgMax {
            groups: GroupSpec::decode(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_breaks_ties_low() {
        let g = GroupSpec::Axes {
            shape: vec![4],
            axes: vec![0],
        }
        .groups();
        assert_eq!(argmax(&g, &[1, 5, 5, 2]), vec![1]);
    }
}
