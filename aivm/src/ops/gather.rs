//! Gather from a constant table with runtime indices (embeddings).

use halo2_proofs::plonk::Error;

use crate::circuit::ctx::{Cell, Ctx};
use crate::error::{AivmError, Result};
use crate::tensor::Tensor;

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

/// Circuit layout: one lookup of `(tag, id·row_len + j, value)` per output element; the table
/// holds exactly the valid keys, so an id outside the table has no satisfying witness.
pub fn layout(
    ctx: &mut Ctx,
    tag: u64,
    table: &Tensor<i64>,
    ids: &[Cell],
) -> Result<Vec<Cell>, Error> {
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
