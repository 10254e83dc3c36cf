//! Unix: the socket on tokio's reactor (`AsyncFd`), or on another loop that
//! tells when it is ready (`Readiness`: the JS thread's, for WebSockets), read
//! and written with system calls by number on Linux (libc's functions on other
//! unixes).

use std::io::{self, IoSlice};
use std::mem;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The most slices one `sendmsg` takes (Linux's UIO_MAXIOV).
const MAX_SLICES: usize = 1024;

/// A connected TCP socket, registered with the current runtime or with
/// another loop.
pub struct Socket {
    fd: Registered,
}

/// Readiness from a loop other than tokio's. Like tokio's: ready until
/// `clear`ed (the kernel said `WouldBlock`, or took or gave less than asked).
pub trait Readiness: Send + Sync {
    /// Ready for writing (`write`) or reading; else `cx` is woken when it is.
    fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<io::Result<()>>;
    fn clear(&self, write: bool);
}

enum Registered {
    Tokio(AsyncFd<TcpStream>),
    /// `ready` first: it lets go of the descriptor before `stream` closes it.
    Loop {
        ready: Box<dyn Readiness>,
        stream: TcpStream,
    },
}

/// A listening socket whose connections come out as [`Socket`]s.
pub struct Listener {
    fd: AsyncFd<TcpListener>,
}

impl Listener {
    /// Register `listener` (non-blocking) with the current runtime.
    pub fn new(listener: TcpListener) -> io::Result<Listener> {
        // SAFETY: the listener owns its descriptor and keeps it while registered.
        let fd = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE)? };
        Ok(Listener { fd })
    }

    /// The next connection, non-blocking and close-on-exec from the start.
    pub async fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        let (stream, peer) = self.fd.async_io(Interest::READABLE, sys::accept).await?;
        Ok((Socket::new(stream)?, peer))
    }
}

impl Socket {
    /// Register a non-blocking `stream` with the current runtime.
    fn new(stream: TcpStream) -> io::Result<Socket> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: the stream owns its descriptor and keeps it while registered.
        let fd = unsafe { AsyncFd::register_with_interest(stream, interest)? };
        Ok(Socket {
            fd: Registered::Tokio(fd),
        })
    }

    /// Take over a tokio stream (an outgoing connection, made by tokio's connect).
    pub fn from_tokio(stream: tokio::net::TcpStream) -> io::Result<Socket> {
        Socket::new(stream.into_std()?)
    }

    /// Off tokio's reactor, for another loop (`on_loop`); still open.
    pub fn into_std(self) -> TcpStream {
        match self.fd {
            Registered::Tokio(fd) => fd.into_inner(),
            Registered::Loop { stream, .. } => stream,
        }
    }

    /// A socket another loop watches; `ready` says when it may be read or written.
    pub fn on_loop(stream: TcpStream, ready: Box<dyn Readiness>) -> Socket {
        Socket {
            fd: Registered::Loop { ready, stream },
        }
    }

    fn stream(&self) -> &TcpStream {
        match &self.fd {
            Registered::Tokio(fd) => fd.get_ref(),
            Registered::Loop { stream, .. } => stream,
        }
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream().set_nodelay(nodelay)
    }

    /// Bytes that have arrived, left to be read.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.fd {
            Registered::Tokio(fd) => {
                fd.async_io(Interest::READABLE, |stream| stream.peek(buf))
                    .await
            }
            Registered::Loop { .. } => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    fn raw(&self) -> RawFd {
        self.stream().as_raw_fd()
    }

    /// Read what has arrived; through a shared reference, so that one task can
    /// read while other threads write (a WebSocket's JS sends).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // SAFETY: the kernel only writes into the unfilled part, and
        // `assume_init` below covers no more than it reports written.
        let unfilled = unsafe { buf.unfilled_mut() };
        let (at, room) = (unfilled.as_mut_ptr().cast::<u8>(), unfilled.len());
        let n = ready!(self.poll_io(cx, Interest::READABLE, room, |fd| sys::recv(fd, at, room)))?;
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Write what the socket takes now, without waiting (`WouldBlock` when it
    /// takes nothing); from any thread.
    pub fn try_send_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let slices = &slices[..slices.len().min(MAX_SLICES)];
        match &self.fd {
            Registered::Tokio(fd) => fd.try_io(Interest::WRITABLE, |_| {
                sys::send_vectored(self.raw(), slices)
            }),
            Registered::Loop { ready, .. } => {
                let sent = sys::send_vectored(self.raw(), slices);
                if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                    ready.clear(true);
                }
                sent
            }
        }
    }

    /// Ready once the socket may take more.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.fd {
            Registered::Tokio(fd) => fd.poll_write_ready(cx).map_ok(drop),
            Registered::Loop { ready, .. } => ready.poll_ready(cx, true),
        }
    }

    /// No more bytes from this side (the peer reads an end).
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream().shutdown(Shutdown::Write)
    }

    /// One read or write of `len` bytes once the socket is ready for it,
    /// clearing readiness as tokio does: on `WouldBlock`, and when the kernel
    /// took or gave less than `len` (edge-triggered epoll will report more).
    fn poll_io(
        &self,
        cx: &mut Context<'_>,
        direction: Interest,
        len: usize,
        mut io: impl FnMut(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let write = !direction.is_readable();
        loop {
            // Tokio's readiness comes as a guard that clears it; the other
            // loop's is cleared through `ready`.
            let mut guard = match &self.fd {
                Registered::Tokio(fd) => Some(ready!(if write {
                    fd.poll_write_ready(cx)
                } else {
                    fd.poll_read_ready(cx)
                })?),
                Registered::Loop { ready, .. } => {
                    ready!(ready.poll_ready(cx, write))?;
                    None
                }
            };
            let done = io(self.raw());
            let spent = match &done {
                Ok(n) => *n > 0 && *n < len,
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            };
            if spent {
                if let Some(guard) = guard.as_mut() {
                    guard.clear_ready();
                } else if let Registered::Loop { ready, .. } = &self.fd {
                    ready.clear(write);
                }
            }
            match done {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_recv(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Interest::WRITABLE, buf.len(), |fd| sys::send(fd, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let slices = &slices[..slices.len().min(MAX_SLICES)];
        let len = slices.iter().map(|s| s.len()).sum();
        self.poll_io(cx, Interest::WRITABLE, len, |fd| {
            sys::send_vectored(fd, slices)
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_write())
    }
}

/// The system calls, by number where glibc's wrapper would be a cancellation point.
mod sys {
    use super::*;

    /// A result of -1 is the error in `errno`.
    fn checked(result: libc::c_long) -> io::Result<usize> {
        usize::try_from(result).map_err(|_| io::Error::last_os_error())
    }

    #[cfg(target_os = "linux")]
    pub fn recv(fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize> {
        // SAFETY: `buf` points at `len` writable bytes; no address is asked for.
        checked(unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                fd,
                buf,
                len,
                0,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn recv(fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize> {
        // SAFETY: `buf` points at `len` writable bytes.
        checked(unsafe { libc::recv(fd, buf.cast(), len, 0) } as libc::c_long)
    }

    pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
        send_vectored(fd, &[IoSlice::new(buf)])
    }

    /// `sendmsg` rather than `writev`: MSG_NOSIGNAL, no SIGPIPE for a gone peer.
    pub fn send_vectored(fd: RawFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut message: libc::msghdr = unsafe { mem::zeroed() };
        // IoSlice is ABI-compatible with iovec; the kernel only reads them.
        message.msg_iov = slices.as_ptr() as *mut libc::iovec;
        message.msg_iovlen = slices.len() as _;
        sendmsg(fd, &message)
    }

    #[cfg(target_os = "linux")]
    fn sendmsg(fd: RawFd, message: &libc::msghdr) -> io::Result<usize> {
        // SAFETY: `message` and the slices it points at outlive the call.
        checked(unsafe {
            libc::syscall(
                libc::SYS_sendmsg,
                fd,
                message as *const libc::msghdr,
                libc::MSG_NOSIGNAL,
            )
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn sendmsg(fd: RawFd, message: &libc::msghdr) -> io::Result<usize> {
        // SAFETY: `message` and the slices it points at outlive the call.
        checked(unsafe { libc::sendmsg(fd, message, 0) } as libc::c_long)
    }

    #[cfg(target_os = "linux")]
    pub fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let mut fd = 0;
        // SAFETY: the kernel fills at most `len` bytes of the storage socket2 gives.
        let ((), address) = unsafe {
            socket2::SockAddr::try_init(|storage, len| {
                fd = checked(libc::syscall(
                    libc::SYS_accept4,
                    listener.as_raw_fd(),
                    storage.cast::<libc::sockaddr>(),
                    len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                ))?;
                Ok(())
            })?
        };
        // SAFETY: accept4 just made this descriptor; nothing else owns it.
        let stream = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as RawFd) };
        let peer = address
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP peer"))?;
        Ok((stream, peer))
    }

    #[cfg(not(target_os = "linux"))]
    pub fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = listener.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener on `address` (port 0), registered with the test's runtime.
    fn listen(address: &str) -> Option<(Listener, SocketAddr)> {
        let std = TcpListener::bind(address).ok()?;
        std.set_nonblocking(true).ok()?;
        let local = std.local_addr().ok()?;
        Some((Listener::new(std).ok()?, local))
    }

    #[tokio::test]
    async fn accept_gives_the_peer_as_the_client_sees_itself() {
        for address in ["127.0.0.1:0", "[::1]:0"] {
            // A machine without IPv6 on loopback has nothing to test there.
            let Some((listener, local)) = listen(address) else {
                continue;
            };
            let client = std::thread::spawn(move || {
                let stream = std::net::TcpStream::connect(local).expect("connect");
                stream.local_addr().expect("client address")
            });
            let (_socket, peer) = listener.accept().await.expect("accept");
            assert_eq!(peer, client.join().expect("client thread"), "{address}");
        }
    }

    #[tokio::test]
    async fn bytes_go_both_ways_and_a_shut_side_reads_as_the_end() {
        let (listener, local) = listen("127.0.0.1:0").expect("listener");
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(local).expect("connect");
            stream.write_all(b"ping").expect("write");
            let mut answer = Vec::new();
            // Until the server shuts its side: everything it sent, then the end.
            stream.read_to_end(&mut answer).expect("read");
            answer
        });
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut got = [0u8; 4];
        socket.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        // Vectored, as hyper writes: the slices in order.
        let slices = [IoSlice::new(b"po"), IoSlice::new(b"ng")];
        let written =
            std::future::poll_fn(|cx| Pin::new(&mut socket).poll_write_vectored(cx, &slices))
                .await
                .expect("write");
        // An empty send buffer takes 4 bytes whole.
        assert_eq!(written, 4);
        socket.write_all(b"!").await.expect("write");
        socket.shutdown().await.expect("shutdown");
        assert_eq!(client.join().expect("client thread"), b"pong!");
    }
}
