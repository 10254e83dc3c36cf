//! One request: route it, answer it, stamp the headers every response carries.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::bridge::Bridge;
use crate::config::{Config, MountTarget};
use crate::dispatch;
use crate::error_page::{error_response, wants_html};
use crate::router::Router;

/// What every connection of one engine shares.
pub struct Shared {
    pub config: Config,
    pub http1: hyper::server::conn::http1::Builder,
    pub router: Router,
    pub bridge: Arc<Bridge>,
}

pub async fn handle(
    shared: &Shared,
    peer: &Bytes,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let mut response = match shared.router.route(req.uri().path()) {
        Some(MountTarget::Js(handler)) => dispatch::to_js(shared, peer, *handler, req).await,
        None => error_response(StatusCode::NOT_FOUND, wants_html(req.headers())),
    };
    response
        .headers_mut()
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static(crate::SERVER_NAME));
    response
}
