//! The halo2 circuit of an AIVM program (zcash `halo2_proofs`, IPA over the Pasta curves).
//!
//! [`AivmCircuit`] lays out a [`Program`] with the gadgets of [`ctx`]: each op family's layout
//! sits next to its integer `eval` in [`crate::ops`] and constrains exactly that meaning. The
//! public instance is one column: the task nonce, then either the input values (public inputs)
//! or a salted Poseidon commitment to them (hashed inputs), then the output values.

pub mod config;
pub mod ctx;
pub mod layout;
pub mod tables;

use std::sync::Arc;

use halo2_gadgets::poseidon::{
    Hash as PoseidonHash, Pow5Chip,
    primitives::{self as poseidon, ConstantLength, P128Pow5T3},
};
use halo2_proofs::circuit::{AssignedCell, Layouter, SimpleFloorPlanner, Value};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};

use ff::Field as _;

use crate::program::Program;
use config::Config;
use ctx::{Ctx, fp};
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

/// Input elements packed into one field element before hashing (32 bits each).
pub const PACK: usize = 7;
/// Rows one Poseidon hash of two elements takes (measured, with margin).
pub const ROWS_PER_HASH: usize = 48;

/// Witness mutations for soundness tests: each makes exactly one constraint fail.
#[derive(Clone, Debug, PartialEq)]
pub enum Tamper {
    /// The n-th rescale: remainder `r + 2^s`, quotient `q - 1`.
    RescaleRemainder(usize),
    /// The n-th rescale: another in-range remainder with the quotient solved in the field.
    RescaleWrap(usize),
    /// The n-th comparison: flip the sign bit.
    FlipSign(usize),
    /// The n-th table lookup: output this value instead of the table's.
    LutValue(usize, i128),
    /// The n-th argmax: a second one in the one-hot vector.
    ArgmaxTwoOnes(usize),
    /// The n-th argmax: break a tie by the last index instead of the first.
    ArgmaxLastTie(usize),
}

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
    pub(crate) tamper: Option<Tamper>,
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
            tamper: None,
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
        let n: usize = program
            .inputs
            .iter()
            .map(|io| crate::tensor::numel(&program.tensors[io.tensor].shape))
            .sum();
        n.div_ceil(PACK)
    }

    /// Rows the circuit needs (main region, Poseidon and tables), before blinding rows.
    pub fn rows(&self) -> (usize, usize) {
        let mut cs = ConstraintSystem::default();
        let cfg = Config::configure(&mut cs);
        let mut ctx = Ctx::new(&cfg, None, None, self.limb_bits);
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
        let mut ctx = Ctx::new(&cfg, None, None, self.limb_bits);
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
            tamper: None,
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
        let out = layouter.assign_region(
            || "aivm program",
            |mut region| {
                let mut ctx = Ctx::new(
                    &cfg,
                    Some(&mut region),
                    self.tamper.as_ref(),
                    self.limb_bits,
                );
                let laid =
                    layout::layout(&mut ctx, program, &self.tables, self.visibility, inputs)?;
                // The nonce enters the permutation argument through a copy of its instance cell.
                let row = ctx.next_row();
                let nonce = region.assign_advice_from_instance(
                    || "nonce",
                    cfg.instance,
                    0,
                    cfg.acc,
                    row,
                )?;
                let salt = match self.visibility {
                    Visibility::Hashed => {
                        let salt = self.witness.as_ref().map(|w| w.salt);
                        let v = salt.map_or(Value::unknown(), Value::known);
                        Some(region.assign_advice(|| "salt", cfg.v, row, || v)?)
                    }
                    Visibility::Public => None,
                };
                Ok((laid, nonce, salt))
            },
        )?;
        let (laid, _nonce, salt) = out;
        let mut row = 1;
        match self.visibility {
            Visibility::Public => {
                for c in laid.inputs.iter().flatten() {
                    layouter.constrain_instance(
                        c.cell.as_ref().expect("assigned").cell(),
                        cfg.instance,
                        row,
                    )?;
                    row += 1;
                }
            }
            Visibility::Hashed => {
                let mut h: AssignedCell<Fp, Fp> = salt.expect("hashed inputs have a salt cell");
                for (i, p) in laid.packed.iter().enumerate() {
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
                layouter.constrain_instance(h.cell(), cfg.instance, row)?;
                row += 1;
            }
        }
        for c in laid.outputs.iter().flatten() {
            layouter.constrain_instance(
                c.cell.as_ref().expect("assigned").cell(),
                cfg.instance,
                row,
            )?;
            row += 1;
        }
        Ok(())
    }
}

/// The salted Poseidon commitment to a program's inputs, as the circuit computes it: inputs are
/// offset to unsigned (`x + 2^(bits-1)`), packed `PACK` to a field element at 32 bits each, and
/// hashed in a chain starting from the salt: `h = H(h, packed_j)`.
pub fn input_commitment(program: &Program, inputs: &[Vec<i64>], salt: Fp) -> Fp {
    let mut h = salt;
    for p in pack_inputs(program, inputs) {
        h = poseidon::Hash::<Fp, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, p]);
    }
    h
}

/// The packed field elements of the inputs (see [`input_commitment`]).
pub fn pack_inputs(program: &Program, inputs: &[Vec<i64>]) -> Vec<Fp> {
    let unsigned: Vec<i128> = program
        .inputs
        .iter()
        .zip(inputs)
        .flat_map(|(io, x)| {
            let off = 1i128 << (program.tensors[io.tensor].bits - 1);
            x.iter().map(move |&v| v as i128 + off)
        })
        .collect();
    unsigned
        .chunks(PACK)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(Fp::zero(), |acc, (i, &u)| acc + fp(u) * pow2(32 * i as u32))
        })
        .collect()
}

/// `2^e` in the field.
pub fn pow2(e: u32) -> Fp {
    Fp::from(2).pow_vartime([e as u64])
}

/// The public instance column: nonce, inputs (or their commitment), outputs.
pub fn instance(nonce: Fp, input_part: &[Fp], outputs: &[Vec<i64>]) -> Vec<Fp> {
    let mut v = vec![nonce];
    v.extend_from_slice(input_part);
    v.extend(outputs.iter().flatten().map(|&o| fp(o as i128)));
    v
}

#[cfg(test)]
pub(crate) mod tests;
