//! WebSocket: a JS endpoint accepts the upgrade (`Bridge::accept_websocket`), the
//! connection runs the socket (`session`) once hyper hands it over, and JS's
//! sends arrive packed, many per call (`outlets`).

pub mod outlets;
pub mod session;

use std::time::Duration;

use hyper::upgrade::OnUpgrade;

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
}

/// Rides on the 101 response from the bridge to the connection, which runs the
/// session once hyper has written the 101 and handed the socket over.
#[derive(Clone)]
pub struct Accepted {
    pub id: u64,
    pub upgrade: OnUpgrade,
    pub settings: Settings,
}
