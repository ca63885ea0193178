//! What the edge counts per client: connections open, and a token bucket
//! of requests without a valid token.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A client as the limits count it: its IP address, an IPv6 address by its
/// /64 (one host usually holds a whole /64), an IPv4-mapped IPv6 address as
/// the IPv4 address it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    ClientKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connections being served, in all and by client.
pub struct Connections {
    max: usize,
    per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only clients with a connection open: at most `max` entries.
    by_client: HashMap<ClientKey, usize>,
}

/// Whether a new connection is served.
pub enum Admission {
    /// Served; the slot is given back when dropped.
    Admitted(Slot),
    /// Every slot is taken.
    Busy,
    /// This client has its share.
    ClientBusy,
}

/// One connection's place in the counts.
pub struct Slot {
    connections: Arc<Connections>,
    client: ClientKey,
}

impl Connections {
    pub fn new(max: usize, per_client: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            per_client: per_client.max(1),
            counts: Mutex::default(),
        })
    }

    /// Takes a slot for a connection from `client`, if there is one.
    pub fn admit(self: &Arc<Self>, client: ClientKey) -> Admission {
        let mut counts = locked(&self.counts);
        if counts.total >= self.max {
            return Admission::Busy;
        }
        let mine = counts.by_client.entry(client).or_default();
        if *mine >= self.per_client {
            return Admission::ClientBusy;
        }
        *mine += 1;
        counts.total += 1;
        Admission::Admitted(Slot {
            connections: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = locked(&self.connections.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.by_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                counts.by_client.remove(&self.client);
            }
        }
    }
}

/// The most clients whose buckets are remembered. A full bucket is the same
/// as none, so full ones are forgotten first; past this, clients not yet
/// known share one bucket.
const MAX_BUCKETS: usize = 65_536;

/// A token bucket per client: `per_minute` requests a minute, in bursts of
/// up to as many.
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Where the clients nobody has room for are counted.
const OVERFLOW: ClientKey = ClientKey(IpAddr::V6(Ipv6Addr::UNSPECIFIED));

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::default(),
        }
    }

    fn per_second(&self) -> f64 {
        self.per_minute / 60.0
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second()).min(self.per_minute)
    }

    /// Takes one request's token from `client`'s bucket, or says how long
    /// until there is one.
    pub fn take(&self, client: ClientKey, now: Instant) -> Result<(), Duration> {
        let mut buckets = locked(&self.buckets);
        let mut key = client;
        if !buckets.contains_key(&client) && buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| self.refilled(*b, now) < self.per_minute);
            if buckets.len() >= MAX_BUCKETS {
                key = OVERFLOW;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> ClientKey {
        ClientKey::of(text.parse().unwrap())
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_address_its_ipv4() {
        assert_eq!(ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8:1:2:ffff::1"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn connections_are_capped_in_all_and_by_client() {
        let c = Connections::new(3, 2);
        let a = ip("10.0.0.1");
        let b = ip("10.0.0.2");
        let first = c.admit(a);
        let _second = c.admit(a);
        assert!(matches!(c.admit(a), Admission::ClientBusy));
        let _third = c.admit(b);
        assert!(matches!(c.admit(b), Admission::Busy));
        drop(first);
        assert!(matches!(c.admit(a), Admission::Admitted(_)));
    }

    #[test]
    fn a_bucket_allows_a_burst_then_its_rate() {
        let limiter = RateLimiter::new(60);
        let a = ip("10.0.0.1");
        let start = Instant::now();
        for _ in 0..60 {
            limiter.take(a, start).unwrap();
        }
        let wait = limiter.take(a, start).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another client has its own bucket.
        limiter.take(ip("10.0.0.2"), start).unwrap();
        // A second later, one more.
        let later = start + Duration::from_secs(1);
        limiter.take(a, later).unwrap();
        assert!(limiter.take(a, later).is_err());
    }
}
