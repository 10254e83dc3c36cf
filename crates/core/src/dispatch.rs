//! Handing a request to a JS handler and waiting for its answer.

use std::future::{ready, Future};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::Either;
use http::request::Parts;
use http::{header, HeaderMap, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::upgrade::OnUpgrade;

use crate::body::ResponseBody;
use crate::bridge::{Bridge, ReplyReceiver};
use crate::error_page::error_response;
use crate::header_list;
use crate::incoming::Incoming;
use crate::push::PushSender;
use crate::record::{self, RequestBody};
use crate::request_body::{self, Credit};
use crate::service::{Boxed, Shared};

/// Bodies up to this size (by Content-Length) are read before dispatch and travel
/// with the request record: one event instead of three.
const INLINE_BODY_MAX: u64 = 64 * 1024;

/// A request JS has: its reply, due within `timeout`. Dropped unanswered (the
/// client went away), it tells JS the request is gone.
struct Waiting {
    bridge: Arc<Bridge>,
    id: u64,
    reply: ReplyReceiver,
    answered: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.answered {
            self.bridge.abandon(self.id);
        }
    }
}

/// JS's reply; 503 when the request never reached JS (`None`: too many waiting).
async fn wait(sent: Option<Waiting>, html: bool) -> Response<ResponseBody> {
    let Some(mut waiting) = sent else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, html);
    };
    // Past `requestTimeout` the bridge answers in JS's place (`expire_requests`).
    let response = match (&mut waiting.reply).await {
        Ok(response) => response,
        // JS dropped the request without answering (server closing).
        Err(_) => error_response(StatusCode::SERVICE_UNAVAILABLE, html),
    };
    waiting.answered = true;
    response
}

/// The socket of an HTTP/1.1 request asking for WebSocket, kept in case its
/// handler accepts (hyper offers it for any request with `Connection: upgrade`).
fn websocket_upgrade(req: &mut Request<Incoming>) -> Option<OnUpgrade> {
    let asks = req.version() == Version::HTTP_11
        && req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| header_list::has(v.as_bytes(), b"websocket"));
    if asks {
        req.extensions_mut().remove::<OnUpgrade>()
    } else {
        None
    }
}

/// Hand `req` to JS handler `handler` now; the future waits for the reply. A body
/// small enough to travel with the request is read first (a boxed future).
pub fn to_js(
    shared: &Arc<Shared>,
    peer: &Bytes,
    handler: u32,
    mut req: Request<Incoming>,
    html: bool,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    let config = &shared.config;
    // The declared Content-Length, as each protocol's body reports it.
    let exact = req.body().size_hint().exact();
    if exact.is_some_and(|n| n > config.max_body_size) {
        tokio::spawn(request_body::discard(req.into_body(), config.keep_alive));
        return Either::Left(ready(error_response(StatusCode::PAYLOAD_TOO_LARGE, html)));
    }
    let upgrade = websocket_upgrade(&mut req);
    let (parts, body) = req.into_parts();
    let js = Js {
        shared,
        peer,
        handler,
        html,
    };
    if body.is_end_stream() {
        let kind = if upgrade.is_some() {
            RequestBody::Upgrade
        } else {
            RequestBody::None
        };
        let sent = js.send(&parts, kind, None, None, upgrade);
        return Either::Right(Either::Left(wait(sent, html)));
    }
    if exact.is_none_or(|n| n > INLINE_BODY_MAX) {
        let sent = js.send(&parts, RequestBody::Stream, None, Some(body), upgrade);
        return Either::Right(Either::Left(wait(sent, html)));
    }
    let (shared, peer, timeout) = (shared.clone(), peer.clone(), config.request_timeout);
    let inline: Boxed = Box::pin(async move {
        let limit = INLINE_BODY_MAX as usize;
        let collected =
            match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
                Ok(Ok(collected)) => collected,
                Ok(Err(_)) => return error_response(StatusCode::BAD_REQUEST, html),
                Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, html),
            };
        let trailers = collected.trailers().cloned();
        let js = Js {
            shared: &shared,
            peer: &peer,
            handler,
            html,
        };
        let body = RequestBody::Inline(collected.to_bytes());
        wait(
            js.send(&parts, body, trailers.as_ref(), None, upgrade),
            html,
        )
        .await
    });
    Either::Right(Either::Right(inline))
}

/// A request on its way to a JS handler.
struct Js<'a> {
    shared: &'a Arc<Shared>,
    peer: &'a Bytes,
    handler: u32,
    html: bool,
}

impl Js<'_> {
    /// Register the request and emit its record (with the body and its trailers,
    /// or the pump that streams it); None when too many wait for JS already.
    fn send(
        &self,
        parts: &Parts,
        body: RequestBody,
        trailers: Option<&HeaderMap>,
        streamed: Option<Incoming>,
        upgrade: Option<OnUpgrade>,
    ) -> Option<Waiting> {
        let config = &self.shared.config;
        let bridge = &self.shared.bridge;
        let credit = streamed.as_ref().map(|_| Arc::new(Credit::default()));
        let push = parts.extensions.get::<PushSender>().cloned();
        let (id, reply) = bridge.register(self.html, credit.clone(), push, upgrade)?;
        let waiting = Waiting {
            bridge: bridge.clone(),
            id,
            reply,
            answered: false,
        };
        bridge.emit(|b| {
            record::request(b, id, self.handler, parts, self.peer, body);
            if let Some(trailers) = trailers {
                record::trailers(b, id, trailers);
            }
        });
        if let (Some(body), Some(credit)) = (streamed, credit) {
            let pump = request_body::pump(
                bridge.clone(),
                id,
                body,
                credit,
                config.max_body_size,
                config.request_timeout,
            );
            tokio::spawn(pump);
        }
        Some(waiting)
    }
}
