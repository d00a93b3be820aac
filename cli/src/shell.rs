//! The output layer: human text or JSON, errors with their cause chain, and progress bars that
//! appear only on a terminal.

use std::io::{IsTerminal, Write};

use clap::Args;
use serde::Serialize;

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (and the JSON result with --json).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// Data a command returns, renderable as text.
pub trait Human {
    /// Writes the human form of the value.
    fn human(&self, out: &mut String);
}

/// Decides how results, errors and progress are shown.
#[derive(Debug, Clone)]
pub struct Shell {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    tty: bool,
}

impl Shell {
    pub fn new(g: &GlobalArgs) -> Shell {
        Shell {
            json: g.json,
            quiet: g.quiet,
            verbose: g.verbose,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Prints a command's result: JSON with `--json`, else text unless `--quiet`.
    pub fn emit<T: Serialize + Human>(&self, value: &T) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut stdout, value)?;
            writeln!(stdout)?;
        } else if !self.quiet {
            let mut s = String::new();
            value.human(&mut s);
            stdout.write_all(s.as_bytes())?;
        }
        Ok(())
    }

    /// Prints an error and its causes: `{"error": ...}` on stdout with `--json`, text on stderr.
    pub fn error(&self, e: &anyhow::Error) {
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        if self.json {
            let v = serde_json::json!({ "error": { "message": chain.join(": "), "chain": chain } });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            let mut s = format!("error: {}", chain[0]);
            for c in &chain[1..] {
                s.push_str(&format!("\n  caused by: {c}"));
            }
            eprintln!("{s}");
        }
    }

    /// A progress bar for long work: visible on a terminal in text mode, hidden otherwise.
    pub fn progress(&self, len: u64, msg: &str) -> indicatif::ProgressBar {
        self.bar(len, msg, "{pos}/{len} {elapsed}")
    }

    /// A progress bar over `len` bytes (hidden like [`Self::progress`]).
    pub fn bytes_progress(&self, len: u64, msg: &str) -> indicatif::ProgressBar {
        self.bar(len, msg, "{bytes}/{total_bytes} {bytes_per_sec} {eta}")
    }

    fn bar(&self, len: u64, msg: &str, counts: &str) -> indicatif::ProgressBar {
        if self.json || self.quiet || !self.tty {
            return indicatif::ProgressBar::hidden();
        }
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {{msg:<12}} [{{bar:30}}] {counts}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        pb
    }
}

/// Formats a shape as `[1, 64]`.
pub fn shape(s: &[usize]) -> String {
    lightchain_aivm::error::ShapeDisplay(s.to_vec()).to_string()
}

/// Groups thousands: `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
