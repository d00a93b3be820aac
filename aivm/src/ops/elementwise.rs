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
