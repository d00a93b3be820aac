//! Input files: named tensors `{"inputs": {"x": [[...]]}}` or EZKL's `{"input_data": [[...]]}`
//! (one flat list per model input, in the model's input order). Errors name the input, the
//! shapes and the dtypes involved, never the values.

use serde_json::Value;

use crate::error::{AivmError, Result, ShapeDisplay};
use crate::ir::{DType, ValueInfo};
use crate::tensor::{Tensor, numel};

/// Parsed input tensors, in the model's input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    pub tensors: Vec<Tensor<f64>>,
}

/// Reads a JSON value as a nested array of numbers, returning its shape and flat data.
fn nested(v: &Value, path: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    match v {
        Value::Number(n) => Ok((vec![], vec![n.as_f64().unwrap_or(f64::NAN)])),
        Value::Array(items) => {
            let mut shape = None;
            let mut data = Vec::new();
            for (i, it) in items.iter().enumerate() {
                let (s, d) = nested(it, &format!("{path}[{i}]"))?;
                match &shape {
                    None => shape = Some(s),
                    Some(s0) if *s0 != s => {
                        return Err(AivmError::InputFormat(format!(
                            "{path} is a ragged array (rows of different shapes)"
                        )));
                    }
                    _ => {}
                }
                data.extend(d);
            }
            let mut s = vec![items.len()];
            s.extend(shape.unwrap_or_default());
            Ok((s, data))
        }
        other => Err(AivmError::InputFormat(format!(
            "{path}: expected a number or an array, found {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks a given tensor against the model's input and returns it in the model's shape. A flat
/// list with the right number of elements is accepted (EZKL writes flat lists).
fn fit(info: &ValueInfo, shape: Vec<usize>, data: Vec<f64>) -> Result<Tensor<f64>> {
    let want = &info.shape;
    let flat_ok = shape.len() == 1 && data.len() == numel(want);
    if shape != *want && !flat_ok {
        return Err(AivmError::Input {
            name: info.name.clone(),
            reason: format!(
                "expected shape {} {}, got {}",
                ShapeDisplay(want.clone()),
                info.dtype.name(),
                ShapeDisplay(shape)
            ),
        });
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(AivmError::Input {
            name: info.name.clone(),
            reason: "holds a value that is not a finite number".into(),
        });
    }
    if info.dtype == DType::I64
        && data
            .iter()
            .any(|v| v.fract() != 0.0 || v.abs() > 2f64.powi(31))
    {
        return Err(AivmError::Input {
            name: info.name.clone(),
            reason: format!(
                "expected integers ({} token ids), got non-integer numbers",
                info.dtype.name()
            ),
        });
    }
    Ok(Tensor::new(want.clone(), data))
}

/// Parses an input file's text against the model's inputs.
pub fn parse_inputs(text: &str, model_inputs: &[ValueInfo]) -> Result<Inputs> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        AivmError::InputFormat(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let obj = v.as_object().ok_or_else(|| {
        AivmError::InputFormat("expected a JSON object with \"inputs\" or \"input_data\"".into())
    })?;
    let mut tensors = Vec::with_capacity(model_inputs.len());
    if let Some(named) = obj.get("inputs") {
        let named = named.as_object().ok_or_else(|| {
            AivmError::InputFormat("\"inputs\" must be an object of named tensors".into())
        })?;
        for k in named.keys() {
            if !model_inputs.iter().any(|i| &i.name == k) {
                let names: Vec<&str> = model_inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(AivmError::InputFormat(format!(
                    "unknown input \"{k}\"; the model's inputs are: {}",
                    names.join(", ")
                )));
            }
        }
        for info in model_inputs {
            let t = named.get(&info.name).ok_or_else(|| AivmError::Input {
                name: info.name.clone(),
                reason: format!(
                    "missing (expected shape {} {})",
                    ShapeDisplay(info.shape.clone()),
                    info.dtype.name()
                ),
            })?;
            let (shape, data) = nested(t, &format!("inputs.{}", info.name))?;
            tensors.push(fit(info, shape, data)?);
        }
    } else if let Some(list) = obj.get("input_data") {
        let list = list.as_array().ok_or_else(|| {
            AivmError::InputFormat("\"input_data\" must be a list with one array per input".into())
        })?;
        if list.len() != model_inputs.len() {
            return Err(AivmError::InputFormat(format!(
                "\"input_data\" has {} arrays but the model has {} inputs",
                list.len(),
                model_inputs.len()
            )));
        }
        for (info, t) in model_inputs.iter().zip(list) {
            let (shape, data) = nested(t, "input_data")?;
            let shape =
                if shape.len() > 1 && numel(&shape) == numel(&info.shape) && shape != info.shape {
                    vec![data.len()]
                } else {
                    shape
                };
            tensors.push(fit(info, shape, data)?);
        }
    } else {
        return Err(AivmError::InputFormat(
            "expected an object with \"inputs\" (named tensors) or \"input_data\" (EZKL format)"
                .into(),
        ));
    }
    Ok(Inputs { tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, shape: &[usize], dtype: DType) -> ValueInfo {
        ValueInfo {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
        }
    }

    #[test]
    fn named_and_ezkl_forms() {
        let m = [info("x", &[1, 3], DType::F32)];
        let a = parse_inputs(r#"{"inputs": {"x": [[1, 2, 3]]}}"#, &m).unwrap();
        let b = parse_inputs(r#"{"input_data": [[1, 2, 3]]}"#, &m).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.tensors[0].shape, vec![1, 3]);
    }

    #[test]
    fn errors_show_shapes_not_values() {
        let m = [info("x", &[1, 64], DType::F32)];
        let e = parse_inputs(r#"{"inputs": {"x": [[0.123456, 0.654321]]}}"#, &m)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "input \"x\": expected shape [1, 64] f32, got [1, 2]");
        let e = parse_inputs(r#"{"inputs": {"x": [["secret-value"]]}}"#, &m)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        let m = [info("t", &[1, 2], DType::I64)];
        let e = parse_inputs(r#"{"inputs": {"t": [[1.5, 2]]}}"#, &m)
            .unwrap_err()
            .to_string();
        assert!(e.contains("integers") && !e.contains("1.5"), "{e}");
    }
}
