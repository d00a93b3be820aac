//! Attested mode: for a model packaged with `[proving] mode = "attested"`, every validator
//! executes a task and signs its outputs; the result commits when validators holding more than
//! 2/3 of the stake signed the same outputs; receipts say so and carry no proof.

use lightchain_aivm::proof::ParamsCache;
use lightchain_devnet::chain::runtime::ResultError;
use lightchain_devnet::chain::state::{ProvingMode, TaskStatus};
use lightchain_devnet::chain::{Claim, TaskResult};
use lightchain_devnet::crypto::{AccountKey, dev_secret};
use lightchain_devnet::validator::Behavior;
use lightchain_devnet::{DevnetApi, spawn};

use crate::{WAIT, config, eventually, input, package, params_dir};

/// The digits template packaged in attested mode.
fn attested_package() -> Vec<u8> {
    let dir = lightchain_test_utils::template_project("digits");
    lightchain_test_utils::edit(dir.path(), "lightchain.toml", |s| {
        s.replace("[proving]\n", "[proving]\nmode = \"attested\"\n")
    });
    let (bytes, pkg) = lightchain_packager::build(
        dir.path(),
        &ParamsCache { dir: params_dir() },
        true,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(pkg.info.mode, ProvingMode::Attested);
    assert!(pkg.info.vk_digest.is_empty(), "no keys");
    bytes
}

fn predicted(outputs: &[Vec<f64>]) -> usize {
    (0..outputs[0].len())
        .max_by(|&a, &b| outputs[0][a].total_cmp(&outputs[0][b]))
        .unwrap()
}

fn deploy(api: &DevnetApi, key: &AccountKey) -> String {
    let (_, model) = api.deploy(key, attested_package()).unwrap();
    let (_, proven) = api.deploy(key, package("digits")).unwrap();
    assert_ne!(model, proven, "an attested deployment is another model");
    assert_eq!(api.model(&model).unwrap().mode, ProvingMode::Attested);
    model
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_tasks_commit_with_more_than_two_thirds_and_one_liar_changes_nothing() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[1].key();
    tokio::task::block_in_place(|| {
        let model = deploy(&api, &key);
        let id = api
            .submit_task(&key, &model, input("digits", "seven.json"), false, 1)
            .unwrap();
        let r = api.wait_receipt(&id, WAIT).unwrap();
        assert_eq!(r.mode, ProvingMode::Attested);
        assert!(r.attested_by.len() >= 3, "{:?}", r.attested_by);
        assert!(r.proof.is_empty() && r.public_inputs.is_null());
        assert_eq!(predicted(&r.outputs_float), 7);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["mode"], "attested");
        assert!(!json.to_string().contains("proven"));

        // Validator 1 lies about its outputs: the other three still agree.
        api.set_behavior(1, Behavior::WrongOutput).unwrap();
        let id = api
            .submit_task(&key, &model, input("digits", "six.json"), false, 1)
            .unwrap();
        let r = api.wait_receipt(&id, WAIT).unwrap();
        assert_eq!(r.attested_by, [0, 2, 3]);
        assert_eq!(predicted(&r.outputs_float), 6);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_liars_fail_the_task_with_the_evidence_and_the_fee_comes_back() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[2].key();
    tokio::task::block_in_place(|| {
        let model = deploy(&api, &key);
        api.set_behavior(1, Behavior::WrongOutput).unwrap();
        api.set_behavior(2, Behavior::WrongOutput).unwrap();
        let before = api.balance(&key.address()).balance;
        let id = api
            .submit_task(&key, &model, input("digits", "seven.json"), false, 1)
            .unwrap();
        let e = api.wait_receipt(&id, WAIT).unwrap_err().to_string();
        assert!(e.contains("the validators disagree"), "{e}");
        assert!(e.contains("validators [0, 3] signed outputs"), "{e}");
        assert!(e.contains("validators [1, 2] signed outputs"), "{e}");
        let task = api.task(&id).unwrap();
        assert!(matches!(
            task.status,
            TaskStatus::Failed {
                submitter_fault: false,
                ..
            }
        ));
        // The evidence: every validator's signed outputs, kept with the task.
        let mut by: Vec<usize> = task.attestations.iter().map(|a| a.validator).collect();
        by.sort_unstable();
        assert_eq!(by, [0, 1, 2, 3]);
        let honest = &task
            .attestations
            .iter()
            .find(|a| a.validator == 0)
            .unwrap()
            .outputs;
        let liar = &task
            .attestations
            .iter()
            .find(|a| a.validator == 1)
            .unwrap()
            .outputs;
        assert_ne!(honest, liar);
        assert!(api.receipt(&id).is_none());
        assert_eq!(
            api.balance(&key.address()).balance,
            before,
            "the fee is refunded"
        );
    });
}

/// What the chain accepts as an attestation: one per validator, signed by that validator, for
/// a pending task of an attested model; and no proofs for attested models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_duplicate_and_misplaced_attestations_are_refused() {
    let (api, handle) = spawn(config()).await;
    let key = handle.dev_accounts()[3].key();
    tokio::task::block_in_place(|| {
        let model = deploy(&api, &key);
        let proven = api.model("digits@latest").unwrap().model_id;
        // Two silent validators: the task stays open with two attestations.
        api.set_behavior(2, Behavior::Silent).unwrap();
        api.set_behavior(3, Behavior::Silent).unwrap();
        let id = api
            .submit_task(&key, &model, input("digits", "seven.json"), false, 1)
            .unwrap();
        eventually("two attestations", || {
            api.task(&id).is_some_and(|t| t.attestations.len() == 2)
        });
        let pid = api
            .submit_task(&key, &proven, input("digits", "seven.json"), false, 1)
            .unwrap();
        let state = api.view().state;
        let chain = state.chain_id.clone();
        let outputs = state.tasks[&id].attestations[0].outputs.clone();
        let signed = |task: &str, by: usize, signer: usize, claim: Claim| {
            let k = AccountKey::from_secret(dev_secret("validator account", signer));
            let signature = k.sign(&TaskResult::sign_bytes(&chain, task, 0, by, &claim));
            TaskResult {
                task_id: task.into(),
                attempt: 0,
                executor: by,
                claim,
                signature,
            }
        };
        let check = |r: &TaskResult| api.runtime().check_result(&state, r);
        let att = || Claim::Attestation {
            outputs: outputs.clone(),
        };
        // Validator 3's own, well signed: counted.
        assert!(check(&signed(&id, 3, 3, att())).is_ok());
        // In validator 3's name, signed by validator 0: refused.
        let e = check(&signed(&id, 3, 0, att())).unwrap_err();
        assert!(
            matches!(&e, ResultError::Stale(m) if m.contains("signature")),
            "{e}"
        );
        // A second one from a validator that attested already.
        let first = state.tasks[&id].attestations[0].validator;
        let e = check(&signed(&id, first, first, att())).unwrap_err();
        assert!(
            matches!(&e, ResultError::Stale(m) if m.contains("attested already")),
            "{e}"
        );
        // An attestation for a proven model's task, and a proof for an attested one.
        let e = check(&signed(&pid, 3, 3, att())).unwrap_err();
        assert!(matches!(&e, ResultError::Stale(_)), "{e}");
        let proof = Claim::Proof {
            outputs: outputs.clone(),
            proof: vec![1, 2, 3],
            state: None,
        };
        let executor = match state.tasks[&id].status {
            TaskStatus::Pending { executor, .. } => executor,
            _ => unreachable!(),
        };
        let e = check(&signed(&id, executor, executor, proof)).unwrap_err();
        assert!(
            matches!(&e, ResultError::Stale(m) if m.contains("attested")),
            "{e}"
        );
    });
}
