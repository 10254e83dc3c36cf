//! Keep-alive connections to the members of one alias. A connection is driven
//! by the request that holds it (its head, then its body), not by a task of its
//! own: no spawn per connection and no hop between tasks per request. Idle ones
//! wait in a stack per member, newest on top, and are checked before reuse.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::time::Sleep;

use super::body::OutBody;
use super::connect::{ConnectError, Connector};
use crate::coarse_clock;

/// Idle connections kept per member, and for how long.
const MAX_IDLE_PER_MEMBER: usize = 256;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle connections are looked at while any wait.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

type Driver = http1::Connection<TokioIo<super::connect::Stream>, OutBody>;

/// One connection to a member: the side that sends requests, and the protocol
/// state that has to be polled for anything to move.
pub struct Conn {
    send: http1::SendRequest<OutBody>,
    driver: Driver,
    /// On `coarse_clock`: idle time is kept to seconds, and read for a few ns.
    idle_since_ms: u64,
    /// The deadline of the exchange under way, kept from one exchange to the
    /// next: moving a registered timer later is an atomic exchange, where a new
    /// timer per request is put in and taken out of the timer wheel.
    deadline: Pin<Box<Sleep>>,
}

/// Why an exchange on a connection failed.
pub enum ExchangeError {
    /// hyper's reason, from the connection or the response.
    Http(hyper::Error),
    /// The connection ended with no answer and no reason.
    Closed,
    /// No answer by the deadline.
    TimedOut,
}

impl Conn {
    fn idle_too_long(&self) -> bool {
        coarse_clock::now_ms().saturating_sub(self.idle_since_ms) > IDLE_TIMEOUT.as_millis() as u64
    }

    /// Still open, and free for a request. Polls the protocol once, which also
    /// takes in a close the member sent while the connection was idle.
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if Pin::new(&mut self.driver).poll(&mut cx).is_ready() {
            return false;
        }
        self.send.is_ready()
    }

    /// Sends `request` and drives the connection until the member's response
    /// head is in, by `deadline`. The connection comes back with it, to drive
    /// the body.
    pub async fn exchange(
        mut self: Box<Self>,
        request: Request<OutBody>,
        deadline: tokio::time::Instant,
    ) -> Result<(Response<Incoming>, Box<Conn>), ExchangeError> {
        self.deadline.as_mut().reset(deadline);
        let mut response = pin!(self.send.send_request(request));
        let mut open = true;
        let head = poll_fn(|cx| {
            if open && Pin::new(&mut self.driver).poll(cx).is_ready() {
                open = false;
            }
            match response.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(result.map_err(ExchangeError::Http)),
                Poll::Pending if !open => Poll::Ready(Err(ExchangeError::Closed)),
                Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                    Poll::Ready(Err(ExchangeError::TimedOut))
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        Ok((head, self))
    }

    /// Moves the connection along while its response body is read; false once
    /// it has ended.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        Pin::new(&mut self.driver).poll(cx).is_pending()
    }
}

/// The idle connections of every member of one alias.
pub struct Pool {
    connector: Connector,
    /// Boxed: a connection is moved through each exchange (checkout, the
    /// request's future, the response body, checkin), a pointer instead of 712 bytes.
    #[allow(clippy::vec_box)]
    idle: Vec<Mutex<Vec<Box<Conn>>>>,
    sweeping: Mutex<bool>,
}

impl Pool {
    pub fn new(connector: Connector, members: usize) -> Pool {
        Pool {
            connector,
            idle: (0..members).map(|_| Mutex::new(Vec::new())).collect(),
            sweeping: Mutex::new(false),
        }
    }

    #[allow(clippy::vec_box)]
    fn idle(&self, member: usize) -> std::sync::MutexGuard<'_, Vec<Box<Conn>>> {
        self.idle[member]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest idle connection to `member` that can take a request.
    pub fn checkout(&self, member: usize) -> Option<Box<Conn>> {
        let mut idle = self.idle(member);
        while let Some(mut conn) = idle.pop() {
            if conn.idle_too_long() {
                // The rest are older still.
                idle.clear();
                return None;
            }
            if conn.reusable() {
                return Some(conn);
            }
        }
        None
    }

    /// Back from a finished exchange. Not looked at here: `checkout` polls it
    /// (taking in a close the member sent) before any use.
    pub fn checkin(self: &Arc<Self>, member: usize, mut conn: Box<Conn>) {
        conn.idle_since_ms = coarse_clock::now_ms();
        let mut idle = self.idle(member);
        if idle.len() >= MAX_IDLE_PER_MEMBER {
            idle.remove(0);
        }
        idle.push(conn);
        drop(idle);
        self.sweep_later();
    }

    /// A new connection to `member`, ready for a request.
    pub async fn connect(&self, authority: &Authority) -> Result<Box<Conn>, ConnectError> {
        let stream = self.connector.connect(authority).await?;
        let (send, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ConnectError { timed_out: false })?;
        Ok(Box::new(Conn {
            send,
            driver,
            idle_since_ms: coarse_clock::now_ms(),
            deadline: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
        }))
    }

    /// A connection for a protocol switch: driven by a task of its own, which
    /// hands the socket over once the member agreed. Never pooled.
    pub async fn connect_upgradable(
        &self,
        authority: &Authority,
    ) -> Result<http1::SendRequest<OutBody>, ConnectError> {
        let conn = self.connect(authority).await?;
        tokio::spawn(conn.driver.with_upgrades());
        Ok(conn.send)
    }

    /// Closes connections that ended or idled too long, every few seconds while
    /// any wait, so that none lingers half-closed after traffic stops.
    fn sweep_later(self: &Arc<Self>) {
        {
            let mut sweeping = self.sweeping.lock().unwrap_or_else(|p| p.into_inner());
            if *sweeping {
                return;
            }
            *sweeping = true;
        }
        let pool: Weak<Pool> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(pool) = pool.upgrade() else { return };
                // Counted under the flag's lock: a connection checked in after
                // the count finds the flag down and starts the next sweeper.
                let mut sweeping = pool.sweeping.lock().unwrap_or_else(|p| p.into_inner());
                let mut waiting = 0;
                for member in 0..pool.idle.len() {
                    let mut idle = pool.idle(member);
                    idle.retain_mut(|c| !c.idle_too_long() && c.reusable());
                    waiting += idle.len();
                }
                if waiting == 0 {
                    *sweeping = false;
                    return;
                }
            }
        });
    }
}
