//! The real binary's dashboard driven in tmux: `devnet --dashboard` shows validators and the
//! height, a task submitted from another shell appears with its status, `?` shows the keys,
//! `k` kills a validator while the chain goes on, and `q` gives the shell back.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::testnet::{dev_key, digits_package, free_base, task};
use crate::{Project, params};

/// A tmux session killed when the test ends.
struct Tmux(String);

impl Tmux {
    /// tmux on a server of this test's own (`-L`), so a user's server and its environment
    /// play no part.
    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0]);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows every one of `what`.
    fn shows(&self, what: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if what.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the screen never showed {what:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().args(["kill-server"]).status();
    }
}

/// The height in the dashboard's header line.
fn height_shown(screen: &str) -> u64 {
    screen
        .split("height ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|h| h.parse().ok())
        .unwrap_or(0)
}

#[test]
fn devnet_dashboard_in_tmux_shows_the_chain_and_its_keys_work() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let p = Project::new();
    digits_package(&p);
    let port = free_base(1);
    let rpc = format!("http://127.0.0.1:{port}");
    let session = Tmux(format!("lc-dash-{}", std::process::id()));
    let ok = session
        .tmux()
        .args([
            "new-session",
            "-d",
            "-s",
            &session.0,
            "-x",
            "160",
            "-y",
            "48",
        ])
        .args(["bash", "--norc", "--noprofile"])
        .current_dir(p.dir.path())
        .env(params().0, params().1)
        .env("PS1", "$ ")
        .status()
        .unwrap();
    assert!(ok.success());
    let bin = assert_cmd::cargo::cargo_bin("lightchain");
    session.keys(&[
        &format!(
            "{} devnet --dashboard --port {port}; echo EXIT=$?",
            bin.display()
        ),
        "Enter",
    ]);
    session.shows(&["Validators", "height 0", "online", "live"]);

    // Deployed and submitted from another shell: the task shows with its id and status.
    let key = dev_key();
    let (code, out, err) = p.run(&[
        "deploy",
        "digits.lcpkg",
        "--rpc",
        &rpc,
        "--key",
        &key,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let model = serde_json::from_str::<serde_json::Value>(&out).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = task(&p, &rpc, &model, "proj/tests/six.json", &[]);
    let id = t["task"]["id"].as_str().unwrap().to_string();
    session.shows(&[&id[..10], "completed", "digits 0.1.0"]);

    session.keys(&["?"]);
    session.shows(&[
        "Keys (? or esc closes)",
        "devnet: kill the selected validator",
    ]);
    session.keys(&["Escape"]);

    // Validator 0 (selected) killed with k: shown down, and the chain keeps committing.
    session.keys(&["k"]);
    session.shows(&["validator 0 killed", "│0  killed"]);
    let before = crate::devnet::call(&rpc, "lc_status", serde_json::json!([])).unwrap()["height"]
        .as_u64()
        .unwrap();
    let t = task(&p, &rpc, &model, "proj/tests/seven.json", &[]);
    assert_ne!(t["task"]["receipt"]["executor"], 0);
    let id = t["task"]["id"].as_str().unwrap().to_string();
    session.shows(&[&id[..10]]);
    let start = Instant::now();
    while height_shown(&session.screen()) < before + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            session.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // q: the devnet stops, the shell is back and usable.
    session.keys(&["q"]);
    session.shows(&["EXIT=0"]);
    session.keys(&["echo READY-$((40+2))", "Enter"]);
    session.shows(&["READY-42"]);
}
