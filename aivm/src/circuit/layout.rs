//! Lays out a whole program: inputs (range-checked, then public or packed for hashing), every
//! node by its op family's layout, and the outputs.

use halo2_proofs::circuit::AssignedCell;
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::Error;

use super::ctx::{Cell, Ctx, fp};
use super::tables::Tables;
use super::{Visibility, pack_slots, pow2};
use crate::ops::LayoutArgs;
use crate::program::Program;
use crate::tensor::numel;

/// The cells a layout exposes to the instance.
pub struct Laid {
    pub inputs: Vec<Vec<Cell>>,
    pub outputs: Vec<Vec<Cell>>,
    /// Packed input elements, for the Poseidon commitment (hashed inputs only).
    pub packed: Vec<AssignedCell<Fp, Fp>>,
    /// The rows whose accumulator holds each packed element.
    pub packed_rows: Vec<usize>,
}

pub fn layout(
    ctx: &mut Ctx,
    program: &Program,
    tables: &Tables,
    visibility: Visibility,
    inputs: Option<&[Vec<i64>]>,
) -> Result<Laid, Error> {
    let mut cells: Vec<Option<Vec<Cell>>> = vec![None; program.tensors.len()];
    let mut input_cells = Vec::with_capacity(program.inputs.len());
    for (k, io) in program.inputs.iter().enumerate() {
        let meta = &program.tensors[io.tensor];
        let vals = inputs.map(|i| &i[k]);
        let c = (0..numel(&meta.shape))
            .map(|i| ctx.new_signed(vals.map(|v| v[i] as i128), meta.bits))
            .collect::<Result<Vec<_>, _>>()?;
        cells[io.tensor] = Some(c.clone());
        input_cells.push(c);
    }
    let (mut packed, mut packed_rows) = (Vec::new(), Vec::new());
    if visibility == Visibility::Hashed {
        let flat: Vec<&Cell> = input_cells.iter().flatten().collect();
        for slots in pack_slots(program) {
            let bias = slots.iter().fold(Fp::zero(), |a, &(_, off, bits)| {
                a + fp(1i128 << (bits - 1)) * pow2(off)
            });
            let terms: Vec<(Fp, &Cell)> = slots
                .iter()
                .map(|&(i, off, _)| (pow2(off), flat[i]))
                .collect();
            let (p, row) = ctx.dot_field(bias, &terms)?;
            packed_rows.push(row);
            if let Some(p) = p {
                packed.push(p);
            }
        }
    }
    for (ni, n) in program.nodes.iter().enumerate() {
        let ins: Vec<&[Cell]> = n
            .inputs
            .iter()
            .map(|&t| cells[t].as_deref().ok_or(Error::Synthesis))
            .collect::<Result<_, _>>()?;
        let out = &program.tensors[n.output];
        let args = LayoutArgs {
            ins,
            in_meta: n.inputs.iter().map(|&t| &program.tensors[t]).collect(),
            out,
            tag: tables.node_tag[ni],
        };
        let y = n.op.family().layout(ctx, &args)?;
        debug_assert_eq!(
            y.len(),
            numel(&out.shape),
            "node {} ({})",
            n.name,
            n.op.kind()
        );
        cells[n.output] = Some(y);
    }
    let outputs = program
        .outputs
        .iter()
        .map(|o| cells[o.tensor].clone().ok_or(Error::Synthesis))
        .collect::<Result<_, _>>()?;
    Ok(Laid {
        inputs: input_cells,
        outputs,
        packed,
        packed_rows,
    })
}
