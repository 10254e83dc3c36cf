//! The meeting point of tokio threads and the JS thread.
//!
//! Tokio threads append events (new requests, body chunks, aborts, drains) to one
//! outbox and wake JS only when no wake is outstanding, so a busy JS thread takes a
//! whole burst per wake. JS answers through `respond` / `write` / `end` / `fail`,
//! each one call carrying status, headers and body together.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use hyper::ext::ReasonPhrase;
use hyper::upgrade::OnUpgrade;
use rustc_hash::FxHashMap;
use tokio::sync::{oneshot, Notify};

use crate::body::{self, ResponseBody, StreamWriter};
use crate::error_page::error_response;
use crate::push::PushSender;
use crate::record;
use crate::request_body::Credit;
use crate::websocket::outlets::Outlets;
use crate::websocket::{Accepted, Settings};

pub type Waker = Box<dyn Fn() + Send + Sync>;

/// Events for JS since its last wake: one latin1 text of '\n'-separated fields
/// (see `record`), the body buffers it refers to by index, and the WebSocket
/// messages it takes in order.
#[derive(Default)]
pub struct Batch {
    pub text: Vec<u8>,
    pub buffers: Vec<Bytes>,
    /// WebSocket text messages, one after another (UTF-8): one JS string for
    /// the batch, each message a slice of it.
    pub ws_text: Vec<u8>,
    /// WebSocket binary messages, one after another: one Buffer for the batch.
    pub ws_binary: Vec<u8>,
    /// Each WebSocket message's socket, size and kind (`record::ws_message`),
    /// read in JS as numbers: no text fields to split and parse per message.
    pub ws_meta: Vec<u8>,
    /// Access records, one after another (`record::access`): one Buffer for the
    /// batch, formatted in JS straight from its bytes.
    pub log: Vec<u8>,
}

impl Batch {
    /// An empty batch with room for as much as `last` held: a busy server's
    /// batches fill without growing (and copying) their buffers step by step.
    /// (Up to 256 KiB each: one large burst does not size every batch after it.)
    fn sized_like(last: &Batch) -> Batch {
        const MAX: usize = 256 * 1024;
        const MAX_BUFFERS: usize = MAX / std::mem::size_of::<Bytes>();
        Batch {
            text: Vec::with_capacity(last.text.len().min(MAX)),
            buffers: Vec::with_capacity(last.buffers.len().min(MAX_BUFFERS)),
            ws_text: Vec::with_capacity(last.ws_text.len().min(MAX)),
            ws_binary: Vec::with_capacity(last.ws_binary.len().min(MAX)),
            ws_meta: Vec::with_capacity(last.ws_meta.len().min(MAX)),
            log: Vec::with_capacity(last.log.len().min(MAX)),
        }
    }
}

#[derive(Default)]
struct Outbox {
    batch: Batch,
    /// Events in `batch`.
    events: usize,
    /// A wake was sent and JS has not taken the batch yet.
    woken: bool,
    /// A timer will wake JS for records that came without a wake (`emit_lazily`).
    lazy_timer: bool,
}

/// Events that wake JS at once instead of when the tokio thread runs out of work.
const EAGER_WAKE_EVENTS: usize = 64;
/// WebSocket message bytes waiting for JS past which sockets stop reading: a
/// slow JS thread holds clients back instead of growing the outbox.
const WS_INBOX_MAX: usize = 32 * 1024 * 1024;
/// Longest an event waits for JS while the tokio threads stay busy (never park).
const WAKE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1);
/// Longest a record that needs no answer (an access record) waits for a wake to ride on.
const LAZY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Default)]
pub struct Stats {
    /// Requests handed to JS.
    pub requests: AtomicU64,
    /// Times the JS thread was woken.
    pub wakes: AtomicU64,
    /// Calls from JS into the addon.
    pub calls: AtomicU64,
}

enum Reply {
    /// JS has not started the response yet.
    Head(oneshot::Sender<Response<ResponseBody>>),
    /// Headers are sent; JS writes the body.
    Streaming(StreamWriter),
}

struct Pending {
    reply: Reply,
    html: bool,
    credit: Option<Arc<Credit>>,
    /// HTTP/2 only: where `res.push(path)` goes.
    push: Option<PushSender>,
    /// A WebSocket handshake: the socket, once a 101 is sent.
    upgrade: Option<OnUpgrade>,
    /// When it was handed to JS, for `expire_requests`.
    since: Instant,
}

impl Pending {
    /// Out of the table: a body pump waiting for JS to read must stop waiting.
    fn retired(self) -> Pending {
        if let Some(credit) = &self.credit {
            credit.close();
        }
        self
    }
}

pub type ReplyReceiver = oneshot::Receiver<Response<ResponseBody>>;

type HeldReply = (
    oneshot::Sender<Response<ResponseBody>>,
    Response<ResponseBody>,
);

pub struct Bridge {
    me: Weak<Bridge>,
    outbox: Mutex<Outbox>,
    waker: Mutex<Option<Waker>>,
    pending: Mutex<FxHashMap<u64, Pending>>,
    next_id: AtomicU64,
    max_pending: usize,
    /// Responses (whole, or the heads of streamed ones) JS made since its last
    /// `end_batch`, handed over together then: one wake of the tokio thread per
    /// batch rather than a context switch per response when both share a core.
    held: Mutex<Vec<HeldReply>>,
    /// A current-thread runtime, whose thread sends the held replies (`end_batch`).
    relay: OnceLock<tokio::runtime::Handle>,
    /// Where WebSocket sessions run, when not on the engine's threads.
    session_loop: OnceLock<Arc<dyn crate::websocket::SessionLoop>>,
    /// Open WebSockets, for JS's sends.
    pub outlets: Outlets,
    /// Bytes of WebSocket messages in the outbox: past `WS_INBOX_MAX` the
    /// sockets stop reading until JS takes the batch (`ws_room`).
    ws_inbox: AtomicUsize,
    ws_room: Notify,
    pub stats: Stats,
}

fn send_all(replies: Vec<HeldReply>) {
    for (tx, response) in replies {
        // The receiver is gone when the client left meanwhile: nothing to send.
        let _ = tx.send(response);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-written
    // in a way that matters more than stopping service, so keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bridge {
    pub fn new(max_pending: usize) -> Arc<Bridge> {
        Arc::new_cyclic(|me| Bridge {
            me: me.clone(),
            outbox: Mutex::default(),
            waker: Mutex::new(None),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            max_pending,
            held: Mutex::default(),
            relay: OnceLock::new(),
            session_loop: OnceLock::new(),
            outlets: Outlets::default(),
            ws_inbox: AtomicUsize::new(0),
            ws_room: Notify::new(),
            stats: Stats::default(),
        })
    }

    /// Run WebSocket sessions on `session_loop` (the JS thread's) from now on.
    pub fn set_session_loop(&self, session_loop: Arc<dyn crate::websocket::SessionLoop>) {
        let _ = self.session_loop.set(session_loop);
    }

    pub fn session_loop(&self) -> Option<&Arc<dyn crate::websocket::SessionLoop>> {
        self.session_loop.get()
    }

    /// Install (or, with None, drop) the function that wakes the JS thread.
    pub fn set_waker(&self, waker: Option<Waker>) {
        *lock(&self.waker) = waker;
    }

    /// Append an event. JS is woken when the tokio thread that emitted it runs out
    /// of work (`wake_if_due`, from the runtime's park hook), so that one wake
    /// carries everything that thread parsed; a large backlog wakes it at once.
    pub fn emit(&self, write: impl FnOnce(&mut Batch)) {
        let (wake, first) = {
            let mut outbox = lock(&self.outbox);
            write(&mut outbox.batch);
            outbox.events += 1;
            let first = outbox.events == 1 && !outbox.woken;
            let wake =
                outbox.events >= EAGER_WAKE_EVENTS && !std::mem::replace(&mut outbox.woken, true);
            (wake, first)
        };
        if wake {
            self.wake();
        } else if first && !crate::websocket::ON_SESSION_LOOP.with(std::cell::Cell::get) {
            // A worker kept busy by other connections may not park for a while.
            if let (Ok(runtime), Some(me)) =
                (tokio::runtime::Handle::try_current(), self.me.upgrade())
            {
                runtime.spawn(async move {
                    tokio::time::sleep(WAKE_DEADLINE).await;
                    me.wake_if_due();
                });
            }
        }
    }

    /// Append a record JS needs eventually but nobody waits for (an access
    /// record). It rides along with the next wake for requests; only when none
    /// comes within `LAZY_DEADLINE` does it wake JS itself. Waking JS for these
    /// alone would halve the batches under load.
    pub fn emit_lazily(&self, write: impl FnOnce(&mut Batch)) {
        let arm = {
            let mut outbox = lock(&self.outbox);
            write(&mut outbox.batch);
            !std::mem::replace(&mut outbox.lazy_timer, true)
        };
        if !arm {
            return;
        }
        match (tokio::runtime::Handle::try_current(), self.me.upgrade()) {
            (Ok(runtime), Some(me)) => {
                runtime.spawn(async move {
                    tokio::time::sleep(LAZY_DEADLINE).await;
                    me.flush_lazy();
                });
            }
            // Outside the runtime (shutting down): the closing event carries it.
            _ => lock(&self.outbox).lazy_timer = false,
        }
    }

    fn flush_lazy(&self) {
        let wake = {
            let mut outbox = lock(&self.outbox);
            outbox.lazy_timer = false;
            let waiting = !outbox.batch.text.is_empty() || !outbox.batch.log.is_empty();
            waiting && !std::mem::replace(&mut outbox.woken, true)
        };
        if wake {
            self.wake();
        }
    }

    /// Wake JS if events wait and no wake is outstanding. Called before a tokio
    /// worker parks.
    pub fn wake_if_due(&self) {
        let wake = {
            let mut outbox = lock(&self.outbox);
            outbox.events > 0 && !std::mem::replace(&mut outbox.woken, true)
        };
        if wake {
            self.wake();
        }
    }

    fn wake(&self) {
        self.stats.wakes.fetch_add(1, Ordering::Relaxed);
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker();
        }
    }

    /// Called on the JS thread when woken: everything queued so far.
    pub fn take(&self) -> Batch {
        let batch = {
            let mut outbox = lock(&self.outbox);
            outbox.woken = false;
            outbox.events = 0;
            let next = Batch::sized_like(&outbox.batch);
            std::mem::replace(&mut outbox.batch, next)
        };
        if self.ws_inbox.swap(0, Ordering::AcqRel) > 0 {
            self.ws_room.notify_waiters();
        }
        batch
    }

    /// A whole WebSocket message for JS.
    pub fn ws_message(&self, id: u64, text: bool, data: &[u8]) {
        self.ws_inbox.fetch_add(data.len(), Ordering::AcqRel);
        self.emit(|b| record::ws_message(b, id, text, data));
    }

    /// Sockets may read more messages (else wait for `ws_room`).
    pub fn ws_has_room(&self) -> bool {
        self.ws_inbox.load(Ordering::Acquire) < WS_INBOX_MAX
    }

    /// Resolves when JS next takes a batch. Make it before `ws_has_room` says
    /// no, so that a take in between is not missed.
    pub fn ws_room(&self) -> tokio::sync::futures::Notified<'_> {
        self.ws_room.notified()
    }

    /// Send the held replies from `runtime`'s own thread (a current-thread
    /// runtime's): tokio writes such a runtime's eventfd on every wake from
    /// another thread, once per response when sent from JS's, while a wake from
    /// its own thread is a push onto its run queue.
    pub fn relay_replies_through(&self, runtime: tokio::runtime::Handle) {
        let _ = self.relay.set(runtime);
    }

    /// Send the responses JS made since the last call: JS calls this after a
    /// batch's handlers, and after the microtasks that made responses outside
    /// one (ts/engines/native/reply-holder.ts).
    pub fn end_batch(&self) {
        let held = std::mem::take(&mut *lock(&self.held));
        match self.relay.get() {
            // One wake of the runtime's thread for the whole batch.
            Some(runtime) if held.len() > 1 => {
                runtime.spawn(async move { send_all(held) });
            }
            _ => send_all(held),
        }
    }

    pub fn count_call(&self) {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Reserve an id for a request bound for JS; None when too many are waiting.
    pub fn register(
        &self,
        html: bool,
        credit: Option<Arc<Credit>>,
        push: Option<PushSender>,
        upgrade: Option<OnUpgrade>,
    ) -> Option<(u64, ReplyReceiver)> {
        let mut pending = lock(&self.pending);
        if pending.len() >= self.max_pending {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        pending.insert(
            id,
            Pending {
                reply: Reply::Head(tx),
                html,
                credit,
                push,
                upgrade,
                since: Instant::now(),
            },
        );
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Some((id, rx))
    }

    fn remove(&self, id: u64) -> Option<Pending> {
        lock(&self.pending).remove(&id).map(Pending::retired)
    }

    /// The client is gone (or hyper dropped the exchange): tell JS if it still cares.
    pub fn abandon(&self, id: u64) {
        if self.remove(id).is_some() {
            self.emit(|b| record::abort(b, id));
        }
    }

    /// The engine answers in JS's place with an error page (a timeout, a body
    /// too large), and tells JS.
    pub fn preempt_with_error(&self, id: u64, status: StatusCode) {
        let Some(entry) = self.remove(id) else { return };
        match entry.reply {
            Reply::Head(tx) => {
                let _ = tx.send(error_response(status, entry.html));
            }
            Reply::Streaming(writer) => writer.abort(),
        }
        self.emit(|b| record::preempted(b, id, status.as_u16()));
    }

    /// Answer `503` to each request JS has not begun to answer within `timeout`,
    /// looked for every eighth of it (10 ms to 1 s): one timer for them all, not
    /// a timer per request put into the timer wheel and taken out again. Runs
    /// until the bridge is dropped.
    pub async fn expire_requests(me: Weak<Bridge>, timeout: Duration) {
        let every = (timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let Some(bridge) = me.upgrade() else { return };
            let now = Instant::now();
            let expired: Vec<u64> = lock(&bridge.pending)
                .iter()
                .filter(|(_, p)| {
                    matches!(p.reply, Reply::Head(_)) && now.duration_since(p.since) >= timeout
                })
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                bridge.preempt_with_error(id, StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    }

    pub fn drained(&self, id: u64) {
        self.emit(|b| record::drained(b, id));
    }

    /// Start (and with `end`, complete) the response. False when the request is gone,
    /// its response had already started, or (without `end`) JS should wait for 'drain'.
    pub fn respond(
        self: &Arc<Self>,
        id: u64,
        status: u16,
        headers: &[u8],
        body: Bytes,
        end: bool,
    ) -> bool {
        let mut pending = lock(&self.pending);
        let (tx, response_body, below_mark) = if end {
            // One map operation on the common path: a whole response in one call.
            match pending.remove(&id) {
                Some(
                    entry @ Pending {
                        reply: Reply::Head(_),
                        ..
                    },
                ) => {
                    let Reply::Head(tx) = entry.retired().reply else {
                        return false;
                    };
                    (tx, ResponseBody::full(body), true)
                }
                Some(streaming) => {
                    pending.insert(id, streaming);
                    return false;
                }
                None => return false,
            }
        } else {
            let Some(entry) = pending.get_mut(&id) else {
                return false;
            };
            if !matches!(entry.reply, Reply::Head(_)) {
                return false;
            }
            let (writer, stream) = body::stream(self.clone(), id);
            let below_mark = writer.write(body);
            let Reply::Head(tx) = std::mem::replace(&mut entry.reply, Reply::Streaming(writer))
            else {
                return false;
            };
            (tx, ResponseBody::Stream(stream), below_mark)
        };
        drop(pending);
        self.hold(tx, build_response(status, headers, response_body));
        below_mark
    }

    /// Hand over a response (whole, or its head with the stream its body follows
    /// in) at the next `end_batch`.
    fn hold(&self, tx: oneshot::Sender<Response<ResponseBody>>, response: Response<ResponseBody>) {
        lock(&self.held).push((tx, response));
    }

    /// A WebSocket endpoint accepted the handshake: answer 101 with JS's header
    /// block; the connection runs the socket (see `websocket::session`). False
    /// when the request is gone, answered, or cannot upgrade.
    pub fn accept_websocket(&self, id: u64, headers: &[u8], settings: Settings) -> bool {
        let (tx, upgrade) = {
            let mut pending = lock(&self.pending);
            match pending.remove(&id) {
                Some(Pending {
                    reply: Reply::Head(tx),
                    upgrade: Some(upgrade),
                    ..
                }) => (tx, upgrade),
                Some(other) => {
                    pending.insert(id, other);
                    return false;
                }
                None => return false,
            }
        };
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        let mut response = build_response(101, headers, ResponseBody::empty());
        response
            .extensions_mut()
            .insert(Accepted::new(id, me, upgrade, settings));
        self.hold(tx, response);
        true
    }

    /// Queue a body chunk of a started response; false when JS should wait for 'drain'.
    pub fn write(&self, id: u64, chunk: Bytes) -> bool {
        match lock(&self.pending).get(&id) {
            Some(Pending {
                reply: Reply::Streaming(writer),
                ..
            }) => writer.write(chunk),
            _ => false,
        }
    }

    /// Finish a started response with a last chunk, and trailer fields if any
    /// (a header block as `respond` takes it).
    pub fn end(&self, id: u64, chunk: Bytes, trailers: Option<&[u8]>) -> bool {
        match self.remove(id).map(|e| e.reply) {
            Some(Reply::Streaming(writer)) => {
                writer.write(chunk);
                if let Some(block) = trailers {
                    writer.trailers(valid_fields(block).collect());
                }
                writer.finish();
                true
            }
            _ => false,
        }
    }

    /// The handler failed: an error page if nothing was sent yet, else cut the body.
    pub fn fail(&self, id: u64, status: u16) -> bool {
        let Some(entry) = self.remove(id) else {
            return false;
        };
        match entry.reply {
            Reply::Head(tx) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                tx.send(error_response(status, entry.html)).is_ok()
            }
            Reply::Streaming(writer) => {
                writer.abort();
                true
            }
        }
    }

    /// JS consumed `bytes` of a streamed request body.
    pub fn ack(&self, id: u64, bytes: usize) {
        if let Some(credit) = lock(&self.pending).get(&id).and_then(|e| e.credit.clone()) {
            credit.release(bytes);
        }
    }

    /// `res.push(path)`: on to the request's HTTP/2 stream while its response has
    /// not started; a no-op otherwise (HTTP/1.1, answered, gone).
    pub fn push(&self, id: u64, path: String) {
        if let Some(Pending {
            reply: Reply::Head(_),
            push: Some(push),
            ..
        }) = lock(&self.pending).get(&id)
        {
            push.send(path);
        }
    }

    pub fn is_pending(&self, id: u64) -> bool {
        lock(&self.pending).contains_key(&id)
    }

    pub fn closed(&self) {
        self.emit(record::closed);
    }
}

/// A field name no header can have: it carries `res.statusMessage`.
const REASON_FIELD: &[u8] = b":reason";

/// Build a response from JS's status and its `name\nvalue\n` header block.
pub fn build_response(status: u16, headers: &[u8], body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in pairs(headers) {
        if name == REASON_FIELD {
            if let Ok(reason) = ReasonPhrase::try_from(value) {
                response.extensions_mut().insert(reason);
            }
            continue;
        }
        if let Some((name, value)) = valid(name, value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The `name\nvalue\n` pairs of a header block.
fn pairs(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut fields = block.split(|&b| b == b'\n');
    std::iter::from_fn(move || Some((fields.next()?, fields.next()?)))
}

/// JS validates names and values like node:http does; anything that still fails
/// here is dropped rather than sent malformed.
fn valid(name: &[u8], value: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::from_bytes(name).ok()?,
        HeaderValue::from_bytes(value).ok()?,
    ))
}

fn valid_fields(block: &[u8]) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
    pairs(block).filter_map(|(name, value)| valid(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's whole responses reach their requests, each its own, when they
    /// are relayed through a current-thread runtime's thread.
    #[test]
    fn held_replies_are_relayed_to_their_requests() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bridge = Bridge::new(16);
        bridge.relay_replies_through(runtime.handle().clone());
        let requests: Vec<_> = (0..5)
            .map(|_| bridge.register(false, None, None, None).unwrap())
            .collect();
        let _ = bridge.take();
        for (n, (id, _)) in requests.iter().enumerate() {
            let status = 200 + n as u16;
            assert!(bridge.respond(*id, status, b"x-n\nv\n", Bytes::new(), true));
        }
        bridge.end_batch();
        let statuses = runtime.block_on(async {
            let mut statuses = Vec::new();
            for (_, reply) in requests {
                let response = reply.await.expect("the reply was sent");
                assert_eq!(response.headers()["x-n"], "v");
                statuses.push(response.status().as_u16());
            }
            statuses
        });
        assert_eq!(statuses, [200, 201, 202, 203, 204]);
    }

    /// Responses, whole or the heads of streamed ones, wait for `end_batch`.
    #[test]
    fn responses_wait_for_end_batch() {
        let bridge = Bridge::new(16);
        let (whole, mut whole_reply) = bridge.register(false, None, None, None).unwrap();
        assert!(bridge.respond(whole, 200, b"", Bytes::new(), true));
        // A streamed response's chunks wait in its stream meanwhile.
        let (streamed, mut streamed_reply) = bridge.register(false, None, None, None).unwrap();
        assert!(bridge.respond(streamed, 202, b"", Bytes::from_static(b"a"), false));
        assert!(bridge.write(streamed, Bytes::from_static(b"b")));
        assert!(whole_reply.try_recv().is_err(), "held until end_batch");
        assert!(streamed_reply.try_recv().is_err(), "held until end_batch");
        bridge.end_batch();
        let status = |r: Response<ResponseBody>| r.status().as_u16();
        assert_eq!(whole_reply.try_recv().map(status).ok(), Some(200));
        assert_eq!(streamed_reply.try_recv().map(status).ok(), Some(202));
    }
}
