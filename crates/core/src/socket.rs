//! TCP sockets read and written with plain system calls on tokio's reactor.
//!
//! glibc's `recv`, `writev` and `accept4` are cancellation points: in a process
//! with threads (node always has them) each call pays for enabling and
//! disabling asynchronous cancellation, about 40 ns here, and a request makes
//! two of them. `syscall()` is not a cancellation point. Readiness follows
//! tokio's own rules: cleared on `WouldBlock`, and after a read or write that
//! the kernel cut short (edge-triggered epoll will report more), so a drained
//! socket is not asked again only to hear `EAGAIN`.
//!
//! Elsewhere (Windows) the same interface wraps tokio's own stream.

#[cfg(unix)]
mod raw;
#[cfg(unix)]
pub use raw::{Listener, Readiness, Socket};

#[cfg(not(unix))]
mod portable;
#[cfg(not(unix))]
pub use portable::{Listener, Socket};
