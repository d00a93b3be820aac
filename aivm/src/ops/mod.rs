//! The AIVM op families. Each module holds, side by side, an op family's index geometry, its
//! float evaluation (calibration and the lowering's own cross-check) and its integer evaluation
//! (the meaning validators execute). The halo2 layout of each family lives next to these.

pub mod copy;
pub mod elementwise;
pub mod gather;
pub mod group;
pub mod linear;
pub mod lut;

/// Signed bit width that holds `k`.
pub fn signed_bits(k: i128) -> u32 {
    let a = if k < 0 { -(k + 1) } else { k };
    128 - (a as u128).leading_zeros() + 1
}

/// Round-half-up rescale by `2^shift`: `floor((v + 2^(shift-1)) / 2^shift)`. This is the one
/// rounding rule of the AIVM; the circuit proves `v + 2^(shift-1) = q·2^shift + r`, `0 <= r < 2^shift`.
#[inline]
pub fn rescale(v: i64, shift: u32) -> i64 {
    if shift == 0 {
        v
    } else {
        (v + (1i64 << (shift - 1))) >> shift
    }
}

/// Round-half-up division by a positive constant: `floor((v + floor(d/2)) / d)`.
#[inline]
pub fn div_round(v: i64, d: i64) -> i64 {
    (v + d / 2).div_euclid(d)
}

/// Quantizes a float to the integer grid of `scale`, rounding half away from zero.
#[inline]
pub fn quantize(x: f64, scale: u32) -> i64 {
    (x * (1u64 << scale) as f64).round() as i64
}

/// The float value of an integer at `scale`.
#[inline]
pub fn dequantize(v: i64, scale: u32) -> f64 {
    v as f64 / (1u64 << scale) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_half_up() {
        assert_eq!(rescale(5, 1), 3); // 2.5 -> 3
        assert_eq!(rescale(-5, 1), -2); // -2.5 -> -2
        assert_eq!(rescale(-6, 2), -1); // -1.5 -> -1
        assert_eq!(rescale(7, 0), 7);
        assert_eq!(div_round(7, 2), 4);
        assert_eq!(div_round(-7, 2), -3);
        assert_eq!(div_round(-8, 3), -3); // -2.67 -> -3
    }
}
