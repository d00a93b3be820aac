//! A small builder of ONNX models for tests: op variants and crafted, hostile files.

use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_shape_proto, type_proto,
};

pub struct Builder {
    pub graph: GraphProto,
    pub opset: i64,
}

pub fn value_info(name: &str, dims: &[i64], elem: i32) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(d));
        shape.dim.push(dim);
    }
    let mut tt = type_proto::Tensor::new();
    tt.elem_type = elem;
    tt.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tt));
    let mut vi = ValueInfoProto::new();
    vi.name = name.to_string();
    vi.type_ = Some(ty).into();
    vi
}

pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = 1;
    t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    t
}

pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = 7;
    t.int64_data = data.to_vec();
    t
}

pub enum A<'a> {
    I(i64),
    F(f32),
    Is(&'a [i64]),
    S(&'a str),
    T(TensorProto),
    G(GraphProto),
}

pub fn attr(name: &str, v: A) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    let ty = match v {
        A::I(i) => {
            a.i = i;
            AttributeType::INT
        }
        A::F(f) => {
            a.f = f;
            AttributeType::FLOAT
        }
        A::Is(v) => {
            a.ints = v.to_vec();
            AttributeType::INTS
        }
        A::S(s) => {
            a.s = s.as_bytes().to_vec();
            AttributeType::STRING
        }
        A::T(t) => {
            a.t = Some(t).into();
            AttributeType::TENSOR
        }
        A::G(g) => {
            a.g = Some(g).into();
            AttributeType::GRAPH
        }
    };
    a.type_ = ty.into();
    a
}

pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.attribute = attrs;
    n
}

impl Builder {
    pub fn new(opset: i64) -> Builder {
        Builder {
            graph: GraphProto::new(),
            opset,
        }
    }

    pub fn input(mut self, name: &str, dims: &[i64]) -> Self {
        self.graph.input.push(value_info(name, dims, 1));
        self
    }

    pub fn input_typed(mut self, name: &str, dims: &[i64], elem: i32) -> Self {
        self.graph.input.push(value_info(name, dims, elem));
        self
    }

    pub fn output(mut self, name: &str) -> Self {
        self.graph.output.push(value_info(name, &[], 1));
        self.graph
            .output
            .last_mut()
            .unwrap()
            .type_
            .as_mut()
            .unwrap()
            .value = None;
        self
    }

    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph.initializer.push(t);
        self
    }

    pub fn node(mut self, n: NodeProto) -> Self {
        self.graph.node.push(n);
        self
    }

    pub fn model(self) -> ModelProto {
        let mut m = ModelProto::new();
        m.ir_version = 8;
        m.producer_name = "lightchain-tests".into();
        let mut o = OperatorSetIdProto::new();
        o.version = self.opset;
        m.opset_import.push(o);
        m.graph = Some(self.graph).into();
        m
    }

    pub fn bytes(self) -> Vec<u8> {
        self.model().write_to_bytes().unwrap()
    }
}

/// A deterministic pseudo-random float sequence in [-1, 1).
pub fn floats(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
