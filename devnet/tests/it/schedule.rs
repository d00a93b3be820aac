//! Recurring tasks: the chain starts a run every N blocks, M times, each paid from a deposit,
//! proven and receipted like a submitted task; a schedule stops cleanly when its deposit runs
//! out or its owner cancels it, and every unit of the deposit is accounted for.

use lightchain_devnet::chain::exec::run_id;
use lightchain_devnet::chain::state::{Schedule, ScheduleStatus};
use lightchain_devnet::{DevnetApi, spawn};

use crate::{config, eventually, input, package};

fn supply(api: &DevnetApi) -> u128 {
    api.with_view(|v| v.state.supply())
}

/// Waits until the schedule is no longer active and every run it started has a receipt.
fn settled(api: &DevnetApi, id: &str) -> Schedule {
    eventually("the schedule to settle", || {
        api.schedule(id).is_some_and(|s| {
            s.status != ScheduleStatus::Active && s.runs.iter().all(|r| api.receipt(r).is_some())
        })
    });
    api.schedule(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_runs_every_n_blocks_count_times_then_finishes() {
    let (api, handle) = spawn(config()).await;
    let owner = handle.dev_accounts()[1].key();
    let base = config().chain.base_gas as u128;
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&owner, package("digits")).unwrap();
        let gas = api.model(&model).unwrap().gas as u128;
        let (before, total) = (api.balance(&owner.address()).balance, supply(&api));
        let id = api
            .schedule_task(
                &owner,
                &model,
                input("digits", "seven.json"),
                (2, 3),
                None,
                1,
            )
            .unwrap();
        let s = settled(&api, &id);
        assert_eq!(s.status, ScheduleStatus::Finished);
        assert_eq!(s.runs.len(), 3);
        let mut heights = Vec::new();
        for (i, run) in s.runs.iter().enumerate() {
            assert_eq!(*run, run_id(&id, i), "run ids follow from the schedule");
            let task = api.task(run).unwrap();
            assert_eq!(task.schedule.as_deref(), Some(id.as_str()));
            assert_eq!(task.submitter, owner.address());
            let receipt = api.receipt(run).unwrap();
            assert!(!receipt.proof.is_empty() && !receipt.verified_by.is_empty());
            let predicted = (0..10)
                .max_by(|&a, &b| {
                    receipt.outputs_float[0][a].total_cmp(&receipt.outputs_float[0][b])
                })
                .unwrap();
            assert_eq!(predicted, 7);
            heights.push(task.submitted_height);
        }
        assert_eq!(heights, [heights[0], heights[0] + 2, heights[0] + 4]);
        // Paid: the scheduling transaction and three runs, nothing more; the deposit (exactly
        // three runs by default) is used up; nothing was created or destroyed.
        assert_eq!(s.deposit, 0);
        let after = api.balance(&owner.address()).balance;
        assert_eq!(before - after, base + 3 * gas);
        assert_eq!(supply(&api), total);
        // Finished: it starts no more runs.
        let h = api.status().height;
        eventually("two more blocks", || {
            api.mine().unwrap();
            api.status().height >= h + 2
        });
        assert_eq!(api.schedule(&id).unwrap().runs.len(), 3);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_too_small_for_every_run_stops_with_its_reason() {
    let (api, handle) = spawn(config()).await;
    let owner = handle.dev_accounts()[2].key();
    let base = config().chain.base_gas as u128;
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&owner, package("digits")).unwrap();
        let gas = api.model(&model).unwrap().gas as u128;
        let before = api.balance(&owner.address()).balance;
        // Two and a half runs' worth for three runs.
        let deposit = 2 * gas + gas / 2;
        let id = api
            .schedule_task(
                &owner,
                &model,
                input("digits", "seven.json"),
                (1, 3),
                Some(deposit),
                1,
            )
            .unwrap();
        let s = settled(&api, &id);
        let ScheduleStatus::Stopped { reason } = &s.status else {
            panic!("{:?}", s.status);
        };
        assert_eq!(
            reason,
            &format!(
                "the deposit ran out after 2 of 3 runs: {} left, a run costs {gas}",
                gas / 2
            )
        );
        assert_eq!(s.runs.len(), 2);
        // The half run left was refunded.
        let after = api.balance(&owner.address()).balance;
        assert_eq!(before - after, base + 2 * gas);

        // A deposit below one run, and intervals or counts out of range, are refused.
        let e = api
            .schedule_task(
                &owner,
                &model,
                input("digits", "seven.json"),
                (1, 3),
                Some(gas - 1),
                1,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("does not pay for one run ({gas})")),
            "{e}"
        );
        for (every, count, says) in [(0, 3, "interval must be"), (1, 0, "1 to 100000 runs")] {
            let e = api
                .schedule_task(
                    &owner,
                    &model,
                    input("digits", "seven.json"),
                    (every, count),
                    None,
                    1,
                )
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
        // An input that does not fit the model is refused when scheduled, not at every run.
        let bad = serde_json::json!({"inputs": {"x": [[1.0, 2.0]]}});
        let e = api
            .schedule_task(&owner, &model, bad, (1, 1), None, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid input"), "{e}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_cancels_a_schedule_and_gets_the_rest_back() {
    let (api, handle) = spawn(config()).await;
    let owner = handle.dev_accounts()[3].key();
    let other = handle.dev_accounts()[4].key();
    let base = config().chain.base_gas as u128;
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&owner, package("digits")).unwrap();
        let gas = api.model(&model).unwrap().gas as u128;
        let (before, total) = (api.balance(&owner.address()).balance, supply(&api));
        let id = api
            .schedule_task(
                &owner,
                &model,
                input("digits", "seven.json"),
                (50, 1000),
                None,
                1,
            )
            .unwrap();
        eventually("the first run", || {
            api.schedule(&id)
                .is_some_and(|s| s.runs.first().is_some_and(|r| api.receipt(r).is_some()))
        });
        let e = api.cancel_schedule(&other, &id, 1).unwrap_err().to_string();
        assert!(e.contains("only the schedule's owner"), "{e}");
        api.cancel_schedule(&owner, &id, 1).unwrap();
        let s = settled(&api, &id);
        assert!(
            matches!(s.status, ScheduleStatus::Cancelled { .. }),
            "{s:?}"
        );
        let runs = s.runs.len();
        assert!(runs >= 1);
        assert_eq!(s.deposit, 0);
        let after = api.balance(&owner.address()).balance;
        assert_eq!(before - after, 2 * base + runs as u128 * gas);
        assert_eq!(supply(&api), total);
        let e = api.cancel_schedule(&owner, &id, 1).unwrap_err().to_string();
        assert!(e.contains("is not active"), "{e}");
        let e = api
            .cancel_schedule(&owner, "00ff", 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule 00ff not found"), "{e}");
    });
}
