//! The `lightchain.toml` manifest: the model, its named inputs and outputs, proving options,
//! test vectors and resource limits. Unknown keys and bad values are errors with their line;
//! all problems are reported at once.

use std::path::{Path, PathBuf};

use lightchain_aivm::circuit::Visibility;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{ManifestIssue, PackageError, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "lightchain.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    model: Spanned<RawModel>,
    #[serde(default)]
    stages: Vec<Spanned<RawStage>>,
    #[serde(default)]
    inputs: Vec<Spanned<RawTensor>>,
    #[serde(default)]
    outputs: Vec<Spanned<RawTensor>>,
    #[serde(default)]
    proving: Option<Spanned<RawProving>>,
    #[serde(default)]
    tests: Vec<Spanned<RawTest>>,
    #[serde(default)]
    limits: Option<Spanned<RawLimits>>,
    #[serde(default)]
    state: Option<Spanned<RawState>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    input: Spanned<String>,
    output: Spanned<String>,
    #[serde(default)]
    initial: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default)]
    onnx: Option<Spanned<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    royalty_bps: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    onnx: Spanned<String>,
    #[serde(default)]
    inputs: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTensor {
    name: Spanned<String>,
    dtype: Spanned<String>,
    shape: Spanned<Vec<i64>>,
    #[serde(default)]
    range: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    labels: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProving {
    #[serde(default)]
    input_visibility: Option<Spanned<String>>,
    #[serde(default)]
    output_visibility: Option<Spanned<String>>,
    #[serde(default)]
    scale: Option<Spanned<toml::Value>>,
    #[serde(default)]
    accuracy_target: Option<Spanned<f64>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    #[serde(default)]
    name: Option<String>,
    input: Spanned<String>,
    #[serde(default)]
    expected: Option<Spanned<String>>,
    #[serde(default)]
    label: Option<Spanned<i64>>,
    #[serde(default)]
    tolerance: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    memory_mb: Option<Spanned<i64>>,
}

/// Element type of a declared tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DTypeSpec {
    F32,
    I64,
}

/// A declared input or output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DTypeSpec,
    pub shape: Vec<usize>,
    /// Inclusive value range of inputs (used for calibration), or of outputs (documentation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub range: Option<[f64; 2]>,
    /// Class names of a class output (one per element of the last axis).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub labels: Option<Vec<String>>,
    /// Manifest line, for later errors.
    #[serde(skip)]
    pub line: usize,
}

/// How the package is quantized: calibrated per tensor, or one fixed scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleSpec {
    Auto,
    Fixed(u32),
}

/// How a package's tasks are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvingMode {
    /// The executor proves each task; validators verify the proof.
    #[default]
    Proven,
    /// For models beyond proving: every validator executes the task and signs its outputs;
    /// the result stands when more than 2/3 of the stake agree. No proof.
    Attested,
}

impl ProvingMode {
    pub fn is_proven(&self) -> bool {
        *self == ProvingMode::Proven
    }

    pub fn name(self) -> &'static str {
        match self {
            ProvingMode::Proven => "proven",
            ProvingMode::Attested => "attested",
        }
    }
}

/// Proving options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proving {
    /// Proven (the default) or attested.
    #[serde(default, skip_serializing_if = "ProvingMode::is_proven")]
    pub mode: ProvingMode,
    pub input_visibility: Visibility,
    pub output_visibility: Visibility,
    pub scale: ScaleSpec,
    /// Largest accepted relative error of the integer outputs on the test vectors.
    pub accuracy_target: f64,
}

/// A test vector: an input file and what the output must be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestVector {
    pub name: String,
    pub input: PathBuf,
    /// An outputs file (`{"outputs": {"name": [...]}}`) compared within `tolerance`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<PathBuf>,
    /// The expected argmax of the first output.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<i64>,
    /// Largest accepted absolute difference per element.
    pub tolerance: f64,
    #[serde(skip)]
    pub line: usize,
}

/// One stage of a pipeline: its ONNX model and where its inputs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    pub name: String,
    pub onnx: PathBuf,
    /// (this stage's input, `STAGE.OUTPUT` of an earlier stage); other inputs are the
    /// pipeline's.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inputs: Vec<(String, String)>,
}

/// The model's state across tasks (`[state]`): the model input it is read from, the output
/// the next state is written to, and every element's value before the first task. The input
/// is declared in `[[inputs]]` (its range calibrates the state) and the output in
/// `[[outputs]]`; a task's input gives only the other inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateDecl {
    pub input: String,
    pub output: String,
    pub initial: f64,
}

impl StateDecl {
    /// The quantizer's view of it.
    pub fn spec(&self) -> lightchain_aivm::state::StateSpec {
        lightchain_aivm::state::StateSpec {
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }
}

/// Resource limits of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_mb: u64,
}

/// A checked manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// The model of a single-model package (`[model] onnx`); `None` for a pipeline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub onnx: Option<PathBuf>,
    /// The stages of a pipeline (`[[stages]]`), in execution order; empty for a single model.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub stages: Vec<StageSpec>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    /// The owner's share of every task's fee, in basis points (0 to [`MAX_ROYALTY_BPS`]).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub royalty_bps: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub proving: Proving,
    pub tests: Vec<TestVector>,
    pub limits: Limits,
    /// The state kept across tasks, when the model has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<StateDecl>,
}

impl Default for Proving {
    fn default() -> Self {
        Proving {
            mode: ProvingMode::Proven,
            input_visibility: Visibility::Public,
            output_visibility: Visibility::Public,
            scale: ScaleSpec::Auto,
            accuracy_target: 0.01,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_mb: 512 }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

struct Issues<'a> {
    text: &'a str,
    list: Vec<ManifestIssue>,
}

impl Issues<'_> {
    fn at<T>(&mut self, s: &Spanned<T>, message: impl Into<String>) {
        let line = line_of(self.text, s.span().start);
        self.list.push(ManifestIssue {
            line,
            message: message.into(),
        });
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

fn valid_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()))
}

impl Manifest {
    /// Reads and checks `DIR/lightchain.toml`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PackageError::io(format!("cannot read {}", path.display()), e))?;
        Manifest::parse(&text).map_err(|issues| PackageError::Manifest { path, issues })
    }

    /// Parses and checks manifest text; returns every problem found.
    pub fn parse(text: &str) -> std::result::Result<Manifest, Vec<ManifestIssue>> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            vec![ManifestIssue {
                line,
                message: e.message().trim().to_string(),
            }]
        })?;
        let mut is = Issues {
            text,
            list: Vec::new(),
        };
        let m = raw.model.get_ref();
        if !valid_name(m.name.get_ref()) {
            is.at(&m.name, "model.name must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter");
        }
        if !valid_version(m.version.get_ref()) {
            is.at(&m.version, "model.version must look like 1.2.3");
        }
        let onnx = m
            .onnx
            .as_ref()
            .map(|o| project_path(o, "model.onnx", &mut is));
        let stages = stages(&raw.stages, &mut is);
        match (&m.onnx, raw.stages.is_empty()) {
            (None, true) => is.at(
                &raw.model,
                "give the model as [model] onnx = \"model.onnx\", or a pipeline as [[stages]]",
            ),
            (Some(o), false) => is.at(
                o,
                "a pipeline's models are its [[stages]]: remove [model] onnx",
            ),
            _ => {}
        }
        let mut royalty_bps = 0;
        if let Some(r) = &m.royalty_bps {
            match u64::try_from(*r.get_ref()) {
                Ok(v) if v <= MAX_ROYALTY_BPS => royalty_bps = v,
                _ => is.at(
                    r,
                    format!(
                        "royalty_bps must be 0 to {MAX_ROYALTY_BPS} (basis points of a task's fee)"
                    ),
                ),
            }
        }
        let inputs = tensor_specs(&raw.inputs, "input", &mut is);
        let outputs = tensor_specs(&raw.outputs, "output", &mut is);
        if raw.inputs.is_empty() {
            is.list.push(ManifestIssue {
                line: 0,
                message: "declare at least one [[inputs]] entry".into(),
            });
        }
        if raw.outputs.is_empty() {
            is.list.push(ManifestIssue {
                line: 0,
                message: "declare at least one [[outputs]] entry".into(),
            });
        }
        let proving = proving(raw.proving.as_ref(), &mut is);
        let tests = test_vectors(&raw.tests, &mut is);
        let mut limits = Limits::default();
        if let Some(l) = &raw.limits
            && let Some(m) = &l.get_ref().memory_mb
        {
            if !(16..=1 << 20).contains(m.get_ref()) {
                is.at(m, "memory_mb must be between 16 and 1048576");
            } else {
                limits.memory_mb = *m.get_ref() as u64;
            }
        }
        let state = raw
            .state
            .as_ref()
            .map(|s| state(s, &inputs, &outputs, &proving, &mut is));
        if !is.list.is_empty() {
            return Err(is.list);
        }
        Ok(Manifest {
            name: m.name.get_ref().clone(),
            version: m.version.get_ref().clone(),
            onnx,
            stages,
            description: m.description.clone(),
            royalty_bps,
            inputs,
            outputs,
            proving,
            tests,
            limits,
            state,
        })
    }
}

/// The `[state]` section: its input and output declared, f32, of one shape; the initial value
/// inside the input's range; proven mode (attested validators would each need the state).
fn state(
    s: &Spanned<RawState>,
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
    proving: &Proving,
    is: &mut Issues,
) -> StateDecl {
    let r = s.get_ref();
    let input = inputs.iter().find(|t| &t.name == r.input.get_ref());
    let output = outputs.iter().find(|t| &t.name == r.output.get_ref());
    if input.is_none() {
        is.at(
            &r.input,
            format!(
                "state input \"{}\" is not declared in [[inputs]]",
                r.input.get_ref()
            ),
        );
    }
    if output.is_none() {
        is.at(
            &r.output,
            format!(
                "state output \"{}\" is not declared in [[outputs]]",
                r.output.get_ref()
            ),
        );
    }
    if let (Some(i), Some(o)) = (input, output)
        && (i.dtype != DTypeSpec::F32 || o.dtype != DTypeSpec::F32 || i.shape != o.shape)
    {
        is.at(
            s,
            format!(
                "the state input \"{}\" and output \"{}\" must both be f32 of one shape",
                i.name, o.name
            ),
        );
    }
    if let Some(i) = input
        && i.range.is_none()
    {
        is.at(
            &r.input,
            format!(
                "give the state input \"{}\" a range in [[inputs]]: it calibrates the state",
                i.name
            ),
        );
    }
    let initial = r.initial.as_ref().map_or(0.0, |v| *v.get_ref());
    if let (Some(v), Some([lo, hi])) = (&r.initial, input.and_then(|i| i.range))
        && !(lo..=hi).contains(v.get_ref())
    {
        is.at(
            v,
            format!("state initial {initial} is outside the state's range [{lo}, {hi}]"),
        );
    }
    if proving.mode == ProvingMode::Attested {
        is.at(
            s,
            "a model with [state] must be proven: remove mode = \"attested\"",
        );
    }
    StateDecl {
        input: r.input.get_ref().clone(),
        output: r.output.get_ref().clone(),
        initial,
    }
}

/// A path that must lie inside the project folder (`what` names the setting).
fn project_path(p: &Spanned<String>, what: &str, is: &mut Issues) -> PathBuf {
    let path = PathBuf::from(p.get_ref());
    if path.as_os_str().is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        is.at(
            p,
            format!("{what} must be a path inside the project folder"),
        );
    }
    path
}

/// The highest royalty: half of a task's fee (the executor keeps the rest).
pub const MAX_ROYALTY_BPS: u64 = 5_000;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 16;

/// The `[[stages]]` entries: names unique and valid, paths inside the project, every bound
/// input reading `STAGE.OUTPUT` of an earlier stage.
fn stages(raw: &[Spanned<RawStage>], is: &mut Issues) -> Vec<StageSpec> {
    if raw.len() > MAX_STAGES {
        is.at(
            &raw[MAX_STAGES],
            format!("a pipeline has at most {MAX_STAGES} stages"),
        );
    }
    let mut out: Vec<StageSpec> = Vec::new();
    for s in raw {
        let r = s.get_ref();
        let name = r.name.get_ref();
        if !valid_name(name) {
            is.at(&r.name, "a stage name must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter");
        }
        if out.iter().any(|o| o.name == *name) {
            is.at(&r.name, format!("stage \"{name}\" is declared twice"));
        }
        let onnx = project_path(&r.onnx, "a stage's onnx", is);
        let mut inputs = Vec::new();
        if let Some(b) = &r.inputs {
            for (input, src) in b.get_ref() {
                let earlier = src
                    .split_once('.')
                    .is_some_and(|(st, o)| !o.is_empty() && out.iter().any(|e| e.name == st));
                if !earlier {
                    is.at(
                        b,
                        format!(
                            "stage \"{name}\": input \"{input}\" reads \"{src}\"; it must name STAGE.OUTPUT of an earlier stage"
                        ),
                    );
                }
                inputs.push((input.clone(), src.clone()));
            }
        }
        out.push(StageSpec {
            name: name.clone(),
            onnx,
            inputs,
        });
    }
    out
}

/// The `[[inputs]]` or `[[outputs]]` entries (`what` names which), each checked.
fn tensor_specs(list: &[Spanned<RawTensor>], what: &str, is: &mut Issues) -> Vec<TensorSpec> {
    let mut out = Vec::new();
    for t in list {
        let r = t.get_ref();
        let line = line_of(is.text, t.span().start);
        if r.name.get_ref().is_empty() {
            is.at(&r.name, format!("{what} name must not be empty"));
        }
        if out.iter().any(|o: &TensorSpec| o.name == *r.name.get_ref()) {
            is.at(
                &r.name,
                format!("{what} \"{}\" is declared twice", r.name.get_ref()),
            );
        }
        let dtype = match r.dtype.get_ref().as_str() {
            "f32" | "float32" => DTypeSpec::F32,
            "i64" | "int64" => DTypeSpec::I64,
            other => {
                is.at(
                    &r.dtype,
                    format!("dtype \"{other}\" is not supported (use \"f32\" or \"i64\")"),
                );
                DTypeSpec::F32
            }
        };
        let shape: Vec<usize> = r
            .shape
            .get_ref()
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        if r.shape.get_ref().is_empty()
            || r.shape
                .get_ref()
                .iter()
                .any(|&d| !(1..=1 << 20).contains(&d))
        {
            is.at(
                &r.shape,
                format!(
                    "{what} \"{}\": shape dims must be between 1 and 1048576",
                    r.name.get_ref()
                ),
            );
        }
        let range = match &r.range {
            None => None,
            Some(rg) => match rg.get_ref().as_slice() {
                [lo, hi] if lo.is_finite() && hi.is_finite() && lo < hi => Some([*lo, *hi]),
                _ => {
                    is.at(rg, "range must be [low, high] with finite low < high");
                    None
                }
            },
        };
        if let Some(l) = &r.labels
            && shape.last().is_some_and(|&n| n != l.get_ref().len())
        {
            is.at(
                l,
                format!(
                    "{} labels for a last axis of {}",
                    l.get_ref().len(),
                    shape.last().unwrap_or(&0)
                ),
            );
        }
        out.push(TensorSpec {
            name: r.name.get_ref().clone(),
            dtype,
            shape,
            range,
            labels: r.labels.as_ref().map(|l| l.get_ref().clone()),
            line,
        });
    }
    out
}

/// The `[proving]` table, each setting checked (defaults where absent).
fn proving(raw: Option<&Spanned<RawProving>>, is: &mut Issues) -> Proving {
    let mut proving = Proving::default();
    if let Some(p) = raw {
        let p = p.get_ref();
        if let Some(v) = &p.input_visibility {
            match v.get_ref().as_str() {
                "public" => proving.input_visibility = Visibility::Public,
                "hashed" => proving.input_visibility = Visibility::Hashed,
                other => is.at(
                    v,
                    format!("input_visibility \"{other}\" must be \"public\" or \"hashed\""),
                ),
            }
        }
        if let Some(m) = &p.mode {
            match m.get_ref().as_str() {
                "proven" => proving.mode = ProvingMode::Proven,
                "attested" => proving.mode = ProvingMode::Attested,
                other => is.at(
                    m,
                    format!("mode \"{other}\" must be \"proven\" or \"attested\""),
                ),
            }
        }
        if let Some(v) = &p.output_visibility
            && v.get_ref() != "public"
        {
            is.at(v, format!("output_visibility \"{}\" is not supported: outputs are public inputs of the proof", v.get_ref()));
        }
        if let Some(s) = &p.scale {
            match s.get_ref() {
                toml::Value::String(a) if a == "auto" => {}
                toml::Value::Integer(n) if (0..=24).contains(n) => {
                    proving.scale = ScaleSpec::Fixed(*n as u32)
                }
                _ => is.at(s, "scale must be \"auto\" or an integer from 0 to 24"),
            }
        }
        if let Some(a) = &p.accuracy_target {
            if !(a.get_ref().is_finite() && *a.get_ref() > 0.0 && *a.get_ref() <= 1.0) {
                is.at(
                    a,
                    "accuracy_target must be a fraction in (0, 1], e.g. 0.01 for 1%",
                );
            } else {
                proving.accuracy_target = *a.get_ref();
            }
        }
    }
    proving
}

/// The `[[tests]]` entries, each checked.
fn test_vectors(raw: &[Spanned<RawTest>], is: &mut Issues) -> Vec<TestVector> {
    let mut tests = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let r = t.get_ref();
        let line = line_of(is.text, t.span().start);
        if r.expected.is_none() && r.label.is_none() {
            is.at(
                t,
                "a test vector needs `expected` (an outputs file) or `label` (the expected class)",
            );
        }
        let tolerance = match &r.tolerance {
            Some(tl) if !(tl.get_ref().is_finite() && *tl.get_ref() >= 0.0) => {
                is.at(tl, "tolerance must be a non-negative number");
                0.0
            }
            Some(tl) => *tl.get_ref(),
            None => 0.05,
        };
        tests.push(TestVector {
            name: r.name.clone().unwrap_or_else(|| format!("test-{}", i + 1)),
            input: PathBuf::from(r.input.get_ref()),
            expected: r.expected.as_ref().map(|e| PathBuf::from(e.get_ref())),
            label: r.label.as_ref().map(|l| *l.get_ref()),
            tolerance,
            line,
        });
    }
    tests
}
