//! `lightchain models`: the models deployed on a node, by name and version.

use clap::{Args, Subcommand};
use lightchain_devnet::chain::TxKind;
use lightchain_devnet::crypto::{AccountKey, dev_secret};
use lightchain_devnet::rpc::types::ListedModel;
use serde::Serialize;
use serde_json::json;

use crate::cmd::client::{NodeArgs, RpcArgs};
use crate::shell::{Human, Shell, thousands};

/// List the deployed models: name, versions, owner, k and gas per task.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lightchain models
  lightchain models --rpc http://10.0.0.5:26650 --json

A name belongs to the account that first deployed it; only that account deploys new versions,
each above the last. Tasks name a model by id, NAME@VERSION or NAME@latest. On a devnet
started with --approve-versions, a new version waits until validators holding more than 2/3
of the stake approve it: `lightchain models approve MODEL_ID --validator 0`.")]
pub struct ModelsArgs {
    #[command(flatten)]
    pub conn: RpcArgs,
    #[command(subcommand)]
    pub cmd: Option<ModelsCmd>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Approve a new version as a validator (devnet: the validator's dev account signs).
    #[command(after_help = "Examples:
  lightchain models approve digits@0.2.0 --validator 0
  lightchain models approve MODEL_ID --validator 1 --json")]
    Approve {
        /// The version waiting for approval: its id or NAME@VERSION.
        model_id: String,
        /// The approving validator's index.
        #[arg(long, value_name = "INDEX")]
        validator: usize,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Serialize)]
struct Approved {
    model_id: String,
    validator: usize,
    approvals: Vec<usize>,
    live: bool,
}

impl Human for Approved {
    fn human(&self, out: &mut String) {
        out.push_str(&format!(
            "model      {}
approved   by validator {} (approvals so far: {:?})
status     {}
",
            self.model_id,
            self.validator,
            self.approvals,
            if self.live {
                "live: more than 2/3 of the stake approved it"
            } else {
                "waiting for more approvals"
            }
        ));
    }
}

#[derive(Serialize)]
struct Models {
    models: Vec<ListedModel>,
}

impl Human for Models {
    fn human(&self, out: &mut String) {
        if self.models.is_empty() {
            out.push_str("no models deployed\n");
            return;
        }
        out.push_str(&format!(
            "{:<16} {:<10} {:<42} {:>3} {:>10} {:>7}  {:<7} {}\n",
            "name", "version", "owner", "k", "gas/task", "royalty", "inputs", "model id"
        ));
        for m in &self.models {
            let r = &m.model;
            out.push_str(&format!(
                "{:<16} {:<10} {:<42} {:>3} {:>10} {:>7}  {:<7} {}{}{}\n",
                r.name,
                r.version,
                m.owner.to_string(),
                r.k,
                thousands(r.gas),
                format!("{}%", r.royalty_bps as f64 / 100.0),
                format!("{:?}", r.input_visibility).to_lowercase(),
                &r.model_id[..16.min(r.model_id.len())],
                if m.latest { "  (latest)" } else { "" },
                if r.mode.is_proven() {
                    ""
                } else {
                    "  (attested)"
                }
            ));
            if r.pending_approval {
                out.push_str(&format!(
                    "{:<16} awaiting the validators' approval (approved by {:?})\n",
                    "", r.approvals
                ));
            }
        }
    }
}

impl ModelsArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        if let Some(ModelsCmd::Approve {
            model_id,
            validator,
            node,
        }) = self.cmd
        {
            return approve(&model_id, validator, &node, shell);
        }
        let models: Vec<ListedModel> = self.conn.rpc()?.call_as("lc_listModels", json!([]))?;
        shell.emit(&Models { models })
    }
}

/// Sends a validator's approval of a version and waits until a block took it.
fn approve(model_id: &str, validator: usize, node: &NodeArgs, shell: &Shell) -> anyhow::Result<()> {
    let rpc = node.rpc()?;
    let model: lightchain_devnet::chain::state::ModelRecord =
        rpc.call_as("lc_getModel", json!([model_id]))?;
    anyhow::ensure!(
        model.pending_approval,
        "model {model_id} is not waiting for approval"
    );
    anyhow::ensure!(
        !model.approvals.contains(&validator),
        "validator {validator} approved {model_id} already"
    );
    let key = AccountKey::from_secret(dev_secret("validator account", validator));
    let kind = TxKind::ApproveVersion {
        model_id: model.model_id.clone(),
    };
    let tx = rpc.sign(&key, node.gas_price, kind)?;
    let _: String = rpc.call_as("lc_sendTransaction", json!([tx]))?;
    let start = std::time::Instant::now();
    loop {
        let m: lightchain_devnet::chain::state::ModelRecord =
            rpc.call_as("lc_getModel", json!([model.model_id]))?;
        if m.approvals.contains(&validator) || !m.pending_approval {
            return shell.emit(&Approved {
                model_id: m.model_id,
                validator,
                approvals: m.approvals,
                live: !m.pending_approval,
            });
        }
        anyhow::ensure!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the approval of {model_id} is not in a block after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
