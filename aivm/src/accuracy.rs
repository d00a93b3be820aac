//! Accuracy of the integer executor against the float reference.

use serde::Serialize;

use crate::tensor::Tensor;

/// How one output of the integer program compares with the float reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputAccuracy {
    pub name: String,
    pub shape: Vec<usize>,
    /// Largest `|quantized - float|`.
    pub max_abs_error: f64,
    /// `max_abs_error / max|float|`: the error relative to the output's range. (An element-wise
    /// relative error is meaningless for outputs near zero, such as ReLU zeros or tiny
    /// probabilities.)
    pub max_rel_error: f64,
    /// Whether the argmax over the last axis agrees for every row (`None` for a last axis of 1).
    pub argmax_agrees: Option<bool>,
}

/// Accuracy over all outputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    pub outputs: Vec<OutputAccuracy>,
}

impl Accuracy {
    pub fn max_rel_error(&self) -> f64 {
        self.outputs
            .iter()
            .map(|o| o.max_rel_error)
            .fold(0.0, f64::max)
    }

    pub fn argmax_agrees(&self) -> bool {
        self.outputs.iter().all(|o| o.argmax_agrees != Some(false))
    }
}

/// Row-wise argmax over the last axis (first index wins ties).
pub fn argmax_rows(t: &Tensor<f64>) -> Vec<usize> {
    let last = *t.shape.last().unwrap_or(&1);
    if last == 0 {
        return vec![];
    }
    t.data
        .chunks(last)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// Compares quantized outputs (dequantized) with float outputs.
pub fn compare(names: &[String], float: &[Tensor<f64>], quant: &[Tensor<f64>]) -> Accuracy {
    let outputs = names
        .iter()
        .zip(float.iter().zip(quant))
        .map(|(name, (f, q))| {
            let max_abs_error = f
                .data
                .iter()
                .zip(&q.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let range = f.data.iter().map(|v| v.abs()).fold(0.0, f64::max);
            let max_rel_error = if range > 0.0 {
                max_abs_error / range
            } else {
                max_abs_error
            };
            let last = *f.shape.last().unwrap_or(&1);
            let argmax_agrees = (last > 1).then(|| argmax_rows(f) == argmax_rows(q));
            OutputAccuracy {
                name: name.clone(),
                shape: f.shape.clone(),
                max_abs_error,
                max_rel_error,
                argmax_agrees,
            }
        })
        .collect();
    Accuracy { outputs }
}
