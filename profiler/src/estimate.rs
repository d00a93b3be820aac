//! Quotes before a task: gas, fee, predicted time and memory, without proving.

use lightchain_aivm::gas::{self, GasReport};
use lightchain_aivm::{Inputs, Program};
use lightchain_packager::Package;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::fit::CostCurve;

/// A task quote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub model_id: String,
    pub gas: u64,
    pub gas_price: u64,
    pub fee: u64,
    /// Predicted proving seconds, when the package has a measured cost curve.
    pub predicted_seconds: Option<f64>,
    pub memory_mb: u64,
    pub breakdown: GasReport,
}

/// Quotes one task of `program` for `inputs` at `gas_price`. The inputs are checked against
/// the program (shapes, dtypes and calibrated ranges) but not run: the quote depends only on the
/// program and the input shape, so it is exactly what executing and proving will charge.
pub fn estimate_program(
    program: &Program,
    visibility: lightchain_aivm::circuit::Visibility,
    inputs: &Inputs,
    gas_price: u64,
    curve: Option<&CostCurve>,
) -> Result<Estimate> {
    let metered = gas::meter(program, visibility);
    quote(
        program,
        &program.id().to_string(),
        metered,
        inputs,
        gas_price,
        curve,
    )
}

/// [`estimate_program`] with the program's gas already metered (metering lays the circuit out,
/// so a node meters each model once and quotes from that).
pub fn quote(
    program: &Program,
    model_id: &str,
    breakdown: GasReport,
    inputs: &Inputs,
    gas_price: u64,
    curve: Option<&CostCurve>,
) -> Result<Estimate> {
    let q = program.quantize_inputs(inputs)?;
    program.check_inputs(&q)?;
    let gas = breakdown.total;
    Ok(Estimate {
        model_id: model_id.to_string(),
        gas,
        gas_price,
        fee: gas.saturating_mul(gas_price),
        predicted_seconds: curve
            .filter(|c| c.schedule == breakdown.schedule)
            .map(|c| c.predict(gas)),
        memory_mb: lightchain_packager::package::memory_estimate_mb(breakdown.k),
        breakdown,
    })
}

/// Quotes one task of a package (see [`estimate_program`]).
pub fn estimate(
    pkg: &Package,
    inputs: &Inputs,
    gas_price: u64,
    curve: Option<&CostCurve>,
) -> Result<Estimate> {
    estimate_program(
        &pkg.program,
        pkg.info.input_visibility,
        inputs,
        gas_price,
        curve,
    )
}
