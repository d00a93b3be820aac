//! Validators talking over HTTP instead of in-process channels: each validator listens on its
//! own address (`POST /p2p`, header `x-lightchain-from: INDEX`, header `x-lightchain-sig`: the
//! sender's signature ([`PeerAuth`]), body: one [`crate::wire`] message; unsigned or
//! wrongly signed messages are refused with 401 before they are decoded); a message to it is encoded and queued for one sender thread per destination,
//! which posts it over a kept-alive connection, in order. A message that cannot be queued
//! (queue full) or posted (peer down) is dropped and counted: consensus rebroadcasts and block
//! sync make up for lost messages, as they do for a partition. The node's local controls
//! (mine, revert, stop) never travel.
//!
//! In a devnet every validator's listener is on loopback in the one process (messages really
//! cross sockets and the codec); a `lightchain node` process opens its own validator's
//! listener and sends to its peers' addresses ([`Links`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::error::{DevnetError, Result};
use crate::net::{NetMsg, Network};

/// Header naming the sending validator.
pub const FROM_HEADER: &str = "x-lightchain-from";
/// Header carrying the sender's signature of the message ([`PeerAuth`]).
pub const SIG_HEADER: &str = "x-lightchain-sig";
/// Messages waiting per destination before new ones are dropped.
pub const QUEUE: usize = 8192;
/// Messages a listener receives at once (more are answered 503 and dropped, like a full
/// queue).
pub const RECEIVING: usize = 64;
/// Largest message accepted (a block may carry packages).
pub const MAX_MESSAGE: usize = 256 << 20;

/// A queued message: sender, signature, body.
type Outgoing = (usize, String, Vec<u8>);

/// Counters of the transport (all destinations together).
#[derive(Debug, Default)]
pub struct TransportStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Dropped: queue full or the peer could not be reached.
    pub dropped: AtomicU64,
    /// Refused on arrival: not a message, or from no validator.
    pub refused: AtomicU64,
}

/// The HTTP links of the validators in this process.
pub struct Transport {
    queues: Vec<SyncSender<Outgoing>>,
    /// Each validator's listening address.
    pub addrs: Vec<SocketAddr>,
    /// A node process's own validator (see [`Links::me`]).
    pub me: Option<usize>,
    auth: Arc<PeerAuth>,
    pub stats: Arc<TransportStats>,
    shutdown: crate::lock::Lock<Vec<tokio::sync::oneshot::Sender<()>>>,
}

#[derive(Clone)]
struct Inbox {
    to: usize,
    net: Network,
    stats: Arc<TransportStats>,
    auth: Arc<PeerAuth>,
    /// Messages being received at once.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Who may speak for which validator: every message is signed with its sender's validator
/// account key, over the chain id, sender, destination and body, and checked on arrival
/// against the key the genesis state records for that index.
pub struct PeerAuth {
    pub chain_id: String,
    /// Account keys of the validators this process runs, by index.
    pub secrets: std::collections::HashMap<usize, crate::crypto::AccountKey>,
    /// Every validator's account public key, by index.
    pub publics: Vec<[u8; 32]>,
}

/// What a sender signs: the chain id, sender, destination and body.
pub fn message_digest(chain_id: &str, from: usize, to: usize, body: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("lightchain p2p message v1");
    h.update(&(chain_id.len() as u64).to_le_bytes());
    h.update(chain_id.as_bytes());
    h.update(&(from as u64).to_le_bytes());
    h.update(&(to as u64).to_le_bytes());
    h.update(body);
    *h.finalize().as_bytes()
}

impl PeerAuth {
    fn digest(&self, from: usize, to: usize, body: &[u8]) -> [u8; 32] {
        message_digest(&self.chain_id, from, to, body)
    }

    fn sign(&self, from: usize, to: usize, body: &[u8]) -> Option<String> {
        let key = self.secrets.get(&from)?;
        Some(crate::crypto::hex(&key.sign(&self.digest(from, to, body))))
    }

    fn check(&self, from: usize, to: usize, body: &[u8], sig: &str) -> bool {
        let (Some(public), Some(sig)) = (self.publics.get(from), crate::crypto::unhex(sig)) else {
            return false;
        };
        crate::crypto::verify(public, &self.digest(from, to, body), &sig)
    }
}

/// Where the validators listen and who is local.
pub struct Links {
    /// Listeners to open: (validator, address; port 0 picks one).
    pub listen: Vec<(usize, SocketAddr)>,
    /// Every validator's address by index (`None`: the address its listener got).
    pub peers: Vec<Option<SocketAddr>>,
    /// A node process's own validator: messages to it stay in the process, and messages from
    /// the node's API travel in its name.
    pub me: Option<usize>,
}

impl Links {
    /// A devnet's: every validator local, each its own listener on `host`.
    pub fn loopback(host: std::net::IpAddr, n: usize) -> Links {
        Links {
            listen: (0..n).map(|i| (i, SocketAddr::new(host, 0))).collect(),
            peers: vec![None; n],
            me: None,
        }
    }
}

impl Transport {
    /// Opens the listeners of `links`, delivering to `net`, and a sender thread per validator.
    pub async fn start(net: &Network, links: Links, auth: PeerAuth) -> Result<Transport> {
        let stats = Arc::new(TransportStats::default());
        let auth = Arc::new(auth);
        let mut addrs = links.peers.clone();
        let mut shutdown = Vec::with_capacity(links.listen.len());
        for (to, at) in links.listen {
            let inbox = Inbox {
                to,
                net: net.clone(),
                stats: stats.clone(),
                auth: auth.clone(),
                slots: Arc::new(tokio::sync::Semaphore::new(RECEIVING)),
            };
            let app = Router::new()
                .route("/p2p", post(receive))
                .layer(DefaultBodyLimit::max(MAX_MESSAGE))
                .with_state(inbox);
            let (local, tx) = crate::rpc::serve_app(at, app).await?;
            if let Some(a) = addrs.get_mut(to) {
                a.get_or_insert(local);
            }
            shutdown.push(tx);
        }
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                a.ok_or_else(|| DevnetError::Config(format!("no address for validator {i}")))
            })
            .collect::<Result<_>>()?;
        let mut queues = Vec::with_capacity(addrs.len());
        for (to, addr) in addrs.iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let (url, stats) = (format!("http://{addr}/p2p"), stats.clone());
            std::thread::Builder::new()
                .name(format!("p2p-to-{to}"))
                .spawn(move || send_loop(&url, rx, &stats))
                .map_err(DevnetError::Thread)?;
            queues.push(tx);
        }
        Ok(Transport {
            queues,
            addrs,
            me: links.me,
            auth,
            stats,
            shutdown: crate::lock::Lock::new(shutdown),
        })
    }

    /// Queues `msg` from `from` to `to`; `false` when it does not travel (a local control),
    /// so the caller delivers it itself.
    pub fn post(&self, from: usize, to: usize, msg: &NetMsg) -> bool {
        if self.me == Some(to) {
            return false;
        }
        let Some(bytes) = crate::wire::encode(msg) else {
            return false;
        };
        let (Some(q), Some(sig)) = (self.queues.get(to), self.auth.sign(from, to, &bytes)) else {
            // No such peer, or a sender this process holds no key for.
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        match q.try_send((from, sig, bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        true
    }

    /// Stops the listeners (the sender threads end with the transport).
    pub fn stop(&self) {
        for tx in self.shutdown.lock().drain(..) {
            let _ = tx.send(());
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Posts one destination's messages in order until the transport is dropped.
fn send_loop(url: &str, rx: Receiver<Outgoing>, stats: &TransportStats) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    while let Ok((from, sig, bytes)) = rx.recv() {
        let ok = client
            .post(url)
            .header(FROM_HEADER, from.to_string())
            .header(SIG_HEADER, sig)
            .body(bytes)
            .send()
            .is_ok_and(|r| r.status().is_success());
        let counter = if ok { &stats.sent } else { &stats.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn receive(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> StatusCode {
    let refuse = |status: StatusCode| {
        inbox.stats.refused.fetch_add(1, Ordering::Relaxed);
        status
    };
    let from = headers
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&f| f < inbox.net.len());
    let Some(from) = from else {
        return refuse(StatusCode::BAD_REQUEST);
    };
    // Checked before the body is read: a signature of the right form, and a free slot (a
    // sender without a key cannot hold more than a few bodies in memory at once).
    let sig = headers
        .get(SIG_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.len() == 128)
        .map(str::to_string);
    let Some(sig) = sig else {
        return refuse(StatusCode::UNAUTHORIZED);
    };
    let Ok(_slot) = inbox.slots.clone().try_acquire_owned() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_MESSAGE).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE);
    };
    // Hashing and decoding a block with packages takes a while: off the async workers.
    let (auth, to) = (inbox.auth.clone(), inbox.to);
    let checked = tokio::task::spawn_blocking(move || {
        if !auth.check(from, to, &body, &sig) {
            return Err(StatusCode::UNAUTHORIZED);
        }
        crate::wire::decode(&body).map_err(|_| StatusCode::BAD_REQUEST)
    })
    .await
    .unwrap_or(Err(StatusCode::INTERNAL_SERVER_ERROR));
    match checked {
        Ok(msg) => {
            inbox.stats.received.fetch_add(1, Ordering::Relaxed);
            inbox.net.deliver_local(from, inbox.to, msg);
            StatusCode::NO_CONTENT
        }
        Err(status) => refuse(status),
    }
}
