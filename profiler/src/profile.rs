//! Measuring a package at several input sizes and fitting its cost curve.

use std::sync::Arc;
use std::time::Instant;

use lightchain_aivm::circuit::{Visibility, Witness};
use lightchain_aivm::gas;
use lightchain_aivm::onnx::value_info::{self, Dim};
use lightchain_aivm::proof::{Keys, ParamsCache};
use lightchain_aivm::{ImportOptions, Inputs, Model, Program, Tensor, onnx};
use lightchain_packager::Package;
use lightchain_packager::manifest::DTypeSpec;
use serde::{Deserialize, Serialize};

use crate::fit::{CostCurve, fit, median};
use crate::{ProfileError, Result};

/// What to measure.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// Measured runs per size (after one warm-up run).
    pub runs: usize,
    /// Values of the size axis; `None` for the package's size and 2, 4 and 8 times it.
    pub sizes: Option<Vec<usize>>,
    /// Gas price used for the fees in the report.
    pub gas_price: u64,
    /// Seed of the random inputs.
    pub seed: u64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            runs: 10,
            sizes: None,
            gas_price: 1,
            seed: 1,
        }
    }
}

/// Timings of one run, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTimes {
    pub execute: f64,
    pub witness: f64,
    pub prove: f64,
    pub verify: f64,
}

/// The input axis whose size varies (a symbolic dimension of the ONNX model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeAxis {
    pub input: String,
    pub axis: usize,
    pub dim_name: String,
}

/// Figures of one input size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizePoint {
    pub size: usize,
    pub input_shapes: Vec<Vec<usize>>,
    pub k: u32,
    pub gas: u64,
    pub fee: u64,
    pub predicted_seconds: f64,
    pub median_seconds: f64,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// `(predicted - median) / median`.
    pub prediction_error: f64,
    pub median_execute_seconds: f64,
    pub median_witness_seconds: f64,
    pub median_verify_seconds: f64,
    pub peak_mib: Option<f64>,
    pub runs: Vec<RunTimes>,
}

/// A package's measured profile and cost curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub version: String,
    pub model_id: String,
    pub input_visibility: Visibility,
    pub axis: Option<SizeAxis>,
    pub gas_price: u64,
    pub sizes: Vec<SizePoint>,
    /// Sizes left out, with the reason.
    pub skipped: Vec<(usize, String)>,
    pub curve: CostCurve,
}

/// Progress of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileEvent {
    Size { size: usize, k: u32 },
    Run { run: usize, of: usize },
}

/// The last symbolic dimension of the model's first input, if any.
pub fn size_axis(pkg: &Package) -> Option<SizeAxis> {
    let graph = pkg.model.guarded.proto.graph.as_ref()?;
    let first = value_info::decode(value_info::runtime_inputs(graph).next()?)?;
    let dims = first.dims();
    let axis = dims.iter().rposition(|d| matches!(d, Dim::Param(_)))?;
    let Dim::Param(dim_name) = &dims[axis] else {
        return None;
    };
    Some(SizeAxis {
        input: first.name.clone(),
        axis,
        dim_name: dim_name.clone(),
    })
}

fn peak_reset() {
    // Resets the peak resident set size (VmHWM) of this process (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory so far (Linux `VmHWM`), in MiB.
pub fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

use lightchain_aivm::rng::SplitMix64 as SplitMix;

/// Random inputs inside the manifest's ranges, in the given shapes.
fn random_inputs(
    pkg: &Package,
    model: &Model,
    shapes: &[Vec<usize>],
    rng: &mut SplitMix,
) -> Result<Inputs> {
    let tensors = model
        .inputs()
        .iter()
        .zip(shapes)
        .map(|(info, shape)| {
            let spec = pkg.manifest.inputs.iter().find(|s| s.name == info.name).ok_or_else(|| {
                ProfileError::Invalid(format!("input \"{}\" is not in the manifest", info.name))
            })?;
            let [lo, hi] = spec.range.ok_or_else(|| {
                ProfileError::Invalid(format!(
                    "input \"{}\" has no range in the manifest: profiling needs ranges to draw inputs from",
                    info.name
                ))
            })?;
            let n: usize = shape.iter().product();
            let data = (0..n)
                .map(|_| {
                    let v = lo + (hi - lo) * rng.unit();
                    if spec.dtype == DTypeSpec::I64 { v.floor() } else { v }
                })
                .collect();
            Ok(Tensor::new(shape.clone(), data))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Inputs { tensors })
}

/// The package's model lowered with other input shapes and quantized with the package's own
/// calibration (the values of a model do not change magnitude with its batch or length).
fn program_for(pkg: &Package, shapes: &[Vec<usize>]) -> Result<(Model, Program)> {
    let names: Vec<String> = pkg.model.inputs().iter().map(|i| i.name.clone()).collect();
    let opts = ImportOptions {
        input_shapes: names.into_iter().zip(shapes.iter().cloned()).collect(),
        ..ImportOptions::default()
    };
    let graph = onnx::lower(&pkg.model.guarded, &opts)?;
    let model = Model {
        guarded: pkg.model.guarded.clone(),
        graph,
    };
    let program = model.compile_with(&pkg.compile.calibration, &pkg.compile.quant)?;
    Ok((model, program))
}

/// Measures a package and fits its cost curve.
pub fn profile(
    pkg: &Package,
    params: &ParamsCache,
    opts: &ProfileOptions,
    progress: &mut dyn FnMut(ProfileEvent),
) -> Result<Profile> {
    if opts.runs == 0 {
        return Err(ProfileError::Invalid("--runs must be at least 1".into()));
    }
    let base_shapes: Vec<Vec<usize>> = pkg.model.inputs().iter().map(|i| i.shape.clone()).collect();
    let axis = size_axis(pkg);
    let base = axis.as_ref().map_or(1, |a| base_shapes[0][a.axis]);
    let sizes = match (&opts.sizes, &axis) {
        (Some(s), Some(_)) => s.clone(),
        (Some(s), None) if s.iter().all(|&v| v == base) => s.clone(),
        (Some(_), None) => {
            return Err(ProfileError::Invalid(
                "the model has no symbolic input dimension, so it can only be profiled at its package size".into(),
            ));
        }
        (None, Some(_)) => vec![base, 2 * base, 4 * base, 8 * base],
        (None, None) => vec![base],
    };
    if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > 1 << 16) {
        return Err(ProfileError::Invalid(
            "sizes must be between 1 and 65536".into(),
        ));
    }
    let visibility = pkg.info.input_visibility;
    let mut rng = SplitMix(opts.seed);
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for &size in &sizes {
        let mut shapes = base_shapes.clone();
        if let Some(a) = &axis {
            shapes[0][a.axis] = size;
        }
        let (model, program) = if shapes == base_shapes {
            (pkg.model.clone(), (*pkg.program).clone())
        } else {
            program_for(pkg, &shapes)?
        };
        let g = gas::meter(&program, visibility);
        let mem = lightchain_packager::package::memory_estimate_mb(g.k);
        if mem > pkg.manifest.limits.memory_mb {
            skipped.push((
                size,
                format!(
                    "needs an estimated {mem} MB (k = {}), above the {} MB limit",
                    g.k, pkg.manifest.limits.memory_mb
                ),
            ));
            continue;
        }
        progress(ProfileEvent::Size { size, k: g.k });
        let program = Arc::new(program);
        let keys = Keys::derive(program.clone(), visibility, params, true)?;
        let verifier = Keys::derive(
            Arc::new(Program::decode(&program.encode())?),
            visibility,
            params,
            false,
        )?;
        peak_reset();
        let mut runs = Vec::with_capacity(opts.runs);
        for r in 0..=opts.runs {
            progress(ProfileEvent::Run {
                run: r,
                of: opts.runs,
            });
            let inputs = random_inputs(pkg, &model, &shapes, &mut rng)?;
            let q = program.quantize_inputs(&inputs)?;
            let t = Instant::now();
            program.execute(&q)?;
            let execute = t.elapsed().as_secs_f64();
            let t = Instant::now();
            keys.circuit
                .with_witness(Witness::new(q.clone(), Default::default()))
                .generate_witness()
                .map_err(|e| ProfileError::Invalid(format!("witness generation failed: {e:?}")))?;
            let witness = t.elapsed().as_secs_f64();
            let mut rngp = rand_core::UnwrapErr(rand::rngs::SysRng);
            let t = Instant::now();
            let proof = keys.prove(&q, [r as u8; 32], &mut rngp)?;
            let prove = t.elapsed().as_secs_f64();
            let t = Instant::now();
            verifier.verify(&proof)?;
            let verify = t.elapsed().as_secs_f64();
            if r > 0 {
                // Run 0 warms caches and thread pools; it is not measured.
                runs.push(RunTimes {
                    execute,
                    witness,
                    prove,
                    verify,
                });
            }
        }
        let prove: Vec<f64> = runs.iter().map(|r| r.prove).collect();
        points.push(SizePoint {
            size,
            input_shapes: shapes,
            k: g.k,
            gas: g.total,
            fee: g.total.saturating_mul(opts.gas_price),
            predicted_seconds: 0.0,
            median_seconds: median(&prove),
            min_seconds: prove.iter().copied().fold(f64::INFINITY, f64::min),
            max_seconds: prove.iter().copied().fold(0.0, f64::max),
            prediction_error: 0.0,
            median_execute_seconds: median(&runs.iter().map(|r| r.execute).collect::<Vec<_>>()),
            median_witness_seconds: median(&runs.iter().map(|r| r.witness).collect::<Vec<_>>()),
            median_verify_seconds: median(&runs.iter().map(|r| r.verify).collect::<Vec<_>>()),
            peak_mib: peak_mib(),
            runs,
        });
    }
    if points.is_empty() {
        return Err(ProfileError::Invalid(
            "every size exceeds the package's memory limit".into(),
        ));
    }
    let all: Vec<(f64, f64)> = points
        .iter()
        .flat_map(|p| p.runs.iter().map(move |r| (p.gas as f64, r.prove)))
        .collect();
    let curve = fit(&all, gas::GAS_SCHEDULE_VERSION, "proving seconds");
    for p in &mut points {
        p.predicted_seconds = curve.predict(p.gas);
        p.prediction_error = (p.predicted_seconds - p.median_seconds) / p.median_seconds;
    }
    Ok(Profile {
        name: pkg.info.name.clone(),
        version: pkg.info.version.clone(),
        model_id: pkg.info.model_id.clone(),
        input_visibility: visibility,
        axis,
        gas_price: opts.gas_price,
        sizes: points,
        skipped,
        curve,
    })
}

impl Profile {
    /// The sidecar path of a package: `PKG.profile.json`.
    pub fn sidecar(package: &std::path::Path) -> std::path::PathBuf {
        let mut s = package.as_os_str().to_owned();
        s.push(".profile.json");
        std::path::PathBuf::from(s)
    }

    /// Reads a package's sidecar profile, if there is one for this model.
    pub fn read_sidecar(package: &std::path::Path, model_id: &str) -> Option<Profile> {
        let text = std::fs::read_to_string(Self::sidecar(package)).ok()?;
        let p: Profile = serde_json::from_str(&text).ok()?;
        (p.model_id == model_id).then_some(p)
    }
}
