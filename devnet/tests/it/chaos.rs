//! The fault suite, short: load from three accounts while a nemesis crashes, revives,
//! partitions, heals and delays validators, with one validator equivocating as a proposer all
//! along; then no fork, nothing lost or duplicated, the supply intact, nobody stopped, and
//! progress after every heal. (`lightchain bench --chaos 1000` runs the long one.)

use std::time::Duration;

use lightchain_devnet::chaos::{ChaosSpec, run};
use lightchain_devnet::spawn;
use lightchain_devnet::validator::Behavior;

use crate::{config, input, package};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_nemesis_breaks_nothing() {
    let mut cfg = config().with_task_timeout(Some(Duration::from_millis(3000)));
    cfg.timeouts.propose = Duration::from_millis(1500);
    let (api, handle) = spawn(cfg).await;
    let key = handle.dev_accounts()[9].key();
    let report = tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&key, package("digits")).unwrap();
        let spec = ChaosSpec {
            tasks: 16,
            accounts: 3,
            seed: 7,
            fault_every: Duration::from_millis(700),
            byzantine: Some((3, Behavior::EquivocatingProposer)),
            model_id: model,
            inputs: ["seven.json", "six.json", "three.json"]
                .iter()
                .map(|f| input("digits", f))
                .collect(),
            settle: Duration::from_secs(60),
        };
        run(&api, &spec)
    });
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report.ok(), "{report:#?}");
    assert!(
        report.faults.values().sum::<usize>() >= 5,
        "{:?}",
        report.faults
    );
    assert!(report.completed >= 14, "{report:#?}");
}
