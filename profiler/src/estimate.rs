//! Quotes before a task: gas, fee, predicted time and memory, without proving.

use lightchain_aivm::gas::{self, GasReport};
use lightchain_aivm::{Inputs, Program};
use lightchain_packager::Package;

use crate::Result;
use crate::fit::CostCurve;

pub use lightchain_aivm::gas::Estimate;

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

/// [`estimate_program`] with the program's gas already metered: the schedule's quote
/// ([`gas::quote`]) with the proving time the cost curve predicts.
pub fn quote(
    program: &Program,
    model_id: &str,
    breakdown: GasReport,
    inputs: &Inputs,
    gas_price: u64,
    curve: Option<&CostCurve>,
) -> Result<Estimate> {
    let mut e = gas::quote(program, model_id, breakdown, inputs, gas_price)?;
    e.predicted_seconds = curve
        .filter(|c| c.schedule == e.breakdown.schedule)
        .map(|c| c.predict(e.gas));
    Ok(e)
}

/// Quotes one task of a package (see [`estimate_program`]).
pub fn estimate(
    pkg: &Package,
    inputs: &Inputs,
    gas_price: u64,
    curve: Option<&CostCurve>,
) -> Result<Estimate> {
    // Proving memory as the package proves it: in segments when over its limit.
    estimate_program(
        &pkg.program,
        pkg.info.input_visibility,
        inputs,
        gas_price,
        curve,
    )
    .map(|e| Estimate {
        memory_mb: pkg.info.memory_estimate_mb,
        ..e
    })
}
