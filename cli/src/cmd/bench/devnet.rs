//! `lightchain bench --devnet` and `--chaos`: end-to-end task latency and saturation throughput
//! on an in-process devnet, and the fault suite (RELIABILITY.md).

use std::time::Instant;

use serde::Serialize;

use super::{BenchArgs, machine, project_for, this_command, write_section};
use crate::shell::{Human, Shell};
use lightchain_aivm::proof::ParamsCache;

#[derive(Serialize)]
struct DevnetReport {
    machine: String,
    command: String,
    model: String,
    k: u32,
    validators: usize,
    tasks: usize,
    latency_ms: Vec<f64>,
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    tasks_per_second_at_saturation: f64,
    /// The executors' mean time to execute and prove one of the measured tasks (part of the
    /// latency; the rest is consensus, gossip and the other validators' verification).
    executor_prove_ms: f64,
    min_ms: f64,
    max_ms: f64,
    #[serde(skip)]
    table: String,
}

impl Human for DevnetReport {
    fn human(&self, out: &mut String) {
        out.push_str(&self.table);
    }
}

/// What a devnet latency run measured.
pub(super) struct DevnetRun {
    /// Submission to receipt, one task at a time (ms).
    pub latencies: Vec<f64>,
    /// Proven tasks per second with as many submitted at once.
    pub per_second: f64,
    /// The executors' mean proving time per measured task (ms).
    pub prove_ms: f64,
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const CHAOS_BEGIN: &str = "<!-- bench:chaos:begin -->";
const CHAOS_END: &str = "<!-- bench:chaos:end -->";

#[derive(Serialize)]
struct ChaosOut {
    ok: bool,
    report: lightchain_devnet::chaos::ChaosReport,
}

impl Human for ChaosOut {
    fn human(&self, out: &mut String) {
        let r = &self.report;
        out.push_str(&format!(
            "chaos: {} tasks ({} acknowledged), {} completed, {} failed; {} faults; forks {}, lost {}, duplicated {}, supply mismatches {}, stopped {}; max recovery {} ms; {:.0} s\n",
            r.submitted,
            r.acknowledged,
            r.completed,
            r.failed.values().sum::<usize>(),
            r.faults.values().sum::<usize>(),
            r.forks,
            r.lost,
            r.duplicated,
            r.supply_mismatches,
            r.stopped.len(),
            r.max_recovery_ms(),
            r.seconds
        ));
        out.push_str(if self.ok {
            "every invariant held\n"
        } else {
            "INVARIANTS VIOLATED\n"
        });
    }
}

const DEVNET_BEGIN: &str = "<!-- bench:devnet:begin -->";
const DEVNET_END: &str = "<!-- bench:devnet:end -->";

impl BenchArgs {
    pub(super) fn run_devnet(&self, shell: &Shell, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(n >= 1, "--devnet needs at least one task");
        let (package, pkg, input) = self.devnet_package()?;
        let validators = self.validators as usize;
        let DevnetRun {
            latencies,
            per_second,
            prove_ms,
        } = self.devnet_latency(shell, n, package, &input)?;
        let mut sorted = latencies.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let median = percentile(&sorted, 0.5);
        let command = this_command();
        let name = format!(
            "{}{}{}",
            self.devnet_model.display(),
            if self.over_http { " (over HTTP)" } else { "" },
            self.delay_ms
                .map(|ms| format!(" ({ms} ms per message)"))
                .unwrap_or_default()
        );
        let table = format!(
            "| model | k | validators | tasks | median ms | p10 ms | p90 ms | p99 ms | min ms | max ms | executor's proof, mean ms | tasks/s at saturation |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n| {name} | {} | {validators} | {n} | {median:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {prove_ms:.1} | {per_second:.2} |\n",
            pkg.info.k,
            percentile(&sorted, 0.1),
            percentile(&sorted, 0.9),
            percentile(&sorted, 0.99),
            sorted[0],
            sorted[sorted.len() - 1]
        );
        let report = DevnetReport {
            machine: machine(),
            command: command.clone(),
            model: name,
            k: pkg.info.k,
            validators,
            tasks: n,
            median_ms: median,
            p10_ms: percentile(&sorted, 0.1),
            p90_ms: percentile(&sorted, 0.9),
            p99_ms: percentile(&sorted, 0.99),
            tasks_per_second_at_saturation: per_second,
            executor_prove_ms: prove_ms,
            min_ms: sorted[0],
            max_ms: sorted[sorted.len() - 1],
            latency_ms: latencies,
            table,
        };
        if !self.no_write {
            let section = format!(
                "{DEVNET_BEGIN}\nMeasured with `{command}` (release build) on {}: an in-process devnet of {validators} validators with instant mining; each task is submitted, included in a block, executed and proven by its executor, and its result included in a further block whose every validator verified the proof before voting. Latency is from submission to the receipt, one task at a time, after three warm-up tasks (the executor's proof: the executors' mean time to execute and prove each of them); then as many tasks are submitted at once from the dev accounts, and tasks/s is their number over the time until the last receipt.\n\n{}{DEVNET_END}",
                report.machine, report.table
            );
            write_section(
                &self.out,
                "Devnet: end-to-end task latency",
                (DEVNET_BEGIN, DEVNET_END),
                &section,
            )?;
        }
        shell.emit(&report)
    }

    /// Deploys `package` on an in-process devnet (this command's validators, transport and
    /// delay) and measures `n` tasks on `input` one at a time after three warm-up tasks
    /// (latencies in ms), then `n` submitted at once (proven tasks per second).
    pub(super) fn devnet_latency(
        &self,
        shell: &Shell,
        n: usize,
        package: Vec<u8>,
        input: &serde_json::Value,
    ) -> anyhow::Result<DevnetRun> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let validators = self.validators as usize;
        rt.block_on(async {
            let mut cfg = lightchain_devnet::DevnetConfig::default()
                .with_port(0)
                .without_rpc()
                .with_validators(validators);
            if self.over_http {
                cfg = cfg.with_http_transport();
            }
            let (api, handle) = lightchain_devnet::try_spawn(cfg).await?;
            if let Some(ms) = self.delay_ms {
                api.delay(std::time::Duration::from_millis(ms));
            }
            let keys: Vec<_> = handle.dev_accounts().iter().map(|a| a.key()).collect();
            let key = keys[0].clone();
            tokio::task::block_in_place(|| -> anyhow::Result<DevnetRun> {
                let (_, model) = api.deploy(&key, package)?;
                // The executors' proving time over the measured tasks (after the warm-up).
                let proving = |api: &lightchain_devnet::DevnetApi| -> anyhow::Result<(u64, u64)> {
                    (0..validators).try_fold((0, 0), |(t, ms), v| {
                        let s = api.executor_stats(v)?;
                        Ok((t + s.tasks, ms + s.prove_ms))
                    })
                };
                let mut before = (0, 0);
                let pb = shell.progress(2 * n as u64 + 3, "tasks");
                let mut lat = Vec::with_capacity(n);
                // Three warm-up tasks (key derivation, caches), then the measured ones.
                for i in 0..n + 3 {
                    let start = Instant::now();
                    let id = api.submit_task(&key, &model, input.clone(), false, 1)?;
                    api.wait_receipt(&id, std::time::Duration::from_secs(120))?;
                    if i >= 3 {
                        lat.push(start.elapsed().as_secs_f64() * 1000.0);
                    } else if i == 2 {
                        before = proving(&api)?;
                    }
                    pb.inc(1);
                }
                let after = proving(&api)?;
                // Saturation: n more tasks submitted at once, spread over the dev accounts (a
                // sender may have 16 tasks ahead of its confirmed nonce), until every receipt.
                let start = Instant::now();
                let mut ids = Vec::with_capacity(n);
                for i in 0..n {
                    let k = &keys[i % keys.len()];
                    ids.push(api.submit_task(k, &model, input.clone(), false, 1)?);
                }
                for id in &ids {
                    api.wait_receipt(id, std::time::Duration::from_secs(600))?;
                    pb.inc(1);
                }
                let per_second = n as f64 / start.elapsed().as_secs_f64();
                pb.finish_and_clear();
                drop(handle);
                let tasks = after.0.saturating_sub(before.0).max(1);
                Ok(DevnetRun {
                    latencies: lat,
                    per_second,
                    prove_ms: after.1.saturating_sub(before.1) as f64 / tasks as f64,
                })
            })
        })
    }

    /// The devnet benchmarks' model packaged, with its input.
    pub(super) fn devnet_package(
        &self,
    ) -> anyhow::Result<(Vec<u8>, lightchain_packager::Package, serde_json::Value)> {
        let tmp = tempfile::tempdir()?;
        let project = tmp.path().join("project");
        project_for(&self.devnet_model, &project)?;
        let params = ParamsCache::from_env();
        let (package, pkg) = lightchain_packager::build(&project, &params, false, &mut |_| {})?;
        let input: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            self.devnet_model.join("input.json"),
        )?)?;
        Ok((package, pkg, input))
    }

    /// The fault suite over `n` tasks, recorded in RELIABILITY.md.
    pub(super) fn run_chaos(&self, shell: &Shell, n: usize) -> anyhow::Result<()> {
        use lightchain_devnet::chaos::{ChaosSpec, run_with_progress};
        use lightchain_devnet::validator::Behavior;
        let (package, _, input) = self.devnet_package()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let byzantine = (3, Behavior::EquivocatingProposer);
        let report = rt.block_on(async {
            let mut cfg = lightchain_devnet::DevnetConfig::default()
                .with_port(0)
                .without_rpc()
                .with_task_timeout(Some(std::time::Duration::from_secs(3)));
            cfg.timeouts.propose = std::time::Duration::from_millis(1500);
            let (api, handle) = lightchain_devnet::try_spawn(cfg).await?;
            let key = handle.dev_accounts()[9].key();
            tokio::task::block_in_place(|| -> anyhow::Result<_> {
                let (_, model) = api.deploy(&key, package)?;
                let spec = ChaosSpec {
                    tasks: n,
                    accounts: 4,
                    seed: self.seed,
                    fault_every: std::time::Duration::from_secs(1),
                    byzantine: Some(byzantine),
                    model_id: model,
                    inputs: vec![input],
                    settle: std::time::Duration::from_secs(120),
                };
                let pb = shell.progress(n as u64, "tasks under faults");
                let r = run_with_progress(&api, &spec, &|done| pb.set_position(done as u64));
                pb.finish_and_clear();
                drop(handle);
                Ok(r)
            })
        })?;
        let command = this_command();
        let faults: Vec<String> = report
            .faults
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let mut rec = report.recovery_ms.clone();
        rec.sort_unstable();
        let section = format!(
            "{CHAOS_BEGIN}\nMeasured with `{command}` (release build) on {}: an in-process devnet of {} validators, validator {} {:?} throughout; {} accounts submit tasks of {} (one in flight each) while a nemesis injects a fault every second (kill or revive one validator, partition one off or heal, delay every message by 20-200 ms).\n\n| figure | value |\n|---|---|\n| tasks submitted / acknowledged | {} / {} |\n| completed / failed | {} / {} |\n| faults injected | {} ({}) |\n| forks (heights with two blocks) | {} |\n| lost (acknowledged, not in the chain) | {} |\n| duplicated (completed twice) | {} |\n| supply mismatches | {} |\n| validators stopped | {} |\n| recovery after a heal or revive, median / max | {} ms / {} ms |\n| heights at the end | {:?} |\n| wall time | {:.0} s |\n\nInvariants {}.\n{CHAOS_END}",
            machine(),
            report.validators,
            byzantine.0,
            byzantine.1,
            4,
            self.devnet_model.display(),
            report.submitted,
            report.acknowledged,
            report.completed,
            report.failed.values().sum::<usize>(),
            report.faults.values().sum::<usize>(),
            faults.join(", "),
            report.forks,
            report.lost,
            report.duplicated,
            report.supply_mismatches,
            report.stopped.len(),
            rec.get(rec.len() / 2).copied().unwrap_or(0),
            report.max_recovery_ms(),
            report.heights,
            report.seconds,
            if report.ok() { "held" } else { "VIOLATED" },
        );
        if !self.no_write {
            let path = self.out.with_file_name("RELIABILITY.md");
            write_section(&path, "Fault suite", (CHAOS_BEGIN, CHAOS_END), &section)?;
        }
        let ok = report.ok();
        shell.emit(&ChaosOut { ok, report })?;
        anyhow::ensure!(ok, "the fault suite found its invariants violated");
        Ok(())
    }
}
