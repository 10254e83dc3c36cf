//! Access records: one per answered request, whatever answered it (JS, static
//! files, error pages). Begun when the request arrives, completed when the
//! response body ends (or is dropped), handed to JS in batches and formatted
//! there.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};

use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::config::AccessLogConfig;
use crate::connection::Busy;
use crate::record;

pub static GTXN_HEADER: HeaderName = HeaderName::from_static("x-gtxn-id");
static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

enum LogOff {
    Prefix(String),
    Suffix(String),
}

pub struct AccessLog {
    off: Vec<LogOff>,
    worker: String,
    /// Random per process, in hex with the '-' after it: global transaction ids
    /// (this, then the local one in hex) are unique across workers and machines.
    origin: Bytes,
    counter: AtomicU64,
    /// Open connections, for the records.
    pub connections: Arc<AtomicUsize>,
    bridge: Arc<Bridge>,
}

/// Room for a record's request fields, most of the time.
const RECORD_CAPACITY: usize = 384;

/// The request headers a record shows: the first value of each.
#[derive(Default)]
struct Shown<'a> {
    host: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    forwarded_for: Option<&'a [u8]>,
    gtxn: Option<&'a [u8]>,
}

impl<'a> Shown<'a> {
    /// One pass over the headers (a request has few, and comparing names is
    /// cheaper than hashing them for seven lookups).
    fn of(headers: &'a http::HeaderMap) -> Shown<'a> {
        let mut shown = Shown::default();
        for (name, value) in headers {
            let slot = if name == header::HOST {
                &mut shown.host
            } else if name == header::USER_AGENT {
                &mut shown.user_agent
            } else if name == header::REFERER {
                &mut shown.referer
            } else if name == header::CONTENT_LENGTH {
                &mut shown.content_length
            } else if name == header::AUTHORIZATION {
                &mut shown.authorization
            } else if name == FORWARDED_FOR {
                &mut shown.forwarded_for
            } else if name == GTXN_HEADER {
                &mut shown.gtxn
            } else {
                continue;
            };
            slot.get_or_insert(value.as_bytes());
        }
        shown
    }
}

/// What a record needs, kept until the response body ends. The request's
/// fields are copied into the record at once: holding its header values would
/// keep the connection's read buffer from being reused.
pub struct Entry {
    log: Arc<AccessLog>,
    started: Instant,
    head_at: Option<Instant>,
    /// The record's request fields (`record::access_request`).
    record: Vec<u8>,
    /// For the response's header, which takes it (the record has its own copy).
    gtxn: Option<HeaderValue>,
    status: u16,
    sent: u64,
    /// The body made hyper wait: its end is read from the clock, not taken to
    /// be the head's moment (a body at hand ends as the head goes out).
    waited: bool,
}

impl AccessLog {
    pub fn new(config: &AccessLogConfig, bridge: Arc<Bridge>) -> AccessLog {
        let off = config
            .off
            .iter()
            .map(|p| match p.strip_prefix('*') {
                Some(suffix) => LogOff::Suffix(suffix.to_owned()),
                None => LogOff::Prefix(p.clone()),
            })
            .collect();
        AccessLog {
            off,
            worker: config.worker.clone(),
            origin: Bytes::from(format!(
                "{:016x}-",
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish()
            )),
            counter: AtomicU64::new(0),
            connections: Arc::new(AtomicUsize::new(0)),
            bridge,
        }
    }

    /// `logOff` patterns; `/` itself is always logged.
    pub fn skips(&self, path: &str) -> bool {
        path != "/"
            && self.off.iter().any(|p| match p {
                LogOff::Prefix(prefix) => path.starts_with(prefix.as_str()),
                LogOff::Suffix(suffix) => path.ends_with(suffix.as_str()),
            })
    }

    /// Start a record for `req`, or None when its path is logged off. The global
    /// transaction id is the client's `X-Gtxn-Id`, or a new one. `peer` is the
    /// connection's "address\nport\n"; `pushed`: a request the server pushed
    /// (HTTP/2), logged with the method `PUSH`.
    /// Boxed: it waits in every request's future, which is moved whole.
    pub fn begin<B>(
        self: &Arc<Self>,
        req: &Request<B>,
        peer: &Bytes,
        pushed: bool,
    ) -> Option<Box<Entry>> {
        if self.skips(req.uri().path()) {
            return None;
        }
        let shown = Shown::of(req.headers());
        let ltxn = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let gtxn = match shown.gtxn {
            // A copy: the client's own value is in the connection's read buffer.
            Some(given) if !given.is_empty() && given.len() <= 128 => {
                HeaderValue::from_bytes(given).unwrap_or(HeaderValue::from_static("-"))
            }
            _ => {
                let mut digits = [0; 16];
                let hex = hex(ltxn, &mut digits);
                // Exactly its size: the value's Bytes take the Vec as it is,
                // one allocation (a Vec with room left needs a second).
                let mut id = Vec::with_capacity(self.origin.len() + hex.len());
                id.extend_from_slice(&self.origin);
                id.extend_from_slice(hex);
                // SAFETY: hex digits and '-' only (`origin` is made the same
                // way), all visible ASCII, as a header value must be.
                unsafe { HeaderValue::from_maybe_shared_unchecked(Bytes::from(id)) }
            }
        };
        let user = shown.authorization.and_then(basic_user).unwrap_or_default();
        let started = Instant::now();
        let address_end = peer.iter().position(|&b| b == b'\n');
        let mut record = Vec::with_capacity(RECORD_CAPACITY);
        record::access_request(
            &mut record,
            &RequestFields {
                wall_ms: wall_ms(started),
                peer: &peer[..address_end.unwrap_or(peer.len())],
                host: shown.host.unwrap_or_default(),
                method: if pushed {
                    b"PUSH"
                } else {
                    req.method().as_str().as_bytes()
                },
                uri: req
                    .uri()
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .as_bytes(),
                version: record::version(req.version()),
                request_bytes: shown.content_length.unwrap_or_default(),
                gtxn: gtxn.as_bytes(),
                ltxn,
                user: &user,
                bearer: shown
                    .authorization
                    .and_then(|a| strip_scheme(a, b"bearer "))
                    .unwrap_or_default(),
                referer: shown.referer.unwrap_or_default(),
                user_agent: shown.user_agent.unwrap_or_default(),
                forwarded_for: first_hop(shown.forwarded_for.unwrap_or_default()),
                worker: self.worker.as_bytes(),
            },
        );
        Some(Box::new(Entry {
            log: self.clone(),
            started,
            head_at: None,
            record,
            gtxn: Some(gtxn),
            status: 0,
            sent: 0,
            waited: false,
        }))
    }
}

impl Entry {
    /// The response head is ready: handling time ends, transfer time starts.
    pub fn answered(&mut self, status: u16) {
        self.status = status;
        self.head_at = Some(Instant::now());
    }

    fn emit(&self) {
        let done = match self.head_at {
            Some(head_at) if !self.waited => head_at,
            _ => Instant::now(),
        };
        let head_at = self.head_at.unwrap_or(done);
        let outcome = OutcomeFields {
            status: self.status,
            response_bytes: self.sent,
            active: self.log.connections.load(Ordering::Relaxed) as u64,
            handling_ms: head_at.duration_since(self.started).as_millis() as u64,
            transfer_ms: done.duration_since(head_at).as_millis() as u64,
        };
        self.log
            .bridge
            .emit_lazily(|batch| record::access(batch, &self.record, &outcome));
    }
}

/// A record's fields known when the request arrives, in their order.
pub struct RequestFields<'a> {
    pub wall_ms: u64,
    /// The client's address.
    pub peer: &'a [u8],
    pub host: &'a [u8],
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub version: &'a [u8],
    pub request_bytes: &'a [u8],
    pub gtxn: &'a [u8],
    pub ltxn: u64,
    pub user: &'a [u8],
    pub bearer: &'a [u8],
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
    pub forwarded_for: &'a [u8],
    pub worker: &'a [u8],
}

/// A record's fields known when the response has ended, in their order.
pub struct OutcomeFields {
    pub status: u16,
    pub response_bytes: u64,
    pub active: u64,
    pub handling_ms: u64,
    pub transfer_ms: u64,
}

/// `n` in lower-case hex, without leading zeros, in `digits`.
fn hex(n: u64, digits: &mut [u8; 16]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let count = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, digit) in digits[..count].iter_mut().rev().enumerate() {
        *digit = HEX[((n >> (4 * i)) & 0xf) as usize];
    }
    &digits[..count]
}

thread_local! {
    /// The wall clock at a moment of this thread's monotonic clock, taken again
    /// every second: a request's start in ms since the epoch without a second
    /// clock read per request.
    static WALL_CLOCK: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

fn wall_ms(at: Instant) -> u64 {
    WALL_CLOCK.with(|clock| {
        if let Some((base, base_ms)) = clock.get() {
            let since = at.saturating_duration_since(base);
            if since < Duration::from_secs(1) {
                return base_ms + since.as_millis() as u64;
            }
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        clock.set(Some((at, now_ms)));
        now_ms
    })
}

fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    (value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme))
        .then(|| value[scheme.len()..].trim_ascii())
}

/// The user name of `Authorization: Basic`.
fn basic_user(value: &[u8]) -> Option<Vec<u8>> {
    let encoded = strip_scheme(value, b"basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let end = decoded
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(decoded.len());
    // Quotes and line breaks would break the log line's fields.
    Some(
        decoded[..end]
            .iter()
            .copied()
            .filter(|&b| b != b'"' && b != b'\n' && b != b'\r')
            .collect(),
    )
}

/// The client as the first proxy saw it.
fn first_hop(value: &[u8]) -> &[u8] {
    crate::header_list::elements(value).next().unwrap_or(b"")
}

/// Stamp the transaction id and hand the record to the body, which emits it when
/// the transfer ends (every response comes here through `service::finish`).
/// `busy`: an HTTP/1.1 connection's mark, held until the response ends.
pub(crate) fn logged(
    mut response: Response<ResponseBody>,
    entry: Option<Box<Entry>>,
    busy: Option<Busy>,
) -> Response<LoggedBody> {
    let entry = entry.map(|mut entry| {
        entry.answered(response.status().as_u16());
        // Moved, not cloned: a clone of an id made here would allocate to share it.
        if let Some(gtxn) = entry.gtxn.take() {
            response.headers_mut().insert(GTXN_HEADER.clone(), gtxn);
        }
        entry
    });
    response.map(|body| LoggedBody {
        inner: body,
        entry,
        _busy: busy,
    })
}

/// The response body, counting what is sent; the record goes out when it ends
/// or is dropped (a client that went away mid-transfer), and the connection is
/// busy until then.
pub struct LoggedBody {
    inner: ResponseBody,
    entry: Option<Box<Entry>>,
    _busy: Option<Busy>,
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = <ResponseBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(entry), Some(data)) = (self.entry.as_mut(), frame.data_ref()) {
                    entry.sent += data.len() as u64;
                }
            }
            Poll::Ready(_) => {
                if let Some(entry) = self.entry.take() {
                    entry.emit();
                }
            }
            Poll::Pending => {
                if let Some(entry) = self.entry.as_mut() {
                    entry.waited = true;
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_fields() {
        assert_eq!(
            basic_user(b"Basic dXNlcjpwYXNz").as_deref(),
            Some(&b"user"[..])
        );
        assert_eq!(basic_user(b"Bearer abc"), None);
        assert_eq!(
            strip_scheme(b"Bearer  tok.en ", b"bearer "),
            Some(&b"tok.en"[..])
        );
        assert_eq!(first_hop(b"203.0.113.7, 10.0.0.1"), b"203.0.113.7");
    }

    #[test]
    fn log_off_patterns() {
        let log = AccessLog::new(
            &AccessLogConfig {
                off: vec!["/static/".into(), "*.css".into(), "/".into()],
                worker: "W0".into(),
            },
            Bridge::new(8),
        );
        assert!(log.skips("/static/a.js"));
        assert!(log.skips("/x/site.css"));
        assert!(log.skips("/api"));
        assert!(!log.skips("/"), "the root is always logged");
    }

    #[test]
    fn hex_without_leading_zeros() {
        for (n, hex) in [
            (0, "0"),
            (1, "1"),
            (0xabc, "abc"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            assert_eq!(super::hex(n, &mut [0; 16]), hex.as_bytes());
        }
    }

    #[test]
    fn wall_clock_follows_the_monotonic_one() {
        let now = Instant::now();
        let wall = wall_ms(now);
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(system.abs_diff(wall) < 1000, "{system} vs {wall}");
        assert_eq!(wall_ms(now + Duration::from_millis(250)), wall + 250);
    }
}
