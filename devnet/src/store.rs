//! Persistence of a devnet (`--state DIR`): committed blocks, the state after each height,
//! receipts and deployed packages in one redb database. Validators commit the same blocks; the
//! first to commit a height writes it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::chain::exec::Runtime;
use crate::chain::{CommittedBlock, Receipt, State, TxKind};

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const STATES: TableDefinition<u64, &[u8]> = TableDefinition::new("states");
const RECEIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("receipts");
const PACKAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("packages");

/// The devnet's database.
pub struct Store {
    db: Database,
    /// Highest height written (writes below it are duplicates from other validators).
    written: Mutex<u64>,
}

/// What a database holds.
pub struct Loaded {
    /// States after heights 0 (genesis) to the last one.
    pub states: Vec<State>,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    pub packages: Vec<Vec<u8>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Store {
    /// Opens (or creates) `DIR/devnet.redb`.
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let db = Database::create(dir.join("devnet.redb"))
            .map_err(|e| format!("cannot open the state database: {e}"))?;
        let tx = db.begin_write().map_err(err)?;
        {
            tx.open_table(BLOCKS).map_err(err)?;
            tx.open_table(STATES).map_err(err)?;
            tx.open_table(RECEIPTS).map_err(err)?;
            tx.open_table(PACKAGES).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        let store = Store {
            db,
            written: Mutex::new(0),
        };
        let h = store
            .load()?
            .map_or(0, |l| l.states.len().saturating_sub(1) as u64);
        *store.written.lock().expect("store") = h;
        Ok(store)
    }

    /// Writes the genesis state of a new database.
    pub fn init(&self, genesis: &State) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(STATES).map_err(err)?;
            t.insert(0u64, serde_json::to_vec(genesis).map_err(err)?.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Persists a committed height (once, whichever validator gets here first).
    pub fn put(
        &self,
        block: &CommittedBlock,
        state: &State,
        receipts: &BTreeMap<String, Receipt>,
        rt: &Runtime,
    ) {
        let mut written = self.written.lock().expect("store");
        if block.block.height <= *written {
            return;
        }
        let write = || -> Result<(), String> {
            let tx = self.db.begin_write().map_err(err)?;
            {
                let h = block.block.height;
                tx.open_table(BLOCKS)
                    .map_err(err)?
                    .insert(h, serde_json::to_vec(block).map_err(err)?.as_slice())
                    .map_err(err)?;
                tx.open_table(STATES)
                    .map_err(err)?
                    .insert(h, serde_json::to_vec(state).map_err(err)?.as_slice())
                    .map_err(err)?;
                let mut rt_table = tx.open_table(RECEIPTS).map_err(err)?;
                for r in receipts.values().filter(|r| r.block_height == h) {
                    rt_table
                        .insert(
                            r.task_id.as_str(),
                            serde_json::to_vec(r).map_err(err)?.as_slice(),
                        )
                        .map_err(err)?;
                }
                let mut pk = tx.open_table(PACKAGES).map_err(err)?;
                for t in &block.block.txs {
                    if let TxKind::DeployModel { package } = &t.body.kind
                        && let Ok(p) = rt.load_package(package)
                    {
                        pk.insert(p.info.model_id.as_str(), package.as_slice())
                            .map_err(err)?;
                    }
                }
            }
            tx.commit().map_err(err)
        };
        // A devnet without its database keeps running; the failure is visible on restart.
        if write().is_ok() {
            *written = block.block.height;
        }
    }

    /// Drops everything above `height` (dev_revert).
    pub fn truncate(&self, height: u64, _state: &State, receipts: &BTreeMap<String, Receipt>) {
        let mut written = self.written.lock().expect("store");
        let run = || -> Result<(), String> {
            let tx = self.db.begin_write().map_err(err)?;
            {
                tx.open_table(BLOCKS)
                    .map_err(err)?
                    .retain(|h, _| h <= height)
                    .map_err(err)?;
                tx.open_table(STATES)
                    .map_err(err)?
                    .retain(|h, _| h <= height)
                    .map_err(err)?;
                tx.open_table(RECEIPTS)
                    .map_err(err)?
                    .retain(|id, _| receipts.contains_key(id))
                    .map_err(err)?;
            }
            tx.commit().map_err(err)
        };
        if run().is_ok() {
            *written = height;
        }
    }

    /// Everything stored, or `None` for a new database.
    pub fn load(&self) -> Result<Option<Loaded>, String> {
        let tx = self.db.begin_read().map_err(err)?;
        let states_t = tx.open_table(STATES).map_err(err)?;
        let mut states = Vec::new();
        for row in states_t.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            states.push(
                serde_json::from_slice::<State>(v.value())
                    .map_err(|e| format!("corrupt state: {e}"))?,
            );
        }
        if states.is_empty() {
            return Ok(None);
        }
        let mut blocks = Vec::new();
        for row in tx.open_table(BLOCKS).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            blocks.push(
                serde_json::from_slice::<CommittedBlock>(v.value())
                    .map_err(|e| format!("corrupt block: {e}"))?,
            );
        }
        let mut receipts = BTreeMap::new();
        for row in tx.open_table(RECEIPTS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            receipts.insert(
                k.value().to_string(),
                serde_json::from_slice::<Receipt>(v.value())
                    .map_err(|e| format!("corrupt receipt: {e}"))?,
            );
        }
        let mut packages = Vec::new();
        for row in tx.open_table(PACKAGES).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            packages.push(v.value().to_vec());
        }
        Ok(Some(Loaded {
            states,
            blocks,
            receipts,
            packages,
        }))
    }
}
