//! One TCP connection: HTTP/2 if it opens with the client preface, else hyper's
//! HTTP/1.1 state machine around our service, with a graceful stop when the
//! server closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::coarse_clock;
use crate::config::Config;
use crate::incoming::Incoming;
use crate::quiet::Quiet;
use crate::service::{self, Shared};
use crate::socket::Socket;
use crate::websocket::{self, Accepted};

/// What the service tells its HTTP/1.1 connection.
pub struct Http1State {
    /// The server drains: answer with `Connection: close`.
    draining: AtomicBool,
    /// A WebSocket was accepted: run it once hyper hands the socket over.
    upgraded: Mutex<Option<Accepted>>,
    /// Exchanges whose response has not ended: the keep-alive clock stops meanwhile.
    busy: AtomicUsize,
    /// When the last exchange ended (or the connection opened), on `coarse_clock`.
    idle_from_ms: AtomicU64,
}

impl Http1State {
    fn new() -> Http1State {
        Http1State {
            draining: AtomicBool::new(false),
            upgraded: Mutex::new(None),
            busy: AtomicUsize::new(0),
            idle_from_ms: AtomicU64::new(coarse_clock::now_ms()),
        }
    }

    /// A request came in: the connection is busy until the guard drops. Only
    /// the connection's own task begins and ends exchanges (hyper calls the
    /// service and drops the bodies there): a load and a store, not a locked
    /// read-modify-write.
    fn begin(self: &Arc<Self>) -> Busy {
        let busy = self.busy.load(Ordering::Relaxed);
        self.busy.store(busy + 1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// At the idle timer: true once the connection has been idle (or stuck in a
    /// head) for `keep_alive`, to be closed; else the timer is set for the next
    /// look (and roused, so that its next poll takes note).
    fn idle_past(&self, timer: &mut Quiet<Pin<&mut Sleep>>, keep_alive: Duration) -> bool {
        let now = Instant::now();
        let due = if self.busy.load(Ordering::Relaxed) > 0 {
            now + keep_alive
        } else {
            let idle_from = self.idle_from_ms.load(Ordering::Relaxed);
            let idle = Duration::from_millis(coarse_clock::now_ms().saturating_sub(idle_from));
            if idle >= keep_alive {
                return true;
            }
            now + (keep_alive - idle)
        };
        timer.get_mut().as_mut().reset(due);
        timer.rouse();
        false
    }
}

/// Marks its connection busy from a request until the response has ended (its
/// body, which hyper holds, is dropped) or the exchange was given up. Idle time
/// is kept here rather than by hyper's header-read timer, which makes and
/// drops a timer for every request.
pub struct Busy(Arc<Http1State>);

impl std::ops::Deref for Busy {
    type Target = Http1State;

    fn deref(&self) -> &Http1State {
        &self.0
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let state = &self.0;
        // Idle time is kept to a few ms: the coarse clock, read per exchange for a few ns.
        state
            .idle_from_ms
            .store(coarse_clock::now_ms(), Ordering::Relaxed);
        // The connection's own task, as in `begin`.
        let busy = state.busy.load(Ordering::Relaxed);
        state.busy.store(busy.saturating_sub(1), Ordering::Relaxed);
    }
}

/// How the server closes.
#[derive(Clone, Copy, Debug)]
pub struct Closing {
    /// Time open exchanges get before they are cut.
    pub grace: Duration,
    /// Keep idle keep-alive connections until they next answer (with
    /// `Connection: close`) or time out, instead of closing them at once: no client
    /// that picks an idle connection at that moment gets it closed under it (the
    /// workers' reload and stop use this).
    pub drain: bool,
}

/// `None` while serving; `Some` once the server is closing.
pub type ShutdownSignal = watch::Receiver<Option<Closing>>;

pub fn http1_builder(config: &Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // No header-read timer: `serve` closes a connection idle for the keep-alive
    // time, which is both the keep-alive limit and the deadline for a slow
    // header block (no exchange is open while a head is being read).
    builder
        .keep_alive(true)
        .max_buf_size(config.max_header_size.max(8192))
        .max_headers(config.max_headers);
    // No `pipeline_flush`: with it hyper holds the automatic 400/431 for a malformed
    // request in its buffer (unread bytes look like a pipelined request) and drops it.
    builder
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's first bytes say it speaks.
enum Opening {
    Http1,
    Http2,
    /// Nothing conclusive before the keep-alive time, closed by the client, or the
    /// server is closing: the connection ends (as hyper ends one that sends nothing).
    Nothing,
}

/// Look at the first bytes without reading them. HTTP/1.1 is known at the first
/// byte that differs from the HTTP/2 preface; a preface that comes in pieces is
/// waited for until `wait` runs out.
async fn opening(stream: &Socket, wait: Duration) -> Opening {
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = [0u8; PREFACE.len()];
    loop {
        let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await else {
            return Opening::Nothing;
        };
        if n == 0 {
            return Opening::Nothing;
        }
        if seen[..n] != PREFACE[..n] {
            return Opening::Http1;
        }
        if n == PREFACE.len() {
            return Opening::Http2;
        }
        // The kernel has only part of it: peek again once more may have come.
        if tokio::time::timeout_at(deadline, tokio::time::sleep(PREFACE_PIECES_WAIT))
            .await
            .is_err()
        {
            return Opening::Nothing;
        }
    }
}

/// Between looks at a preface that arrived in pieces (rare: clients send it whole).
const PREFACE_PIECES_WAIT: Duration = Duration::from_millis(5);

pub async fn serve(
    stream: Socket,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: ShutdownSignal,
) {
    let _ = stream.set_nodelay(true);
    let peer = Bytes::from(format!("{}\n{}\n", peer.ip(), peer.port()));
    let opened = tokio::select! {
        opened = opening(&stream, shared.config.keep_alive) => opened,
        // A connection that has sent nothing yet is idle: closing ends it, unless
        // the server drains (a request may be on its way).
        _ = shutdown.wait_for(|closing| closing.is_some_and(|c| !c.drain)) => Opening::Nothing,
    };
    match opened {
        Opening::Http1 => {}
        Opening::Http2 => {
            crate::h2_connection::serve(stream, peer, shared, shutdown).await;
            return;
        }
        Opening::Nothing => return,
    }
    let service_shared = shared.clone();
    let state = Arc::new(Http1State::new());
    let service_state = state.clone();
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        // Routed (and handed to JS) here; the future only waits for the answer.
        let entry = service_shared.log_entry(&req, &peer, false);
        let answer = service::handle(&service_shared, &peer, req.map(Incoming::Http1));
        let busy = service_state.begin();
        async move {
            let mut response = answer.await;
            if let Some(accepted) = response.extensions_mut().remove::<Accepted>() {
                *busy.upgraded.lock().unwrap_or_else(|e| e.into_inner()) = Some(accepted);
            } else if busy.draining.load(Ordering::Relaxed) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(service::finish(response, entry, Some(busy)))
        }
    });
    let conn = shared
        .http1
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    let keep_alive = shared.config.keep_alive;
    // Polled only when their own wakers fire, not at each wake for an exchange.
    let timer = pin!(tokio::time::sleep(keep_alive));
    let mut idle = Quiet::new(timer);
    let served = {
        let signal = pin!(shutdown.wait_for(Option::is_some));
        let mut closing = Quiet::new(signal);
        loop {
            tokio::select! {
                // The exchange first; no random start (a thread-local RNG) per wake.
                biased;
                _ = conn.as_mut() => break true,
                _ = &mut closing => break false,
                () = &mut idle => if state.idle_past(&mut idle, keep_alive) { return },
            }
        }
    };
    if !served {
        let drain = shutdown.borrow().is_some_and(|closing| closing.drain);
        if drain {
            // The keep-alive time ends an idle connection; a request that comes
            // first is answered, with `Connection: close`.
            state.draining.store(true, Ordering::Relaxed);
        } else {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                biased;
                _ = conn.as_mut() => break,
                () = &mut idle => if state.idle_past(&mut idle, keep_alive) { return },
            }
        }
    }
    let upgraded = state
        .upgraded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(accepted) = upgraded {
        websocket::session::run(accepted, shutdown).await;
    }
}
