//! The files of `WWW` (one directory, read once at start) answered from memory
//! with the headers a static file gets (ETag, Last-Modified, Accept-Ranges,
//! Content-Type; hyper adds Date and Content-Length): no file system, no
//! routing beyond a map lookup, no conditionals or ranges: only hyper's work.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT_RANGES, CONTENT_TYPE, ETAG, LAST_MODIFIED, SERVER};
use hyper::{Request, Response, StatusCode};

static FILES: OnceLock<HashMap<String, Bytes>> = OnceLock::new();

fn load() -> HashMap<String, Bytes> {
    let dir = std::env::var("WWW").expect("WWW: the directory to serve");
    std::fs::read_dir(&dir)
        .expect("a readable WWW")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| {
            let name = format!("/{}", entry.file_name().to_string_lossy());
            let bytes = std::fs::read(entry.path()).expect("a readable file");
            (name, Bytes::from(bytes))
        })
        .collect()
}

fn main() {
    FILES.get_or_init(load);
    hyper_floor::serve(|req: Request<hyper::body::Incoming>| async move {
        let Some(body) = FILES.get().and_then(|files| files.get(req.uri().path())) else {
            let mut missing = Response::new(Full::new(Bytes::new()));
            *missing.status_mut() = StatusCode::NOT_FOUND;
            return Ok::<_, hyper::Error>(missing);
        };
        let mut response = Response::new(Full::new(body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            ETAG,
            HeaderValue::from_static("\"400-18ed7dd90914ec5f-528193\""),
        );
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Wed, 02 Dec 2026 16:49:57 GMT"),
        );
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(SERVER, HeaderValue::from_static("hyper-floor"));
        Ok(response)
    });
}
