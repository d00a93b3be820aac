use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn spec(n: usize) -> TestnetSpec {
    TestnetSpec {
        validators: n,
        base_port: 40_100,
        hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        chain_id: "lightchain-testnet".into(),
        dev_accounts: 3,
        block_time: None,
        task_timeout: Some(Duration::from_secs(9)),
    }
}

#[test]
fn init_writes_one_home_per_validator_with_private_keys_and_one_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = init(dir.path(), &spec(3)).unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(
        homes(dir.path()),
        nodes.iter().map(|n| n.home.clone()).collect::<Vec<_>>()
    );
    assert_eq!(nodes[1].rpc, "http://127.0.0.1:40102");
    assert_eq!(nodes[1].p2p, "127.0.0.1:40103");
    let genesis = read(&nodes[0].home.join(GENESIS_FILE)).unwrap();
    let mut secrets = std::collections::HashSet::new();
    for n in &nodes {
        assert_eq!(read(&n.home.join(GENESIS_FILE)).unwrap(), genesis);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(n.home.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", n.home.display());
        }
        let key = read(&n.home.join(KEY_FILE)).unwrap();
        assert!(secrets.insert(key), "two nodes got the same keys");
        let cfg = load(&n.home).unwrap();
        let setup = cfg.node.as_ref().unwrap();
        assert_eq!(setup.index, n.index);
        assert_eq!(setup.peers.len(), 3);
        assert_eq!(setup.listen.to_string(), n.p2p);
        assert_eq!(cfg.chain.task_timeout_ms, Some(9_000));
        assert_eq!(
            cfg.state_dir.as_deref(),
            Some(n.home.join("state").as_path())
        );
        let v = &setup.genesis.validators[n.index];
        assert_eq!(v.account_key, setup.keys.account.public());
        assert_eq!(
            v.consensus_key,
            *setup.keys.consensus.public_key().as_bytes()
        );
        // The secrets never show in the node's debug output.
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains(&setup.keys.account.secret_hex()), "{dbg}");
    }
    // The dev accounts are funded, and no validator holds a dev key.
    let g: GenesisFile = serde_json::from_str(&genesis).unwrap();
    assert_eq!(g.state.accounts.len(), 3 + 3);
    let dev =
        crate::crypto::AccountKey::from_secret(crate::crypto::dev_secret("validator account", 0));
    assert_ne!(g.state.validators[0].account_key, dev.public());

    // A second init never overwrites keys.
    let e = init(dir.path(), &spec(3)).unwrap_err().to_string();
    assert!(e.contains("already holds a testnet"), "{e}");
}

#[test]
fn init_refuses_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(70);
    assert!(
        init(dir.path(), &s)
            .unwrap_err()
            .to_string()
            .contains("between 1 and 64")
    );
    s = spec(4);
    s.hosts = vec![IpAddr::V4(Ipv4Addr::LOCALHOST); 2];
    assert!(
        init(dir.path(), &s)
            .unwrap_err()
            .to_string()
            .contains("2 hosts for 4")
    );
    s = spec(4);
    s.base_port = 65_530;
    assert!(
        init(dir.path(), &s)
            .unwrap_err()
            .to_string()
            .contains("no room")
    );
    assert!(homes(dir.path()).is_empty());
}

#[test]
fn a_node_refuses_keys_others_can_read_or_that_are_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = init(dir.path(), &spec(2)).unwrap();
    let (k0, k1) = (nodes[0].home.join(KEY_FILE), nodes[1].home.join(KEY_FILE));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&k0, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&nodes[0].home).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&k0, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Node 1's keys in node 0's home: it would sign as a validator it is not.
    std::fs::remove_file(&k0).unwrap();
    std::fs::copy(&k1, &k0).unwrap();
    let mut cfg = load(&nodes[0].home).unwrap().without_rpc();
    cfg.params_dir = Some(dir.path().join("params"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = match rt.block_on(crate::try_spawn(cfg)) {
        Ok(_) => panic!("a node started with another validator's keys"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not those of validator 0"), "{e}");
    // A key file that is not one.
    std::fs::remove_file(&k0).unwrap();
    write_private(&k0, b"{\"index\": 0}").unwrap();
    assert!(load(&nodes[0].home).is_err());
}

#[test]
fn a_node_refuses_a_stored_chain_of_another_genesis() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sa = spec(1);
    sa.base_port = 40_300;
    let mut sb = spec(1);
    sb.base_port = 40_310;
    let na = init(a.path(), &sa).unwrap();
    let nb = init(b.path(), &sb).unwrap();
    let start = |home: &Path| {
        let mut cfg = load(home).unwrap().without_rpc();
        cfg.params_dir = Some(a.path().join("params"));
        rt.block_on(crate::try_spawn(cfg)).map(|(_, h)| h)
    };
    // Node 0 of testnet A stores its genesis; its own home starts again from it.
    drop(start(&na[0].home).unwrap());
    drop(start(&na[0].home).unwrap());
    // B has the same chain id but other validators: A's stored chain is refused.
    std::fs::rename(na[0].home.join("state"), nb[0].home.join("state")).unwrap();
    let e = match start(&nb[0].home) {
        Ok(_) => panic!("a node started on another genesis's chain"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("is not the genesis's"), "{e}");
}
