//! Time, crashes and misbehaviour: a task after an idle minute, deadlines that scale with the
//! model, a crashed validator that comes back and syncs what it missed, its write-ahead log,
//! storage that fails, a deployment that cannot poison a validator, slashing that costs votes
//! and jails, and Byzantine validators the chain survives.

use std::time::Duration;

use lightchain_aivm::circuit::Visibility;
use lightchain_devnet::chain::ChainParams;
use lightchain_devnet::chain::params::deployment_id;
use lightchain_devnet::chain::state::TaskStatus;
use lightchain_devnet::chain::{TxBody, TxKind};
use lightchain_devnet::consensus::node::validator_set;
use lightchain_devnet::validator::Behavior;
use lightchain_devnet::{DevnetApi, spawn};

use crate::{WAIT, config, copy_dir, eventually, input, package, repo};

/// Deploys digits and runs one task to completion; returns the model id.
fn one_task(api: &DevnetApi, account: usize, model: Option<&str>) -> String {
    let key = api.dev_accounts()[account].key();
    let model = match model {
        Some(m) => m.to_string(),
        None => api.deploy(&key, package("digits")).unwrap().1,
    };
    let id = api
        .submit_task(&key, &model, input("digits", "seven.json"), false, 1)
        .unwrap();
    api.wait_receipt(&id, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completes_after_an_idle_minute() {
    // Deadlines count from the block that assigns a task; counted from the block before it,
    // a minute of idle chain timed every new task out at once (with one validator: failed).
    let (one, _h1) = spawn(config().with_validators(1).with_task_timeout(None)).await;
    let (four, _h4) = spawn(config().with_task_timeout(None)).await;
    tokio::task::block_in_place(|| {
        let m1 = one_task(&one, 0, None);
        let m4 = one_task(&four, 0, None);
        std::thread::sleep(Duration::from_secs(65));
        one_task(&one, 0, Some(&m1));
        one_task(&four, 0, Some(&m4));
        // An hour of chain time, moved at once, changes nothing either.
        one.increase_time(3600);
        one_task(&one, 0, Some(&m1));
        let failed = one
            .view()
            .state
            .tasks
            .values()
            .filter(|t| !matches!(t.status, TaskStatus::Completed { .. }))
            .count();
        assert_eq!(failed, 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_deadline_scales_with_its_models_gas() {
    let (api, handle) = spawn(config().with_task_timeout(None)).await;
    let key = handle.dev_accounts()[1].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        let gas = api.model(&model).unwrap().gas;
        let id = api
            .submit_task(&key, &model, input("digits", "six.json"), false, 1)
            .unwrap();
        eventually("the task in a block", || api.task(&id).is_some());
        let t = api.task(&id).unwrap();
        let expected = ChainParams::default().task_timeout(gas);
        assert_eq!(expected, 30_000 + gas * 10 / 1000);
        match t.status {
            TaskStatus::Pending {
                since_ms,
                deadline_ms,
                ..
            } => assert_eq!(deadline_ms - since_ms, expected),
            TaskStatus::Completed { .. } => {}
            other => panic!("{other:?}"),
        }
        api.wait_receipt(&id, WAIT).unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_validator_comes_back_and_syncs_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config()
        .with_task_timeout(Some(Duration::from_millis(2000)))
        .with_state_dir(Some(dir.path().to_path_buf()));
    let (api, _handle) = spawn(cfg).await;
    tokio::task::block_in_place(|| {
        let model = one_task(&api, 2, None);
        api.kill(3).unwrap();
        let before = api.views()[3].state.height;
        for _ in 0..3 {
            one_task(&api, 2, Some(&model));
        }
        for _ in 0..5 {
            api.mine().unwrap();
        }
        let top = api.status().height;
        assert!(top >= before + 8, "{before} -> {top}");
        assert_eq!(
            api.views()[3].state.height,
            before,
            "a crashed validator moved"
        );
        // Back: it syncs the blocks it missed from the others and checks their certificates.
        api.revive(3).unwrap();
        eventually("validator 3 caught up", || {
            api.views()[3].state.height >= top
        });
        let views = api.views();
        for h in 0..top as usize {
            let hashes: std::collections::BTreeSet<[u8; 32]> =
                views.iter().map(|v| v.blocks[h].hash).collect();
            assert_eq!(hashes.len(), 1, "height {}", h + 1);
        }
        assert!(views[3].blocks[top as usize - 1].signatures.len() >= 3);
        // And it takes part again: blocks commit with it online.
        one_task(&api, 2, Some(&model));
        // Every validator logged its heights to its WAL.
        for i in 0..4 {
            let wal = dir.path().join("wal").join(format!("validator-{i}.wal"));
            assert!(std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0), "{i}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_fails_stops_validators_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _handle) = spawn(config().with_state_dir(Some(dir.path().to_path_buf()))).await;
    tokio::task::block_in_place(|| {
        let h = api.mine().unwrap();
        api.fail_storage(true).unwrap();
        for i in 0..4 {
            api.network().send(
                lightchain_devnet::net::API,
                i,
                lightchain_devnet::net::NetMsg::Mine,
            );
        }
        eventually("validators to stop", || api.status().stopped.len() == 4);
        let stopped = api.status().stopped;
        assert!(
            stopped
                .iter()
                .all(|(_, why)| why.contains("cannot store block")),
            "{stopped:?}"
        );
        // They stopped instead of going on with a block they could not keep.
        assert!(api.views().iter().all(|v| v.state.height == h));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_visibility_is_part_of_a_models_identity_and_refusals_poison_nothing() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[4].key();
    // The same program packaged with hashed inputs.
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("digits");
    copy_dir(&repo().join("templates/digits"), &project);
    let manifest = project.join("lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = if text.contains("input_visibility") {
        text.replace(
            "input_visibility = \"public\"",
            "input_visibility = \"hashed\"",
        )
    } else {
        text.replace("[proving]", "[proving]\ninput_visibility = \"hashed\"")
    };
    std::fs::write(&manifest, text).unwrap();
    let (hashed, pkg) = lightchain_packager::build(
        &project,
        &lightchain_aivm::proof::ParamsCache {
            dir: crate::params_dir(),
        },
        false,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(pkg.info.input_visibility, Visibility::Hashed);
    tokio::task::block_in_place(|| {
        let (_, public) = api.deploy(&key, package("digits")).unwrap();
        // The same deployment again is refused, and poisons nothing.
        let again = api.deploy(&key, package("digits"));
        assert!(again.is_err());
        let (_, hashed_id) = api.deploy(&key, hashed).unwrap();
        assert_ne!(public, hashed_id);
        assert_eq!(
            hashed_id,
            deployment_id(&pkg.info.model_id, Visibility::Hashed)
        );
        assert_eq!(
            api.model(&public).unwrap().program_id,
            api.model(&hashed_id).unwrap().program_id
        );
        // Both run, and every validator agrees on the proofs of both.
        one_task(&api, 4, Some(&public));
        let id = api
            .submit_task(&key, &hashed_id, input("digits", "six.json"), true, 1)
            .unwrap();
        api.wait_receipt(&id, WAIT).unwrap();
        api.mine().unwrap();
        let views = api.views();
        assert!(views.iter().all(|v| v.fatal.is_none()));
        assert!(
            views.iter().all(|v| v.state.root() == views[0].state.root()
                || v.state.height != views[0].state.height)
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_executor_loses_stake_votes_and_work_until_it_unjails() {
    let mut cfg = config();
    cfg.chain.jail_blocks = 3;
    let (api, handle) = spawn(cfg).await;
    let key = handle.dev_accounts()[5].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        api.set_behavior(1, Behavior::WrongOutput).unwrap();
        // Tasks until one goes to validator 1 first.
        let mut n = 0;
        while api.view().state.evidence.is_empty() {
            one_task(&api, 5, Some(&model));
            n += 1;
            assert!(n < 20, "no task went to validator 1");
        }
        let state = api.view().state;
        let v1 = &state.validators[1];
        assert!(v1.jailed_until.is_some() && v1.penalties == 1);
        assert!(v1.stake < state.validators[0].stake);
        assert!(state.burned > 0);
        // Fewer votes: its voting power follows its stake.
        let params = ChainParams::default();
        let set = validator_set(&state, &params);
        let power = |i: usize| {
            set.validators
                .iter()
                .find(|v| v.public_key.as_bytes() == &state.validators[i].consensus_key)
                .unwrap()
                .voting_power
        };
        assert!(power(1) < power(0));
        // Jailed: no task goes to it.
        api.set_behavior(1, Behavior::Honest).unwrap();
        for _ in 0..6 {
            one_task(&api, 5, Some(&model));
        }
        let assigned_to_1 = api
            .view()
            .state
            .tasks
            .values()
            .filter(|t| matches!(t.status, TaskStatus::Completed { executor: 1, .. }))
            .count();
        assert_eq!(assigned_to_1, 0);
        // Its own account unjails it once the term is over; only its own.
        let v1_key = lightchain_devnet::crypto::AccountKey::from_secret(
            lightchain_devnet::crypto::dev_secret("validator account", 1),
        );
        let unjail = |k: &lightchain_devnet::crypto::AccountKey| {
            TxBody {
                from: k.public(),
                nonce: api.next_nonce(&k.address()),
                gas_price: 0,
                kind: TxKind::Unjail { validator: 1 },
            }
            .sign(k, api.chain_id())
        };
        assert!(api.send_transaction(unjail(&key)).is_err());
        api.mine().unwrap();
        api.mine().unwrap();
        api.send_transaction(unjail(&v1_key)).unwrap();
        eventually("validator 1 unjailed", || {
            api.view().state.validators[1].jailed_until.is_none()
        });
    });
}

/// The chain keeps committing, and every honest validator agrees, with one validator of four
/// misbehaving in consensus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byzantine_validators_do_not_split_or_stop_the_chain() {
    for b in [
        Behavior::EquivocatingProposer,
        Behavior::DoubleVote,
        Behavior::InvalidBlock,
        Behavior::WithholdVotes,
    ] {
        let (api, handle) = spawn(config().with_behavior(0, b)).await;
        let key = handle.dev_accounts()[6].key();
        tokio::task::block_in_place(|| {
            let (_, model) = api.deploy(&key, package("digits")).unwrap();
            for _ in 0..2 {
                one_task(&api, 6, Some(&model));
            }
            for _ in 0..4 {
                api.mine().unwrap();
            }
            let views = api.views();
            let h = views.iter().map(|v| v.blocks.len()).min().unwrap();
            assert!(h >= 7, "{b:?}: only {h} blocks");
            for height in 0..h {
                let hashes: std::collections::BTreeSet<[u8; 32]> =
                    views.iter().map(|v| v.blocks[height].hash).collect();
                assert_eq!(hashes.len(), 1, "{b:?} forked at height {}", height + 1);
            }
        });
    }
}

/// A task acknowledged while only two validators ran (no quorum: it waits in their mempools),
/// then those two killed (their mempools gone) and everybody revived: the task is not lost,
/// because the API sends what it acknowledged and no block took yet to revived validators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_held_only_by_killed_validators_is_not_lost() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[4].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        api.kill(2).unwrap();
        api.kill(3).unwrap();
        let id = api
            .submit_task(&key, &model, input("digits", "seven.json"), false, 1)
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(api.receipt(&id).is_none());
        api.kill(0).unwrap();
        api.kill(1).unwrap();
        for v in [2, 3, 0, 1] {
            api.revive(v).unwrap();
        }
        let r = api.wait_receipt(&id, WAIT).unwrap();
        assert_eq!(r.task_id, id);
    });
}
