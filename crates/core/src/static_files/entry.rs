//! What the engine knows of a file: validators, type, and for small files the bytes
//! (and their gzip), cached in memory and known current on every use: by change
//! notices (watch.rs), or else by a stat.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use rustc_hash::FxHashMap;

use super::mime;
use super::watch::Change;

/// Files up to this size are held in memory.
pub const SMALL_FILE: u64 = 128 * 1024;
/// Memory the cache may hold in file bytes before it starts over.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
const CACHE_ENTRIES: usize = 16 * 1024;

/// Identity of a file version: size, modification time and inode, and the
/// inode's change time, which every write moves and no one can set back (a
/// rewrite that keeps size and mtime still shows).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    pub len: u64,
    pub modified: SystemTime,
    pub inode: u64,
    changed: (i64, i64),
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        let (inode, changed) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), (meta.ctime(), meta.ctime_nsec()))
        };
        #[cfg(not(unix))]
        let (inode, changed) = (0, (0, 0));
        Stamp {
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            inode,
            changed,
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
    pub content_type: HeaderValue,
    /// The whole file's `200` headers as stored (no range, no coding), with
    /// the engine's `Server`: every answer starts from a clone of these (most
    /// need nothing more), not from a build of them field by field.
    pub plain: HeaderMap,
    pub compressible: bool,
    pub data: Option<Bytes>,
    /// gzip of `data`, made on first demand.
    pub gzip: OnceLock<Option<Bytes>>,
    pub siblings: Vec<Sibling>,
    /// Its directories are watched (watch.rs): no stat per request.
    pub watched: bool,
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
    pub fn load(path: PathBuf, meta: &Metadata, watched: bool) -> std::io::Result<Entry> {
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
        let compressible = mime::compressible(content_type);
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
        let etag = header(&etag(&stamp))?;
        let last_modified = header(&httpdate::fmt_http_date(stamp.modified))?;
        let content_type = HeaderValue::from_static(content_type);
        let mut plain = HeaderMap::with_capacity(6);
        plain.insert(header::ETAG, etag.clone());
        plain.insert(header::LAST_MODIFIED, last_modified);
        if compressible {
            plain.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        plain.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        plain.insert(header::CONTENT_TYPE, content_type.clone());
        plain.insert(header::SERVER, HeaderValue::from_static(crate::SERVER_NAME));
        Ok(Entry {
            etag,
            content_type,
            plain,
            path,
            stamp,
            compressible,
            data,
            gzip: OnceLock::new(),
            siblings,
            watched,
        })
    }

    /// The files this entry was read from.
    fn paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.path.as_path()).chain(self.siblings.iter().map(|s| s.path.as_path()))
    }

    /// The ETag of this file in a content coding (each representation has its own).
    pub fn coded_etag(&self, e: &str) -> HeaderValue {
        let base = self.etag.to_str().unwrap_or_default().trim_end_matches('"');
        HeaderValue::from_str(&format!("{base}-{e}\"")).unwrap_or_else(|_| self.etag.clone())
    }

    /// The gzipped bytes, if they were made already (`gzipped` makes them).
    pub fn gzipped_if_made(&self) -> Option<&Bytes> {
        self.gzip.get().and_then(Option::as_ref)
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

/// The entries by request path, and which files they were read from.
#[derive(Default)]
pub struct Cache {
    /// Read-locked for lookups (any number of engine threads at once), written
    /// for loads and changes.
    inner: RwLock<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    entries: FxHashMap<String, Arc<Entry>>,
    /// Paths known to have no file, or a directory, while nothing changes in
    /// the watched directories.
    known: FxHashMap<String, Known>,
    /// File bytes held.
    bytes: usize,
    /// The keys of the entries read from each file (an entry's own and its siblings').
    keys: FxHashMap<PathBuf, Vec<String>>,
    /// Files being read for an entry: its load, its path (None: looked for and
    /// not found, which any change may undo), and whether a change to it was
    /// noticed meanwhile (then what was read may be stale and is not kept).
    loads: Vec<(u64, Option<PathBuf>, bool)>,
    next_load: u64,
}

impl CacheInner {
    fn remove(&mut self, key: &str) {
        let Some(old) = self.entries.remove(key) else {
            return;
        };
        self.bytes -= old.data.as_ref().map_or(0, |d| d.len());
        for path in old.paths() {
            if let Some(keys) = self.keys.get_mut(path) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.keys.remove(path);
                }
            }
        }
    }

    fn stale_path(&mut self, path: &Path) {
        if let Some(keys) = self.keys.remove(path) {
            for key in keys {
                self.remove(&key);
            }
        }
        for (_, loading, stale) in &mut self.loads {
            *stale |= loading.as_deref().is_none_or(|p| p == path);
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.known.clear();
        self.keys.clear();
        self.bytes = 0;
    }
}

/// What a request path holds when it holds no file.
#[derive(Clone, Copy)]
pub enum Known {
    Missing,
    /// A directory (asked for without its slash).
    Directory,
}

/// What the cache knows of a request path: with an entry, what was made of it.
pub enum Cached<R> {
    Entry(R),
    Known(Known),
    Unknown,
}

/// What a load found.
pub enum Loaded<'a> {
    Entry(&'a Arc<Entry>),
    /// No file, and the directories on its way are watched.
    Known(Known),
    /// Nothing to keep.
    Nothing,
}

impl Cache {
    fn inner(&self) -> RwLockWriteGuard<'_, CacheInner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, CacheInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.read().entries.get(key).cloned()
    }

    /// What the cache knows of `key`; an entry is lent to `answer` while the
    /// cache is read-locked, so an answer made at once takes no reference count.
    pub fn lookup<R>(&self, key: &str, answer: impl FnOnce(&Arc<Entry>) -> R) -> Cached<R> {
        let inner = self.read();
        if let Some(entry) = inner.entries.get(key) {
            return Cached::Entry(answer(entry));
        }
        inner
            .known
            .get(key)
            .map_or(Cached::Unknown, |known| Cached::Known(*known))
    }

    /// A file is about to be read for an entry (None: looked for): changes
    /// noticed from now on until `finish_load` keep what is read out.
    pub fn begin_load(&self, path: Option<&Path>) -> u64 {
        let mut inner = self.inner();
        inner.next_load += 1;
        let id = inner.next_load;
        inner.loads.push((id, path.map(Path::to_owned), false));
        id
    }

    /// The load ended; what it found is kept unless a change was noticed meanwhile.
    pub fn finish_load(&self, load: u64, key: &str, loaded: Loaded<'_>) {
        let mut guard = self.inner();
        let inner = &mut *guard;
        let Some(at) = inner.loads.iter().position(|(id, ..)| *id == load) else {
            return;
        };
        let (_, _, stale) = inner.loads.swap_remove(at);
        if stale {
            return;
        }
        let size = match &loaded {
            Loaded::Entry(entry) => entry.data.as_ref().map_or(0, |d| d.len()),
            Loaded::Known(_) => 0,
            Loaded::Nothing => return,
        };
        if inner.bytes + size > CACHE_BYTES
            || inner.entries.len() + inner.known.len() >= CACHE_ENTRIES
        {
            inner.clear();
        }
        inner.remove(key);
        let entry = match loaded {
            Loaded::Entry(entry) => entry,
            Loaded::Known(known) => {
                inner.known.insert(key.to_owned(), known);
                return;
            }
            Loaded::Nothing => return,
        };
        inner.known.remove(key);
        inner.bytes += size;
        for path in entry.paths() {
            inner
                .keys
                .entry(path.to_owned())
                .or_default()
                .push(key.to_owned());
        }
        inner.entries.insert(key.to_owned(), entry.clone());
    }

    pub fn remove(&self, key: &str) {
        self.inner().remove(key);
    }

    /// Drop what a change notice says may be stale.
    pub fn stale(&self, change: Change) {
        let mut inner = self.inner();
        // Whatever changed may be where a missing file would be, or a directory was.
        inner.known.clear();
        match change {
            Change::Path(path) => {
                inner.stale_path(&path);
                // A precompressed sibling changed, went or appeared.
                let name = path.as_os_str().as_encoded_bytes();
                if let Some(base) = name
                    .strip_suffix(b".gz")
                    .or_else(|| name.strip_suffix(b".br"))
                {
                    // SAFETY: cut from an OsStr right before an ASCII suffix.
                    let base = unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(base) };
                    inner.stale_path(Path::new(base));
                }
            }
            Change::Everything => {
                inner.clear();
                for (_, _, stale) in &mut inner.loads {
                    *stale = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &Path) -> Arc<Entry> {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file =
            std::env::temp_dir().join(format!("skitai-entry-{}-{n}.txt", std::process::id()));
        std::fs::write(&file, "bytes").unwrap();
        let mut entry =
            Entry::load(file.clone(), &std::fs::metadata(&file).unwrap(), true).unwrap();
        std::fs::remove_file(&file).unwrap();
        entry.path = path.to_owned();
        Arc::new(entry)
    }

    #[test]
    fn a_change_noticed_while_a_file_loads_keeps_its_entry_out() {
        let cache = Cache::default();
        let path = Path::new("/srv/site/a.txt");
        let load = cache.begin_load(Some(path));
        cache.stale(Change::Path(path.to_owned()));
        cache.finish_load(load, "a.txt", Loaded::Entry(&entry(path)));
        assert!(
            cache.get("a.txt").is_none(),
            "read before the change was noticed"
        );

        let load = cache.begin_load(Some(path));
        cache.stale(Change::Path(PathBuf::from("/srv/site/other.txt")));
        cache.finish_load(load, "a.txt", Loaded::Entry(&entry(path)));
        assert!(cache.get("a.txt").is_some(), "another file's change");
    }

    #[test]
    fn a_notice_drops_every_entry_read_from_that_file_or_its_siblings() {
        let cache = Cache::default();
        let path = Path::new("/srv/site/index.html");
        for key in ["", "index.html"] {
            let load = cache.begin_load(Some(path));
            cache.finish_load(load, key, Loaded::Entry(&entry(path)));
        }
        assert!(cache.get("").is_some() && cache.get("index.html").is_some());
        cache.stale(Change::Path(PathBuf::from("/srv/site/index.html.gz")));
        assert!(cache.get("").is_none() && cache.get("index.html").is_none());

        let load = cache.begin_load(Some(path));
        cache.finish_load(load, "index.html", Loaded::Entry(&entry(path)));
        cache.stale(Change::Everything);
        assert!(cache.get("index.html").is_none());
    }

    #[test]
    fn a_miss_or_a_directory_is_kept_until_anything_changes() {
        let cache = Cache::default();
        let missing =
            |cache: &Cache| matches!(cache.lookup("api/x", |_| ()), Cached::Known(Known::Missing));
        let load = cache.begin_load(None);
        cache.finish_load(load, "api/x", Loaded::Known(Known::Missing));
        assert!(missing(&cache));
        cache.stale(Change::Path(PathBuf::from("/srv/site/unrelated.txt")));
        assert!(!missing(&cache), "a file may have been made there");

        let load = cache.begin_load(None);
        cache.stale(Change::Path(PathBuf::from("/srv/site/unrelated.txt")));
        cache.finish_load(load, "api/x", Loaded::Known(Known::Missing));
        assert!(!missing(&cache), "looked for while something changed");

        let load = cache.begin_load(None);
        cache.finish_load(load, "docs", Loaded::Known(Known::Directory));
        assert!(matches!(
            cache.lookup("docs", |_| ()),
            Cached::Known(Known::Directory)
        ));
        cache.stale(Change::Path(PathBuf::from("/srv/site/docs")));
        assert!(matches!(cache.lookup("docs", |_| ()), Cached::Unknown));
    }
}
