//! Rate limiting of the API: a token bucket per caller ([`RateLimiter`]), keyed by token name or client network
//! ([`BucketKey`]), sized by a [`RateLimit`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{
    DEFAULT_COPILOT_BURST, DEFAULT_COPILOT_PER_MINUTE, DEFAULT_OPERATE_BURST,
    DEFAULT_OPERATE_PER_MINUTE,
};

/// A token bucket's size: `per_minute` requests a minute on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute, on average (`FIXLOOP_COPILOT_RATE_PER_MINUTE`).
    pub per_minute: u32,
    /// Requests allowed at once (`FIXLOOP_COPILOT_BURST`).
    pub burst: u32,
}

impl Default for RateLimit {
    /// The copilot's default.
    fn default() -> Self {
        Self {
            per_minute: DEFAULT_COPILOT_PER_MINUTE,
            burst: DEFAULT_COPILOT_BURST,
        }
    }
}

impl RateLimit {
    /// The default of the operate routes ([`super::OPERATE_ROUTES`]).
    pub const OPERATE: Self = Self {
        per_minute: DEFAULT_OPERATE_PER_MINUTE,
        burst: DEFAULT_OPERATE_BURST,
    };
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/min burst {}", self.per_minute, self.burst)
    }
}

/// Whom a bucket counts: a token by name, or a client network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BucketKey {
    /// A token, by name.
    Token(String),
    /// A client address: an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64).
    Address(IpAddr),
    /// A request without a known peer address (an in-process caller).
    Unknown,
}

impl BucketKey {
    /// The key of a client address (IPv4-mapped IPv6 counts as IPv4; IPv6 is keyed by its /64).
    #[must_use]
    pub fn address(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self::Address(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1_u128 << 64) - 1);
                Self::Address(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

/// Token buckets by caller, at most `capacity` of them. When the map is full, buckets that have refilled (which
/// are the same as new ones) are dropped; if none has, new callers share one overflow bucket, so many addresses can
/// neither grow the memory nor reset another caller's bucket.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    capacity: usize,
    state: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_key: HashMap<BucketKey, Bucket>,
    overflow: Option<Bucket>,
}

/// A bucket as the generic cell rate algorithm keeps it: the theoretical arrival time of the next request. Exact
/// (durations, not floating-point levels), and a bucket whose time has passed is the same as a new one.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    next: Instant,
}

impl RateLimiter {
    /// A limiter tracking at most `capacity` callers one by one.
    #[must_use]
    pub fn new(limit: RateLimit, capacity: usize) -> Self {
        Self {
            limit,
            capacity,
            state: Mutex::new(Buckets {
                by_key: HashMap::new(),
                overflow: None,
            }),
        }
    }

    /// Takes one request from `key`'s bucket at `now`.
    ///
    /// # Errors
    ///
    /// How long until the bucket holds a request again, when it is empty.
    pub fn acquire(&self, key: BucketKey, now: Instant) -> Result<(), Duration> {
        let interval = Duration::from_secs(60) / self.limit.per_minute.max(1);
        let tolerance = interval * (self.limit.burst.max(1) - 1);
        // A poisoned lock only means another request panicked mid-update; the times stay usable.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Buckets { by_key, overflow } = &mut *state;
        if !by_key.contains_key(&key) && by_key.len() >= self.capacity {
            by_key.retain(|_, bucket| bucket.next > now);
        }
        let fresh = Bucket { next: now };
        let bucket = if by_key.contains_key(&key) || by_key.len() < self.capacity {
            by_key.entry(key).or_insert(fresh)
        } else {
            overflow.get_or_insert(fresh)
        };
        let next = bucket.next.max(now);
        let ahead = next - now;
        if ahead <= tolerance {
            bucket.next = next + interval;
            Ok(())
        } else {
            Err(ahead - tolerance)
        }
    }

    /// Gives back the request last taken from `key`'s bucket (the call it was taken for was never made).
    pub fn refund(&self, key: &BucketKey) {
        let interval = Duration::from_secs(60) / self.limit.per_minute.max(1);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Buckets { by_key, overflow } = &mut *state;
        // A key without a bucket took its request from the overflow bucket (or its bucket has refilled since).
        if let Some(bucket) = by_key.get_mut(key).or(overflow.as_mut()) {
            bucket.next = bucket.next.checked_sub(interval).unwrap_or(bucket.next);
        }
    }

    /// How many callers are tracked one by one (at most the capacity).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }
}
