//! The calls JS makes for every response and every batch, as functions of a
//! server's handle rather than methods of `NativeServer`: around each method
//! call napi-rs registers a borrow of the instance in process-wide maps and
//! releases it after, which cost about 4% of the JS thread's time per
//! hello-world request. A handle is looked up in this thread's own list.
//!
//! `respond`, made once per response, is a plain napi callback besides: the
//! code napi-rs generates opens and closes a borrow scope around every call
//! (a lock and a thread-local list), another 2% of the JS thread.

use std::cell::RefCell;
use std::ptr;
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

/// `respond(server, id, status, headers, body, end)`: start the response; with
/// `end`, also finish it. False when the request is gone.
unsafe extern "C" fn respond(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let answer =
        unsafe { respond_args(env, info) }.map(|(server, id, status, headers, body, end)| {
            let status = u16::try_from(status).unwrap_or(500);
            with_server(server, false, |bridge| {
                bridge.respond(id as u64, status, &headers.0, body_bytes(body), end)
            })
        });
    let mut result = ptr::null_mut();
    match answer {
        Ok(sent) => unsafe { sys::napi_get_boolean(env, sent, &mut result) },
        Err(error) => {
            let message =
                std::ffi::CString::new(format!("respond: {}", error.reason)).unwrap_or_default();
            unsafe { sys::napi_throw_type_error(env, ptr::null(), message.as_ptr()) }
        }
    };
    result
}

type RespondArgs<'a> = (
    u32,
    f64,
    u32,
    Latin1Header,
    Option<Either<String, &'a [u8]>>,
    bool,
);

/// The arguments, converted as the generated code would.
unsafe fn respond_args<'a>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<RespondArgs<'a>> {
    let mut argc = 6;
    let mut argv = [ptr::null_mut(); 6];
    check_status!(unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })?;
    if argc < 6 {
        return Err(Error::new(Status::InvalidArg, "six arguments expected"));
    }
    unsafe {
        Ok((
            u32::from_napi_value(env, argv[0])?,
            f64::from_napi_value(env, argv[1])?,
            u32::from_napi_value(env, argv[2])?,
            Latin1Header::from_napi_value(env, argv[3])?,
            Option::<Either<String, &[u8]>>::from_napi_value(env, argv[4])?,
            bool::from_napi_value(env, argv[5])?,
        ))
    }
}

/// Puts `respond` on the module's exports.
#[napi(module_exports)]
pub fn export_respond(exports: Object) -> Result<()> {
    let env = exports.value().env;
    let mut function = ptr::null_mut();
    check_status!(unsafe {
        sys::napi_create_function(
            env,
            c"respond".as_ptr(),
            7,
            Some(respond),
            ptr::null_mut(),
            &mut function,
        )
    })?;
    check_status!(unsafe {
        sys::napi_set_named_property(env, exports.raw(), c"respond".as_ptr(), function)
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
