//! A file streamed in bounded chunks, each read on tokio's blocking pool so that
//! no worker thread waits on the disk; optionally gzipped as it goes.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::body::BodyAborted;

const CHUNK: u64 = 256 * 1024;

type Gzip = GzEncoder<Vec<u8>>;

struct ReadResult {
    data: std::io::Result<Bytes>,
    gzip: Option<Gzip>,
}

pub struct FileBody {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    /// Sent as stored, so the length is known; not when compressed on the fly.
    exact: bool,
    gzip: Option<Gzip>,
    reading: Option<JoinHandle<ReadResult>>,
    done: bool,
}

impl FileBody {
    pub fn new(file: File, offset: u64, len: u64, gzip: bool) -> FileBody {
        FileBody {
            file: Arc::new(file),
            offset,
            remaining: len,
            exact: !gzip,
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::default())),
            reading: None,
            done: false,
        }
    }

    fn read_next(&mut self) -> JoinHandle<ReadResult> {
        let file = self.file.clone();
        let offset = self.offset;
        let want = self.remaining.min(CHUNK);
        let last = want == self.remaining;
        let mut gzip = self.gzip.take();
        tokio::task::spawn_blocking(move || {
            let data = read_at(&file, offset, want).and_then(|raw| match gzip.as_mut() {
                None => Ok(raw),
                Some(encoder) => {
                    encoder.write_all(&raw)?;
                    if last {
                        let finished = std::mem::replace(
                            encoder,
                            GzEncoder::new(Vec::new(), flate2::Compression::none()),
                        );
                        return finished.finish().map(Bytes::from);
                    }
                    encoder.flush()?;
                    Ok(Bytes::from(std::mem::take(encoder.get_mut())))
                }
            });
            ReadResult { data, gzip }
        })
    }
}

fn read_at(mut file: &File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    // One body reads its file one chunk at a time, so seek-then-read cannot race.
    // read_to_end fills spare capacity without zeroing it first.
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(usize::MAX));
    file.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        // Shorter than when it was opened: the file was truncated or replaced.
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "file shrank while being sent",
        ));
    }
    Ok(Bytes::from(buf))
}

impl FileBody {
    pub fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.remaining == 0 {
                self.done = true;
                return Poll::Ready(None);
            }
            let mut reading = match self.reading.take() {
                Some(r) => r,
                None => self.read_next(),
            };
            let result = match Pin::new(&mut reading).poll(cx) {
                Poll::Pending => {
                    self.reading = Some(reading);
                    return Poll::Pending;
                }
                Poll::Ready(r) => r,
            };
            let Ok(ReadResult { data, gzip }) = result else {
                self.done = true;
                return Poll::Ready(Some(Err(BodyAborted)));
            };
            let Ok(chunk) = data else {
                // Ending the body with an error makes hyper close the connection: the
                // client sees a short response, never a wrong one.
                self.done = true;
                return Poll::Ready(Some(Err(BodyAborted)));
            };
            let read = self.remaining.min(CHUNK);
            self.offset += read;
            self.remaining -= read;
            self.gzip = gzip;
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
    }

    pub fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.remaining)
        } else {
            SizeHint::default()
        }
    }
}
