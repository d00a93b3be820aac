//! Lays out a whole program: inputs (range-checked, then public or packed for hashing), every
//! node by its op family's layout, and the outputs (public, or packed for hashing: a segment's
//! links).

use halo2_proofs::circuit::AssignedCell;
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::Error;

use super::ctx::{Cell, Ctx, fp};
use super::tables::Tables;
use super::{HashGroup, pack_slots_of, pow2};
use crate::ops::LayoutArgs;
use crate::program::Program;
use crate::tensor::numel;

/// The cells a layout exposes to the instance.
pub struct Laid {
    pub inputs: Vec<Vec<Cell>>,
    pub outputs: Vec<Vec<Cell>>,
    /// Packed elements of each hash group (see [`super::AivmCircuit::hash_groups`]), for its
    /// Poseidon commitment.
    pub packed: Vec<Vec<AssignedCell<Fp, Fp>>>,
    /// The rows whose accumulator holds each packed element, per group.
    pub packed_rows: Vec<Vec<usize>>,
}

/// Packed cells and the rows holding them.
type Packed = (Vec<AssignedCell<Fp, Fp>>, Vec<usize>);

/// Packs the cells of `ios` (inputs or outputs of `program`) into field elements, as
/// [`pack_slots_of`] lays them out; returns the packed cells and their rows.
fn pack(
    ctx: &mut Ctx,
    program: &Program,
    ios: &[crate::program::IoSpec],
    cells: &[&Vec<Cell>],
) -> Result<Packed, Error> {
    let flat: Vec<&Cell> = cells.iter().copied().flatten().collect();
    let (mut packed, mut rows) = (Vec::new(), Vec::new());
    for slots in pack_slots_of(program, ios) {
        let bias = slots.iter().fold(Fp::zero(), |a, &(_, off, bits)| {
            a + fp(1i128 << (bits - 1)) * pow2(off)
        });
        let terms: Vec<(Fp, &Cell)> = slots
            .iter()
            .map(|&(i, off, _)| (pow2(off), flat[i]))
            .collect();
        let (p, row) = ctx.dot_field(bias, &terms)?;
        rows.push(row);
        if let Some(p) = p {
            packed.push(p);
        }
    }
    Ok((packed, rows))
}

pub fn layout(
    ctx: &mut Ctx,
    program: &Program,
    tables: &Tables,
    groups: &[HashGroup],
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
    let mut pack_group = |ctx: &mut Ctx, g: &HashGroup, cells: &[Vec<Cell>]| {
        let ios = if g.output {
            &program.outputs[g.ios.clone()]
        } else {
            &program.inputs[g.ios.clone()]
        };
        let (p, r) = pack(
            ctx,
            program,
            ios,
            &cells[g.ios.clone()].iter().collect::<Vec<_>>(),
        )?;
        packed.push(p);
        packed_rows.push(r);
        Ok::<_, Error>(())
    };
    for g in groups.iter().filter(|g| !g.output) {
        pack_group(ctx, g, &input_cells)?;
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
    let outputs: Vec<Vec<Cell>> = program
        .outputs
        .iter()
        .map(|o| cells[o.tensor].clone().ok_or(Error::Synthesis))
        .collect::<Result<_, _>>()?;
    for g in groups.iter().filter(|g| g.output) {
        pack_group(ctx, g, &outputs)?;
    }
    Ok(Laid {
        inputs: input_cells,
        outputs,
        packed,
        packed_rows,
    })
}
