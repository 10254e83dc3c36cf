//! Milliseconds for deadlines measured in seconds (keep-alive), read for a few
//! ns: on Linux the kernel's coarse monotonic clock, the time of its last tick
//! (a few ms behind), where a precise read costs about 25 ns here.

#[cfg(target_os = "linux")]
pub fn now_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the call writes one timespec; CLOCK_MONOTONIC_COARSE exists since Linux 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (now.tv_sec as u64) * 1000 + (now.tv_nsec as u64) / 1_000_000
}

#[cfg(not(target_os = "linux"))]
pub fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::now_ms;
    use std::time::{Duration, Instant};

    #[test]
    fn follows_the_precise_clock_within_its_ticks() {
        // Each interval brackets the next, so that a pause of this thread anywhere
        // cannot make the check fail: precise outside coarse outside precise.
        let outer = Instant::now();
        let start = now_ms();
        let inner = Instant::now();
        std::thread::sleep(Duration::from_millis(60));
        let inner = inner.elapsed().as_millis() as u64;
        let coarse = now_ms() - start;
        let outer = outer.elapsed().as_millis() as u64;
        // A coarse reading is up to a tick (at most 10 ms at HZ=100) behind.
        assert!(coarse + 20 >= inner, "{coarse} ms against at least {inner}");
        assert!(coarse <= outer + 20, "{coarse} ms against at most {outer}");
    }
}
