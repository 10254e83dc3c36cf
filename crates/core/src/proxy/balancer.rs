//! Picking a member of an upstream alias: round-robin or least connections,
//! skipping members that rest after a failure.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::HeaderValue;

use crate::config::Policy;

/// One upstream server.
pub struct Member {
    pub authority: Authority,
    /// The `Host` header the member is sent (no default port).
    pub host: HeaderValue,
    /// Requests being answered by it now (least connections).
    in_flight: AtomicUsize,
    /// Until when it rests, in ms since the balancer's epoch; 0: never failed.
    rest_until: AtomicU64,
}

pub struct Balancer {
    pub members: Vec<Member>,
    policy: Policy,
    rest: Duration,
    next: AtomicUsize,
    epoch: Instant,
}

/// A member's place in its balancer; counts as a connection of it until dropped.
pub struct InFlight {
    balancer: Arc<Balancer>,
    pub index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.balancer.members[self.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Members already tried by one request (at most 64 count; more are retried).
#[derive(Default, Clone, Copy)]
pub struct Tried(u64);

impl Tried {
    fn has(self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    pub fn add(&mut self, index: usize) {
        if index < 64 {
            self.0 |= 1 << index;
        }
    }

    pub fn any(self) -> bool {
        self.0 != 0
    }
}

/// `host[:port]` as a member: its authority and its `Host` value.
fn member(given: &str, scheme: &Scheme) -> Result<Member, String> {
    let authority: Authority = given
        .parse()
        .map_err(|_| format!("'{given}' is not host[:port]"))?;
    if authority.as_str().contains('@') {
        return Err(format!("'{given}' is not host[:port]"));
    }
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(port) if port == default_port => authority.host().to_string(),
        _ => authority.as_str().to_string(),
    };
    let host = HeaderValue::from_str(&host).map_err(|_| format!("'{given}' is not host[:port]"))?;
    Ok(Member {
        authority,
        host,
        in_flight: AtomicUsize::new(0),
        rest_until: AtomicU64::new(0),
    })
}

impl Balancer {
    pub fn new(
        members: &[String],
        scheme: &Scheme,
        policy: Policy,
        rest: Duration,
    ) -> Result<Balancer, String> {
        if members.is_empty() {
            return Err("no members".into());
        }
        let members = members
            .iter()
            .map(|m| member(m, scheme))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Balancer {
            members,
            policy,
            rest,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        // +1: a rest that ends at the epoch is still one.
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// `now` is read from the clock only once a member has ever rested.
    fn resting(&self, index: usize, now: &mut Option<u64>) -> bool {
        let until = self.members[index].rest_until.load(Ordering::Relaxed);
        until != 0 && until > *now.get_or_insert_with(|| self.now_ms())
    }

    /// Leave the member out for the rest time.
    pub fn rest(&self, index: usize) {
        let until = self.now_ms() + self.rest.as_millis() as u64;
        self.members[index]
            .rest_until
            .store(until, Ordering::Relaxed);
    }

    /// The member for the next attempt of a request that has tried `tried`: one
    /// not resting by the policy; when every member rests and this is the
    /// request's first attempt, the one whose rest ends first (a probe: a member
    /// back early serves at once). None: nothing left to try.
    pub fn pick(self: &Arc<Self>, tried: Tried) -> Option<InFlight> {
        let n = self.members.len();
        let mut now = None;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, usize)> = None;
        for step in 0..n {
            let index = (start + step) % n;
            if tried.has(index) || self.resting(index, &mut now) {
                continue;
            }
            match self.policy {
                Policy::RoundRobin => {
                    best = Some((index, 0));
                    break;
                }
                Policy::LeastConnections => {
                    let load = self.members[index].in_flight.load(Ordering::Relaxed);
                    if best.is_none_or(|(_, least)| load < least) {
                        best = Some((index, load));
                    }
                }
            }
        }
        let index = match best {
            Some((index, _)) => index,
            None if !tried.any() => {
                (0..n).min_by_key(|&i| self.members[i].rest_until.load(Ordering::Relaxed))?
            }
            None => return None,
        };
        self.members[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Some(InFlight {
            balancer: self.clone(),
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(policy: Policy) -> Arc<Balancer> {
        let members = ["a:1".to_string(), "b:2".into(), "c:3".into()];
        Arc::new(Balancer::new(&members, &Scheme::HTTP, policy, Duration::from_secs(60)).unwrap())
    }

    #[test]
    fn round_robin_takes_turns_and_skips_resting_members() {
        let b = balancer(Policy::RoundRobin);
        let picks: Vec<usize> = (0..6)
            .map(|_| b.pick(Tried::default()).unwrap().index)
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        b.rest(1);
        let picks: Vec<usize> = (0..4)
            .map(|_| b.pick(Tried::default()).unwrap().index)
            .collect();
        assert!(!picks.contains(&1));
    }

    #[test]
    fn least_connections_prefers_the_idle_member() {
        let b = balancer(Policy::LeastConnections);
        let first = b.pick(Tried::default()).unwrap();
        let second = b.pick(Tried::default()).unwrap();
        let third = b.pick(Tried::default()).unwrap();
        let mut all = [first.index, second.index, third.index];
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2]);
        let kept = second.index;
        drop(second);
        assert_eq!(b.pick(Tried::default()).unwrap().index, kept);
        drop((first, third));
    }

    #[test]
    fn retries_skip_tried_members_and_all_resting_probes_once() {
        let b = balancer(Policy::RoundRobin);
        let mut tried = Tried::default();
        for _ in 0..3 {
            let pick = b.pick(tried).unwrap();
            tried.add(pick.index);
            b.rest(pick.index);
        }
        assert!(b.pick(tried).is_none());
        let probe = b.pick(Tried::default()).expect("a probe when all rest");
        assert_eq!(probe.index, 0, "the earliest rest ends first");
    }

    #[test]
    fn members_are_host_and_port() {
        let b = Balancer::new(
            &[
                "example.com".into(),
                "example.com:8443".into(),
                "[::1]:80".into(),
            ],
            &Scheme::HTTPS,
            Policy::RoundRobin,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(b.members[0].host, "example.com");
        assert_eq!(b.members[1].host, "example.com:8443");
        assert_eq!(b.members[2].host, "[::1]:80");
        assert!(Balancer::new(
            &["a b".into()],
            &Scheme::HTTP,
            Policy::RoundRobin,
            Duration::ZERO
        )
        .is_err());
        assert!(Balancer::new(&[], &Scheme::HTTP, Policy::RoundRobin, Duration::ZERO).is_err());
    }
}
