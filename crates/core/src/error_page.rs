//! Error responses made by the engine itself: HTML for browsers, JSON for the rest,
//! `{"code": <status x 100>, "message": "<reason>"}` as Skitai always answered.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::ResponseBody;

pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
    })
}

fn reason(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
}

pub fn error_body(status: StatusCode, html: bool) -> (&'static str, String) {
    let code = status.as_u16();
    let message = reason(status);
    if html {
        let title = status.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{code} {title}</title></head>\
             <body><h1>{code} {title}</h1><p>{message}</p><hr><address>{}</address></body></html>\n",
            crate::SERVER_NAME
        );
        ("text/html; charset=utf-8", body)
    } else {
        (
            "application/json",
            format!(
                "{{\"code\": {}, \"message\": \"{message}\"}}",
                u32::from(code) * 100
            ),
        )
    }
}

pub fn error_response(status: StatusCode, html: bool) -> Response<ResponseBody> {
    let (content_type, body) = error_body(status, html);
    let mut response = Response::new(ResponseBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_unless_the_client_accepts_html() {
        let (ct, body) = error_body(StatusCode::NOT_FOUND, false);
        assert_eq!(ct, "application/json");
        assert_eq!(body, r#"{"code": 40400, "message": "not found"}"#);
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&h));
        let (ct, body) = error_body(StatusCode::NOT_FOUND, true);
        assert!(ct.starts_with("text/html"));
        assert!(body.contains("<h1>404 Not Found</h1>"));
    }
}
