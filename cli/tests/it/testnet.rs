//! `lightchain testnet init` and `lightchain node`: validators as separate processes, talking
//! over their P2P addresses, surviving a SIGKILL and catching up after a restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Project, params};

/// A first port with `2n` free ports after it on loopback: below the kernel's ephemeral range
/// (32768 up), and a different range for each call of this process, so that tests running at
/// once never pick the same ports.
pub fn free_base(n: usize) -> u16 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let start = 12_000 + (std::process::id() as usize % 50) * 400;
    loop {
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let b = (start + (k * 40) % 20_000) as u16;
        if (0..2 * n as u16).all(|i| std::net::TcpListener::bind(("127.0.0.1", b + i)).is_ok()) {
            return b;
        }
        assert!(k < 2_000, "no free ports");
    }
}

/// A `lightchain node` process with its output in `HOME/node.log`.
pub struct NodeProc {
    pub child: Child,
    pub home: PathBuf,
    pub rpc: String,
}

impl NodeProc {
    pub fn start(home: &Path, rpc: &str, env: &[(&str, &str)]) -> NodeProc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("lightchain"))
            .args(["node", "--home"])
            .arg(home)
            .env(params().0, params().1)
            .env_remove("LIGHTCHAIN_RPC_TOKEN")
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        NodeProc {
            child,
            home: home.to_path_buf(),
            rpc: rpc.to_string(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default()
    }

    /// Waits until the node answers `lc_status`.
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        while crate::devnet::call(&self.rpc, "lc_status", serde_json::json!([])).is_err() {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("node exited ({s}): {}", self.log());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn height(&self) -> u64 {
        crate::devnet::call(&self.rpc, "lc_status", serde_json::json!([]))
            .map(|s| s["height"].as_u64().unwrap())
            .unwrap_or(0)
    }

    pub fn block_hash(&self, h: u64) -> String {
        let b = crate::devnet::call(&self.rpc, "lc_getBlock", serde_json::json!([h])).unwrap();
        b["hash"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every node serves the same block hash at every height up to the lowest one's.
pub fn same_blocks(nodes: &[NodeProc]) -> u64 {
    let h = nodes.iter().map(NodeProc::height).min().unwrap();
    for height in 1..=h {
        let hashes: Vec<String> = nodes.iter().map(|n| n.block_hash(height)).collect();
        assert!(
            !hashes[0].is_empty() && hashes.windows(2).all(|w| w[0] == w[1]),
            "height {height}: {hashes:?}"
        );
    }
    h
}

/// Dev account 0's key (funded by every testnet's genesis).
pub fn dev_key() -> String {
    lightchain_devnet::crypto::AccountKey::from_secret(lightchain_devnet::crypto::dev_secret(
        "account", 0,
    ))
    .secret_hex()
}

/// Packages the digits template in the project: `digits.lcpkg`.
pub fn digits_package(p: &Project) {
    assert_eq!(p.run(&["init", "proj", "--template", "digits"]).0, 0);
    let out = p
        .cmd(&["package", "proj", "-o", "digits.lcpkg"])
        .env(params().0, params().1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deploys `digits.lcpkg` through `node` signed by dev account 0; returns the model id.
pub fn deploy(p: &Project, node: &NodeProc, extra: &[&str]) -> String {
    let key = dev_key();
    let mut args = vec![
        "deploy",
        "digits.lcpkg",
        "--rpc",
        &node.rpc,
        "--key",
        &key,
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = p.run(&args);
    assert_eq!(code, 0, "{err}{}", node.log());
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Submits a task through `rpc` and waits for its receipt; returns the task JSON.
pub fn task(p: &Project, rpc: &str, model: &str, input: &str, extra: &[&str]) -> serde_json::Value {
    let key = dev_key();
    let mut args = vec![
        "task", "submit", model, "-i", input, "--rpc", rpc, "--key", &key, "--wait", "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = p.run(&args);
    assert_eq!(code, 0, "{err}{out}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t["task"]["status"], "completed", "{t}");
    t
}

#[test]
fn four_node_processes_deploy_prove_survive_a_sigkill_and_catch_up() {
    let p = Project::new();
    digits_package(&p);
    let base = free_base(4).to_string();
    let (code, out, err) = p.run(&[
        "testnet",
        "init",
        "net",
        "--validators",
        "4",
        "--base-port",
        &base,
        "--task-timeout",
        "20",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = init["nodes"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let mut nodes: Vec<NodeProc> = entries
        .iter()
        .map(|e| {
            NodeProc::start(
                &p.dir.path().join(e["home"].as_str().unwrap()),
                e["rpc"].as_str().unwrap(),
                &[],
            )
        })
        .collect();
    for n in &mut nodes {
        n.wait_ready();
    }

    // Deployed through node 0, a task submitted through node 2, proven by one process and
    // verified by the others.
    let model = deploy(&p, &nodes[0], &[]);
    let t = task(
        &p,
        &nodes[2].rpc,
        &model,
        "proj/tests/six.json",
        &["--proof-out", "six.bin"],
    );
    let receipt = &t["task"]["receipt"];
    // Verified by other processes than the executor's (at least a quorum's worth with it).
    let verifiers = receipt["verified_by"].as_array().unwrap();
    assert!(verifiers.len() >= 2, "{receipt}");
    assert!(!verifiers.contains(&receipt["executor"]), "{receipt}");
    let (code, out, err) = p.run(&["verify", "digits.lcpkg", "--proof", "six.bin"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid proof"), "{out}");

    // Node 3 killed with SIGKILL: tasks still complete (submitted through node 1).
    nodes[3].child.kill().unwrap();
    nodes[3].child.wait().unwrap();
    for input in ["proj/tests/seven.json", "proj/tests/three.json"] {
        let t = task(&p, &nodes[1].rpc, &model, input, &[]);
        assert_ne!(t["task"]["receipt"]["executor"], 3, "{t}");
    }
    let (code, _, err) = p.run(&["status", "--rpc", &nodes[3].rpc]);
    assert_eq!(code, 1);
    assert!(err.contains("is it running"), "{err}");

    // Restarted from its home, it catches up.
    let target = nodes[0].height();
    let home = nodes[3].home.clone();
    let rpc = nodes[3].rpc.clone();
    nodes[3] = NodeProc::start(&home, &rpc, &[]);
    nodes[3].wait_ready();
    eventually("node 3 to catch up", Duration::from_secs(60), || {
        nodes[3].height() >= target
    });
    // And takes part again: another task, then every node agrees on every block.
    task(&p, &nodes[3].rpc, &model, "proj/tests/six.json", &[]);
    let top = nodes[0].height();
    eventually("every node at the top", Duration::from_secs(30), || {
        nodes.iter().all(|n| n.height() >= top)
    });
    assert!(same_blocks(&nodes) >= top);
}

/// Network namespaces joined by a bridge, each node behind its own veth pair; removed on drop.
struct Namespaces {
    tag: String,
    n: usize,
    /// The subnet's first three octets.
    net: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// The reason where namespaces cannot be made (not root, no `ip`).
    fn make(n: usize) -> Result<Namespaces, String> {
        let id = std::process::id() % 10_000;
        let ns = Namespaces {
            tag: format!("lc{id}"),
            n,
            // The benchmarking range (RFC 2544), routed nowhere real.
            net: format!("198.18.{}", id % 250),
        };
        // Dropped (cleaning up what was made) when a step fails.
        ns.setup()?;
        Ok(ns)
    }

    fn setup(&self) -> Result<(), String> {
        let ns = self;
        ip(&["link", "add", &ns.bridge(), "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", ns.net),
            "dev",
            &ns.bridge(),
        ])?;
        ip(&["link", "set", &ns.bridge(), "up"])?;
        for i in 0..ns.n {
            let (name, veth) = (ns.name(i), ns.veth(i));
            ip(&["netns", "add", &name])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ])?;
            ip(&["link", "set", &veth, "master", &ns.bridge(), "up"])?;
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{}/24", ns.addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn name(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{}v{i}", self.tag)
    }

    fn addr(&self, i: usize) -> String {
        format!("{}.{}", self.net, i + 1)
    }

    /// Cuts (or restores) node `i`'s link to the others.
    fn link(&self, i: usize, up: bool) {
        ip(&["link", "set", &self.veth(i), if up { "up" } else { "down" }]).unwrap();
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for i in 0..self.n {
            let _ = ip(&["link", "del", &self.veth(i)]);
            let _ = ip(&["netns", "del", &self.name(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

#[test]
fn four_nodes_in_their_own_namespaces_survive_a_cut_link_without_forking() {
    let ns = match Namespaces::make(4) {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("skipped: network namespaces are unavailable here ({why})");
            return;
        }
    };
    let p = Project::new();
    digits_package(&p);
    let hosts: Vec<String> = (0..4).map(|i| ns.addr(i)).collect();
    let (code, out, err) = p.run(&[
        "testnet",
        "init",
        "net",
        "--validators",
        "4",
        "--hosts",
        &hosts.join(","),
        "--task-timeout",
        "20",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Their RPC is not on loopback: it needs a token, and a node without one refuses to start.
    let token = "netns-test-token";
    let mut nodes: Vec<NodeProc> = Vec::new();
    for (i, e) in init["nodes"].as_array().unwrap().iter().enumerate() {
        let home = p.dir.path().join(e["home"].as_str().unwrap());
        let node = |env: &[(&str, &str)]| {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(home.join("node.log"))
                .unwrap();
            Command::new("ip")
                .args(["netns", "exec", &ns.name(i)])
                .arg(assert_cmd::cargo::cargo_bin("lightchain"))
                .args(["node", "--home"])
                .arg(&home)
                .env(params().0, params().1)
                .env_remove("LIGHTCHAIN_RPC_TOKEN")
                .envs(env.iter().copied())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        };
        if i == 0 {
            let status = node(&[]).wait().unwrap();
            assert!(!status.success());
            let log = std::fs::read_to_string(home.join("node.log")).unwrap();
            assert!(log.contains("token"), "{log}");
        }
        nodes.push(NodeProc {
            child: node(&[("LIGHTCHAIN_RPC_TOKEN", token)]),
            home: home.clone(),
            rpc: e["rpc"].as_str().unwrap().to_string(),
        });
    }
    for n in &mut nodes {
        n.wait_ready();
    }
    let model = deploy(&p, &nodes[0], &["--token", token]);
    task(
        &p,
        &nodes[2].rpc,
        &model,
        "proj/tests/six.json",
        &["--token", token],
    );

    // Node 3's link cut for 10 s: the others go on committing tasks.
    ns.link(3, false);
    let cut = Instant::now();
    for input in ["proj/tests/seven.json", "proj/tests/three.json"] {
        let t = task(&p, &nodes[1].rpc, &model, input, &["--token", token]);
        assert_ne!(t["task"]["receipt"]["executor"], 3, "{t}");
    }
    std::thread::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed()));
    ns.link(3, true);
    let target = nodes[0].height();
    eventually("the cut node to catch up", Duration::from_secs(90), || {
        nodes[3].height() >= target
    });
    // Nothing forked: one more task through the healed node, then every block agrees.
    task(
        &p,
        &nodes[3].rpc,
        &model,
        "proj/tests/six.json",
        &["--token", token],
    );
    let top = nodes[0].height();
    eventually("every node at the top", Duration::from_secs(30), || {
        nodes.iter().all(|n| n.height() >= top)
    });
    assert!(same_blocks(&nodes) >= top);
}

/// A child killed when the test ends, whatever happens.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn testnet_start_runs_every_node_and_stops_them_on_sigterm() {
    let p = Project::new();
    let (code, _, err) = p.run(&["testnet", "start", "nothing"]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no testnet"), "{err}");
    let base = free_base(2).to_string();
    let (code, out, err) = p.run(&[
        "testnet",
        "init",
        "net",
        "--validators",
        "2",
        "--base-port",
        &base,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rpcs: Vec<String> = init["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rpc"].as_str().unwrap().to_string())
        .collect();
    // A second init into the same folder keeps the keys it made.
    let (code, _, err) = p.run(&["testnet", "init", "net", "--validators", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("already holds a testnet"), "{err}");

    let mut start = Killed(
        Command::new(assert_cmd::cargo::cargo_bin("lightchain"))
            .args(["testnet", "start", "net"])
            .current_dir(p.dir.path())
            .env(params().0, params().1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("both nodes to serve", Duration::from_secs(60), || {
        rpcs.iter().all(|u| {
            crate::devnet::call(u, "lc_status", serde_json::json!([]))
                .is_ok_and(|s| s["validators"] == 2)
        })
    });
    Command::new("kill")
        .args(["-TERM", &start.0.id().to_string()])
        .status()
        .unwrap();
    let status = start.0.wait().unwrap();
    assert!(status.success(), "{status}");
    for u in &rpcs {
        assert!(crate::devnet::call(u, "lc_status", serde_json::json!([])).is_err());
    }
}

#[test]
fn bench_testnet_measures_node_processes() {
    let p = Project::new();
    let (code, out, err) = p
        .cmd(&[
            "bench",
            "--testnet",
            "2",
            "--devnet",
            "2",
            "--devnet-model",
            &crate::repo()
                .join("fixtures/ezkl/1l_mlp")
                .display()
                .to_string(),
            "--no-write",
            "--json",
        ])
        .env(params().0, params().1)
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{err}{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run = &r["runs"][0];
    assert_eq!(run["validators"], 2, "{r}");
    assert_eq!(run["tasks"], 2, "{r}");
    assert!(run["median_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(run["tasks_per_second"].as_f64().unwrap() > 0.0, "{r}");
    assert!(run["blocks"].as_u64().unwrap() >= 1, "{r}");
}
