//! Devnet tests: validators in one process commit blocks with proven tasks, agree on every
//! block, reject bad results, survive restarts and keep encrypted inputs private.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use lightchain_aivm::proof::{ParamsCache, Proof};
use lightchain_devnet::chain::state::TaskStatus;
use lightchain_devnet::validator::Behavior;
use lightchain_devnet::{DevnetConfig, spawn};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn params_dir() -> PathBuf {
    std::env::temp_dir().join("lightchain-test-params")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The package of a template, built once per test binary.
pub fn package(template: &str) -> Vec<u8> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(b) = cache.lock().unwrap().get(template) {
        return b.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("templates").join(template), dir.path());
    let (bytes, _) = lightchain_packager::build(
        dir.path(),
        &ParamsCache { dir: params_dir() },
        false,
        &mut |_| {},
    )
    .unwrap();
    cache.lock().unwrap().insert(template.into(), bytes.clone());
    bytes
}

pub fn input(template: &str, file: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(
            repo()
                .join("templates")
                .join(template)
                .join("tests")
                .join(file),
        )
        .unwrap(),
    )
    .unwrap()
}

fn config() -> DevnetConfig {
    DevnetConfig::test().with_params_dir(params_dir())
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_proven_tasks_and_agree() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[0].key();
    let (_, model) = api.deploy(&key, package("digits")).unwrap();
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
        assert!(r.verified_by.len() >= 3, "signed by {:?}", r.verified_by);
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
    let (api, handle) = spawn(config().with_task_timeout(Duration::from_millis(1500))).await;
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
    assert_eq!(api.receipt(&task), before.receipts.get(&task).cloned());
    // And it keeps going from there.
    let key = handle.dev_accounts()[3].key();
    let t2 = api
        .submit_task(&key, &model, input("digits", "three.json"), false, 1)
        .unwrap();
    let r = api.wait_receipt(&t2, WAIT).unwrap();
    assert!(r.block_height > before.state.height);
}
