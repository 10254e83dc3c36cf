//! One TCP connection: hyper's HTTP/1.1 state machine around our service, with a
//! graceful stop when the server closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::Config;
use crate::service::{self, Shared};

/// `None` while serving; `Some(grace)` once the server is closing.
pub type ShutdownSignal = watch::Receiver<Option<Duration>>;

pub fn http1_builder(config: &Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Armed whenever hyper waits for a request head: it is both the keep-alive
        // idle limit and the deadline for a slow header block.
        .header_read_timeout(config.keep_alive)
        .max_buf_size(config.max_header_size.max(8192))
        .max_headers(config.max_headers);
    // No `pipeline_flush`: with it hyper holds the automatic 400/431 for a malformed
    // request in its buffer (unread bytes look like a pipelined request) and drops it.
    builder
}

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: ShutdownSignal,
) {
    let _ = stream.set_nodelay(true);
    let peer = Bytes::from(format!("{}\n{}\n", peer.ip(), peer.port()));
    let service_shared = shared.clone();
    let service = service_fn(move |req| {
        let shared = service_shared.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(service::handle(&shared, &peer, req).await) }
    });
    let mut conn = pin!(shared.http1.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.wait_for(Option::is_some) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
