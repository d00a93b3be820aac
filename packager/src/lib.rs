//! `lightchain-packager`: from a project folder (`lightchain.toml`, an ONNX model, test vectors)
//! to one `.lcpkg` file, and back.
//!
//! [`manifest`] parses and checks the manifest (every problem with its line), [`schema`] checks
//! it against the ONNX graph, [`package`] builds a package (calibration, keys, memory limit, test
//! vectors through executor and prover) and loads one (checksums, program against the ONNX
//! model), and [`container`] is the deterministic file format.

pub mod container;
pub mod error;
pub mod manifest;
pub mod package;
pub mod schema;

pub use error::{ManifestIssue, PackageError, Result};
pub use manifest::Manifest;
pub use package::{Package, Stage, build, load, load_file};
