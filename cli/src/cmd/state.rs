//! `lightchain task state`: a stateful model's state for one account, as the chain keeps it.

use clap::Args;
use lightchain_devnet::api::StateView;
use lightchain_devnet::chain::Address;
use serde_json::json;

use crate::cmd::client::NodeArgs;
use crate::shell::{Human, Shell};

/// `task state`'s arguments.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The deployed model: its id, NAME@VERSION or NAME@latest.
    pub model_id: String,
    /// Whose state [default: the signing account's]
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

struct Shown(StateView);

impl serde::Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Human for Shown {
    fn human(&self, out: &mut String) {
        let v = &self.0;
        let by = match (&v.task_id, v.height) {
            (Some(t), Some(h)) => format!("written by task {t} (block {h})"),
            _ => "the model's initial state (no task yet)".into(),
        };
        out.push_str(&format!(
            "model       {}\naccount     {}\nstate       {:?}\ncommitment  {}\n            {by}\n",
            v.model_id,
            v.account,
            v.values_float,
            lightchain_devnet::crypto::hex(&v.commitment),
        ));
    }
}

impl StateArgs {
    pub fn run(self, shell: &Shell) -> anyhow::Result<()> {
        let rpc = self.node.rpc()?;
        let account: Address = match &self.address {
            Some(a) => serde_json::from_value(json!(a))
                .map_err(|e| anyhow::anyhow!("--address {a}: not an address ({e})"))?,
            None => self.node.key()?.address(),
        };
        let view: StateView = rpc.call_as("lc_getState", json!([self.model_id, account]))?;
        shell.emit(&Shown(view))
    }
}
