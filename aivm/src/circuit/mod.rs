//! The halo2 circuit of an AIVM program (zcash `halo2_proofs`, IPA over the Pasta curves).
//!
//! [`AivmCircuit`] lays out a [`Program`] with the gadgets of [`ctx`]: each op family's layout
//! sits next to its integer `eval` in [`crate::ops`] and constrains exactly that meaning. The
//! public instance is one column: the task nonce (two field elements), then either the input
//! values (public inputs) or a salted Poseidon commitment to them (hashed inputs), then the
//! output values. A segment of a bigger program (see [`crate::segment`]) also has links:
//! inputs another segment produced and outputs a later segment reads, each committed to with
//! its own salted Poseidon chain; their commitments follow the input part and the outputs.

pub mod config;
pub mod ctx;
pub mod layout;
pub mod tables;

use std::sync::Arc;

use halo2_gadgets::poseidon::{
    Hash as PoseidonHash, Pow5Chip,
    primitives::{self as poseidon, ConstantLength, P128Pow5T3},
};
use halo2_proofs::circuit::{AssignedCell, Cell, Layouter, SimpleFloorPlanner, Value};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};

use ff::{Field as _, PrimeField as _};

use crate::program::{IoSpec, Program};
use config::Config;
#[cfg(test)]
use config::LANES;
use ctx::{CopyFamily, Ctx, fp};
use tables::Tables;

/// Whether the program's inputs are public or committed to with a salted Poseidon hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Hashed,
}

impl std::fmt::Display for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Visibility::Public => "public",
            Visibility::Hashed => "hashed",
        })
    }
}

/// Bits of a field element that packed input slots may fill: every integer below 2^254 is
/// below the Pallas modulus, so a packing that fits is injective.
pub const PACK_BITS: u32 = 254;
/// Rows one Poseidon hash of two elements takes (measured, with margin).
pub const ROWS_PER_HASH: usize = 48;
/// Instance rows holding the task nonce.
pub const NONCE_ROWS: usize = 2;

/// The private witness: the quantized program inputs and, for hashed inputs, the salt.
#[derive(Clone, Debug)]
pub struct Witness {
    pub inputs: Vec<Vec<i64>>,
    pub salt: Fp,
    /// The salt of each link, in [`AivmCircuit::hash_groups`] order (none outside segments).
    pub links: Vec<Fp>,
}

impl Witness {
    /// The witness of a circuit without links.
    pub fn new(inputs: Vec<Vec<i64>>, salt: Fp) -> Witness {
        Witness {
            inputs,
            salt,
            links: Vec::new(),
        }
    }
}

/// Which of a circuit's inputs and outputs are the task's, and which are links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// The first `task_inputs` program inputs are the task's input, under the circuit's
    /// visibility (public values, or one salted commitment to all of them); every later input
    /// is a link (committed to alone, with its own salt).
    pub task_inputs: usize,
    /// The first `public_outputs` outputs are public values; every later output is a link.
    pub public_outputs: usize,
}

/// Boundary values committed to by one salted Poseidon chain: program inputs or outputs
/// `ios` (indices into `program.inputs` or `program.outputs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashGroup {
    pub output: bool,
    pub ios: std::ops::Range<usize>,
}

/// The circuit of one program.
#[derive(Clone, Debug)]
pub struct AivmCircuit {
    pub program: Arc<Program>,
    pub tables: Arc<Tables>,
    pub visibility: Visibility,
    pub io: Io,
    /// Width of the range-check limbs, chosen with the domain size (see [`AivmCircuit::new`]).
    pub limb_bits: u32,
    pub witness: Option<Witness>,
}

impl AivmCircuit {
    /// A circuit without witness (for key generation and verification). The limb width is the
    /// one that gives the smallest domain: 8-bit limbs need a 511-row range table, so small
    /// models prove in a domain of 2^8 or 2^9 rows only with 6- or 7-bit limbs (more limbs per
    /// value, a smaller table); on a tie the wider limbs (fewer rows) win.
    /// A stateful program's state input and output are links: committed to, each with its own
    /// salt, never published.
    pub fn new(program: Arc<Program>, visibility: Visibility) -> AivmCircuit {
        let s = usize::from(program.state);
        let io = Io {
            task_inputs: program.inputs.len() - s,
            public_outputs: program.outputs.len() - s,
        };
        AivmCircuit::with_io(program, visibility, io)
    }

    /// The circuit of a segment: its inputs and outputs split into the task's and links.
    pub fn with_io(program: Arc<Program>, visibility: Visibility, io: Io) -> AivmCircuit {
        let tables = Arc::new(Tables::of(&program));
        let mut c = AivmCircuit {
            program,
            tables,
            visibility,
            io,
            limb_bits: config::MAX_LIMB_BITS,
            witness: None,
        };
        let mut best = (c.min_k(), config::MAX_LIMB_BITS);
        for lb in [7, 6] {
            c.limb_bits = lb;
            let k = c.min_k();
            if k < best.0 {
                best = (k, lb);
            }
        }
        c.limb_bits = best.1;
        c
    }

    /// The same circuit with a witness.
    pub fn with_witness(&self, witness: Witness) -> AivmCircuit {
        AivmCircuit {
            witness: Some(witness),
            ..self.clone()
        }
    }

    /// The groups of boundary values hashed, in order: the task's inputs (when hashed), each
    /// input link, each output link.
    pub fn hash_groups(&self) -> Vec<HashGroup> {
        let (n_in, n_out) = (self.program.inputs.len(), self.program.outputs.len());
        let task = (self.visibility == Visibility::Hashed && self.io.task_inputs > 0).then_some(
            HashGroup {
                output: false,
                ios: 0..self.io.task_inputs,
            },
        );
        let links_in = (self.io.task_inputs..n_in).map(|i| HashGroup {
            output: false,
            ios: i..i + 1,
        });
        let links_out = (self.io.public_outputs..n_out).map(|o| HashGroup {
            output: true,
            ios: o..o + 1,
        });
        task.into_iter().chain(links_in).chain(links_out).collect()
    }

    /// Field elements hashed (packed), over all groups.
    fn hashed_len(&self) -> usize {
        self.hash_groups()
            .iter()
            .map(|g| {
                let ios = if g.output {
                    &self.program.outputs[g.ios.clone()]
                } else {
                    &self.program.inputs[g.ios.clone()]
                };
                pack_slots_of(&self.program, ios).len()
            })
            .sum()
    }

    /// Rows the circuit needs (main region, Poseidon and tables), before blinding rows.
    pub fn rows(&self) -> (usize, usize) {
        let mut cs = ConstraintSystem::default();
        let cfg = Config::configure(&mut cs);
        let mut ctx = Ctx::new(&cfg, None, self.limb_bits);
        let groups = self.hash_groups();
        let main = layout::layout(&mut ctx, &self.program, &self.tables, &groups, None)
            .map(|_| ctx.row)
            .unwrap_or(usize::MAX / 2);
        let hashes = self.hashed_len();
        let table = self
            .tables
            .entries
            .len()
            .max(tables::range_table_rows(self.limb_bits));
        // The nonce's row holds the first salt; every further salt takes a row.
        let salts = groups.len().max(1);
        (main + salts + hashes * ROWS_PER_HASH, table)
    }

    /// Computes every cell value of the main region from the witness without a prover (the
    /// witness-generation part of proving, on its own); returns the rows used.
    pub fn generate_witness(&self) -> Result<usize, Error> {
        let mut cs = ConstraintSystem::default();
        let cfg = Config::configure(&mut cs);
        let mut ctx = Ctx::new(&cfg, None, self.limb_bits);
        let inputs = self.witness.as_ref().map(|w| w.inputs.as_slice());
        layout::layout(
            &mut ctx,
            &self.program,
            &self.tables,
            &self.hash_groups(),
            inputs,
        )?;
        Ok(ctx.row)
    }

    /// The smallest `k` whose `2^k` rows hold the circuit and its tables with blinding rows.
    pub fn min_k(&self) -> u32 {
        let mut cs = ConstraintSystem::<Fp>::default();
        Config::configure(&mut cs);
        let blind = cs.minimum_rows();
        let (rows, table) = self.rows();
        let need = rows.max(table) + blind;
        (need.next_power_of_two().trailing_zeros()).max(4)
    }
}

impl Circuit<Fp> for AivmCircuit {
    type Config = Config;
    type FloorPlanner = SimpleFloorPlanner;

    fn without_witnesses(&self) -> Self {
        AivmCircuit {
            witness: None,
            ..self.clone()
        }
    }

    fn configure(meta: &mut ConstraintSystem<Fp>) -> Config {
        Config::configure(meta)
    }

    fn synthesize(&self, cfg: Config, mut layouter: impl Layouter<Fp>) -> Result<(), Error> {
        self.tables.load(&cfg, self.limb_bits, &mut layouter)?;
        let program = &self.program;
        let inputs = self.witness.as_ref().map(|w| w.inputs.as_slice());
        let groups = self.hash_groups();
        let task_hashed = self.visibility == Visibility::Hashed && self.io.task_inputs > 0;
        let (laid, salts, packed, nonce) = layouter.assign_region(
            || "aivm program",
            |mut region| {
                let mut ctx = Ctx::new(&cfg, Some(&mut region), self.limb_bits);
                let laid = layout::layout(&mut ctx, program, &self.tables, &groups, inputs)?;
                // Both halves of the nonce enter the permutation argument: cells holding them,
                // copied to their instance rows below.
                let row = ctx.next_row();
                let mut nonce = Vec::with_capacity(NONCE_ROWS);
                for (i, col) in [cfg.acc, cfg.y].into_iter().enumerate() {
                    let v = region.instance_value(cfg.instance, i)?;
                    #[cfg(test)]
                    let v = testing::override_at(col, row).map_or(v, Value::known);
                    nonce.push(region.assign_advice(|| "nonce", col, row, || v)?.cell());
                }
                // One salt per hash group, in the `v` column from the nonce's row on: the
                // task's salt first (hashed inputs), then each link's.
                let mut salts = Vec::with_capacity(groups.len());
                for j in 0..groups.len() {
                    let salt = self.witness.as_ref().map(|w| {
                        if task_hashed && j == 0 {
                            w.salt
                        } else {
                            w.links[j - usize::from(task_hashed)]
                        }
                    });
                    let v = salt.map_or(Value::unknown(), Value::known);
                    salts.push(region.assign_advice(|| "salt", cfg.v, row + j, || v)?);
                }
                #[allow(unused_mut)]
                let mut packed = laid.packed.clone();
                #[cfg(test)]
                if copy_off(CopyFamily::HashInput) {
                    // Soundness tests only: the hash reads free cells (which a forgery may
                    // override) instead of the packed values.
                    for (i, p) in packed.iter_mut().flatten().enumerate() {
                        let col = cfg.lane[i % LANES];
                        let v = testing::override_at(col, row + i / LANES)
                            .map_or(p.value().copied(), Value::known);
                        *p = region.assign_advice(|| "free", col, row + i / LANES, || v)?;
                    }
                }
                Ok((laid, salts, packed, nonce))
            },
        )?;
        // Each group's salted chain `h = H(h, packed_j)`, from its salt.
        let mut commitments = Vec::with_capacity(groups.len());
        for (g, (salt, packed)) in salts.into_iter().zip(&packed).enumerate() {
            let mut h: AssignedCell<Fp, Fp> = salt;
            for (i, p) in packed.iter().enumerate() {
                let chip = Pow5Chip::construct(cfg.poseidon.clone());
                let hasher = PoseidonHash::<_, _, P128Pow5T3, ConstantLength<2>, 3, 2>::init(
                    chip,
                    layouter.namespace(|| format!("poseidon init {g}.{i}")),
                )?;
                h = hasher.hash(
                    layouter.namespace(|| format!("poseidon {g}.{i}")),
                    [h, p.clone()],
                )?;
            }
            commitments.push(h.cell());
        }
        let mut row = 0;
        let mut expose = |layouter: &mut _, cells: Vec<Cell>, family| {
            expose(layouter, &cfg, cells, family, &mut row)
        };
        let cells = |t: &[Vec<ctx::Cell>]| -> Vec<Cell> {
            t.iter()
                .flatten()
                .map(|c| c.cell.as_ref().expect("assigned").cell())
                .collect()
        };
        // Instance order: nonce, the task's input part, input links, public outputs, output
        // links (groups are in that order: task, input links, output links).
        expose(&mut layouter, nonce, CopyFamily::Nonce)?;
        let n_in_groups = groups.iter().filter(|g| !g.output).count();
        let (in_commits, out_commits) = commitments.split_at(n_in_groups);
        if self.visibility == Visibility::Public {
            let task = cells(&laid.inputs[..self.io.task_inputs]);
            expose(&mut layouter, task, CopyFamily::PublicInput)?;
        }
        expose(&mut layouter, in_commits.to_vec(), CopyFamily::Commitment)?;
        let public = cells(&laid.outputs[..self.io.public_outputs]);
        expose(&mut layouter, public, CopyFamily::Output)?;
        expose(&mut layouter, out_commits.to_vec(), CopyFamily::Commitment)
    }
}

/// Constrains `cells` to the instance rows from `row` on (each a copy of `family`).
fn expose(
    layouter: &mut impl Layouter<Fp>,
    cfg: &Config,
    cells: Vec<Cell>,
    family: CopyFamily,
    row: &mut usize,
) -> Result<(), Error> {
    for c in cells {
        if !copy_off(family) {
            layouter.constrain_instance(c, cfg.instance, *row)?;
        }
        *row += 1;
    }
    Ok(())
}

/// The salted Poseidon commitment to a program's task inputs (a stateful program's state is
/// committed to on its own), as the circuit computes it: inputs are offset to unsigned
/// (`x + 2^(bits-1)`, which the circuit range-checks to `[0, 2^bits)`), packed into field
/// elements by [`pack_slots`], and hashed in a chain starting from the salt:
/// `h = H(h, packed_j)`.
pub fn input_commitment(program: &Program, inputs: &[Vec<i64>], salt: Fp) -> Fp {
    commitment(program, program.task_inputs(), inputs, salt)
}

/// The salted Poseidon commitment to the values of `ios` (see [`input_commitment`]).
pub fn commitment(program: &Program, ios: &[IoSpec], values: &[Vec<i64>], salt: Fp) -> Fp {
    let mut h = salt;
    for p in pack_values(program, ios, values) {
        h = poseidon::Hash::<Fp, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, p]);
    }
    h
}

/// How input elements are packed for hashing: for each field element, its slots as
/// `(flat input index, bit offset, bits)`. Slots are as wide as their input's bit width and
/// follow each other until the next one would pass [`PACK_BITS`], so two different inputs
/// within their ranges never pack to the same field elements.
pub fn pack_slots(program: &Program) -> Vec<Vec<(usize, u32, u32)>> {
    pack_slots_of(program, &program.inputs)
}

/// [`pack_slots`] over any list of the program's tensors (a segment's link).
pub fn pack_slots_of(program: &Program, ios: &[IoSpec]) -> Vec<Vec<(usize, u32, u32)>> {
    let mut out: Vec<Vec<(usize, u32, u32)>> = Vec::new();
    let mut used = PACK_BITS;
    let mut flat = 0;
    for io in ios {
        let bits = program.tensors[io.tensor].bits;
        for _ in 0..crate::tensor::numel(&program.tensors[io.tensor].shape) {
            if used + bits > PACK_BITS {
                out.push(Vec::new());
                used = 0;
            }
            out.last_mut()
                .expect("a group was opened")
                .push((flat, used, bits));
            used += bits;
            flat += 1;
        }
    }
    out
}

/// The packed field elements of the inputs (see [`input_commitment`]).
pub fn pack_inputs(program: &Program, inputs: &[Vec<i64>]) -> Vec<Fp> {
    pack_values(program, &program.inputs, inputs)
}

/// The packed field elements of the values of `ios`.
fn pack_values(program: &Program, ios: &[IoSpec], values: &[Vec<i64>]) -> Vec<Fp> {
    let flat: Vec<i128> = values.iter().flatten().map(|&v| v as i128).collect();
    pack_slots_of(program, ios)
        .iter()
        .map(|slots| {
            slots.iter().fold(Fp::zero(), |acc, &(i, off, bits)| {
                acc + fp(flat[i] + (1i128 << (bits - 1))) * pow2(off)
            })
        })
        .collect()
}

/// `2^e` in the field.
pub fn pow2(e: u32) -> Fp {
    Fp::from(2).pow_vartime([e as u64])
}

/// A 32-byte task nonce as two field elements: its low and high 16 bytes, little-endian.
pub fn nonce_fields(nonce: &[u8; 32]) -> [Fp; 2] {
    let half = |b: &[u8]| Fp::from_u128(u128::from_le_bytes(b.try_into().expect("16 bytes")));
    [half(&nonce[..16]), half(&nonce[16..])]
}

/// The public instance column: the nonce's two halves, inputs (or their commitment), outputs.
pub fn instance(nonce: [Fp; 2], input_part: &[Fp], outputs: &[Vec<i64>]) -> Vec<Fp> {
    let mut v = nonce.to_vec();
    v.extend_from_slice(input_part);
    v.extend(outputs.iter().flatten().map(|&o| fp(o as i128)));
    v
}

#[cfg(test)]
fn copy_off(family: CopyFamily) -> bool {
    testing::copy_disabled(family)
}

#[cfg(not(test))]
fn copy_off(_: CopyFamily) -> bool {
    false
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
pub(crate) mod tests;
