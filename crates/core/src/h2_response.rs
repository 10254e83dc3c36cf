//! Sending a response on an HTTP/2 stream: the head without the fields HTTP/2
//! forbids, then the body as the peer's flow-control window allows, then trailers.

use std::future::poll_fn;

use bytes::Bytes;
use h2::{Reason, SendStream};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;

/// Connection-specific fields (RFC 9113 §8.2.2); a handler written for HTTP/1.1
/// may set them, and h2 refuses a head that has them.
fn strip_connection_fields(headers: &mut HeaderMap) {
    if let Some(connection) = headers.remove(header::CONNECTION) {
        // Fields the Connection header names are hop-by-hop too.
        let named: Vec<_> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        for name in named {
            headers.remove(name.as_str());
        }
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
    if headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes() != b"trailers")
    {
        headers.remove(header::TE);
    }
}

/// Send `response` through `start` (the stream's or a pushed stream's
/// `send_response`). `head_only`: a HEAD request, whose body is not sent.
pub async fn send<B>(
    response: Response<B>,
    head_only: bool,
    start: impl FnOnce(Response<()>, bool) -> Result<SendStream<Bytes>, h2::Error>,
) where
    B: Body<Data = Bytes> + Unpin,
{
    let (mut head, body) = response.into_parts();
    strip_connection_fields(&mut head.headers);
    // hyper adds the length of a body whose size is known for HTTP/1.1; the same
    // here (for HEAD, the body is still the one GET would send).
    let bodiless_status = head.status.is_informational()
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    if !bodiless_status && !head.headers.contains_key(header::CONTENT_LENGTH) {
        if let Some(length) = body.size_hint().exact() {
            head.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    let bodyless = head_only || body.is_end_stream();
    let Ok(stream) = start(Response::from_parts(head, ()), bodyless) else {
        // The client reset the stream meanwhile.
        return;
    };
    if !bodyless {
        pump(body, stream).await;
    }
}

async fn pump<B>(mut body: B, mut stream: SendStream<Bytes>)
where
    B: Body<Data = Bytes> + Unpin,
{
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // The client reset the stream while the body was being made.
            _ = poll_fn(|cx| stream.poll_reset(cx)) => return,
        };
        let frame = match frame {
            None => {
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
            Some(Ok(frame)) => frame,
            Some(Err(_)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
        };
        match frame.into_data() {
            Ok(data) => {
                let last = body.is_end_stream();
                if send_data(&mut stream, data, last).await.is_err() || last {
                    return;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                    return;
                }
            }
        }
    }
}

/// Send `data` in pieces the peer's window has room for; Err when the stream is gone.
async fn send_data(stream: &mut SendStream<Bytes>, mut data: Bytes, last: bool) -> Result<(), ()> {
    if data.is_empty() {
        return if last {
            stream.send_data(data, true).map_err(drop)
        } else {
            Ok(())
        };
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(granted)) => granted,
            _ => return Err(()),
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        stream
            .send_data(piece, last && data.is_empty())
            .map_err(drop)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_fields_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::TE, HeaderValue::from_static("gzip"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_connection_fields(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_TYPE));
    }
}
