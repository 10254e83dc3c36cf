//! permessage-deflate (RFC 7692) around tungstenite, which has no extensions:
//! compressed messages are inflated before tungstenite reads them, as frames
//! with RSV1 clear, so it keeps doing all the protocol checks; data frames we
//! send are deflated when the wire writes them.
//!
//! We answer with `server_no_context_takeover`, so each message is compressed
//! on its own (no window kept per socket); the client may keep its window, so
//! each socket that receives compressed messages keeps one inflater.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, ReadBuf};

/// Messages shorter than this go uncompressed (what `ws` does by default).
pub const THRESHOLD: usize = 1024;
/// Messages this long or longer are compressed on the blocking pool, so that
/// neither the JS thread nor an engine thread stalls on them.
pub const OFF_THREAD: usize = 64 * 1024;
/// What a sync flush ends with; left off on the wire (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
const RSV1: u8 = 0x40;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

thread_local! {
    static DEFLATER: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// `payload` deflated as one message, without the flush's tail.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    DEFLATER.with_borrow_mut(|deflater| {
        deflater.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            let before = deflater.total_in();
            // Writes into the spare capacity only; never fails for raw deflate.
            let _ = deflater.compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(deflater.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    })
}

/// The socket's read half as tungstenite should see it: compressed messages
/// inflated, everything else as it came.
pub struct Inflating<R> {
    read: R,
    /// Read from the socket, not yet looked at.
    input: BytesMut,
    /// Ready for tungstenite.
    output: BytesMut,
    /// Payload bytes of a frame passed through as it is, still to come.
    passing: u64,
    /// The message whose fragments are arriving is compressed.
    compressed: bool,
    /// Inflated bytes of that message so far.
    message: usize,
    max_message: usize,
    inflater: Option<Box<Decompress>>,
    /// The socket ended, or the stream was failed: nothing more after `output`.
    done: bool,
}

/// A frame's head: what decides how it is handled, and its size on the wire.
struct Head {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    length: u64,
    size: usize,
}

fn parse_head(input: &[u8]) -> Option<Head> {
    let (&b0, &b1) = (input.first()?, input.get(1)?);
    let (length, mut size) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(input.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(input.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let key: [u8; 4] = input.get(size..size + 4)?.try_into().ok()?;
        size += 4;
        Some(key)
    } else {
        None
    };
    Some(Head {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & RSV1 != 0,
        opcode: b0 & 0x0f,
        mask,
        length,
        size,
    })
}

/// A client frame's head as tungstenite expects it (masked, here with a key of
/// zeros, which leaves the payload as it is).
fn put_head(out: &mut BytesMut, fin: bool, opcode: u8, length: u64) {
    out.put_u8(if fin { 0x80 } else { 0 } | opcode);
    if length < 126 {
        out.put_u8(0x80 | length as u8);
    } else if let Ok(short) = u16::try_from(length) {
        out.put_u8(0x80 | 126);
        out.put_u16(short);
    } else {
        out.put_u8(0x80 | 127);
        out.put_u64(length);
    }
    out.put_u32(0);
}

impl<R> Inflating<R> {
    pub fn new(read: R, max_message: usize) -> Inflating<R> {
        Inflating {
            read,
            input: BytesMut::new(),
            output: BytesMut::new(),
            passing: 0,
            compressed: false,
            message: 0,
            max_message,
            inflater: None,
            done: false,
        }
    }

    /// Move what can be handled from `input` to `output`; false when more
    /// input is needed first.
    fn step(&mut self) -> bool {
        if self.passing > 0 {
            if self.input.is_empty() {
                return false;
            }
            let n = self.passing.min(self.input.len() as u64) as usize;
            self.output.extend_from_slice(&self.input.split_to(n));
            self.passing -= n as u64;
            return true;
        }
        let Some(head) = parse_head(&self.input) else {
            return false;
        };
        let data = head.opcode == 1 || head.opcode == 2;
        if data {
            self.compressed = head.rsv1;
            self.message = 0;
        }
        // RSV1 anywhere else (control frames, continuations) goes through for
        // tungstenite to refuse.
        let inflate = self.compressed && (data || (head.opcode == 0 && !head.rsv1));
        if !inflate {
            self.passing = head.length;
            self.output
                .extend_from_slice(&self.input.split_to(head.size));
            return true;
        }
        if head.length > self.max_message as u64 {
            // Too big even compressed: tungstenite refuses the size (1009).
            self.input[0] &= !RSV1;
            self.passing = head.length;
            self.output
                .extend_from_slice(&self.input.split_to(head.size));
            return true;
        }
        // The frame whole before inflating; memory grows as its bytes come, not
        // at the word of a length in its head.
        let whole = head.size + head.length as usize;
        if self.input.len() < whole {
            return false;
        }
        let mut frame = self.input.split_to(whole);
        frame.advance(head.size);
        if let Some(key) = head.mask {
            for (i, b) in frame.iter_mut().enumerate() {
                *b ^= key[i & 3];
            }
        }
        match self.inflate(&frame, head.fin) {
            Ok(Some(plain)) => {
                self.message += plain.len();
                put_head(&mut self.output, head.fin, head.opcode, plain.len() as u64);
                self.output.extend_from_slice(&plain);
            }
            Ok(None) => {
                // Inflated past the limit: a head tungstenite refuses for its size (1009).
                put_head(&mut self.output, true, 2, self.max_message as u64 + 1);
                self.done = true;
            }
            Err(()) => {
                // Not deflate data: close as the peer would for bad data (1007).
                let reason = b"invalid compressed data";
                put_head(&mut self.output, true, 8, 2 + reason.len() as u64);
                self.output.put_u16(1007);
                self.output.extend_from_slice(reason);
                self.done = true;
            }
        }
        true
    }

    /// One frame's payload inflated; None when the message grows past the limit.
    fn inflate(&mut self, payload: &[u8], fin: bool) -> Result<Option<Vec<u8>>, ()> {
        let inflater = self
            .inflater
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let room = self.max_message - self.message;
        let mut out = Vec::with_capacity((payload.len() * 4).max(64).min(room + 1));
        let tail: &[u8] = if fin { &TAIL } else { &[] };
        let mut ended = false;
        for mut input in [payload, tail] {
            loop {
                if out.len() == out.capacity() {
                    // Up to one byte past the room, to see it overflow.
                    out.reserve(out.capacity().min(room + 1 - out.len()).max(64));
                }
                let (taken, made) = (inflater.total_in(), out.len());
                let status = inflater
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| ())?;
                input = &input[(inflater.total_in() - taken) as usize..];
                if out.len() > room {
                    return Ok(None);
                }
                if status == Status::StreamEnd {
                    // A final block: the next message starts a new stream.
                    ended = true;
                    break;
                }
                let room_left = out.len() < out.capacity();
                if input.is_empty() && room_left {
                    break;
                }
                if room_left && inflater.total_in() == taken && out.len() == made {
                    return Err(());
                }
            }
            if ended {
                break;
            }
        }
        if ended {
            inflater.reset(false);
        }
        Ok(Some(out))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Inflating<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            if this.step() {
                continue;
            }
            this.input.reserve(READ_CHUNK);
            let mut read = ReadBuf::uninit(this.input.spare_capacity_mut());
            ready!(Pin::new(&mut this.read).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                // The socket ended: tungstenite judges what is left.
                let rest = this.input.split();
                this.output.extend_from_slice(&rest);
                this.done = true;
                continue;
            }
            // SAFETY: `poll_read` initialised the first `n` spare bytes.
            unsafe { this.input.set_len(this.input.len() + n) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_messages_inflate_back() {
        let text = "hello hello hello hello hello ".repeat(100);
        let packed = compress(text.as_bytes());
        assert!(packed.len() < text.len() / 4);
        assert!(!packed.ends_with(&TAIL));
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(text.len() + 64);
        d.decompress_vec(&packed, &mut out, FlushDecompress::Sync)
            .unwrap();
        d.decompress_vec(&TAIL, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, text.as_bytes());
    }

    /// A client frame: masked with a fixed key.
    fn client_frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x11, 0x22, 0x33, 0x44];
        let mut out = BytesMut::new();
        put_head(&mut out, fin, opcode, payload.len() as u64);
        out[0] |= if rsv1 { RSV1 } else { 0 };
        let at = out.len() - 4;
        out[at..].copy_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        out.to_vec()
    }

    /// What tungstenite would read, given `wire` from the client.
    fn inflated(wire: Vec<u8>, max_message: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut reader = Inflating::new(&wire[..], max_message);
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.unwrap();
            out
        })
    }

    /// The frames in `bytes`: (fin, rsv1, opcode, unmasked payload).
    fn frames(mut bytes: &[u8]) -> Vec<(bool, bool, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(head) = parse_head(bytes) {
            let end = (head.size as u64 + head.length).min(bytes.len() as u64) as usize;
            let mut payload = bytes[head.size..end].to_vec();
            if let Some(key) = head.mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= key[i & 3];
                }
            }
            out.push((head.fin, head.rsv1, head.opcode, payload));
            bytes = &bytes[end..];
        }
        out
    }

    #[test]
    fn fragments_inflate_to_plain_frames_up_to_a_limit_with_little_room_left() {
        let message = format!("{}x", "a".repeat(1000));
        let packed = compress(message.as_bytes());
        let (one, two) = packed.split_at(packed.len() / 2);
        let mut wire = client_frame(false, true, 1, one);
        wire.extend(client_frame(false, false, 9, b"ping"));
        wire.extend(client_frame(false, false, 0, two));
        // An empty last fragment: inflated (with the tail) when 9 bytes of room are left.
        wire.extend(client_frame(true, false, 0, b""));
        let got = frames(&inflated(wire, 1010));
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.iter().all(|(_, rsv1, _, _)| !rsv1), "RSV1 cleared");
        assert_eq!(got[1], (false, false, 9, b"ping".to_vec()));
        let text: Vec<u8> = [&got[0].3[..], &got[2].3[..], &got[3].3[..]].concat();
        assert_eq!(text, message.into_bytes());
        assert!(got[3].0, "the last fragment keeps FIN");
    }

    #[test]
    fn past_the_limit_or_not_deflate_the_stream_ends_in_a_frame_tungstenite_refuses() {
        let bomb = compress(&vec![0u8; 100_000]);
        let out = inflated(client_frame(true, true, 2, &bomb), 1000);
        let head = parse_head(&out).unwrap();
        assert_eq!(
            head.length, 1001,
            "a frame just over the limit: tungstenite answers 1009"
        );
        assert_eq!(out.len(), head.size, "and nothing after its head");
        let got = frames(&inflated(client_frame(true, true, 1, &[0xff; 8]), 1000));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, 8, "a close frame");
        assert_eq!(&got[0].3[..2], &1007u16.to_be_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_hang() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = client_frame(
            true,
            true,
            1,
            &compress("hello hello hello".repeat(9).as_bytes()),
        );
        for round in 0..400 {
            let mut wire = Vec::new();
            for _ in 0..(next() % 6) {
                match next() % 3 {
                    0 => wire.extend(&valid),
                    1 => {
                        let len = (next() % 300) as usize;
                        wire.extend((0..len).map(|_| next() as u8));
                    }
                    _ => {
                        let mut bent = valid.clone();
                        let at = (next() as usize) % bent.len();
                        bent[at] ^= (next() as u8) | 1;
                        wire.extend(bent);
                    }
                }
            }
            let max = [16, 100, 1 << 20][round % 3];
            let _ = inflated(wire, max);
        }
    }

    #[test]
    fn heads_parse_with_every_length_form() {
        let h = parse_head(&[0xc1, 0x85, 1, 2, 3, 4]).unwrap();
        assert!(h.fin && h.rsv1 && h.opcode == 1 && h.length == 5 && h.size == 6);
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
        let h = parse_head(&[0x00, 126, 1, 0]).unwrap();
        assert!(!h.fin && h.length == 256 && h.size == 4 && h.mask.is_none());
        assert!(parse_head(&[0x82, 127, 0, 0]).is_none());
        let mut out = BytesMut::new();
        put_head(&mut out, true, 2, 70000);
        assert_eq!(
            &out[..],
            &[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 0, 0, 0, 0]
        );
    }
}
