//! The halo2 circuit of an AIVM program (zcash `halo2_proofs`, IPA over the Pasta curves).
//!
//! [`AivmCircuit`] lays out a [`Program`] with the gadgets of [`ctx`]: each op family's layout
//! sits next to its integer `eval` in [`crate::ops`] and constrains exactly that meaning. The
//! public instance is one column: the task nonce (two field elements), then either the input
//! values (public inputs) or a salted Poseidon commitment to them (hashed inputs), then the
//! output values.

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

use crate::program::Program;
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
}

/// The circuit of one program.
#[derive(Clone, Debug)]
pub struct AivmCircuit {
    pub program: Arc<Program>,
    pub tables: Arc<Tables>,
    pub visibility: Visibility,
    /// Width of the range-check limbs, chosen with the domain size (see [`AivmCircuit::new`]).
    pub limb_bits: u32,
    pub witness: Option<Witness>,
}

impl AivmCircuit {
    /// A circuit without witness (for key generation and verification). The limb width is the
    /// one that gives the smallest domain: 8-bit limbs need a 511-row range table, so small
    /// models prove in a domain of 2^8 or 2^9 rows only with 6- or 7-bit limbs (more limbs per
    /// value, a smaller table); on a tie the wider limbs (fewer rows) win.
    pub fn new(program: Arc<Program>, visibility: Visibility) -> AivmCircuit {
        let tables = Arc::new(Tables::of(&program));
        let mut c = AivmCircuit {
            program,
            tables,
            visibility,
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

    /// Number of input field elements hashed (packed).
    pub fn packed_len(program: &Program) -> usize {
        pack_slots(program).len()
    }

    /// Rows the circuit needs (main region, Poseidon and tables), before blinding rows.
    pub fn rows(&self) -> (usize, usize) {
        let mut cs = ConstraintSystem::default();
        let cfg = Config::configure(&mut cs);
        let mut ctx = Ctx::new(&cfg, None, self.limb_bits);
        let main = layout::layout(&mut ctx, &self.program, &self.tables, self.visibility, None)
            .map(|_| ctx.row)
            .unwrap_or(usize::MAX / 2);
        let hashes = match self.visibility {
            Visibility::Public => 0,
            Visibility::Hashed => Self::packed_len(&self.program),
        };
        let table = self
            .tables
            .entries
            .len()
            .max(tables::range_table_rows(self.limb_bits));
        (main + 1 + hashes * ROWS_PER_HASH, table)
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
            self.visibility,
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
        let (laid, salt, packed, nonce) = layouter.assign_region(
            || "aivm program",
            |mut region| {
                let mut ctx = Ctx::new(&cfg, Some(&mut region), self.limb_bits);
                let laid =
                    layout::layout(&mut ctx, program, &self.tables, self.visibility, inputs)?;
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
                let salt = match self.visibility {
                    Visibility::Hashed => {
                        let salt = self.witness.as_ref().map(|w| w.salt);
                        let v = salt.map_or(Value::unknown(), Value::known);
                        Some(region.assign_advice(|| "salt", cfg.v, row, || v)?)
                    }
                    Visibility::Public => None,
                };
                #[allow(unused_mut)]
                let mut packed = laid.packed.clone();
                #[cfg(test)]
                if copy_off(CopyFamily::HashInput) {
                    // Soundness tests only: the hash reads free cells (which a forgery may
                    // override) instead of the packed inputs.
                    for (i, p) in packed.iter_mut().enumerate() {
                        let col = cfg.lane[i % LANES];
                        let v = testing::override_at(col, row + i / LANES)
                            .map_or(p.value().copied(), Value::known);
                        *p = region.assign_advice(|| "free", col, row + i / LANES, || v)?;
                    }
                }
                Ok((laid, salt, packed, nonce))
            },
        )?;
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
        expose(&mut layouter, nonce, CopyFamily::Nonce)?;
        match self.visibility {
            Visibility::Public => {
                expose(&mut layouter, cells(&laid.inputs), CopyFamily::PublicInput)?;
            }
            Visibility::Hashed => {
                let mut h: AssignedCell<Fp, Fp> = salt.expect("hashed inputs have a salt cell");
                for (i, p) in packed.iter().enumerate() {
                    let chip = Pow5Chip::construct(cfg.poseidon.clone());
                    let hasher = PoseidonHash::<_, _, P128Pow5T3, ConstantLength<2>, 3, 2>::init(
                        chip,
                        layouter.namespace(|| format!("poseidon init {i}")),
                    )?;
                    h = hasher.hash(
                        layouter.namespace(|| format!("poseidon {i}")),
                        [h, p.clone()],
                    )?;
                }
                expose(&mut layouter, vec![h.cell()], CopyFamily::Commitment)?;
            }
        }
        expose(&mut layouter, cells(&laid.outputs), CopyFamily::Output)
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

/// The salted Poseidon commitment to a program's inputs, as the circuit computes it: inputs are
/// offset to unsigned (`x + 2^(bits-1)`, which the circuit range-checks to `[0, 2^bits)`),
/// packed into field elements by [`pack_slots`], and hashed in a chain starting from the salt:
/// `h = H(h, packed_j)`.
pub fn input_commitment(program: &Program, inputs: &[Vec<i64>], salt: Fp) -> Fp {
    let mut h = salt;
    for p in pack_inputs(program, inputs) {
        h = poseidon::Hash::<Fp, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, p]);
    }
    h
}

/// How input elements are packed for hashing: for each field element, its slots as
/// `(flat input index, bit offset, bits)`. Slots are as wide as their input's bit width and
/// follow each other until the next one would pass [`PACK_BITS`], so two different inputs
/// within their ranges never pack to the same field elements.
pub fn pack_slots(program: &Program) -> Vec<Vec<(usize, u32, u32)>> {
    let mut out: Vec<Vec<(usize, u32, u32)>> = Vec::new();
    let mut used = PACK_BITS;
    let mut flat = 0;
    for io in &program.inputs {
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
    let flat: Vec<i128> = inputs.iter().flatten().map(|&v| v as i128).collect();
    pack_slots(program)
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
