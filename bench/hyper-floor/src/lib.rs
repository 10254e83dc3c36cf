//! What both floors share: a one-thread tokio runtime (as Skitai's engine runs
//! in the benchmarks) and a listener that serves every connection with hyper's
//! HTTP/1.1 server.

use std::future::Future;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve `handle` on 127.0.0.1 at `PORT` (else a free port), printing `ready <port>` once listening.
pub fn serve<F, Fut, B>(handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<Response<B>, hyper::Error>> + 'static,
    B: hyper::body::Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // FLOOR_TIMER=1 arms hyper's header-read timer, as Skitai does (its keep-alive limit).
    let timer = std::env::var_os("FLOOR_TIMER").is_some();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("a port to listen on");
        println!(
            "ready {}",
            listener.local_addr().expect("an address").port()
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let mut builder = hyper::server::conn::http1::Builder::new();
            if timer {
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5));
            }
            tokio::task::spawn_local(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
}
