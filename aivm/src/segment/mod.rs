//! Segment proofs: a program whose circuit needs more memory than a task may use is cut between
//! nodes into segments whose circuits fit, and proven segment by segment.
//!
//! A segment is the sub-program of consecutive nodes `[start, end)`. Its inputs are the task's
//! inputs (all of them, public or hashed as the task says, when any of its nodes reads one)
//! followed by its *input links*: tensors an earlier segment produced, in tensor order. Its
//! outputs are the program outputs it produces (public) followed by its *output links*: the
//! tensors it produces that a later segment reads, in tensor order. Each link is committed to
//! with its own salted Poseidon chain (private values, private salt: the commitment reveals
//! nothing about the activations), and the commitment is a public input of both the segment
//! that produces the tensor and every segment that reads it. The verifier builds every
//! segment's instance from one table of link commitments, so producer and readers are checked
//! against the same value: by Poseidon's binding and the injective packing of range-checked
//! values, the reader's inputs are the producer's outputs. Every segment's instance also holds
//! the task nonce, so segments of different tasks cannot be mixed.
//!
//! Any cut is sound; [`plan`] chooses the cuts greedily so that each segment's domain stays
//! within the `k` a memory limit allows ([`max_k_within`]).

use std::ops::Range;
use std::sync::Arc;

use halo2_proofs::pasta::Fp;
use rand_core::Rng;

use crate::circuit::{self, AivmCircuit, Io, Visibility, Witness, ctx::fp};
use crate::error::{AivmError, Result};
use crate::gas::memory_estimate_mb;
use crate::program::{IoSpec, ModelId, Program};
use crate::proof::{
    Keys, ParamsCache, Proof, ProofError, PublicInput, Segments, commitment_field, random_salt,
};
use crate::split::{self, Split};

mod parallel;

use parallel::run_parallel;
pub use parallel::workers;

/// At most this many segments per program (an envelope with more is refused unread).
pub const MAX_SEGMENTS: usize = 4096;

/// The largest `k` whose proving fits in `memory_mb` (by [`memory_estimate_mb`]).
pub fn max_k_within(memory_mb: u64) -> Option<u32> {
    (4..=24).rev().find(|&k| memory_estimate_mb(k) <= memory_mb)
}

/// One segment of a program.
#[derive(Clone, Debug)]
pub struct Segment {
    pub nodes: Range<usize>,
    /// The sub-program: the segment's nodes; inputs: the task's (when read) then the input
    /// links; outputs: the public outputs it produces, then the output links.
    pub program: Arc<Program>,
    pub io: Io,
    /// Tensor ids of the input links.
    pub links_in: Vec<usize>,
    /// Indices into the program's outputs of the public outputs it produces.
    pub public_out: Vec<usize>,
    /// Tensor ids of the output links.
    pub links_out: Vec<usize>,
}

/// One segment's share of proving one inference: its witness (its input values and the salts
/// of its links) and its public instance. It holds activations (and, for the first segment,
/// the task's inputs): hand it only to a prover trusted with those.
#[derive(Clone)]
pub struct SegmentJob {
    pub index: usize,
    pub witness: Witness,
    pub instance: Vec<Fp>,
}

impl std::fmt::Debug for SegmentJob {
    // Shapes only: never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentJob")
            .field("index", &self.index)
            .field(
                "inputs",
                &self.witness.inputs.iter().map(Vec::len).collect::<Vec<_>>(),
            )
            .field("links", &self.witness.links.len())
            .field("instance", &self.instance.len())
            .finish()
    }
}

fn segment_err(reason: impl Into<String>) -> AivmError {
    AivmError::Segment(reason.into())
}

/// Who produces each tensor (`None`: a program input) and the last node reading it.
struct Flow {
    producer: Vec<Option<usize>>,
    last_reader: Vec<Option<usize>>,
}

impl Flow {
    fn of(program: &Program) -> Flow {
        let mut producer = vec![None; program.tensors.len()];
        let mut last_reader = vec![None; program.tensors.len()];
        for (i, n) in program.nodes.iter().enumerate() {
            producer[n.output] = Some(i);
            for &t in &n.inputs {
                last_reader[t] = Some(i);
            }
        }
        Flow {
            producer,
            last_reader,
        }
    }
}

/// The segment of nodes `[start, end)`.
fn segment(program: &Program, flow: &Flow, nodes: Range<usize>) -> Segment {
    let is_input = |t: usize| program.inputs.iter().any(|io| io.tensor == t);
    let before = |t: usize| flow.producer[t].is_none_or(|p| p < nodes.start);
    let mut reads: Vec<usize> = program.nodes[nodes.clone()]
        .iter()
        .flat_map(|n| n.inputs.iter().copied())
        .filter(|&t| before(t))
        .collect();
    reads.sort_unstable();
    reads.dedup();
    let task = reads.iter().any(|&t| is_input(t));
    let links_in: Vec<usize> = reads.into_iter().filter(|&t| !is_input(t)).collect();
    let inside = |t: usize| flow.producer[t].is_some_and(|p| nodes.contains(&p));
    let public_out: Vec<usize> = (0..program.outputs.len())
        .filter(|&j| inside(program.outputs[j].tensor))
        .collect();
    let links_out: Vec<usize> = (0..program.tensors.len())
        .filter(|&t| inside(t) && flow.last_reader[t].is_some_and(|r| r >= nodes.end))
        .collect();
    let link = |t: usize| IoSpec {
        name: format!("t{t}"),
        tensor: t,
    };
    let mut inputs = if task {
        program.inputs.clone()
    } else {
        Vec::new()
    };
    let task_inputs = inputs.len();
    inputs.extend(links_in.iter().map(|&t| link(t)));
    let mut outputs: Vec<IoSpec> = public_out
        .iter()
        .map(|&j| program.outputs[j].clone())
        .collect();
    outputs.extend(links_out.iter().map(|&t| link(t)));
    let sub = Program {
        tensors: program.tensors.clone(),
        inputs,
        outputs,
        nodes: program.nodes[nodes.clone()].to_vec(),
        state: false,
    };
    Segment {
        io: Io {
            task_inputs,
            public_outputs: public_out.len(),
        },
        nodes,
        program: Arc::new(sub),
        links_in,
        public_out,
        links_out,
    }
}

/// The segments ending at `ends` (each segment's end node, exclusive; the last is the number
/// of nodes). Refuses cuts that are not strictly increasing or do not cover the program.
pub fn segments(program: &Program, ends: &[usize]) -> Result<Vec<Segment>> {
    if program.state {
        return Err(segment_err(
            "a stateful program proves in one circuit: its state commitments are not linked across segments",
        ));
    }
    let n = program.nodes.len();
    if ends.is_empty() || ends.len() > MAX_SEGMENTS || ends.last() != Some(&n) {
        return Err(segment_err(format!(
            "{} cuts do not end at the program's {n} nodes",
            ends.len()
        )));
    }
    if ends.windows(2).any(|w| w[0] >= w[1]) || ends[0] == 0 {
        return Err(segment_err("cuts must be strictly increasing"));
    }
    if let Some(o) = program
        .outputs
        .iter()
        .find(|o| program.inputs.iter().any(|i| i.tensor == o.tensor))
    {
        return Err(segment_err(format!(
            "output \"{}\" is an input: such a program is not cut",
            o.name
        )));
    }
    let flow = Flow::of(program);
    let starts = std::iter::once(0).chain(ends.iter().copied());
    Ok(starts
        .zip(ends)
        .map(|(s, &e)| segment(program, &flow, s..e))
        .collect())
}

/// The `k` of a segment's circuit.
fn segment_k(seg: &Segment, visibility: Visibility) -> u32 {
    AivmCircuit::with_io(seg.program.clone(), visibility, seg.io).min_k()
}

/// How a program is cut: its channel splits (applied in order), then the end of each segment
/// in the split program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub splits: Vec<Split>,
    pub ends: Vec<usize>,
}

/// The greedy cut of a program, or the first node that alone does not fit.
enum Greedy {
    Ends(Vec<usize>),
    TooBig { node: usize, k: u32 },
}

fn greedy(program: &Program, visibility: Visibility, max_k: u32) -> Result<Greedy> {
    let flow = Flow::of(program);
    let n = program.nodes.len();
    let fits = |r: Range<usize>| -> Result<(bool, u32)> {
        let k = segment_k(&segment(program, &flow, r), visibility);
        Ok((k <= max_k, k))
    };
    let mut ends = Vec::new();
    let mut start = 0;
    while start < n {
        let (ok, k) = fits(start..start + 1)?;
        if !ok {
            return Ok(Greedy::TooBig { node: start, k });
        }
        let mut end = start + 1;
        while end < n && fits(start..end + 1)?.0 {
            end += 1;
        }
        ends.push(end);
        start = end;
    }
    Ok(Greedy::Ends(ends))
}

/// The smallest split (fewest parts, then fewest row parts) of the convolution chain holding
/// `node` whose every part fits in one segment of at most `2^max_k` rows.
fn split_to_fit(
    program: &Program,
    visibility: Visibility,
    node: usize,
    max_k: u32,
) -> Result<Option<(Split, Program)>> {
    let Some(start) = (0..=node)
        .rev()
        .find(|&s| split::chain(program, s).is_some_and(|r| r.contains(&node)))
    else {
        return Ok(None);
    };
    let (channels, rows) = split::limits(program, start).expect("a chain");
    let mut grids: Vec<(usize, usize)> = (1..=channels)
        .flat_map(|c| (1..=rows).map(move |r| (c, r)))
        .filter(|&(c, r)| c * r >= 2)
        .collect();
    grids.sort_by_key(|&(c, r)| (c * r, r));
    for (c, r) in grids {
        let s = Split {
            node: start,
            channels: c,
            rows: r,
        };
        let q = split::apply(program, s)?;
        // Each part (its input band's copies, then its chain: the nodes up to its last
        // chain node) as one segment.
        let len = split::chain(program, start).map_or(0, |r| r.len());
        let flow = Flow::of(&q);
        let mut fit = true;
        let mut from = start;
        for _ in 0..c * r {
            let mut end = from;
            let mut chain_nodes = 0;
            while chain_nodes < len {
                if !matches!(q.nodes[end].op, crate::ops::Op::Copy(_)) || chain_nodes > 0 {
                    chain_nodes += 1;
                }
                end += 1;
            }
            if segment_k(&segment(&q, &flow, from..end), visibility) > max_k {
                fit = false;
                break;
            }
            from = end;
        }
        if fit {
            return Ok(Some((s, q)));
        }
    }
    Ok(None)
}

/// Cuts `program` into segments whose domains are at most `2^max_k` rows: each segment takes
/// as many further nodes as fit; a convolution too big for one segment is first split by
/// output channels ([`crate::split`]). Refuses a node that fits neither way.
pub fn plan(program: &Program, visibility: Visibility, max_k: u32) -> Result<Cut> {
    let mut p = program.clone();
    let mut splits = Vec::new();
    loop {
        let (node, k) = match greedy(&p, visibility, max_k)? {
            Greedy::Ends(ends) => return Ok(Cut { splits, ends }),
            Greedy::TooBig { node, k } => (node, k),
        };
        // A copy too big for a segment (the Concat of a split chain's parts) goes when the
        // convolution reading it is split too: its parts read only the pieces they need.
        let target = match &p.nodes[node].op {
            crate::ops::Op::Copy(_) => {
                let t = p.nodes[node].output;
                (node + 1..p.nodes.len())
                    .find(|&j| p.nodes[j].inputs.contains(&t) && split::chain(&p, j).is_some())
                    .unwrap_or(node)
            }
            _ => node,
        };
        match split_to_fit(&p, visibility, target, max_k)? {
            Some((s, q)) if splits.len() < MAX_SEGMENTS => {
                splits.push(s);
                p = q;
            }
            _ => {
                let n = &p.nodes[node];
                return Err(segment_err(format!(
                    "node \"{}\" ({}) alone needs k = {k} (about {} MB to prove), more than the limit allows (k = {max_k}, {} MB)",
                    n.name,
                    n.op.kind(),
                    memory_estimate_mb(k),
                    memory_estimate_mb(max_k)
                )));
            }
        }
    }
}

/// Keys of a segmented program: one [`Keys`] per segment. Proving keys are derived one
/// segment at a time while proving (and dropped after it) unless they were kept, so proving
/// needs the memory of one segment's circuit, not of all of them.
pub struct SegmentKeys {
    pub model_id: ModelId,
    pub program: Arc<Program>,
    /// The program with the cut's splits applied (what the segments are cut from).
    pub split: Arc<Program>,
    pub visibility: Visibility,
    pub cut: Cut,
    pub segments: Vec<Segment>,
    /// Each segment's keys (with a proving key only when kept).
    pub keys: Vec<Keys>,
}

impl std::fmt::Debug for SegmentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentKeys")
            .field("model_id", &self.model_id)
            .field("cut", &self.cut)
            .finish_non_exhaustive()
    }
}

impl SegmentKeys {
    /// Derives every segment's verifying key (and, with `keep_proving`, its proving key).
    pub fn derive(
        program: Arc<Program>,
        visibility: Visibility,
        cut: &Cut,
        cache: &ParamsCache,
        keep_proving: bool,
    ) -> Result<SegmentKeys> {
        if cut.splits.len() > MAX_SEGMENTS {
            return Err(segment_err("too many splits"));
        }
        let split = Arc::new(split::apply_all(&program, &cut.splits)?);
        let segments = segments(&split, &cut.ends)?;
        let keys = segments
            .iter()
            .map(|s| {
                let c = AivmCircuit::with_io(s.program.clone(), visibility, s.io);
                Keys::derive_circuit(c, cache, keep_proving)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SegmentKeys {
            model_id: program.id(),
            program,
            split,
            visibility,
            cut: cut.clone(),
            segments,
            keys,
        })
    }

    /// The largest segment domain.
    pub fn k(&self) -> u32 {
        self.keys.iter().map(|k| k.k).max().unwrap_or(0)
    }

    /// Tensor ids of every link, in order.
    fn links(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self
            .segments
            .iter()
            .flat_map(|s| s.links_out.iter().copied())
            .collect();
        t.sort_unstable();
        t
    }

    /// Proves one inference segment by segment (at most `workers` segments at once), bound to
    /// `nonce`; hashed inputs take `salt` (or a fresh one), every link a fresh salt.
    pub fn prove(
        &self,
        inputs: &[Vec<i64>],
        nonce: [u8; 32],
        salt: Option<Fp>,
        workers: usize,
        rng: &mut impl Rng,
    ) -> Result<Proof> {
        let (proof, jobs) = self.plan_proof(inputs, nonce, salt, rng)?;
        let proofs = run_parallel(jobs, workers.max(1), |job| self.prove_segment(&job))?;
        self.assemble(proof, proofs)
    }

    /// Everything proving one inference needs, as independent jobs: the envelope without its
    /// segment proofs (outputs, input part and link table filled in), and one job per
    /// segment. Whoever holds these keys can prove any job ([`Self::prove_segment`]); the
    /// proofs go back into the envelope with [`Self::assemble`]. Hashed inputs take `salt`
    /// (or a fresh one), every link a fresh salt.
    pub fn plan_proof(
        &self,
        inputs: &[Vec<i64>],
        nonce: [u8; 32],
        salt: Option<Fp>,
        rng: &mut impl Rng,
    ) -> Result<(Proof, Vec<SegmentJob>)> {
        let program = &self.split;
        let all = program.execute_all(inputs)?;
        let salt = salt.unwrap_or_else(|| random_salt(rng));
        let links = self.links();
        let link_salts: Vec<Fp> = links.iter().map(|_| random_salt(rng)).collect();
        let salt_of = |t: usize| link_salts[links.binary_search(&t).expect("a link")];
        let commitments: Vec<(usize, [u8; 32])> = links
            .iter()
            .map(|&t| {
                let io = [IoSpec {
                    name: String::new(),
                    tensor: t,
                }];
                let c = circuit::commitment(program, &io, &all[t..t + 1], salt_of(t));
                (t, ff::PrimeField::to_repr(&c))
            })
            .collect();
        let outputs: Vec<Vec<i64>> = program
            .outputs
            .iter()
            .map(|o| all[o.tensor].clone())
            .collect();
        let input = match self.visibility {
            Visibility::Public => PublicInput::Values(inputs.to_vec()),
            Visibility::Hashed => PublicInput::Commitment(ff::PrimeField::to_repr(
                &circuit::input_commitment(program, inputs, salt),
            )),
        };
        let proof = Proof {
            model_id: self.model_id,
            k: self.k(),
            visibility: self.visibility,
            nonce,
            input,
            outputs,
            proof: Vec::new(),
            compile: None,
            state: None,
            segments: Some(Segments {
                splits: self
                    .cut
                    .splits
                    .iter()
                    .map(|s| (s.node, s.channels, s.rows))
                    .collect(),
                ends: self.cut.ends.clone(),
                links: commitments,
                proofs: Vec::new(),
            }),
        };
        let jobs = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let values: Vec<Vec<i64>> = s
                    .program
                    .inputs
                    .iter()
                    .map(|io| all[io.tensor].clone())
                    .collect();
                // The input's salt only where the segment hashes the task's inputs: a
                // helper proving a later segment never learns it.
                let salt = if s.io.task_inputs > 0 {
                    salt
                } else {
                    <Fp as ff::Field>::ZERO
                };
                let mut witness = Witness::new(values, salt);
                witness.links = s
                    .links_in
                    .iter()
                    .chain(&s.links_out)
                    .map(|&t| salt_of(t))
                    .collect();
                let instance = self.instance(i, &proof).expect("the prover's own instance");
                SegmentJob {
                    index: i,
                    witness,
                    instance,
                }
            })
            .collect();
        Ok((proof, jobs))
    }

    /// Proves one segment's job: `(k, proof bytes)`.
    pub fn prove_segment(&self, job: &SegmentJob) -> Result<(u32, Vec<u8>)> {
        let keys = self
            .keys
            .get(job.index)
            .ok_or_else(|| segment_err(format!("no segment {}", job.index)))?;
        keys.prove_instance(job.witness.clone(), &job.instance)
            .map(|p| (keys.k, p))
    }

    /// Checks one segment's proof against its job's instance (a proof from another prover,
    /// before it goes into the envelope).
    pub fn check_segment(&self, job: &SegmentJob, proof: &(u32, Vec<u8>)) -> Result<()> {
        let keys = self
            .keys
            .get(job.index)
            .ok_or_else(|| segment_err(format!("no segment {}", job.index)))?;
        if proof.0 != keys.k {
            return Err(invalid(format!(
                "segment {} claims k = {}; it proves at k = {}",
                job.index, proof.0, keys.k
            )));
        }
        keys.verify_instance(&job.instance, &proof.1)
            .map_err(|e| invalid(format!("segment {}: {e}", job.index)))
    }

    /// Puts every segment's proof (in segment order) into the envelope [`Self::plan_proof`]
    /// made, and verifies the whole.
    pub fn assemble(&self, mut proof: Proof, proofs: Vec<(u32, Vec<u8>)>) -> Result<Proof> {
        proof
            .segments
            .as_mut()
            .ok_or_else(|| segment_err("not a segmented envelope"))?
            .proofs = proofs;
        self.verify(&proof).map_err(|e| {
            AivmError::Prove(format!(
                "the segment proofs do not verify together ({e}); this is a bug in lightchain, please report it"
            ))
        })?;
        Ok(proof)
    }

    /// The public instance of segment `i` of a proof: nonce, the task's input part (when the
    /// segment reads the task's inputs), its input links' commitments, its public outputs, its
    /// output links' commitments. Link commitments come from the proof's one table.
    fn instance(&self, i: usize, proof: &Proof) -> Result<Vec<Fp>> {
        let seg = &self.segments[i];
        let table = &proof.segments.as_ref().expect("segmented").links;
        let link = |t: usize| -> Result<Fp> {
            let c = table
                .binary_search_by_key(&t, |l| l.0)
                .map(|j| table[j].1)
                .map_err(|_| invalid(format!("no commitment for link t{t}")))?;
            commitment_field(&c)
        };
        let mut v = circuit::nonce_fields(&proof.nonce).to_vec();
        if seg.io.task_inputs > 0 {
            match &proof.input {
                PublicInput::Values(x) => v.extend(x.iter().flatten().map(|&x| fp(x as i128))),
                PublicInput::Commitment(c) => v.push(commitment_field(c)?),
            }
        }
        for &t in &seg.links_in {
            v.push(link(t)?);
        }
        for &j in &seg.public_out {
            v.extend(proof.outputs[j].iter().map(|&x| fp(x as i128)));
        }
        for &t in &seg.links_out {
            v.push(link(t)?);
        }
        Ok(v)
    }

    /// Verifies a segmented proof: the model, its cuts and its links are this program's,
    /// every segment's proof holds for its instance.
    pub fn verify(&self, proof: &Proof) -> Result<()> {
        if proof.model_id != self.model_id {
            return Err(AivmError::InvalidProof(ProofError::OtherModel {
                proof: proof.model_id,
                expected: self.model_id,
            }));
        }
        let segs = proof
            .segments
            .as_ref()
            .ok_or_else(|| invalid("a single proof, not a segmented one".into()))?;
        if proof.state.is_some() {
            return Err(AivmError::InvalidProof(ProofError::State(false)));
        }
        if segs.ends != self.cut.ends || segs.cut().splits != self.cut.splits {
            return Err(invalid(format!(
                "the proof is cut into {} segments at other nodes than these keys' {}",
                segs.ends.len(),
                self.cut.ends.len()
            )));
        }
        if segs.proofs.len() != self.keys.len() {
            return Err(invalid(format!(
                "{} segment proofs for {} segments",
                segs.proofs.len(),
                self.keys.len()
            )));
        }
        let tensors: Vec<usize> = segs.links.iter().map(|l| l.0).collect();
        if tensors != self.links() {
            return Err(invalid(
                "the link table does not list this program's links".into(),
            ));
        }
        if proof.visibility != self.visibility {
            return Err(AivmError::InvalidProof(ProofError::VisibilityMismatch));
        }
        crate::proof::check_io_shapes(&self.program, proof)?;
        for (i, ((k, bytes), keys)) in segs.proofs.iter().zip(&self.keys).enumerate() {
            if *k != keys.k {
                return Err(invalid(format!(
                    "segment {i} claims k = {k}; it proves at k = {}",
                    keys.k
                )));
            }
            let inst = self.instance(i, proof)?;
            keys.verify_instance(&inst, bytes)
                .map_err(|e| invalid(format!("segment {i}: {e}")))?;
        }
        Ok(())
    }
}

fn invalid(reason: String) -> AivmError {
    AivmError::InvalidProof(ProofError::Segments(reason))
}

/// Where to cut `program` so that proving it needs at most `memory_mb` (by
/// [`memory_estimate_mb`]): `None` when one circuit fits.
pub fn cuts_within(
    program: &Arc<Program>,
    visibility: Visibility,
    memory_mb: u64,
) -> Result<Option<Cut>> {
    let max_k = limit_k(memory_mb)?;
    if AivmCircuit::new(program.clone(), visibility).min_k() <= max_k {
        return Ok(None);
    }
    plan(program, visibility, max_k).map(Some)
}

/// [`max_k_within`], or why no circuit fits.
fn limit_k(memory_mb: u64) -> Result<u32> {
    max_k_within(memory_mb).ok_or_else(|| {
        segment_err(format!(
            "{memory_mb} MB is below the smallest circuit's {} MB",
            memory_estimate_mb(4)
        ))
    })
}

/// The keys of a model under a memory limit: one circuit when it fits, else its segments.
#[derive(Debug)]
pub enum ModelKeys {
    One(Box<Keys>),
    Cut(SegmentKeys),
}

impl ModelKeys {
    /// Derives the keys proving `program` within `memory_mb` (proving keys kept with
    /// `proving`: a long-lived prover such as a devnet executor).
    pub fn derive(
        program: Arc<Program>,
        visibility: Visibility,
        memory_mb: u64,
        cache: &ParamsCache,
        proving: bool,
    ) -> Result<ModelKeys> {
        // The whole circuit is laid out once: to see whether it fits, then for its keys.
        let max_k = limit_k(memory_mb)?;
        let whole = AivmCircuit::new(program.clone(), visibility);
        if whole.min_k() <= max_k {
            return Ok(ModelKeys::One(Box::new(Keys::derive_circuit(
                whole, cache, proving,
            )?)));
        }
        let cut = plan(&program, visibility, max_k)?;
        Ok(ModelKeys::Cut(SegmentKeys::derive(
            program, visibility, &cut, cache, proving,
        )?))
    }

    /// The program proven.
    pub fn program(&self) -> &Arc<Program> {
        match self {
            ModelKeys::One(k) => &k.circuit.program,
            ModelKeys::Cut(k) => &k.program,
        }
    }

    /// The domain size (the largest segment's).
    pub fn k(&self) -> u32 {
        match self {
            ModelKeys::One(k) => k.k,
            ModelKeys::Cut(k) => k.k(),
        }
    }

    /// Segments proven per task (1: one circuit).
    pub fn segments(&self) -> usize {
        match self {
            ModelKeys::One(_) => 1,
            ModelKeys::Cut(k) => k.keys.len(),
        }
    }

    /// A digest of the verifying key(s): of every segment's, in order, when cut.
    pub fn vk_digest(&self) -> [u8; 32] {
        match self {
            ModelKeys::One(k) => k.vk_digest(),
            ModelKeys::Cut(k) => {
                let mut h = blake3::Hasher::new();
                for s in &k.keys {
                    h.update(&s.vk_digest());
                }
                *h.finalize().as_bytes()
            }
        }
    }

    /// Proves one inference (see [`Keys::prove_with_salt`]); segments one after another.
    pub fn prove_with_salt(
        &self,
        inputs: &[Vec<i64>],
        nonce: [u8; 32],
        salt: Option<Fp>,
        rng: &mut impl Rng,
    ) -> Result<Proof> {
        match self {
            ModelKeys::One(k) => k.prove_with_salt(inputs, nonce, salt, rng),
            ModelKeys::Cut(k) => k.prove(inputs, nonce, salt, 1, rng),
        }
    }

    /// Proves one run on all of the program's inputs: a stateful program's last input is the
    /// state, committed to with a fresh salt (a run from a state given by hand, such as a test
    /// vector's; the chain proves from its own state with [`Keys::prove_with_state`]).
    pub fn prove_inputs(
        &self,
        inputs: &[Vec<i64>],
        nonce: [u8; 32],
        rng: &mut impl Rng,
    ) -> Result<Proof> {
        match (self, inputs.split_last()) {
            (ModelKeys::One(k), Some((state, task))) if k.circuit.program.state => {
                let old = crate::state::StateValue {
                    values: state.clone(),
                    salt: random_salt(rng),
                };
                Ok(k.prove_with_state(task, &old, nonce, None, rng)?.0)
            }
            _ => self.prove_with_salt(inputs, nonce, None, rng),
        }
    }

    pub fn verify(&self, proof: &Proof) -> Result<()> {
        match self {
            ModelKeys::One(k) => k.verify(proof),
            ModelKeys::Cut(k) => k.verify(proof),
        }
    }
}
