//! WebSocket: a JS endpoint accepts the upgrade (`Bridge::accept_websocket`), the
//! connection runs the socket (`session`) once hyper hands it over, and JS's
//! sends arrive packed, many per call (`outlets`).

pub mod deflate;
pub mod outlets;
pub mod session;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use tokio::sync::mpsc;

use crate::bridge::Bridge;
use crate::record;
use outlets::{Backlog, Outbound};

/// A session, made on the loop that runs it from the socket that loop watches.
pub type SessionStart = Box<
    dyn FnOnce(crate::socket::Socket) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        + Send,
>;

thread_local! {
    /// Set while a session loop runs its sessions on this thread: that loop
    /// wakes JS once it is done (`Bridge::wake_if_due`), so events need no
    /// timer of their own on the engine's runtime.
    pub static ON_SESSION_LOOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs WebSocket sessions on a loop of its own instead of the engine's
/// threads: the JS thread's, where the messages are handled, so that none
/// crosses between threads (set by the addon, on unix).
pub trait SessionLoop: Send + Sync {
    /// Watch `stream` on that loop and run there what `start` makes of it;
    /// `bridge` is woken (`wake_if_due`) once the loop has run its sessions.
    fn adopt(&self, bridge: Arc<Bridge>, stream: std::net::TcpStream, start: SessionStart);
}

/// How an accepted socket runs, as the endpoint's options say.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest message (and frame) in bytes: 1009 beyond.
    pub max_message: usize,
    /// No message either way for this long: closed with 1001.
    pub idle: Option<Duration>,
    /// Keep-alive pings this often.
    pub ping: Option<Duration>,
    /// Bytes queued for sending past which JS is told to wait for a drain.
    pub max_buffered: usize,
    /// permessage-deflate was negotiated (see `deflate`).
    pub deflate: bool,
}

/// Rides on the 101 response from the bridge to the connection, which runs the
/// session once hyper has written the 101 and handed the socket over. The
/// socket's outlet exists from the moment JS accepts, so sends made right away
/// wait in it; if the session never starts (the client left first), JS hears
/// that the socket closed.
#[derive(Clone)]
pub struct Accepted(Arc<Handoff>);

pub struct Handoff {
    pub id: u64,
    pub bridge: Arc<Bridge>,
    start: Mutex<Option<Start>>,
}

/// What the session needs to run.
pub struct Start {
    pub upgrade: OnUpgrade,
    pub settings: Settings,
    pub outbound: mpsc::UnboundedReceiver<Outbound>,
    /// For the wire to wake the session (`Outbound::Flush`).
    pub wake: mpsc::UnboundedSender<Outbound>,
    pub backlog: Arc<Backlog>,
}

impl Accepted {
    pub fn new(id: u64, bridge: Arc<Bridge>, upgrade: OnUpgrade, settings: Settings) -> Accepted {
        let (outbound, wake, backlog) = bridge.outlets.open(id, settings.max_buffered);
        Accepted(Arc::new(Handoff {
            id,
            bridge,
            start: Mutex::new(Some(Start {
                upgrade,
                settings,
                outbound,
                wake,
                backlog,
            })),
        }))
    }

    /// The session starts: from here it reports the close.
    pub fn start(&self) -> Option<(&Handoff, Start)> {
        let start = self
            .0
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some((&self.0, start))
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        let never_started = self
            .start
            .get_mut()
            .map(|start| start.is_some())
            .unwrap_or(true);
        if never_started {
            let id = self.id;
            self.bridge.outlets.close(id);
            self.bridge
                .emit(|b| record::ws_closed(b, id, session::ABNORMAL, bytes::Bytes::new()));
        }
    }
}
