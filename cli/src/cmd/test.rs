//! `lightchain test`: every test vector through package, prove and verify, with JUnit output.

use lightchain_packager::manifest::ProvingMode;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use lightchain_aivm::Program;
use lightchain_aivm::proof::ParamsCache;
use lightchain_aivm::segment::ModelKeys;
use serde::Serialize;

use crate::cmd::package::stage_progress;
use crate::shell::{Human, Shell};

/// Run the manifest's test vectors: package, execute, prove, verify. Non-zero exit on any failure.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain test
  lightchain test my-model --junit junit.xml      # for CI systems
  lightchain test --json | jq '.cases[] | select(.passed | not)'")]
pub struct TestArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Serialize, Clone)]
struct Case {
    name: String,
    passed: bool,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof_bytes: Option<usize>,
}

#[derive(Serialize)]
struct Report {
    package: String,
    model_id: Option<String>,
    passed: usize,
    failed: usize,
    cases: Vec<Case>,
}

impl Human for Report {
    fn human(&self, out: &mut String) {
        for c in &self.cases {
            match &c.failure {
                None => out.push_str(&format!("ok      {} ({:.2}s)\n", c.name, c.seconds)),
                Some(f) => out.push_str(&format!("FAILED  {} ({:.2}s): {f}\n", c.name, c.seconds)),
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} failed ({})\n",
            self.passed, self.failed, self.package
        ));
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| !c.passed).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n",
        xml_escape(suite),
        cases.len()
    );
    for c in cases {
        x.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(suite),
            xml_escape(&c.name),
            c.seconds
        ));
        match &c.failure {
            None => x.push_str("/>\n"),
            Some(f) => x.push_str(&format!(
                ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                xml_escape(f)
            )),
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

impl TestArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let params = ParamsCache::from_env();
        let (pb, mut progress) = stage_progress(shell);
        let start = Instant::now();
        let built = lightchain_packager::build(&self.dir, &params, false, &mut progress);
        let mut cases = Vec::new();
        let (suite, model_id) = match &built {
            Err(e) => {
                cases.push(Case {
                    name: "package".into(),
                    passed: false,
                    seconds: start.elapsed().as_secs_f64(),
                    failure: Some(e.to_string()),
                    proof_bytes: None,
                });
                (self.dir.display().to_string(), None)
            }
            Ok((_, pkg)) => {
                cases.push(Case {
                    name: "package".into(),
                    passed: true,
                    seconds: start.elapsed().as_secs_f64(),
                    failure: None,
                    proof_bytes: None,
                });
                if pkg.info.mode == ProvingMode::Attested {
                    // Attested: executed against its expectations, never proven.
                    for t in &pkg.manifest.tests {
                        let start = Instant::now();
                        let r = lightchain_packager::package::execute_vector(
                            &self.dir,
                            &pkg.model,
                            &pkg.program,
                            t,
                        );
                        cases.push(Case {
                            name: t.name.clone(),
                            passed: r.is_ok(),
                            seconds: start.elapsed().as_secs_f64(),
                            proof_bytes: None,
                            failure: r.err(),
                        });
                    }
                } else {
                    self.prove_vectors(pkg, &params, &mut progress, &mut cases)?;
                }
                (pkg.info.name.clone(), Some(pkg.info.model_id.clone()))
            }
        };
        pb.finish_and_clear();
        if let Some(path) = &self.junit {
            std::fs::write(path, junit(&suite, &cases))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let failed = cases.iter().filter(|c| !c.passed).count();
        shell.emit(&Report {
            package: suite,
            model_id,
            passed: cases.len() - failed,
            failed,
            cases,
        })?;
        anyhow::ensure!(failed == 0, "{failed} test(s) failed");
        Ok(())
    }

    /// Runs every test vector through the executor and the prover, the proof verified with
    /// keys derived from the program alone.
    fn prove_vectors(
        &self,
        pkg: &lightchain_packager::Package,
        params: &ParamsCache,
        progress: &mut dyn FnMut(lightchain_packager::Stage),
        cases: &mut Vec<Case>,
    ) -> anyhow::Result<()> {
        let keys = pkg.keys(params, true)?;
        let verifier = ModelKeys::derive(
            Arc::new(Program::decode(&pkg.program.encode())?),
            pkg.info.input_visibility,
            pkg.manifest.limits.memory_mb,
            params,
            false,
        )?;
        let total = pkg.manifest.tests.len();
        for (i, t) in pkg.manifest.tests.iter().enumerate() {
            progress(lightchain_packager::Stage::TestVector { index: i, total });
            let start = Instant::now();
            let r = lightchain_packager::package::run_test_vector(
                &self.dir, &pkg.model, &keys, &verifier, t, i as u64,
            );
            cases.push(Case {
                name: t.name.clone(),
                passed: r.is_ok(),
                seconds: start.elapsed().as_secs_f64(),
                proof_bytes: r.as_ref().ok().map(|r| r.proof_bytes),
                failure: r.err(),
            });
        }
        Ok(())
    }
}
