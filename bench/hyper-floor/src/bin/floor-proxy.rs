//! Every request forwarded to `UPSTREAM` (host:port) through hyper's HTTP/1.1
//! client, the member's response streamed back as it came: kept-alive
//! connections in a stack, each driven by a task of its own (hyper's usual
//! way), X-Forwarded-For added. No balancing, retries, timeouts or header
//! rewriting beyond that: only what hyper costs on both sides.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

thread_local! {
    static IDLE: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

/// The member's body; its connection goes back on the stack when it is done.
struct Relayed {
    body: Incoming,
    send: Option<SendRequest<Incoming>>,
}

impl Body for Relayed {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        let Some(mut send) = self.send.take() else {
            return;
        };
        if send.is_ready() {
            IDLE.with(|idle| idle.borrow_mut().push(send));
        } else {
            tokio::task::spawn_local(async move {
                if send.ready().await.is_ok() {
                    IDLE.with(|idle| idle.borrow_mut().push(send));
                }
            });
        }
    }
}

async fn connection(upstream: &str) -> Result<SendRequest<Incoming>, hyper::Error> {
    let stream = TcpStream::connect(upstream)
        .await
        .expect("the upstream to accept");
    let _ = stream.set_nodelay(true);
    let (send, driver) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(driver);
    Ok(send)
}

async fn forward(mut req: Request<Incoming>) -> Result<Response<Relayed>, hyper::Error> {
    static UPSTREAM: OnceLock<String> = OnceLock::new();
    let upstream = UPSTREAM
        .get_or_init(|| std::env::var("UPSTREAM").unwrap_or_else(|_| "127.0.0.1:18200".into()));
    req.headers_mut()
        .append("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
    let idle = IDLE.with(|idle| idle.borrow_mut().pop());
    let mut send = match idle {
        Some(send) => send,
        None => connection(upstream).await?,
    };
    let response = send.send_request(req).await?;
    Ok(response.map(|body| Relayed {
        body,
        send: Some(send),
    }))
}

fn main() {
    hyper_floor::serve(forward);
}
