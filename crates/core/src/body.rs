//! Response bodies: a whole body given at once, or a stream of chunks written from
//! JS with backpressure (`write` reports when the buffered bytes pass the mark; the
//! engine queues a 'drain' event for JS when hyper has taken them all).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::bridge::Bridge;
use crate::static_files::FileBody;

/// Buffered bytes above which `write` asks JS to wait for 'drain'.
pub const HIGH_WATER_MARK: usize = 64 * 1024;

#[derive(Debug)]
pub struct BodyAborted;

impl std::fmt::Display for BodyAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response aborted by the handler")
    }
}

impl std::error::Error for BodyAborted {}

pub enum ResponseBody {
    Full(Option<Bytes>),
    Stream(StreamBody),
    File(Box<FileBody>),
    /// A member's response through a proxy mount.
    Proxied(Box<crate::proxy::UpstreamBody>),
}

impl ResponseBody {
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody::Full(if bytes.is_empty() { None } else { Some(bytes) })
    }

    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }
}

/// Shared between the JS-facing writer and the body hyper polls.
#[derive(Default)]
pub struct Flow {
    buffered: AtomicUsize,
    wants_drain: AtomicBool,
    /// Set once JS has ended or aborted the body; a drop before that is a client abort.
    finished: AtomicBool,
}

/// What the writer sends: body bytes, then possibly trailer fields.
pub type Chunk = Result<Frame<Bytes>, BodyAborted>;

/// The writing half, kept by the bridge while the response streams.
pub struct StreamWriter {
    tx: mpsc::UnboundedSender<Chunk>,
    flow: Arc<Flow>,
}

impl StreamWriter {
    /// Queue a chunk; false once the buffer is past the high-water mark.
    pub fn write(&self, chunk: Bytes) -> bool {
        if chunk.is_empty() {
            return self.flow.buffered.load(Ordering::Acquire) < HIGH_WATER_MARK;
        }
        let len = chunk.len();
        let total = self.flow.buffered.fetch_add(len, Ordering::AcqRel) + len;
        let below = total < HIGH_WATER_MARK;
        if !below {
            // Before the send: once hyper can see this chunk, it must also see that
            // JS waits for 'drain', or the drain could be missed.
            self.flow.wants_drain.store(true, Ordering::Release);
        }
        self.tx.send(Ok(Frame::data(chunk))).is_ok() && below
    }

    /// Trailer fields after the last chunk (`res.addTrailers`).
    pub fn trailers(&self, trailers: http::HeaderMap) {
        let _ = self.tx.send(Ok(Frame::trailers(trailers)));
    }

    pub fn finish(self) {
        self.flow.finished.store(true, Ordering::Release);
    }

    pub fn abort(self) {
        self.flow.finished.store(true, Ordering::Release);
        let _ = self.tx.send(Err(BodyAborted));
    }
}

pub struct StreamBody {
    rx: mpsc::UnboundedReceiver<Chunk>,
    flow: Arc<Flow>,
    bridge: Arc<Bridge>,
    id: u64,
}

pub fn stream(bridge: Arc<Bridge>, id: u64) -> (StreamWriter, StreamBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    let flow = Arc::new(Flow::default());
    (
        StreamWriter {
            tx,
            flow: flow.clone(),
        },
        StreamBody {
            rx,
            flow,
            bridge,
            id,
        },
    )
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if !self.flow.finished.load(Ordering::Acquire) {
            // hyper let go of the body before JS ended it: the client went away.
            self.bridge.abandon(self.id);
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream(s) => match s.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    let left = s.flow.buffered.fetch_sub(len, Ordering::AcqRel) - len;
                    if len > 0 && left == 0 && s.flow.wants_drain.swap(false, Ordering::AcqRel) {
                        s.bridge.drained(s.id);
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseBody::File(f) => Pin::new(f.as_mut()).poll_frame(cx),
            // A member that fails mid-body cuts the client's response too.
            ResponseBody::Proxied(p) => Pin::new(p.as_mut())
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|_| BodyAborted))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(None) => true,
            ResponseBody::Proxied(p) => p.is_end_stream(),
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Stream(_) => SizeHint::default(),
            ResponseBody::File(f) => f.size_hint(),
            ResponseBody::Proxied(p) => p.size_hint(),
        }
    }
}
