//! Static files, served entirely in Rust: lookup inside the mount's roots, RFC 9110
//! conditionals and ranges, precompressed siblings and gzip on the fly.

mod conditional;
mod entry;
mod file_body;
mod mime;
mod path;
mod range;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

pub use file_body::FileBody;

use self::conditional::Precondition;
use self::entry::{Cache, Cached, Entry, Known, Loaded};
use self::path::Found;
use self::range::{ByteRange, Ranges};
use self::watch::Watcher;
use crate::body::ResponseBody;
use crate::error_page::{error_response, wants_html};

/// One directory mount: its roots, searched in order, and what is known of their files.
pub struct StaticSite {
    roots: Arc<[PathBuf]>,
    cache: Arc<Cache>,
    /// None where change notices are unavailable: every entry is checked by stat.
    watcher: Option<Arc<Watcher>>,
}

/// What a static mount made of a request.
pub enum Served {
    Response(Response<ResponseBody>),
    /// No such file: the request may go on to an app at the same mount point.
    Miss,
}

/// A static answer made at once, or what is left to do on the blocking pool.
/// Most requests are for files held in memory and known current: they are
/// answered without a future of their own.
pub enum Step {
    Done(Served),
    Later(Later),
}

/// The part of an answer that waits for I/O.
pub struct Later(Pending);

enum Pending {
    /// The path is not known: look for it on disk, then answer.
    Lookup,
    /// The answer so far, and the I/O its body needs (boxed: the rarer case,
    /// and most of the size).
    Body(Box<(Arc<Entry>, Response<ResponseBody>, BodyIo)>),
}

/// I/O a response body needs before it can go.
enum BodyIo {
    /// Bytes `start..start + len` of a file (gzipped on the way when `gzip`).
    File {
        path: PathBuf,
        start: u64,
        len: u64,
        gzip: bool,
    },
    /// Several ranges of a file not held in memory.
    Ranges(Vec<ByteRange>),
    /// gzip of the held bytes, made once.
    Gzip,
}

/// A file's answer: complete, or waiting for its body's I/O.
enum Answer {
    Now(Response<ResponseBody>),
    After(Response<ResponseBody>, BodyIo),
}

impl Answer {
    /// The step it makes for `entry`'s request (which keeps the entry only
    /// when its body is still to be read).
    fn step(self, entry: &Arc<Entry>) -> Step {
        match self {
            Answer::Now(response) => Step::Done(Served::Response(response)),
            Answer::After(response, io) => Step::Later(Later(Pending::Body(Box::new((
                entry.clone(),
                response,
                io,
            ))))),
        }
    }
}

/// Files on the on-the-fly gzip path must be at least this big.
const GZIP_MIN: u64 = 1024;

impl StaticSite {
    /// `roots` must exist; they are canonicalised here so that symlinks can be checked.
    pub fn new(roots: &[PathBuf]) -> std::io::Result<StaticSite> {
        let roots = roots
            .iter()
            .map(std::fs::canonicalize)
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(StaticSite {
            roots: roots.into(),
            cache: Arc::default(),
            watcher: Watcher::new().map(Arc::new),
        })
    }

    /// Serve `rel`, the request path below the mount point, for a GET or HEAD.
    /// `max_age` is the Cache-Control value for this path, if any.
    pub async fn serve(&self, parts: &Parts, rel: &str, max_age: Option<&HeaderValue>) -> Served {
        match self.serve_now(parts, rel, max_age) {
            Step::Done(served) => served,
            Step::Later(later) => self.serve_later(later, parts, rel, max_age).await,
        }
    }

    /// `serve` as far as it goes without I/O: the whole answer for a file held in
    /// memory and known current (or a path known missing), else what is left.
    pub fn serve_now(&self, parts: &Parts, rel: &str, max_age: Option<&HeaderValue>) -> Step {
        if let Some(watcher) = &self.watcher {
            watcher.take(|change| self.cache.stale(change));
        }
        let looked = self.cache.lookup(rel, |entry| {
            (entry.watched || entry.stamp.current(&entry.path))
                .then(|| respond(entry, parts, max_age).step(entry))
        });
        match looked {
            Cached::Entry(Some(step)) => step,
            Cached::Known(Known::Missing) => Step::Done(Served::Miss),
            Cached::Known(Known::Directory) => {
                Step::Done(Served::Response(redirect_to_slash(parts)))
            }
            // Changed since it was read: read again.
            Cached::Entry(None) => {
                self.cache.remove(rel);
                Step::Later(Later(Pending::Lookup))
            }
            Cached::Unknown => Step::Later(Later(Pending::Lookup)),
        }
    }

    /// The rest of `serve` after `serve_now`, with the same arguments.
    pub async fn serve_later(
        &self,
        later: Later,
        parts: &Parts,
        rel: &str,
        max_age: Option<&HeaderValue>,
    ) -> Served {
        let (entry, response, io) = match later.0 {
            Pending::Body(waiting) => *waiting,
            Pending::Lookup => {
                let entry = match self.lookup(rel).await {
                    Lookup::File(entry) => entry,
                    Lookup::Directory => return Served::Response(redirect_to_slash(parts)),
                    Lookup::Missing => return Served::Miss,
                };
                match respond(&entry, parts, max_age) {
                    Answer::Now(response) => return Served::Response(response),
                    Answer::After(response, io) => (entry, response, io),
                }
            }
        };
        Served::Response(finish(&entry, response, io, &parts.headers).await)
    }

    async fn lookup(&self, rel: &str) -> Lookup {
        let Some(decoded) = path::decode(rel) else {
            return Lookup::Missing;
        };
        let (roots, cache, watcher) =
            (self.roots.clone(), self.cache.clone(), self.watcher.clone());
        let (found, load) = tokio::task::spawn_blocking(move || {
            match path::find(&roots, &decoded) {
                Some(Found::File { path, root }) => {
                    let load = cache.begin_load(Some(&path));
                    // Watched first, then read: a change after the read is noticed.
                    let watched = match (&watcher, path.parent()) {
                        (Some(w), Some(dir)) => w.watch(&roots[root], dir),
                        _ => false,
                    };
                    let entry =
                        std::fs::metadata(&path).and_then(|meta| Entry::load(path, &meta, watched));
                    let found = entry.map_or(Lookup::Missing, |e| Lookup::File(Arc::new(e)));
                    // A file that could not be read is not kept as missing.
                    (found, Some((load, false)))
                }
                other => {
                    let directory = matches!(other, Some(Found::Directory));
                    let looked = if directory {
                        Lookup::Directory
                    } else {
                        Lookup::Missing
                    };
                    let Some(watcher) = watcher else {
                        return (looked, None);
                    };
                    let load = cache.begin_load(None);
                    // Watched where a file would appear (or the directory go),
                    // then looked for again: a change before the watch shows in
                    // this look, one after it is noticed.
                    let watched = roots.iter().all(|root| {
                        path::deepest_directory(root, &decoded)
                            .is_some_and(|dir| watcher.watch(root, &dir))
                    });
                    let same = match path::find(&roots, &decoded) {
                        None => !directory,
                        Some(Found::Directory) => directory,
                        Some(Found::File { .. }) => false,
                    };
                    (looked, Some((load, watched && same)))
                }
            }
        })
        .await
        .unwrap_or((Lookup::Missing, None));
        // `keep`: no file (or a directory), and the directories on its way are watched.
        if let Some((load, keep)) = load {
            let loaded = match &found {
                Lookup::File(entry) => Loaded::Entry(entry),
                Lookup::Missing if keep => Loaded::Known(Known::Missing),
                Lookup::Directory if keep => Loaded::Known(Known::Directory),
                _ => Loaded::Nothing,
            };
            self.cache.finish_load(load, rel, loaded);
        }
        found
    }
}

enum Lookup {
    File(Arc<Entry>),
    Directory,
    Missing,
}

fn redirect_to_slash(parts: &Parts) -> Response<ResponseBody> {
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let location = format!("{}/{query}", parts.uri.path());
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Whether Accept-Encoding admits `coding` (with q > 0).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut star = false;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut params = item.split(';');
        let name = params.next().unwrap_or_default().trim();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            star = q > 0.0;
        }
    }
    star
}

enum Encoding {
    /// A precompressed sibling, by index in `Entry::siblings`.
    Sibling(usize),
    /// gzip made here.
    Gzip,
}

fn choose_encoding(entry: &Entry, headers: &HeaderMap) -> Option<Encoding> {
    if !entry.compressible {
        return None;
    }
    for (i, sibling) in entry.siblings.iter().enumerate() {
        if accepts(headers, sibling.encoding)
            && (entry.watched || sibling.stamp.current(&sibling.path))
        {
            return Some(Encoding::Sibling(i));
        }
    }
    (accepts(headers, "gzip") && entry.stamp.len >= GZIP_MIN).then_some(Encoding::Gzip)
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// More than this in several ranges is answered as the whole file instead.
const MULTIPART_MAX: u64 = 16 * 1024 * 1024;

/// Bytes `ranges` of a file, read on the blocking pool; None if it cannot be read.
async fn read_ranges(path: PathBuf, ranges: Vec<ByteRange>) -> Option<Vec<Bytes>> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(path).ok()?;
        let mut parts = Vec::new();
        for r in ranges {
            file.seek(SeekFrom::Start(r.start)).ok()?;
            let mut buf = vec![0; r.len() as usize];
            file.read_exact(&mut buf).ok()?;
            parts.push(Bytes::from(buf));
        }
        Some(parts)
    })
    .await
    .ok()?
}

fn multipart(entry: &Entry, ranges: &[ByteRange], parts: Vec<Bytes>) -> (String, Bytes) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let boundary = format!(
        "skitai-{:016x}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ entry.stamp.len
    );
    let mut body = BytesMut::new();
    for (range, data) in ranges.iter().zip(parts) {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-type: {}\r\ncontent-range: bytes {}-{}/{}\r\n\r\n",
                entry.content_type.to_str().unwrap_or_default(),
                range.start,
                range.end,
                entry.stamp.len
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/byteranges; boundary={boundary}"),
        body.freeze(),
    )
}

/// The answer for `entry`: conditionals, ranges, encodings. Made at once
/// unless the body needs I/O.
fn respond(entry: &Arc<Entry>, parts: &Parts, max_age: Option<&HeaderValue>) -> Answer {
    let headers = &parts.headers;
    let size = entry.stamp.len;
    let ranges = if parts.method == Method::GET {
        range::parse(
            headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
            size,
        )
    } else {
        Ranges::Whole
    };
    // A range is always of the stored bytes: never compress a range response.
    let encoding = if ranges == Ranges::Whole {
        choose_encoding(entry, headers)
    } else {
        None
    };
    let coded_etag = match &encoding {
        Some(Encoding::Sibling(i)) => Some(entry.coded_etag(entry.siblings[*i].encoding)),
        Some(Encoding::Gzip) => Some(entry.coded_etag("gzip")),
        None => None,
    };
    let etag = coded_etag.as_ref().unwrap_or(&entry.etag);
    let modified = entry.stamp.modified;
    let precondition = conditional::evaluate(&parts.method, headers, etag, modified);
    if let Precondition::Failed = precondition {
        return Answer::Now(error_response(
            StatusCode::PRECONDITION_FAILED,
            wants_html(headers),
        ));
    }
    let ranges = if ranges != Ranges::Whole && !conditional::if_range_holds(headers, etag, modified)
    {
        Ranges::Whole
    } else {
        ranges
    };

    // The whole file's headers, made once per entry, then what this answer changes.
    let mut response = Response::new(ResponseBody::empty());
    *response.headers_mut() = entry.plain.clone();
    let out = response.headers_mut();
    if let Some(etag) = coded_etag {
        out.insert(header::ETAG, etag);
    }
    if let Some(cache_control) = max_age {
        out.insert(header::CACHE_CONTROL, cache_control.clone());
    }
    if let Precondition::NotModified = precondition {
        // A 304 keeps the validators, Vary and Cache-Control, not the body's metadata.
        out.remove(header::ACCEPT_RANGES);
        out.remove(header::CONTENT_TYPE);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Answer::Now(response);
    }
    match ranges {
        Ranges::Unsatisfiable => {
            let mut error = error_response(StatusCode::RANGE_NOT_SATISFIABLE, wants_html(headers));
            error
                .headers_mut()
                .insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
            Answer::Now(error)
        }
        Ranges::Satisfiable(list) if list.len() == 1 => {
            let r = list[0];
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {}-{}/{size}", r.start, r.end)),
            );
            match &entry.data {
                Some(data) => {
                    *response.body_mut() =
                        ResponseBody::full(data.slice(r.start as usize..=r.end as usize));
                    Answer::Now(response)
                }
                None => {
                    let io = BodyIo::File {
                        path: entry.path.clone(),
                        start: r.start,
                        len: r.len(),
                        gzip: false,
                    };
                    Answer::After(response, io)
                }
            }
        }
        Ranges::Satisfiable(list)
            if list.iter().map(ByteRange::len).sum::<u64>() > MULTIPART_MAX =>
        {
            whole(entry, response, None)
        }
        Ranges::Satisfiable(list) => match &entry.data {
            Some(data) => {
                let bytes = list
                    .iter()
                    .map(|r| data.slice(r.start as usize..=r.end as usize))
                    .collect();
                Answer::Now(multipart_response(entry, response, &list, bytes))
            }
            None => Answer::After(response, BodyIo::Ranges(list)),
        },
        Ranges::Whole => whole(entry, response, encoding),
    }
}

/// A 206 of several ranges.
fn multipart_response(
    entry: &Entry,
    mut response: Response<ResponseBody>,
    ranges: &[ByteRange],
    parts: Vec<Bytes>,
) -> Response<ResponseBody> {
    let (content_type, body) = multipart(entry, ranges, parts);
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, value(&content_type));
    *response.body_mut() = ResponseBody::full(body);
    response
}

/// The whole file, as stored or in `encoding`.
fn whole(
    entry: &Arc<Entry>,
    mut response: Response<ResponseBody>,
    encoding: Option<Encoding>,
) -> Answer {
    let out = response.headers_mut();
    let file = |path: &PathBuf, len: u64, gzip: bool| BodyIo::File {
        path: path.clone(),
        start: 0,
        len,
        gzip,
    };
    match encoding {
        None => match &entry.data {
            Some(data) => {
                *response.body_mut() = ResponseBody::full(data.clone());
                Answer::Now(response)
            }
            None => Answer::After(response, file(&entry.path, entry.stamp.len, false)),
        },
        Some(Encoding::Sibling(i)) => {
            let sibling = &entry.siblings[i];
            out.insert(header::CONTENT_ENCODING, value(sibling.encoding));
            Answer::After(response, file(&sibling.path, sibling.stamp.len, false))
        }
        Some(Encoding::Gzip) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            match (&entry.data, entry.gzipped_if_made()) {
                (Some(_), Some(gz)) => {
                    *response.body_mut() = ResponseBody::full(gz.clone());
                    Answer::Now(response)
                }
                (Some(_), None) => Answer::After(response, BodyIo::Gzip),
                (None, _) => Answer::After(response, file(&entry.path, entry.stamp.len, true)),
            }
        }
    }
}

/// Bytes `start..start + len` of the file at `path`, opened on the blocking pool.
async fn file_body(path: PathBuf, start: u64, len: u64, gzip: bool) -> Option<ResponseBody> {
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
        .await
        .ok()?
        .ok()?;
    Some(ResponseBody::File(Box::new(FileBody::new(
        file, start, len, gzip,
    ))))
}

/// The body's I/O done, on the blocking pool; a file gone by now is a 404.
async fn finish(
    entry: &Arc<Entry>,
    mut response: Response<ResponseBody>,
    io: BodyIo,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    let body = match io {
        BodyIo::File {
            path,
            start,
            len,
            gzip,
        } => file_body(path, start, len, gzip).await,
        BodyIo::Ranges(list) => match read_ranges(entry.path.clone(), list.clone()).await {
            Some(bytes) => return multipart_response(entry, response, &list, bytes),
            // Unreadable as ranges: the whole file, if it opens (the entry's
            // headers already name its type).
            None => file_body(entry.path.clone(), 0, entry.stamp.len, false).await,
        },
        BodyIo::Gzip => {
            let cached = entry.clone();
            // Compressing up to SMALL_FILE takes a millisecond or two: not on a worker.
            tokio::task::spawn_blocking(move || cached.gzipped().cloned())
                .await
                .ok()
                .flatten()
                .map(ResponseBody::full)
        }
    };
    match body {
        Some(body) => {
            *response.body_mut() = body;
            response
        }
        None => error_response(StatusCode::NOT_FOUND, wants_html(headers)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of a small file's response, as text.
    fn text(served: Served) -> Option<String> {
        let Served::Response(response) = served else {
            return None;
        };
        match response.into_body() {
            ResponseBody::Full(bytes) => {
                Some(String::from_utf8_lossy(&bytes.unwrap_or_default()).into())
            }
            _ => None,
        }
    }

    /// Where no change notices come (network filesystems, no watches left), a stat
    /// of each cached file on every request keeps it fresh, and misses are not kept.
    #[test]
    fn without_notices_a_stat_keeps_files_fresh() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let root = std::env::temp_dir().join(format!("skitai-unwatched-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("f.txt");
        std::fs::write(&file, "one").unwrap();
        let mut site = StaticSite::new(std::slice::from_ref(&root)).unwrap();
        site.watcher = None;
        let (parts, ()) = http::Request::get("/f.txt").body(()).unwrap().into_parts();
        let get = |site: &StaticSite| runtime.block_on(site.serve(&parts, "f.txt", None));
        assert_eq!(text(get(&site)).as_deref(), Some("one"));
        std::fs::write(&file, "two, longer").unwrap();
        assert_eq!(text(get(&site)).as_deref(), Some("two, longer"));
        // Same size and modification time: the change time still moved.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "TWO, LONGER").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(text(get(&site)).as_deref(), Some("TWO, LONGER"));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(get(&site), Served::Miss));
        std::fs::write(&file, "back").unwrap();
        assert_eq!(
            text(get(&site)).as_deref(),
            Some("back"),
            "a miss is looked up again"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
