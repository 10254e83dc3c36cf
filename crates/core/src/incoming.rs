//! A request body, whichever protocol carried it: hyper's for HTTP/1.1, an h2
//! stream for HTTP/2, nothing for a pushed request.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body::{Body, Frame, SizeHint};

pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

pub enum Incoming {
    Http1(hyper::body::Incoming),
    Http2(Http2Body),
    /// A pushed request (a GET made up by the server).
    Empty,
}

/// An HTTP/2 request body. Receive window is given back as chunks are taken: the
/// reader takes one only when JS has room for it, so the client is held back by
/// HTTP/2 flow control exactly as far as JS is behind.
pub struct Http2Body {
    stream: h2::RecvStream,
    declared: Option<u64>,
    data_done: bool,
}

impl Incoming {
    /// `headers`: the request's, for its declared length (h2 checks that the DATA
    /// frames add up to it).
    pub fn http2(stream: h2::RecvStream, headers: &HeaderMap) -> Incoming {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Incoming::Http2(Http2Body {
            stream,
            declared,
            data_done: false,
        })
    }
}

impl Body for Incoming {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Incoming::Http1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Incoming::Http2(body) => body.poll_frame(cx),
            Incoming::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Incoming::Http1(body) => body.is_end_stream(),
            Incoming::Http2(body) => body.stream.is_end_stream(),
            Incoming::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Incoming::Http1(body) => body.size_hint(),
            Incoming::Http2(body) if body.stream.is_end_stream() => SizeHint::with_exact(0),
            Incoming::Http2(Http2Body {
                declared: Some(n), ..
            }) => SizeHint::with_exact(*n),
            Incoming::Http2(_) => SizeHint::default(),
            Incoming::Empty => SizeHint::with_exact(0),
        }
    }
}

impl Http2Body {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => self.data_done = true,
            }
        }
        match ready!(self.stream.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }
}
