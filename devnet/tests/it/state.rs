//! Stateful models on the devnet: the chain keeps one state per (model, account); each task
//! starts from the state the account's previous task wrote, and its proof binds both states'
//! commitments, which validators check against the chain before they vote.

use ff::PrimeField;
use lightchain_aivm::segment::ModelKeys;
use lightchain_aivm::state::StateValue;
use lightchain_devnet::chain::runtime::ResultError;
use lightchain_devnet::chain::state::TaskStatus;
use lightchain_devnet::chain::{Claim, NewState, TaskResult};
use lightchain_devnet::crypto::{AccountKey, dev_secret, hex};
use lightchain_devnet::spawn;
use lightchain_devnet::validator::Behavior;

use crate::{WAIT, config, eventually, input, package};

/// A test vector of the stateful template without its state (`avg`): a task's input.
fn task_input(file: &str) -> serde_json::Value {
    let mut v = input("stateful", file);
    v["inputs"].as_object_mut().unwrap().remove("avg");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_starts_from_the_state_the_last_one_wrote() {
    let (api, handle) = spawn(config()).await;
    let alice = handle.dev_accounts()[1].key();
    let bob = handle.dev_accounts()[2].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&alice, package("stateful")).unwrap();
        let s0 = api.model_state(&model, &alice.address()).unwrap();
        assert_eq!(s0.values_float, [0.0, 0.0]);
        assert!(s0.task_id.is_none());
        let mut avg = [0.0f64; 2];
        for (n, file) in ["fraud.json", "legit.json", "fraud.json"]
            .iter()
            .enumerate()
        {
            let before = api.model_state(&model, &alice.address()).unwrap();
            let id = api
                .submit_task(&alice, &model, task_input(file), false, 1)
                .unwrap();
            if n == 0 {
                // One pending task per account: the next starts from the state it writes.
                eventually("the task on chain", || api.task(&id).is_some());
                let e = api
                    .submit_task(&alice, &model, task_input("legit.json"), false, 1)
                    .unwrap_err();
                assert!(e.to_string().contains("still pending"), "{e}");
            }
            let r = api.wait_receipt(&id, WAIT).unwrap();
            let after = api.model_state(&model, &alice.address()).unwrap();
            assert_eq!(after.task_id.as_deref(), Some(id.as_str()));
            // The receipt's proof starts from the state before and ends in the state after.
            assert_eq!(r.public_inputs["state"]["old"], hex(&before.commitment));
            assert_eq!(r.public_inputs["state"]["new"], hex(&after.commitment));
            assert_ne!(before.commitment, after.commitment);
            // Only the score is an output; the state is the running average of the scores.
            assert_eq!(r.outputs.len(), 1);
            for j in 0..2 {
                avg[j] = 0.75 * avg[j] + 0.25 * r.outputs_float[0][j];
                assert!(
                    (after.values_float[j] - avg[j]).abs() < 0.01,
                    "task {n}: {:?} vs {avg:?}",
                    after.values_float
                );
            }
        }
        assert!(avg[1] > 0.3, "two fraud scores raise the average: {avg:?}");
        // Bob's state is his own: still the initial one.
        let b = api.model_state(&model, &bob.address()).unwrap();
        assert!(b.task_id.is_none());
        assert_eq!(b.values_float, [0.0, 0.0]);
        // The state in a task's input is refused, and a stateful model is not scheduled.
        let e = api
            .submit_task(&bob, &model, input("stateful", "legit.json"), false, 1)
            .unwrap_err();
        assert!(e.to_string().contains("is the model's state"), "{e}");
        let e = api
            .schedule_task(&bob, &model, task_input("legit.json"), (2, 2), None, 1)
            .unwrap_err();
        assert!(e.to_string().contains("not scheduled"), "{e}");
        // A model without state has none to show.
        let (_, digits) = api.deploy(&alice, package("digits")).unwrap();
        assert!(api.model_state(&digits, &alice.address()).is_err());
    });
}

/// What validators accept from an executor of a stateful task: a proof from the state the
/// chain keeps, and the new state that opens the proof's commitment; nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_from_another_state_or_a_new_state_that_does_not_open_is_refused() {
    let (api, handle) = spawn(config()).await;
    let alice = handle.dev_accounts()[3].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&alice, package("stateful")).unwrap();
        for v in 0..4 {
            api.set_behavior(v, Behavior::Silent).unwrap();
        }
        let id = api
            .submit_task(&alice, &model, task_input("fraud.json"), false, 1)
            .unwrap();
        eventually("the task pending", || api.task(&id).is_some());
        let state = api.view().state;
        let executor = match state.tasks[&id].status {
            TaskStatus::Pending { executor, .. } => executor,
            ref s => panic!("{s:?}"),
        };
        let record = api.model(&model).unwrap();
        let keys = api.runtime().prover(&record).unwrap();
        let ModelKeys::One(keys) = keys.as_ref() else {
            panic!("one circuit")
        };
        let program = keys.circuit.program.clone();
        let pkg = api.package(&model).unwrap();
        let q = lightchain_devnet::chain::runtime::public_inputs(&pkg, &task_input("fraud.json"))
            .unwrap();
        let nonce: [u8; 32] = lightchain_devnet::crypto::unhex(&id)
            .unwrap()
            .try_into()
            .unwrap();
        let initial = lightchain_aivm::state::initial(&program, 0.0).unwrap();
        let prove = |old: &StateValue| {
            let (proof, new) = keys
                .prove_with_state(
                    &q,
                    old,
                    nonce,
                    None,
                    &mut rand_core::UnwrapErr(rand::rngs::SysRng),
                )
                .unwrap();
            (proof, new)
        };
        let claim = |proof: &lightchain_aivm::proof::Proof, new: Option<NewState>| Claim::Proof {
            outputs: proof.outputs.clone(),
            proof: proof.to_bytes(),
            state: new,
        };
        let opened = |s: &StateValue| NewState {
            values: s.values.clone(),
            salt: s.salt.to_repr(),
        };
        let signed = |claim: Claim| {
            let k = AccountKey::from_secret(dev_secret("validator account", executor));
            let signature = k.sign(&TaskResult::sign_bytes(
                &state.chain_id,
                &id,
                0,
                executor,
                &claim,
            ));
            TaskResult {
                task_id: id.clone(),
                attempt: 0,
                executor,
                claim,
                signature,
            }
        };
        let check = |claim: Claim| api.runtime().check_result(&state, &signed(claim));
        let invalid = |claim: Claim, what: &str| match check(claim) {
            Err(ResultError::Invalid(m)) => assert!(m.contains(what), "{m}"),
            r => panic!("{what}: {r:?}"),
        };
        // The honest claim: from the initial state, its new state.
        let (proof, new) = prove(&initial);
        assert!(check(claim(&proof, Some(opened(&new)))).is_ok());
        // Another new state than the proof committed to (one value changed, or the salt).
        let mut lie = opened(&new);
        lie.values[0] += 1;
        invalid(claim(&proof, Some(lie)), "does not open");
        let mut lie = opened(&new);
        lie.salt = (new.salt + halo2_proofs::pasta::Fp::from(1)).to_repr();
        invalid(claim(&proof, Some(lie)), "does not open");
        // No new state at all.
        invalid(claim(&proof, None), "needs the new state");
        // A valid proof from another state than the chain keeps (the average at 0.5).
        let other = lightchain_aivm::state::initial(&program, 0.5).unwrap();
        let (proof, new) = prove(&other);
        invalid(
            claim(&proof, Some(opened(&new))),
            "starts from another state",
        );
    });
}
