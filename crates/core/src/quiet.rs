//! A future polled only after its own waker has fired. A branch that sits
//! beside a busy one in a `select!` (a connection's idle timer and shutdown
//! signal, beside its exchanges) is otherwise polled at every wake of the task,
//! and each poll of a tokio timer or `Notify` takes atomics or a lock to
//! register the waker again; here a wake that was not its own costs a load.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

pub struct Quiet<F> {
    inner: F,
    signal: Arc<Signal>,
    /// `signal` as a waker, made once: `inner` keeps it registered.
    waker: Waker,
    /// The task's waker as last handed to `signal`, compared at each poll.
    task: Option<Waker>,
}

struct Signal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> Quiet<F> {
    pub fn new(inner: F) -> Quiet<F> {
        let signal = Arc::new(Signal {
            // The first poll looks: nothing is registered yet.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Quiet {
            inner,
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }

    /// The future itself. Changed (a timer reset, say), it must be polled
    /// again to take note: `rouse` then.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// Poll the future at the next poll, woken or not.
    pub fn rouse(&self) {
        self.signal.woken.store(true, Ordering::Relaxed);
    }
}

impl<F: Future + Unpin> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            let task = cx.waker().clone();
            *this.signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.clone());
            this.task = Some(task);
        }
        if !this.signal.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        // Cleared before the poll: a wake during it is kept for the next one.
        this.signal.woken.store(false, Ordering::Relaxed);
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_for_its_own_timer_and_sees_a_reset() {
        let started = tokio::time::Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::from_millis(40)));
        let mut quiet = Quiet::new(sleep);
        (&mut quiet).await;
        assert!(started.elapsed() >= Duration::from_millis(40));
        let again = tokio::time::Instant::now();
        quiet
            .get_mut()
            .as_mut()
            .reset(again + Duration::from_millis(30));
        quiet.rouse();
        (&mut quiet).await;
        assert!(again.elapsed() >= Duration::from_millis(30));
    }

    /// Pending until `open`, counting its polls and keeping the last waker.
    #[derive(Default)]
    struct Gate {
        polls: usize,
        open: bool,
        waker: Option<Waker>,
    }

    struct GateFuture(Arc<Mutex<Gate>>);

    impl Future for GateFuture {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut gate = self.0.lock().unwrap();
            gate.polls += 1;
            gate.waker = Some(cx.waker().clone());
            if gate.open {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn other_wakes_of_the_task_do_not_poll_it_and_its_own_wake_does() {
        let gate = Arc::new(Mutex::new(Gate::default()));
        let mut quiet = Quiet::new(GateFuture(gate.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..5 {
            assert!(Pin::new(&mut quiet).poll(&mut cx).is_pending());
        }
        assert_eq!(
            gate.lock().unwrap().polls,
            1,
            "polled only on the first look"
        );
        let own = gate.lock().unwrap().waker.clone().unwrap();
        own.wake_by_ref();
        assert!(Pin::new(&mut quiet).poll(&mut cx).is_pending());
        assert_eq!(gate.lock().unwrap().polls, 2, "its own wake polls it once");
        gate.lock().unwrap().open = true;
        assert!(
            Pin::new(&mut quiet).poll(&mut cx).is_pending(),
            "not woken: not looked at"
        );
        quiet.rouse();
        assert!(
            Pin::new(&mut quiet).poll(&mut cx).is_ready(),
            "roused: looked at"
        );
    }
}
