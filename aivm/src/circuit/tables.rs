//! The fixed lookup tables of a circuit: the range table of 8-bit limbs with bit-width tags, and
//! the function table holding a program's sigmoid/tanh/exp tables and embedding tables, each
//! under its own tag. Tag 0 is the disabled row `(0, 0, 0)`: an enabled lookup always carries a
//! tag of 1 or more, so the disabled tuple can never stand in for a table value.

use std::collections::HashMap;

use halo2_proofs::circuit::{Layouter, Value};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::Error;

use super::config::Config;
use super::ctx::fp;
use crate::program::Program;

/// Rows of the range table for `limb_bits`: every `(tag, value)` with `value < 2^tag`, tags
/// 0..=limb_bits.
pub fn range_table_rows(limb_bits: u32) -> usize {
    (1 << (limb_bits + 1)) - 1
}

/// The function table of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// `(tag, input, output)` rows, starting with the disabled row `(0, 0, 0)`.
    pub entries: Vec<(u64, i128, i128)>,
    /// The table tag of each node that looks up (by node index).
    pub node_tag: Vec<Option<u64>>,
}

impl Tables {
    /// Collects the tables of a program; identical tables share a tag.
    pub fn of(program: &Program) -> Tables {
        let mut entries = vec![(0u64, 0i128, 0i128)];
        let mut seen: HashMap<Vec<(i128, i128)>, u64> = HashMap::new();
        let mut node_tag = Vec::with_capacity(program.nodes.len());
        for n in &program.nodes {
            let rows = n.op.family().table_rows();
            node_tag.push(rows.map(|rows| {
                let next = seen.len() as u64 + 1;
                *seen.entry(rows.clone()).or_insert_with(|| {
                    entries.extend(rows.iter().map(|&(i, o)| (next, i, o)));
                    next
                })
            }));
        }
        Tables { entries, node_tag }
    }

    /// Assigns the range table (for `limb_bits`) and the function table.
    pub fn load(
        &self,
        cfg: &Config,
        limb_bits: u32,
        layouter: &mut impl Layouter<Fp>,
    ) -> Result<(), Error> {
        layouter.assign_table(
            || "range table",
            |mut t| {
                let mut row = 0;
                for tag in 0..=limb_bits {
                    for v in 0..(1u64 << tag) {
                        t.assign_cell(
                            || "tag",
                            cfg.t_rtag,
                            row,
                            || Value::known(Fp::from(tag as u64)),
                        )?;
                        t.assign_cell(|| "val", cfg.t_rval, row, || Value::known(Fp::from(v)))?;
                        row += 1;
                    }
                }
                Ok(())
            },
        )?;
        layouter.assign_table(
            || "function table",
            |mut t| {
                for (row, &(tag, i, o)) in self.entries.iter().enumerate() {
                    t.assign_cell(|| "tag", cfg.t_ftag, row, || Value::known(Fp::from(tag)))?;
                    t.assign_cell(|| "in", cfg.t_fin, row, || Value::known(fp(i)))?;
                    t.assign_cell(|| "out", cfg.t_fout, row, || Value::known(fp(o)))?;
                }
                Ok(())
            },
        )
    }
}
