//! Reverse proxy mounts: an upstream alias (`skitai.alias`) is a set of members
//! behind one keep-alive pool; a mount forwards the path below its prefix to
//! one of them, chosen by the alias's policy. Served entirely here: no JS runs
//! per proxied request.

pub mod balancer;
pub mod body;
pub mod client;
pub mod forward;
pub mod headers;
pub mod upgrade;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;

use crate::config::UpstreamConfig;
use balancer::Balancer;
use client::UpstreamClient;

pub use body::UpstreamBody;
pub use forward::forward;

/// One alias: its members, their pool and its settings.
pub struct Upstream {
    pub name: String,
    scheme: Scheme,
    balancer: Arc<Balancer>,
    client: UpstreamClient,
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
        Ok(Upstream {
            name: config.name.clone(),
            scheme,
            balancer: Arc::new(balancer),
            client: client::build(config)?,
            timeout: config.timeout,
            preserve_host: config.preserve_host,
        })
    }
}

/// A proxy mount: where requests go, and the path prepended to theirs.
#[derive(Clone)]
pub struct ProxyRoute {
    pub upstream: Arc<Upstream>,
    /// No trailing slash; empty for none.
    pub path: String,
}
