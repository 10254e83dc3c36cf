//! Skitai's engine: owns sockets, HTTP parsing, routing and the queue of work for
//! the JavaScript thread. Nothing here knows about Node; `crates/node` wraps it.

pub mod access_log;
pub mod body;
pub mod bridge;
pub mod coarse_clock;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error_page;
pub mod h2_connection;
pub mod h2_response;
pub mod header_list;
pub mod incoming;
pub mod proxy;
pub mod push;
pub mod quiet;
pub mod record;
pub mod request_body;
pub mod router;
pub mod sched;
pub mod server;
pub mod service;
pub mod shared_state;
pub mod socket;
pub mod static_files;
pub mod websocket;

pub use bridge::{Batch, Bridge, Stats};
pub use config::{AccessLogConfig, Config, Listen, Mount, MountTarget, Policy, UpstreamConfig};
pub use server::Engine;

/// The value of the `Server` header on every response.
pub const SERVER_NAME: &str = concat!("Skitai/", env!("CARGO_PKG_VERSION"));
