//! Bodies across the proxy. Up: the client's body, handed to whichever attempt
//! first reads it (an attempt whose connection failed never did, so the next
//! member can still get it). Down: the member's body, counted as a connection of
//! the member until it ends, cut when the member stalls; reading it drives the
//! member's connection, which goes back to the pool once the body is complete.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::balancer::InFlight;
use super::pool::{Conn, Pool};
use crate::incoming::{BodyError, Incoming};

/// The client's body, shared by the attempts of one request.
pub type BodySlot = Arc<Mutex<Option<Incoming>>>;

pub struct OutBody {
    state: Out,
    hint: SizeHint,
}

enum Out {
    Empty,
    Waiting(BodySlot),
    Taken(Incoming),
    Gone,
}

impl OutBody {
    pub fn empty() -> OutBody {
        OutBody {
            state: Out::Empty,
            hint: SizeHint::with_exact(0),
        }
    }

    /// An attempt's body: takes the client's from `slot` when first read.
    pub fn from_slot(slot: &BodySlot, hint: SizeHint) -> OutBody {
        OutBody {
            state: Out::Waiting(slot.clone()),
            hint,
        }
    }
}

/// Whether an attempt has started reading the client's body (then it cannot be
/// given to another).
pub fn started(slot: &BodySlot) -> bool {
    slot.lock().unwrap_or_else(|e| e.into_inner()).is_none()
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Out::Waiting(slot) = &this.state {
            let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            this.state = match taken {
                Some(body) => Out::Taken(body),
                None => Out::Gone,
            };
        }
        match &mut this.state {
            Out::Taken(body) => Pin::new(body).poll_frame(cx),
            Out::Gone => Poll::Ready(Some(Err("request body taken by another attempt".into()))),
            _ => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            Out::Empty => true,
            Out::Taken(body) => body.is_end_stream(),
            _ => self.hint.exact() == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            Out::Taken(body) => body.size_hint(),
            _ => self.hint,
        }
    }
}

/// The member's response body on its way to the client.
pub struct UpstreamBody {
    inner: hyper::body::Incoming,
    /// The connection it arrives on, until the body is complete.
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
    in_flight: InFlight,
    /// Longest wait for the next frame.
    idle: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug)]
pub struct UpstreamStalled;

impl std::fmt::Display for UpstreamStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream sent nothing for too long")
    }
}

impl std::error::Error for UpstreamStalled {}

impl UpstreamBody {
    /// Returns the connection (none when a task of its own drives it) to the
    /// pool at once when there is no body to read.
    pub fn new(
        inner: hyper::body::Incoming,
        conn: Option<Box<Conn>>,
        pool: Arc<Pool>,
        in_flight: InFlight,
        idle: Duration,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            inner,
            conn,
            pool,
            in_flight,
            idle,
            stall: None,
        };
        body.release_when_complete();
        body
    }

    /// The server stops polling once the body says it has ended, so the
    /// connection is given back as soon as that is true.
    fn release_when_complete(&mut self) {
        if self.inner.is_end_stream() {
            self.release();
        }
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.checkin(self.in_flight.index, conn);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(conn) = this.conn.as_mut() {
            if !conn.drive(cx) {
                this.conn = None;
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The timer is made only once the member keeps us waiting.
                if let Some(stall) = this.stall.as_mut() {
                    stall.as_mut().reset(Instant::now() + this.idle);
                }
                match &frame {
                    Some(Ok(_)) => this.release_when_complete(),
                    None => this.release(),
                    Some(Err(_)) => this.conn = None,
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(stall.as_mut().poll(cx));
                this.conn = None;
                Poll::Ready(Some(Err(UpstreamStalled.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
