//! The affine map with constant operands: `y = rescale(x·mul + add, shift)`, each constant
//! broadcast to the input's shape. BatchNormalization, and Add/Sub/Mul/Div by a constant
//! (see [`super::binary`]), lower to it; a following Linear absorbs it when it can
//! ([`crate::onnx::fuse`]).

use halo2_proofs::plonk::Error as PlonkError;

use super::{
    Decode, FloatArgs, FloatOp, IntArgs, IntOp, LIMIT, LayoutArgs, Op, magnitude, max_abs,
    params_if, shift_ok,
};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::Result;
use crate::ir::{FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer, affine_scale, quant_tensor};
use crate::tensor::{Tensor, broadcast_map, broadcast_shape, numel};
use crate::wire::{R, W};

const KIND: &str = "affine";

/// The ONNX ops that become affine maps on their own (Add/Sub/Mul/Div by a constant are
/// lowered by [`super::binary`]).
pub const ONNX: &[(&str, Lowering)] = &[("BatchNormalization", batch_norm)];

/// A float affine map `x·mul + add`.
#[derive(Clone, Debug, PartialEq)]
pub struct FAffine {
    pub mul: Option<Tensor<f32>>,
    pub add: Option<Tensor<f32>>,
}

/// `y = rescale(x·mul + add, shift)` (without `mul`, `x + add`); `add` is at the product's scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affine {
    pub mul: Option<Tensor<i64>>,
    pub add: Option<Tensor<i64>>,
    pub shift: u32,
}

/// `x·mul + add`, each constant broadcast to the input's `shape`: the float map (constants
/// widened to f64) and the integer accumulation before rescale (`add` at the product's scale).
pub fn affine_map<T, C>(
    x: &[T],
    shape: &[usize],
    mul: Option<&Tensor<C>>,
    add: Option<&Tensor<C>>,
) -> Vec<T>
where
    T: Copy + std::ops::Mul<Output = T> + std::ops::Add<Output = T>,
    C: Copy + Into<T>,
{
    let mm = mul.map(|m| broadcast_map(&m.shape, shape));
    let ma = add.map(|a| broadcast_map(&a.shape, shape));
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = match (mul, &mm) {
                (Some(m), Some(map)) => v * m.data[map[i]].into(),
                _ => v,
            };
            match (add, &ma) {
                (Some(a), Some(map)) => v + a.data[map[i]].into(),
                _ => v,
            }
        })
        .collect()
}

impl FloatOp for FAffine {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        affine_map(
            a.ins[0],
            a.in_shapes[0],
            self.mul.as_ref(),
            self.add.as_ref(),
        )
    }

    fn macs(&self, out_len: usize) -> u64 {
        if self.mul.is_some() {
            out_len as u64
        } else {
            0
        }
    }

    fn quantize(&self, q: &mut Quantizer, n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let x = q.meta(n.inputs[0]);
        let (sx, bx) = (x.scale, x.bits);
        let m_out = q.max_abs(n.output);
        let sm = self
            .mul
            .as_ref()
            .map_or(0, |m| affine_scale(q, &m.data, bx));
        let nat = sx + sm;
        let s = q.choose(m_out).min(nat);
        let op = Op::Affine(Affine {
            mul: self.mul.as_ref().map(|m| quant_tensor(m, sm)),
            add: self.add.as_ref().map(|a| quant_tensor(a, nat)),
            shift: nat - s,
        });
        Ok(Quantized::real(op, s, q.bits(m_out, s)?))
    }
}

impl IntOp for Affine {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        let acc = affine_map(
            a.ins[0],
            &a.in_meta[0].shape,
            self.mul.as_ref(),
            self.add.as_ref(),
        );
        Ok(acc
            .into_iter()
            .map(|v| super::rescale(v, self.shift))
            .collect())
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let in_shape = &ins[0].shape;
        let fits = |t: &Option<Tensor<i64>>| {
            t.as_ref().is_none_or(|t| {
                t.data.len() == numel(&t.shape)
                    && broadcast_shape(&t.shape, in_shape).as_deref() == Some(&in_shape[..])
            })
        };
        params_if(
            numel(in_shape) == numel(&out.shape)
                && shift_ok(self.shift)
                && fits(&self.mul)
                && fits(&self.add),
        )
    }

    fn bounded(&self, ins: &[&TensorMeta]) -> bool {
        let m = self.mul.as_ref().map_or(1, |t| max_abs(&t.data));
        let a = self.add.as_ref().map_or(0, |t| max_abs(&t.data));
        magnitude(ins[0]) * m + a < LIMIT
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        None
    }

    fn macs(&self, out_len: usize) -> u64 {
        if self.mul.is_some() {
            out_len as u64
        } else {
            0
        }
    }

    fn params(&self) -> u64 {
        (self.mul.as_ref().map_or(0, |t| t.len()) + self.add.as_ref().map_or(0, |t| t.len())) as u64
    }

    fn lookups(&self, _out_len: usize) -> u64 {
        0
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        None
    }

    /// One single-lane dot row and a rescale per element.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let shape = &a.in_meta[0].shape;
        let mm = self
            .mul
            .as_ref()
            .map(|m| (m, broadcast_map(&m.shape, shape)));
        let ma = self
            .add
            .as_ref()
            .map(|t| (t, broadcast_map(&t.shape, shape)));
        a.ins[0]
            .iter()
            .enumerate()
            .map(|(i, xi)| {
                let m = mm.as_ref().map_or(1, |(t, map)| t.data[map[i]] as i128);
                let add = ma.as_ref().map_or(0, |(t, map)| t.data[map[i]] as i128);
                ctx.affine(add, &[(m, xi)], self.shift, a.out.bits)
            })
            .collect()
    }

    fn encode(&self, w: &mut W) {
        w.opt_tensor(&self.mul);
        w.opt_tensor(&self.add);
        w.u(self.shift as u64);
    }
}

impl Decode for Affine {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(Affine {
            mul: r.opt_tensor()?,
            add: r.opt_tensor()?,
            shift: r.u32()?,
        })
    }
}

/// `BatchNormalization` (inference): `x·scale/sqrt(var + eps) + (bias - mean·that)` per channel.
fn batch_norm(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let x = n.input(0)?;
    let s = cx.shape(&x);
    if s.len() < 2 {
        return Err(n.err("input must have a channel axis"));
    }
    let ch = s[1];
    let get = |k: usize, what: &str| -> Result<Vec<f32>> {
        let c = n.const_input(k, what)?;
        if numel(&c.shape) != ch {
            return Err(n.err(format!("{what} has the wrong length")));
        }
        Ok(c.floats())
    };
    let (scale, bias, mean, var) = (
        get(1, "scale")?,
        get(2, "bias")?,
        get(3, "mean")?,
        get(4, "variance")?,
    );
    let eps = n.attr_f("epsilon", 1e-5);
    let mul: Vec<f32> = (0..ch).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
    let add: Vec<f32> = (0..ch).map(|i| bias[i] - mean[i] * mul[i]).collect();
    let mut cshape = vec![ch];
    cshape.extend(std::iter::repeat_n(1, s.len() - 2));
    let op = FOp::Affine(FAffine {
        mul: Some(Tensor::new(cshape.clone(), mul)),
        add: Some(Tensor::new(cshape, add)),
    });
    cx.float_op(n, x, op, s)
}
