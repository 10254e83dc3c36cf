//! One request: route it, answer it, stamp the headers every response carries.
//!
//! Routing and the hand-over to JS happen when the request arrives, outside any
//! future: what is left to wait for (JS's reply) is a small future, because hyper
//! and the HTTP/2 tasks move each request's future whole. Exchanges with a large
//! state (static files, the proxy, bodies read before dispatch) are boxed.

use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::Either;
use http::request::Parts;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::access_log::{logged, AccessLog, Entry, LoggedBody};
use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::config::Config;
use crate::connection::Busy;
use crate::dispatch;
use crate::error_page::{error_response, wants_html};
use crate::incoming::Incoming;
use crate::router::{Group, Router};
use crate::static_files::{Later, Served, Step};

/// What every connection of one engine shares.
pub struct Shared {
    pub config: Config,
    pub http1: hyper::server::conn::http1::Builder,
    pub h2: h2::server::Builder,
    pub router: Router,
    pub bridge: Arc<Bridge>,
    pub access_log: Option<Arc<AccessLog>>,
}

impl Shared {
    /// The request's access record, when there is a request log and its path is logged.
    /// `peer` is the connection's "address\nport\n".
    /// `pushed`: a request the server pushed (HTTP/2).
    pub fn log_entry<B>(&self, req: &Request<B>, peer: &Bytes, pushed: bool) -> Option<Box<Entry>> {
        self.access_log.as_ref()?.begin(req, peer, pushed)
    }
}

/// A response still to come from an exchange with a large state.
pub type Boxed = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// Route `req` and start answering it; the future completes with the response.
pub fn handle(
    shared: &Arc<Shared>,
    peer: &Bytes,
    req: Request<Incoming>,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    match shared.router.route(req.uri().path()) {
        Some(group) => Either::Left(to_group(shared, peer, group, req)),
        None => Either::Right(ready(error_response(
            StatusCode::NOT_FOUND,
            wants_html(req.headers()),
        ))),
    }
}

/// The answer as it goes out: the headers every response carries, and its
/// access record (`entry`) handed to the body. `busy`: an HTTP/1.1
/// connection's mark, held until the response ends.
pub fn finish(
    mut response: Response<ResponseBody>,
    entry: Option<Box<Entry>>,
    busy: Option<Busy>,
) -> Response<LoggedBody> {
    // Here rather than in a map over `handle`'s future: no move of the response through one more layer.
    response
        .headers_mut()
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static(crate::SERVER_NAME));
    logged(response, entry, busy)
}

fn to_group(
    shared: &Arc<Shared>,
    peer: &Bytes,
    group: &Arc<Group>,
    req: Request<Incoming>,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    if !readable || group.sites.is_empty() {
        return Either::Left(to_app(shared, peer, group, req, readable));
    }
    // The directories in order, each answering at once when it can (a file held
    // in memory): no future is made for those requests.
    let (parts, body) = req.into_parts();
    let (first, later) = match sites_now(shared, group, &parts, 0) {
        SitesNow::Answered(response) => return Either::Right(Either::Left(ready(response))),
        SitesNow::Missed => {
            let req = Request::from_parts(parts, body);
            return Either::Left(to_app(shared, peer, group, req, readable));
        }
        SitesNow::Waiting(first, later) => (first, later),
    };
    let (shared, peer, group) = (shared.clone(), peer.clone(), group.clone());
    let boxed: Boxed = Box::pin(async move {
        match from_sites(&shared, &group, parts, body, first, later).await {
            Ok(response) => response,
            Err(req) => to_app(&shared, &peer, &group, req, readable).await,
        }
    });
    Either::Right(Either::Right(boxed))
}

/// The group's directories from one on, as far as they go without I/O.
enum SitesNow {
    Answered(Response<ResponseBody>),
    /// This directory's answer waits for I/O.
    Waiting(usize, Later),
    /// None has the file.
    Missed,
}

/// The request path below the mount point, and its Cache-Control value.
fn site_path<'a>(
    shared: &'a Shared,
    group: &Group,
    parts: &'a Parts,
) -> (&'a str, Option<&'a HeaderValue>) {
    let path = parts.uri.path();
    let rel = if group.prefix == "/" {
        path
    } else {
        &path[group.prefix.len()..]
    };
    (rel, shared.router.max_age(path))
}

fn sites_now(shared: &Shared, group: &Group, parts: &Parts, from: usize) -> SitesNow {
    let (rel, max_age) = site_path(shared, group, parts);
    for (i, site) in group.sites.iter().enumerate().skip(from) {
        match site.serve_now(parts, rel, max_age) {
            Step::Done(Served::Response(response)) => return SitesNow::Answered(response),
            Step::Done(Served::Miss) => {}
            Step::Later(later) => return SitesNow::Waiting(i, later),
        }
    }
    SitesNow::Missed
}

/// The rest of the group's directories, from the one whose answer waits for
/// `later`; the request back when none has the file.
async fn from_sites(
    shared: &Shared,
    group: &Group,
    parts: Parts,
    body: Incoming,
    mut at: usize,
    mut later: Later,
) -> Result<Response<ResponseBody>, Request<Incoming>> {
    let (rel, max_age) = site_path(shared, group, &parts);
    loop {
        if let Served::Response(response) = group.sites[at]
            .serve_later(later, &parts, rel, max_age)
            .await
        {
            return Ok(response);
        }
        (at, later) = match sites_now(shared, group, &parts, at + 1) {
            SitesNow::Answered(response) => return Ok(response),
            SitesNow::Missed => return Err(Request::from_parts(parts, body)),
            SitesNow::Waiting(at, later) => (at, later),
        };
    }
}

/// What the group serves past its directories: its app, its upstream, or an error.
fn to_app(
    shared: &Arc<Shared>,
    peer: &Bytes,
    group: &Arc<Group>,
    req: Request<Incoming>,
    readable: bool,
) -> impl Future<Output = Response<ResponseBody>> + Send + 'static {
    let done = |response| Either::Right(Either::Left(ready(response)));
    match (group.app, &group.proxy) {
        (Some(handler), _) => {
            let html = wants_html(req.headers());
            Either::Left(dispatch::to_js(shared, peer, handler, req, html))
        }
        (None, Some(route)) => {
            let boxed: Boxed = Box::pin(crate::proxy::forward(route, &group.prefix, peer, req));
            Either::Right(Either::Right(boxed))
        }
        // Only directories here, and none had the file.
        (None, None) if readable => done(error_response(
            StatusCode::NOT_FOUND,
            wants_html(req.headers()),
        )),
        (None, None) => {
            let mut response =
                error_response(StatusCode::METHOD_NOT_ALLOWED, wants_html(req.headers()));
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            done(response)
        }
    }
}
