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

/// Least-squares line through `(gas, seconds)` points. With a single distinct gas value the
/// line goes through the origin (there is nothing to separate a fixed cost from).
pub fn fit(points: &[(f64, f64)], schedule: u32, predicts: &str) -> CostCurve {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let (a, b) = if sxx > 0.0 {
        let b = sxy / sxx;
        (my - b * mx, b)
    } else {
        (0.0, if mx > 0.0 { my / mx } else { 0.0 })
    };
    let ss_tot: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
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
        let one = fit(&[(100.0, 2.0), (100.0, 4.0)], 1, "prove");
        assert_eq!(one.fixed_seconds, 0.0);
        assert!((one.predict(100) - 3.0).abs() < 1e-12);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
