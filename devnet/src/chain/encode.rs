//! The canonical binary encoding of everything the chain hashes or signs: transactions, task
//! results, blocks and the state. It is the AIVM's varint wire format
//! ([`lightchain_aivm::wire`]): integers as varints (signed ones zigzagged), fixed-size byte
//! strings as they are, variable ones length-prefixed, enums as a tag then their fields, maps in
//! key order. One value has one encoding, whatever serializer a client used to send it; JSON is
//! only the RPC's transport.

use lightchain_aivm::circuit::Visibility;
use lightchain_aivm::wire::W;
use serde_json::Value;

use super::state::{
    Account, EvidenceRecord, ModelRecord, ProvingMode, Schedule, ScheduleStatus, State, Task,
    TaskStatus, ValidatorRecord,
};
use super::{Address, Block, Claim, Evidence, SignedTx, TaskInput, TaskResult, TxBody, TxKind};
use crate::crypto::WrappedKey;

/// A value with one canonical byte encoding.
pub trait Canonical {
    fn enc(&self, w: &mut W);

    /// The canonical bytes.
    fn canonical(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        self.enc(&mut w);
        w.0
    }
}

/// blake3 of `domain` followed by a value's canonical bytes.
pub fn hash(domain: &str, v: &impl Canonical) -> [u8; 32] {
    let mut w = W(Vec::new());
    w.str(domain);
    v.enc(&mut w);
    *blake3::hash(&w.0).as_bytes()
}

fn bytes(w: &mut W, b: &[u8]) {
    w.len(b.len());
    w.0.extend_from_slice(b);
}

fn mode(w: &mut W, m: ProvingMode) {
    w.u(match m {
        ProvingMode::Proven => 0,
        ProvingMode::Attested => 1,
    });
}

fn amount(w: &mut W, v: u128) {
    w.u(v as u64);
    w.u((v >> 64) as u64);
}

impl Canonical for u64 {
    fn enc(&self, w: &mut W) {
        w.u(*self);
    }
}

impl Canonical for String {
    fn enc(&self, w: &mut W) {
        w.str(self);
    }
}

impl Canonical for [u8; 32] {
    fn enc(&self, w: &mut W) {
        w.0.extend_from_slice(self);
    }
}

impl Canonical for Address {
    fn enc(&self, w: &mut W) {
        w.0.extend_from_slice(&self.0);
    }
}

impl<T: Canonical> Canonical for Vec<T> {
    fn enc(&self, w: &mut W) {
        w.len(self.len());
        self.iter().for_each(|x| x.enc(w));
    }
}

impl<T: Canonical> Canonical for Option<T> {
    fn enc(&self, w: &mut W) {
        match self {
            None => w.u(0),
            Some(x) => {
                w.u(1);
                x.enc(w);
            }
        }
    }
}

impl Canonical for i64 {
    fn enc(&self, w: &mut W) {
        w.i(*self);
    }
}

/// JSON values (public task inputs): a tag, then the value; numbers as integers where they
/// are, else as the bits of their `f64`; objects in key order (serde_json keeps them sorted).
impl Canonical for Value {
    fn enc(&self, w: &mut W) {
        match self {
            Value::Null => w.u(0),
            Value::Bool(b) => {
                w.u(1);
                w.u(*b as u64);
            }
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    w.u(2);
                    w.i(i);
                } else if let Some(u) = n.as_u64() {
                    w.u(3);
                    w.u(u);
                } else {
                    w.u(4);
                    w.0.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
                }
            }
            Value::String(s) => {
                w.u(5);
                w.str(s);
            }
            Value::Array(a) => {
                w.u(6);
                w.len(a.len());
                a.iter().for_each(|x| x.enc(w));
            }
            Value::Object(m) => {
                w.u(7);
                w.len(m.len());
                for (k, v) in m {
                    w.str(k);
                    v.enc(w);
                }
            }
        }
    }
}

impl Canonical for WrappedKey {
    fn enc(&self, w: &mut W) {
        w.len(self.validator);
        self.ephemeral.enc(w);
        bytes(w, &self.wrapped);
    }
}

impl Canonical for TaskInput {
    fn enc(&self, w: &mut W) {
        match self {
            TaskInput::Public { inputs } => {
                w.u(0);
                inputs.enc(w);
            }
            TaskInput::Encrypted {
                commitment,
                ciphertext,
                keys,
            } => {
                w.u(1);
                commitment.enc(w);
                bytes(w, ciphertext);
                keys.enc(w);
            }
        }
    }
}

impl Canonical for TxKind {
    fn enc(&self, w: &mut W) {
        match self {
            TxKind::Transfer { to, amount: a } => {
                w.u(0);
                to.enc(w);
                amount(w, *a);
            }
            TxKind::DeployModel { package } => {
                w.u(1);
                bytes(w, package);
            }
            TxKind::SubmitTask {
                model_id,
                gas_limit,
                input,
            } => {
                w.u(2);
                w.str(model_id);
                w.u(*gas_limit);
                input.enc(w);
            }
            TxKind::Unjail { validator } => {
                w.u(3);
                w.len(*validator);
            }
            TxKind::ScheduleTask {
                model_id,
                gas_limit,
                input,
                every,
                count,
                deposit,
            } => {
                w.u(4);
                w.str(model_id);
                w.u(*gas_limit);
                input.enc(w);
                w.u(*every);
                w.u(*count as u64);
                amount(w, *deposit);
            }
            TxKind::CancelSchedule { schedule_id } => {
                w.u(5);
                w.str(schedule_id);
            }
            TxKind::ApproveVersion { model_id } => {
                w.u(6);
                w.str(model_id);
            }
        }
    }
}

impl Canonical for TxBody {
    fn enc(&self, w: &mut W) {
        self.from.enc(w);
        w.u(self.nonce);
        w.u(self.gas_price);
        self.kind.enc(w);
    }
}

impl Canonical for SignedTx {
    fn enc(&self, w: &mut W) {
        self.body.enc(w);
        bytes(w, &self.signature);
    }
}

impl Canonical for Claim {
    fn enc(&self, w: &mut W) {
        match self {
            Claim::Proof {
                outputs,
                proof,
                state,
            } => {
                w.u(0);
                outputs.enc(w);
                bytes(w, proof);
                match state {
                    None => w.u(0),
                    Some(s) => {
                        w.u(1);
                        s.values.enc(w);
                        s.salt.enc(w);
                    }
                }
            }
            Claim::SubmitterFault { shared } => {
                w.u(1);
                shared.enc(w);
            }
            Claim::Attestation { outputs } => {
                w.u(2);
                outputs.enc(w);
            }
        }
    }
}

impl Canonical for TaskResult {
    fn enc(&self, w: &mut W) {
        w.str(&self.task_id);
        w.u(self.attempt as u64);
        w.len(self.executor);
        self.claim.enc(w);
        bytes(w, &self.signature);
    }
}

impl Canonical for Evidence {
    fn enc(&self, w: &mut W) {
        self.result.enc(w);
        w.str(&self.reason);
    }
}

impl Canonical for Block {
    fn enc(&self, w: &mut W) {
        w.u(self.height);
        self.parent.enc(w);
        w.u(self.timestamp_ms);
        w.len(self.proposer);
        self.txs.enc(w);
        self.results.enc(w);
        self.evidence.enc(w);
        self.reassign.enc(w);
        self.state_root.enc(w);
    }
}

impl Canonical for Account {
    fn enc(&self, w: &mut W) {
        amount(w, self.balance);
        w.u(self.nonce);
    }
}

fn visibility(w: &mut W, v: Visibility) {
    w.u(match v {
        Visibility::Public => 0,
        Visibility::Hashed => 1,
    });
}

impl Canonical for ModelRecord {
    fn enc(&self, w: &mut W) {
        w.str(&self.model_id);
        w.str(&self.program_id);
        w.str(&self.name);
        w.str(&self.version);
        self.deployer.enc(w);
        w.u(self.height);
        visibility(w, self.input_visibility);
        w.u(self.k as u64);
        w.u(self.gas);
        self.package_hash.enc(w);
        w.u(self.package_bytes);
        mode(w, self.mode);
        w.u(self.royalty_bps);
        w.u(u64::from(self.pending_approval));
        w.usizes(&self.approvals);
    }
}

impl Canonical for TaskStatus {
    fn enc(&self, w: &mut W) {
        match self {
            TaskStatus::Pending {
                attempt,
                executor,
                since_ms,
                deadline_ms,
            } => {
                w.u(0);
                w.u(*attempt as u64);
                w.len(*executor);
                w.u(*since_ms);
                w.u(*deadline_ms);
            }
            TaskStatus::Completed { height, executor } => {
                w.u(1);
                w.u(*height);
                w.len(*executor);
            }
            TaskStatus::Failed {
                reason,
                submitter_fault,
            } => {
                w.u(2);
                w.str(reason);
                w.u(*submitter_fault as u64);
            }
        }
    }
}

impl Canonical for Task {
    fn enc(&self, w: &mut W) {
        w.str(&self.id);
        w.str(&self.model_id);
        self.submitter.enc(w);
        w.u(self.gas);
        w.u(self.gas_price);
        amount(w, self.fee);
        self.input.enc(w);
        w.u(self.submitted_height);
        w.usizes(&self.failed_executors);
        w.len(self.attestations.len());
        for a in &self.attestations {
            w.len(a.validator);
            a.outputs.enc(w);
        }
        self.schedule.enc(w);
        self.status.enc(w);
    }
}

impl Canonical for ScheduleStatus {
    fn enc(&self, w: &mut W) {
        match self {
            ScheduleStatus::Active => w.u(0),
            ScheduleStatus::Finished => w.u(1),
            ScheduleStatus::Cancelled { height } => {
                w.u(2);
                w.u(*height);
            }
            ScheduleStatus::Stopped { reason } => {
                w.u(3);
                w.str(reason);
            }
        }
    }
}

impl Canonical for Schedule {
    fn enc(&self, w: &mut W) {
        w.str(&self.id);
        self.owner.enc(w);
        w.str(&self.model_id);
        w.u(self.gas);
        w.u(self.gas_price);
        self.input.enc(w);
        w.u(self.every);
        w.u(self.count as u64);
        self.runs.enc(w);
        w.u(self.next_height);
        amount(w, self.deposit);
        self.status.enc(w);
    }
}

impl Canonical for ValidatorRecord {
    fn enc(&self, w: &mut W) {
        w.len(self.index);
        self.account.enc(w);
        self.account_key.enc(w);
        self.consensus_key.enc(w);
        self.encryption_key.enc(w);
        amount(w, self.stake);
        w.u(self.penalties as u64);
        self.jailed_until.enc(w);
    }
}

impl Canonical for EvidenceRecord {
    fn enc(&self, w: &mut W) {
        w.u(self.height);
        w.str(&self.task_id);
        w.len(self.executor);
        w.str(&self.reason);
        amount(w, self.slashed);
    }
}

impl Canonical for State {
    fn enc(&self, w: &mut W) {
        w.str(&self.chain_id);
        w.u(self.height);
        self.last_hash.enc(w);
        w.u(self.last_timestamp_ms);
        w.len(self.accounts.len());
        for (a, acct) in &self.accounts {
            a.enc(w);
            acct.enc(w);
        }
        w.len(self.models.len());
        for (id, m) in &self.models {
            w.str(id);
            m.enc(w);
        }
        w.len(self.tasks.len());
        for (id, t) in &self.tasks {
            w.str(id);
            t.enc(w);
        }
        self.validators.enc(w);
        self.evidence.enc(w);
        w.len(self.schedules.len());
        for (id, s) in &self.schedules {
            w.str(id);
            s.enc(w);
        }
        w.len(self.states.len());
        for (key, s) in &self.states {
            w.str(key);
            s.values.enc(w);
            s.salt.enc(w);
            s.commitment.enc(w);
            w.str(&s.task_id);
            w.u(s.height);
        }
        amount(w, self.burned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_inputs_encode_by_value_not_by_text() {
        let a: Value = serde_json::from_str(r#"{"b": [1, 2.5], "a": {"x": -3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "a":{"x":-3},"b":[1,2.50] }"#).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        let c: Value = serde_json::from_str(r#"{"a": {"x": -3}, "b": [1, 2.25]}"#).unwrap();
        assert_ne!(a.canonical(), c.canonical());
    }

    #[test]
    fn amounts_above_u64_are_distinct() {
        let mut a = W(Vec::new());
        amount(&mut a, 1u128 << 64);
        let mut b = W(Vec::new());
        amount(&mut b, 1);
        assert_ne!(a.0, b.0);
    }
}
