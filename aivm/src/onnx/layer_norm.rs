//! `LayerNormalization`: `(x - mean) · rsqrt(var + eps) · scale + bias` over the axes from
//! `axis` on, built from reductions, elementwise ops and one calibrated rsqrt table.

use super::attrs::reduced_shape;
use super::cx::{Const, Cx, NodeIn, Val};
use crate::error::Result;
use crate::ir::{DType, FOp};
use crate::ops::affine::FAffine;
use crate::ops::binary::BinKind;
use crate::ops::group::GroupSpec;
use crate::ops::lut::LutFn;
use crate::ops::reduce::{FReduce, ReduceKind};
use crate::tensor::{Tensor, norm_axis, numel};

pub fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    if n.proto.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(n.unsupported("the Mean and InvStdDev outputs"));
    }
    let x = n.input(0)?;
    let s = cx.shape(&x);
    let axis =
        norm_axis(n.attr_i("axis", -1), s.len()).ok_or_else(|| n.err("axis out of range"))?;
    let axes: Vec<usize> = (axis..s.len()).collect();
    let inner = s[axis..].to_vec();
    let constant = |c: Option<Const>, what: &str| -> Result<Option<Tensor<f32>>> {
        let Some(c) = c else { return Ok(None) };
        let data = c.floats();
        if data.len() != numel(&inner) {
            return Err(n.err(format!(
                "{what} must have the normalized shape {}",
                crate::error::ShapeDisplay(inner.clone())
            )));
        }
        Ok(Some(Tensor::new(inner.clone(), data)))
    };
    let scale = constant(Some(n.const_input(1, "scale")?), "scale")?;
    let bias = constant(n.opt_const(2, "bias")?, "bias")?;
    let eps = n.attr_f("epsilon", 1e-5);
    let xid = cx.float_act(&x, n)?;
    let reduced = reduced_shape(&s, &axes, true);
    let mean_op = || {
        FOp::Reduce(FReduce {
            kind: ReduceKind::Mean,
            groups: GroupSpec::Axes {
                shape: s.clone(),
                axes: axes.clone(),
            },
        })
    };
    let mean = cx.push_part(n, "mean", mean_op(), vec![xid], reduced.clone());
    let sub = FOp::Binary(BinKind::Sub);
    let d = cx.push_part(n, "centered", sub, vec![xid, mean], s.clone());
    let mul = || FOp::Binary(BinKind::Mul);
    let d2 = cx.push_part(n, "squared", mul(), vec![d, d], s.clone());
    let var = cx.push_part(n, "variance", mean_op(), vec![d2], reduced.clone());
    let plus_eps = FOp::Affine(FAffine {
        mul: None,
        add: Some(Tensor::new(vec![1], vec![eps])),
    });
    let var_eps = cx.push_part(n, "variance_eps", plus_eps, vec![var], reduced.clone());
    let rsqrt = FOp::Lut(LutFn::Rsqrt);
    let inv = cx.push_part(n, "inv_std", rsqrt, vec![var_eps], reduced);
    let normed = cx.push_part(n, "normalized", mul(), vec![d, inv], s.clone());
    let affine = FOp::Affine(FAffine {
        mul: scale,
        add: bias,
    });
    Ok(cx.push(n, affine, vec![normed], s, DType::F32))
}
