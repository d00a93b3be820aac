//! The cost curve: `seconds = fixed + per_gas · gas`, fitted by least squares.

use serde::{Deserialize, Serialize};

/// A fitted cost curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostCurve {
    /// Seconds every task costs regardless of its gas.
    pub fixed_seconds: f64,
    /// Seconds per unit of gas.
    pub seconds_per_gas: f64,
    /// Coefficient of determination of the fit over all measured runs.
    pub r2: f64,
    /// Gas schedule version the curve was fitted against.
    pub schedule: u32,
    /// What the curve predicts.
    pub predicts: String,
    /// Number of measurements fitted.
    pub points: usize,
}

impl CostCurve {
    /// Predicted seconds for a task of `gas`.
    pub fn predict(&self, gas: u64) -> f64 {
        self.fixed_seconds + self.seconds_per_gas * gas as f64
    }
}

/// Least-squares line through `(gas, seconds)` points, weighted by `1/seconds²` so that it
/// minimises relative errors (a 10 ms miss matters for a 0.2 s proof, not for a 40 s one).
/// Costs are never negative: when the unconstrained line has a negative fixed cost or slope
/// (e.g. every size lands in the same domain, so gas barely varies and the slope is noise), the
/// line goes through the origin instead. `r2` is the ordinary coefficient of determination.
pub fn fit(points: &[(f64, f64)], schedule: u32, predicts: &str) -> CostCurve {
    let w: Vec<f64> = points
        .iter()
        .map(|p| 1.0 / (p.1 * p.1).max(1e-12))
        .collect();
    let sw: f64 = w.iter().sum();
    let mx = points.iter().zip(&w).map(|(p, w)| w * p.0).sum::<f64>() / sw;
    let my = points.iter().zip(&w).map(|(p, w)| w * p.1).sum::<f64>() / sw;
    let sxx: f64 = points
        .iter()
        .zip(&w)
        .map(|(p, w)| w * (p.0 - mx).powi(2))
        .sum();
    let sxy: f64 = points
        .iter()
        .zip(&w)
        .map(|(p, w)| w * (p.0 - mx) * (p.1 - my))
        .sum();
    let through_origin = || {
        let num: f64 = points.iter().zip(&w).map(|(p, w)| w * p.0 * p.1).sum();
        let den: f64 = points.iter().zip(&w).map(|(p, w)| w * p.0 * p.0).sum();
        (0.0, if den > 0.0 { num / den } else { 0.0 })
    };
    let (a, b) = if sxx > 0.0 {
        let b = sxy / sxx;
        let a = my - b * mx;
        if a < 0.0 || b < 0.0 {
            through_origin()
        } else {
            (a, b)
        }
    } else {
        through_origin()
    };
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.1).sum::<f64>() / n;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let ss_res: f64 = points.iter().map(|p| (p.1 - (a + b * p.0)).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        1.0
    };
    CostCurve {
        fixed_seconds: a,
        seconds_per_gas: b,
        r2,
        schedule,
        predicts: predicts.into(),
        points: points.len(),
    }
}

/// Median of a non-empty list.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_line() {
        let pts: Vec<(f64, f64)> = (1..10)
            .map(|i| (i as f64 * 1000.0, 0.5 + 0.001 * i as f64 * 1000.0))
            .collect();
        let c = fit(&pts, 1, "prove");
        assert!((c.fixed_seconds - 0.5).abs() < 1e-9 && (c.seconds_per_gas - 0.001).abs() < 1e-12);
        assert!((c.r2 - 1.0).abs() < 1e-12);
        assert!((c.predict(20_000) - 20.5).abs() < 1e-9);
        // One gas value: through the origin, at the weighted mean (closer to the faster run).
        let one = fit(&[(100.0, 2.0), (100.0, 4.0)], 1, "prove");
        assert_eq!(one.fixed_seconds, 0.0);
        assert!(
            (one.predict(100) - 2.4).abs() < 1e-9,
            "{}",
            one.predict(100)
        );
        // A slope that comes out negative is refused: costs go through the origin instead.
        let noisy = fit(&[(1000.0, 1.1), (1001.0, 1.0), (1002.0, 0.9)], 1, "prove");
        assert!(noisy.fixed_seconds == 0.0 && noisy.seconds_per_gas > 0.0);
        // Relative errors are balanced: small and large points are both predicted closely.
        let pts = [
            (512.0, 0.201),
            (1024.0, 0.348),
            (2048.0, 0.611),
            (4096.0, 1.090),
        ];
        let c = fit(&pts, 1, "prove");
        for (x, y) in pts {
            assert!(
                ((c.predict(x as u64) - y) / y).abs() < 0.05,
                "{x}: {} vs {y}",
                c.predict(x as u64)
            );
        }
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
