//! The fault suite: a running devnet under continuous load from several accounts while a
//! nemesis crashes and revives validators, partitions and heals the network, delays messages,
//! and one validator misbehaves throughout; then the chain is checked:
//!
//! - one block hash per height on every validator (no fork);
//! - every task the API acknowledged is in the chain, completed exactly once or failed with a
//!   reason (none lost, none duplicated);
//! - balances + stake + escrow + burned equal the genesis supply on every validator;
//! - no validator stopped or panicked;
//! - after each heal, the chain progresses again within a bounded time (the recovery times
//!   are reported).
//!
//! The tests run a short schedule; `lightchain bench --chaos N` a long one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::DevnetApi;
use crate::chain::Claim;
use crate::chain::state::TaskStatus;
use crate::crypto::AccountKey;
use crate::validator::Behavior;

/// What to run.
#[derive(Clone, Debug)]
pub struct ChaosSpec {
    /// Tasks to submit in all.
    pub tasks: usize,
    /// Dev accounts that submit them (one task in flight each).
    pub accounts: usize,
    /// Seed of the nemesis schedule.
    pub seed: u64,
    /// Time between two faults.
    pub fault_every: Duration,
    /// The validator that misbehaves all along, and how.
    pub byzantine: Option<(usize, Behavior)>,
    /// The deployed model the tasks run.
    pub model_id: String,
    /// Task inputs, used in turn.
    pub inputs: Vec<serde_json::Value>,
    /// How long a task may take to resolve once every fault is healed.
    pub settle: Duration,
}

/// What the run showed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChaosReport {
    pub validators: usize,
    pub byzantine: Option<(usize, Behavior)>,
    pub seconds: f64,
    pub submitted: usize,
    /// Submissions the API acknowledged (a task id returned).
    pub acknowledged: usize,
    /// Submissions it refused (the reason counted), which never became tasks.
    pub refused: BTreeMap<String, usize>,
    pub completed: usize,
    /// Tasks that failed, by reason.
    pub failed: BTreeMap<String, usize>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, usize>,
    /// Heights at which two validators hold different blocks.
    pub forks: usize,
    /// Acknowledged tasks missing from the chain at the end.
    pub lost: usize,
    /// Tasks with more than one accepted result.
    pub duplicated: usize,
    /// Validators whose supply differs from the genesis supply.
    pub supply_mismatches: usize,
    /// Validators that stopped.
    pub stopped: Vec<(usize, String)>,
    pub heights: Vec<u64>,
    /// Time from each heal or revive to the next block, in ms.
    pub recovery_ms: Vec<u64>,
    pub evidence: usize,
}

impl ChaosReport {
    /// Whether every invariant held.
    pub fn ok(&self) -> bool {
        self.forks == 0
            && self.lost == 0
            && self.duplicated == 0
            && self.supply_mismatches == 0
            && self.stopped.is_empty()
            && self.acknowledged == self.completed + self.failed.values().sum::<usize>()
    }

    pub fn max_recovery_ms(&self) -> u64 {
        self.recovery_ms.iter().copied().max().unwrap_or(0)
    }
}

type Rng = lightchain_aivm::rng::SplitMix64;

/// The nemesis' state: who is down, whether the network is split or slow.
#[derive(Default)]
struct Nemesis {
    down: BTreeSet<usize>,
    partitioned: bool,
    delayed: bool,
}

impl Nemesis {
    /// Injects one fault (or heals one) and names it; returns whether it healed something.
    fn step(
        &mut self,
        api: &DevnetApi,
        rng: &mut Rng,
        n: usize,
        byz: Option<usize>,
        faults: &mut BTreeMap<String, usize>,
    ) -> bool {
        let mut count = |k: &str| *faults.entry(k.into()).or_default() += 1;
        // Heal what is broken half of the time, so that faults come and go.
        if (self.partitioned || self.delayed || !self.down.is_empty()) && rng.below(2) == 0 {
            if let Some(&v) = self.down.iter().next() {
                let _ = api.revive(v);
                self.down.remove(&v);
                count("revive");
            } else {
                api.heal();
                self.partitioned = false;
                self.delayed = false;
                count("heal");
            }
            return true;
        }
        match rng.below(3) {
            // At most one crashed validator at a time (and never the Byzantine one, which
            // already counts against the tolerance of one fault in four).
            0 if self.down.is_empty() && n > 1 => {
                let candidates: Vec<usize> = (0..n).filter(|&v| Some(v) != byz).collect();
                let v = candidates[rng.below(candidates.len())];
                let _ = api.kill(v);
                self.down.insert(v);
                count("kill");
            }
            1 if n > 1 => {
                let v = rng.below(n);
                let (alone, rest): (Vec<usize>, Vec<usize>) = (0..n).partition(|&x| x == v);
                let _ = api.partition(vec![alone, rest]);
                self.partitioned = true;
                count("partition");
            }
            _ => {
                let ms = 20 + rng.below(180) as u64;
                api.delay(Duration::from_millis(ms));
                self.delayed = true;
                count("delay");
            }
        }
        false
    }

    fn heal_all(&mut self, api: &DevnetApi) {
        for v in std::mem::take(&mut self.down) {
            let _ = api.revive(v);
        }
        api.heal();
        self.partitioned = false;
        self.delayed = false;
    }
}

/// Runs the schedule on a devnet whose `spec.model_id` is deployed.
pub fn run(api: &DevnetApi, spec: &ChaosSpec) -> ChaosReport {
    run_with_progress(api, spec, &|_| {})
}

/// [`run`], calling `progress` with the number of tasks submitted and resolved (or refused)
/// so far whenever it changes.
pub fn run_with_progress(
    api: &DevnetApi,
    spec: &ChaosSpec,
    progress: &dyn Fn(usize),
) -> ChaosReport {
    let start = Instant::now();
    let n = api.views().len();
    let genesis_supply = api.views()[0].state.supply();
    let mut report = ChaosReport {
        validators: n,
        byzantine: spec.byzantine,
        ..Default::default()
    };
    if let Some((v, b)) = spec.byzantine {
        let _ = api.set_behavior(v, b);
    }
    let keys: Vec<AccountKey> = api.dev_accounts()[..spec.accounts.min(api.dev_accounts().len())]
        .iter()
        .map(|a| a.key())
        .collect();
    let mut rng = lightchain_aivm::rng::SplitMix64(spec.seed);
    let mut nemesis = Nemesis::default();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut in_flight: Vec<Option<String>> = vec![None; keys.len()];
    let mut last_fault = Instant::now();
    let mut healed_at: Option<(Instant, u64)> = None;
    let mut last_done = 0;
    let resolved = |api: &DevnetApi, id: &str| {
        matches!(
            api.task(id).map(|t| t.status),
            Some(TaskStatus::Completed { .. } | TaskStatus::Failed { .. })
        )
    };
    while report.submitted < spec.tasks || in_flight.iter().any(Option::is_some) {
        for (k, key) in keys.iter().enumerate() {
            if in_flight[k].as_deref().is_some_and(|id| !resolved(api, id)) {
                continue;
            }
            in_flight[k] = None;
            if report.submitted >= spec.tasks {
                continue;
            }
            let input = spec.inputs[report.submitted % spec.inputs.len()].clone();
            report.submitted += 1;
            match api.submit_task(key, &spec.model_id, input, false, 1) {
                Ok(id) => {
                    acknowledged.push(id.clone());
                    in_flight[k] = Some(id);
                }
                Err(e) => {
                    let reason = e.to_string();
                    let short = reason.split(':').next().unwrap_or("").to_string();
                    *report.refused.entry(short).or_default() += 1;
                }
            }
        }
        let done = report.submitted - in_flight.iter().filter(|t| t.is_some()).count();
        if done != last_done {
            last_done = done;
            progress(done);
        }
        if let Some((at, h)) = healed_at
            && api.status().height > h
        {
            report.recovery_ms.push(at.elapsed().as_millis() as u64);
            healed_at = None;
        }
        if last_fault.elapsed() >= spec.fault_every && report.submitted < spec.tasks {
            last_fault = Instant::now();
            let byz = spec.byzantine.map(|b| b.0);
            if nemesis.step(api, &mut rng, n, byz, &mut report.faults) {
                healed_at.get_or_insert((Instant::now(), api.status().height));
            } else {
                // A new fault before the chain moved on: that recovery was cut short, and
                // timing it would count the new fault's outage too.
                healed_at = None;
            }
        }
        if report.submitted >= spec.tasks && nemesis_active(&nemesis) {
            nemesis.heal_all(api);
            healed_at.get_or_insert((Instant::now(), api.status().height));
        }
        // A generous cap (a task takes about a second here): the loop ends even if the chain
        // never recovers, and the report then shows the tasks that were not resolved.
        if start.elapsed() > spec.settle + Duration::from_secs(5) * (spec.tasks as u32 + 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nemesis.heal_all(api);
    // Let the last tasks resolve and every validator catch up.
    let deadline = Instant::now() + spec.settle;
    let pending = |api: &DevnetApi| acknowledged.iter().any(|id| !resolved(api, id));
    while Instant::now() < deadline && (pending(api) || !caught_up(api)) {
        if let Some((at, h)) = healed_at
            && api.status().height > h
        {
            report.recovery_ms.push(at.elapsed().as_millis() as u64);
            healed_at = None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A chain that never moved again after the last heal counts as not recovered only if it
    // had work to do (an idle chain makes no blocks).
    if let Some((at, _)) = healed_at
        && pending(api)
    {
        report.recovery_ms.push(at.elapsed().as_millis() as u64);
    }
    report.acknowledged = acknowledged.len();
    check(api, &acknowledged, genesis_supply, &mut report);
    report.seconds = start.elapsed().as_secs_f64();
    report
}

fn nemesis_active(n: &Nemesis) -> bool {
    n.partitioned || n.delayed || !n.down.is_empty()
}

fn caught_up(api: &DevnetApi) -> bool {
    let views = api.views();
    let h: BTreeSet<u64> = views.iter().map(|v| v.state.height).collect();
    h.len() == 1
}

/// Checks the invariants on every validator's chain.
fn check(api: &DevnetApi, acknowledged: &[String], genesis_supply: u128, report: &mut ChaosReport) {
    let views = api.views();
    report.heights = views.iter().map(|v| v.state.height).collect();
    report.stopped = api.status().stopped;
    let top = views.iter().map(|v| v.blocks.len()).max().unwrap_or(0);
    for h in 0..top {
        let hashes: BTreeSet<[u8; 32]> = views
            .iter()
            .filter_map(|v| v.blocks.get(h).map(|b| b.hash))
            .collect();
        if hashes.len() > 1 {
            report.forks += 1;
        }
    }
    report.supply_mismatches = views
        .iter()
        .filter(|v| v.state.supply() != genesis_supply)
        .count();
    let best = views
        .iter()
        .max_by_key(|v| v.state.height)
        .expect("validators");
    report.evidence = best.state.evidence.len();
    let mut proven: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &best.blocks {
        for r in &b.block.results {
            if matches!(r.claim, Claim::Proof { .. }) {
                *proven.entry(r.task_id.as_str()).or_default() += 1;
            }
        }
    }
    for id in acknowledged {
        match best.state.tasks.get(id).map(|t| &t.status) {
            Some(TaskStatus::Completed { .. }) => {
                report.completed += 1;
                if proven.get(id.as_str()).copied().unwrap_or(0) != 1
                    || !best.receipts.contains_key(id)
                {
                    report.duplicated += 1;
                }
            }
            Some(TaskStatus::Failed { reason, .. }) => {
                *report.failed.entry(reason.clone()).or_default() += 1;
            }
            // Still pending or never included.
            _ => report.lost += 1,
        }
    }
}
