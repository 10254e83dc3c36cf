//! Access records: one per answered request, whatever answered it (JS, static
//! files, error pages). Built here when the response body ends (or is dropped),
//! handed to JS in batches as record 'L', and formatted there.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};

use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::config::AccessLogConfig;
use crate::record;

pub static GTXN_HEADER: HeaderName = HeaderName::from_static("x-gtxn-id");

enum LogOff {
    Prefix(String),
    Suffix(String),
}

pub struct AccessLog {
    off: Vec<LogOff>,
    worker: String,
    /// Random per process: global transaction ids are unique across workers and machines.
    origin: u64,
    counter: AtomicU64,
    /// Open connections, for the records.
    pub connections: Arc<AtomicUsize>,
    bridge: Arc<Bridge>,
}

/// The request fields a record shows: clones of shared bytes, no map.
struct LoggedFields {
    host: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    content_length: Option<HeaderValue>,
    forwarded_for: Option<HeaderValue>,
}

static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl LoggedFields {
    fn of(headers: &http::HeaderMap) -> LoggedFields {
        let get = |name: &HeaderName| headers.get(name).cloned();
        LoggedFields {
            host: get(&header::HOST),
            authorization: get(&header::AUTHORIZATION),
            referer: get(&header::REFERER),
            user_agent: get(&header::USER_AGENT),
            content_length: get(&header::CONTENT_LENGTH),
            forwarded_for: get(&FORWARDED_FOR),
        }
    }
}

/// A field's bytes, empty when absent.
fn bytes_of(value: &Option<HeaderValue>) -> &[u8] {
    value.as_ref().map_or(b"", HeaderValue::as_bytes)
}

/// What a record needs from the request, kept until the response body ends.
pub struct Entry {
    log: Arc<AccessLog>,
    wall_ms: u64,
    started: Instant,
    head_at: Option<Instant>,
    peer: IpAddr,
    method: Method,
    uri: Uri,
    version: Version,
    logged: LoggedFields,
    gtxn: HeaderValue,
    ltxn: u64,
    status: u16,
    sent: u64,
    /// A request the server pushed: logged with the method `PUSH`.
    pushed: bool,
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
            origin: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
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
    /// transaction id is the client's `X-Gtxn-Id`, or a new one.
    /// Boxed: it waits in every request's future, which is moved whole.
    pub fn begin<B>(self: &Arc<Self>, req: &Request<B>, peer: IpAddr) -> Option<Box<Entry>> {
        if self.skips(req.uri().path()) {
            return None;
        }
        let ltxn = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let gtxn = match req.headers().get(&GTXN_HEADER) {
            Some(given) if !given.is_empty() && given.len() <= 128 => given.clone(),
            _ => {
                // Into the value's own bytes: one allocation.
                let id = Bytes::from(format!("{:016x}-{ltxn:x}", self.origin));
                HeaderValue::from_maybe_shared(id).unwrap_or(HeaderValue::from_static("-"))
            }
        };
        let logged = LoggedFields::of(req.headers());
        Some(Box::new(Entry {
            log: self.clone(),
            wall_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            started: Instant::now(),
            head_at: None,
            peer,
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            logged,
            gtxn,
            ltxn,
            status: 0,
            sent: 0,
            pushed: false,
        }))
    }
}

impl Entry {
    pub fn gtxn(&self) -> &HeaderValue {
        &self.gtxn
    }

    /// The request is one the server pushed (HTTP/2).
    pub fn pushed(mut self: Box<Self>) -> Box<Entry> {
        self.pushed = true;
        self
    }

    /// The response head is ready: handling time ends, transfer time starts.
    pub fn answered(&mut self, status: u16) {
        self.status = status;
        self.head_at = Some(Instant::now());
    }

    fn emit(self) {
        let done = Instant::now();
        let head_at = self.head_at.unwrap_or(done);
        let handling = head_at.duration_since(self.started).as_millis() as u64;
        let transfer = done.duration_since(head_at).as_millis() as u64;
        let active = self.log.connections.load(Ordering::Relaxed) as u64;
        let logged = &self.logged;
        let auth = logged.authorization.as_ref().map(HeaderValue::as_bytes);
        let user = auth.and_then(basic_user).unwrap_or_default();
        let bearer = auth
            .and_then(|a| strip_scheme(a, b"bearer "))
            .unwrap_or_default();
        let xff = first_hop(bytes_of(&logged.forwarded_for));
        let fields = AccessFields {
            wall_ms: self.wall_ms,
            peer: self.peer,
            host: bytes_of(&logged.host),
            method: if self.pushed {
                b"PUSH"
            } else {
                self.method.as_str().as_bytes()
            },
            uri: self
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .as_bytes(),
            version: record::version(self.version),
            request_bytes: bytes_of(&logged.content_length),
            status: self.status,
            response_bytes: self.sent,
            gtxn: self.gtxn.as_bytes(),
            ltxn: self.ltxn,
            user: &user,
            bearer,
            referer: bytes_of(&logged.referer),
            user_agent: bytes_of(&logged.user_agent),
            forwarded_for: xff,
            worker: self.log.worker.as_bytes(),
            active,
            handling_ms: handling,
            transfer_ms: transfer,
        };
        self.log
            .bridge
            .emit_lazily(|batch| record::access(batch, &fields));
    }
}

/// One record's fields, in the order of the request log line.
pub struct AccessFields<'a> {
    pub wall_ms: u64,
    pub peer: IpAddr,
    pub host: &'a [u8],
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub version: &'a [u8],
    pub request_bytes: &'a [u8],
    pub status: u16,
    pub response_bytes: u64,
    pub gtxn: &'a [u8],
    pub ltxn: u64,
    pub user: &'a [u8],
    pub bearer: &'a [u8],
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
    pub forwarded_for: &'a [u8],
    pub worker: &'a [u8],
    pub active: u64,
    pub handling_ms: u64,
    pub transfer_ms: u64,
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
/// the transfer ends.
pub fn logged(
    mut response: Response<ResponseBody>,
    entry: Option<Box<Entry>>,
) -> Response<LoggedBody> {
    let entry = entry.map(|mut entry| {
        entry.answered(response.status().as_u16());
        response
            .headers_mut()
            .insert(GTXN_HEADER.clone(), entry.gtxn().clone());
        entry
    });
    response.map(|body| LoggedBody::new(body, entry))
}

/// The response body, counting what is sent; the record goes out when it ends
/// or is dropped (a client that went away mid-transfer).
pub struct LoggedBody {
    inner: ResponseBody,
    entry: Option<Box<Entry>>,
}

impl LoggedBody {
    pub fn new(inner: ResponseBody, entry: Option<Box<Entry>>) -> LoggedBody {
        LoggedBody { inner, entry }
    }
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
            Poll::Pending => {}
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
}
