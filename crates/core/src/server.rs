//! An engine: a tokio runtime, a listening socket and its accept loop.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, watch, Notify};

use crate::access_log::AccessLog;
use crate::bridge::Bridge;
use crate::config::{Config, Listen};
use crate::connection::{self, Closing, ShutdownSignal};
use crate::router::Router;
use crate::service::Shared;
use crate::socket::Listener;

const BLOCKING_THREADS: usize = 8;

/// What runs the engine's tasks.
enum Running {
    /// Several worker threads, the runtime's own.
    Pool(Runtime),
    /// One thread of ours drives a current-thread runtime: no work stealing, no
    /// cross-thread queues, for the common one-thread case. Sending (or dropping)
    /// stops it.
    Single(oneshot::Sender<()>),
}

pub struct Engine {
    runtime: Mutex<Option<Running>>,
    shutdown: watch::Sender<Option<Closing>>,
    local_addr: SocketAddr,
}

fn bind(listen: &Listen) -> io::Result<StdListener> {
    let listener: StdListener = match listen {
        Listen::Address {
            host,
            port,
            backlog,
        } => {
            let addr = (host.as_str(), *port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("cannot resolve {host}"),
                    )
                })?;
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            if addr.is_ipv6() {
                // Like node:http, '::' also accepts IPv4 clients.
                let _ = socket.set_only_v6(false);
            }
            socket.bind(&addr.into())?;
            socket.listen(i32::try_from(*backlog).unwrap_or(i32::MAX))?;
            socket.into()
        }
        #[cfg(unix)]
        Listen::Fd { fd, backlog } => {
            use std::os::fd::FromRawFd;
            // SAFETY: the parent process handed us this descriptor to own.
            let socket = unsafe { Socket::from_raw_fd(*fd) };
            socket.listen(i32::try_from(*backlog).unwrap_or(i32::MAX))?;
            socket.into()
        }
        #[cfg(not(unix))]
        Listen::Fd { .. } => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "fd listen needs unix",
            ))
        }
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Counts live connections so that close can wait for the last one.
#[derive(Default)]
struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

struct Live(Arc<Tracker>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> Live {
        self.live.fetch_add(1, Ordering::AcqRel);
        Live(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, signal: ShutdownSignal) {
    let tracker = Arc::new(Tracker::default());
    let mut shutdown = signal.clone();
    let closing = async move {
        let closing = shutdown
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|c| *c);
        closing.map(|c| c.grace).unwrap_or_default()
    };
    let mut closing = std::pin::pin!(closing);
    let grace = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let live = tracker.enter();
                    let counted = shared.access_log.as_ref().map(|log| log.connections.clone());
                    if let Some(count) = &counted {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    let conn = connection::serve(stream, peer, shared.clone(), signal.clone());
                    tokio::spawn(async move {
                        conn.await;
                        if let Some(count) = counted {
                            count.fetch_sub(1, Ordering::Relaxed);
                        }
                        drop(live);
                    });
                }
                // Out of descriptors or a connection reset before accept: back off a
                // little instead of spinning, then keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            grace = &mut closing => break grace,
        }
    };
    drop(listener);
    // WebSockets are not exchanges that end by themselves: close them (1001).
    shared.bridge.outlets.shutdown_all();
    let _ = tokio::time::timeout(grace, tracker.wait_idle()).await;
    shared.bridge.closed();
}

impl Engine {
    /// Bind and start serving; requests for JS go to `bridge`, whose waker must be set.
    pub fn start(config: Config, bridge: Arc<Bridge>) -> io::Result<Engine> {
        let listener = bind(&config.listen)?;
        let local_addr = listener.local_addr()?;
        let parking = bridge.clone();
        let single = config.threads <= 1;
        let mut builder = if single {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(config.threads);
            builder
        };
        let runtime = builder
            .thread_name("skitai-io")
            // File reads and lookups hit the page cache; a few threads keep up, while
            // tokio's default of 512 let each hold its own allocator arena.
            .max_blocking_threads(BLOCKING_THREADS)
            .on_thread_start(crate::sched::batch_class)
            .on_thread_park(move || parking.wake_if_due())
            .enable_all()
            .build()?;
        if single {
            bridge.relay_replies_through(runtime.handle().clone());
        }
        let listener = {
            let _entered = runtime.enter();
            Listener::new(listener)?
        };
        let upstreams = {
            let _entered = runtime.enter();
            config
                .upstreams
                .iter()
                .map(|u| crate::proxy::Upstream::new(u).map(Arc::new))
                .collect::<io::Result<Vec<_>>>()?
        };
        runtime.spawn(Bridge::expire_requests(
            Arc::downgrade(&bridge),
            config.request_timeout,
        ));
        let access_log = config
            .access_log
            .as_ref()
            .map(|c| Arc::new(AccessLog::new(c, bridge.clone())));
        let shared = Arc::new(Shared {
            http1: connection::http1_builder(&config),
            h2: crate::h2_connection::builder(&config),
            router: Router::new(&config.mounts, &config.max_ages, &upstreams)?,
            bridge,
            access_log,
            config,
        });
        let (shutdown, signal) = watch::channel(None);
        let serving = accept_loop(listener, shared, signal);
        let running = if single {
            let (stop, stopped) = oneshot::channel();
            std::thread::Builder::new()
                .name("skitai-io".into())
                .spawn(move || {
                    crate::sched::batch_class();
                    runtime.block_on(async move {
                        let mut stopped = stopped;
                        tokio::select! {
                            () = serving => {}
                            _ = &mut stopped => return,
                        }
                        // Closed: what is left runs until the engine is disposed.
                        let _ = stopped.await;
                    });
                    runtime.shutdown_background();
                })?;
            Running::Single(stop)
        } else {
            runtime.spawn(serving);
            Running::Pool(runtime)
        };
        Ok(Engine {
            runtime: Mutex::new(Some(running)),
            shutdown,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let open exchanges finish for up to `grace`, then emit the
    /// bridge's closed event.
    pub fn close(&self, grace: Duration, drain: bool) {
        self.shutdown.send_if_modified(|state| {
            state.is_none() && state.replace(Closing { grace, drain }).is_none()
        });
    }

    /// Drop the runtime and whatever still runs on it. Never blocks.
    pub fn dispose(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match runtime {
            Some(Running::Pool(runtime)) => runtime.shutdown_background(),
            Some(Running::Single(stop)) => {
                let _ = stop.send(());
            }
            None => {}
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.dispose();
    }
}
