//! sd_notify for `Type=notify` systemd units: node has no unix datagram sockets.

use napi::{Error, Result, Status};
use napi_derive::napi;

/// Send `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`, ...) to `$NOTIFY_SOCKET`.
/// False when the variable is unset (not run by systemd).
#[napi]
pub fn notify_systemd(state: String) -> Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    send(&path, state.as_bytes())
        .map(|_| true)
        .map_err(|e| Error::new(Status::GenericFailure, format!("sd_notify: {e}")))
}

#[cfg(target_os = "linux")]
fn send(path: &std::ffi::OsStr, state: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let socket = UnixDatagram::unbound()?;
    // '@' names a socket in the abstract namespace.
    let address = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    socket.send_to_addr(state, &address)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send(path: &std::ffi::OsStr, state: &[u8]) -> std::io::Result<usize> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.send_to(state, path)
}

#[cfg(not(unix))]
fn send(_path: &std::ffi::OsStr, _state: &[u8]) -> std::io::Result<usize> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "sd_notify needs unix",
    ))
}
