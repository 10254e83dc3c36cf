//! What an engine is told at start-up. Every limit has a default a production user
//! can live with; the TypeScript layer passes overrides.

use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Listen {
    /// Bind a new socket.
    Address {
        host: String,
        port: u16,
        backlog: u32,
    },
    /// Serve a socket the parent process bound (the master of the workers); it
    /// is put in the listening state here, which is harmless if it already is.
    Fd { fd: i32, backlog: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountTarget {
    /// A JavaScript handler, by its index in the TypeScript mount list.
    Js(u32),
    /// Directories served as static files, searched in order.
    Static(Vec<std::path::PathBuf>),
    /// A reverse proxy to `Config::upstreams[upstream]`; the path below the
    /// mount point is appended to `path` (no trailing slash; empty for none).
    Proxy { upstream: usize, path: String },
}

/// How an upstream alias picks a member for each request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    #[default]
    RoundRobin,
    LeastConnections,
}

/// An upstream alias (`skitai.alias`): members load-balanced behind one pool.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// For messages: `@users`.
    pub name: String,
    pub https: bool,
    /// `host[:port]` each; the port defaults to the scheme's.
    pub members: Vec<String>,
    pub policy: Policy,
    /// How long a member that failed to connect or timed out is left out.
    pub rest: Duration,
    pub connect_timeout: Duration,
    /// For the response head, and between reads of its body.
    pub timeout: Duration,
    /// Send the client's `Host` instead of the member's.
    pub preserve_host: bool,
    /// PEM certificates trusted instead of the public roots (HTTPS).
    pub ca_file: Option<std::path::PathBuf>,
}

impl UpstreamConfig {
    pub fn new(name: &str, https: bool, members: Vec<String>) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            https,
            members,
            policy: Policy::RoundRobin,
            rest: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            preserve_host: false,
            ca_file: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Mount {
    pub prefix: String,
    pub target: MountTarget,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Listen,
    /// Tokio worker threads.
    pub threads: usize,
    /// Idle time allowed between requests on a keep-alive connection, and for a
    /// request's header block to arrive.
    pub keep_alive: Duration,
    /// Time a JS handler has to start its response before the engine answers 503.
    pub request_timeout: Duration,
    pub max_header_size: usize,
    pub max_headers: usize,
    pub max_body_size: u64,
    /// Requests waiting for JS at once; past this the engine answers 503.
    pub max_pending: usize,
    pub mounts: Vec<Mount>,
    /// Upstream aliases that proxy mounts refer to by index.
    pub upstreams: Vec<UpstreamConfig>,
    /// `Cache-Control: max-age` for static files, by request path prefix.
    pub max_ages: Vec<(String, u32)>,
    /// Access records for JS (the batch's log bytes); None: no request log.
    pub access_log: Option<AccessLogConfig>,
}

#[derive(Clone, Debug, Default)]
pub struct AccessLogConfig {
    /// `logOff` patterns: `*.css` a suffix, anything else a path prefix.
    pub off: Vec<String>,
    /// The worker's name in records: `W0`, `W1`, ...
    pub worker: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Listen::Address {
                host: "127.0.0.1".into(),
                port: 0,
                backlog: 511,
            },
            threads: 1,
            keep_alive: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_body_size: 64 * 1024 * 1024,
            max_pending: 8192,
            mounts: Vec::new(),
            upstreams: Vec::new(),
            max_ages: Vec::new(),
            access_log: None,
        }
    }
}
