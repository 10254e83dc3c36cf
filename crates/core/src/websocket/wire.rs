//! The TCP socket of an accepted WebSocket, shared by two writers: the JS thread
//! writes data frames at once, in the call that hands them over (no hop to the
//! session task per message); the session writes tungstenite's frames (pongs,
//! close) and whatever the socket could not take at once. Every write appends
//! whole frames under one lock, so frames never interleave.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::deflate::{self, Inflating};
use super::outlets::Outbound;
use crate::socket::Socket;

pub struct Wire {
    stream: Arc<Socket>,
    /// permessage-deflate was negotiated: data frames of THRESHOLD bytes or
    /// more are sent compressed.
    deflate: bool,
    out: Mutex<Out>,
    /// Wakes the session when bytes wait in `out`: it writes them as the socket
    /// takes them (a message on the queue it polls anyway, not one more waker).
    wake: mpsc::UnboundedSender<Outbound>,
    /// JS wrote since the session last looked (idle time counts both ways).
    pub sent: AtomicBool,
}

#[derive(Default)]
struct Out {
    /// Written by nobody yet, in order.
    pending: BytesMut,
    /// A close frame went out: data frames after it are dropped.
    closed: bool,
}

/// A server frame's head (never masked): FIN, RSV1 (compressed), the opcode
/// and the length.
fn head(opcode: u8, compressed: bool, len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = 0x80 | if compressed { 0x40 } else { 0 } | opcode;
    let size = if len < 126 {
        head[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        head[1] = 126;
        head[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        head[1] = 127;
        head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (head, size)
}

impl Wire {
    /// The wire, and the socket's reading side for the session.
    pub fn new(
        stream: Socket,
        wake: mpsc::UnboundedSender<Outbound>,
        deflate: bool,
    ) -> (Arc<Wire>, ReadSide) {
        let stream = Arc::new(stream);
        let read = ReadSide(stream.clone());
        let wire = Arc::new(Wire {
            stream,
            deflate,
            out: Mutex::default(),
            wake,
            sent: AtomicBool::new(false),
        });
        (wire, read)
    }

    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write a data frame now, from any thread, compressed if it is worth it
    /// (callers hand messages `compresses_off_thread` to `send_deflated`); what
    /// the socket does not take waits for the session. Returns the bytes left
    /// waiting.
    pub fn send(&self, opcode: u8, payload: &[u8]) -> usize {
        match (self.deflate && payload.len() >= deflate::THRESHOLD)
            .then(|| deflate::compress(payload))
        {
            Some(packed) => self.frame(opcode, true, &packed),
            None => self.frame(opcode, false, payload),
        }
    }

    /// A message too big to compress where it is sent (the JS thread, an
    /// engine thread): the session compresses it on the blocking pool.
    pub fn compresses_off_thread(&self, len: usize) -> bool {
        self.deflate && len >= deflate::OFF_THREAD
    }

    /// Write a data frame whose payload is already deflated.
    pub fn send_deflated(&self, opcode: u8, packed: &[u8]) -> usize {
        self.frame(opcode, true, packed)
    }

    fn frame(&self, opcode: u8, compressed: bool, payload: &[u8]) -> usize {
        let (head, size) = head(opcode, compressed, payload.len());
        let mut out = self.out();
        if out.closed {
            return out.pending.len();
        }
        self.sent.store(true, Ordering::Relaxed);
        self.append(&mut out, &[&head[..size], payload]);
        out.pending.len()
    }

    /// From here on only tungstenite's close handshake writes.
    pub fn close_data(&self) {
        self.out().closed = true;
    }

    pub fn pending(&self) -> usize {
        self.out().pending.len()
    }

    /// Write `parts` after what already waits: at once when nothing does.
    fn append(&self, out: &mut Out, parts: &[&[u8]]) {
        let mut written = 0;
        if out.pending.is_empty() {
            let slices = [
                io::IoSlice::new(parts[0]),
                io::IoSlice::new(parts.get(1).copied().unwrap_or_default()),
            ];
            // WouldBlock or an error: keep it all; the session's flush reports errors.
            written = self.stream.try_send_vectored(&slices).unwrap_or(0);
        }
        let had = out.pending.len();
        for part in parts {
            let skip = written.min(part.len());
            written -= skip;
            out.pending.extend_from_slice(&part[skip..]);
        }
        if had == 0 && !out.pending.is_empty() {
            let _ = self.wake.send(Outbound::Flush);
        }
    }

    /// Write what waits, as the socket takes it.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut out = self.out();
            if out.pending.is_empty() {
                return Poll::Ready(Ok(()));
            }
            match self
                .stream
                .try_send_vectored(&[io::IoSlice::new(&out.pending)])
            {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => out.pending.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(out);
                    ready!(self.stream.poll_send_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The session's side of the socket: it reads while JS writes through the wire.
pub struct ReadSide(Arc<Socket>);

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_recv(cx, buf)
    }
}

/// The socket as tungstenite's stream: reads from the socket (skipping the
/// read that would only say "nothing more"), through the inflater when
/// messages may come compressed; writes through the wire.
pub struct WireIo {
    pub wire: Arc<Wire>,
    pub read: Reader,
}

pub enum Reader {
    Plain(ReadSide),
    Inflating(Box<Inflating<ReadSide>>),
}

impl AsyncRead for WireIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.read {
            Reader::Plain(read) => Pin::new(read).poll_read(cx, buf),
            Reader::Inflating(read) => Pin::new(read.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WireIo {
    /// Takes it all: it is written now or waits, in order, behind the rest.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let wire = &self.wire;
        let mut out = wire.out();
        wire.append(&mut out, &[buf]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wire.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.wire.poll_flush(cx))?;
        Poll::Ready(self.wire.stream.shutdown_write())
    }
}

#[cfg(test)]
mod tests {
    use super::head;

    #[test]
    fn frame_heads_use_the_shortest_length() {
        assert_eq!(&head(1, false, 5).0[..2], &[0x81, 5]);
        assert_eq!(&head(1, true, 5).0[..2], &[0xc1, 5]);
        assert_eq!(head(2, false, 126).1, 4);
        assert_eq!(&head(2, false, 126).0[..4], &[0x82, 126, 0, 126]);
        assert_eq!(head(2, false, 65536).1, 10);
        assert_eq!(
            &head(2, false, 65536).0[..10],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }
}
