//! Shape rules of ONNX attributes shared by several lowerings: reshape targets, reduced shapes,
//! NCHW views, spatial attributes, padding, and per-channel constants.

use super::cx::{Const, NodeIn};
use crate::tensor::{Tensor, broadcast_map, broadcast_shape, numel};

/// ONNX Reshape target: 0 copies the input dim (unless `allowzero`), one -1 is inferred.
pub fn reshape_target(
    in_shape: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> std::result::Result<Vec<usize>, String> {
    let total = numel(in_shape);
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*in_shape.get(i).ok_or("0 refers past the input's rank")?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err("invalid shape operand".into()),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("shape overflows")?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {} elements to {:?}", total, spec));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {} elements to {:?}", total, spec));
    }
    Ok(out)
}

/// The shape after reducing `axes` (kept as 1s with `keepdims`).
pub fn reduced_shape(s: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    s.iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keepdims.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

/// (N, C, H, W) of a rank-4 tensor, or of a rank-3 one read as H = 1.
pub fn nchw(s: &[usize]) -> Option<(usize, usize, usize, usize)> {
    match s.len() {
        4 => Some((s[0], s[1], s[2], s[3])),
        3 => Some((s[0], s[1], 1, s[2])),
        _ => None,
    }
}

/// Two spatial values for a rank-4 (H, W) or rank-3 (1, L) tensor.
pub fn spatial2(v: &[i64], rank: usize) -> Option<[usize; 2]> {
    let ok = |x: i64| usize::try_from(x).ok().filter(|&x| x > 0);
    match (rank, v) {
        (4, [a, b]) => Some([ok(*a)?, ok(*b)?]),
        (3, [a]) => Some([1, ok(*a)?]),
        _ => None,
    }
}

/// A window's geometry over a spatial input: input size, kernel, stride, dilation.
pub struct Window {
    pub hw: [usize; 2],
    pub k: [usize; 2],
    pub stride: [usize; 2],
    pub dil: [usize; 2],
    /// Output size rounds up (pooling's `ceil_mode`).
    pub ceil: bool,
}

/// Padding (top, left) and output size from `pads` / `auto_pad`.
pub fn pads_and_out(
    n: &NodeIn,
    rank: usize,
    w: &Window,
) -> std::result::Result<([usize; 2], usize, usize), String> {
    let auto = n.attr_s("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let mut pb = [0usize; 4]; // top, left, bottom, right
    match auto.as_str() {
        "NOTSET" | "" => {
            if let Some(p) = n.attr_ints("pads") {
                let p: Vec<usize> = p
                    .iter()
                    .map(|&v| usize::try_from(v).map_err(|_| "negative padding".to_string()))
                    .collect::<std::result::Result<_, _>>()?;
                match (rank, p.as_slice()) {
                    (4, [t, l, b, r]) => pb = [*t, *l, *b, *r],
                    (3, [l, r]) => pb = [0, *l, 0, *r],
                    _ => return Err("pads have the wrong length".into()),
                }
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for i in 0..2 {
                let out = w.hw[i].div_ceil(w.stride[i]);
                let need =
                    ((out - 1) * w.stride[i] + w.dil[i] * (w.k[i] - 1) + 1).saturating_sub(w.hw[i]);
                let (a, b) = if auto == "SAME_UPPER" {
                    (need / 2, need - need / 2)
                } else {
                    (need - need / 2, need / 2)
                };
                pb[i] = a;
                pb[i + 2] = b;
            }
        }
        other => return Err(format!("auto_pad {other} is not supported")),
    }
    let out = |i: usize| -> std::result::Result<usize, String> {
        let span = w.dil[i] * (w.k[i] - 1) + 1;
        let padded = w.hw[i] + pb[i] + pb[i + 2];
        if padded < span {
            return Err("the kernel is larger than the padded input".into());
        }
        let q = padded - span;
        Ok(if w.ceil {
            q.div_ceil(w.stride[i])
        } else {
            q / w.stride[i]
        } + 1)
    };
    Ok(([pb[0], pb[1]], out(0)?, out(1)?))
}

/// The per-channel vector of a constant that broadcasts onto `out_shape` and varies only along
/// `axis`, or `None`.
pub fn per_channel(c: &Const, out_shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    per_channel_t(&c.tensor_f32(), out_shape, axis)
}

/// [`per_channel`] of a float tensor.
pub fn per_channel_t(t: &Tensor<f32>, out_shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    let b = broadcast_shape(&t.shape, out_shape)?;
    if b != out_shape {
        return None;
    }
    let map = broadcast_map(&t.shape, out_shape);
    let st = crate::tensor::strides(out_shape);
    let ch = out_shape[axis];
    let mut v = vec![f32::NAN; ch];
    for (o, &src) in map.iter().enumerate() {
        let c = (o / st[axis]) % ch;
        let x = t.data[src];
        if v[c].is_nan() {
            v[c] = x;
        } else if v[c] != x {
            return None;
        }
    }
    Some(v)
}
