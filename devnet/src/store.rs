//! Persistence of a devnet (`--state DIR`): committed blocks, the state after the last one,
//! receipts and deployed packages, the validators' encryption keys, and the transactions the
//! API acknowledged but no block has included yet, in one redb database. Validators commit the
//! same blocks; the first to commit a height writes it. Every write either commits or returns
//! its error: a validator whose store fails stops (see [`crate::validator::Fatal`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::chain::Runtime;
use crate::chain::{CommittedBlock, Receipt, SignedTx, State, TxKind};
use crate::lock::Lock;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const STATES: TableDefinition<u64, &[u8]> = TableDefinition::new("states");
const RECEIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("receipts");
const PACKAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("packages");
const KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("encryption_keys");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending_txs");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state database: {0}")]
    Open(String),
    /// The database failed (the reason is the database's).
    #[error("{0}")]
    Db(String),
    /// Writes were made to fail (`dev` fault injection).
    #[error("writes fail (fault injected)")]
    Injected,
    #[error("a stored encryption key is not 32 bytes")]
    BadKey,
    /// A stored record does not decode.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// The devnet's database.
pub struct Store {
    db: Database,
    dir: PathBuf,
    /// Highest height written (writes below it are duplicates from other validators).
    written: Lock<u64>,
    /// Fault injection: every write fails while set.
    failing: std::sync::atomic::AtomicBool,
}

/// What a database holds.
pub struct Loaded {
    /// The state after the last block (genesis in a database without blocks).
    pub state: State,
    pub blocks: Vec<CommittedBlock>,
    pub receipts: BTreeMap<String, Receipt>,
    pub packages: Vec<Vec<u8>>,
    /// Transactions acknowledged to clients and not yet in a block.
    pub pending: Vec<SignedTx>,
}

impl Loaded {
    /// A chain with nothing but its first state.
    pub fn at_genesis(state: State) -> Loaded {
        Loaded {
            state,
            blocks: vec![],
            receipts: BTreeMap::new(),
            packages: vec![],
            pending: vec![],
        }
    }
}

impl Store {
    /// Opens (or creates) `DIR/devnet.redb`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(dir.join("devnet.redb"))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let tx = db.begin_write().map_err(err)?;
        {
            tx.open_table(BLOCKS).map_err(err)?;
            tx.open_table(STATES).map_err(err)?;
            tx.open_table(RECEIPTS).map_err(err)?;
            tx.open_table(PACKAGES).map_err(err)?;
            tx.open_table(KEYS).map_err(err)?;
            tx.open_table(PENDING).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        let store = Store {
            db,
            dir: dir.to_path_buf(),
            written: Lock::new(0),
            failing: Default::default(),
        };
        let h = store.load()?.map_or(0, |l| l.state.height);
        *store.written.lock() = h;
        Ok(store)
    }

    /// Fault injection: makes every write fail (as a full or broken disk would) until unset.
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn writable(&self) -> Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Injected);
        }
        Ok(())
    }

    /// Where validator `index` keeps its write-ahead log.
    pub fn wal_path(&self, index: usize) -> PathBuf {
        self.dir.join("wal").join(format!("validator-{index}.wal"))
    }

    /// Writes the genesis state of a new database.
    pub fn init(&self, genesis: &State) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(STATES).map_err(err)?;
            t.insert(0u64, serde_json::to_vec(genesis).map_err(err)?.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The validators' encryption secrets, by index (empty for a new database).
    pub fn encryption_keys(&self) -> Result<BTreeMap<usize, [u8; 32]>> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(KEYS).map_err(err)?;
        let mut out = BTreeMap::new();
        for row in t.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let key: [u8; 32] = v.value().try_into().map_err(|_| StoreError::BadKey)?;
            out.insert(k.value() as usize, key);
        }
        Ok(out)
    }

    /// Stores the validators' encryption secrets (once, with the genesis state).
    pub fn put_encryption_keys(&self, keys: &[[u8; 32]]) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(KEYS).map_err(err)?;
            for (i, k) in keys.iter().enumerate() {
                t.insert(i as u64, k.as_slice()).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Records a transaction acknowledged to a client, before the acknowledgement.
    pub fn add_pending(&self, hash: &[u8; 32], tx: &SignedTx) -> Result<()> {
        self.writable()?;
        let w = self.db.begin_write().map_err(err)?;
        {
            let mut t = w.open_table(PENDING).map_err(err)?;
            t.insert(
                hash.as_slice(),
                serde_json::to_vec(tx).map_err(err)?.as_slice(),
            )
            .map_err(err)?;
        }
        w.commit().map_err(err)
    }

    /// Forgets acknowledged transactions that will never enter a block (their nonce is
    /// used, or they were replaced).
    pub fn drop_pending(&self, hashes: &[[u8; 32]]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(err)?;
        {
            let mut t = w.open_table(PENDING).map_err(err)?;
            for h in hashes {
                t.remove(h.as_slice()).map_err(err)?;
            }
        }
        w.commit().map_err(err)
    }

    /// Persists a committed height (once, whichever validator gets here first), and drops
    /// the pending transactions it includes.
    pub fn put(
        &self,
        block: &CommittedBlock,
        state: &State,
        receipts: &[Receipt],
        rt: &Runtime,
    ) -> Result<()> {
        let mut written = self.written.lock();
        if block.block.height <= *written {
            return Ok(());
        }
        self.writable()?;
        let tx = self.db.begin_write().map_err(err)?;
        {
            let h = block.block.height;
            tx.open_table(BLOCKS)
                .map_err(err)?
                .insert(h, serde_json::to_vec(block).map_err(err)?.as_slice())
                .map_err(err)?;
            // Only the latest state: a copy per height would grow with the chain.
            let mut states = tx.open_table(STATES).map_err(err)?;
            states.retain(|_, _| false).map_err(err)?;
            states
                .insert(h, serde_json::to_vec(state).map_err(err)?.as_slice())
                .map_err(err)?;
            let mut rt_table = tx.open_table(RECEIPTS).map_err(err)?;
            for r in receipts {
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
                    && rt.load_package(package).is_ok()
                {
                    let hash = crate::crypto::hex(blake3::hash(package).as_bytes());
                    pk.insert(hash.as_str(), package.as_slice()).map_err(err)?;
                }
            }
            let mut pending = tx.open_table(PENDING).map_err(err)?;
            for t in &block.block.txs {
                pending.remove(t.hash().as_slice()).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        *written = block.block.height;
        Ok(())
    }

    /// Drops everything above `height`, whose state is `state` (dev_revert).
    pub fn truncate(
        &self,
        height: u64,
        state: &State,
        receipts: &BTreeMap<String, Receipt>,
    ) -> Result<()> {
        let mut written = self.written.lock();
        self.writable()?;
        let tx = self.db.begin_write().map_err(err)?;
        {
            tx.open_table(BLOCKS)
                .map_err(err)?
                .retain(|h, _| h <= height)
                .map_err(err)?;
            let mut states = tx.open_table(STATES).map_err(err)?;
            states.retain(|_, _| false).map_err(err)?;
            states
                .insert(height, serde_json::to_vec(state).map_err(err)?.as_slice())
                .map_err(err)?;
            drop(states);
            tx.open_table(RECEIPTS)
                .map_err(err)?
                .retain(|id, _| receipts.contains_key(id))
                .map_err(err)?;
            tx.open_table(PENDING)
                .map_err(err)?
                .retain(|_, _| false)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        *written = height;
        Ok(())
    }

    /// Everything stored, or `None` for a new database.
    pub fn load(&self) -> Result<Option<Loaded>> {
        let tx = self.db.begin_read().map_err(err)?;
        let states_t = tx.open_table(STATES).map_err(err)?;
        let Some(row) = states_t.last().map_err(err)? else {
            return Ok(None);
        };
        let state = serde_json::from_slice::<State>(row.1.value()).map_err(corrupt("state"))?;
        let mut blocks = Vec::new();
        for row in tx.open_table(BLOCKS).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            blocks.push(
                serde_json::from_slice::<CommittedBlock>(v.value()).map_err(corrupt("block"))?,
            );
        }
        let mut receipts = BTreeMap::new();
        for row in tx.open_table(RECEIPTS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            receipts.insert(
                k.value().to_string(),
                serde_json::from_slice::<Receipt>(v.value()).map_err(corrupt("receipt"))?,
            );
        }
        let mut packages = Vec::new();
        for row in tx.open_table(PACKAGES).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            packages.push(v.value().to_vec());
        }
        let mut pending = Vec::new();
        for row in tx.open_table(PENDING).map_err(err)?.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            pending.push(
                serde_json::from_slice::<SignedTx>(v.value())
                    .map_err(corrupt("pending transaction"))?,
            );
        }
        Ok(Some(Loaded {
            state,
            blocks,
            receipts,
            packages,
            pending,
        }))
    }
}
