//! The float reference: tract runs the original ONNX model in f32. It is independent of the
//! AIVM lowering, so comparing the two checks both the lowering and the quantization.
//! Only models that passed the guards and lowered are ever given to tract.

use tract_onnx::prelude::*;

use crate::error::{AivmError, Result};
use crate::ir::{DType, ValueInfo};
use crate::tensor::Tensor as T;

/// A loaded, optimized tract plan for fixed input shapes.
pub struct Reference {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<ValueInfo>,
}

fn terr(e: impl std::fmt::Display) -> AivmError {
    AivmError::Reference(e.to_string())
}

impl Reference {
    /// Loads a guarded model with the given (lowered) input shapes and dtypes.
    pub fn new(proto: &onnx_protobuf::ModelProto, inputs: &[ValueInfo]) -> Result<Reference> {
        // tract refuses a node named like a value (valid ONNX: separate namespaces), so the
        // reference gets a copy with unique node names. Names do not change the computation.
        let mut proto = proto.clone();
        if let Some(g) = proto.graph.as_mut() {
            for (i, n) in g.node.iter_mut().enumerate() {
                n.name = format!("lightchain_node_{i}");
            }
        }
        let bytes = onnx_protobuf::Message::write_to_bytes(&proto).map_err(terr)?;
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| terr(format!("{e:#}")))?;
        for (i, info) in inputs.iter().enumerate() {
            let dt = match info.dtype {
                DType::F32 => f32::datum_type(),
                DType::I64 => i64::datum_type(),
            };
            model = model
                .with_input_fact(i, InferenceFact::dt_shape(dt, info.shape.clone()))
                .map_err(|e| terr(format!("{e:#}")))?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| terr(format!("{e:#}")))?;
        Ok(Reference {
            plan,
            inputs: inputs.to_vec(),
        })
    }

    /// Runs the model; returns each output as f64 with its shape.
    pub fn run(&self, inputs: &[T<f64>]) -> Result<Vec<T<f64>>> {
        let mut tv: TVec<TValue> = tvec!();
        for (info, x) in self.inputs.iter().zip(inputs) {
            let t = match info.dtype {
                DType::F32 => {
                    let v: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
                    Tensor::from_shape(&info.shape, &v)
                }
                DType::I64 => {
                    let v: Vec<i64> = x.data.iter().map(|&v| v as i64).collect();
                    Tensor::from_shape(&info.shape, &v)
                }
            }
            .map_err(terr)?;
            tv.push(t.into());
        }
        let out = self.plan.run(tv).map_err(|e| terr(format!("{e:#}")))?;
        out.iter()
            .map(|t| {
                let shape = t.shape().to_vec();
                let t64 = t.cast_to::<f64>().map_err(terr)?;
                let view = t64.to_plain_array_view::<f64>().map_err(terr)?;
                Ok(T::new(shape, view.iter().copied().collect()))
            })
            .collect()
    }
}
