//! The calls JS makes for every response and every batch, as functions of a
//! server's handle rather than methods of `NativeServer`: around each method
//! call napi-rs registers a borrow of the instance in process-wide maps and
//! releases it after, which cost about 4% of the JS thread's time per
//! hello-world request. A handle is looked up in this thread's own list.

use std::cell::RefCell;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use skitai_core::Bridge;

use crate::{body_bytes, Latin1Header};

thread_local! {
    /// The servers made on this JS thread, by handle (an index, never reused).
    static SERVERS: RefCell<Vec<Option<Arc<Bridge>>>> = const { RefCell::new(Vec::new()) };
}

/// A handle for `bridge`'s server, valid on this thread until `unregister`.
pub fn register(bridge: Arc<Bridge>) -> u32 {
    SERVERS.with(|servers| {
        let mut servers = servers.borrow_mut();
        servers.push(Some(bridge));
        u32::try_from(servers.len() - 1).unwrap_or(u32::MAX)
    })
}

/// The server is gone (its JS object was collected).
pub fn unregister(handle: u32) {
    SERVERS.with(|servers| {
        if let Some(slot) = servers.borrow_mut().get_mut(handle as usize) {
            *slot = None;
        }
    });
}

/// `call` with the server's bridge, or `gone` for a handle with no server.
/// (Nothing `call` does reaches JS, so the list is not borrowed again meanwhile.)
fn with_server<R>(server: u32, gone: R, call: impl FnOnce(&Arc<Bridge>) -> R) -> R {
    SERVERS.with(|servers| match servers.borrow().get(server as usize) {
        Some(Some(bridge)) => {
            bridge.count_call();
            call(bridge)
        }
        _ => gone,
    })
}

/// Start the response; with `end`, also finish it. False when the request is gone.
#[napi]
pub fn respond(
    server: u32,
    id: f64,
    status: u32,
    headers: Latin1Header,
    body: Option<Either<String, &[u8]>>,
    end: bool,
) -> bool {
    let status = u16::try_from(status).unwrap_or(500);
    with_server(server, false, |bridge| {
        bridge.respond(id as u64, status, &headers.0, body_bytes(body), end)
    })
}

/// The batch listener has run, or the microtasks after responses made outside
/// one: the responses made since the last call are sent together.
#[napi]
pub fn end_batch(server: u32) {
    with_server(server, (), |bridge| bridge.end_batch());
}

/// Queue a chunk of a started response; false means wait for the drain event.
#[napi]
pub fn write(server: u32, id: f64, chunk: Either<String, &[u8]>) -> bool {
    with_server(server, false, |bridge| {
        bridge.write(id as u64, body_bytes(Some(chunk)))
    })
}

/// Finish a started response; `trailers` is a header block like `respond`'s.
#[napi]
pub fn end(
    server: u32,
    id: f64,
    chunk: Option<Either<String, &[u8]>>,
    trailers: Option<Latin1Header>,
) -> bool {
    with_server(server, false, |bridge| {
        bridge.end(
            id as u64,
            body_bytes(chunk),
            trailers.as_ref().map(|t| t.0.as_slice()),
        )
    })
}

/// WebSocket sends, packed (see `skitai_core::websocket::outlets`); returns the
/// sockets whose send queue just went over its limit.
#[napi]
pub fn ws_send(server: u32, packed: &[u8]) -> Vec<f64> {
    with_server(server, Vec::new(), |bridge| {
        bridge
            .outlets
            .send_packed(packed)
            .into_iter()
            .map(|id| id as f64)
            .collect()
    })
}
