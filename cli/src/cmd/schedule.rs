//! `lightchain task schedule` and `lightchain task cancel`: recurring tasks, run by the chain
//! every N blocks and paid from a deposit.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use lightchain_devnet::chain::TxKind;
use lightchain_devnet::chain::state::{Schedule, ScheduleStatus, TaskStatus};
use lightchain_devnet::rpc::types::TaskReply;
use serde::Serialize;
use serde_json::json;

use crate::cmd::client::{NodeArgs, Rpc, task_input};
use crate::shell::{Human, Shell, thousands};

/// `task schedule`'s arguments.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The deployed model: its id, NAME@VERSION or NAME@latest.
    pub model_id: String,
    /// The input file (JSON), the same for every run.
    #[arg(long, short = 'i', value_name = "INPUT.json")]
    pub input: PathBuf,
    /// Start a run every N blocks (the first in the block that takes the schedule).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub every: u64,
    /// Number of runs.
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Deposit paying the runs [default: M times a run's fee].
    #[arg(long, value_name = "AMOUNT")]
    pub deposit: Option<u128>,
    /// Encrypt the input to the validators; only its commitment is public.
    #[arg(long)]
    pub encrypt: bool,
    /// Follow the runs until the schedule ends: a line per completed run.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Serialize)]
struct Scheduled {
    schedule_id: String,
    model_id: String,
    every: u64,
    count: u32,
    #[serde(with = "lightchain_devnet::chain::dec")]
    deposit: u128,
    #[serde(with = "lightchain_devnet::chain::dec")]
    run_fee: u128,
}

impl Human for Scheduled {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "schedule  {}\nmodel     {}\nruns      {} every {} block(s)\ndeposit   {} (a run costs {})\n",
            self.schedule_id,
            self.model_id,
            self.count,
            self.every,
            thousands_u128(self.deposit),
            thousands_u128(self.run_fee)
        ));
    }
}

fn thousands_u128(v: u128) -> String {
    u64::try_from(v).map_or_else(|_| v.to_string(), thousands)
}

/// How long `--wait` waits without any change before it gives up.
const STALL: Duration = Duration::from_secs(300);

/// Reads a schedule; `None` while the transaction is not yet in a block.
fn get_schedule(rpc: &Rpc, id: &str) -> anyhow::Result<Option<Schedule>> {
    match rpc.call("lc_getSchedule", json!([id])) {
        Ok(v) => Ok(Some(serde_json::from_value(v)?)),
        Err(e) if e.to_string().contains("not found") => Ok(None),
        Err(e) => Err(e),
    }
}

impl ScheduleArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let rpc = self.node.rpc()?;
        let key = self.node.key()?;
        let (reply, input) = task_input(&rpc, &self.model_id, &self.input, self.encrypt)?;
        let run_fee = reply.model.fee(self.node.gas_price);
        let deposit = self.deposit.unwrap_or(run_fee * self.count as u128);
        let kind = TxKind::ScheduleTask {
            model_id: reply.model.model_id.clone(),
            gas_limit: reply.model.gas,
            input,
            every: self.every,
            count: self.count,
            deposit,
        };
        let tx = rpc.sign(&key, self.node.gas_price, kind)?;
        let id: String = rpc.call_as("lc_sendTransaction", json!([tx]))?;
        let scheduled = Scheduled {
            schedule_id: id.clone(),
            model_id: reply.model.model_id,
            every: self.every,
            count: self.count,
            deposit,
            run_fee,
        };
        if !self.wait {
            return shell.emit(&scheduled);
        }
        if shell.json {
            println!(
                "{}",
                json!({"event": "scheduled", "schedule_id": id, "count": self.count, "every": self.every})
            );
        } else {
            shell.emit(&scheduled)?;
        }
        follow(&rpc, &id, shell)
    }
}

/// Follows a schedule until it ends and every run it started is done: a line per run (a JSON
/// line with --json); an error when it stopped early or a run failed.
fn follow(rpc: &Rpc, id: &str, shell: &Shell) -> anyhow::Result<()> {
    let mut reported = BTreeSet::new();
    let mut failed = 0usize;
    let mut last_change = Instant::now();
    loop {
        let Some(s) = get_schedule(rpc, id)? else {
            anyhow::ensure!(
                last_change.elapsed() < Duration::from_secs(60),
                "schedule {id} is not in a block after 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        for (i, run) in s.runs.iter().enumerate() {
            if reported.contains(run) {
                continue;
            }
            let t: TaskReply = rpc.call_as("lc_getTask", json!([run]))?;
            let TaskReply::Known { task, receipt } = &t else {
                continue;
            };
            let line = match &task.status {
                TaskStatus::Pending { .. } => continue,
                TaskStatus::Completed { height, executor } => {
                    let outputs = receipt.as_ref().map(|r| r.outputs_float.clone());
                    json!({"event": "run", "schedule_id": id, "run": i + 1, "count": s.count,
                           "task_id": run, "status": "completed", "block_height": height,
                           "executor": executor, "outputs": outputs})
                }
                TaskStatus::Failed { reason, .. } => {
                    failed += 1;
                    json!({"event": "run", "schedule_id": id, "run": i + 1, "count": s.count,
                           "task_id": run, "status": "failed", "reason": reason})
                }
            };
            reported.insert(run.clone());
            last_change = Instant::now();
            if shell.json {
                println!("{line}");
            } else if !shell.quiet {
                println!(
                    "run {}/{}  {}  {}{}",
                    i + 1,
                    s.count,
                    run,
                    line["status"].as_str().unwrap_or(""),
                    match (&line["block_height"], &line["outputs"]) {
                        (h, o) if !h.is_null() => format!(" at block {h}, outputs {o}"),
                        _ => format!(": {}", line["reason"].as_str().unwrap_or("")),
                    }
                );
            }
        }
        let active = s.status == ScheduleStatus::Active;
        if !active && s.runs.iter().all(|r| reported.contains(r)) {
            return finish(&s, failed, shell);
        }
        anyhow::ensure!(
            last_change.elapsed() < STALL,
            "schedule {id}: no run completed in {} s",
            STALL.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(s: &Schedule, failed: usize, shell: &Shell) -> anyhow::Result<()> {
    let (status, reason) = match &s.status {
        ScheduleStatus::Stopped { reason } => ("stopped", Some(reason.clone())),
        ScheduleStatus::Cancelled { height } => {
            ("cancelled", Some(format!("cancelled at block {height}")))
        }
        ScheduleStatus::Finished => ("finished", None),
        ScheduleStatus::Active => ("active", None),
    };
    if shell.json {
        println!(
            "{}",
            json!({"event": "end", "schedule_id": s.id, "status": status, "runs": s.runs.len(),
                   "count": s.count, "failed": failed, "reason": reason})
        );
    } else if !shell.quiet {
        println!(
            "schedule {} {status} after {} of {} runs",
            s.id,
            s.runs.len(),
            s.count
        );
    }
    if let ScheduleStatus::Stopped { reason } = &s.status {
        bail!("schedule {} stopped: {reason}", s.id);
    }
    anyhow::ensure!(failed == 0, "{failed} run(s) of schedule {} failed", s.id);
    Ok(())
}

#[derive(Serialize)]
struct Cancelled {
    schedule_id: String,
    runs: usize,
    count: u32,
    status: ScheduleStatus,
    #[serde(with = "lightchain_devnet::chain::dec")]
    refunded: u128,
}

impl Human for Cancelled {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "cancelled schedule {} after {} of {} runs; refunded {}\n",
            self.schedule_id,
            self.runs,
            self.count,
            thousands_u128(self.refunded)
        ));
    }
}

/// `task cancel`: sends the cancellation and waits until a block applies it.
pub fn cancel(id: &str, node: &NodeArgs, shell: &Shell) -> anyhow::Result<()> {
    let rpc = node.rpc()?;
    let key = node.key()?;
    // A schedule sent a moment ago may not be in a block yet.
    let start = Instant::now();
    let before = loop {
        match get_schedule(&rpc, id)? {
            Some(s) => break s,
            None if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            None => bail!("schedule {id} not found"),
        }
    };
    anyhow::ensure!(
        before.status == ScheduleStatus::Active,
        "schedule {id} is not active ({})",
        serde_json::to_value(&before.status)?["status"]
            .as_str()
            .unwrap_or("")
    );
    let kind = TxKind::CancelSchedule {
        schedule_id: id.to_string(),
    };
    let tx = rpc.sign(&key, node.gas_price, kind)?;
    let _: String = rpc.call_as("lc_sendTransaction", json!([tx]))?;
    let start = Instant::now();
    loop {
        let Some(s) = get_schedule(&rpc, id)? else {
            bail!("schedule {id} disappeared from the node (a revert?)");
        };
        if s.status != ScheduleStatus::Active {
            anyhow::ensure!(
                matches!(s.status, ScheduleStatus::Cancelled { .. }),
                "schedule {id} ended before the cancellation applied"
            );
            // The deposit left when the cancellation applied (runs started since took theirs).
            let started = (s.runs.len() - before.runs.len()) as u128;
            return shell.emit(&Cancelled {
                schedule_id: id.to_string(),
                runs: s.runs.len(),
                count: s.count,
                status: s.status,
                refunded: before.deposit.saturating_sub(started * before.run_fee()),
            });
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the cancellation of schedule {id} is not in a block after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
