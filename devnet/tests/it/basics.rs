//! The chain's basic promises: proven tasks committed on every validator alike, wrong results
//! never committed, a killed validator not stopping the chain, restarts from `--state`, block
//! time mode and transfers.

use std::time::Duration;

use lightchain_aivm::proof::{ParamsCache, Proof};
use lightchain_devnet::chain::exec;
use lightchain_devnet::chain::runtime::{Accepted, ResultError};
use lightchain_devnet::chain::state::TaskStatus;
use lightchain_devnet::chain::{Block, Claim, TaskResult};
use lightchain_devnet::chain::{BlockError, ChainParams, Runtime, TxError};
use lightchain_devnet::validator::{Behavior, ValidatorKeys};
use lightchain_devnet::{DevnetError, spawn};

use crate::{WAIT, config, input, package, params_dir, rpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_proven_tasks_and_agree() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[0].key();
    let (_, model) = api.deploy(&key, package("digits")).unwrap();
    // An input outside the calibrated range could never be proven: refused at submission
    // (before any fee is held), without its values in the message.
    let mut huge = input("digits", "seven.json");
    for v in huge["inputs"]["x"][0].as_array_mut().unwrap() {
        *v = serde_json::json!(1.0e6);
    }
    let err = api.submit_task(&key, &model, huge, false, 2).unwrap_err();
    assert!(
        matches!(err, DevnetError::Refused(TxError::InvalidInput(_))),
        "{err}"
    );
    let err = err.to_string();
    assert!(err.contains("calibrated"), "{err}");
    assert!(!err.contains("1000000"), "{err}");
    let mut ids = vec![];
    for f in ["seven.json", "six.json", "three.json"] {
        ids.push(
            api.submit_task(&key, &model, input("digits", f), false, 2)
                .unwrap(),
        );
    }
    let pkg = lightchain_packager::load(&package("digits")).unwrap();
    let verifier = pkg.keys(&ParamsCache { dir: params_dir() }, false).unwrap();
    for (id, label) in ids.iter().zip([7usize, 6, 3]) {
        let r = api.wait_receipt(id, WAIT).unwrap();
        // The proof verifies offline, with keys rebuilt from the package alone.
        let proof = Proof::from_bytes(&r.proof).unwrap();
        verifier.verify(&proof).unwrap();
        assert_eq!(proof.outputs, r.outputs);
        let out = &r.outputs_float[0];
        let best = (0..out.len())
            .max_by(|&a, &b| out[a].total_cmp(&out[b]))
            .unwrap();
        assert_eq!(best, label);
        // A quorum (3 of 4) signed the commit; all of them but the executor are listed.
        assert!(
            r.verified_by.len() >= 2 && !r.verified_by.contains(&r.executor),
            "verified by {:?}, executor {}",
            r.verified_by,
            r.executor
        );
        assert_eq!(r.gas_used, api.model(&model).unwrap().gas);
        assert_eq!(r.fee, r.gas_used as u128 * 2);
    }
    // Every validator holds the same block at every height.
    api.mine().unwrap();
    let views = api.views();
    let h = views.iter().map(|v| v.state.height).min().unwrap();
    assert!(h >= 3);
    for height in 0..h as usize {
        let hashes: Vec<[u8; 32]> = views.iter().map(|v| v.blocks[height].hash).collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "height {}: {:?}",
            height + 1,
            hashes
        );
    }
    // The executors were paid.
    let fees: u128 = ids.iter().map(|id| api.receipt(id).unwrap().fee).sum();
    let paid: u128 = api
        .validators()
        .iter()
        .map(|v| api.balance(&v.account).balance)
        .sum();
    assert!(paid >= fees);

    // A committed result cannot be applied again, even by a validator that checked it before
    // (proof checks are cached; the task's state is checked every time).
    let view = &views[0];
    let r = view
        .blocks
        .iter()
        .flat_map(|b| b.block.results.iter())
        .find(|r| r.task_id == ids[0])
        .unwrap()
        .clone();
    let rt = Runtime::new(ParamsCache { dir: params_dir() });
    rt.load_package(&package("digits")).unwrap();
    let mut pending = view.state.clone();
    pending.tasks.get_mut(&r.task_id).unwrap().status = TaskStatus::Pending {
        attempt: r.attempt,
        executor: r.executor,
        since_ms: pending.last_timestamp_ms,
        deadline_ms: pending.last_timestamp_ms + 60_000,
    };
    assert_eq!(rt.check_result(&pending, &r), Ok(Accepted::Proven));
    assert!(
        matches!(rt.check_result(&view.state, &r), Err(ResultError::Stale(_))),
        "a completed task's result was accepted again"
    );
    // Nor twice in one block: the second copy is stale once the first completed the task.
    let block = Block {
        height: pending.height + 1,
        parent: pending.last_hash,
        timestamp_ms: pending.last_timestamp_ms,
        proposer: 0,
        txs: vec![],
        results: vec![r.clone(), r.clone()],
        evidence: vec![],
        reassign: vec![],
        state_root: [0; 32],
    };
    let err = exec::apply(&rt, &ChainParams::default(), &mut pending.clone(), &block).unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::Result {
                error: ResultError::Stale(_),
                ..
            }
        ),
        "{err}"
    );
    // A changed output without the executor's signature is nobody's offence (stale); signed
    // by the executor it fails its proof check and is evidence (invalid).
    let mut wrong = r.clone();
    if let Claim::Proof { outputs, .. } = &mut wrong.claim {
        outputs[0][0] += 1;
    }
    assert!(matches!(
        rt.check_result(&pending, &wrong),
        Err(ResultError::Stale(_))
    ));
    wrong.signature = ValidatorKeys::new(
        r.executor,
        lightchain_devnet::crypto::random_encryption_key(),
    )
    .account
    .sign(&TaskResult::sign_bytes(
        &pending.chain_id,
        &wrong.task_id,
        wrong.attempt,
        wrong.executor,
        &wrong.claim,
    ));
    assert!(matches!(
        rt.check_result(&pending, &wrong),
        Err(ResultError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_results_are_never_committed_and_tasks_complete_elsewhere() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[1].key();
    let (_, model) = api.deploy(&key, package("digits")).unwrap();
    api.mine().unwrap();
    // Find tasks whose first executor is validator 1, which lies about its outputs, and
    // validator 2, whose proofs are corrupted.
    api.set_behavior(1, Behavior::WrongOutput).unwrap();
    api.set_behavior(2, Behavior::CorruptProof).unwrap();
    let mut ids = vec![];
    for f in [
        "seven.json",
        "six.json",
        "three.json",
        "seven.json",
        "six.json",
        "three.json",
    ] {
        ids.push(
            api.submit_task(&key, &model, input("digits", f), false, 1)
                .unwrap(),
        );
    }
    for id in &ids {
        let r = api.wait_receipt(id, WAIT).unwrap();
        assert!(
            r.executor == 0 || r.executor == 3,
            "a faulty executor's result was committed: {r:?}"
        );
    }
    let state = api.view().state;
    let offences: Vec<_> = state.evidence.iter().map(|e| e.executor).collect();
    assert!(offences.iter().all(|&e| e == 1 || e == 2), "{offences:?}");
    // Tasks first assigned to a faulty validator were retried and their offence recorded.
    let retried = ids
        .iter()
        .filter(|id| api.receipt(id).unwrap().attempts > 1)
        .count();
    assert_eq!(retried, offences.len());
    assert!(
        retried > 0,
        "no task went to a faulty validator: try more tasks"
    );
    for e in &state.evidence {
        assert!(e.slashed > 0);
        assert!(state.validators[e.executor].penalties > 0);
    }
    for id in &ids {
        assert!(matches!(
            api.task(id).unwrap().status,
            TaskStatus::Completed { .. }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_killed_validator_does_not_stop_the_chain() {
    let (api, handle) = spawn(config().with_task_timeout(Some(Duration::from_millis(1500)))).await;
    let key = handle.dev_accounts()[2].key();
    api.kill(3).unwrap();
    let (_, model) = api.deploy(&key, package("digits")).unwrap();
    let mut ids = vec![];
    for f in ["seven.json", "six.json", "three.json", "seven.json"] {
        ids.push(
            api.submit_task(&key, &model, input("digits", f), false, 1)
                .unwrap(),
        );
    }
    for id in &ids {
        let r = api.wait_receipt(id, WAIT).unwrap();
        assert_ne!(r.executor, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_state_keeps_height_models_balances_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config().with_state_dir(Some(dir.path().to_path_buf()));
    let (before, task, model, acct) = {
        let (api, handle) = spawn(cfg.clone()).await;
        let key = handle.dev_accounts()[3].key();
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        let task = api
            .submit_task(&key, &model, input("digits", "six.json"), false, 1)
            .unwrap();
        api.wait_receipt(&task, WAIT).unwrap();
        api.mine().unwrap();
        let acct = handle.dev_accounts()[3].address;
        (api.view(), task, model, acct)
    };
    let (api, handle) = spawn(cfg).await;
    let after = api.view();
    assert_eq!(after.state.height, before.state.height);
    assert_eq!(after.state.root(), before.state.root());
    assert_eq!(api.model(&model), before.state.models.get(&model).cloned());
    assert_eq!(api.balance(&acct), before.state.account(&acct));
    // The receipt is unchanged; which quorum of validators signed its block's commit is what
    // the validator that stored it saw (any 3 of 4), so it is compared as a quorum.
    let (mut r1, mut r0) = (
        api.receipt(&task).unwrap(),
        before.receipts.get(&task).cloned().unwrap(),
    );
    assert!(r1.verified_by.len() >= 2 && r0.verified_by.len() >= 2);
    r1.verified_by.clear();
    r0.verified_by.clear();
    assert_eq!(r1, r0);
    // And it keeps going from there.
    let key = handle.dev_accounts()[3].key();
    let t2 = api
        .submit_task(&key, &model, input("digits", "three.json"), false, 1)
        .unwrap();
    let r = api.wait_receipt(&t2, WAIT).unwrap();
    assert!(r.block_height > before.state.height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_time_mode_mines_on_a_clock() {
    let (api, _handle) = spawn(config().with_block_time(Some(Duration::from_millis(150)))).await;
    let start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let h = api.status().height;
    let per = start.elapsed().as_millis() as u64 / h.max(1);
    assert!(h >= 3, "only {h} blocks in 1.2 s");
    assert!(
        per >= 100,
        "blocks faster than the block time: every {per} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_move_balances_and_overdrafts_are_refused() {
    let (api, handle) = spawn(config()).await;
    let url = handle.rpc_url().unwrap();
    let from = handle.dev_accounts()[6].key();
    let to = lightchain_devnet::crypto::AccountKey::from_secret([9; 32]).address();
    let before = api.balance(&from.address()).balance;
    // More than a u64 can hold: amounts travel as decimal strings.
    let amount: u128 = 10u128.pow(20) + 7;
    let tx = |nonce: u64, amount: u128| {
        lightchain_devnet::chain::TxBody {
            from: from.public(),
            nonce,
            gas_price: 3,
            kind: lightchain_devnet::chain::TxKind::Transfer { to, amount },
        }
        .sign(&from, api.chain_id())
    };
    let sent = rpc(
        &url,
        "lc_sendTransaction",
        serde_json::json!([tx(0, amount)]),
    )
    .await;
    assert!(sent["error"].is_null(), "{sent}");
    let api2 = api.clone();
    tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        while api2.balance(&to).balance == 0 {
            assert!(start.elapsed() < WAIT, "the transfer was never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    assert_eq!(api.balance(&to).balance, amount);
    let fee = 21_000u128 * 3;
    assert_eq!(api.balance(&from.address()).balance, before - amount - fee);
    let b = rpc(&url, "lc_getBalance", serde_json::json!([to.to_string()])).await;
    assert_eq!(b["result"]["balance"], amount.to_string());
    // An overdraft, and an amount whose sum with the fee overflows, are refused at submission.
    for too_much in [before, u128::MAX] {
        let r = rpc(
            &url,
            "lc_sendTransaction",
            serde_json::json!([tx(1, too_much)]),
        )
        .await;
        let msg = r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            msg.contains("insufficient balance") || msg.contains("overflows"),
            "{r}"
        );
    }
    assert_eq!(api.balance(&to).balance, amount);
}
