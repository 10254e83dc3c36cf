//! From a request path to a file inside one of the mount's roots, or nothing.
//!
//! The path is percent-decoded exactly once and must then be valid UTF-8 (overlong
//! forms are invalid UTF-8) without NUL or backslashes; segments `.` and `..` and
//! dot-files are refused outright rather than normalised. The file found is then
//! canonicalised and must still lie under the canonical root, so a symlink cannot
//! lead outside it.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// A decoded request path: its segments and whether it ended with '/'.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub segments: Vec<String>,
    pub trailing_slash: bool,
}

pub fn decode(raw: &str) -> Option<Decoded> {
    let text = percent_decode_str(raw).decode_utf8().ok()?;
    if text.contains(['\0', '\\']) {
        return None;
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment.starts_with('.') {
            return None;
        }
        segments.push(segment.to_string());
    }
    Some(Decoded {
        segments,
        trailing_slash: text.ends_with('/'),
    })
}

pub enum Found {
    File {
        /// Canonical, inside `roots[root]`.
        path: PathBuf,
        root: usize,
    },
    /// A directory asked for without its trailing slash.
    Directory,
}

const INDEX_FILES: [&str; 2] = ["index.html", "index.htm"];

/// The canonical form of `candidate`, if it exists inside `root` (canonical).
fn contained(root: &Path, candidate: &Path) -> Option<(PathBuf, Metadata)> {
    let real = std::fs::canonicalize(candidate).ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    Some((real, meta))
}

/// Look the path up in each root in turn. Blocking: run it off the tokio workers.
pub fn find(roots: &[PathBuf], decoded: &Decoded) -> Option<Found> {
    for (at, root) in roots.iter().enumerate() {
        let candidate = decoded.segments.iter().fold(root.clone(), |p, s| p.join(s));
        let Some((real, meta)) = contained(root, &candidate) else {
            continue;
        };
        if meta.is_file() {
            if decoded.trailing_slash {
                continue;
            }
            return Some(Found::File {
                path: real,
                root: at,
            });
        }
        if meta.is_dir() {
            if !decoded.trailing_slash {
                return Some(Found::Directory);
            }
            for index in INDEX_FILES {
                if let Some((path, meta)) = contained(root, &real.join(index)) {
                    if meta.is_file() {
                        return Some(Found::File { path, root: at });
                    }
                }
            }
        }
    }
    None
}

/// The deepest directory inside `root` (canonical) on the way to the
/// decoded path: where the file, or a directory on its way, would appear.
pub fn deepest_directory(root: &Path, decoded: &Decoded) -> Option<PathBuf> {
    let mut dir = root.to_owned();
    for segment in &decoded.segments {
        let next = dir.join(segment);
        if !next.is_dir() {
            break;
        }
        dir = next;
    }
    let real = std::fs::canonicalize(&dir).ok()?;
    real.starts_with(root).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_and_refuses_escapes() {
        assert_eq!(decode("/a/b.css").unwrap().segments, vec!["a", "b.css"]);
        assert!(decode("/a/").unwrap().trailing_slash);
        assert_eq!(decode("/a%20b").unwrap().segments, vec!["a b"]);
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/..%2fx",
            "/a/%2E%2E",
            "/.env",
            "/.git/config",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/x%00",
            "/%c0%ae%c0%ae/x",
            "/%ff",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        // Decoded once: %252e stays the literal name "%2e", a file that does not exist.
        assert_eq!(
            decode("/%252e%252e/x").unwrap().segments,
            vec!["%2e%2e", "x"]
        );
    }
}
