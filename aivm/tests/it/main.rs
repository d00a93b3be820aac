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
mod soundness;

use std::path::{Path, PathBuf};

use lightchain_aivm::{GuardLimits, ImportOptions, Inputs, Model, QuantConfig};

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

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

/// Every fixture model with its input file: our generated fixtures and the EZKL examples.
pub fn all_fixture_models() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.extend(
        std::fs::read_dir(fixtures_dir().join("ezkl"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    dirs.sort();
    for d in dirs {
        for (m, i) in [("model.onnx", "input.json"), ("network.onnx", "input.json")] {
            if d.join(m).exists() {
                out.push((
                    d.file_name().unwrap().to_string_lossy().into_owned(),
                    d.join(m),
                    d.join(i),
                ));
            }
        }
    }
    out
}

/// Compiles a model calibrated on its own input with the default configuration.
pub fn compile(model: &Model, inputs: &Inputs) -> lightchain_aivm::Program {
    model
        .compile(std::slice::from_ref(inputs), &QuantConfig::default())
        .unwrap()
}
