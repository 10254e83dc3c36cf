//! The wire format of a batch for JS: latin1 text, one field per line.
//!
//! Header values can hold neither '\n' nor '\r' (the parser rejects them), so '\n'
//! is a safe separator, and latin1 is how node:http decodes header bytes too.
//!
//! ```text
//! R id handler method url version remoteAddress remotePort body count (name value)*
//!     body: ""  no body | "b<index>"  whole body in buffers[index] | "s"  chunks follow
//! D id index   body chunk in buffers[index]      E id   end of request body
//! A id         client gone                       W id   response buffer drained
//! P id status  engine answered in JS's place     C      server closed
//! M id t units     a WebSocket text message: the next `units` UTF-16 code units
//!                  of the batch's WebSocket text
//! M id b bytes     a WebSocket binary message: the next `bytes` of the batch's
//!                  WebSocket binary buffer
//! X id code index  a WebSocket closed: the code, the reason in buffers[index] ("" none)
//! U id            a WebSocket's send queue drained: JS may send again
//! L ms ip host method uri version reqBytes status resBytes gtxn ltxn user bearer
//!   referer userAgent forwardedFor worker active handlingMs transferMs   access record
//! ```

use std::io::Write as _;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Version};

use crate::bridge::Batch;

pub enum RequestBody {
    None,
    Inline(Bytes),
    Stream,
    /// No body: a WebSocket handshake the handler may accept ("u").
    Upgrade,
}

fn field(text: &mut Vec<u8>, value: &[u8]) {
    text.extend_from_slice(value);
    text.push(b'\n');
}

fn number(text: &mut Vec<u8>, n: u64) {
    field(text, itoa::Buffer::new().format(n).as_bytes());
}

fn buffer_index(batch: &mut Batch, bytes: Bytes) -> usize {
    batch.buffers.push(bytes);
    batch.buffers.len() - 1
}

pub fn version(v: Version) -> &'static [u8] {
    match v {
        Version::HTTP_10 => b"1.0",
        Version::HTTP_2 => b"2.0",
        Version::HTTP_09 => b"0.9",
        _ => b"1.1",
    }
}

/// `peer` is the connection's "address\nport\n", formatted once per connection.
pub fn request(
    batch: &mut Batch,
    id: u64,
    handler: u32,
    parts: &Parts,
    peer: &[u8],
    body: RequestBody,
) {
    let text = &mut batch.text;
    text.extend_from_slice(b"R\n");
    number(text, id);
    number(text, u64::from(handler));
    field(text, parts.method.as_str().as_bytes());
    field(
        text,
        parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .as_bytes(),
    );
    field(text, version(parts.version));
    text.extend_from_slice(peer);
    match body {
        RequestBody::None => field(text, b""),
        RequestBody::Stream => field(text, b"s"),
        RequestBody::Upgrade => field(text, b"u"),
        RequestBody::Inline(bytes) => {
            let index = buffer_index(batch, bytes);
            let text = &mut batch.text;
            text.push(b'b');
            number(text, index as u64);
        }
    }
    header_fields(&mut batch.text, &parts.headers);
}

/// The count of fields, then each name and value.
fn header_fields(text: &mut Vec<u8>, headers: &HeaderMap) {
    number(text, headers.len() as u64);
    for (name, value) in headers {
        field(text, name.as_str().as_bytes());
        field(text, value.as_bytes());
    }
}

pub fn body_chunk(batch: &mut Batch, id: u64, chunk: Bytes) {
    let index = buffer_index(batch, chunk);
    batch.text.extend_from_slice(b"D\n");
    number(&mut batch.text, id);
    number(&mut batch.text, index as u64);
}

fn simple(batch: &mut Batch, tag: &[u8], id: u64) {
    batch.text.extend_from_slice(tag);
    number(&mut batch.text, id);
}

/// A request body's trailer fields: before its end record, or (an inline body)
/// right after the request record.
pub fn trailers(batch: &mut Batch, id: u64, trailers: &HeaderMap) {
    simple(batch, b"T\n", id);
    header_fields(&mut batch.text, trailers);
}

pub fn body_end(batch: &mut Batch, id: u64) {
    simple(batch, b"E\n", id)
}

pub fn abort(batch: &mut Batch, id: u64) {
    simple(batch, b"A\n", id)
}

pub fn drained(batch: &mut Batch, id: u64) {
    simple(batch, b"W\n", id)
}

pub fn preempted(batch: &mut Batch, id: u64, status: u16) {
    simple(batch, b"P\n", id);
    number(&mut batch.text, u64::from(status));
}

pub fn ws_message(batch: &mut Batch, id: u64, text: bool, data: &[u8]) {
    simple(batch, b"M\n", id);
    if text {
        batch.ws_text.extend_from_slice(data);
        field(&mut batch.text, b"t");
        number(&mut batch.text, utf16_units(data));
    } else {
        batch.ws_binary.extend_from_slice(data);
        field(&mut batch.text, b"b");
        number(&mut batch.text, data.len() as u64);
    }
}

/// How long valid UTF-8 is as a JS string: a unit per character, two for one
/// past U+FFFF (a 4-byte sequence).
fn utf16_units(utf8: &[u8]) -> u64 {
    utf8.iter()
        .map(|&b| u64::from(b & 0xC0 != 0x80) + u64::from(b >= 0xF0))
        .sum()
}

pub fn ws_closed(batch: &mut Batch, id: u64, code: u16, reason: Bytes) {
    simple(batch, b"X\n", id);
    number(&mut batch.text, u64::from(code));
    if reason.is_empty() {
        field(&mut batch.text, b"");
    } else {
        let index = buffer_index(batch, reason);
        number(&mut batch.text, index as u64);
    }
}

pub fn ws_drained(batch: &mut Batch, id: u64) {
    simple(batch, b"U\n", id)
}

pub fn closed(batch: &mut Batch) {
    batch.text.extend_from_slice(b"C\n");
}

/// `L` and the request log line's fields in order (see access_log.rs); "" = absent.
pub fn access(batch: &mut Batch, f: &crate::access_log::AccessFields<'_>) {
    let text = &mut batch.text;
    text.extend_from_slice(b"L\n");
    number(text, f.wall_ms);
    // Written in place: no string per record.
    let _ = write!(text, "{}", f.peer);
    text.push(b'\n');
    field(text, f.host);
    field(text, f.method);
    field(text, f.uri);
    field(text, f.version);
    field(text, f.request_bytes);
    number(text, u64::from(f.status));
    number(text, f.response_bytes);
    field(text, f.gtxn);
    number(text, f.ltxn);
    field(text, f.user);
    field(text, f.bearer);
    field(text, f.referer);
    field(text, f.user_agent);
    field(text, f.forwarded_for);
    field(text, f.worker);
    number(text, f.active);
    number(text, f.handling_ms);
    number(text, f.transfer_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_record_lists_every_field() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/api/x?y=1")
            .header("host", "h")
            .header("x-a", "1")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let mut batch = Batch::default();
        request(
            &mut batch,
            7,
            2,
            &parts,
            b"127.0.0.1\n5555\n",
            RequestBody::Inline(Bytes::from_static(b"hi")),
        );
        body_end(&mut batch, 7);
        let text = String::from_utf8(batch.text).unwrap();
        assert_eq!(
            text,
            "R\n7\n2\nPOST\n/api/x?y=1\n1.1\n127.0.0.1\n5555\nb0\n2\nhost\nh\nx-a\n1\nE\n7\n"
        );
        assert_eq!(batch.buffers.len(), 1);
    }

    #[test]
    fn websocket_text_is_measured_in_utf16_units() {
        assert_eq!(utf16_units("abc".as_bytes()), 3);
        assert_eq!(utf16_units("héllo ✓".as_bytes()), 7);
        assert_eq!(utf16_units("😀x".as_bytes()), 3);
        let mut batch = Batch::default();
        ws_message(&mut batch, 3, true, "😀".as_bytes());
        ws_message(&mut batch, 3, false, b"\x00\x01");
        assert_eq!(
            String::from_utf8(batch.text).unwrap(),
            "M\n3\nt\n2\nM\n3\nb\n2\n"
        );
        assert_eq!(batch.ws_text, "😀".as_bytes());
        assert_eq!(batch.ws_binary, b"\x00\x01");
    }
}
