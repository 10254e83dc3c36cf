//! The calls JS makes for every response and every batch, as functions of a
//! server's handle rather than methods of `NativeServer`: around each method
//! call napi-rs registers a borrow of the instance in process-wide maps and
//! releases it after, which cost about 4% of the JS thread's time per
//! hello-world request. A handle is looked up in this thread's own list.
//!
//! They are plain napi callbacks besides (`hot`): the code napi-rs generates
//! for a `#[napi]` function opens and closes a borrow scope around every call
//! (a lock and a thread-local list), another 2% of the JS thread. Their
//! arguments are converted by napi-rs's own `FromNapiValue`, as it would.

use std::cell::RefCell;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use skitai_core::Bridge;
use sys::{napi_callback_info, napi_env, napi_value};

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

/// Run a call: `call` gets its N arguments (undefined where fewer were
/// passed); its answer is returned to JS, a failure thrown as a TypeError
/// naming the call.
unsafe fn hot<const N: usize, R: ToNapiValue>(
    env: napi_env,
    info: napi_callback_info,
    name: &str,
    call: impl FnOnce([napi_value; N]) -> Result<R>,
) -> napi_value {
    let mut argc = N;
    let mut args = [ptr::null_mut(); N];
    let answer = check_status!(unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            args.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    })
    .and_then(|()| call(args))
    .and_then(|r| unsafe { R::to_napi_value(env, r) });
    answer.unwrap_or_else(|error| {
        let message =
            std::ffi::CString::new(format!("{name}: {}", error.reason)).unwrap_or_default();
        unsafe { sys::napi_throw_type_error(env, ptr::null(), message.as_ptr()) };
        ptr::null_mut()
    })
}

/// An argument as napi-rs converts it for a `#[napi]` function.
///
/// # Safety
/// `value` is an argument of the call being run on this thread (alive until it returns).
unsafe fn arg<T: FromNapiValue>(env: napi_env, value: napi_value) -> Result<T> {
    unsafe { T::from_napi_value(env, value) }
}

/// `respond(server, id, status, headers, body?, end)`: start the response; with
/// `end`, also finish it. False when the request is gone.
unsafe extern "C" fn respond(env: napi_env, info: napi_callback_info) -> napi_value {
    unsafe {
        hot(
            env,
            info,
            "respond",
            |[server, id, status, headers, body, end]| {
                let (id, status, end) = (
                    arg::<f64>(env, id)?,
                    arg::<u32>(env, status)?,
                    arg(env, end)?,
                );
                let headers: Latin1Header = arg(env, headers)?;
                let body: Option<Either<String, &[u8]>> = arg(env, body)?;
                let status = u16::try_from(status).unwrap_or(500);
                Ok(with_server(arg(env, server)?, false, |bridge| {
                    bridge.respond(id as u64, status, &headers.0, body_bytes(body), end)
                }))
            },
        )
    }
}

/// `endBatch(server)`: the batch listener has run, or the microtasks after
/// responses made outside one: the responses made since the last call are sent together.
unsafe extern "C" fn end_batch(env: napi_env, info: napi_callback_info) -> napi_value {
    unsafe {
        hot(env, info, "endBatch", |[server]| {
            with_server(arg(env, server)?, (), |bridge| bridge.end_batch());
            Ok(())
        })
    }
}

/// `write(server, id, chunk)`: queue a chunk of a started response; false means
/// wait for the drain event.
unsafe extern "C" fn write(env: napi_env, info: napi_callback_info) -> napi_value {
    unsafe {
        hot(env, info, "write", |[server, id, chunk]| {
            let id: f64 = arg(env, id)?;
            let chunk: Either<String, &[u8]> = arg(env, chunk)?;
            Ok(with_server(arg(env, server)?, false, |bridge| {
                bridge.write(id as u64, body_bytes(Some(chunk)))
            }))
        })
    }
}

/// `end(server, id, chunk?, trailers?)`: finish a started response; `trailers`
/// is a header block like `respond`'s.
unsafe extern "C" fn end(env: napi_env, info: napi_callback_info) -> napi_value {
    unsafe {
        hot(env, info, "end", |[server, id, chunk, trailers]| {
            let id: f64 = arg(env, id)?;
            let chunk: Option<Either<String, &[u8]>> = arg(env, chunk)?;
            let trailers: Option<Latin1Header> = arg(env, trailers)?;
            Ok(with_server(arg(env, server)?, false, |bridge| {
                let trailers = trailers.as_ref().map(|t| t.0.as_slice());
                bridge.end(id as u64, body_bytes(chunk), trailers)
            }))
        })
    }
}

/// `wsSend(server, packed)`: WebSocket sends, packed (see
/// `skitai_core::websocket::outlets`); returns the sockets whose send queue
/// just went over its limit.
unsafe extern "C" fn ws_send(env: napi_env, info: napi_callback_info) -> napi_value {
    unsafe {
        hot(env, info, "wsSend", |[server, packed]| {
            let packed: &[u8] = arg(env, packed)?;
            Ok(with_server(arg(env, server)?, Vec::new(), |bridge| {
                let over = bridge.outlets.send_packed(packed);
                over.into_iter().map(|id| id as f64).collect::<Vec<f64>>()
            }))
        })
    }
}

type Callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;

/// Puts the calls on the module's exports.
#[napi(module_exports)]
pub fn export_hot_calls(exports: Object) -> Result<()> {
    let env = exports.value().env;
    let calls: [(&std::ffi::CStr, Callback); 5] = [
        (c"respond", respond),
        (c"endBatch", end_batch),
        (c"write", write),
        (c"end", end),
        (c"wsSend", ws_send),
    ];
    for (name, call) in calls {
        let mut function = ptr::null_mut();
        check_status!(unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(call),
                ptr::null_mut(),
                &mut function,
            )
        })?;
        check_status!(unsafe {
            sys::napi_set_named_property(env, exports.raw(), name.as_ptr(), function)
        })?;
    }
    Ok(())
}
