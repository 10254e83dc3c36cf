//! The mount table: longest prefix wins, matching whole path segments. Everything
//! mounted at one prefix forms a group: its static directories are tried first for
//! GET and HEAD, then its first app.

use std::sync::Arc;

use http::HeaderValue;

use crate::config::{Mount, MountTarget};
use crate::proxy::{ProxyRoute, Upstream};
use crate::static_files::StaticSite;

pub struct Group {
    pub prefix: String,
    pub sites: Vec<Arc<StaticSite>>,
    /// The JS handler serving what the sites do not.
    pub app: Option<u32>,
    /// Or an upstream alias that does.
    pub proxy: Option<Arc<ProxyRoute>>,
}

pub struct Router {
    /// Longest prefix first; shared with the exchanges that outlive a routing call.
    groups: Vec<Arc<Group>>,
    /// Prefix and its `Cache-Control` value, longest prefix first.
    max_ages: Vec<(String, HeaderValue)>,
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

pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

impl Router {
    /// Fails if a static root does not exist or a proxy mount names no upstream.
    pub fn new(
        mounts: &[Mount],
        max_ages: &[(String, u32)],
        upstreams: &[Arc<Upstream>],
    ) -> std::io::Result<Router> {
        let mut groups: Vec<Group> = Vec::new();
        for mount in mounts {
            let prefix = normalize_prefix(&mount.prefix);
            let index = match groups.iter().position(|g| g.prefix == prefix) {
                Some(i) => i,
                None => {
                    groups.push(Group {
                        prefix,
                        sites: Vec::new(),
                        app: None,
                        proxy: None,
                    });
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            match &mount.target {
                MountTarget::Js(handler) => {
                    group.app.get_or_insert(*handler);
                }
                MountTarget::Static(roots) => group.sites.push(Arc::new(StaticSite::new(roots)?)),
                MountTarget::Proxy { upstream, path } => {
                    let upstream = upstreams.get(*upstream).ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("mount '{}': no upstream {upstream}", group.prefix),
                        )
                    })?;
                    group.proxy.get_or_insert_with(|| {
                        Arc::new(ProxyRoute {
                            upstream: upstream.clone(),
                            path: path.trim_end_matches('/').to_string(),
                        })
                    });
                }
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.prefix.len()));
        let mut max_ages: Vec<(String, HeaderValue)> = max_ages
            .iter()
            .map(|(p, s)| {
                (
                    normalize_prefix(p),
                    HeaderValue::from_maybe_shared(format!("max-age={s}"))
                        .unwrap_or(HeaderValue::from_static("no-cache")),
                )
            })
            .collect();
        max_ages.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let groups = groups.into_iter().map(Arc::new).collect();
        Ok(Router { groups, max_ages })
    }

    pub fn route(&self, path: &str) -> Option<&Arc<Group>> {
        self.groups.iter().find(|g| prefix_matches(&g.prefix, path))
    }

    /// The Cache-Control value for a static file at `path`.
    pub fn max_age(&self, path: &str) -> Option<&HeaderValue> {
        self.max_ages
            .iter()
            .find(|(p, _)| prefix_matches(p, path))
            .map(|(_, v)| v)
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

    fn app(r: &Router, path: &str) -> Option<u32> {
        r.route(path).and_then(|g| g.app)
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let r = Router::new(&[js("/", 0), js("/api/", 1), js("/api/v2", 2)], &[], &[]).unwrap();
        assert_eq!(app(&r, "/"), Some(0));
        assert_eq!(app(&r, "/apix"), Some(0));
        assert_eq!(app(&r, "/api"), Some(1));
        assert_eq!(app(&r, "/api/x"), Some(1));
        assert_eq!(app(&r, "/api/v2"), Some(2));
        assert_eq!(app(&r, "/api/v2/users"), Some(2));
        assert_eq!(app(&r, "/api/v20"), Some(1));
    }

    #[test]
    fn unmatched_paths_find_nothing() {
        let r = Router::new(&[js("/api", 0)], &[], &[]).unwrap();
        assert!(r.route("/").is_none());
        assert!(r.route("/ap").is_none());
        assert!(r.route("*").is_none());
    }

    #[test]
    fn equal_prefixes_keep_mount_order() {
        let r = Router::new(&[js("/a", 0), js("/a/", 1)], &[], &[]).unwrap();
        assert_eq!(app(&r, "/a/b"), Some(0));
    }
}
