//! Reverse proxy mounts: an upstream alias (`skitai.alias`) is a set of members
//! behind one keep-alive pool; a mount forwards the path below its prefix to
//! one of them, chosen by the alias's policy. Served entirely here: no JS runs
//! per proxied request.

pub mod balancer;
pub mod body;
pub mod connect;
pub mod forward;
pub mod headers;
pub mod pool;
pub mod upgrade;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;

use crate::config::UpstreamConfig;
use balancer::Balancer;
use connect::Connector;
use pool::Pool;

pub use body::UpstreamBody;
pub use forward::forward;

/// One alias: its members, their pool and its settings.
pub struct Upstream {
    pub name: String,
    balancer: Arc<Balancer>,
    pool: Arc<Pool>,
    timeout: Duration,
    preserve_host: bool,
}

impl Upstream {
    /// Fails on a malformed member or an unreadable CA file.
    pub fn new(config: &UpstreamConfig) -> io::Result<Upstream> {
        let scheme = if config.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let balancer = Balancer::new(&config.members, &scheme, config.policy, config.rest)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("alias {}: {e}", config.name),
                )
            })?;
        let pool = Pool::new(Connector::new(config)?, balancer.members.len());
        Ok(Upstream {
            name: config.name.clone(),
            balancer: Arc::new(balancer),
            pool: Arc::new(pool),
            timeout: config.timeout,
            preserve_host: config.preserve_host,
        })
    }
}

/// A proxy mount: where requests go, and the path prepended to theirs.
pub struct ProxyRoute {
    pub upstream: Arc<Upstream>,
    /// No trailing slash; empty for none.
    pub path: String,
}
