//! The one reader of ONNX value-info (declared inputs and outputs): element type and dims,
//! with one rule for symbolic and unknown dimensions, used by the guard, the import, `inspect`,
//! the packager's schema checks and the profiler.

use std::collections::HashMap;

use onnx_protobuf::{GraphProto, ValueInfoProto, tensor_proto::DataType, type_proto};
use protobuf::Enum;

use crate::ir::DType;

/// One declared dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A number, as declared (the guard refuses negative ones).
    Value(i64),
    /// A named symbolic dimension (`batch_size`).
    Param(String),
    /// Neither.
    Unknown,
}

impl Dim {
    /// The dimension when it is a positive number.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Value(v) if *v > 0 => usize::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The dimension the import uses: a positive number as declared, a symbolic one from
    /// `dims` (1 when not given), anything else 1.
    pub fn resolve(&self, dims: &HashMap<String, usize>) -> usize {
        match self {
            Dim::Param(p) => *dims.get(p).unwrap_or(&1),
            d => d.fixed().unwrap_or(1),
        }
    }
}

/// A declared tensor value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    /// The ONNX element type number.
    pub elem_type: i32,
    /// The dims, when a shape is declared.
    pub dims: Option<Vec<Dim>>,
}

impl Declared {
    /// The AIVM element type: float32/float64 are floats, int64/int32 integers.
    pub fn dtype(&self) -> Option<DType> {
        match DataType::from_i32(self.elem_type) {
            Some(DataType::FLOAT) | Some(DataType::DOUBLE) => Some(DType::F32),
            Some(DataType::INT64) | Some(DataType::INT32) => Some(DType::I64),
            _ => None,
        }
    }

    /// The ONNX element type's short name (`f32`, `f64`, `i64`, `i32`, or `other`).
    pub fn elem_name(&self) -> &'static str {
        match DataType::from_i32(self.elem_type) {
            Some(DataType::FLOAT) => "f32",
            Some(DataType::DOUBLE) => "f64",
            Some(DataType::INT64) => "i64",
            Some(DataType::INT32) => "i32",
            _ => "other",
        }
    }

    /// The declared dims (none when no shape is declared).
    pub fn dims(&self) -> &[Dim] {
        self.dims.as_deref().unwrap_or_default()
    }

    /// The shape the import uses ([`Dim::resolve`]).
    pub fn resolve(&self, dims: &HashMap<String, usize>) -> Vec<usize> {
        self.dims().iter().map(|d| d.resolve(dims)).collect()
    }
}

/// Reads a value-info; `None` when it is not a tensor.
pub fn decode(vi: &ValueInfoProto) -> Option<Declared> {
    let Some(type_proto::Value::TensorType(tt)) = vi.type_.as_ref().and_then(|t| t.value.as_ref())
    else {
        return None;
    };
    let dims = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| {
                if d.has_dim_value() {
                    Dim::Value(d.dim_value())
                } else if d.has_dim_param() {
                    Dim::Param(d.dim_param().to_string())
                } else {
                    Dim::Unknown
                }
            })
            .collect()
    });
    Some(Declared {
        name: vi.name.clone(),
        elem_type: tt.elem_type,
        dims,
    })
}

/// The graph's runtime inputs: its declared inputs that are not initializers (old exporters
/// list initializers among the inputs).
pub fn runtime_inputs(g: &GraphProto) -> impl Iterator<Item = &ValueInfoProto> {
    g.input
        .iter()
        .filter(|v| !g.initializer.iter().any(|t| t.name == v.name))
}
