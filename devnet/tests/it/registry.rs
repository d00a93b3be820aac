//! Model names and versions: a name belongs to its first deployer, new versions only go up,
//! `NAME@latest` follows them, old versions stay callable.

use lightchain_aivm::proof::ParamsCache;
use lightchain_devnet::crypto::{AccountKey, dev_secret};
use lightchain_devnet::spawn;

use crate::{WAIT, config, eventually, input, package, params_dir};

/// A template packaged under another name and version.
fn package_as(template: &str, name: &str, version: &str) -> Vec<u8> {
    let dir = lightchain_test_utils::template_project(template);
    let manifest = dir.path().join("lightchain.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = |key: &str| lines.iter().position(|l| l.starts_with(key)).unwrap();
    let (n, v) = (at("name ="), at("version ="));
    lines[n] = format!("name = {name:?}");
    lines[v] = format!("version = {version:?}");
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    lightchain_packager::build(
        dir.path(),
        &ParamsCache { dir: params_dir() },
        false,
        &mut |_| {},
    )
    .unwrap()
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_belongs_to_its_first_deployer_and_versions_only_go_up() {
    let (api, handle) = spawn(config()).await;
    let owner = handle.dev_accounts()[1].key();
    let other = handle.dev_accounts()[2].key();
    tokio::task::block_in_place(|| {
        let (_, v1) = api.deploy(&owner, package("digits")).unwrap();
        assert_eq!(api.model("digits@latest").unwrap().model_id, v1);
        // Version 0.2.0 by its owner (another program) becomes digits@latest.
        let (_, v2) = api
            .deploy(&owner, package_as("fraud", "digits", "0.2.0"))
            .unwrap();
        assert_ne!(v1, v2);
        assert_eq!(api.model("digits@latest").unwrap().model_id, v2);
        assert_eq!(api.model("digits@0.1.0").unwrap().model_id, v1);
        assert!(api.model("digits@0.9.0").is_none());
        // A different model named digits from another account is refused, and so is a
        // version not above the latest, even from the owner.
        let e = api
            .deploy(&other, package_as("sentiment", "digits", "0.3.0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("belongs to") && e.contains(&owner.address().to_string()),
            "{e}"
        );
        let e = api
            .deploy(&owner, package_as("sentiment", "digits", "0.1.5"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not above its latest version 0.2.0"), "{e}");
        // The other account may use its own name.
        api.deploy(&other, package_as("sentiment", "mood", "1.0.0"))
            .unwrap();
        // The old version stays callable.
        let id = api
            .submit_task(
                &other,
                "digits@0.1.0",
                input("digits", "six.json"),
                false,
                1,
            )
            .unwrap();
        assert_eq!(api.wait_receipt(&id, WAIT).unwrap().model_id, v1);
        let listed = api.models();
        let names: Vec<(&str, &str, bool)> = listed
            .iter()
            .map(|m| (m.model.name.as_str(), m.model.version.as_str(), m.latest))
            .collect();
        assert_eq!(
            names,
            [
                ("digits", "0.1.0", false),
                ("digits", "0.2.0", true),
                ("mood", "1.0.0", true)
            ]
        );
        assert!(listed[..2].iter().all(|m| m.owner == owner.address()));
        assert_eq!(listed[2].owner, other.address());
    });
}

/// A royalty set in the manifest goes to the model's owner out of every completed task's fee;
/// the executor gets the rest; nothing is created or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_royalty_goes_to_the_owner_out_of_every_fee() {
    let dir = lightchain_test_utils::template_project("digits");
    lightchain_test_utils::edit(dir.path(), "lightchain.toml", |s| {
        s.replace(
            "version = \"0.1.0\"\n",
            "version = \"0.1.0\"\nroyalty_bps = 1000\n",
        )
    });
    let (bytes, pkg) = lightchain_packager::build(
        dir.path(),
        &ParamsCache { dir: params_dir() },
        false,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(pkg.manifest.royalty_bps, 1000);
    let (api, handle) = spawn(config()).await;
    let owner = handle.dev_accounts()[1].key();
    let user = handle.dev_accounts()[2].key();
    tokio::task::block_in_place(|| {
        let (_, model) = api.deploy(&owner, bytes).unwrap();
        assert_eq!(api.model(&model).unwrap().royalty_bps, 1000);
        let listed = api.models();
        assert!(listed.iter().any(|m| m.model.royalty_bps == 1000));
        let balances = |api: &lightchain_devnet::DevnetApi| {
            let s = api.view().state;
            (
                s.account(&owner.address()).balance,
                s.validators
                    .iter()
                    .map(|v| s.account(&v.account).balance)
                    .collect::<Vec<_>>(),
                s.supply(),
            )
        };
        let (owner_before, validators_before, supply) = balances(&api);
        let id = api
            .submit_task(&user, &model, input("digits", "seven.json"), false, 1)
            .unwrap();
        let r = api.wait_receipt(&id, WAIT).unwrap();
        let (owner_after, validators_after, supply_after) = balances(&api);
        assert_eq!(owner_after - owner_before, r.fee / 10);
        assert_eq!(
            validators_after[r.executor] - validators_before[r.executor],
            r.fee - r.fee / 10
        );
        assert_eq!(supply_after, supply);
    });
    // More than half of the fee is refused.
    let text = std::fs::read_to_string(dir.path().join("lightchain.toml")).unwrap();
    let issues = lightchain_packager::Manifest::parse(&text.replace("1000", "6000")).unwrap_err();
    assert!(
        issues[0].message.contains("royalty_bps must be 0 to 5000"),
        "{issues:?}"
    );
}

/// On a chain whose validators approve versions, a new version of a deployed name is not live
/// until validators holding more than 2/3 of the stake approved it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approval_a_new_version_goes_live_after_two_thirds_of_the_stake() {
    let mut cfg = config();
    cfg.chain.approve_versions = true;
    let (api, handle) = spawn(cfg).await;
    let owner = handle.dev_accounts()[1].key();
    let validator = |i| AccountKey::from_secret(dev_secret("validator account", i));
    tokio::task::block_in_place(|| {
        // The first version of a name is live at once.
        let (_, v1) = api.deploy(&owner, package("digits")).unwrap();
        assert!(!api.model(&v1).unwrap().pending_approval);
        let (_, v2) = api
            .deploy(&owner, package_as("fraud", "digits", "0.2.0"))
            .unwrap();
        assert!(api.model(&v2).unwrap().pending_approval);
        assert_eq!(api.model("digits@latest").unwrap().model_id, v1);
        let fraud = input("fraud", "fraud.json");
        let e = api
            .submit_task(&owner, &v2, fraud.clone(), false, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("waiting for the validators' approval"), "{e}");
        // Only validators approve, each once.
        let e = api.approve_version(&owner, &v2, 1).unwrap_err().to_string();
        assert!(e.contains("only a validator's account"), "{e}");
        let approvals = |n: usize| {
            eventually("the approval in a block", || {
                api.model(&v2).unwrap().approvals.len() == n
            })
        };
        api.approve_version(&validator(0), &v2, 1).unwrap();
        approvals(1);
        let e = api
            .approve_version(&validator(0), &v2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("approved it already"), "{e}");
        // Half of the stake is not enough.
        api.approve_version(&validator(1), &v2, 1).unwrap();
        approvals(2);
        assert!(api.model(&v2).unwrap().pending_approval);
        assert_eq!(api.model("digits@latest").unwrap().model_id, v1);
        // Three of four validators (equal stake): live, and NAME@latest follows.
        api.approve_version(&validator(2), &v2, 1).unwrap();
        approvals(3);
        let m = api.model(&v2).unwrap();
        assert!(!m.pending_approval);
        assert_eq!(m.approvals, [0, 1, 2]);
        assert_eq!(api.model("digits@latest").unwrap().model_id, v2);
        let id = api.submit_task(&owner, &v2, fraud, false, 1).unwrap();
        api.wait_receipt(&id, WAIT).unwrap();
        let e = api
            .approve_version(&validator(3), &v2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not waiting for approval"), "{e}");
    });
}
