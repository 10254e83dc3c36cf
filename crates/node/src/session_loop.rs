//! WebSocket sessions on the JS thread's own loop (libuv), as uWebSockets.js
//! runs its sockets: the socket is watched by a libuv poll handle, and the
//! session (skitai_core's, unchanged) is polled there, so that a message read
//! and its handler's answer never cross between threads. Sessions still use
//! the engine runtime's timers and blocking pool (its context is entered while
//! they run); those wake them through an async handle. Unix only: the libuv
//! symbols come from the node executable.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use skitai_core::socket::{Readiness, Socket};
use skitai_core::websocket::{SessionLoop, SessionStart};
use skitai_core::Bridge;

type PollCallback = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type HandleCallback = unsafe extern "C" fn(*mut c_void);

extern "C" {
    fn uv_poll_init(uv_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCallback) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_async_init(uv_loop: *mut c_void, handle: *mut c_void, cb: HandleCallback) -> c_int;
    fn uv_async_send(handle: *mut c_void) -> c_int;
    fn uv_check_init(uv_loop: *mut c_void, handle: *mut c_void) -> c_int;
    fn uv_check_start(handle: *mut c_void, cb: HandleCallback) -> c_int;
    fn uv_close(handle: *mut c_void, cb: Option<HandleCallback>);
    fn uv_unref(handle: *mut c_void);
}

const UV_READABLE: c_int = 1;
const UV_WRITABLE: c_int = 2;

/// Room for a libuv handle (uv_poll_t, the largest used here, is 160 bytes
/// on 64-bit Linux). Its first field is libuv's `data` pointer.
#[repr(C, align(16))]
struct Handle([u8; 256]);

impl Handle {
    fn alloc(data: *mut c_void) -> *mut c_void {
        let handle = Box::into_raw(Box::new(Handle([0; 256]))).cast::<c_void>();
        // SAFETY: `data` is the first field of every uv_handle_t.
        unsafe { *handle.cast::<*mut c_void>() = data };
        handle
    }

    /// SAFETY: `handle` was made by `Handle::alloc`.
    unsafe fn data(handle: *mut c_void) -> *mut c_void {
        unsafe { *handle.cast::<*mut c_void>() }
    }
}

/// Frees a closed handle (and, for a socket's, its watch).
unsafe extern "C" fn free_closed(handle: *mut c_void) {
    unsafe {
        let watch = Handle::data(handle).cast::<Watch>();
        if !watch.is_null() {
            drop(Arc::from_raw(watch));
        }
        drop(Box::from_raw(handle.cast::<Handle>()));
    }
}

/// A session handed over: its bridge, socket, how to start it, and the
/// runtime whose timers and blocking pool it uses.
type Adopted = (Arc<Bridge>, TcpStream, SessionStart, tokio::runtime::Handle);

/// What reaches the loop from other threads.
struct Shared {
    /// Sessions to start, handed over by the engine's threads.
    adopted: Mutex<Vec<Adopted>>,
    /// Tasks woken off the loop's thread.
    woken: Mutex<Vec<usize>>,
    /// Socket handles to close, dropped off the loop's thread.
    closing: Mutex<Vec<usize>>,
    /// The uv_async_t that wakes the loop; 0 once the loop has closed it.
    wake: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn wake_loop(&self) {
        let wake = lock(&self.wake);
        if *wake != 0 {
            // SAFETY: open (it closes under this lock); uv_async_send is thread-safe.
            unsafe { uv_async_send(*wake as *mut c_void) };
        }
    }
}

struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    waker: Waker,
    runtime: tokio::runtime::Handle,
    bridge: Arc<Bridge>,
}

/// The loop's side, on its thread only.
struct Local {
    uv_loop: *mut c_void,
    check: usize,
    shared: Arc<Shared>,
    tasks: Vec<Option<Task>>,
    free: Vec<usize>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// Tasks woken on the loop's thread.
    static READY: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
    /// Inside one of the loop's own callbacks: tasks woken now run before it
    /// blocks again, without a wake of the loop.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// This thread runs a session loop.
    static ON_LOOP: Cell<bool> = const { Cell::new(false) };
}

struct TaskWaker {
    id: usize,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if ON_LOOP.with(Cell::get) {
            READY.with(|r| r.borrow_mut().push_back(self.id));
            if !IN_CALLBACK.with(Cell::get) {
                self.shared.wake_loop();
            }
        } else {
            lock(&self.shared.woken).push(self.id);
            self.shared.wake_loop();
        }
    }
}

/// The loop of this (the JS) thread, made on first use.
pub struct JsSessionLoop {
    shared: Arc<Shared>,
}

impl JsSessionLoop {
    /// For the thread of `env`, whose libuv loop is `uv_loop`; the same one
    /// each time. It goes with the env (a worker thread's loop must close with
    /// no handle open).
    pub fn for_this_thread(env: napi::sys::napi_env, uv_loop: *mut c_void) -> Arc<JsSessionLoop> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = local.get_or_insert_with(|| {
                ON_LOOP.with(|on| on.set(true));
                let wake = Handle::alloc(ptr::null_mut());
                let check = Handle::alloc(ptr::null_mut());
                // SAFETY: fresh handle memory, initialised and started on this
                // (the loop's) thread; neither keeps the process alive.
                unsafe {
                    uv_async_init(uv_loop, wake, on_wake);
                    uv_unref(wake);
                    uv_check_init(uv_loop, check);
                    uv_check_start(check, on_check);
                    uv_unref(check);
                    napi::sys::napi_add_env_cleanup_hook(env, Some(close_loop), ptr::null_mut());
                }
                Local {
                    uv_loop,
                    check: check as usize,
                    shared: Arc::new(Shared {
                        adopted: Mutex::default(),
                        woken: Mutex::default(),
                        closing: Mutex::default(),
                        wake: Mutex::new(wake as usize),
                    }),
                    tasks: Vec::new(),
                    free: Vec::new(),
                }
            });
            Arc::new(JsSessionLoop {
                shared: local.shared.clone(),
            })
        })
    }
}

impl SessionLoop for JsSessionLoop {
    fn adopt(&self, bridge: Arc<Bridge>, stream: TcpStream, start: SessionStart) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        lock(&self.shared.adopted).push((bridge, stream, start, runtime));
        self.shared.wake_loop();
    }
}

/// The env is going (the thread's loop is closing): its sessions end, and
/// every handle of this loop is closed.
unsafe extern "C" fn close_loop(_arg: *mut c_void) {
    let Some(local) = LOCAL.with(|l| l.borrow_mut().take()) else {
        return;
    };
    // Dropping the sessions drops their sockets, which close their handles.
    drop(local.tasks);
    for handle in std::mem::take(&mut *lock(&local.shared.closing)) {
        // SAFETY: socket handles dropped off this thread, still open.
        unsafe { close_socket_handle(handle as *mut c_void) };
    }
    // SAFETY: this loop's own handles, on its thread; freed once closed.
    unsafe {
        let mut wake = lock(&local.shared.wake);
        uv_close(*wake as *mut c_void, Some(free_closed));
        *wake = 0;
        uv_close(local.check as *mut c_void, Some(free_closed));
    }
    ON_LOOP.with(|on| on.set(false));
}

/// From other threads: sessions to start, tasks to run, handles to close.
unsafe extern "C" fn on_wake(_handle: *mut c_void) {
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let Some(local) = local.as_mut() else { return };
        let adopted = std::mem::take(&mut *lock(&local.shared.adopted));
        for (bridge, stream, start, runtime) in adopted {
            let Some(watch) = Watch::start(local.uv_loop, &stream) else {
                continue;
            };
            let watched = Watched {
                watch,
                shared: local.shared.clone(),
            };
            let socket = Socket::on_loop(stream, Box::new(watched));
            let future = {
                let _entered = runtime.enter();
                start(socket)
            };
            local.spawn(future, runtime, bridge);
        }
        let woken = std::mem::take(&mut *lock(&local.shared.woken));
        READY.with(|r| r.borrow_mut().extend(woken));
        for handle in std::mem::take(&mut *lock(&local.shared.closing)) {
            // SAFETY: a socket handle whose watch was dropped off this thread.
            unsafe { close_socket_handle(handle as *mut c_void) };
        }
    });
    run_ready();
}

/// After the loop's poll phase: the sessions its sockets woke.
unsafe extern "C" fn on_check(_handle: *mut c_void) {
    run_ready();
}

impl Local {
    fn spawn(
        &mut self,
        future: Pin<Box<dyn Future<Output = ()>>>,
        runtime: tokio::runtime::Handle,
        bridge: Arc<Bridge>,
    ) {
        let id = self.free.pop().unwrap_or_else(|| {
            self.tasks.push(None);
            self.tasks.len() - 1
        });
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            shared: self.shared.clone(),
        }));
        self.tasks[id] = Some(Task {
            future,
            waker,
            runtime,
            bridge,
        });
        READY.with(|r| r.borrow_mut().push_back(id));
    }
}

/// Poll every woken task until none is left, then wake JS for what they
/// queued, as the engine's threads do before they park.
fn run_ready() {
    IN_CALLBACK.with(|c| c.set(true));
    skitai_core::websocket::ON_SESSION_LOOP.with(|on| on.set(true));
    let mut bridges: Vec<Arc<Bridge>> = Vec::new();
    while let Some(id) = READY.with(|r| r.borrow_mut().pop_front()) {
        // Out of the slab while it runs: a task may start or wake others.
        let Some(mut task) = LOCAL.with(|l| {
            l.borrow_mut()
                .as_mut()
                .and_then(|l| l.tasks.get_mut(id)?.take())
        }) else {
            continue;
        };
        let done = {
            let _entered = task.runtime.enter();
            let mut cx = Context::from_waker(&task.waker);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                task.future.as_mut().poll(&mut cx)
            }))
            .map_or(true, |poll| poll.is_ready())
        };
        if !bridges.iter().any(|b| Arc::ptr_eq(b, &task.bridge)) {
            bridges.push(task.bridge.clone());
        }
        LOCAL.with(|l| {
            if let Some(l) = l.borrow_mut().as_mut() {
                if done {
                    l.free.push(id);
                } else {
                    l.tasks[id] = Some(task);
                }
            }
        });
    }
    IN_CALLBACK.with(|c| c.set(false));
    skitai_core::websocket::ON_SESSION_LOOP.with(|on| on.set(false));
    for bridge in bridges {
        bridge.wake_if_due();
    }
}

/// A socket's readiness on the loop: libuv's poll handle reports it, the
/// session's reads and writes clear it (as tokio's do).
struct Watch {
    handle: *mut c_void,
    /// Read and written only on the loop's thread: by libuv's callback, and
    /// by the socket of a session, which only the loop polls. A cell, not a
    /// lock: it is looked at several times per message.
    state: UnsafeCell<WatchState>,
}

// SAFETY: the handle and the state are touched only on the loop's thread (a
// drop elsewhere hands the handle over to be closed there; the last count of
// the watch, dropped anywhere, has no other user of its state).
unsafe impl Send for Watch {}
unsafe impl Sync for Watch {}

struct WatchState {
    ready: c_int,
    /// The events libuv is asked for. Readable always, once a session reads;
    /// writable only while a write waits for room.
    watching: c_int,
    read: Option<Waker>,
    write: Option<Waker>,
}

impl Watch {
    /// Watch `stream` for reading on `uv_loop`.
    fn start(uv_loop: *mut c_void, stream: &TcpStream) -> Option<Arc<Watch>> {
        let handle = Handle::alloc(ptr::null_mut());
        let watch = Arc::new(Watch {
            handle,
            state: UnsafeCell::new(WatchState {
                // As tokio: try the system call first; it says when to wait.
                ready: UV_READABLE | UV_WRITABLE,
                watching: UV_READABLE,
                read: None,
                write: None,
            }),
        });
        // SAFETY: fresh handle memory on the loop's thread; its data holds one
        // count of the watch until the handle is closed (`free_closed`).
        unsafe {
            if uv_poll_init(uv_loop, handle, stream.as_raw_fd()) != 0 {
                drop(Box::from_raw(handle.cast::<Handle>()));
                return None;
            }
            *handle.cast::<*mut c_void>() = Arc::into_raw(watch.clone()).cast_mut().cast();
            uv_poll_start(handle, UV_READABLE, on_poll);
        }
        Some(watch)
    }

    /// SAFETY: on the loop's thread (see `state`), and the state's last
    /// borrow has ended: no callback or poll here runs another.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut WatchState {
        debug_assert!(ON_LOOP.with(Cell::get), "a socket's readiness off its loop");
        // SAFETY: as the caller promises.
        unsafe { &mut *self.state.get() }
    }

    /// Ask libuv for `events` (on the loop's thread).
    fn watch(&self, state: &mut WatchState, events: c_int) {
        if state.watching == events {
            return;
        }
        state.watching = events;
        // SAFETY: an open poll handle, on the loop's thread.
        unsafe {
            if events == 0 {
                uv_poll_stop(self.handle);
            } else {
                uv_poll_start(self.handle, events, on_poll);
            }
        }
    }
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data is its watch, alive until the handle closes.
    let watch = unsafe { &*Handle::data(handle).cast::<Watch>() };
    // SAFETY: libuv's callback, on the loop's thread; wakers run after the borrow.
    let state = unsafe { watch.state() };
    // An error is the system call's to report: it finds the socket ready.
    let events = if status < 0 { state.watching } else { events };
    state.ready |= events;
    let mut watching = state.watching;
    let read = if events & UV_READABLE != 0 {
        let read = state.read.take();
        if read.is_none() {
            // Nobody reads now (JS has not taken the messages yet): stop asking,
            // or a level-triggered poll would report the same bytes each turn.
            watching &= !UV_READABLE;
        }
        read
    } else {
        None
    };
    let write = if events & UV_WRITABLE != 0 {
        watching &= !UV_WRITABLE;
        state.write.take()
    } else {
        None
    };
    watch.watch(state, watching);
    IN_CALLBACK.with(|c| c.set(true));
    read.into_iter().chain(write).for_each(Waker::wake);
    // The check callback after this poll phase runs what was woken.
}

/// A session's socket's readiness; when the socket goes, its handle is
/// stopped at once (before the descriptor closes) and freed once libuv has
/// closed it.
struct Watched {
    watch: Arc<Watch>,
    shared: Arc<Shared>,
}

impl Readiness for Watched {
    fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<io::Result<()>> {
        let bit = if write { UV_WRITABLE } else { UV_READABLE };
        // SAFETY: the session's socket is polled on the loop's thread only.
        let state = unsafe { self.watch.state() };
        if state.ready & bit != 0 {
            return Poll::Ready(Ok(()));
        }
        let slot = if write {
            &mut state.write
        } else {
            &mut state.read
        };
        match slot {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        let events = state.watching | bit;
        self.watch.watch(state, events);
        Poll::Pending
    }

    fn clear(&self, write: bool) {
        let bit = if write { UV_WRITABLE } else { UV_READABLE };
        // SAFETY: as in `poll_ready`.
        unsafe { self.watch.state() }.ready &= !bit;
    }
}

/// SAFETY: `handle` is an open socket poll handle; on the loop's thread.
unsafe fn close_socket_handle(handle: *mut c_void) {
    unsafe {
        uv_poll_stop(handle);
        uv_close(handle, Some(free_closed));
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let handle = self.watch.handle;
        if ON_LOOP.with(Cell::get) {
            // SAFETY: the handle is open, and this is the loop's thread.
            unsafe { close_socket_handle(handle) };
        } else {
            lock(&self.shared.closing).push(handle as usize);
            self.shared.wake_loop();
        }
    }
}
