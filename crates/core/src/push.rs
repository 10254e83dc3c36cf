//! HTTP/2 server push: the paths a handler asks for, on their way to its stream,
//! and the requests promised for them.

use http::uri::Authority;
use http::{header, request, HeaderName, HeaderValue, Method, Request, Uri};
use tokio::sync::mpsc;

/// Where `res.push(path)` goes: the stream task that answers the request.
#[derive(Clone)]
pub struct PushSender(mpsc::UnboundedSender<String>);

impl PushSender {
    pub fn send(&self, path: String) {
        // The stream is gone: nothing to push on.
        let _ = self.0.send(path);
    }
}

pub fn channel() -> (PushSender, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (PushSender(tx), rx)
}

/// Promises one response may make; more are dropped (each is a stream the client
/// has to take).
const MAX_PUSHES: usize = 32;

/// What the pushed request copies from the one it goes with (SPEC.md).
const COPIED: [HeaderName; 4] = [
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::COOKIE,
    header::USER_AGENT,
];

/// What promised requests take from the request they go with, kept before that
/// one goes to its handler (clones of shared bytes: nothing is allocated unless a
/// push is made).
pub struct PushBase {
    authority: Option<Authority>,
    copied: [Option<HeaderValue>; 4],
}

impl PushBase {
    pub fn of(original: &request::Parts) -> PushBase {
        let authority = original.uri.authority().cloned().or_else(|| {
            let host = original.headers.get(header::HOST)?;
            Authority::try_from(host.as_bytes()).ok()
        });
        // Cookies arrive joined into one field (h2_connection::join_cookies).
        let copied = COPIED.map(|name| original.headers.get(name).cloned());
        PushBase { authority, copied }
    }

    fn request(&self, path: &str) -> Option<Request<()>> {
        if !path.starts_with('/') || path.starts_with("//") {
            return None;
        }
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.authority.clone()?)
            .path_and_query(path)
            .build()
            .ok()?;
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(())
            .ok()?;
        for (name, value) in COPIED.into_iter().zip(&self.copied) {
            if let Some(value) = value {
                request.headers_mut().insert(name, value.clone());
            }
        }
        Some(request)
    }
}

/// The paths one response has pushed: each once.
#[derive(Default)]
pub struct Pushed(Vec<String>);

impl Pushed {
    /// The request to promise for `path`, or None: pushed already, too many, or
    /// not a path.
    pub fn promise(&mut self, base: &PushBase, path: String) -> Option<Request<()>> {
        if self.0.len() >= MAX_PUSHES || self.0.contains(&path) {
            return None;
        }
        let request = base.request(&path)?;
        self.0.push(path);
        Some(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original() -> request::Parts {
        let (parts, ()) = Request::builder()
            .uri("http://example.com:8080/page")
            .header(header::COOKIE, "a=1; b=2")
            .header(header::USER_AGENT, "ua")
            .header(header::AUTHORIZATION, "secret")
            .body(())
            .map(Request::into_parts)
            .expect("a valid request");
        parts
    }

    #[test]
    fn promises_copy_the_listed_headers_once_per_path() {
        let mut pushed = Pushed::default();
        let parts = PushBase::of(&original());
        let request = pushed
            .promise(&parts, "/a.css?v=1".into())
            .expect("a promise");
        assert_eq!(request.uri(), "http://example.com:8080/a.css?v=1");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.headers()[header::COOKIE], "a=1; b=2");
        assert_eq!(request.headers()[header::USER_AGENT], "ua");
        assert!(request.headers().get(header::AUTHORIZATION).is_none());
        assert!(pushed.promise(&parts, "/a.css?v=1".into()).is_none());
        assert!(pushed.promise(&parts, "//evil/x".into()).is_none());
        assert!(pushed.promise(&parts, "a.css".into()).is_none());
        assert!(pushed.promise(&parts, "/bad path".into()).is_none());
    }
}
