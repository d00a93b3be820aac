//! Folds an Affine that follows a Linear (BatchNormalization after Conv, a bias Add after
//! MatMul, a constant scale) into the Linear's weights and bias.

use super::attrs::per_channel_t;
use crate::ir::{FOp, Graph};
use crate::ops::affine::FAffine;
use crate::ops::linear::{FLinear, LinearGeom};

/// Fuses every Linear → Affine pair where the Linear's output feeds nothing else and the
/// Affine's constants are per output channel.
pub fn fuse(g: &mut Graph) {
    let mut i = 0;
    while i + 1 < g.nodes.len() {
        if !try_fuse(g, i) {
            i += 1;
        }
    }
}

/// Fuses nodes `i` and `i + 1` if they qualify; returns whether it did.
fn try_fuse(g: &mut Graph, i: usize) -> bool {
    let lin_out = g.nodes[i].output;
    let uses = g
        .nodes
        .iter()
        .filter(|n| n.inputs.contains(&lin_out))
        .count();
    let next = &g.nodes[i + 1];
    let (FOp::Linear(lin), FOp::Affine(FAffine { mul, add })) = (&g.nodes[i].op, &next.op) else {
        return false;
    };
    if uses != 1 || g.outputs.contains(&lin_out) || next.inputs != [lin_out] {
        return false;
    }
    let out_shape = &g.values[next.output].shape;
    let axis = match &lin.geom {
        LinearGeom::MatMul { .. } => out_shape.len() - 1,
        LinearGeom::MatMulLeft { .. } => out_shape.len().saturating_sub(2),
        LinearGeom::Conv2d(_) => 1,
    };
    let pm = mul.as_ref().map(|m| per_channel_t(m, out_shape, axis));
    let pa = add.as_ref().map(|a| per_channel_t(a, out_shape, axis));
    if matches!(pm, Some(None)) || matches!(pa, Some(None)) {
        return false;
    }
    let ch = lin.geom.channels();
    let pm = pm.flatten().unwrap_or(vec![1.0; ch]);
    let pa = pa.flatten().unwrap_or(vec![0.0; ch]);
    let next = g.nodes.remove(i + 1);
    let node = &mut g.nodes[i];
    if let FOp::Linear(FLinear { geom, weight, bias }) = &mut node.op {
        for (wi, w) in weight.iter_mut().enumerate() {
            *w *= pm[weight_channel(geom, wi)];
        }
        let b = bias.get_or_insert_with(|| vec![0.0; ch]);
        for c in 0..ch {
            b[c] = b[c] * pm[c] + pa[c];
        }
    }
    // The fused node takes over the Affine's output value and a combined name.
    node.output = next.output;
    node.name = format!("{}+{}", node.name, next.name);
    node.onnx_op = format!("{}+{}", node.onnx_op, next.onnx_op);
    true
}

fn weight_channel(geom: &LinearGeom, wi: usize) -> usize {
    match geom {
        LinearGeom::MatMul { n, .. } => wi % n,
        LinearGeom::MatMulLeft { k, .. } => wi / k,
        LinearGeom::Conv2d(c) => wi / (c.c_in * c.kh * c.kw),
    }
}
