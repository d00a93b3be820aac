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
    /// settings on the command line (never with anything taken from the input at hand, so
    /// that a verifier given the same settings compiles the same program).
    pub fn program(
        &self,
        quant: &QuantArgs,
    ) -> anyhow::Result<(
        std::sync::Arc<lightchain_aivm::Program>,
        Option<lightchain_aivm::proof::CompileRecord>,
        Settings,
    )> {
        match self {
            Source::Package(p) => {
                anyhow::ensure!(
                    quant.scale.is_none() && quant.calibrate.is_empty(),
                    "a package carries its own quantization; --scale and --calibrate apply to ONNX models"
                );
                let settings = Settings {
                    from: "package".into(),
                    scale: None,
                    calibration: Vec::new(),
                    default_range: None,
                    package: Some(format!("{} {}", p.info.name, p.info.version)),
                };
                Ok((p.program.clone(), None, settings))
            }
            Source::Onnx(m) => {
                let (calibration, settings) = quant.calibration(m)?;
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
                    settings,
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

/// How an ONNX model given on the command line is compiled: calibrated per tensor (default) or
/// one fixed scale, on calibration files or on the default samples. A prover and a verifier
/// given the same settings compile the same program.
#[derive(Debug, Clone, Args)]
pub struct QuantArgs {
    /// Use one fixed-point scale (fractional bits) for every tensor instead of calibrated
    /// per-tensor scales.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=24))]
    pub scale: Option<u32>,
    /// Input files to calibrate on (repeatable). Without them the model is calibrated on
    /// deterministic samples with every float input in [-1, 1].
    #[arg(long, value_name = "FILE")]
    pub calibrate: Vec<PathBuf>,
}

/// A calibration file and its content hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CalibrationFile {
    pub path: String,
    pub blake3: String,
}

/// The settings a program was compiled with, as `prove`, `run` and `verify` report them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// "settings" (the command line's), "package" or "model-id".
    pub from: String,
    /// The fixed scale, or none for calibrated scales.
    pub scale: Option<u32>,
    /// The calibration files (empty: the default samples).
    pub calibration: Vec<CalibrationFile>,
    /// The input range of the default samples, when they were used.
    pub default_range: Option<[f64; 2]>,
    /// The package's name and version.
    pub package: Option<String>,
}

impl Settings {
    /// One line for people.
    pub fn describe(&self) -> String {
        if let Some(p) = &self.package {
            return format!("the package's own ({p})");
        }
        if self.from == "model-id" {
            return "the expected model id (the proof's compile record used only to rebuild it)"
                .into();
        }
        let q = match self.scale {
            Some(s) => format!("fixed scale {s}"),
            None => "calibrated scales".into(),
        };
        let c = match &self.default_range {
            Some([lo, hi]) => format!("default calibration (float inputs in [{lo}, {hi}])"),
            None => format!(
                "calibrated on {}",
                self.calibration
                    .iter()
                    .map(|f| format!("{} (blake3 {}…)", f.path, &f.blake3[..12]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!("{q}, {c}")
    }

    /// The flags that reproduce these settings on another command line.
    pub fn flags(&self) -> String {
        let mut f: Vec<String> = self.scale.iter().map(|s| format!("--scale {s}")).collect();
        f.extend(
            self.calibration
                .iter()
                .map(|c| format!("--calibrate {}", c.path)),
        );
        f.join(" ")
    }
}

impl QuantArgs {
    pub fn config(&self) -> lightchain_aivm::QuantConfig {
        self.scale.map_or_else(
            lightchain_aivm::QuantConfig::default,
            lightchain_aivm::QuantConfig::fixed,
        )
    }

    /// Calibrates the model on the calibration files, or on its default samples.
    pub fn calibration(
        &self,
        model: &Model,
    ) -> anyhow::Result<(lightchain_aivm::Calibration, Settings)> {
        let mut files = Vec::new();
        let samples = if self.calibrate.is_empty() {
            model.default_samples()
        } else {
            let mut samples = Vec::new();
            for p in &self.calibrate {
                let bytes =
                    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
                files.push(CalibrationFile {
                    path: p.display().to_string(),
                    blake3: blake3::hash(&bytes).to_hex().to_string(),
                });
                samples.push(read_inputs(model, p)?);
            }
            samples
        };
        let calibration = model.calibrate(&samples).context("calibration failed")?;
        let (lo, hi) = lightchain_aivm::quantize::DEFAULT_INPUT_RANGE;
        let settings = Settings {
            from: "settings".into(),
            scale: self.scale,
            default_range: files.is_empty().then_some([lo, hi]),
            calibration: files,
            package: None,
        };
        Ok((calibration, settings))
    }
}

/// Adds what to do to an executor error on a model compiled with `settings`: an input outside
/// the calibrated range of an ONNX model needs calibration data.
pub fn input_hint(e: lightchain_aivm::AivmError, settings: &Settings) -> anyhow::Error {
    let outside = matches!(
        e,
        lightchain_aivm::AivmError::Overflow { .. } | lightchain_aivm::AivmError::Input { .. }
    );
    let e = anyhow::Error::new(e);
    if outside && settings.package.is_none() {
        e.context(format!(
            "the integer executor failed: the model was compiled with {}; calibrate on data like \
             this input with --calibrate FILE (and give a verifier the same flags)",
            settings.describe()
        ))
    } else {
        e.context("the integer executor failed")
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
