//! End-to-end tests of the `lightchain` binary: each test copies what it needs into a temporary
//! project folder and runs the real binary there, so that paths in the output are stable.

mod dashboard;
mod devnet;
mod gas;
mod inspect_run;
mod keys;
mod packaging;
mod prove_verify;
mod schedule;
mod state;
mod testnet;

use assert_cmd::Command;

pub use lightchain_test_utils::repo;

/// The environment variable that points the binary at the tests' shared parameter cache.
pub fn params() -> (&'static str, String) {
    (
        "LIGHTCHAIN_PARAMS_DIR",
        lightchain_test_utils::params_dir().display().to_string(),
    )
}

/// A temporary working folder with the binary ready to run in it.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Copies a file from the repository into the project under `to`.
    pub fn copy(&self, from: &str, to: &str) -> &Self {
        let dest = self.dir.path().join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(from), dest).unwrap();
        self
    }

    pub fn write(&self, to: &str, bytes: impl AsRef<[u8]>) -> &Self {
        let dest = self.dir.path().join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
        self
    }

    /// The CLI in the project, with its own config folder (keys, config.toml) and none of
    /// the machine's client settings.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("lightchain").unwrap();
        c.current_dir(self.dir.path())
            .args(args)
            .env("LIGHTCHAIN_CONFIG_DIR", self.dir.path().join("config"));
        for v in [
            "LIGHTCHAIN_RPC",
            "LIGHTCHAIN_RPC_TOKEN",
            "LIGHTCHAIN_PROFILE",
            "LIGHTCHAIN_KEY",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// Snapshot assertions stored in the repository's top-level `snapshots/`.
#[macro_export]
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => $crate::repo().join("snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
