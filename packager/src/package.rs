//! Building and loading `.lcpkg` packages.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lightchain_aivm::AivmError;
use lightchain_aivm::accuracy::{argmax_rows, compare};
use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::gas::{self, GasReport};
use lightchain_aivm::guard::{GuardLimits, guard_bytes};
use lightchain_aivm::onnx::pipeline;
use lightchain_aivm::proof::{CompileRecord, ParamsCache};
use lightchain_aivm::segment::ModelKeys;
use lightchain_aivm::wire::hex;
use lightchain_aivm::{Calibration, Inputs, Model, Program, QuantConfig, Tensor};
use serde::{Deserialize, Serialize};

use crate::container;
use crate::error::{PackageError, Result};
use crate::manifest::{
    DTypeSpec, MANIFEST, Manifest, ProvingMode, ScaleSpec, TensorSpec, TestVector,
};
use crate::schema::check_and_lower;

/// What `package.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub model_id: String,
    pub k: u32,
    pub input_visibility: Visibility,
    pub vk_digest: String,
    pub memory_estimate_mb: u64,
    pub lightchain: String,
    /// Attested packages are never proven (no keys; `vk_digest` is empty).
    #[serde(default, skip_serializing_if = "ProvingMode::is_proven")]
    pub mode: ProvingMode,
}

/// The inputs and outputs a package accepts and produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// Accuracy of one test vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorAccuracy {
    pub name: String,
    pub max_abs_error: f64,
    pub max_rel_error: f64,
    pub argmax_agrees: bool,
}

/// The accuracy report stored in a package.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    pub act_bits: u32,
    pub target: f64,
    pub samples: usize,
    pub max_rel_error: f64,
    pub vectors: Vec<VectorAccuracy>,
}

/// A loaded (or just built) package.
#[derive(Clone, Debug)]
pub struct Package {
    pub info: PackageInfo,
    pub manifest: Manifest,
    pub manifest_text: String,
    pub program: Arc<Program>,
    pub model: Model,
    pub compile: CompileRecord,
    pub gas: GasReport,
    pub accuracy: AccuracyReport,
    /// Entry name, size and blake3 checksum, in file order.
    pub entries: Vec<(String, usize, String)>,
}

/// Steps of a build, for progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    Check,
    Calibrate,
    Keygen { k: u32 },
    TestVector { index: usize, total: usize },
    Write,
}

pub use lightchain_aivm::gas::memory_estimate_mb;

fn read_text(dir: &Path, p: &Path) -> Result<String> {
    let path = dir.join(p);
    std::fs::read_to_string(&path)
        .map_err(|e| PackageError::io(format!("cannot read {}", path.display()), e))
}

fn read_bytes(dir: &Path, p: &Path) -> Result<Vec<u8>> {
    let path = dir.join(p);
    std::fs::read(&path).map_err(|e| PackageError::io(format!("cannot read {}", path.display()), e))
}

/// The ONNX model a package holds: the manifest's model file, or a pipeline's stages merged
/// into one model ([`lightchain_aivm::onnx::pipeline`]), each stage guarded first.
pub fn model_bytes(dir: &Path, manifest: &Manifest) -> Result<Vec<u8>> {
    if let Some(onnx) = &manifest.onnx {
        return read_bytes(dir, onnx);
    }
    let mut guarded = Vec::new();
    for s in &manifest.stages {
        let g = guard_bytes(read_bytes(dir, &s.onnx)?, &GuardLimits::default()).map_err(|e| {
            AivmError::Pipeline(format!("stage \"{}\" ({}): {e}", s.name, s.onnx.display()))
        })?;
        guarded.push(g);
    }
    let stages: Vec<pipeline::Stage> = manifest
        .stages
        .iter()
        .zip(&guarded)
        .map(|(s, g)| pipeline::Stage {
            name: &s.name,
            model: g,
            bind: &s.inputs,
        })
        .collect();
    let outputs: Vec<String> = manifest.outputs.iter().map(|o| o.name.clone()).collect();
    Ok(pipeline::merge_bytes(&stages, &outputs)?)
}

/// Calibration samples: the test vectors' inputs, plus, for inputs with a declared range, the
/// range's ends and eight deterministic samples inside it.
fn calibration_samples(
    manifest: &Manifest,
    model: &Model,
    tests: &[Inputs],
    seed: u64,
) -> Result<Vec<Inputs>> {
    let mut samples = tests.to_vec();
    let specs: Vec<&TensorSpec> = model
        .inputs()
        .iter()
        .map(|i| {
            manifest
                .inputs
                .iter()
                .find(|t| t.name == i.name)
                .expect("checked by the schema")
        })
        .collect();
    if specs.iter().all(|s| s.range.is_some()) {
        let ranged: Vec<_> = specs
            .iter()
            .map(|s| {
                let [lo, hi] = s.range.expect("checked above");
                let dtype = match s.dtype {
                    DTypeSpec::I64 => lightchain_aivm::DType::I64,
                    DTypeSpec::F32 => lightchain_aivm::DType::F32,
                };
                (s.shape.clone(), dtype, (lo, hi))
            })
            .collect();
        samples.extend(lightchain_aivm::quantize::range_samples(&ranged, seed));
    }
    if samples.is_empty() {
        return Err(PackageError::Accuracy(
            "nothing to calibrate on: give every [[inputs]] entry a range, or add [[tests]]".into(),
        ));
    }
    Ok(samples)
}

fn read_expected(dir: &Path, t: &TestVector, model: &Model) -> Result<Option<Vec<Tensor<f64>>>> {
    let Some(p) = &t.expected else {
        return Ok(None);
    };
    let text = read_text(dir, p)?;
    let bad = |reason: String| PackageError::TestVector {
        name: t.name.clone(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{}: not valid JSON ({e})", p.display())))?;
    let outs = v
        .get("outputs")
        .and_then(|o| o.as_object())
        .ok_or_else(|| {
            bad(format!(
                "{}: expected {{\"outputs\": {{...}}}}",
                p.display()
            ))
        })?;
    let mut res = Vec::new();
    for o in model.outputs() {
        let val = outs
            .get(&o.name)
            .ok_or_else(|| bad(format!("{}: no output \"{}\"", p.display(), o.name)))?;
        let data = flatten(val).ok_or_else(|| {
            bad(format!(
                "{}: output \"{}\" is not an array of numbers",
                p.display(),
                o.name
            ))
        })?;
        let n: usize = o.shape.iter().product();
        if data.len() != n {
            return Err(bad(format!(
                "{}: output \"{}\" has {} values, the model gives {n}",
                p.display(),
                o.name,
                data.len()
            )));
        }
        res.push(Tensor::new(o.shape.clone(), data));
    }
    Ok(Some(res))
}

fn flatten(v: &serde_json::Value) -> Option<Vec<f64>> {
    match v {
        serde_json::Value::Number(n) => Some(vec![n.as_f64()?]),
        serde_json::Value::Array(a) => a
            .iter()
            .map(flatten)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat()),
        _ => None,
    }
}

/// Checks a test vector's integer outputs against its expectations.
pub fn check_vector(
    t: &TestVector,
    got: &[Tensor<f64>],
    expected: Option<&[Tensor<f64>]>,
) -> std::result::Result<(), String> {
    if let Some(exp) = expected {
        for (g, e) in got.iter().zip(exp) {
            let err = g
                .data
                .iter()
                .zip(&e.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            if err > t.tolerance {
                return Err(format!(
                    "max abs error {err:.4e} exceeds the tolerance {:.4e}",
                    t.tolerance
                ));
            }
        }
    }
    if let Some(label) = t.label {
        let got_label = got.first().map(|o| argmax_rows(o)[0] as i64);
        if got_label != Some(label) {
            return Err(format!(
                "expected class {label}, got {}",
                got_label.map_or("none".into(), |l| l.to_string())
            ));
        }
    }
    Ok(())
}

/// Outcome of one test vector: the figures of a passing run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VectorRun {
    pub outputs: Vec<Vec<f64>>,
    pub prove_seconds: f64,
    pub verify_seconds: f64,
    pub proof_bytes: usize,
}

/// A test vector's quantized inputs and its outputs.
pub type Executed = (Vec<Vec<i64>>, Vec<Tensor<f64>>);

/// Runs one test vector through the executor and checks its expectations; returns the
/// quantized inputs and the outputs.
pub fn execute_vector(
    dir: &Path,
    model: &Model,
    program: &Program,
    t: &TestVector,
) -> std::result::Result<Executed, String> {
    let text = read_text(dir, &t.input).map_err(|e| e.to_string())?;
    let inputs = model.parse_inputs(&text).map_err(|e| e.to_string())?;
    let expected = read_expected(dir, t, model).map_err(|e| e.to_string())?;
    let q = program
        .quantize_inputs(&inputs)
        .map_err(|e| e.to_string())?;
    let out = program.execute(&q).map_err(|e| e.to_string())?;
    let got = program.dequantize_outputs(&out);
    check_vector(t, &got, expected.as_deref())?;
    Ok((q, got))
}

/// Runs one test vector: executor against its expectations, then a proof, verified by
/// `verifier` (keys derived from the program alone). Errors are the failure's description.
pub fn run_test_vector(
    dir: &Path,
    model: &Model,
    keys: &ModelKeys,
    verifier: &ModelKeys,
    t: &TestVector,
    nonce_seed: u64,
) -> std::result::Result<VectorRun, String> {
    let (q, got) = execute_vector(dir, model, keys.program(), t)?;
    let mut nonce = [0u8; 32];
    nonce[..8].copy_from_slice(&nonce_seed.to_le_bytes());
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    let start = std::time::Instant::now();
    let proof = keys
        .prove_inputs(&q, nonce, &mut rng)
        .map_err(|e| e.to_string())?;
    let prove_seconds = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    verifier
        .verify(&proof)
        .map_err(|e| format!("its proof did not verify: {e}"))?;
    Ok(VectorRun {
        outputs: got.into_iter().map(|t| t.data).collect(),
        prove_seconds,
        verify_seconds: start.elapsed().as_secs_f64(),
        proof_bytes: proof.proof_len(),
    })
}

/// Builds the package of the project in `dir`: guards and lowers the model, checks the schema,
/// calibrates, derives the keys (of segments, over the memory limit), runs every test vector through the
/// executor and the prover (unless `run_vectors` is false: `lightchain test` runs them itself),
/// and returns the package bytes.
pub fn build(
    dir: &Path,
    params: &ParamsCache,
    run_vectors: bool,
    progress: &mut dyn FnMut(Stage),
) -> Result<(Vec<u8>, Package)> {
    progress(Stage::Check);
    let manifest_text = read_text(dir, Path::new(MANIFEST))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|issues| PackageError::Manifest {
        path: dir.join(MANIFEST),
        issues,
    })?;
    let onnx = model_bytes(dir, &manifest)?;
    let guarded = guard_bytes(onnx.clone(), &GuardLimits::default())?;
    let model = check_and_lower(&manifest, guarded)?;

    progress(Stage::Calibrate);
    let mut tests = Vec::new();
    for t in &manifest.tests {
        let text = read_text(dir, &t.input)?;
        let inputs = model
            .parse_inputs(&text)
            .map_err(|e| PackageError::TestVector {
                name: t.name.clone(),
                reason: e.to_string(),
            })?;
        tests.push(inputs);
        // Checked now, so that a broken expectations file fails before any proving.
        read_expected(dir, t, &model)?;
    }
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&blake3::hash(&onnx).as_bytes()[..8]);
    let seed = u64::from_le_bytes(seed);
    let samples = calibration_samples(&manifest, &model, &tests, seed)?;
    let calibration = model.calibrate(&samples)?;
    let reference = model.reference()?;
    let check_on: &[Inputs] = if tests.is_empty() { &samples } else { &tests };
    let floats: Vec<Vec<Tensor<f64>>> = check_on
        .iter()
        .map(|i| reference.run(&i.tensors))
        .collect::<std::result::Result<_, _>>()?;
    let (program, quant, mut accuracy) =
        choose_quantization(&manifest, &model, &calibration, check_on, &floats)?;
    accuracy.samples = samples.len();
    let program = Arc::new(program);
    let visibility = manifest.proving.input_visibility;

    // A circuit over the memory limit is proven in segments that fit; a program that cannot be
    // cut to fit is refused. Attested packages are executed, never proven: no keys.
    let k = lightchain_aivm::circuit::AivmCircuit::new(program.clone(), visibility).min_k();
    let limit = manifest.limits.memory_mb;
    if manifest.proving.mode == ProvingMode::Attested {
        if run_vectors {
            for (i, t) in manifest.tests.iter().enumerate() {
                progress(Stage::TestVector {
                    index: i,
                    total: manifest.tests.len(),
                });
                execute_vector(dir, &model, &program, t).map_err(|reason| {
                    PackageError::TestVector {
                        name: t.name.clone(),
                        reason,
                    }
                })?;
            }
        }
        let facts = Facts {
            k,
            vk_digest: String::new(),
            estimate: memory_estimate_mb(k),
        };
        return write_package(
            (&manifest, manifest_text, onnx),
            &program,
            (calibration, quant, accuracy),
            facts,
            progress,
        );
    }
    progress(Stage::Keygen { k });
    let keys = ModelKeys::derive(program.clone(), visibility, limit, params, true).map_err(
        |e| match e {
            AivmError::Segment(reason) => PackageError::MemoryLimit {
                estimate_mb: memory_estimate_mb(k),
                limit_mb: limit,
                k,
                reason,
            },
            e => e.into(),
        },
    )?;
    let estimate = memory_estimate_mb(keys.k());

    if run_vectors {
        let verifier = ModelKeys::derive(
            Arc::new(Program::decode(&program.encode())?),
            visibility,
            limit,
            params,
            false,
        )?;
        for (i, t) in manifest.tests.iter().enumerate() {
            progress(Stage::TestVector {
                index: i,
                total: manifest.tests.len(),
            });
            run_test_vector(dir, &model, &keys, &verifier, t, i as u64).map_err(|reason| {
                PackageError::TestVector {
                    name: t.name.clone(),
                    reason,
                }
            })?;
        }
    }

    let facts = Facts {
        k: keys.k(),
        vk_digest: hex(&keys.vk_digest()),
        estimate,
    };
    write_package(
        (&manifest, manifest_text, onnx),
        &program,
        (calibration, quant, accuracy),
        facts,
        progress,
    )
}

/// What a package records of its circuit.
struct Facts {
    k: u32,
    vk_digest: String,
    estimate: u64,
}

/// Writes the package's entries and loads the result back.
fn write_package(
    (manifest, manifest_text, onnx): (&Manifest, String, Vec<u8>),
    program: &Program,
    (calibration, quant, accuracy): (Calibration, QuantConfig, AccuracyReport),
    facts: Facts,
    progress: &mut dyn FnMut(Stage),
) -> Result<(Vec<u8>, Package)> {
    progress(Stage::Write);
    let visibility = manifest.proving.input_visibility;
    let gas = gas::meter(program, visibility);
    let compile = CompileRecord { quant, calibration };
    let info = PackageInfo {
        format: container::FORMAT_VERSION,
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        model_id: program.id().to_string(),
        k: facts.k,
        input_visibility: visibility,
        vk_digest: facts.vk_digest,
        memory_estimate_mb: facts.estimate,
        lightchain: env!("CARGO_PKG_VERSION").to_string(),
        mode: manifest.proving.mode,
    };
    let schema = Schema {
        inputs: manifest.inputs.clone(),
        outputs: manifest.outputs.clone(),
    };
    let json = |v: &dyn erased::Json| v.to_json();
    let entries = vec![
        ("accuracy.json".to_string(), json(&accuracy)),
        ("compile.json".to_string(), json(&compile)),
        ("gas.json".to_string(), json(&gas)),
        (
            "manifest.toml".to_string(),
            manifest_text.clone().into_bytes(),
        ),
        ("model.onnx".to_string(), onnx),
        ("package.json".to_string(), json(&info)),
        ("program.aivm".to_string(), program.encode()),
        ("schema.json".to_string(), json(&schema)),
    ];
    let bytes = container::write(&entries);
    let package = load(&bytes)?;
    Ok((bytes, package))
}

/// How a compiled program's outputs compare with the float model's on the check inputs:
/// the worst relative error, whether every argmax agrees, and each vector's figures.
fn accuracy_on(
    manifest: &Manifest,
    program: &Program,
    check_on: &[Inputs],
    floats: &[Vec<Tensor<f64>>],
    names: &[String],
) -> std::result::Result<(f64, bool, Vec<VectorAccuracy>), String> {
    let mut worst = 0.0f64;
    let mut agree = true;
    let mut vectors = Vec::new();
    for (i, (inp, f)) in check_on.iter().zip(floats).enumerate() {
        let q = program.run_float(inp).map_err(|e| e.to_string())?;
        let acc = compare(names, f, &q);
        worst = worst.max(acc.max_rel_error());
        agree &= acc.argmax_agrees();
        let name = manifest
            .tests
            .get(i)
            .map_or(format!("sample-{}", i + 1), |t| t.name.clone());
        vectors.push(VectorAccuracy {
            name,
            max_abs_error: acc
                .outputs
                .iter()
                .map(|o| o.max_abs_error)
                .fold(0.0, f64::max),
            max_rel_error: acc.max_rel_error(),
            argmax_agrees: acc.argmax_agrees(),
        });
    }
    Ok((worst, agree, vectors))
}

/// Compiles the model with each candidate quantization (the manifest's fixed scale, or 16,
/// 20 and 24 activation bits) and takes the first that meets the accuracy target with every
/// argmax agreeing.
fn choose_quantization(
    manifest: &Manifest,
    model: &Model,
    calibration: &Calibration,
    check_on: &[Inputs],
    floats: &[Vec<Tensor<f64>>],
) -> Result<(Program, QuantConfig, AccuracyReport)> {
    let names: Vec<String> = model.outputs().iter().map(|o| o.name.clone()).collect();
    let candidates: Vec<QuantConfig> = match manifest.proving.scale {
        ScaleSpec::Fixed(s) => vec![QuantConfig::fixed(s)],
        ScaleSpec::Auto => [16, 20, 24]
            .iter()
            .map(|&b| QuantConfig {
                act_bits: b,
                ..QuantConfig::default()
            })
            .collect(),
    };
    let state = manifest.state.as_ref().map(|s| s.spec());
    let candidates = candidates.into_iter().map(|c| QuantConfig {
        state: state.clone(),
        ..c
    });
    let target = manifest.proving.accuracy_target;
    let mut last_err = String::new();
    for cfg in candidates {
        let program = match model.compile_with(calibration, &cfg) {
            Ok(p) => p,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let (worst, agree, vectors) =
            match accuracy_on(manifest, &program, check_on, floats, &names) {
                Ok(r) => r,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
        if worst <= target && agree {
            let report = AccuracyReport {
                act_bits: cfg.act_bits,
                target,
                samples: 0,
                max_rel_error: worst,
                vectors,
            };
            return Ok((program, cfg, report));
        }
        last_err = format!(
            "max relative error {:.3}% (target {:.3}%){}",
            worst * 100.0,
            target * 100.0,
            if agree {
                ""
            } else {
                ", and an argmax differs from the float model"
            }
        );
    }
    Err(PackageError::Accuracy(last_err))
}

mod erased {
    /// Pretty JSON with a trailing newline, for any serialisable entry.
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            let mut v = serde_json::to_vec_pretty(self).expect("serialisable");
            v.push(b'\n');
            v
        }
    }
}

/// Reads a package file.
pub fn load_file(path: &Path) -> Result<Package> {
    let bytes = std::fs::read(path)
        .map_err(|e| PackageError::io(format!("cannot read {}", path.display()), e))?;
    load(&bytes)
}

/// Loads a package: container checks, then every entry parsed, the program decoded and checked
/// against its recorded id, and rebuilt from the ONNX model to prove they match.
pub fn load(bytes: &[u8]) -> Result<Package> {
    let list = container::read(bytes)?;
    let entries = list
        .iter()
        .map(|(n, d)| (n.clone(), d.len(), hex(blake3::hash(d).as_bytes())))
        .collect();
    let map: BTreeMap<String, Vec<u8>> = list.into_iter().collect();
    let get = |name: &str| {
        map.get(name)
            .ok_or_else(|| PackageError::Corrupt(format!("missing entry \"{name}\"")))
    };
    fn parse<T: serde::de::DeserializeOwned>(name: &str, b: &[u8]) -> Result<T> {
        serde_json::from_slice(b)
            .map_err(|e| PackageError::Corrupt(format!("entry \"{name}\": {e}")))
    }
    let info: PackageInfo = parse("package.json", get("package.json")?)?;
    let manifest_text = String::from_utf8(get("manifest.toml")?.clone())
        .map_err(|_| PackageError::Corrupt("the manifest is not UTF-8".into()))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|issues| {
        PackageError::Corrupt(format!(
            "its manifest is invalid: {}",
            issues
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let program = Program::decode(get("program.aivm")?)
        .map_err(|e| PackageError::Corrupt(format!("its program: {e}")))?;
    if program.id().to_string() != info.model_id {
        return Err(PackageError::Corrupt(format!(
            "the program's id {} does not match the recorded model id {}",
            program.id(),
            info.model_id
        )));
    }
    if info.mode != manifest.proving.mode {
        return Err(PackageError::Corrupt(format!(
            "package.json says {} but the manifest says {}",
            info.mode.name(),
            manifest.proving.mode.name()
        )));
    }
    let compile: CompileRecord = parse("compile.json", get("compile.json")?)?;
    if compile.quant.state != manifest.state.as_ref().map(|s| s.spec()) {
        return Err(PackageError::Corrupt(
            "compile.json and the manifest disagree on the model's [state]".into(),
        ));
    }
    let gas: GasReport = parse("gas.json", get("gas.json")?)?;
    let accuracy: AccuracyReport = parse("accuracy.json", get("accuracy.json")?)?;
    let _: Schema = parse("schema.json", get("schema.json")?)?;
    let guarded = guard_bytes(get("model.onnx")?.clone(), &GuardLimits::default())
        .map_err(|e| PackageError::Corrupt(format!("its ONNX model: {e}")))?;
    let model = check_and_lower(&manifest, guarded)
        .map_err(|e| PackageError::Corrupt(format!("its ONNX model: {e}")))?;
    let rebuilt = model
        .compile_with(&compile.calibration, &compile.quant)
        .map_err(|e| PackageError::Corrupt(format!("its ONNX model: {e}")))?;
    if rebuilt.id() != program.id() {
        return Err(PackageError::Corrupt(format!(
            "the program does not match the ONNX model (the model compiles to {}, the package holds {})",
            rebuilt.id(),
            program.id()
        )));
    }
    Ok(Package {
        info,
        manifest,
        manifest_text,
        program: Arc::new(program),
        model,
        compile,
        gas,
        accuracy,
        entries,
    })
}

impl Package {
    /// Proving and verifying keys of the package (verifying only unless `proving`).
    /// Over the manifest's memory limit, the keys of its segments. Attested packages have none.
    pub fn keys(&self, params: &ParamsCache, proving: bool) -> Result<ModelKeys> {
        if self.info.mode == ProvingMode::Attested {
            return Err(PackageError::Attested(self.info.name.clone()));
        }
        Ok(ModelKeys::derive(
            self.program.clone(),
            self.info.input_visibility,
            self.manifest.limits.memory_mb,
            params,
            proving,
        )?)
    }
}
