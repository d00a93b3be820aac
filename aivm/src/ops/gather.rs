//! Gather from a constant table with runtime indices (embeddings). ONNX `Gather` with constant
//! indices is a selection ([`super::copy`]); with runtime indices into a constant table, this.

use halo2_proofs::plonk::Error as PlonkError;

use super::copy::CopySpec;
use super::{Decode, FloatArgs, FloatOp, IntArgs, IntOp, LayoutArgs, Op, params_if, table_bits};
use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::ir::{DType, FOp, Node};
use crate::onnx::{Cx, Lowering, NodeIn, Val};
use crate::program::{Invalid, TensorMeta};
use crate::quantize::{Quantized, Quantizer, quant_tensor};
use crate::tensor::{Tensor, norm_axis, numel};
use crate::wire::{R, W};

const KIND: &str = "gather";

pub const ONNX: &[(&str, Lowering)] = &[("Gather", lower)];

/// The float op: the table.
#[derive(Clone, Debug, PartialEq)]
pub struct FGather {
    pub table: Tensor<f32>,
}

/// The integer op: rows of a constant table selected by integer indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gather {
    pub table: Tensor<i64>,
}

fn lower(cx: &mut Cx, n: &NodeIn) -> Result<Val> {
    let data = n.input(0)?;
    let idx = n.input(1)?;
    let ds = cx.shape(&data);
    let axis =
        norm_axis(n.attr_i("axis", 0), ds.len()).ok_or_else(|| n.err("axis out of range"))?;
    match (&data, &idx) {
        (_, Val::Const(ic)) => {
            let raw = ic.ints().ok_or_else(|| n.err("indices must be integers"))?;
            let len = ds[axis] as i64;
            let mut indices = Vec::with_capacity(raw.len());
            for i in raw {
                let j = if i < 0 { i + len } else { i };
                if !(0..len).contains(&j) {
                    return Err(n.err(format!(
                        "constant index out of range for an axis of size {len}"
                    )));
                }
                indices.push(j as usize);
            }
            let spec = CopySpec::Select {
                in_shape: ds.clone(),
                axis,
                indices,
            };
            let mut out = ds[..axis].to_vec();
            out.extend(&ic.shape);
            out.extend(&ds[axis + 1..]);
            cx.copy(n, data, spec, out)
        }
        (Val::Const(table), Val::Act(ids)) => {
            if axis != 0 {
                return Err(n.unsupported("gathering a constant table along an axis other than 0"));
            }
            if cx.graph.values[*ids].dtype != DType::I64 {
                return Err(n.err("indices must be an integer tensor"));
            }
            if ds.is_empty() || ds[0] == 0 {
                return Err(n.err("the table is empty"));
            }
            let mut out = cx.graph.values[*ids].shape.clone();
            out.extend(&ds[1..]);
            let op = FOp::Gather(FGather {
                table: table.tensor_f32(),
            });
            Ok(cx.push(n, op, vec![*ids], out, DType::F32))
        }
        (Val::Act(_), Val::Act(_)) => {
            Err(n.unsupported("gathering from an activation with runtime indices"))
        }
    }
}

/// Integer evaluation: the rows of `table` selected by `ids`; an id outside the table is an
/// error naming the node.
pub fn eval_i(node: &str, table: &Tensor<i64>, ids: &[i64]) -> Result<Vec<i64>> {
    let rows = table.shape[0];
    let row: usize = table.shape[1..].iter().product();
    let mut out = Vec::with_capacity(ids.len() * row);
    for &id in ids {
        if id < 0 || id as usize >= rows {
            return Err(AivmError::IndexOutOfRange {
                node: node.to_string(),
                len: rows,
            });
        }
        let r = id as usize;
        out.extend_from_slice(&table.data[r * row..(r + 1) * row]);
    }
    Ok(out)
}

impl FloatOp for FGather {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn eval(&self, a: &FloatArgs) -> Vec<f64> {
        let t = &self.table;
        let row: usize = t.shape[1..].iter().product();
        a.ins[0]
            .iter()
            .flat_map(|&id| {
                let r = id as usize;
                t.data[r * row..(r + 1) * row].iter().map(|&v| v as f64)
            })
            .collect()
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn quantize(&self, q: &mut Quantizer, _n: &Node, _ins: &mut Vec<usize>) -> Result<Quantized> {
        let m = self
            .table
            .data
            .iter()
            .fold(0.0f64, |a, &v| a.max((v as f64).abs()));
        let s = q.choose(m);
        let op = Op::Gather(Gather {
            table: quant_tensor(&self.table, s),
        });
        Ok(Quantized::real(op, s, q.bits(m, s)?))
    }
}

impl IntOp for Gather {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn arity(&self) -> usize {
        1
    }

    fn eval(&self, a: &IntArgs) -> Result<Vec<i64>> {
        eval_i(a.node, &self.table, a.ins[0])
    }

    fn check(&self, ins: &[&TensorMeta], out: &TensorMeta) -> std::result::Result<(), Invalid> {
        let t = &self.table;
        params_if(
            !t.shape.is_empty()
                && t.shape[0] > 0
                && t.data.len() == numel(&t.shape)
                && numel(&ins[0].shape) * numel(&t.shape[1..]) == numel(&out.shape),
        )
    }

    fn bounded(&self, _ins: &[&TensorMeta]) -> bool {
        true
    }

    fn static_out_bits(&self, _ins: &[&TensorMeta]) -> Option<u32> {
        Some(table_bits(&self.table.data))
    }

    fn macs(&self, _out_len: usize) -> u64 {
        0
    }

    fn params(&self) -> u64 {
        self.table.len() as u64
    }

    fn lookups(&self, out_len: usize) -> u64 {
        out_len as u64
    }

    fn table_rows(&self) -> Option<Vec<(i128, i128)>> {
        Some(
            self.table
                .data
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as i128, v as i128))
                .collect(),
        )
    }

    /// One lookup of `(tag, id·row_len + j, value)` per output element; the table holds exactly
    /// the valid keys, so an id outside the table has no satisfying witness.
    fn layout(&self, ctx: &mut Ctx, a: &LayoutArgs) -> Result<Vec<Cell>, PlonkError> {
        let (tag, ids) = (a.tag()?, a.ins[0]);
        let table = &self.table;
        let row: usize = table.shape[1..].iter().product();
        let mut out = Vec::with_capacity(ids.len() * row);
        for id in ids {
            for j in 0..row {
                // The value is looked up from the key the row holds (a forged key in the tests).
                let value = |key: i128| {
                    usize::try_from(key)
                        .ok()
                        .and_then(|k| table.data.get(k))
                        .map(|&v| v as i128)
                };
                out.push(ctx.gather(tag, id, row, j, value)?);
            }
        }
        Ok(out)
    }

    fn encode(&self, w: &mut W) {
        w.tensor(&self.table);
    }
}

impl Decode for Gather {
    fn decode(r: &mut R) -> Result<Self> {
        Ok(Gather { table: r.tensor()? })
    }
}
