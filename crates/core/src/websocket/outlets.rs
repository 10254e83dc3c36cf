//! The way from JS to open sockets, and the packed form in which JS hands over
//! all of a tick's sends in one call. Data frames are written to the socket
//! right there (`Wire::send`) once the session runs and nothing is queued
//! before them; the rest (sends before the socket is up, close, ping) goes
//! through the session's queue, in order.
//!
//! ```text
//! record: op u8 | id f64 LE | length u32 LE | payload
//! op: 1 text, 2 binary, 8 close (payload: code u16 BE, then the reason), 9 ping
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::wire::Wire;

pub enum Outbound {
    Text(Bytes),
    Binary(Bytes),
    Close(u16, Bytes),
    Ping,
    /// Not from JS: bytes wait in the wire for the socket to take them.
    Flush,
    /// Not from JS: the server is closing.
    Shutdown,
}

impl Outbound {
    /// What it counts against the send buffer.
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Text(b) | Outbound::Binary(b) | Outbound::Close(_, b) => b.len(),
            Outbound::Ping | Outbound::Flush | Outbound::Shutdown => 0,
        }
    }

    /// It came from JS through `Backlog::queue` (and counts as a record there).
    pub fn from_js(&self) -> bool {
        !matches!(self, Outbound::Flush | Outbound::Shutdown)
    }
}

/// A socket's bytes handed over by JS and not yet written to the network.
pub struct Backlog {
    /// Bytes in the session's queue.
    queued: AtomicUsize,
    /// Records in the session's queue: while any wait, later sends queue too.
    records: AtomicUsize,
    /// JS was told the socket is over `mark` and waits for the drain record.
    over: AtomicBool,
    mark: usize,
    /// The socket, once the session runs.
    pub wire: OnceLock<Arc<Wire>>,
}

impl Backlog {
    /// The session took a record of `bytes` off its queue and wrote it (or
    /// left it waiting in the wire).
    pub fn dequeued(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            });
        self.records.fetch_sub(1, Ordering::AcqRel);
    }

    /// After the session wrote: true when JS should now hear it may send again
    /// (what waits fell to half the mark after being over it).
    pub fn drained(&self) -> bool {
        let wired = self.wire.get().map_or(0, |w| w.pending());
        let left = self.queued.load(Ordering::Acquire) + wired;
        left <= self.mark / 2 && self.over.swap(false, Ordering::AcqRel)
    }

    /// True when `total` bytes waiting just crossed the mark.
    fn crossed(&self, total: usize) -> bool {
        total > self.mark && !self.over.swap(true, Ordering::AcqRel)
    }

    fn queue(&self, bytes: usize) -> bool {
        self.records.fetch_add(1, Ordering::AcqRel);
        let queued = self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let wired = self.wire.get().map_or(0, |w| w.pending());
        self.crossed(queued + wired)
    }

    /// A data frame straight to the socket, if it is up and nothing is queued
    /// before it. None: it must be queued.
    fn write_now(&self, opcode: u8, payload: &[u8]) -> Option<bool> {
        let wire = self.wire.get()?;
        if self.records.load(Ordering::Acquire) > 0 || wire.compresses_off_thread(payload.len()) {
            return None;
        }
        let waiting = wire.send(opcode, payload);
        Some(self.crossed(waiting + self.queued.load(Ordering::Acquire)))
    }
}

struct Outlet {
    tx: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
}

#[derive(Default)]
pub struct Outlets {
    open: Mutex<FxHashMap<u64, Outlet>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const HEAD: usize = 1 + 8 + 4;

impl Outlets {
    /// A socket starts: its queue and backlog, for the session to drain.
    pub fn open(
        &self,
        id: u64,
        mark: usize,
    ) -> (
        mpsc::UnboundedReceiver<Outbound>,
        mpsc::UnboundedSender<Outbound>,
        Arc<Backlog>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let wake = tx.clone();
        let backlog = Arc::new(Backlog {
            queued: AtomicUsize::new(0),
            records: AtomicUsize::new(0),
            over: AtomicBool::new(false),
            mark,
            wire: OnceLock::new(),
        });
        lock(&self.open).insert(
            id,
            Outlet {
                tx,
                backlog: backlog.clone(),
            },
        );
        (rx, wake, backlog)
    }

    pub fn close(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// The server is closing: every open socket hears it.
    pub fn shutdown_all(&self) {
        for outlet in lock(&self.open).values() {
            let _ = outlet.tx.send(Outbound::Shutdown);
        }
    }

    /// Write or queue JS's packed sends; returns the sockets whose queue just
    /// went over their mark (JS holds off until their drain record). Sends to
    /// sockets that are gone are dropped; a truncated record ends the parse.
    /// Only what is queued is copied: data frames written at once are written
    /// from `packed`.
    pub fn send_packed(&self, packed: &[u8]) -> Vec<u64> {
        let mut over = Vec::new();
        let open = lock(&self.open);
        let mut at = 0;
        while let Some(head) = packed.get(at..at + HEAD) {
            let op = head[0];
            let id = f64::from_le_bytes(head[1..9].try_into().unwrap_or_default()) as u64;
            let len = u32::from_le_bytes(head[9..13].try_into().unwrap_or_default()) as usize;
            let start = at + HEAD;
            let Some(payload) = start
                .checked_add(len)
                .and_then(|end| packed.get(start..end))
            else {
                break;
            };
            at = start + len;
            let Some(outlet) = open.get(&id) else {
                continue;
            };
            if let (1 | 2, Some(crossed)) = (op, outlet.backlog.write_now(op, payload)) {
                if crossed {
                    over.push(id);
                }
                continue;
            }
            let out = match op {
                1 => Outbound::Text(Bytes::copy_from_slice(payload)),
                2 => Outbound::Binary(Bytes::copy_from_slice(payload)),
                8 if payload.len() >= 2 => Outbound::Close(
                    u16::from_be_bytes([payload[0], payload[1]]),
                    Bytes::copy_from_slice(&payload[2..]),
                ),
                8 => Outbound::Close(1000, Bytes::new()),
                9 => Outbound::Ping,
                _ => continue,
            };
            let bytes = out.bytes();
            if outlet.tx.send(out).is_ok() && outlet.backlog.queue(bytes) {
                over.push(id);
            }
        }
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(op: u8, id: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![op];
        r.extend_from_slice(&(id as f64).to_le_bytes());
        r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn packed_sends_reach_their_sockets_and_report_the_mark() {
        let outlets = Outlets::default();
        let (mut a, _, _) = outlets.open(1, 4);
        let (mut b, _, backlog_b) = outlets.open(2, 100);
        let mut packed = record(1, 1, b"hello");
        packed.extend(record(2, 2, b"\x00\x01"));
        packed.extend(record(1, 9, b"nobody"));
        packed.extend(record(8, 2, b"\x0f\xa0bye"));
        assert_eq!(outlets.send_packed(&packed), vec![1]);
        assert!(matches!(a.try_recv(), Ok(Outbound::Text(t)) if &t[..] == b"hello"));
        assert!(matches!(b.try_recv(), Ok(Outbound::Binary(t)) if &t[..] == b"\x00\x01"));
        assert!(matches!(b.try_recv(), Ok(Outbound::Close(4000, r)) if &r[..] == b"bye"));
        backlog_b.dequeued(2);
        assert!(!backlog_b.drained());
        // Truncated: the length says more than there is.
        let mut bad = record(1, 2, b"abc");
        bad.truncate(bad.len() - 1);
        assert!(outlets.send_packed(&bad).is_empty());
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn drain_is_reported_once_below_half_the_mark() {
        let outlets = Outlets::default();
        let (_rx, _, backlog) = outlets.open(1, 10);
        assert!(!backlog.queue(8));
        assert!(backlog.queue(8));
        assert!(!backlog.queue(1));
        backlog.dequeued(8);
        assert!(!backlog.drained());
        backlog.dequeued(6);
        assert!(backlog.drained());
        backlog.dequeued(3);
        assert!(!backlog.drained());
    }
}
