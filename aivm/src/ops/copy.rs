//! Data movement without arithmetic: Reshape (and Flatten, Squeeze, Unsqueeze), Transpose,
//! Concat, and selection by constant indices (Gather with constant indices, Slice). In the circuit
//! these are copy constraints only.

use halo2_proofs::plonk::Error as PlonkError;
use serde::{Deserialize, Serialize};

use super::{Decode, FloatArgs, FloatOp, IntArgs, IntOp, LayoutArgs, Op, TensorMeta, params_if};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{FOp, Node};
use crate::onnx::attrs::reshape_target;
use crate::onnx::{CData, Const, Cx, Lowering, NodeIn, Val};
use crate::program::Invalid;
use crate::quantize::{Quantized, Quantizer};
use crate::tensor::{norm_axis, numel, strides, unravel};
use crate::wire::{R, W};

const KIND: &str = "copy";

pub const ONNX: &[(&str, Lowering)] = &[
    ("Concat", concat),
    ("Flatten", flatten),
    ("Reshape", reshape),
    ("Slice", slice),
    ("Squeeze", squeeze),
    ("Transpose", transpose),
    ("Unsqueeze", squeeze),
];

/// Where each output element comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopySpec {
    /// Same data, new shape.
    Reshape,
    /// `out = in.permute(perm)`.
    Transpose {
        in_shape: Vec<usize>,
        perm: Vec<usize>,
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        axis: usize,
        in_shapes: Vec<Vec<usize>>,
    },
    /// `out[.., j, ..] = in[.., indices[j], ..]` along `axis`.
    Select {
        in_shape: Vec<usize>,
        axis: usize,
        indices: Vec<usize>,
    },
}

impl CopySpec {
    /// The shape this copy produces before any final reshape (Reshape itself keeps `in_shape`).
    pub fn natural_shape(&self, in_shape: &[usize]) -> Vec<usize> {
        match self {
            CopySpec::Reshape => in_shape.to_vec(),
            CopySpec::Transpose { in_shape, perm } => perm.iter().map(|&p| in_shape[p]).collect(),
            CopySpec::Concat { axis, in_shapes } => {
                let mut s = in_shapes[0].clone();
                s[*axis] = in_shapes.iter().map(|s| s[*axis]).sum();
                s
            }
            CopySpec::Select {
                in_shape,
                axis,
                indices,
            } => {
                let mut s = in_shape.clone();
                s[*axis] = indices.len();
                s
            }
        }
    }

    /// For every output element (row-major), `(input number, flat index in that input)`. The
    /// output's row-major order is that of [`CopySpec::natural_shape`]; any final shape with the
    /// same number of elements reads the same sequence.
    pub fn sources(&self, in_len: usize) -> Vec<(usize, usize)> {
        let out_shape = match self {
            CopySpec::Reshape => vec![in_len],
            CopySpec::Transpose { in_shape, .. } | CopySpec::Select { in_shape, .. } => {
                self.natural_shape(in_shape)
            }
            CopySpec::Concat { in_shapes, .. } => self.natural_shape(&in_shapes[0]),
        };
        let out_shape = &out_shape[..];
        let total = numel(out_shape);
        match self {
            CopySpec::Reshape => (0..in_len).map(|i| (0, i)).collect(),
            CopySpec::Transpose { in_shape, perm } => {
                let st = strides(in_shape);
                (0..total)
                    .map(|o| {
                        let oi = unravel(o, out_shape);
                        (0, perm.iter().zip(&oi).map(|(&p, &i)| i * st[p]).sum())
                    })
                    .collect()
            }
            CopySpec::Concat { axis, in_shapes } => {
                let mut offsets = Vec::with_capacity(in_shapes.len());
                let mut acc = 0;
                for s in in_shapes {
                    offsets.push(acc);
                    acc += s[*axis];
                }
                (0..total)
                    .map(|o| {
                        let mut oi = unravel(o, out_shape);
                        let which = offsets
                            .iter()
                            .rposition(|&off| off <= oi[*axis])
                            .unwrap_or(0);
                        oi[*axis] -= offsets[which];
                        let st = strides(&in_shapes[which]);
                        (which, oi.iter().zip(&st).map(|(i, s)| i * s).sum())
                    })
                    .collect()
            }
            CopySpec::Select {
                in_shape,
                axis,
                indices,
            } => {
                let st = strides(in_shape);
                (0..total)
                    .map(|o| {
                        let mut oi = unravel(o, out_shape);
                        oi[*axis] = indices[oi[*axis]];
                        (0, oi.iter().zip(&st).map(|(i, s)| i * s).sum())
                    })
                    .collect()
            }
        }
    }
}

/// Applies a copy to typed data.
pub fn apply<T: Copy>(spec: &CopySpec, inputs: &[&[T]]) -> Vec<T> {
    let in_len = inputs.first().map_or(0, |x| x.len());
    spec.sources(in_len)
        .into_iter()
        .map(|(k, i)| inputs[k][i])
        .collect()
}

impl FloatOp for CopySpec {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        apply(self, &a.ins)
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]).clone();
        let dtype = q.graph.values[n.inputs[0]].dtype;
        let op = Op::Copy(self.clone());
        let CopySpec::Concat { .. } = self else {
            return Ok(Quantized {
                op,
                scale: x.scale,
                bits: x.bits,
                dtype,
            });
        };
        // Align every input to the smallest scale among them.
        let s = n
            .inputs
            .iter()
            .map(|&v| q.meta(v).scale)
            .min()
            .unwrap_or(x.scale);
        let mut bits = 0;
        for (k, &v) in n.inputs.iter().enumerate() {
            let meta = q.meta(v).clone();
            bits = u32::max(bits, meta.bits);
            if meta.scale > s {
                let node = crate::program::PNode {
                    name: format!("{}:align{k}", n.name),
                    onnx_op: n.onnx_op.clone(),
                    op: Op::Rescale(super::rescale::Rescale {
                        shift: meta.scale - s,
                    }),
                    inputs: vec![ins[k]],
                    output: 0,
                };
                ins[k] = q.insert(TensorMeta { scale: s, ..meta }, node);
            }
        }
        Ok(Quantized {
            op,
            scale: s,
            bits,
            dtype,
        })
    }
}

impl IntOp for CopySpec {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        match self {
            CopySpec::Concat { in_shapes, .. } => in_shapes.len(),
            CopySpec::Reshape | CopySpec::Transpose { .. } | CopySpec::Select { .. } => 1,
        }
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        Ok(apply(self, &a.ins))
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        params_if(copy_ok(self, ins, numel(&out.shape)))
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, ins: &[&TensorMeta]) -> Option<u32> {
        ins.iter().map(|t| t.bits).max()
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

    /// Copy constraints only: the output cells are the input cells.
    fn layout(&self, _ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        Ok(self
            .sources(a.ins[0].len())
            .into_iter()
            .map(|(k, i)| a.ins[k][i].clone())
            .collect())
    }

    fn encode(&self, w: &mut W) {
        match self {
            CopySpec::Reshape => w.u(0),
            CopySpec::Transpose { in_shape, perm } => {
                w.u(1);
                w.usizes(in_shape);
                w.usizes(perm);
            }
            CopySpec::Concat { axis, in_shapes } => {
                w.u(2);
                w.len(*axis);
                w.len(in_shapes.len());
                in_shapes.iter().for_each(|s| w.usizes(s));
            }
            CopySpec::Select {
                in_shape,
                axis,
                indices,
            } => {
                w.u(3);
                w.usizes(in_shape);
                w.len(*axis);
                w.usizes(indices);
            }
        }
    }
}

impl Decode for CopySpec {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(match r.u()? {
            0 => CopySpec::Reshape,
            1 => CopySpec::Transpose {
                in_shape: r.usizes()?,
                perm: r.usizes()?,
            },
            2 => {
                let axis = r.len()?;
                let n = r.count()?;
                let in_shapes = (0..n).map(|_| r.usizes()).collect::<Result<_>>()?;
                CopySpec::Concat { axis, in_shapes }
            }
            3 => CopySpec::Select {
                in_shape: r.usizes()?,
                axis: r.len()?,
                indices: r.usizes()?,
            },
            _ => return Err(AivmError::Decode("unknown copy kind".into())),
        })
    }
}

fn copy_ok(spec: &CopySpec, ins: &[&TensorMeta], out_len: usize) -> bool {
    let in_len = numel(&ins[0].shape);
    match spec {
        CopySpec::Reshape => in_len == out_len,
        CopySpec::Transpose { in_shape, perm } => {
            let mut p = perm.clone();
            p.sort_unstable();
            *in_shape == ins[0].shape
                && p == (0..in_shape.len()).collect::<Vec<_>>()
                && in_len == out_len
        }
        CopySpec::Concat { axis, in_shapes } => {
            !in_shapes.is_empty()
                && in_shapes.iter().zip(ins).all(|(s, t)| *s == t.shape)
                && in_shapes.iter().all(|s| {
                    s.len() == in_shapes[0].len()
                        && *axis < s.len()
                        && s.iter()
                            .enumerate()
                            .all(|(i, &d)| i == *axis || d == in_shapes[0][i])
                })
                && spec.sources(in_len).len() == out_len
        }
        CopySpec::Select {
            in_shape,
            axis,
            indices,
        } => {
            *in_shape == ins[0].shape
                && *axis < in_shape.len()
                && indices.iter().all(|&i| i < in_shape[*axis])
                && spec.sources(in_len).len() == out_len
        }
    }
}

/// `Reshape` with a constant shape operand.
fn reshape(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let spec = n
        .const_input(1, "shape operand")?
        .ints()
        .ok_or_else(|| n.err("shape must be integers"))?;
    let in_shape = cx.shape(&x);
    let allowzero = n.attr_i("allowzero", 0) != 0;
    let out = reshape_target(&in_shape, &spec, allowzero).map_err(|e| n.err(e))?;
    cx.copy(n, x, CopySpec::Reshape, out)
}

/// `Flatten` to two dims at `axis`.
fn flatten(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let a = n.attr_i("axis", 1);
    let a = if a < 0 { a + s.len() as i64 } else { a };
    if a < 0 || a > s.len() as i64 {
        return Err(n.err(format!("axis {a} out of range for rank {}", s.len())));
    }
    let out = vec![numel(&s[..a as usize]), numel(&s[a as usize..])];
    cx.copy(n, x, CopySpec::Reshape, out)
}

/// `Squeeze` and `Unsqueeze` (axes as an attribute or, from opset 13, an input).
fn squeeze(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let axes = if n.opset >= 13 {
        n.opt_const(1, "axes operand")?.and_then(|c| c.ints())
    } else {
        n.attr_ints("axes")
    };
    let norm =
        |a: i64, r: usize| norm_axis(a, r).ok_or_else(|| n.err(format!("axis {a} out of range")));
    let out = if n.op == "Squeeze" {
        match axes {
            None => s.iter().copied().filter(|&d| d != 1).collect(),
            Some(axes) => {
                let mut ax = Vec::new();
                for a in axes {
                    let a = norm(a, s.len())?;
                    if s[a] != 1 {
                        return Err(n.err(format!("cannot squeeze axis {a} of size {}", s[a])));
                    }
                    ax.push(a);
                }
                s.iter()
                    .enumerate()
                    .filter(|(i, _)| !ax.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            }
        }
    } else {
        let axes = axes.ok_or_else(|| n.err("axes are required"))?;
        let r = s.len() + axes.len();
        let ax = axes
            .into_iter()
            .map(|a| norm(a, r))
            .collect::<Result<Vec<_>>>()?;
        let mut it = s.iter();
        (0..r)
            .map(|i| {
                if ax.contains(&i) {
                    1
                } else {
                    *it.next().unwrap_or(&1)
                }
            })
            .collect()
    };
    cx.copy(n, x, CopySpec::Reshape, out)
}

/// `Transpose` (default: reverse the axes).
fn transpose(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let perm: Vec<usize> = match n.attr_ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| norm_axis(a, s.len()))
            .collect::<Option<_>>()
            .ok_or_else(|| n.err("perm out of range"))?,
        None => (0..s.len()).rev().collect(),
    };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..s.len()).collect::<Vec<_>>() {
        return Err(n.err("perm is not a permutation of the axes"));
    }
    let spec = CopySpec::Transpose {
        in_shape: s.clone(),
        perm,
    };
    let out = spec.natural_shape(&s);
    cx.copy(n, x, spec, out)
}

/// `Concat` of activations (or of constants, folded). A constant part beside activations (a
/// class token, fixed padding) becomes an activation first, see [`constant_like`].
fn concat(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let mut vals: Vec<Val> = (0..n.ins.len())
        .map(|k| n.input(k))
        .collect::<Result<_>>()?;
    let shapes: Vec<Vec<usize>> = vals.iter().map(|v| cx.shape(v)).collect();
    let r = shapes[0].len();
    let axis = norm_axis(n.attr_i("axis", 0), r).ok_or_else(|| n.err("axis out of range"))?;
    for s in &shapes {
        if s.len() != r
            || s.iter()
                .enumerate()
                .any(|(i, &d)| i != axis && d != shapes[0][i])
        {
            return Err(n.err("inputs have mismatched shapes"));
        }
    }
    let spec = CopySpec::Concat {
        axis,
        in_shapes: shapes.clone(),
    };
    let out = spec.natural_shape(&shapes[0]);
    let consts: Vec<&Const> = vals
        .iter()
        .filter_map(|v| match v {
            Val::Const(c) => Some(c),
            Val::Act(_) => None,
        })
        .collect();
    if consts.len() == vals.len() {
        return Ok(Val::Const(concat_consts(&spec, &consts, out)));
    }
    let first_act = vals
        .iter()
        .find(|v| matches!(v, Val::Act(_)))
        .cloned()
        .ok_or_else(|| n.err("no activation input"))?;
    for v in vals.iter_mut() {
        if let Val::Const(c) = v {
            *v = constant_like(cx, n, &first_act, c, axis)?;
        }
    }
    let ids: Vec<usize> = vals
        .iter()
        .filter_map(|v| match v {
            Val::Act(id) => Some(*id),
            Val::Const(_) => None,
        })
        .collect();
    let dt = cx.graph.values[ids[0]].dtype;
    if ids.iter().any(|&i| cx.graph.values[i].dtype != dt) {
        return Err(n.err("inputs have mixed dtypes"));
    }
    Ok(cx.push(n, FOp::Copy(spec), ids, out, dt))
}

/// The float constant `c` as an activation, for a Concat along `axis` with the activation `x`:
/// `0·v + c`, where `v` is `x` narrowed along `axis` to `c`'s shape (its first slice repeated).
/// The affine map skips zero weights, so every output cell is the bias gate's constant: the
/// circuit pins it, whatever `x` holds.
fn constant_like(cx: &mut Cx, n: &NodeIn, x: &Val, c: &Const, axis: usize) -> Result<Val> {
    if !matches!(c.data, CData::F(_)) {
        return Err(n.unsupported("concatenating an integer constant with an activation"));
    }
    let spec = CopySpec::Select {
        in_shape: cx.shape(x),
        axis,
        indices: vec![0; c.shape[axis]],
    };
    let v = cx.copy(n, x.clone(), spec, c.shape.clone())?;
    let fill = FOp::Affine(super::affine::FAffine {
        mul: Some(crate::tensor::Tensor::new(vec![], vec![0.0])),
        add: Some(c.tensor_f32()),
    });
    cx.float_op(n, v, fill, c.shape.clone())
}

fn concat_consts(spec: &CopySpec, cs: &[&Const], out: Vec<usize>) -> Const {
    let data = if cs.iter().all(|c| matches!(c.data, CData::I(_))) {
        let v: Vec<Vec<i64>> = cs.iter().map(|c| c.ints().unwrap_or_default()).collect();
        let r: Vec<&[i64]> = v.iter().map(|x| x.as_slice()).collect();
        CData::I(apply(spec, &r))
    } else {
        let v: Vec<Vec<f32>> = cs.iter().map(|c| c.floats()).collect();
        let r: Vec<&[f32]> = v.iter().map(|x| x.as_slice()).collect();
        CData::F(apply(spec, &r))
    };
    Const { shape: out, data }
}

/// `Slice` with constant starts/ends/axes/steps: one selection per sliced axis.
fn slice(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let (starts, ends, axes, steps) = if n.opset >= 10 {
        let g = |k: usize| -> Result<Option<Vec<i64>>> {
            Ok(n.opt_const(k, "slice operands")?.and_then(|c| c.ints()))
        };
        (
            g(1)?.ok_or_else(|| n.err("starts required"))?,
            g(2)?.ok_or_else(|| n.err("ends required"))?,
            g(3)?,
            g(4)?,
        )
    } else {
        (
            n.attr_ints("starts").unwrap_or_default(),
            n.attr_ints("ends").unwrap_or_default(),
            n.attr_ints("axes"),
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let mut cur = x;
    let mut cur_shape = s.clone();
    for (j, &a) in axes.iter().enumerate() {
        let a = norm_axis(a, s.len()).ok_or_else(|| n.err("axis out of range"))?;
        let d = cur_shape[a] as i64;
        let step = steps
            .as_ref()
            .and_then(|st| st.get(j).copied())
            .unwrap_or(1);
        if step == 0 {
            return Err(n.err("step 0"));
        }
        let st = starts.get(j).copied().unwrap_or(0);
        let en = ends.get(j).copied().unwrap_or(i64::MAX);
        let indices = slice_indices(d, st, en, step);
        if indices.is_empty() {
            return Err(n.err("slice selects no elements"));
        }
        if indices.len() as i64 == d && step == 1 {
            continue;
        }
        let spec = CopySpec::Select {
            in_shape: cur_shape.clone(),
            axis: a,
            indices,
        };
        let out = spec.natural_shape(&cur_shape);
        cur = cx.copy(n, cur, spec, out.clone())?;
        cur_shape = out;
    }
    Ok(cur)
}

/// The indices a slice `start:end:step` selects on an axis of size `d` (ONNX clamping rules).
fn slice_indices(d: i64, st: i64, en: i64, step: i64) -> Vec<usize> {
    let fix = |v: i64, lo: i64, hi: i64| {
        let v = if v < 0 { v + d } else { v };
        v.clamp(lo, hi)
    };
    if step > 0 {
        let (b, e) = (fix(st, 0, d), fix(en.min(d), 0, d));
        (b..e).step_by(step as usize).map(|v| v as usize).collect()
    } else {
        let (b, e) = (fix(st, -1, d - 1), fix(en.max(-d - 1), -1, d - 1));
        let mut v = Vec::new();
        let mut i = b;
        while i > e {
            v.push(i as usize);
            i += step;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_concat_select() {
        let t = CopySpec::Transpose {
            in_shape: vec![2, 3],
            perm: vec![1, 0],
        };
        assert_eq!(apply(&t, &[&[1, 2, 3, 4, 5, 6]]), vec![1, 4, 2, 5, 3, 6]);
        let c = CopySpec::Concat {
            axis: 1,
            in_shapes: vec![vec![2, 1], vec![2, 2]],
        };
        assert_eq!(apply(&c, &[&[1, 2], &[3, 4, 5, 6]]), vec![1, 3, 4, 2, 5, 6]);
        let s = CopySpec::Select {
            in_shape: vec![1, 4],
            axis: 1,
            indices: vec![3, 0],
        };
        assert_eq!(apply(&s, &[&[7, 8, 9, 10]]), vec![10, 7]);
    }
}
