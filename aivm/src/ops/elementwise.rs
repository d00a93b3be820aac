//! Elementwise ops: an affine map with constant (broadcast) operands, Add/Sub/Mul of two
//! activations, ReLU, LeakyReLU and Clip.

use serde::{Deserialize, Serialize};

use crate::tensor::{Tensor, broadcast_map};

/// Add, Sub or Mul of two activations (with numpy broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinKind {
    Add,
    Sub,
    Mul,
}

impl BinKind {
    pub fn apply_f(self, a: f64, b: f64) -> f64 {
        match self {
            BinKind::Add => a + b,
            BinKind::Sub => a - b,
            BinKind::Mul => a * b,
        }
    }
}

/// Evaluates `f(a[i], b[j])` over the broadcast output shape.
pub fn binary<T: Copy, U>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    f: impl Fn(T, T) -> U,
) -> Vec<U> {
    let ma = broadcast_map(a_shape, out_shape);
    let mb = broadcast_map(b_shape, out_shape);
    ma.iter().zip(&mb).map(|(&i, &j)| f(a[i], b[j])).collect()
}

/// Float affine map `x·mul + add`, each constant broadcast to the input's shape.
pub fn affine_f(
    x: &[f64],
    shape: &[usize],
    mul: Option<&Tensor<f32>>,
    add: Option<&Tensor<f32>>,
) -> Vec<f64> {
    let mm = mul.map(|m| broadcast_map(&m.shape, shape));
    let ma = add.map(|a| broadcast_map(&a.shape, shape));
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = match (mul, &mm) {
                (Some(m), Some(map)) => v * m.data[map[i]] as f64,
                _ => v,
            };
            match (add, &ma) {
                (Some(a), Some(map)) => v + a.data[map[i]] as f64,
                _ => v,
            }
        })
        .collect()
}

/// Integer affine accumulation `x·mul + add` before rescale (`add` is at the product's scale).
pub fn affine_acc_i(
    x: &[i64],
    shape: &[usize],
    mul: Option<&Tensor<i64>>,
    add: Option<&Tensor<i64>>,
) -> Vec<i64> {
    let mm = mul.map(|m| broadcast_map(&m.shape, shape));
    let ma = add.map(|a| broadcast_map(&a.shape, shape));
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = match (mul, &mm) {
                (Some(m), Some(map)) => v * m.data[map[i]],
                _ => v,
            };
            match (add, &ma) {
                (Some(a), Some(map)) => v + a.data[map[i]],
                _ => v,
            }
        })
        .collect()
}

/// Integer LeakyReLU: `x` for `x >= 0`, else `rescale(x·alpha, alpha_scale)`.
#[inline]
pub fn leaky_relu_i(x: i64, alpha: i64, alpha_scale: u32) -> i64 {
    if x >= 0 {
        x
    } else {
        super::rescale(x * alpha, alpha_scale)
    }
}

use crate::circuit::ctx::{Cell, Ctx};
use halo2_proofs::plonk::Error;

/// Circuit layout of [`affine_acc_i`] + rescale: one single-lane dot row and a rescale per element.
pub fn layout_affine(
    ctx: &mut Ctx,
    shape: &[usize],
    mul: Option<&Tensor<i64>>,
    add: Option<&Tensor<i64>>,
    shift: u32,
    x: &[Cell],
    out_bits: u32,
) -> Result<Vec<Cell>, Error> {
    let mm = mul.map(|m| broadcast_map(&m.shape, shape));
    let ma = add.map(|a| broadcast_map(&a.shape, shape));
    x.iter()
        .enumerate()
        .map(|(i, xi)| {
            let m = match (mul, &mm) {
                (Some(t), Some(map)) => t.data[map[i]] as i128,
                _ => 1,
            };
            let a = match (add, &ma) {
                (Some(t), Some(map)) => t.data[map[i]] as i128,
                _ => 0,
            };
            ctx.affine(a, &[(m, xi)], shift, out_bits)
        })
        .collect()
}

/// Circuit layout of Add/Sub (a two-lane dot row) and Mul (the product gate), then the rescale.
pub fn layout_binary(
    ctx: &mut Ctx,
    kind: BinKind,
    (la, lb, shift): (u32, u32, u32),
    (a, a_shape): (&[Cell], &[usize]),
    (b, b_shape): (&[Cell], &[usize]),
    out_shape: &[usize],
    out_bits: u32,
) -> Result<Vec<Cell>, Error> {
    let ma = broadcast_map(a_shape, out_shape);
    let mb = broadcast_map(b_shape, out_shape);
    ma.iter()
        .zip(&mb)
        .map(|(&i, &j)| match kind {
            BinKind::Add => ctx.affine(
                0,
                &[(1i128 << la, &a[i]), (1i128 << lb, &b[j])],
                shift,
                out_bits,
            ),
            BinKind::Sub => ctx.affine(
                0,
                &[(1i128 << la, &a[i]), (-(1i128 << lb), &b[j])],
                shift,
                out_bits,
            ),
            BinKind::Mul => ctx.mul(&a[i], &b[j], shift, out_bits),
        })
        .collect()
}

/// Signed bit width of `rescale(x·alpha, alpha_scale)` over every `x` of `in_bits` bits: the
/// range LeakyReLU's negative branch is checked to, and (with `in_bits`) its output's width.
pub fn leaky_z_bits(in_bits: u32, alpha: i64, alpha_scale: u32) -> u32 {
    let (lo, hi) = crate::program::bit_range(in_bits);
    [lo, hi]
        .iter()
        .map(|&x| {
            let v = x as i128 * alpha as i128;
            let half = if alpha_scale == 0 {
                0
            } else {
                1i128 << (alpha_scale - 1)
            };
            super::signed_bits((v + half) >> alpha_scale)
        })
        .max()
        .unwrap_or(2)
}

/// Circuit layout of [`leaky_relu_i`]: `z = rescale(x·alpha)` always, then a sign-selected
/// `x` or `z`.
pub fn layout_leaky(
    ctx: &mut Ctx,
    alpha: i64,
    alpha_scale: u32,
    x: &[Cell],
    in_bits: u32,
) -> Result<Vec<Cell>, Error> {
    let z_bits = leaky_z_bits(in_bits, alpha, alpha_scale);
    x.iter()
        .map(|xi| {
            let z = ctx.affine(0, &[(alpha as i128, xi)], alpha_scale, z_bits)?;
            ctx.select_nonneg(xi, &z, in_bits)
        })
        .collect()
}

/// Circuit layout of Clip: `max(x, lo)` then `min(·, hi)`, each one comparison row.
pub fn layout_clip(
    ctx: &mut Ctx,
    lo: Option<i64>,
    hi: Option<i64>,
    x: &[Cell],
    in_bits: u32,
) -> Result<Vec<Cell>, Error> {
    x.iter()
        .map(|xi| {
            let mut y = xi.clone();
            if let Some(l) = lo {
                let bits = in_bits.max(super::signed_bits(l as i128)) + 1;
                y = ctx.cmp_const(&y, l as i128, false, bits)?;
            }
            if let Some(h) = hi {
                let bits = in_bits.max(super::signed_bits(h as i128)) + 1;
                y = ctx.cmp_const(&y, h as i128, true, bits)?;
            }
            Ok(y)
        })
        .collect()
}
