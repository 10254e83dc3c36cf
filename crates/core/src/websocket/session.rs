//! One accepted WebSocket. tungstenite frames it: masking, fragments, UTF-8,
//! control frames, sizes. Whole messages go to JS with the next batch; JS's
//! sends come through the socket's outlet and are written together; idle time,
//! keep-alive pings and the server's closing are kept here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tungstenite::error::{CapacityError, Error};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Message, Utf8Bytes};

use super::deflate::{self, Inflating};
use super::outlets::{Backlog, Outbound};
use super::wire::{Reader, Wire, WireIo};
use super::{Accepted, Settings};
use crate::bridge::Bridge;
use crate::connection::ShutdownSignal;
use crate::quiet::Quiet;
use crate::record;
use crate::socket::Socket as TcpSocket;

/// The session's socket as tungstenite's blocking-style stream, for one
/// poll: what would wait says WouldBlock, `cx`'s waker registered. (The
/// session owns tungstenite's state and its socket whole: no split halves
/// with a lock between them, no waker proxies.)
struct Polled<'a, 'b> {
    io: &'a mut WireIo,
    cx: &'a mut Context<'b>,
}

fn would_block<T>(polled: Poll<io::Result<T>>) -> io::Result<T> {
    match polled {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl io::Read for Polled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        would_block(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl io::Write for Polled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(Pin::new(&mut *self.io).poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.io).poll_flush(self.cx))
    }
}

/// `op` on tungstenite with the socket, for one poll: Pending where it would block.
fn poll_ws<T>(
    ws: &mut WebSocketContext,
    io: &mut WireIo,
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut WebSocketContext, &mut Polled<'_, '_>) -> Result<T, Error>,
) -> Poll<Result<T, Error>> {
    match op(ws, &mut Polled { io, cx }) {
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        done => Poll::Ready(done),
    }
}

/// The socket's queue from JS as a future of its next record, so that it can
/// wait in a `Quiet`.
struct Inbox(mpsc::UnboundedReceiver<Outbound>);

impl Future for Inbox {
    type Output = Option<Outbound>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        self.0.poll_recv(cx)
    }
}

/// How long the peer gets to answer our close frame before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Reported when the socket ended without a close frame (RFC 6455 §7.1.5).
pub const ABNORMAL: u16 = 1006;
/// Reported when the peer's close frame had no code.
const NO_STATUS: u16 = 1005;
/// Bytes read from the socket at a time. tungstenite zeroes this much before each
/// read (its default is 128 KiB), so small keeps small messages cheap.
const READ_CHUNK: usize = 4 * 1024;

/// The session's deadlines.
struct Clock {
    idle: Option<Duration>,
    ping: Option<Duration>,
    last_active: Instant,
    ping_at: Instant,
    /// Set once a close frame went out: then only this deadline counts.
    close_by: Option<Instant>,
}

/// A deadline that never comes.
fn never() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

impl Clock {
    fn new(settings: &Settings) -> Clock {
        let now = Instant::now();
        Clock {
            idle: settings.idle,
            ping: settings.ping,
            last_active: now,
            ping_at: settings.ping.map_or_else(never, |d| now + d),
            close_by: None,
        }
    }

    /// A message came or went.
    fn active(&mut self) {
        if self.idle.is_some() {
            self.last_active = Instant::now();
        }
    }

    fn idle_by(&self) -> Option<Instant> {
        self.idle.map(|d| self.last_active + d)
    }

    fn pinged(&mut self, now: Instant) {
        self.ping_at = self.ping.map_or_else(never, |d| now + d);
    }

    /// A close frame went out: the peer's answer is due by the returned time.
    fn closing(&mut self) -> Instant {
        *self.close_by.insert(Instant::now() + CLOSE_WAIT)
    }

    /// When the timer should next look.
    fn next(&self) -> Instant {
        match (self.close_by, self.idle_by()) {
            (Some(at), _) => at,
            (None, Some(idle)) => idle.min(self.ping_at),
            (None, None) => self.ping_at,
        }
    }
}

/// Run the socket to its end, then tell JS how it closed: here, or on the
/// bridge's session loop (the JS thread's) when it has one.
pub async fn run(accepted: Accepted, shutdown: ShutdownSignal) {
    let Some((handoff, start)) = accepted.start() else {
        return;
    };
    let report = CloseReport {
        bridge: handoff.bridge.clone(),
        id: handoff.id,
        reported: false,
    };
    // The connection's own socket (what the connection served), so that JS can
    // write to it directly; bytes hyper read past the handshake go first.
    let upgrade = start.upgrade;
    let parts = match upgrade.await.map(|u| u.downcast::<TokioIo<TcpSocket>>()) {
        Ok(Ok(parts)) => (parts.io.into_inner(), parts.read_buf),
        _ => return report.closed(ABNORMAL, Bytes::new()),
    };
    let rest = Rest {
        settings: start.settings,
        outbound: start.outbound,
        wake: start.wake,
        backlog: start.backlog,
        shutdown,
    };
    #[cfg(unix)]
    if let Some(session_loop) = report.bridge.session_loop().cloned() {
        let (io, read_buf) = parts;
        let bridge = report.bridge.clone();
        // This task stays until the session has ended, so that the engine's
        // shutdown waits for it as for any connection; if this task is dropped
        // first (the engine disposed), the session ends at its next turn, before
        // it could touch a timer of the engine's gone runtime.
        let (ended, has_ended) = tokio::sync::oneshot::channel::<()>();
        let (alive, engine_gone) = tokio::sync::oneshot::channel::<()>();
        // The report goes with the session: made there, or, if that loop never
        // runs it, when the closure is dropped.
        session_loop.adopt(
            bridge,
            io.into_std(),
            Box::new(move |io| {
                Box::pin(async move {
                    // Looked at only when its own waker fires, not at each message.
                    let mut engine_gone = Quiet::new(engine_gone);
                    let closed = {
                        let mut session = std::pin::pin!(serve(&report, io, read_buf, rest));
                        std::future::poll_fn(|cx| {
                            if Pin::new(&mut engine_gone).poll(cx).is_ready() {
                                return Poll::Ready(None);
                            }
                            session.as_mut().poll(cx).map(Some)
                        })
                        .await
                    };
                    if let Some((code, reason)) = closed {
                        report.closed(code, reason);
                    }
                    drop(ended);
                })
            }),
        );
        let _ = has_ended.await;
        drop(alive);
        return;
    }
    let (code, reason) = serve(&report, parts.0, parts.1, rest).await;
    report.closed(code, reason);
}

/// What a session needs besides its socket.
struct Rest {
    settings: Settings,
    outbound: mpsc::UnboundedReceiver<Outbound>,
    wake: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
    shutdown: ShutdownSignal,
}

/// The session on `io`, to its end: how it closed.
async fn serve(report: &CloseReport, io: TcpSocket, read_buf: Bytes, rest: Rest) -> (u16, Bytes) {
    let Rest {
        settings,
        outbound,
        wake,
        backlog,
        shutdown,
    } = rest;
    let (wire, read) = Wire::new(io, wake, settings.deflate);
    let read = if settings.deflate {
        Reader::Inflating(Box::new(Inflating::new(read, settings.max_message)))
    } else {
        Reader::Plain(read)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK)
        .max_message_size(Some(settings.max_message))
        .max_frame_size(Some(settings.max_message));
    let ws = WebSocketContext::from_partially_read(read_buf.to_vec(), Role::Server, Some(config));
    let io = WireIo {
        wire: wire.clone(),
        read,
    };
    let _ = backlog.wire.set(wire.clone());
    let session = Session {
        id: report.id,
        bridge: &report.bridge,
        ws,
        io,
        wire,
        backlog,
        settings,
        closing: None,
        shutdown: shutdown.borrow().is_some(),
    };
    session.serve(outbound).await
}

/// Tells JS how the socket closed, exactly once: with the session's code, or
/// 1006 if the session ended any other way (unwound by a bug, or never run),
/// so that JS never keeps a socket that is gone.
struct CloseReport {
    bridge: Arc<Bridge>,
    id: u64,
    reported: bool,
}

impl CloseReport {
    fn closed(mut self, code: u16, reason: Bytes) {
        self.report(code, reason);
    }

    fn report(&mut self, code: u16, reason: Bytes) {
        let id = self.id;
        self.reported = true;
        self.bridge.outlets.close(id);
        self.bridge.emit(|b| record::ws_closed(b, id, code, reason));
    }
}

impl Drop for CloseReport {
    fn drop(&mut self) {
        if !self.reported {
            self.report(ABNORMAL, Bytes::new());
        }
    }
}

struct Session<'a> {
    id: u64,
    bridge: &'a Arc<Bridge>,
    /// tungstenite's state of the socket: framing, the close handshake, pongs.
    ws: WebSocketContext,
    io: WireIo,
    wire: Arc<Wire>,
    backlog: Arc<Backlog>,
    settings: Settings,
    /// We sent a close frame with this code: waiting for the peer's.
    closing: Option<u16>,
    /// The server is closing (`Outbound::Shutdown`): close with 1001.
    shutdown: bool,
}

/// The close code for a broken frame, sent before the socket is dropped.
fn failure_code(error: &Error) -> Option<CloseCode> {
    match error {
        Error::Capacity(CapacityError::MessageTooLong { .. }) => Some(CloseCode::Size),
        Error::Utf8(_) => Some(CloseCode::Invalid),
        Error::Protocol(_) | Error::Capacity(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

impl Session<'_> {
    /// How the socket ended without a close frame from the peer: the code we
    /// sent, if we had started closing, else 1006.
    fn ended(&self) -> (u16, Bytes) {
        (self.closing.unwrap_or(ABNORMAL), Bytes::new())
    }

    /// The next message, None once the socket has ended. (`serve` returns at
    /// the first None or error: nothing reads after them.)
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        poll_ws(&mut self.ws, &mut self.io, cx, |ws, s| ws.read(s)).map(|read| match read {
            Err(Error::AlreadyClosed | Error::ConnectionClosed) => None,
            read => Some(read),
        })
    }

    /// Queue `message` for the next flush (it is kept even when the socket would block).
    fn feed(&mut self, message: Message) -> Result<(), Error> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match poll_ws(&mut self.ws, &mut self.io, &mut cx, |ws, s| {
            ws.write(s, message)
        }) {
            Poll::Ready(result) => result,
            Poll::Pending => Ok(()),
        }
    }

    /// Write out what tungstenite queued (a closed connection has nothing left to write).
    async fn flush_ws(&mut self) -> Result<(), Error> {
        match std::future::poll_fn(|cx| {
            poll_ws(&mut self.ws, &mut self.io, cx, |ws, s| ws.flush(s))
        })
        .await
        {
            Err(Error::ConnectionClosed) => Ok(()),
            done => done,
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message)?;
        self.flush_ws().await
    }

    async fn serve(mut self, outbound: mpsc::UnboundedReceiver<Outbound>) -> (u16, Bytes) {
        let mut clock = Clock::new(&self.settings);
        // One timer for idle time, pings and the close wait, moved only when it
        // fires or a close starts: nothing per message but a clock read.
        let timer = tokio::time::sleep_until(clock.next());
        tokio::pin!(timer);
        // Both polled only when their own wakers fire, not at each message.
        let mut timer = Quiet::new(timer);
        let mut inbox = Quiet::new(Inbox(outbound));
        loop {
            if self.shutdown && self.closing.is_none() {
                self.close(CloseCode::Away, "server closing").await;
                timer.get_mut().as_mut().reset(clock.closing());
                timer.rouse();
            }
            let room = self.bridge.ws_room();
            let has_room = self.bridge.ws_has_room();
            tokio::select! {
                _ = room, if !has_room => {}
                frame = std::future::poll_fn(|cx| self.poll_next(cx)), if has_room => {
                    clock.active();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            self.bridge.ws_message(self.id, true, text.as_bytes());
                        }
                        Some(Ok(Message::Binary(data))) => {
                            self.bridge.ws_message(self.id, false, &data);
                        }
                        // tungstenite queued the pong: send it now.
                        Some(Ok(Message::Ping(_))) => {
                            if self.flush_ws().await.is_err() {
                                return self.ended();
                            }
                        }
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(frame))) => {
                            self.wire.close_data();
                            // The peer's code; tungstenite queued the echo (or, for our own
                            // close, this is the answer). Either way the socket is done.
                            let _ = self.flush_ws().await;
                            return match frame {
                                Some(CloseFrame { code, reason }) => (code.into(), Bytes::from(reason)),
                                None => (self.closing.unwrap_or(NO_STATUS), Bytes::new()),
                            };
                        }
                        Some(Err(error)) => {
                            let Some(code) = failure_code(&error) else {
                                return self.ended();
                            };
                            self.wire.close_data();
                            let frame = CloseFrame { code, reason: Utf8Bytes::from_static("") };
                            let _ = tokio::time::timeout(CLOSE_WAIT, self.send(Message::Close(Some(frame)))).await;
                            return (code.into(), Bytes::new());
                        }
                        None => return self.ended(),
                    }
                }
                Some(first) = &mut inbox => {
                    clock.active();
                    let was_closing = self.closing.is_some();
                    if !self.write(first, &mut inbox.get_mut().0).await {
                        return self.ended();
                    }
                    // A queue that gave a record registers no waker: look again next time.
                    inbox.rouse();
                    if !was_closing && self.closing.is_some() {
                        timer.get_mut().as_mut().reset(clock.closing());
                        timer.rouse();
                    }
                }
                () = &mut timer => {
                    if self.wire.sent.swap(false, Ordering::Relaxed) {
                        clock.active();
                    }
                    let now = Instant::now();
                    if let Some(close_by) = clock.close_by {
                        if now >= close_by {
                            return self.ended();
                        }
                    } else if clock.idle_by().is_some_and(|at| now >= at) {
                        self.close(CloseCode::Away, "idle timeout").await;
                        clock.closing();
                    } else if clock.ping_at <= now {
                        clock.pinged(now);
                        if self.send(Message::Ping(Bytes::new())).await.is_err() {
                            return self.ended();
                        }
                    }
                    timer.get_mut().as_mut().reset(clock.next());
                    timer.rouse();
                }
            }
        }
    }

    /// Send a close frame; the peer then has `CLOSE_WAIT` to answer.
    async fn close(&mut self, code: CloseCode, reason: &'static str) {
        self.closing = Some(code.into());
        self.wire.close_data();
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, self.send(Message::Close(Some(frame)))).await;
    }

    /// What tungstenite sends for one of JS's control records (data goes
    /// through `send_data`); nothing after our close frame.
    fn message(&mut self, out: Outbound) -> Option<Message> {
        if self.closing.is_some() {
            return None;
        }
        Some(match out {
            Outbound::Flush => return None,
            Outbound::Shutdown => {
                self.shutdown = true;
                return None;
            }
            Outbound::Text(_) | Outbound::Binary(_) => return None,
            Outbound::Ping => Message::Ping(Bytes::new()),
            Outbound::Close(code, reason) => {
                self.closing = Some(code);
                self.wire.close_data();
                Message::Close(Some(CloseFrame {
                    code: code.into(),
                    reason: Utf8Bytes::try_from(reason).unwrap_or_default(),
                }))
            }
        })
    }

    /// Write `first` and whatever else JS queued meanwhile, then flush once.
    /// False when the socket broke.
    async fn write(
        &mut self,
        first: Outbound,
        outbound: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> bool {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            let from_js = out.from_js().then(|| out.bytes());
            let sent = match out {
                Outbound::Text(bytes) => self.send_data(1, bytes).await,
                Outbound::Binary(bytes) => self.send_data(2, bytes).await,
                control => match self.message(control) {
                    Some(message) => self.feed(message).is_ok(),
                    None => true,
                },
            };
            // Off the queue only once in the wire: while a big message is being
            // compressed, JS's next sends must still queue behind it, not write
            // straight to the socket ahead of it.
            if let Some(bytes) = from_js {
                self.backlog.dequeued(bytes);
            }
            if !sent {
                return false;
            }
            next = outbound.try_recv().ok();
        }
        self.flush().await
    }

    /// A data frame from the queue, framed (and compressed) as JS's direct
    /// sends are, behind them; nothing after our close frame. False when the
    /// compression task failed.
    async fn send_data(&self, opcode: u8, bytes: Bytes) -> bool {
        if self.closing.is_some() {
            return true;
        }
        if !self.wire.compresses_off_thread(bytes.len()) {
            self.wire.send(opcode, &bytes);
            return true;
        }
        // What comes after it waits in the queue meanwhile: order is kept.
        match tokio::task::spawn_blocking(move || deflate::compress(&bytes)).await {
            Ok(packed) => {
                self.wire.send_deflated(opcode, &packed);
                true
            }
            Err(_) => false,
        }
    }

    /// Write what waits in the wire; tell JS if it may send again. False when
    /// the socket broke.
    async fn flush(&mut self) -> bool {
        if self.flush_ws().await.is_err() {
            return false;
        }
        if self.backlog.drained() {
            let id = self.id;
            self.bridge.emit(|b| record::ws_drained(b, id));
        }
        true
    }
}
