//! One request: route it, answer it, stamp the headers every response carries.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::access_log::{AccessLog, Entry};
use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::config::Config;
use crate::dispatch;
use crate::error_page::{error_response, wants_html};
use crate::incoming::Incoming;
use crate::router::{Group, Router};
use crate::static_files::Served;

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
    pub fn log_entry<B>(&self, req: &Request<B>, ip: IpAddr) -> Option<Entry> {
        self.access_log.as_ref()?.begin(req, ip)
    }
}

pub async fn handle(
    shared: &Shared,
    peer: &Bytes,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let mut response = match shared.router.route(req.uri().path()) {
        Some(group) => to_group(shared, peer, group, req).await,
        None => error_response(StatusCode::NOT_FOUND, wants_html(req.headers())),
    };
    response
        .headers_mut()
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static(crate::SERVER_NAME));
    response
}

async fn to_group(
    shared: &Shared,
    peer: &Bytes,
    group: &Group,
    mut req: Request<Incoming>,
) -> Response<ResponseBody> {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    if readable && !group.sites.is_empty() {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let rel = if group.prefix == "/" {
            path
        } else {
            &path[group.prefix.len()..]
        };
        let max_age = shared.router.max_age(path);
        for site in &group.sites {
            if let Served::Response(response) = site.serve(&parts, rel, max_age).await {
                return response;
            }
        }
        req = Request::from_parts(parts, body);
    }
    let html = wants_html(req.headers());
    match (group.app, &group.proxy) {
        (Some(handler), _) => dispatch::to_js(shared, peer, handler, req, html).await,
        (None, Some(route)) => crate::proxy::forward(route, &group.prefix, peer, req, html).await,
        // Only directories here, and none had the file.
        (None, None) if readable => error_response(StatusCode::NOT_FOUND, html),
        (None, None) => {
            let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, html);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}
