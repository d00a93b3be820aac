//! Test support shared by lightchain's crates (a dev-dependency only).
//!
//! - paths: [`repo`], [`fixtures_dir`], [`fixture_model`], [`template_dir`];
//! - the proving-parameter cache every test shares: [`params_dir`];
//! - folders: [`copy_dir`], [`template_project`], [`edit`];
//! - fixtures: [`all_fixture_models`] (our fixtures and the EZKL examples, each with its input);
//! - a `lightchain devnet` process that is serving when [`DevnetProcess::spawn`] returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The repository's root: the parent of the running test's package folder. Cargo sets
/// `CARGO_MANIFEST_DIR` when it runs a test; read at run time, so that a build reused from a
/// checkout elsewhere (CI shares its target folder) reads this checkout's files.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("test-utils lives in the repository")
        .to_path_buf()
}

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    repo().join("fixtures")
}

/// A template project's folder under `templates/`.
pub fn template_dir(name: &str) -> PathBuf {
    repo().join("templates").join(name)
}

/// The folder where tests keep proving parameters (shared by every test binary and crate:
/// generating them is the slow part of a first proof).
pub fn params_dir() -> PathBuf {
    std::env::temp_dir().join("lightchain-test-params")
}

/// The model file of a fixture folder: `model.onnx` (ours) or `network.onnx` (EZKL's examples).
pub fn fixture_model(dir: &Path) -> Option<PathBuf> {
    ["model.onnx", "network.onnx"]
        .iter()
        .map(|m| dir.join(m))
        .find(|p| p.exists())
}

/// Every fixture model with its input file, `(name, model, input.json)`: our generated
/// fixtures and the EZKL examples, in name order.
pub fn all_fixture_models() -> Vec<(String, PathBuf, PathBuf)> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in [fixtures_dir(), fixtures_dir().join("ezkl")] {
        dirs.extend(
            std::fs::read_dir(&d)
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
                .map(|e| e.expect("directory entry").path()),
        );
    }
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let model = fixture_model(&d)?;
            let name = d.file_name()?.to_string_lossy().into_owned();
            Some((name, model, d.join("input.json")))
        })
        .collect()
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let p = e.expect("directory entry").path();
        let dest = to.join(p.file_name().expect("a file name"));
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

/// A copy of a template project (`templates/<name>`) in a temporary folder.
pub fn template_project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy_dir(&template_dir(name), dir.path());
    dir
}

/// Rewrites a text file in place.
pub fn edit(dir: &Path, file: &str, f: impl Fn(String) -> String) {
    let p = dir.join(file);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    std::fs::write(&p, f(s)).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// A `lightchain devnet` child process, killed when dropped.
pub struct DevnetProcess {
    pub child: Child,
    /// What the devnet wrote with `--config-out` once it was serving (RPC URL, accounts, ...).
    pub config: serde_json::Value,
}

impl DevnetProcess {
    /// Starts `bin devnet ARGS --port 0 --quiet --config-out devnet.json` in `dir` with the
    /// tests' parameter cache, and returns once the devnet has written its config (it does so
    /// only when its RPC server accepts connections): no sleeping and hoping.
    pub fn spawn(bin: &Path, dir: &Path, args: &[&str]) -> DevnetProcess {
        let cfg_path = dir.join("devnet.json");
        let _ = std::fs::remove_file(&cfg_path);
        let child = Command::new(bin)
            .arg("devnet")
            .args(args)
            .args(["--port", "0", "--quiet", "--config-out", "devnet.json"])
            .current_dir(dir)
            .env("LIGHTCHAIN_PARAMS_DIR", params_dir())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut p = DevnetProcess {
            child,
            config: serde_json::Value::Null,
        };
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&cfg_path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                p.config = v;
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("the devnet exited before it was ready: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the devnet did not start within 120 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The devnet's JSON-RPC URL.
    pub fn url(&self) -> String {
        self.config["rpc_url"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for DevnetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
