//! Validators talking over HTTP instead of in-process channels: each validator listens on its
//! own address (`POST /p2p`, header `x-lightchain-from: INDEX`, body: one [`crate::wire`]
//! message); a message to it is encoded and queued for one sender thread per destination,
//! which posts it over a kept-alive connection, in order. A message that cannot be queued
//! (queue full) or posted (peer down) is dropped and counted: consensus rebroadcasts and block
//! sync make up for lost messages, as they do for a partition. The node's local controls
//! (mine, revert, stop) never travel.
//!
//! In a devnet every validator's listener is on loopback in the one process (messages really
//! cross sockets and the codec); separate node processes use the same listener and senders.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::error::{DevnetError, Result};
use crate::net::{NetMsg, Network};

/// Header naming the sending validator.
pub const FROM_HEADER: &str = "x-lightchain-from";
/// Messages waiting per destination before new ones are dropped.
pub const QUEUE: usize = 8192;
/// Largest message accepted (a block may carry packages).
pub const MAX_MESSAGE: usize = 256 << 20;

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
    queues: Vec<SyncSender<(usize, Vec<u8>)>>,
    /// Each validator's listening address.
    pub addrs: Vec<SocketAddr>,
    pub stats: Arc<TransportStats>,
    shutdown: crate::lock::Lock<Vec<tokio::sync::oneshot::Sender<()>>>,
}

#[derive(Clone)]
struct Inbox {
    to: usize,
    net: Network,
    stats: Arc<TransportStats>,
}

impl Transport {
    /// Starts a listener on `host` (any free port) for each of `n` validators, delivering to
    /// `net`, and a sender thread per validator.
    pub async fn start(net: &Network, host: std::net::IpAddr, n: usize) -> Result<Transport> {
        let stats = Arc::new(TransportStats::default());
        let (mut addrs, mut shutdown) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for to in 0..n {
            let inbox = Inbox {
                to,
                net: net.clone(),
                stats: stats.clone(),
            };
            let app = Router::new()
                .route("/p2p", post(receive))
                .layer(DefaultBodyLimit::max(MAX_MESSAGE))
                .with_state(inbox);
            let (local, tx) = crate::rpc::serve_app(SocketAddr::new(host, 0), app).await?;
            addrs.push(local);
            shutdown.push(tx);
        }
        let mut queues = Vec::with_capacity(n);
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
            stats,
            shutdown: crate::lock::Lock::new(shutdown),
        })
    }

    /// Queues `msg` from `from` to `to`; `false` when it does not travel (a local control),
    /// so the caller delivers it itself.
    pub fn post(&self, from: usize, to: usize, msg: &NetMsg) -> bool {
        let Some(bytes) = crate::wire::encode(msg) else {
            return false;
        };
        let Some(q) = self.queues.get(to) else {
            return true;
        };
        match q.try_send((from, bytes)) {
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
fn send_loop(url: &str, rx: Receiver<(usize, Vec<u8>)>, stats: &TransportStats) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    while let Ok((from, bytes)) = rx.recv() {
        let ok = client
            .post(url)
            .header(FROM_HEADER, from.to_string())
            .body(bytes)
            .send()
            .is_ok_and(|r| r.status().is_success());
        let counter = if ok { &stats.sent } else { &stats.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let from = headers
        .get(FROM_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&f| f < inbox.net.len());
    let Some(from) = from else {
        inbox.stats.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    // Decoding a block with packages takes a while: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || crate::wire::decode(&body)).await;
    match decoded {
        Ok(Ok(msg)) => {
            inbox.stats.received.fetch_add(1, Ordering::Relaxed);
            inbox.net.deliver_local(from, inbox.to, msg);
            StatusCode::NO_CONTENT
        }
        _ => {
            inbox.stats.refused.fetch_add(1, Ordering::Relaxed);
            StatusCode::BAD_REQUEST
        }
    }
}
