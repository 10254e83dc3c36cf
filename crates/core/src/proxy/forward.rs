//! One proxied exchange: the request rewritten for a member, attempts on the
//! members the balancer offers, and the member's response streamed back.
//!
//! A member that cannot be connected to (refused, unreachable, TLS failure,
//! connect timeout) rests and, for idempotent methods whose body no attempt has
//! read, the request goes to another member. So does one whose kept-alive
//! connection the member closed before answering (nothing reached a handler
//! there that a repeat could harm). Everything else ends the request: `504`
//! when the member took too long to answer, `502` otherwise.

use std::error::Error as _;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, SizeHint};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;

use super::balancer::{InFlight, Member, Tried};
use super::body::{started, BodySlot, OutBody, UpstreamBody};
use super::headers::{forward_request, forward_response, strip_hop_by_hop, upgrade_asked};
use super::pool::{Conn, ExchangeError};
use super::upgrade::tunnel;
use super::{ProxyRoute, Upstream};
use crate::body::ResponseBody;
use crate::error_page::{error_response, wants_html};

/// RFC 9110 §9.2.2.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The member's path: the route's, then the request's below the mount point,
/// then the query.
fn member_path(route: &ProxyRoute, prefix: &str, uri: &Uri) -> Option<PathAndQuery> {
    let path = uri.path();
    let rest = if prefix == "/" {
        path
    } else {
        path.get(prefix.len()..).unwrap_or("")
    };
    if prefix == "/" && route.path.is_empty() {
        return uri.path_and_query().cloned();
    }
    let query = uri.query();
    let mut out =
        BytesMut::with_capacity(route.path.len() + rest.len() + 2 + query.map_or(0, str::len));
    out.put_slice(route.path.as_bytes());
    let needs_slash = if rest.is_empty() {
        route.path.is_empty()
    } else {
        !rest.starts_with('/')
    };
    if needs_slash {
        out.put_u8(b'/');
    }
    out.put_slice(rest.as_bytes());
    if let Some(query) = query {
        out.put_u8(b'?');
        out.put_slice(query.as_bytes());
    }
    PathAndQuery::from_maybe_shared(out.freeze()).ok()
}

/// The client's address as a field value: the first line of the connection's
/// peer record, shared with it rather than copied.
fn client_ip(peer: &Bytes) -> HeaderValue {
    let end = peer.iter().position(|&b| b == b'\n').unwrap_or(peer.len());
    // An address in text is always a valid field value.
    HeaderValue::from_maybe_shared(peer.slice(..end))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Why an attempt failed, as far as retrying and resting go.
enum Failure {
    /// Never connected: the member rests; the request may go elsewhere.
    Connect { timed_out: bool },
    /// A kept-alive connection closed before any answer: the request may go elsewhere.
    Stale,
    /// No answer within the upstream's time: the member rests, `504`.
    TimedOut,
    /// The request reached the member: no retry.
    Other,
}

fn classify(error: &ExchangeError) -> Failure {
    let error = match error {
        ExchangeError::Http(error) => error,
        ExchangeError::Closed => return Failure::Stale,
        ExchangeError::TimedOut => return Failure::TimedOut,
    };
    let reset = error
        .source()
        .and_then(|io| io.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        });
    if error.is_incomplete_message() || error.is_canceled() || reset {
        Failure::Stale
    } else {
        Failure::Other
    }
}

/// What one attempt on a member sends: the request as rewritten for members,
/// and the client's body if it has one.
struct Outgoing<'a> {
    parts: &'a http::request::Parts,
    path: &'a PathAndQuery,
    slot: &'a Option<BodySlot>,
    hint: SizeHint,
    /// Whether the request may be sent again after a failed attempt.
    replayable: bool,
}

impl Outgoing<'_> {
    fn request(&self, upstream: &Upstream, member: &Member) -> Request<OutBody> {
        let mut request = Request::new(match self.slot {
            Some(slot) => OutBody::from_slot(slot, self.hint),
            None => OutBody::empty(),
        });
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = Uri::from(self.path.clone());
        *request.headers_mut() = self.parts.headers.clone();
        if !upstream.preserve_host {
            request
                .headers_mut()
                .insert(http::header::HOST, member.host.clone());
        }
        request
    }

    /// No attempt has read the client's body, so another may still send it.
    fn unread(&self) -> bool {
        self.slot.as_ref().is_none_or(|s| !started(s))
    }
}

/// One member's answer by `deadline`: a kept-alive connection if one is idle
/// (and a new one if that turns out to have been closed), or a new connection.
async fn attempt(
    upstream: &Upstream,
    in_flight: &InFlight,
    outgoing: &Outgoing<'_>,
    deadline: Instant,
) -> Result<(Response<Incoming>, Box<Conn>), Failure> {
    let member = &upstream.balancer.members[in_flight.index];
    let mut pooled = upstream.pool.checkout(in_flight.index);
    loop {
        let reused = pooled.is_some();
        let conn = match pooled.take() {
            Some(conn) => conn,
            // Boxed: a new connection's state is most of this future's size, and
            // most requests find an idle one.
            None => {
                let connect = Box::pin(upstream.pool.connect(&member.authority));
                tokio::time::timeout_at(deadline, connect)
                    .await
                    .map_err(|_| Failure::TimedOut)?
                    .map_err(|e| Failure::Connect {
                        timed_out: e.timed_out,
                    })?
            }
        };
        let request = outgoing.request(upstream, member);
        match conn.exchange(request, deadline).await {
            Ok(answer) => return Ok(answer),
            Err(error) => match classify(&error) {
                Failure::Stale if reused && outgoing.replayable && outgoing.unread() => continue,
                failure => return Err(failure),
            },
        }
    }
}

/// A protocol switch goes over a connection of its own, never pooled.
async fn attempt_upgrade(
    upstream: &Upstream,
    in_flight: &InFlight,
    outgoing: &Outgoing<'_>,
) -> Result<Response<Incoming>, Failure> {
    let member = &upstream.balancer.members[in_flight.index];
    let mut send = upstream
        .pool
        .connect_upgradable(&member.authority)
        .await
        .map_err(|e| Failure::Connect {
            timed_out: e.timed_out,
        })?;
    send.send_request(outgoing.request(upstream, member))
        .await
        .map_err(|e| classify(&ExchangeError::Http(e)))
}

/// Error pages are HTML when the client asks for it, else JSON: decided only
/// when one is sent, from the client's `Accept`. The request is made ready for
/// the members here (path, headers); the future only
/// holds what the exchange needs.
pub fn forward(
    route: &ProxyRoute,
    prefix: &str,
    peer: &Bytes,
    req: Request<crate::incoming::Incoming>,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    let (mut parts, body) = req.into_parts();
    let path = member_path(route, prefix, &parts.uri);
    // Only HTTP/1.1 switches protocols (HTTP/2 has no Upgrade).
    let upgrade = if parts.version == Version::HTTP_11 {
        upgrade_asked(&parts.headers)
    } else {
        None
    };
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<OnUpgrade>());
    strip_hop_by_hop(&mut parts.headers, upgrade);
    forward_request(&mut parts.headers, parts.version, client_ip(peer));
    let upstream = route.upstream.clone();
    async move {
        let Some(path) = path else {
            return error_response(StatusCode::BAD_REQUEST, wants_html(&parts.headers));
        };
        to_members(&upstream, parts, body, path, client_upgrade).await
    }
}

/// Attempts on the members the balancer offers, and the answer of the first
/// that takes the request.
async fn to_members(
    upstream: &Upstream,
    parts: http::request::Parts,
    body: crate::incoming::Incoming,
    path: PathAndQuery,
    client_upgrade: Option<OnUpgrade>,
) -> Response<ResponseBody> {
    let html = || wants_html(&parts.headers);
    let hint = body.size_hint();
    let slot: Option<BodySlot> = (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Some(body))));
    let outgoing = Outgoing {
        parts: &parts,
        path: &path,
        slot: &slot,
        hint,
        replayable: idempotent(&parts.method),
    };

    let mut tried = Tried::default();
    let mut failed = StatusCode::BAD_GATEWAY;
    loop {
        let Some(in_flight) = upstream.balancer.pick(tried) else {
            return error_response(failed, html());
        };
        tried.add(in_flight.index);
        let deadline = Instant::now() + upstream.timeout;
        let answer = if client_upgrade.is_some() {
            // Boxed like a new connection: rare, and most of this future's size.
            let sent = Box::pin(attempt_upgrade(upstream, &in_flight, &outgoing));
            tokio::time::timeout_at(deadline, sent)
                .await
                .unwrap_or(Err(Failure::TimedOut))
                .map(|response| (response, None))
        } else {
            // Timed by the connection's own timer (`Conn::exchange`).
            attempt(upstream, &in_flight, &outgoing, deadline)
                .await
                .map(|(response, conn)| (response, Some(conn)))
        };
        let (mut response, conn) = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                let again = outgoing.replayable && outgoing.unread();
                match failure {
                    Failure::Connect { timed_out } => {
                        upstream.balancer.rest(in_flight.index);
                        failed = if timed_out {
                            StatusCode::GATEWAY_TIMEOUT
                        } else {
                            StatusCode::BAD_GATEWAY
                        };
                        if again {
                            continue;
                        }
                    }
                    Failure::Stale if again => continue,
                    Failure::TimedOut => {
                        upstream.balancer.rest(in_flight.index);
                        failed = StatusCode::GATEWAY_TIMEOUT;
                    }
                    _ => failed = StatusCode::BAD_GATEWAY,
                }
                return error_response(failed, html());
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                // Not asked for: nothing can be relayed after it.
                return error_response(StatusCode::BAD_GATEWAY, html());
            };
            let accepted = upgrade_asked(response.headers());
            let member_upgrade = hyper::upgrade::on(&mut response);
            let (mut head, _) = response.into_parts();
            strip_hop_by_hop(&mut head.headers, accepted);
            forward_response(&mut head.headers, head.version);
            tunnel(client_upgrade, member_upgrade, in_flight);
            return Response::from_parts(head, ResponseBody::empty());
        }
        let (mut head, body) = response.into_parts();
        strip_hop_by_hop(&mut head.headers, None);
        forward_response(&mut head.headers, head.version);
        let body = UpstreamBody::new(
            body,
            conn,
            upstream.pool.clone(),
            in_flight,
            upstream.timeout,
        );
        return Response::from_parts(head, ResponseBody::Proxied(Box::new(body)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;
    use crate::proxy::Upstream;

    fn route(path: &str) -> ProxyRoute {
        let config = UpstreamConfig::new("@t", false, vec!["127.0.0.1:1".into()]);
        ProxyRoute {
            upstream: Arc::new(Upstream::new(&config).unwrap()),
            path: path.into(),
        }
    }

    fn mapped(route: &ProxyRoute, prefix: &str, uri: &str) -> String {
        member_path(route, prefix, &uri.parse().unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn paths_map_below_the_mount_point() {
        let api = route("/api");
        assert_eq!(mapped(&api, "/external", "/external/x?q=1"), "/api/x?q=1");
        assert_eq!(mapped(&api, "/external", "/external"), "/api");
        assert_eq!(mapped(&api, "/external", "/external/"), "/api/");
        assert_eq!(mapped(&api, "/", "/a/b"), "/api/a/b");
        let bare = route("");
        assert_eq!(mapped(&bare, "/users", "/users/3"), "/3");
        assert_eq!(mapped(&bare, "/users", "/users?x"), "/?x");
        assert_eq!(mapped(&bare, "/", "/p?q"), "/p?q");
    }

    #[test]
    fn peers_give_their_address() {
        assert_eq!(client_ip(&Bytes::from_static(b"::1\n5000\n")), "::1");
    }
}
