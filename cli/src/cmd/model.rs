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

    /// Guards, parses and lowers an ONNX model (a package is refused).
    pub fn load(&self) -> anyhow::Result<Model> {
        match self.source()? {
            Source::Onnx(m) => Ok(*m),
            Source::Package(_) => anyhow::bail!(
                "{} is a package; this command takes an ONNX model",
                self.model.display()
            ),
        }
    }

    /// Loads an ONNX model or a `.lcpkg` package (recognised by its contents).
    pub fn source(&self) -> anyhow::Result<Source> {
        if is_package(&self.model) {
            let pkg = lightchain_packager::load_file(&self.model)
                .with_context(|| format!("failed to load package {}", self.model.display()))?;
            return Ok(Source::Package(Box::new(pkg)));
        }
        Model::load(&self.model, &self.import_options(), &GuardLimits::default())
            .map(|m| Source::Onnx(Box::new(m)))
            .with_context(|| format!("failed to load model {}", self.model.display()))
    }
}

/// Whether a file starts like a lightchain package.
pub fn is_package(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"LCPKG"
}

/// A model given on the command line: an ONNX file, or a package (model, program and keys'
/// recipe in one file).
pub enum Source {
    Onnx(Box<Model>),
    Package(Box<lightchain_packager::Package>),
}

impl Source {
    /// The program to run or prove: a package's own, or the ONNX model compiled with the
    /// quantization options, calibrated on `input` (and the calibration files).
    pub fn program(
        &self,
        input: &lightchain_aivm::Inputs,
        quant: &QuantArgs,
    ) -> anyhow::Result<(
        std::sync::Arc<lightchain_aivm::Program>,
        Option<lightchain_aivm::proof::CompileRecord>,
    )> {
        match self {
            Source::Package(p) => {
                anyhow::ensure!(
                    quant.scale.is_none() && quant.calibrate.is_empty(),
                    "a package carries its own quantization; --scale and --calibrate apply to ONNX models"
                );
                Ok((p.program.clone(), None))
            }
            Source::Onnx(m) => {
                let calibration = quant.calibration(m, input)?;
                let cfg = quant.config();
                let program = m
                    .compile_with(&calibration, &cfg)
                    .context("failed to quantize the model")?;
                Ok((
                    std::sync::Arc::new(program),
                    Some(lightchain_aivm::proof::CompileRecord {
                        quant: cfg,
                        calibration,
                    }),
                ))
            }
        }
    }

    /// The lowered float model.
    pub fn model(&self) -> &Model {
        match self {
            Source::Onnx(m) => m,
            Source::Package(p) => &p.model,
        }
    }
}

/// How a model is quantized on the command line: calibrated (default) or one fixed scale.
#[derive(Debug, Clone, Args)]
pub struct QuantArgs {
    /// Use one fixed-point scale (fractional bits) for every tensor instead of calibrated
    /// per-tensor scales.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=24))]
    pub scale: Option<u32>,
    /// Extra input files to calibrate on (the command's own input is always used).
    #[arg(long, value_name = "FILE")]
    pub calibrate: Vec<PathBuf>,
}

impl QuantArgs {
    pub fn config(&self) -> lightchain_aivm::QuantConfig {
        self.scale.map_or_else(
            lightchain_aivm::QuantConfig::default,
            lightchain_aivm::QuantConfig::fixed,
        )
    }

    /// Reads the calibration files and calibrates on them after `first`.
    pub fn calibration(
        &self,
        model: &Model,
        first: &lightchain_aivm::Inputs,
    ) -> anyhow::Result<lightchain_aivm::Calibration> {
        let mut samples = vec![first.clone()];
        for p in &self.calibrate {
            samples.push(read_inputs(model, p)?);
        }
        model.calibrate(&samples).context("calibration failed")
    }
}

/// Reads and checks an input file against the model.
pub fn read_inputs(
    model: &Model,
    path: &std::path::Path,
) -> anyhow::Result<lightchain_aivm::Inputs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    model
        .parse_inputs(&text)
        .with_context(|| format!("invalid input file {}", path.display()))
}
