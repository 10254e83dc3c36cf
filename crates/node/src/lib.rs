//! The Node binding: config in, batches of requests out, responses in. No HTTP
//! logic lives here; it converts values and forwards to `skitai_core`.

pub mod hot_calls;
pub mod notify;
mod record_buffer;
#[cfg(unix)]
mod session_loop;
pub mod shared;

use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use record_buffer::RecordBuffer;
use skitai_core::{
    AccessLogConfig, Batch, Bridge, Config, Engine, Listen, Mount, MountTarget, Policy,
    UpstreamConfig,
};

#[napi(object)]
pub struct MountSpec {
    pub prefix: String,
    /// Index of the JS handler for this prefix...
    pub handler: Option<u32>,
    /// ...or directories to serve as static files, searched in order...
    pub roots: Option<Vec<String>>,
    /// ...or an index into `upstreams` to proxy to, with the path prepended.
    pub upstream: Option<u32>,
    pub path: Option<String>,
}

/// An upstream alias (`skitai.alias`).
#[napi(object)]
pub struct UpstreamSpec {
    pub name: String,
    pub https: bool,
    pub members: Vec<String>,
    /// 'round-robin' (default) or 'least-conn'.
    pub policy: Option<String>,
    pub rest_ms: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub preserve_host: Option<bool>,
    pub ca: Option<String>,
}

#[napi(object)]
pub struct MaxAgeSpec {
    pub prefix: String,
    pub seconds: u32,
}

/// Access records for JS: `logOff` patterns and this worker's name (`W0`).
#[napi(object)]
pub struct AccessLogSpec {
    pub off: Vec<String>,
    pub worker: String,
}

#[napi(object)]
pub struct EngineOptions {
    pub host: Option<String>,
    pub port: Option<u32>,
    /// An inherited listening socket, instead of host/port.
    pub fd: Option<i32>,
    pub backlog: Option<u32>,
    pub threads: Option<u32>,
    pub keep_alive_ms: Option<u32>,
    pub request_timeout_ms: Option<u32>,
    pub max_header_size: Option<u32>,
    pub max_headers: Option<u32>,
    pub max_body_size: Option<f64>,
    pub max_pending: Option<u32>,
    pub mounts: Vec<MountSpec>,
    pub upstreams: Option<Vec<UpstreamSpec>>,
    pub max_ages: Option<Vec<MaxAgeSpec>>,
    pub access_log: Option<AccessLogSpec>,
}

/// How an accepted WebSocket runs.
#[napi(object)]
pub struct WebSocketSpec {
    pub max_message_size: f64,
    /// Idle time before closing with 1001; 0 = never.
    pub timeout_ms: u32,
    /// Between keep-alive pings; 0 = none.
    pub ping_ms: u32,
    pub max_buffered: f64,
    /// permessage-deflate was negotiated in the 101's headers.
    pub deflate: bool,
}

#[napi(object)]
pub struct EngineStats {
    /// Requests handed to JS.
    pub requests: f64,
    /// Times the JS thread was woken for a batch.
    pub wakes: f64,
    /// Calls from JS into the addon.
    pub calls: f64,
    /// Requests waiting for or being answered by JS now.
    pub pending: u32,
}

fn config_from(options: EngineOptions) -> Result<Config> {
    let defaults = Config::default();
    let listen = match options.fd {
        Some(fd) => Listen::Fd {
            fd,
            backlog: options.backlog.unwrap_or(511),
        },
        None => Listen::Address {
            host: options.host.unwrap_or_else(|| "0.0.0.0".into()),
            port: u16::try_from(options.port.unwrap_or(5000))
                .map_err(|_| Error::new(Status::InvalidArg, "port must be 0-65535"))?,
            backlog: options.backlog.unwrap_or(511),
        },
    };
    let ms = |v: Option<u32>, d: Duration| v.map_or(d, |ms| Duration::from_millis(ms.into()));
    Ok(Config {
        listen,
        threads: options.threads.map_or(defaults.threads, |t| t as usize),
        keep_alive: ms(options.keep_alive_ms, defaults.keep_alive),
        request_timeout: ms(options.request_timeout_ms, defaults.request_timeout),
        max_header_size: options
            .max_header_size
            .map_or(defaults.max_header_size, |n| n as usize),
        max_headers: options
            .max_headers
            .map_or(defaults.max_headers, |n| n as usize),
        max_body_size: options
            .max_body_size
            .map_or(defaults.max_body_size, |n| n as u64),
        max_pending: options
            .max_pending
            .map_or(defaults.max_pending, |n| n as usize),
        mounts: options
            .mounts
            .into_iter()
            .map(mount_from)
            .collect::<Result<_>>()?,
        upstreams: options
            .upstreams
            .unwrap_or_default()
            .into_iter()
            .map(upstream_from)
            .collect::<Result<_>>()?,
        max_ages: options
            .max_ages
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.prefix, m.seconds))
            .collect(),
        access_log: options.access_log.map(|a| AccessLogConfig {
            off: a.off,
            worker: a.worker,
        }),
    })
}

fn upstream_from(spec: UpstreamSpec) -> Result<UpstreamConfig> {
    let mut config = UpstreamConfig::new(&spec.name, spec.https, spec.members);
    config.policy = match spec.policy.as_deref() {
        None | Some("round-robin") => Policy::RoundRobin,
        Some("least-conn") => Policy::LeastConnections,
        Some(other) => {
            return Err(Error::new(
                Status::InvalidArg,
                format!("alias {}: unknown policy '{other}'", spec.name),
            ))
        }
    };
    let ms = |v: Option<u32>, d: Duration| v.map_or(d, |ms| Duration::from_millis(ms.into()));
    config.rest = ms(spec.rest_ms, config.rest);
    config.connect_timeout = ms(spec.connect_timeout_ms, config.connect_timeout);
    config.timeout = ms(spec.timeout_ms, config.timeout);
    config.preserve_host = spec.preserve_host.unwrap_or(false);
    config.ca_file = spec.ca.map(Into::into);
    Ok(config)
}

fn mount_from(spec: MountSpec) -> Result<Mount> {
    let target = match (spec.handler, spec.roots, spec.upstream) {
        (Some(handler), None, None) => MountTarget::Js(handler),
        (None, Some(roots), None) => {
            MountTarget::Static(roots.into_iter().map(Into::into).collect())
        }
        (None, None, Some(upstream)) => MountTarget::Proxy {
            upstream: upstream as usize,
            path: spec.path.unwrap_or_default(),
        },
        _ => {
            return Err(Error::new(
                Status::InvalidArg,
                format!(
                    "mount '{}' needs one of a handler, roots or an upstream",
                    spec.prefix
                ),
            ))
        }
    };
    Ok(Mount {
        prefix: spec.prefix,
        target,
    })
}

/// A batch's text, handed to JS as a one-byte string without re-encoding.
struct Latin1Text(Vec<u8>);

impl ToNapiValue for Latin1Text {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        check_status!(
            unsafe {
                sys::napi_create_string_latin1(
                    env,
                    val.0.as_ptr().cast(),
                    val.0.len() as isize,
                    &mut out,
                )
            },
            "create batch text"
        )?;
        Ok(out)
    }
}

/// A batch's WebSocket text messages as one JS string; undefined when none.
struct Utf8Text(Vec<u8>);

impl ToNapiValue for Utf8Text {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        if val.0.is_empty() {
            return unsafe { undefined(env) };
        }
        let mut out = ptr::null_mut();
        check_status!(
            unsafe {
                sys::napi_create_string_utf8(
                    env,
                    val.0.as_ptr().cast(),
                    val.0.len() as isize,
                    &mut out,
                )
            },
            "create WebSocket text"
        )?;
        Ok(out)
    }
}

/// A batch's WebSocket binary messages as one Buffer; undefined when none.
struct OneBuffer(Vec<u8>);

impl ToNapiValue for OneBuffer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        if val.0.is_empty() {
            return unsafe { undefined(env) };
        }
        unsafe { buffer_copy(env, &val.0, "copy a batch's bytes into a Buffer") }
    }
}

/// A batch's body buffers, copied into JS-owned Buffers; undefined when none.
struct BufferList(Vec<Bytes>);

impl ToNapiValue for BufferList {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        if val.0.is_empty() {
            return unsafe { undefined(env) };
        }
        let mut out = ptr::null_mut();
        check_status!(unsafe { sys::napi_create_array_with_length(env, val.0.len(), &mut out) })?;
        for (i, bytes) in val.0.iter().enumerate() {
            let buffer = unsafe { buffer_copy(env, bytes, "copy body into a Buffer") }?;
            check_status!(unsafe { sys::napi_set_element(env, out, i as u32, buffer) })?;
        }
        Ok(out)
    }
}

/// `undefined`: what a batch part with nothing in it is handed over as.
unsafe fn undefined(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check_status!(unsafe { sys::napi_get_undefined(env, &mut out) })?;
    Ok(out)
}

/// A JS-owned Buffer with a copy of `bytes`.
unsafe fn buffer_copy(env: sys::napi_env, bytes: &[u8], what: &str) -> Result<sys::napi_value> {
    let (mut out, mut data) = (ptr::null_mut(), ptr::null_mut());
    check_status!(
        unsafe {
            sys::napi_create_buffer_copy(
                env,
                bytes.len(),
                bytes.as_ptr().cast(),
                &mut data,
                &mut out,
            )
        },
        "{}",
        what
    )?;
    Ok(out)
}

fn body_bytes(body: Option<Either<String, &[u8]>>) -> Bytes {
    match body {
        None => Bytes::new(),
        Some(Either::A(text)) => Bytes::from(text.into_bytes()),
        Some(Either::B(bytes)) => Bytes::copy_from_slice(bytes),
    }
}

/// `(text, buffers, wsText, wsBinary, wsMeta, log, logLength) => void`, as JS sees the batch listener.
type BatchListener<'env> = Function<
    'env,
    FnArgs<(
        String,
        Option<Vec<Buffer>>,
        Option<String>,
        Option<Buffer>,
        Option<Buffer>,
        Option<Buffer>,
        u32,
    )>,
    (),
>;

/// WebSocket sessions run on this (the JS) thread's loop, where their
/// messages are handled; `SKITAI_WS_THREAD=engine` keeps them on the engine's
/// threads (to compare the two).
#[cfg(unix)]
fn install_session_loop(env: &Env, bridge: &Arc<Bridge>) {
    if std::env::var("SKITAI_WS_THREAD").as_deref() == Ok("engine") {
        return;
    }
    let mut uv_loop = ptr::null_mut();
    // SAFETY: the env of the call being run, on its thread.
    let status = unsafe { sys::napi_get_uv_event_loop(env.raw(), &mut uv_loop) };
    if status == sys::Status::napi_ok && !uv_loop.is_null() {
        let session_loop = session_loop::JsSessionLoop::for_this_thread(env.raw(), uv_loop.cast());
        bridge.set_session_loop(session_loop);
    }
}

#[napi]
pub struct NativeServer {
    engine: Engine,
    bridge: Arc<Bridge>,
    /// For the calls made per response and per batch (`hot_calls`).
    handle: u32,
}

#[napi]
impl NativeServer {
    /// Bind and serve. `on_batch(text, buffers, wsText, wsBinary, wsMeta, log, logLength)` runs on the JS thread
    /// whenever events are waiting; see `skitai_core::record` for the text format. `wsMeta` starts with an
    /// entry for each WebSocket message (`skitai_core::record::ws_message`), and the batch's access records
    /// are `log`'s first `logLength` bytes: each the same Buffer batch after batch, read before the call returns.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: EngineOptions,
        #[napi(
            ts_arg_type = "(text: string, buffers: Buffer[] | undefined, wsText: string | undefined, wsBinary: Buffer | undefined, wsMeta: Buffer | undefined, log: Buffer | undefined, logLength: number) => void"
        )]
        on_batch: BatchListener,
    ) -> Result<Self> {
        let config = config_from(options)?;
        let bridge = Bridge::new(config.max_pending);
        let source = bridge.clone();
        let mut records: Option<RecordBuffer> = None;
        let mut ws_metas: Option<RecordBuffer> = None;
        let wake = on_batch
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                let Batch {
                    text,
                    buffers,
                    ws_text,
                    ws_binary,
                    ws_meta,
                    log,
                } = source.take();
                let ws_meta = ws_metas
                    .get_or_insert_with(|| RecordBuffer::new(ctx.env.raw()))
                    .fill(&ws_meta)?;
                let log_length = log.len() as u32;
                let log = records
                    .get_or_insert_with(|| RecordBuffer::new(ctx.env.raw()))
                    .fill(&log)?;
                Ok(FnArgs::from((
                    Latin1Text(text),
                    BufferList(buffers),
                    Utf8Text(ws_text),
                    OneBuffer(ws_binary),
                    ws_meta,
                    log,
                    log_length,
                )))
            })?;
        bridge.set_waker(Some(Box::new(move || {
            wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        })));
        let engine = Engine::start(config, bridge.clone()).map_err(|e| {
            // Release the wake function: a server that never listened must not keep
            // the process alive.
            bridge.set_waker(None);
            Error::new(Status::GenericFailure, format!("listen: {e}"))
        })?;
        #[cfg(unix)]
        install_session_loop(&env, &bridge);
        let handle = hot_calls::register(bridge.clone());
        Ok(NativeServer {
            engine,
            bridge,
            handle,
        })
    }

    /// What `respond`, `endBatch`, `write`, `end` and `wsSend` take to name this server.
    #[napi(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.engine.local_addr().port())
    }

    #[napi(getter)]
    pub fn address(&self) -> String {
        self.engine.local_addr().ip().to_string()
    }

    /// The handler failed: an error page if nothing was sent, else cut the response.
    #[napi]
    pub fn fail(&self, id: f64, status: u32) -> bool {
        self.bridge.count_call();
        self.bridge
            .fail(id as u64, u16::try_from(status).unwrap_or(500))
    }

    /// `res.push(path)`: HTTP/2 server push with the request's response.
    #[napi]
    pub fn push(&self, id: f64, path: String) {
        self.bridge.count_call();
        self.bridge.push(id as u64, path);
    }

    /// A WebSocket endpoint accepted the handshake of request `id` (body kind
    /// "u"): answer 101 with `headers` and run the socket. False when it cannot.
    #[napi]
    pub fn ws_accept(&self, id: f64, headers: Latin1Header, socket: WebSocketSpec) -> bool {
        self.bridge.count_call();
        let ms = |v: u32| (v > 0).then(|| Duration::from_millis(v.into()));
        let settings = skitai_core::websocket::Settings {
            max_message: socket.max_message_size as usize,
            idle: ms(socket.timeout_ms),
            ping: ms(socket.ping_ms),
            max_buffered: socket.max_buffered as usize,
            deflate: socket.deflate,
        };
        self.bridge
            .accept_websocket(id as u64, &headers.0, settings)
    }

    /// JS consumed `bytes` of a streamed request body.
    #[napi]
    pub fn ack(&self, id: f64, bytes: u32) {
        self.bridge.count_call();
        self.bridge.ack(id as u64, bytes as usize);
    }

    #[napi]
    pub fn stats(&self) -> EngineStats {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.bridge.stats;
        EngineStats {
            requests: s.requests.load(Relaxed) as f64,
            wakes: s.wakes.load(Relaxed) as f64,
            calls: s.calls.load(Relaxed) as f64,
            pending: u32::try_from(self.bridge.pending_count()).unwrap_or(u32::MAX),
        }
    }

    /// Stop accepting; once open exchanges finish (or `grace_ms` passes) a 'C'
    /// event follows. Like a listening socket, the server keeps the process alive
    /// until then.
    #[napi]
    pub fn close(&self, grace_ms: u32, drain: Option<bool>) {
        self.engine.close(
            Duration::from_millis(grace_ms.into()),
            drain.unwrap_or(false),
        );
    }

    /// Drop the runtime and release the wake function, so that the process can
    /// exit. Call on the 'C' event.
    #[napi]
    pub fn dispose(&self) {
        self.engine.dispose();
        self.bridge.set_waker(None);
    }
}

impl Drop for NativeServer {
    /// On the JS thread, when the server's object is collected.
    fn drop(&mut self) {
        hot_calls::unregister(self.handle);
    }
}

/// A `name\nvalue\n` header block from JS, read as latin1 bytes like node:http.
pub struct Latin1Header(Vec<u8>);

impl TypeName for Latin1Header {
    fn type_name() -> &'static str {
        "string"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl FromNapiValue for Latin1Header {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut len = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_latin1(env, value, ptr::null_mut(), 0, &mut len)
        })?;
        let mut buf = vec![0u8; len + 1];
        let mut written = 0;
        check_status!(unsafe {
            sys::napi_get_value_string_latin1(
                env,
                value,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut written,
            )
        })?;
        buf.truncate(written);
        Ok(Latin1Header(buf))
    }
}

// glibc malloc showed up at ~7% of engine CPU under load; mimalloc measured ahead
// in alternated wrk runs (bench/results). Only Rust allocations use it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
