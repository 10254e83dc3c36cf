//! Handing a request to a JS handler and waiting for its answer.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::upgrade::OnUpgrade;

use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::error_page::error_response;
use crate::header_list;
use crate::incoming::Incoming;
use crate::push::PushSender;
use crate::record::{self, RequestBody};
use crate::request_body::{self, Credit};
use crate::service::Shared;

/// Bodies up to this size (by Content-Length) are read before dispatch and travel
/// with the request record: one event instead of three.
const INLINE_BODY_MAX: u64 = 64 * 1024;

/// Tells JS the request is gone if the exchange is dropped before JS answered.
struct AbandonGuard<'a> {
    bridge: &'a Arc<Bridge>,
    id: u64,
    armed: bool,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.bridge.abandon(self.id);
        }
    }
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

pub async fn to_js(
    shared: &Shared,
    peer: &Bytes,
    handler: u32,
    mut req: Request<Incoming>,
    html: bool,
) -> Response<ResponseBody> {
    let config = &shared.config;
    // The declared Content-Length, as each protocol's body reports it.
    let exact = req.body().size_hint().exact();
    if exact.is_some_and(|n| n > config.max_body_size) {
        tokio::spawn(request_body::discard(req.into_body(), config.keep_alive));
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, html);
    }
    let upgrade = websocket_upgrade(&mut req);
    let (parts, body) = req.into_parts();
    let mut trailers = None;
    let (body, streamed) = if body.is_end_stream() {
        let kind = if upgrade.is_some() {
            RequestBody::Upgrade
        } else {
            RequestBody::None
        };
        (kind, None)
    } else if exact.is_some_and(|n| n <= INLINE_BODY_MAX) {
        let limit = INLINE_BODY_MAX as usize;
        match tokio::time::timeout(config.request_timeout, Limited::new(body, limit).collect())
            .await
        {
            Ok(Ok(collected)) => {
                trailers = collected.trailers().cloned();
                (RequestBody::Inline(collected.to_bytes()), None)
            }
            Ok(Err(_)) => return error_response(StatusCode::BAD_REQUEST, html),
            Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, html),
        }
    } else {
        (RequestBody::Stream, Some(body))
    };

    let credit = streamed.as_ref().map(|_| Arc::new(Credit::default()));
    let bridge = &shared.bridge;
    let push = parts.extensions.get::<PushSender>().cloned();
    let Some((id, reply)) = bridge.register(html, credit.clone(), push, upgrade) else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, html);
    };
    let mut guard = AbandonGuard {
        bridge,
        id,
        armed: true,
    };
    bridge.emit(|b| {
        record::request(b, id, handler, &parts, peer, body);
        if let Some(trailers) = &trailers {
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

    let response = match tokio::time::timeout(config.request_timeout, reply).await {
        Ok(Ok(response)) => response,
        // JS dropped the request without answering (server closing).
        Ok(Err(_)) => error_response(StatusCode::SERVICE_UNAVAILABLE, html),
        Err(_) => {
            bridge.preempt(id, StatusCode::SERVICE_UNAVAILABLE);
            error_response(StatusCode::SERVICE_UNAVAILABLE, html)
        }
    };
    guard.armed = false;
    response
}
