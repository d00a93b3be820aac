//! ONNX ops that compute nothing at run time: constants, shape arithmetic, casts between
//! integer types of constants, and pass-throughs.

use onnx_protobuf::tensor_proto::DataType;
use protobuf::Enum;

use super::cx::{CData, Const, Cx, NodeIn, Val, read_tensor};
use crate::error::Result;
use crate::ir::DType;

/// `Constant`: its value attribute becomes a folded constant.
pub fn constant(_cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let a = n
        .proto
        .attribute
        .first()
        .ok_or_else(|| n.err("has no value attribute"))?;
    let c = match a.name.as_str() {
        "value" => {
            read_tensor(a.t.as_ref().ok_or_else(|| n.err("empty value"))?).map_err(|e| n.err(e))?
        }
        "value_float" => Const {
            shape: vec![],
            data: CData::F(vec![a.f]),
        },
        "value_floats" => Const {
            shape: vec![a.floats.len()],
            data: CData::F(a.floats.clone()),
        },
        "value_int" => Const {
            shape: vec![],
            data: CData::I(vec![a.i]),
        },
        "value_ints" => Const {
            shape: vec![a.ints.len()],
            data: CData::I(a.ints.clone()),
        },
        other => return Err(n.unsupported(&format!("value attribute \"{other}\""))),
    };
    Ok(Val::Const(c))
}

/// `Identity`, `Dropout` (inference): the input itself.
pub fn identity(_cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    n.input(0)
}

/// `Cast`: folds on constants; on activations only a cast to the type they already have.
pub fn cast(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let to = DataType::from_i32(n.attr_i("to", 1) as i32);
    let to_float = matches!(
        to,
        Some(DataType::FLOAT) | Some(DataType::DOUBLE) | Some(DataType::FLOAT16)
    );
    let to_int = matches!(
        to,
        Some(DataType::INT64)
            | Some(DataType::INT32)
            | Some(DataType::INT8)
            | Some(DataType::UINT8)
            | Some(DataType::BOOL)
    );
    match n.input(0)? {
        Val::Const(c) if to_float => Ok(Val::Const(c.with_data(c.shape.clone(), |d| match d {
            CData::F(v) => CData::F(v.clone()),
            CData::I(v) => CData::F(v.iter().map(|&x| x as f32).collect()),
        }))),
        Val::Const(c) if to_int => Ok(Val::Const(c.with_data(c.shape.clone(), |d| match d {
            CData::F(v) => CData::I(v.iter().map(|&x| x as i64).collect()),
            CData::I(v) => CData::I(v.clone()),
        }))),
        v @ Val::Act(_)
            if (to_float && cx.dtype(&v) == DType::F32)
                || (to_int && cx.dtype(&v) == DType::I64) =>
        {
            Ok(v)
        }
        _ => Err(n.unsupported("cast of an activation between float and integer types")),
    }
}

/// `Shape`: the input's (static) shape as an integer constant.
pub fn shape(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let s = cx.shape(&n.input(0)?);
    let r = s.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampi(n.attr_i("start", 0));
    let end = clampi(n.attr_i("end", r));
    let dims: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
    Ok(Val::Const(Const {
        shape: vec![dims.len()],
        data: CData::I(dims),
    }))
}
