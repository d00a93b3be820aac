//! Smart gas: the fee of a task as a deterministic function of the program and its input shape.
//!
//! Gas counts what a task costs validators: the proof's domain (`2^k` rows, which sets proving
//! time and memory), the multiply-accumulates the executor runs, the lookups, the bytes that
//! travel in and out, and the verification every other validator does. Everything is computed
//! from the program (whose shapes are fixed) and the input visibility, never from input values,
//! so the quote before a task is exactly the charge after it.

use serde::{Deserialize, Serialize};

use crate::circuit::{AivmCircuit, Visibility};
use crate::program::Program;
use crate::tensor::numel;

/// Version of the gas schedule; part of every quote.
pub const GAS_SCHEDULE_VERSION: u32 = 1;

/// Prices of the gas schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasSchedule {
    pub version: u32,
    /// Every task.
    pub base: u64,
    /// Per row of the proof's domain (`2^k`).
    pub per_domain_row: u64,
    /// Per multiply-accumulate executed.
    pub per_mac: u64,
    /// Per table lookup (activations, embeddings).
    pub per_lookup: u64,
    /// Per byte of input and output.
    pub per_byte: u64,
    /// Verification by each other validator: a fixed part and a part per public input.
    pub verify_base: u64,
    pub per_public_input: u64,
}

/// The schedule in force. Proving dominates a task's cost and grows with the domain (`2^k`
/// rows), so rows carry most of the price: on the reference 2-core machine one gas is about
/// 1.3 µs of proving (k = 10, 1,024 rows, 0.35 s). Verification (about 8 ms per validator at
/// k = 10) and the executor's work are priced on the same scale.
pub const SCHEDULE: GasSchedule = GasSchedule {
    version: GAS_SCHEDULE_VERSION,
    base: 21_000,
    per_domain_row: 256,
    per_mac: 1,
    per_lookup: 4,
    per_byte: 8,
    verify_base: 20_000,
    per_public_input: 50,
};

/// What a task uses, in the units the schedule prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub k: u32,
    pub rows: u64,
    pub macs: u64,
    pub lookups: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub public_inputs: u64,
}

impl GasSchedule {
    /// Prices a task's usage.
    pub fn price(&self, u: Usage) -> GasReport {
        let prove_gas = self.per_domain_row * (1u64 << u.k);
        let exec_gas = self.per_mac * u.macs + self.per_lookup * u.lookups;
        let io_gas = self.per_byte * (u.bytes_in + u.bytes_out);
        let verify_gas = self.verify_base + self.per_public_input * u.public_inputs;
        GasReport {
            schedule: self.version,
            k: u.k,
            rows: u.rows,
            macs: u.macs,
            lookups: u.lookups,
            bytes_in: u.bytes_in,
            bytes_out: u.bytes_out,
            public_inputs: u.public_inputs,
            prove_gas,
            exec_gas,
            io_gas,
            verify_gas,
            total: self.base + prove_gas + exec_gas + io_gas + verify_gas,
        }
    }
}

/// A gas quote: the measured quantities and what each costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasReport {
    pub schedule: u32,
    pub k: u32,
    pub rows: u64,
    pub macs: u64,
    pub lookups: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub public_inputs: u64,
    pub prove_gas: u64,
    pub exec_gas: u64,
    pub io_gas: u64,
    pub verify_gas: u64,
    pub total: u64,
}

/// Meters a program with the schedule in force.
pub fn meter(program: &Program, visibility: Visibility) -> GasReport {
    meter_with(&SCHEDULE, program, visibility)
}

/// Meters a program with a given schedule: the usage of a task as its shapes fix it.
pub fn meter_with(s: &GasSchedule, program: &Program, visibility: Visibility) -> GasReport {
    let circuit = AivmCircuit::new(std::sync::Arc::new(program.clone()), visibility);
    let elems = |ios: &[crate::program::IoSpec]| {
        ios.iter()
            .map(|io| numel(&program.tensors[io.tensor].shape) as u64)
            .sum::<u64>()
    };
    let (n_in, n_out) = (elems(&program.inputs), elems(&program.outputs));
    let public_in = match visibility {
        Visibility::Public => n_in,
        Visibility::Hashed => 1,
    };
    s.price(usage(&circuit, circuit.min_k(), n_in, n_out, public_in))
}

/// What a task of a program (laid out as `circuit`) uses, proven at `k` with `n_in` input and `n_out` output
/// elements and `public_in` public input cells (the inputs, or their commitment). The quote
/// ([`meter`]) and the charge ([`charge`]) both price this one function, so they agree
/// whenever the task is what its shapes say.
pub fn usage(circuit: &AivmCircuit, k: u32, n_in: u64, n_out: u64, public_in: u64) -> Usage {
    let program = &circuit.program;
    Usage {
        k,
        rows: circuit.rows().0 as u64,
        macs: program.macs(),
        lookups: program.lookups(),
        bytes_in: 8 * n_in,
        bytes_out: 8 * n_out,
        // The nonce, the input part and the outputs.
        public_inputs: 1 + public_in + n_out,
    }
}

/// The charge of a task after it ran: computed from what the task actually produced (the
/// proof's `k`, the public inputs it carries, the sizes of its inputs and outputs) with the
/// schedule in force. For an honest task this equals [`meter`]'s quote exactly.
pub fn charge(program: &Program, inputs: &[Vec<i64>], proof: &crate::proof::Proof) -> GasReport {
    let n_in: u64 = inputs.iter().map(|x| x.len() as u64).sum();
    let n_out: u64 = proof.outputs.iter().map(|x| x.len() as u64).sum();
    let public_in = match &proof.input {
        crate::proof::PublicInput::Values(v) => v.iter().map(|x| x.len() as u64).sum(),
        crate::proof::PublicInput::Commitment(_) => 1,
    };
    let circuit = AivmCircuit::new(std::sync::Arc::new(program.clone()), proof.visibility);
    // A segmented task is priced as the whole program's circuit, exactly as it was quoted.
    let k = match proof.segments {
        Some(_) => circuit.min_k(),
        None => proof.k,
    };
    SCHEDULE.price(usage(&circuit, k, n_in, n_out, public_in))
}

/// Estimated peak memory of proving at `k`, in MB: a base plus a per-row cost measured on the
/// fixtures (see BENCHMARKS.md: about 43 KB per row at k = 17, with margin).
pub fn memory_estimate_mb(k: u32) -> u64 {
    32 + ((1u64 << k) * 48) / 1024
}

/// A task quote: what one task of a model costs, before it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub model_id: String,
    pub gas: u64,
    pub gas_price: u64,
    pub fee: u64,
    /// Predicted proving seconds, when a measured cost curve is at hand.
    pub predicted_seconds: Option<f64>,
    pub memory_mb: u64,
    pub breakdown: GasReport,
}

/// Quotes one task of `program` (its gas already metered: metering lays the circuit out, so a
/// node meters each model once and quotes from that) for `inputs` at `gas_price`. The inputs
/// are checked against the program (shapes, dtypes and calibrated ranges) but not run: the
/// quote depends only on the program and the input shape, so it is exactly what executing and
/// proving will charge.
pub fn quote(
    program: &Program,
    model_id: &str,
    breakdown: GasReport,
    inputs: &crate::Inputs,
    gas_price: u64,
) -> crate::Result<Estimate> {
    let q = program.quantize_inputs(inputs)?;
    if q.len() < program.inputs.len() {
        // A stateful program's task input: the chain supplies the state.
        program.check_task_inputs(&q)?;
    } else {
        program.check_inputs(&q)?;
    }
    let gas = breakdown.total;
    Ok(Estimate {
        model_id: model_id.to_string(),
        gas,
        gas_price,
        fee: gas.saturating_mul(gas_price),
        predicted_seconds: None,
        memory_mb: memory_estimate_mb(breakdown.k),
        breakdown,
    })
}
