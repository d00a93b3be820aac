//! Nonlinear functions as lookup tables over a clamped, rescaled input domain. The table is
//! computed once, at quantization, and stored in the program, so every validator uses the same
//! integers whatever its libm does.

use serde::{Deserialize, Serialize};

/// A tabulated function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LutFn {
    Sigmoid,
    Tanh,
    /// `exp(x)` on `x <= 0`, used by softmax.
    Exp,
    /// `1/sqrt(x)` on `x > 0`, used by LayerNormalization. Its domain comes from calibration
    /// (see [`build_table_on`]); at zero it takes the value half a step up.
    Rsqrt,
}

impl LutFn {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            LutFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            LutFn::Tanh => x.tanh(),
            LutFn::Exp => x.exp(),
            LutFn::Rsqrt => 1.0 / x.sqrt(),
        }
    }

    /// The input interval outside of which the function is treated as constant (for rsqrt, a
    /// default; quantization sizes its table from the calibrated input instead).
    pub fn domain(self) -> (f64, f64) {
        match self {
            LutFn::Sigmoid => (-10.0, 10.0),
            LutFn::Tanh => (-5.0, 5.0),
            LutFn::Exp => (-12.0, 0.0),
            LutFn::Rsqrt => (0.0, 4.0),
        }
    }

    /// Input scale of the table: steeper functions get finer steps (tanh's slope is up to 1,
    /// sigmoid's up to 1/4; softmax must keep close logits apart). Tables are 1,281 (sigmoid,
    /// tanh) and 3,073 (exp) rows.
    pub fn table_scale(self) -> u32 {
        match self {
            LutFn::Sigmoid => 6,
            LutFn::Tanh => 7,
            LutFn::Exp => 8,
            LutFn::Rsqrt => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LutFn::Sigmoid => "sigmoid",
            LutFn::Tanh => "tanh",
            LutFn::Exp => "exp",
            LutFn::Rsqrt => "rsqrt",
        }
    }
}

/// Rescale by a signed shift: right shift with round-half-up for `shift > 0`, exact left shift
/// for `shift < 0`.
#[inline]
pub fn shift_signed(v: i64, shift: i32) -> i64 {
    if shift >= 0 {
        super::rescale(v, shift as u32)
    } else {
        v << (-shift) as u32
    }
}

/// Builds the table of `f` for integer inputs `lo..=hi` at `in_scale`, quantized at `out_scale`.
pub fn build_table(f: LutFn, in_scale: u32, out_scale: u32) -> (i64, i64, Vec<i64>) {
    build_table_on(f, f.domain(), in_scale, out_scale, i64::MAX)
}

/// [`build_table`] over the input interval `(dlo, dhi)`, with entries capped at `±cap` (the
/// output tensor's range). Rsqrt's pole is replaced by its value half a step above zero.
pub fn build_table_on(
    f: LutFn,
    (dlo, dhi): (f64, f64),
    in_scale: u32,
    out_scale: u32,
    cap: i64,
) -> (i64, i64, Vec<i64>) {
    let lo = (dlo * (1u64 << in_scale) as f64).floor() as i64;
    let hi = (dhi * (1u64 << in_scale) as f64).ceil() as i64;
    let half_step = 0.5 / (1u64 << in_scale) as f64;
    let table = (lo..=hi)
        .map(|c| {
            let mut x = super::dequantize(c, in_scale);
            if f == LutFn::Rsqrt {
                x = x.max(half_step);
            }
            super::quantize(f.apply(x), out_scale).clamp(-cap, cap)
        })
        .collect();
    (lo, hi, table)
}

/// Integer evaluation: `table[clamp(shift_signed(x), lo, lo + len - 1) - lo]`.
pub fn eval_i(x: &[i64], in_shift: i32, lo: i64, table: &[i64]) -> Vec<i64> {
    let hi = lo + table.len() as i64 - 1;
    x.iter()
        .map(|&v| table[(shift_signed(v, in_shift).clamp(lo, hi) - lo) as usize])
        .collect()
}

/// Circuit layout of [`eval_i`]: the signed shift (a rescale, or an exact multiplication),
/// the clamp to the table's domain (two comparisons), then one lookup.
pub fn layout(
    ctx: &mut crate::circuit::ctx::Ctx,
    tag: u64,
    in_shift: i32,
    lo: i64,
    table: &[i64],
    x: &[crate::circuit::ctx::Cell],
    in_bits: u32,
) -> Result<Vec<crate::circuit::ctx::Cell>, halo2_proofs::plonk::Error> {
    let hi = lo + table.len() as i64 - 1;
    x.iter()
        .map(|xi| {
            let (t, t_bits) = shifted(ctx, xi, in_shift, in_bits)?;
            let bits = t_bits
                .max(super::signed_bits(lo as i128))
                .max(super::signed_bits(hi as i128))
                + 1;
            let c = ctx.cmp_const(&t, lo as i128, false, bits)?;
            let c = ctx.cmp_const(&c, hi as i128, true, bits)?;
            let y = c.v.map(|cv| table[(cv - lo as i128) as usize] as i128);
            ctx.lut(tag, &c, y)
        })
        .collect()
}

/// [`shift_signed`] in the circuit, with the bit width of its result.
pub fn shifted(
    ctx: &mut crate::circuit::ctx::Ctx,
    x: &crate::circuit::ctx::Cell,
    in_shift: i32,
    in_bits: u32,
) -> Result<(crate::circuit::ctx::Cell, u32), halo2_proofs::plonk::Error> {
    use std::cmp::Ordering;
    match in_shift.cmp(&0) {
        Ordering::Equal => Ok((x.clone(), in_bits)),
        Ordering::Greater => Ok((ctx.affine(0, &[(1, x)], in_shift as u32, in_bits)?, in_bits)),
        Ordering::Less => {
            let k = in_shift.unsigned_abs();
            let bits = in_bits + k;
            Ok((ctx.affine(0, &[(1i128 << k, x)], 0, bits)?, bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_table_is_monotone_and_centred() {
        let (lo, hi, t) = build_table(LutFn::Sigmoid, 6, 12);
        assert_eq!(hi - lo + 1, t.len() as i64);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t[(0 - lo) as usize], 2048);
        // clamping: far outside the domain gives the end values
        assert_eq!(
            eval_i(&[i64::MIN / 4, 0, i64::MAX / 4], 0, lo, &t),
            vec![t[0], 2048, *t.last().unwrap()]
        );
    }

    #[test]
    fn signed_shift() {
        assert_eq!(shift_signed(5, 1), 3);
        assert_eq!(shift_signed(5, -2), 20);
    }
}
