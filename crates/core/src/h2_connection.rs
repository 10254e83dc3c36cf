//! One HTTP/2 connection (h2c, prior knowledge): the h2 crate's state machine,
//! its streams answered in the connection's task through the same service as
//! HTTP/1.1, server push, and GOAWAY when the server closes or the connection
//! idles.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use h2::server::{SendPushedResponse, SendResponse};
use h2::RecvStream;
use http::{header, HeaderMap, HeaderValue, Method, Request, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::config::Config;
use crate::connection::ShutdownSignal;
use crate::h2_response;
use crate::incoming::Incoming;
use crate::push::{self, PushBase, Pushed};
use crate::service::{self, Shared};

/// Streams a client may have open at once.
const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Per-stream and connection receive windows: room for uploads to stream at
/// speed (the defaults, 64 KiB, hold a client to a few MiB/s at WAN round trips),
/// while what one connection can make the server hold stays at 1 MiB.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 1024 * 1024;

pub fn builder(config: &Config) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX))
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        // Rapid reset (CVE-2023-44487): streams reset before being accepted are
        // capped, past which the connection gets GOAWAY ENHANCE_YOUR_CALM.
        .max_pending_accept_reset_streams(32)
        .max_local_error_reset_streams(Some(256));
    builder
}

/// Everything a stream task needs from its connection.
#[derive(Clone)]
struct Context {
    shared: Arc<Shared>,
    /// "address\nport\n".
    peer: Bytes,
}

pub async fn serve<T>(io: T, peer: Bytes, shared: Arc<Shared>, mut shutdown: ShutdownSignal)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let keep_alive = shared.config.keep_alive;
    let handshake = shared.h2.handshake::<_, Bytes>(io);
    let Ok(Ok(mut conn)) = tokio::time::timeout(keep_alive, handshake).await else {
        return;
    };
    let context = Context { shared, peer };
    let mut idle = pin!(tokio::time::sleep(keep_alive));
    let mut closing = false;
    // The streams run in this task rather than one task each: the responses JS
    // hands over together are all queued before the connection is polled again,
    // so they leave in one write instead of one write each.
    let mut streams = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(()) = streams.next(), if !streams.is_empty() => {}
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    streams.push(answer(request, respond, context.clone()));
                    // Every stream that has already arrived is taken before any is
                    // answered (each accept flushes what is queued): answers made
                    // at once, such as static files', then leave in one write.
                    while let Some(Some(Ok((request, respond)))) = conn.accept().now_or_never() {
                        streams.push(answer(request, respond, context.clone()));
                    }
                    idle.as_mut().reset(Instant::now() + keep_alive);
                }
                // A connection error: h2 has sent GOAWAY with its reason.
                Some(Err(_)) | None => return,
            },
            _ = shutdown.wait_for(Option::is_some), if !closing => {
                closing = true;
                conn.graceful_shutdown();
            }
            _ = &mut idle, if !closing => {
                if conn.has_streams() {
                    idle.as_mut().reset(Instant::now() + keep_alive);
                } else {
                    closing = true;
                    conn.graceful_shutdown();
                }
            }
        }
    }
}

/// RFC 9113 §8.2.3: cookie pairs may come in separate fields; applications
/// written for HTTP/1.1 expect one.
fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let joined: Vec<u8> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// Handlers and the request log read `Host`; HTTP/2 carries it as `:authority`.
fn host_from_authority(request: &mut http::request::Parts) {
    if request.headers.contains_key(header::HOST) {
        return;
    }
    let Some(authority) = request.uri.authority() else {
        return;
    };
    if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
        request.headers.insert(header::HOST, host);
    }
}

/// One client stream: the request through the service, pushes promised while the
/// handler runs, then the response. A reset from the client drops the exchange,
/// which tells JS (`'close'`).
async fn answer(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, context: Context) {
    let (mut parts, body) = request.into_parts();
    join_cookies(&mut parts.headers);
    host_from_authority(&mut parts);
    let head_only = parts.method == Method::HEAD;
    let base = PushBase::of(&parts);
    let (push_sender, mut push_paths) = push::channel();
    parts.extensions.insert(push_sender);
    let body = Incoming::http2(body, &parts.headers);
    let request = Request::from_parts(parts, body);
    let shared = &context.shared;
    let entry = shared.log_entry(&request, &context.peer, false);

    let mut handling = pin!(service::handle(shared, &context.peer, request));
    let mut pushed = Pushed::default();
    let response = loop {
        tokio::select! {
            biased;
            Some(path) = push_paths.recv() => promise(&mut respond, &base, &mut pushed, path, &context),
            response = &mut handling => break response,
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
        }
    };
    // Pushes asked for in the same turn as the response come before its head.
    while let Ok(path) = push_paths.try_recv() {
        promise(&mut respond, &base, &mut pushed, path, &context);
    }
    let response = service::finish(response, entry, None);
    h2_response::send(response, head_only, |head, end| {
        respond.send_response(head, end)
    })
    .await;
}

/// Promise `path` on the client's stream and answer it from the mount table.
fn promise(
    respond: &mut SendResponse<Bytes>,
    base: &PushBase,
    pushed: &mut Pushed,
    path: String,
    context: &Context,
) {
    let Some(promised) = pushed.promise(base, path) else {
        return;
    };
    // Our own copy of the promised request, to answer it with.
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.uri = promised.uri().clone();
    parts.headers = promised.headers().clone();
    parts.version = Version::HTTP_2;
    host_from_authority(&mut parts);
    // Refused when the client disabled push or the stream is closing.
    if let Ok(send) = respond.push_request(promised) {
        let request = Request::from_parts(parts, Incoming::Empty);
        tokio::spawn(answer_pushed(request, send, context.clone()));
    }
}

async fn answer_pushed(
    request: Request<Incoming>,
    mut send: SendPushedResponse<Bytes>,
    context: Context,
) {
    let shared = &context.shared;
    let entry = shared.log_entry(&request, &context.peer, true);
    let response = service::handle(shared, &context.peer, request).await;
    let response = service::finish(response, entry, None);
    h2_response::send(response, false, |head, end| send.send_response(head, end)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        join_cookies(&mut headers);
        assert_eq!(headers.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(headers[header::COOKIE], "a=1; b=2");
        let mut one = HeaderMap::new();
        one.insert(header::COOKIE, HeaderValue::from_static("a=1"));
        join_cookies(&mut one);
        assert_eq!(one[header::COOKIE], "a=1");
    }
}
