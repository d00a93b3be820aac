//! Reductions over groups: Sum (then a rescale), Mean (round-half-up by the group's divisor)
//! and Max. ReduceSum/Mean/Max, the global poolings and 2-D max/average pooling lower to it.

use halo2_proofs::plonk::Error as PlonkError;
use serde::{Deserialize, Serialize};

use super::group::{Group, GroupSpec, Pool2d, groups_ok};
use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, params_if,
    shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{FOp, Node};
use crate::onnx::attrs::{Window, nchw, pads_and_out, reduced_shape, spatial2};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::{norm_axis, numel};
use crate::wire::{R, W};

const KIND: &str = "reduce";

pub const ONNX: &[(&str, Lowering)] = &[
    ("AveragePool", pool),
    ("GlobalAveragePool", global_pool),
    ("GlobalMaxPool", global_pool),
    ("MaxPool", pool),
    ("ReduceMax", reduce),
    ("ReduceMean", reduce),
    ("ReduceSum", reduce),
];

/// What a reduction computes over each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
}

/// The float op.
#[derive(Clone, Debug, PartialEq)]
pub struct FReduce {
    pub kind: ReduceKind,
    pub groups: GroupSpec,
}

/// The integer op: Sum (then `rescale(·, shift)`), Mean or Max (no rescale).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub groups: GroupSpec,
    pub shift: u32,
}

/// Float reduction.
pub fn reduce_f(kind: ReduceKind, groups: &[Group], x: &[f64]) -> Vec<f64> {
    groups
        .iter()
        .map(|g| match kind {
            ReduceKind::Sum => g.members.iter().map(|&i| x[i]).sum(),
            ReduceKind::Mean => g.members.iter().map(|&i| x[i]).sum::<f64>() / g.divisor as f64,
            ReduceKind::Max => g
                .members
                .iter()
                .map(|&i| x[i])
                .fold(f64::NEG_INFINITY, f64::max),
        })
        .collect()
}

/// Integer reduction before any rescale: Sum is exact, Mean divides with round-half-up by the
/// group's divisor, Max is exact. Groups are never empty (the lowering refuses such windows).
pub fn reduce_i(kind: ReduceKind, groups: &[Group], x: &[i64]) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let it = g.members.iter().map(|&i| x[i]);
            match kind {
                ReduceKind::Sum => it.sum(),
                ReduceKind::Mean => super::div_round(it.sum(), g.divisor as i64),
                ReduceKind::Max => it.max().unwrap_or(0),
            }
        })
        .collect()
}

impl FloatOp for FReduce {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        reduce_f(self.kind, &self.groups.groups(), a.ins[0])
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        let (sx, bx) = (x.scale, x.bits);
        let reduce = |shift| {
            Op::Reduce(Reduce {
                kind: self.kind,
                groups: self.groups.clone(),
                shift,
            })
        };
        match self.kind {
            ReduceKind::Sum => {
                let m_out = q.max_abs(n.output);
                let s = q.choose(m_out).min(sx);
                Ok(Quantized::real(reduce(sx - s), s, q.bits(m_out, s)?))
            }
            ReduceKind::Mean | ReduceKind::Max => Ok(Quantized::real(reduce(0), sx, bx)),
        }
    }
}

impl IntOp for Reduce {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(reduce_i(self.kind, &self.groups.groups(), a.ins[0])
            .into_iter()
            .map(|v| super::rescale(v, self.shift))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let in_len = numel(&ins[0].shape);
        params_if(
            groups_ok(&self.groups, in_len)
                && self.groups.len() == numel(&out.shape)
                && shift_ok(self.shift),
        )?;
        match self.kind {
            ReduceKind::Max | ReduceKind::Mean if self.shift != 0 => Err(Invalid::NoRescale),
            ReduceKind::Max | ReduceKind::Mean | ReduceKind::Sum => Ok(()),
        }
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        let len = self
            .groups
            .groups()
            .iter()
            .map(|g| g.members.len())
            .max()
            .unwrap_or(0) as i128;
        magnitude(ins[0]) * len.max(1) < LIMIT
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        match self.kind {
            ReduceKind::Max => Some(ins[0].bits),
            ReduceKind::Sum | ReduceKind::Mean => None,
        }
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

    /// Sums are dot chains of ones, means divide with the constant-divisor gadget, maxima use
    /// the product-chain maximum.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (x, in_bits, out_bits) = (a.ins[0], a.in_meta[0].bits, a.out.bits);
        self.groups
            .groups()
            .iter()
            .map(|g| {
                let xs: Vec<&Cell> = g.members.iter().map(|&i| &x[i]).collect();
                let terms: Vec<(i128, &Cell)> = xs.iter().map(|c| (1, *c)).collect();
                match self.kind {
                    ReduceKind::Max => ctx.max_of(&xs, in_bits),
                    ReduceKind::Sum => ctx.affine(0, &terms, self.shift, out_bits),
                    ReduceKind::Mean => {
                        let (row, acc) = ctx.dot(0, &terms)?;
                        let d = g.divisor as i128;
                        ctx.divide_at(row, acc.v, d, d / 2, out_bits)
                    }
                }
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        w.u(match self.kind {
            ReduceKind::Sum => 0,
            ReduceKind::Mean => 1,
            ReduceKind::Max => 2,
        });
        self.groups.encode(w);
        w.u(self.shift as u64);
    }
}

impl Decode for Reduce {
    fn decode(r: &mut R) -> Result<Self> {
        let kind = match r.u()? {
            0 => ReduceKind::Sum,
            1 => ReduceKind::Mean,
            2 => ReduceKind::Max,
            _ => return Err(AivmError::Decode("unknown reduction".into())),
        };
        Ok(Reduce {
            kind,
            groups: GroupSpec::decode(r)?,
            shift: r.u32()?,
        })
    }
}

/// `ReduceMean`, `ReduceSum`, `ReduceMax` (axes as an attribute or, from opset 13/18, an input).
fn reduce(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let axes_as_input = (n.op == "ReduceSum" && n.opset >= 13) || n.opset >= 18;
    let axes = if axes_as_input {
        n.opt_const(1, "axes operand")?.and_then(|c| c.ints())
    } else {
        n.attr_ints("axes")
    };
    let axes = match axes {
        Some(a) if !a.is_empty() => {
            let mut v: Vec<usize> = a
                .iter()
                .map(|&a| norm_axis(a, s.len()))
                .collect::<Option<_>>()
                .ok_or_else(|| n.err("axis out of range"))?;
            v.sort_unstable();
            v.dedup();
            v
        }
        _ if n.attr_i("noop_with_empty_axes", 0) != 0 => return n.input(0),
        _ => (0..s.len()).collect(),
    };
    let kind = match n.op {
        "ReduceMean" => ReduceKind::Mean,
        "ReduceSum" => ReduceKind::Sum,
        _ => ReduceKind::Max,
    };
    let out = reduced_shape(&s, &axes, n.attr_i("keepdims", 1) != 0);
    let groups = GroupSpec::Axes { shape: s, axes };
    cx.float_op(n, x, FOp::Reduce(FReduce { kind, groups }), out)
}

/// `GlobalAveragePool`, `GlobalMaxPool`: a mean or maximum over every spatial axis.
fn global_pool(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    if s.len() < 3 {
        return Err(n.err("input must have rank 3 or more (N, C, spatial...)"));
    }
    let axes: Vec<usize> = (2..s.len()).collect();
    let kind = if n.op == "GlobalAveragePool" {
        ReduceKind::Mean
    } else {
        ReduceKind::Max
    };
    let out = reduced_shape(&s, &axes, true);
    let groups = GroupSpec::Axes { shape: s, axes };
    cx.float_op(n, x, FOp::Reduce(FReduce { kind, groups }), out)
}

/// `MaxPool`, `AveragePool` over 1 or 2 spatial dims.
fn pool(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let (nb, c, h, w) =
        nchw(&s).ok_or_else(|| n.unsupported("pooling over other than 1 or 2 spatial dims"))?;
    let k = n
        .attr_ints("kernel_shape")
        .ok_or_else(|| n.err("kernel_shape required"))?;
    let k2 = spatial2(&k, s.len()).ok_or_else(|| n.err("kernel_shape has the wrong length"))?;
    if n.attr_ints("dilations")
        .is_some_and(|d| d.iter().any(|&v| v != 1))
    {
        return Err(n.unsupported("dilated pooling"));
    }
    let strides = spatial2(&n.attr_ints("strides").unwrap_or(vec![1; k.len()]), s.len())
        .ok_or_else(|| n.err("strides have the wrong length"))?;
    let ceil = n.attr_i("ceil_mode", 0) != 0;
    let count_include_pad = n.attr_i("count_include_pad", 0) != 0;
    let window = Window {
        hw: [h, w],
        k: k2,
        stride: strides,
        dil: [1, 1],
        ceil,
    };
    let (pads, oh, ow) = pads_and_out(n, s.len(), &window).map_err(|e| n.err(e))?;
    // With ceil_mode, the last window may pass the padded input; a mean that counts the padding
    // then divides by the part of the window inside the padded input, which differs from the
    // whole window the program's divisor counts. Without such a window, ceil and floor agree.
    if ceil && count_include_pad && n.op == "AveragePool" {
        let floor = Window {
            ceil: false,
            ..window
        };
        let (_, fh, fw) = pads_and_out(n, s.len(), &floor).map_err(|e| n.err(e))?;
        if (fh, fw) != (oh, ow) {
            return Err(n.unsupported(
                "AveragePool with ceil_mode = 1 and count_include_pad = 1 whose last window \
                 passes the padded input",
            ));
        }
    }
    let groups = GroupSpec::Pool2d(Pool2d {
        n: nb,
        c,
        h,
        w,
        kh: k2[0],
        kw: k2[1],
        stride: strides,
        pad: [pads[0], pads[1]],
        oh,
        ow,
        count_include_pad,
    });
    if groups.groups().iter().any(|g| g.members.is_empty()) {
        return Err(n.err("a pooling window lies entirely in the padding"));
    }
    let kind = if n.op == "MaxPool" {
        ReduceKind::Max
    } else {
        ReduceKind::Mean
    };
    let mut out = s.clone();
    let r = out.len();
    out[r - 1] = ow;
    if r == 4 {
        out[2] = oh;
    }
    cx.float_op(n, x, FOp::Reduce(FReduce { kind, groups }), out)
}
