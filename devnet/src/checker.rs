//! The out-of-process check of an uploaded package: a crafted model can crash or hang a model
//! loader, so a deployment is loaded first by a child process (`lightchain check-package`),
//! with a time limit, before anything in the node touches it.

use std::time::{Duration, Instant};

use crate::error::{DevnetError, Result};

/// The longest a package check may take (packaging-time guards make real ones take seconds).
const CHECKER_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the package checker on `package` in a child process.
pub fn check_package_out_of_process(checker: &std::path::Path, package: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new(checker)
        .arg("check-package")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            DevnetError::Config(format!(
                "cannot run the package checker {}: {e}",
                checker.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A checker that exits early closes the pipe; its exit status says why.
        let _ = stdin.write_all(package);
    }
    // A loader that hangs costs the upload, not a request thread.
    let deadline = Instant::now() + CHECKER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DevnetError::InvalidPackage(format!(
                    "checking it took longer than {} s",
                    CHECKER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(DevnetError::Config(format!("package checker: {e}"))),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_end(&mut stderr);
    }
    let msg = String::from_utf8_lossy(&stderr);
    let first = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the package checker crashed");
    Err(DevnetError::InvalidPackage(
        first.trim_start_matches("error: ").to_string(),
    ))
}
