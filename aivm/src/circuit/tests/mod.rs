//! MockProver tests of the circuit. Every fixture's witness satisfies it ([`fixtures`]); each
//! constraint is shown necessary by a forgery that only it catches ([`forgeries`]); every
//! fixture's layout leaves no cell unconstrained and no gate reading another gadget's rows
//! ([`analysis`]); and random programs at every bit width the AIVM allows prove exactly the
//! executor's outputs ([`widths`]).

mod analysis;
mod forgeries;
mod widths;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem};

use super::config::Config;
use super::ctx::{Ctx, fp};
use super::layout::{self, Laid};
use super::testing::{self, Pos, Target, Trace};
use super::*;
use crate::ir::DType;
use crate::program::{IoSpec, Op, PNode, TensorMeta};
use crate::{GuardLimits, ImportOptions, Model, QuantConfig};

/// The aivm package folder, read at run time (cargo sets it when it runs tests) so that a test
/// binary reused from another checkout reads this checkout's files.
pub(crate) fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf())
}

/// A fixture's program, compiled with its own input as calibration, and that input.
pub(crate) fn fixture(path: &str) -> (Arc<Program>, Vec<Vec<i64>>) {
    let base = manifest_dir().join("../fixtures").join(path);
    let m = ["model.onnx", "network.onnx"]
        .iter()
        .map(|f| base.join(f))
        .find(|p| p.exists())
        .expect("a model file");
    let model = Model::load(&m, &ImportOptions::default(), &GuardLimits::default()).unwrap();
    let inputs = model
        .parse_inputs(&std::fs::read_to_string(base.join("input.json")).unwrap())
        .unwrap();
    let p = model
        .compile(std::slice::from_ref(&inputs), &QuantConfig::default())
        .unwrap();
    let q = p.quantize_inputs(&inputs).unwrap();
    (Arc::new(p), q)
}

/// The fixtures the MockProver tests run (every op family among them).
pub(crate) const FIXTURES: [&str; 14] = [
    "ezkl/1l_mlp",
    "ezkl/1l_relu",
    "ezkl/1l_sigmoid",
    "ezkl/1l_softmax",
    "ezkl/1l_conv",
    "ezkl/layernorm",
    "op_pool",
    "op_reduce",
    "op_activations",
    "op_elementwise",
    "sentiment_embed",
    "op_shape",
    "breast_cancer_tabular",
    "digits_mlp",
];

/// A small program written by hand: tensors at scale 0, validated when built.
pub(crate) struct P(Program);

impl Default for P {
    fn default() -> Self {
        P(Program {
            tensors: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            nodes: Vec::new(),
            state: false,
        })
    }
}

impl P {
    fn tensor(&mut self, shape: &[usize], bits: u32, dtype: DType) -> usize {
        self.0.tensors.push(TensorMeta {
            shape: shape.to_vec(),
            dtype,
            scale: 0,
            bits,
        });
        self.0.tensors.len() - 1
    }

    pub fn input(&mut self, shape: &[usize], bits: u32) -> usize {
        self.input_typed(shape, bits, DType::F32)
    }

    pub fn input_typed(&mut self, shape: &[usize], bits: u32, dtype: DType) -> usize {
        let t = self.tensor(shape, bits, dtype);
        let name = format!("x{}", self.0.inputs.len());
        self.0.inputs.push(IoSpec { name, tensor: t });
        t
    }

    pub fn node(&mut self, op: Op, inputs: &[usize], shape: &[usize], bits: u32) -> usize {
        let dtype = if matches!(op, Op::ArgMax(_) | Op::ArgMaxLast(_)) {
            DType::I64
        } else {
            DType::F32
        };
        let t = self.tensor(shape, bits, dtype);
        let name = format!("n{}", self.0.nodes.len());
        self.0.nodes.push(PNode {
            onnx_op: op.kind().into(),
            name,
            op,
            inputs: inputs.to_vec(),
            output: t,
        });
        t
    }

    pub fn output(&mut self, t: usize) -> &mut Self {
        let name = format!("y{}", self.0.outputs.len());
        self.0.outputs.push(IoSpec { name, tensor: t });
        self
    }

    /// The program, which must validate.
    pub fn build(&mut self) -> Arc<Program> {
        let p = std::mem::take(self).0;
        p.validate().unwrap_or_else(|e| panic!("test program: {e}"));
        Arc::new(p)
    }

    /// The program without validation (for programs `validate` must refuse).
    pub fn build_unchecked(&mut self) -> Program {
        std::mem::take(self).0
    }
}

/// A configuration outside any circuit, for the columns.
pub(crate) fn config() -> Config {
    let mut cs = ConstraintSystem::default();
    Config::configure(&mut cs)
}

/// Lays a circuit out without a prover (with the thread's test hooks) and returns what it laid.
fn dry_layout(c: &AivmCircuit) -> Laid {
    let cfg = config();
    let mut ctx = Ctx::new(&cfg, None, c.limb_bits);
    let inputs = c.witness.as_ref().map(|w| w.inputs.as_slice());
    layout::layout(&mut ctx, &c.program, &c.tables, &c.hash_groups(), inputs).expect("layout")
}

/// The salt of the test witnesses.
const SALT: u64 = 12345;

/// One program with one witness, laid out honestly: the base of forgeries.
pub(crate) struct Case {
    pub circuit: AivmCircuit,
    pub cfg: Config,
    pub honest: Trace,
    pub laid: Laid,
    pub k: u32,
}

impl Case {
    /// A stateful program's state input and output are links (as [`AivmCircuit::new`] has it).
    pub fn new(program: Arc<Program>, inputs: Vec<Vec<i64>>, vis: Visibility) -> Case {
        let io = AivmCircuit::new(program.clone(), vis).io;
        Case::with_io(program, inputs, vis, io)
    }

    /// A segment's case: inputs and outputs past `io`'s are links, salted `SALT + 1`, ….
    pub fn with_io(program: Arc<Program>, inputs: Vec<Vec<i64>>, vis: Visibility, io: Io) -> Case {
        program
            .execute(&inputs)
            .expect("the honest witness executes");
        let circuit = AivmCircuit::with_io(program, vis, io);
        let mut w = Witness::new(inputs, Fp::from(SALT));
        let task_hashed = usize::from(vis == Visibility::Hashed && io.task_inputs > 0);
        w.links = (1..=circuit.hash_groups().len() - task_hashed)
            .map(|j| Fp::from(SALT + j as u64))
            .collect();
        let circuit = circuit.with_witness(w);
        let (laid, honest) = testing::with(None, HashMap::new(), true, || dry_layout(&circuit));
        let k = circuit.min_k();
        Case {
            circuit,
            cfg: config(),
            honest: honest.expect("traced"),
            laid,
            k,
        }
    }

    pub fn public(program: Arc<Program>, inputs: Vec<Vec<i64>>) -> Case {
        Case::new(program, inputs, Visibility::Public)
    }

    /// The limb width the circuit chose.
    pub fn lb(&self) -> u32 {
        self.circuit.limb_bits
    }

    /// The anchor row of the `n`-th instance of a gadget.
    pub fn row(&self, gadget: &str, n: usize) -> usize {
        let rows = self.honest.rows_of(gadget);
        *rows
            .get(n)
            .unwrap_or_else(|| panic!("no {gadget} number {n} (there are {})", rows.len()))
    }

    /// An honest cell's value.
    pub fn get(&self, col: Column<Advice>, row: usize) -> i128 {
        self.honest.int(col, row)
    }

    pub fn forge(&self) -> Forgery<'_> {
        Forgery {
            case: self,
            over: HashMap::new(),
            edit: None,
        }
    }

    /// The instance a layout (with its trace) claims: nonce, inputs or commitment, input
    /// links, public outputs, output links.
    fn instance_of(&self, laid: &Laid, trace: &Trace) -> Vec<Fp> {
        let at = |c: &ctx::Cell| trace.values[&(c.at.0, c.at.1)];
        let c = &self.circuit;
        let groups = c.hash_groups();
        let task_hashed = c.visibility == Visibility::Hashed && c.io.task_inputs > 0;
        let commits: Vec<Fp> = laid
            .packed_rows
            .iter()
            .enumerate()
            .map(|(g, rows)| {
                let packed: Vec<Fp> = rows
                    .iter()
                    .map(|&r| trace.values[&(self.cfg.acc, r)])
                    .collect();
                let w = c.witness.as_ref().expect("a witness");
                let salt = if task_hashed && g == 0 {
                    w.salt
                } else {
                    w.links[g - usize::from(task_hashed)]
                };
                commit(salt, &packed)
            })
            .collect();
        let n_in = groups.iter().filter(|g| !g.output).count();
        let mut v = nonce_fields(&[7; 32]).to_vec();
        if c.visibility == Visibility::Public {
            v.extend(laid.inputs[..c.io.task_inputs].iter().flatten().map(at));
        }
        v.extend(&commits[..n_in]);
        v.extend(laid.outputs[..c.io.public_outputs].iter().flatten().map(at));
        v.extend(&commits[n_in..]);
        v
    }

    /// Where the public outputs are in the instance.
    fn public_outputs(&self) -> std::ops::Range<usize> {
        let c = &self.circuit;
        let groups = c.hash_groups();
        let meta =
            |io: &crate::program::IoSpec| crate::tensor::numel(&c.program.tensors[io.tensor].shape);
        let inputs: usize = match c.visibility {
            Visibility::Public => c.program.inputs[..c.io.task_inputs].iter().map(meta).sum(),
            Visibility::Hashed => 0,
        };
        let start = NONCE_ROWS + inputs + groups.iter().filter(|g| !g.output).count();
        let len: usize = c.program.outputs[..c.io.public_outputs]
            .iter()
            .map(meta)
            .sum();
        start..start + len
    }

    /// MockProver on the honest witness with the instance it claims.
    pub fn honest_result(&self) -> Result<(), Vec<VerifyFailure>> {
        let inst = self.instance_of(&self.laid, &self.honest);
        run_mock(self, &inst, None, &HashMap::new())
    }

    /// The honest public outputs as the executor computes them, as field elements.
    pub fn executor_outputs(&self) -> Vec<Fp> {
        let w = self.circuit.witness.as_ref().expect("a witness");
        self.circuit
            .program
            .execute(&w.inputs)
            .expect("executes")
            .iter()
            .take(self.circuit.io.public_outputs)
            .flatten()
            .map(|&v| fp(v as i128))
            .collect()
    }
}

/// The Poseidon chain of [`input_commitment`] over packed elements.
pub(crate) fn commit(salt: Fp, packed: &[Fp]) -> Fp {
    packed.iter().fold(salt, |h, &p| {
        poseidon::Hash::<Fp, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, p])
    })
}

fn run_mock(
    case: &Case,
    instance: &[Fp],
    disabled: Option<Target>,
    over: &HashMap<Pos, Fp>,
) -> Result<(), Vec<VerifyFailure>> {
    let (r, _) = testing::with(disabled, over.clone(), false, || {
        MockProver::run(case.k, &case.circuit, vec![instance.to_vec()])
            .expect("the prover runs")
            .verify()
    });
    r
}

/// A change to a claimed instance.
type InstanceEdit<'c> = Box<dyn Fn(&mut Vec<Fp>) + 'c>;

/// A malicious witness: assigned cells overridden, and the instance it claims.
pub(crate) struct Forgery<'c> {
    case: &'c Case,
    over: HashMap<Pos, Fp>,
    edit: Option<InstanceEdit<'c>>,
}

/// What a forgery showed.
#[derive(Debug)]
pub(crate) struct Shown {
    /// The claimed outputs differ from the executor's.
    pub output_forged: bool,
    /// The claimed instance differs from the honest one somewhere (input, commitment, nonce).
    pub instance_forged: bool,
}

impl<'c> Forgery<'c> {
    pub fn set(mut self, col: Column<Advice>, row: usize, v: i128) -> Self {
        self.over.insert((col, row), fp(v));
        self
    }

    pub fn set_field(mut self, col: Column<Advice>, row: usize, v: Fp) -> Self {
        self.over.insert((col, row), v);
        self
    }

    /// Sets limb cells `from..` of `row` to the given values.
    pub fn limbs(mut self, row: usize, from: usize, vals: &[i128]) -> Self {
        for (j, &v) in vals.iter().enumerate() {
            self.over.insert((self.case.cfg.limb[from + j], row), fp(v));
        }
        self
    }

    /// Changes the claimed instance (after it is computed from the forged layout).
    pub fn instance(mut self, f: impl Fn(&mut Vec<Fp>) + 'c) -> Self {
        self.edit = Some(Box::new(f));
        self
    }

    /// Checks the forgery against `target`: the real circuit rejects it, and only `target`
    /// catches it (every failure is one of `target`'s); with `target` disabled the circuit
    /// accepts it.
    pub fn check(self, target: Target) -> Shown {
        let case = self.case;
        let (laid, trace) =
            testing::with(None, self.over.clone(), true, || dry_layout(&case.circuit));
        let mut inst = case.instance_of(&laid, &trace.expect("traced"));
        if let Some(f) = &self.edit {
            f(&mut inst);
        }
        let honest = case.instance_of(&case.laid, &case.honest);
        let shown = Shown {
            output_forged: inst[case.public_outputs()] != case.executor_outputs()[..],
            instance_forged: inst != honest,
        };
        let real = run_mock(case, &inst, None, &self.over);
        let failures = match real {
            Ok(()) => panic!("{target}: the real circuit accepted the forgery"),
            Err(f) => f,
        };
        let foreign: Vec<String> = failures
            .iter()
            .filter(|f| !caught_by(f, target, &case.cfg))
            .map(|f| format!("{f}"))
            .collect();
        assert!(
            foreign.is_empty(),
            "{target}: the forgery is caught by other constraints too, so deleting {target} \
             would not show anything:\n{}",
            foreign.join("\n")
        );
        if let Err(f) = run_mock(case, &inst, Some(target), &self.over) {
            panic!(
                "{target}: with it disabled the forgery is still refused: {}",
                f.iter()
                    .map(|f| format!("{f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        shown
    }
}

/// Whether a MockProver failure is one of `target`'s.
fn caught_by(f: &VerifyFailure, target: Target, cfg: &Config) -> bool {
    match (f, target) {
        (VerifyFailure::ConstraintNotSatisfied { constraint, .. }, Target::Gate(g, p)) => {
            let s = constraint.to_string();
            s.contains(&format!("('{p}') in gate")) && s.ends_with(&format!("('{g}')"))
        }
        (VerifyFailure::Lookup { lookup_index, .. }, Target::Lookup(name)) => {
            cfg.lookup_names.get(*lookup_index) == Some(&name)
        }
        (VerifyFailure::Permutation { .. }, Target::Copy(_)) => true,
        _ => false,
    }
}

mod fixtures {
    use super::*;

    #[test]
    fn fixtures_satisfy_the_circuit() {
        for name in FIXTURES {
            let (p, q) = fixture(name);
            for vis in [Visibility::Public, Visibility::Hashed] {
                Case::new(p.clone(), q.clone(), vis)
                    .honest_result()
                    .unwrap_or_else(|e| panic!("{name} ({vis}): {} failures: {:?}", e.len(), e[0]));
            }
        }
    }

    #[test]
    fn wrong_outputs_and_inputs_fail() {
        let (p, q) = fixture("ezkl/1l_mlp");
        let case = Case::public(p, q);
        let honest = case.instance_of(&case.laid, &case.honest);
        run_mock(&case, &honest, None, &HashMap::new()).unwrap();
        let n = honest.len();
        for (i, delta) in [(n - 1, 1u64), (n - 2, 1), (NONCE_ROWS, 1)] {
            let mut bad = honest.clone();
            bad[i] += Fp::from(delta);
            assert!(
                run_mock(&case, &bad, None, &HashMap::new()).is_err(),
                "row {i}"
            );
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
            /// Verification succeeds if and only if the claimed output equals the executor's.
            #[test]
            fn verifies_iff_output_is_the_executors(x in proptest::collection::vec(-30000i64..30000, 3), which in 0usize..4, delta in -2i64..=2) {
                let (p, _) = fixture("ezkl/1l_mlp");
                let case = Case::public(p, vec![x]);
                let mut claimed = case.instance_of(&case.laid, &case.honest);
                let at = claimed.len() - 4 + which;
                claimed[at] += fp(delta as i128);
                let ok = run_mock(&case, &claimed, None, &HashMap::new()).is_ok();
                prop_assert_eq!(ok, delta == 0);
            }
        }
    }
}
