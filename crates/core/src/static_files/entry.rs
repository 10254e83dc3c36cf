//! What the engine knows of a file: validators, type, and for small files the bytes
//! (and their gzip), cached in memory and revalidated against the file on every use.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;
use rustc_hash::FxHashMap;

use super::mime;

/// Files up to this size are held in memory.
pub const SMALL_FILE: u64 = 128 * 1024;
/// Memory the cache may hold in file bytes before it starts over.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
const CACHE_ENTRIES: usize = 16 * 1024;

/// Identity of a file version: size, modification time and inode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    pub len: u64,
    pub modified: SystemTime,
    pub inode: u64,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            inode,
        }
    }

    /// Whether the file at `path` is still this version. A single stat of a file
    /// just served, answered from the kernel's inode cache, as nginx does.
    pub fn current(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == *self)
    }
}

/// A precompressed sibling (`x.br`, `x.gz`).
pub struct Sibling {
    pub encoding: &'static str,
    pub path: PathBuf,
    pub stamp: Stamp,
}

pub struct Entry {
    pub path: PathBuf,
    pub stamp: Stamp,
    /// The identity representation's headers, formatted once.
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
    pub content_type: HeaderValue,
    pub compressible: bool,
    pub data: Option<Bytes>,
    /// gzip of `data`, made on first demand.
    pub gzip: OnceLock<Option<Bytes>>,
    pub siblings: Vec<Sibling>,
}

fn etag(stamp: &Stamp) -> String {
    let nanos = stamp
        .modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}-{:x}\"", stamp.len, nanos, stamp.inode)
}

impl Entry {
    /// Read what is needed of a file. Blocking.
    pub fn load(path: PathBuf, meta: &Metadata) -> std::io::Result<Entry> {
        let stamp = Stamp::of(meta);
        let data = if stamp.len <= SMALL_FILE {
            Some(Bytes::from(std::fs::read(&path)?))
        } else {
            None
        };
        // The file may have changed between the stat and the read.
        if data.as_ref().is_some_and(|d| d.len() as u64 != stamp.len) {
            return Err(std::io::Error::other("file changed while read"));
        }
        let content_type = mime::content_type(&path);
        let compressible = mime::compressible(&content_type);
        let mut siblings = Vec::new();
        if compressible {
            for (encoding, ext) in [("br", "br"), ("gzip", "gz")] {
                let mut name = path.clone().into_os_string();
                name.push(".");
                name.push(ext);
                let sibling = PathBuf::from(name);
                if let Ok(m) = std::fs::metadata(&sibling) {
                    if m.is_file() {
                        siblings.push(Sibling {
                            encoding,
                            path: sibling,
                            stamp: Stamp::of(&m),
                        });
                    }
                }
            }
        }
        let header = |text: &str| HeaderValue::from_str(text).map_err(std::io::Error::other);
        Ok(Entry {
            etag: header(&etag(&stamp))?,
            last_modified: header(&httpdate::fmt_http_date(stamp.modified))?,
            content_type: header(&content_type)?,
            path,
            stamp,
            compressible,
            data,
            gzip: OnceLock::new(),
            siblings,
        })
    }

    /// The ETag of this file in `encoding` (each representation has its own).
    pub fn etag_for(&self, encoding: Option<&str>) -> HeaderValue {
        let Some(e) = encoding else {
            return self.etag.clone();
        };
        let base = self.etag.to_str().unwrap_or_default().trim_end_matches('"');
        HeaderValue::from_str(&format!("{base}-{e}\"")).unwrap_or_else(|_| self.etag.clone())
    }

    pub fn gzipped(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                let data = self.data.as_ref()?;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut encoder, data).ok()?;
                encoder.finish().ok().map(Bytes::from)
            })
            .as_ref()
    }
}

#[derive(Default)]
pub struct Cache {
    entries: Mutex<(FxHashMap<String, Arc<Entry>>, usize)>,
}

impl Cache {
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(key)
            .cloned()
    }

    pub fn put(&self, key: String, entry: Arc<Entry>) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, bytes) = &mut *guard;
        let size = entry.data.as_ref().map_or(0, |d| d.len());
        if *bytes + size > CACHE_BYTES || map.len() >= CACHE_ENTRIES {
            map.clear();
            *bytes = 0;
        }
        *bytes += size;
        if let Some(old) = map.insert(key, entry) {
            *bytes -= old.data.as_ref().map_or(0, |d| d.len());
        }
    }

    pub fn remove(&self, key: &str) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, bytes) = &mut *guard;
        if let Some(old) = map.remove(key) {
            *bytes -= old.data.as_ref().map_or(0, |d| d.len());
        }
    }
}
