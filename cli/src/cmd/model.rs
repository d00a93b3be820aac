//! Loading a model from the command line: the path and the import options every model-taking
//! command shares.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::{GuardLimits, ImportOptions, Model};

/// Where the model is and how to resolve its symbolic dimensions.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The ONNX model file.
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// Value of a symbolic input dimension, e.g. `--dim batch_size=4` (default 1).
    #[arg(long = "dim", value_name = "NAME=N", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,
}

fn parse_dim(s: &str) -> Result<(String, usize), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=N")?;
    let n: usize = v
        .parse()
        .map_err(|_| format!("\"{v}\" is not a positive integer"))?;
    if n == 0 || n > 1 << 16 {
        return Err("a dimension must be between 1 and 65536".into());
    }
    Ok((k.to_string(), n))
}

impl ModelArgs {
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            dims: self.dims.iter().cloned().collect(),
            ..ImportOptions::default()
        }
    }

    /// Guards, parses and lowers the model.
    pub fn load(&self) -> anyhow::Result<Model> {
        Model::load(&self.model, &self.import_options(), &GuardLimits::default())
            .with_context(|| format!("failed to load model {}", self.model.display()))
    }
}
