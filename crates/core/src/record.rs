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
//! M               a WebSocket message: its socket, size and kind are the next
//!                  entry of the batch's `ws_meta` (`ws_message`)
//! X id code index  a WebSocket closed: the code, the reason in buffers[index] ("" none)
//! U id            a WebSocket's send queue drained: JS may send again
//! ```
//!
//! Access records go to the batch's log bytes instead, one after another: each
//! a table of its 20 fields' lengths (u32, little-endian), then the fields, in
//! this order (the request's, then the response's):
//!
//! ```text
//! ms ip host method uri version reqBytes gtxn ltxn user bearer referer userAgent
//!   forwardedFor worker   status resBytes active handlingMs transferMs
//! ```

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

/// Bytes of one message's entry in a batch's `ws_meta`: the socket's id (f64),
/// the size (u32: UTF-16 code units of the batch's WebSocket text, or bytes of
/// its binary buffer) and the kind (u32: `WS_TEXT` or `WS_BINARY`), little-endian.
pub const WS_META_ENTRY: usize = 16;
pub const WS_TEXT: u32 = 1;
pub const WS_BINARY: u32 = 2;

/// A whole WebSocket message. Its numbers go to `ws_meta` rather than the text:
/// JS reads them in place, where text fields cost a split and a parse each.
/// (Sizes fit u32: messages are at most 2 GiB.)
pub fn ws_message(batch: &mut Batch, id: u64, text: bool, data: &[u8]) {
    batch.text.extend_from_slice(b"M\n");
    let (size, kind) = if text {
        batch.ws_text.extend_from_slice(data);
        (utf16_units(data), WS_TEXT)
    } else {
        batch.ws_binary.extend_from_slice(data);
        (data.len() as u64, WS_BINARY)
    };
    let meta = &mut batch.ws_meta;
    meta.extend_from_slice(&(id as f64).to_le_bytes());
    meta.extend_from_slice(&(u32::try_from(size).unwrap_or(u32::MAX)).to_le_bytes());
    meta.extend_from_slice(&kind.to_le_bytes());
}

/// How long valid UTF-8 is as a JS string: a unit per character, two for one
/// past U+FFFF (a 4-byte sequence).
fn utf16_units(utf8: &[u8]) -> u64 {
    // Most text is ASCII: a unit per byte, checked a word at a time.
    if utf8.is_ascii() {
        return utf8.len() as u64;
    }
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

/// Fields of an access record.
const ACCESS_FIELDS: usize = 20;
/// The first of the fields known only when the response has ended.
const OUTCOME_AT: usize = 15;

/// An access record being written: a table of its fields' lengths, then the fields.
struct AccessWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the record (its table) starts in `out`.
    table: usize,
    next: usize,
}

impl AccessWriter<'_> {
    fn field(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
        // Fields come from a request head, which is far below 4 GiB.
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        let at = self.table + 4 * self.next;
        self.out[at..at + 4].copy_from_slice(&length.to_le_bytes());
        self.next += 1;
    }

    fn number(&mut self, n: u64) {
        self.field(itoa::Buffer::new().format(n).as_bytes());
    }
}

/// Start an access record in `out` with the request's fields (see access_log.rs);
/// "" = absent.
pub fn access_request(out: &mut Vec<u8>, f: &crate::access_log::RequestFields<'_>) {
    let table = out.len();
    out.resize(table + 4 * ACCESS_FIELDS, 0);
    let mut w = AccessWriter {
        out,
        table,
        next: 0,
    };
    w.number(f.wall_ms);
    w.field(f.peer);
    w.field(f.host);
    w.field(f.method);
    w.field(f.uri);
    w.field(f.version);
    w.field(f.request_bytes);
    w.field(f.gtxn);
    w.number(f.ltxn);
    w.field(f.user);
    w.field(f.bearer);
    w.field(f.referer);
    w.field(f.user_agent);
    w.field(f.forwarded_for);
    w.field(f.worker);
    debug_assert_eq!(w.next, OUTCOME_AT);
}

/// Complete a record begun by `access_request` with the response's fields, into the batch.
pub fn access(batch: &mut Batch, request: &[u8], f: &crate::access_log::OutcomeFields) {
    let table = batch.log.len();
    batch.log.extend_from_slice(request);
    let mut w = AccessWriter {
        out: &mut batch.log,
        table,
        next: OUTCOME_AT,
    };
    w.number(u64::from(f.status));
    w.number(f.response_bytes);
    w.number(f.active);
    w.number(f.handling_ms);
    w.number(f.transfer_ms);
    debug_assert_eq!(w.next, ACCESS_FIELDS);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a batch's log bytes into records of fields, by their tables.
    fn records(mut log: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        while !log.is_empty() {
            let (table, mut rest) = log.split_at(4 * ACCESS_FIELDS);
            let mut fields = Vec::new();
            for length in table.chunks(4) {
                let length = u32::from_le_bytes(length.try_into().unwrap()) as usize;
                let (field, after) = rest.split_at(length);
                fields.push(String::from_utf8(field.to_vec()).unwrap());
                rest = after;
            }
            out.push(fields);
            log = rest;
        }
        out
    }

    #[test]
    fn access_records_carry_a_table_of_lengths_then_the_fields() {
        let mut batch = Batch::default();
        for (ltxn, status) in [(1, 200), (2, 404)] {
            let mut request = Vec::new();
            access_request(
                &mut request,
                &crate::access_log::RequestFields {
                    wall_ms: 1700000000123,
                    peer: b"::1",
                    host: b"h:80",
                    method: b"GET",
                    uri: b"/a?b",
                    version: b"1.1",
                    request_bytes: b"",
                    gtxn: b"g-1",
                    ltxn,
                    user: b"",
                    bearer: b"t",
                    referer: b"r",
                    user_agent: b"ua \"x\"",
                    forwarded_for: b"",
                    worker: b"W0",
                },
            );
            let outcome = crate::access_log::OutcomeFields {
                status,
                response_bytes: 11,
                active: 3,
                handling_ms: 0,
                transfer_ms: 12,
            };
            access(&mut batch, &request, &outcome);
        }
        let records = records(&batch.log);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0],
            [
                "1700000000123",
                "::1",
                "h:80",
                "GET",
                "/a?b",
                "1.1",
                "",
                "g-1",
                "1",
                "",
                "t",
                "r",
                "ua \"x\"",
                "",
                "W0",
                "200",
                "11",
                "3",
                "0",
                "12"
            ]
        );
        assert_eq!(records[1][8], "2");
        assert_eq!(records[1][15], "404");
    }

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
        assert_eq!(String::from_utf8(batch.text).unwrap(), "M\nM\n");
        let entry = |i: usize| {
            let e = &batch.ws_meta[i * WS_META_ENTRY..(i + 1) * WS_META_ENTRY];
            let word = |at: usize| u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
            (
                f64::from_le_bytes(e[..8].try_into().unwrap()),
                word(8),
                word(12),
            )
        };
        assert_eq!(batch.ws_meta.len(), 2 * WS_META_ENTRY);
        assert_eq!(entry(0), (3.0, 2, WS_TEXT));
        assert_eq!(entry(1), (3.0, 2, WS_BINARY));
        assert_eq!(batch.ws_text, "😀".as_bytes());
        assert_eq!(batch.ws_binary, b"\x00\x01");
    }
}
