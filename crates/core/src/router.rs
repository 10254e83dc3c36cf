//! The mount table: longest prefix wins, matching whole path segments.

use crate::config::{Mount, MountTarget};

pub struct Router {
    /// Longest prefix first; equal prefixes keep their mount order.
    mounts: Vec<Mount>,
}

/// Strip a trailing slash so that `/api/` and `/api` name the same mount.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

impl Router {
    pub fn new(mounts: &[Mount]) -> Router {
        let mut mounts: Vec<Mount> = mounts
            .iter()
            .map(|m| Mount {
                prefix: normalize_prefix(&m.prefix),
                target: m.target.clone(),
            })
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Router { mounts }
    }

    pub fn route(&self, path: &str) -> Option<&MountTarget> {
        self.mounts
            .iter()
            .find(|m| prefix_matches(&m.prefix, path))
            .map(|m| &m.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(prefix: &str, i: u32) -> Mount {
        Mount {
            prefix: prefix.into(),
            target: MountTarget::Js(i),
        }
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let r = Router::new(&[js("/", 0), js("/api/", 1), js("/api/v2", 2)]);
        assert_eq!(r.route("/"), Some(&MountTarget::Js(0)));
        assert_eq!(r.route("/apix"), Some(&MountTarget::Js(0)));
        assert_eq!(r.route("/api"), Some(&MountTarget::Js(1)));
        assert_eq!(r.route("/api/x"), Some(&MountTarget::Js(1)));
        assert_eq!(r.route("/api/v2"), Some(&MountTarget::Js(2)));
        assert_eq!(r.route("/api/v2/users"), Some(&MountTarget::Js(2)));
        assert_eq!(r.route("/api/v20"), Some(&MountTarget::Js(1)));
    }

    #[test]
    fn unmatched_paths_find_nothing() {
        let r = Router::new(&[js("/api", 0)]);
        assert_eq!(r.route("/"), None);
        assert_eq!(r.route("/ap"), None);
        assert_eq!(r.route("*"), None);
    }

    #[test]
    fn equal_prefixes_keep_mount_order() {
        let r = Router::new(&[js("/a", 0), js("/a/", 1)]);
        assert_eq!(r.route("/a/b"), Some(&MountTarget::Js(0)));
    }
}
