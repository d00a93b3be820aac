//! Recurring tasks: a `ScheduleTask` transaction escrows a deposit; from the block that takes
//! it, the chain opens a run (a task like a submitted one, paid from the deposit) every
//! `every` blocks, `count` times, until its owner cancels it or the deposit cannot pay a run.

use lightchain_aivm::wire::W;

use super::error::TxError;
use super::exec::{Moment, NewTask, assign, check_task, credit, debit, open_task};
use super::params::ChainParams;
use super::runtime::Runtime;
use super::state::{Schedule, ScheduleStatus, State};
use super::{Address, SignedTx, TaskInput};
use crate::crypto;

/// Opens a schedule: the task is checked as a submission is, the interval and count are in
/// range, the deposit pays at least one run; the deposit and `fee` (the transaction's, for the
/// proposer) are taken from the sender.
pub(super) fn open(
    rt: &Runtime,
    state: &mut State,
    tx: &SignedTx,
    at: Moment,
    (model_id, gas_limit, input): (&str, u64, &TaskInput),
    (every, count, deposit): (u64, u32, u128),
    fee: u128,
) -> Result<(), TxError> {
    let from = tx.body.sender();
    let model = check_task(rt, state, model_id, gas_limit, input)?;
    if rt.package(&model).is_some_and(|p| p.program.state) {
        return Err(TxError::BadSchedule(
            "a stateful model's tasks are not scheduled: each run would have to wait for the state the last one writes".into(),
        ));
    }
    if !(1..=MAX_EVERY).contains(&every) {
        return Err(TxError::BadSchedule(format!(
            "a run every {every} blocks: the interval must be 1 to {MAX_EVERY} blocks"
        )));
    }
    if !(1..=MAX_RUNS).contains(&count) {
        return Err(TxError::BadSchedule(format!(
            "{count} runs: a schedule has 1 to {MAX_RUNS} runs"
        )));
    }
    let run_fee = model.fee(tx.body.gas_price);
    if deposit < run_fee {
        return Err(TxError::DepositTooSmall { deposit, run_fee });
    }
    debit(
        state,
        &from,
        fee.checked_add(deposit).ok_or(TxError::Overflow)?,
    )?;
    let id = crypto::hex(&tx.hash());
    state.schedules.insert(
        id.clone(),
        Schedule {
            id,
            owner: from,
            model_id: model_id.to_string(),
            gas: model.gas,
            gas_price: tx.body.gas_price,
            input: input.clone(),
            every,
            count,
            runs: vec![],
            next_height: at.height,
            deposit,
            status: ScheduleStatus::Active,
        },
    );
    Ok(())
}

/// Cancels an active schedule of `from`'s, taking `fee` and refunding the deposit left.
pub(super) fn cancel(
    state: &mut State,
    from: &Address,
    id: &str,
    fee: u128,
    at: Moment,
) -> Result<(), TxError> {
    let sched = state
        .schedules
        .get(id)
        .ok_or_else(|| TxError::UnknownSchedule(id.to_string()))?;
    if sched.owner != *from {
        return Err(TxError::NotScheduleOwner);
    }
    if sched.status != ScheduleStatus::Active {
        return Err(TxError::ScheduleNotActive(id.to_string()));
    }
    debit(state, from, fee)?;
    end_schedule(state, id, ScheduleStatus::Cancelled { height: at.height });
    Ok(())
}

/// Longest interval of a schedule, in blocks.
pub const MAX_EVERY: u64 = 1_000_000;
/// Most runs of one schedule.
pub const MAX_RUNS: u32 = 100_000;

/// The id of a schedule's run `n` (0-based): derived from the schedule, so every validator
/// opens the same task.
pub fn run_id(schedule_id: &str, n: usize) -> String {
    let mut w = W(Vec::new());
    w.str("lightchain-devnet schedule run v1");
    w.str(schedule_id);
    w.len(n);
    crypto::hex(blake3::hash(&w.0).as_bytes())
}

/// Ends a schedule with `status`, refunding what is left of its deposit to its owner.
fn end_schedule(state: &mut State, id: &str, status: ScheduleStatus) {
    let Some(s) = state.schedules.get_mut(id) else {
        return;
    };
    let (owner, left) = (s.owner, std::mem::take(&mut s.deposit));
    s.status = status;
    credit(state, &owner, left);
}

/// Starts the runs due at this block: each active schedule whose next height has come opens
/// a task paid from its deposit, or stops (the deposit cannot pay a run, or no validator can
/// execute); a schedule whose last run started is finished.
pub(super) fn run_schedules(p: &ChainParams, state: &mut State, at: Moment) {
    let due: Vec<String> = state
        .schedules
        .values()
        .filter(|s| s.status == ScheduleStatus::Active && s.next_height <= at.height)
        .map(|s| s.id.clone())
        .collect();
    for id in due {
        let s = state.schedules[&id].clone();
        let run_fee = s.run_fee();
        let done = s.runs.len();
        if s.deposit < run_fee {
            let reason = format!(
                "the deposit ran out after {done} of {} runs: {} left, a run costs {run_fee}",
                s.count, s.deposit
            );
            end_schedule(state, &id, ScheduleStatus::Stopped { reason });
            continue;
        }
        let Some(model) = state.models.get(&s.model_id).cloned() else {
            let reason = format!("model {} is not deployed", s.model_id);
            end_schedule(state, &id, ScheduleStatus::Stopped { reason });
            continue;
        };
        let task_id = run_id(&id, done);
        let Some(executor) = assign(state, &task_id, 0, &[]) else {
            let reason = format!("no validator could execute run {} of {}", done + 1, s.count);
            end_schedule(state, &id, ScheduleStatus::Stopped { reason });
            continue;
        };
        let task = NewTask {
            id: task_id.clone(),
            model: &model,
            submitter: s.owner,
            gas_price: s.gas_price,
            fee: run_fee,
            input: &s.input,
            schedule: Some(id.clone()),
        };
        open_task(p, state, task, executor, at);
        let sched = state.schedules.get_mut(&id).expect("due schedules exist");
        sched.deposit -= run_fee;
        sched.runs.push(task_id);
        sched.next_height = at.height + s.every;
        if sched.runs.len() >= s.count as usize {
            end_schedule(state, &id, ScheduleStatus::Finished);
        }
    }
}

/// Whether a schedule waits for a block: any active one (its next run needs the chain to
/// reach its height).
pub fn schedules_waiting(state: &State) -> bool {
    state
        .schedules
        .values()
        .any(|s| s.status == ScheduleStatus::Active)
}

/// Whether a schedule's run is due in the next block.
pub fn schedule_due(state: &State) -> bool {
    state
        .schedules
        .values()
        .any(|s| s.status == ScheduleStatus::Active && s.next_height <= state.height + 1)
}
