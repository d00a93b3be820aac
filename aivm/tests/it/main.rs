//! Integration tests of the AIVM: fixtures against tract, crafted models against the guards,
//! the encoding, determinism and op variants.

mod builder;
mod crafted;
mod determinism;
mod digits;
mod encoding;
mod fixtures;
mod op_variants;
mod proving;
mod segments;
mod soundness;
mod state;
mod vk_cache;

use std::path::Path;

use lightchain_aivm::{GuardLimits, ImportOptions, Inputs, Model, QuantConfig};

pub use lightchain_test_utils::{all_fixture_models, fixtures_dir};

pub fn load(path: &Path) -> Model {
    Model::load(path, &ImportOptions::default(), &GuardLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_inputs(model: &Model, path: &Path) -> Inputs {
    let text = std::fs::read_to_string(path).unwrap();
    model
        .parse_inputs(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compiles a model calibrated on its own input with the default configuration.
pub fn compile(model: &Model, inputs: &Inputs) -> lightchain_aivm::Program {
    model
        .compile(std::slice::from_ref(inputs), &QuantConfig::default())
        .unwrap()
}
