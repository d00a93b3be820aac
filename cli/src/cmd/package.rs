//! `lightchain package`: one `.lcpkg` file from a project folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::proof::ParamsCache;
use lightchain_packager::Stage;
use serde::Serialize;

use crate::shell::{Human, Shell, thousands};

/// Package a project: check, quantize, compile the circuit, run the test vectors, write .lcpkg.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain package                       # the project in the current folder
  lightchain package my-model -o my-model.lcpkg
  lightchain package --json | jq .model_id

The project folder holds lightchain.toml (see the README), the ONNX model and the test vectors.
Packaging twice gives the same bytes and the same model id.")]
pub struct PackageArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the package (default: DIR/NAME-VERSION.lcpkg).
    #[arg(long, short = 'o', value_name = "OUT.lcpkg")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report {
    package: String,
    name: String,
    version: String,
    model_id: String,
    bytes: usize,
    k: u32,
    input_visibility: String,
    gas: u64,
    memory_estimate_mb: u64,
    max_rel_error: f64,
    test_vectors: usize,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "packaged  {} ({} bytes)\n",
            self.package,
            thousands(self.bytes as u64)
        ));
        out.push_str(&format!(
            "model     {} {} ({} inputs)\n",
            self.name, self.version, self.input_visibility
        ));
        out.push_str(&format!("model id  {}\n", self.model_id));
        out.push_str(&format!(
            "circuit   k = {}, about {} MB to prove, {} gas per task\n",
            self.k,
            self.memory_estimate_mb,
            thousands(self.gas)
        ));
        out.push_str(&format!(
            "checks    {} test vector(s) executed, proven and verified; max relative error {:.3}%\n",
            self.test_vectors,
            self.max_rel_error * 100.0
        ));
    }
}

/// A progress bar over the packaging stages.
pub fn stage_progress(shell: &Shell) -> (indicatif::ProgressBar, impl FnMut(Stage)) {
    let pb = shell.progress(5, "check");
    let bar = pb.clone();
    let f = move |s: Stage| match s {
        Stage::Check => bar.set_message("check"),
        Stage::Calibrate => {
            bar.set_position(1);
            bar.set_message("calibrate");
        }
        Stage::Keygen { k } => {
            bar.set_position(2);
            bar.set_message(format!("keygen k={k}"));
        }
        Stage::TestVector { index, total } => {
            bar.set_position(3);
            bar.set_message(format!("test {}/{total}", index + 1));
        }
        Stage::Write => {
            bar.set_position(4);
            bar.set_message("write");
        }
    };
    (pb, f)
}

impl PackageArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let (pb, mut progress) = stage_progress(shell);
        let result =
            lightchain_packager::build(&self.dir, &ParamsCache::from_env(), true, &mut progress);
        pb.finish_and_clear();
        let (bytes, pkg) =
            result.with_context(|| format!("failed to package {}", self.dir.display()))?;
        let out = self.out.unwrap_or_else(|| {
            self.dir
                .join(format!("{}-{}.lcpkg", pkg.info.name, pkg.info.version))
        });
        // Written to a temporary file first: a failed write never leaves half a package.
        let tmp = out.with_extension("lcpkg.tmp");
        std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
        shell.emit(&Report {
            package: out.display().to_string(),
            name: pkg.info.name.clone(),
            version: pkg.info.version.clone(),
            model_id: pkg.info.model_id.clone(),
            bytes: bytes.len(),
            k: pkg.info.k,
            input_visibility: pkg.info.input_visibility.to_string(),
            gas: pkg.gas.total,
            memory_estimate_mb: pkg.info.memory_estimate_mb,
            max_rel_error: pkg.accuracy.max_rel_error,
            test_vectors: pkg.manifest.tests.len(),
        })
    }
}
