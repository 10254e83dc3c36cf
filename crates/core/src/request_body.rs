//! Streaming a request body to JS with flow control: the pump stops reading from
//! the socket while more than a window of bytes waits for JS to consume.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use tokio::sync::Notify;

use crate::bridge::Bridge;
use crate::incoming::Incoming;
use crate::record;

/// Bytes of request body allowed to wait for JS before reading pauses.
pub const WINDOW: usize = 1024 * 1024;

#[derive(Default)]
pub struct Credit {
    outstanding: AtomicUsize,
    notify: Notify,
    /// The request is answered or gone: stop waiting for JS.
    closed: AtomicBool,
}

impl Credit {
    pub fn release(&self, bytes: usize) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            });
        self.notify.notify_one();
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    async fn consume(&self, bytes: usize) {
        self.outstanding.fetch_add(bytes, Ordering::AcqRel);
        loop {
            let notified = self.notify.notified();
            if self.outstanding.load(Ordering::Acquire) <= WINDOW
                || self.closed.load(Ordering::Acquire)
            {
                return;
            }
            notified.await;
        }
    }
}

/// Feed `body` to JS as D/E events until it ends, the request is answered, or the
/// client stops sending for `idle` (then the engine answers 408).
pub async fn pump(
    bridge: Arc<Bridge>,
    id: u64,
    mut body: Incoming,
    credit: Arc<Credit>,
    max: u64,
    idle: Duration,
) {
    let mut received: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            // The connection broke; hyper drops the exchange and the guard tells JS.
            Ok(Some(Err(_))) => return,
            Err(_) => {
                bridge.preempt_with_error(id, StatusCode::REQUEST_TIMEOUT);
                return;
            }
        };
        let chunk = match frame.into_data() {
            Ok(chunk) => chunk,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    bridge.emit(|b| record::trailers(b, id, &trailers));
                }
                continue;
            }
        };
        received += chunk.len() as u64;
        if received > max {
            bridge.preempt_with_error(id, StatusCode::PAYLOAD_TOO_LARGE);
            discard(body, idle).await;
            return;
        }
        if !bridge.is_pending(id) {
            return;
        }
        let len = chunk.len();
        bridge.emit(|b| record::body_chunk(b, id, chunk));
        credit.consume(len).await;
    }
    bridge.emit(|b| record::body_end(b, id));
}

/// Bytes of an over-limit body read and dropped after the 413, so that the client
/// gets to read the answer: closing on unread data would reset the connection and
/// lose it.
const LINGER_BYTES: usize = 4 * 1024 * 1024;

pub async fn discard(mut body: Incoming, idle: Duration) {
    let mut left = LINGER_BYTES;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(idle, body.frame()).await {
        let len = frame.data_ref().map_or(0, |d| d.len());
        if len >= left {
            return;
        }
        left -= len;
    }
}
