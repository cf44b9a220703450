//! Rate limits (GCRA through `governor`) and the network-prefix hash.
//!
//! * Per client network: reports per minute (a batch costs one cell per
//!   report), registrations per hour, and signed requests per minute. The
//!   key is the IPv4 address or the IPv6 /64 (one household or host);
//!   addresses live only in the limiter's memory, never on disk. Signed
//!   requests that verify as a trusted verifier key's are exempt from the
//!   per-address limit (`http::signed::verify_signed`).
//! * Per key: reports per minute, checked only after the report's signature
//!   verified, so a forged key id cannot spend an honest key's quota.
//! * A limit of 0 turns that limiter off (load tests).
//!
//! What is stored instead of an address is [`net_hash`]: HMAC-SHA256 of the
//! /24 (IPv4) or /48 (IPv6) prefix under the per-install secret, cut to 16
//! bytes (TRUST.md independence groups).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Limits, per minute unless named otherwise; 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    /// Reports per minute from one network address.
    pub ip_reports_per_min: u32,
    /// Reports per minute from one key.
    pub key_reports_per_min: u32,
    /// Key registrations per hour from one network address.
    pub ip_registrations_per_hour: u32,
    /// Other requests (signed requests, verification) per minute per address.
    pub ip_requests_per_min: u32,
}

impl Default for LimitConfig {
    fn default() -> Self {
        // Judgement call: a person browsing Amazon reads a few pages a
        // minute; an extension batching reports sends far less than 120
        // per minute per key. A shared NAT gets 20x one key.
        LimitConfig {
            ip_reports_per_min: 2_400,
            key_reports_per_min: 120,
            ip_registrations_per_hour: 20,
            ip_requests_per_min: 600,
        }
    }
}

/// The limiters of one server.
pub struct Limiters {
    ip_reports: Option<DefaultKeyedRateLimiter<IpAddr>>,
    key_reports: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    ip_registrations: Option<DefaultKeyedRateLimiter<IpAddr>>,
    ip_requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_min: u32,
    per_hour: bool,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let n = NonZeroU32::new(per_min)?;
    let quota = if per_hour {
        Quota::per_hour(n)
    } else {
        Quota::per_minute(n)
    };
    Some(RateLimiter::keyed(quota))
}

/// The limiter key of an address: IPv4 as is, IPv6 cut to its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

impl Limiters {
    /// Builds the limiters.
    pub fn new(c: &LimitConfig) -> Self {
        Limiters {
            ip_reports: limiter(c.ip_reports_per_min, false),
            key_reports: limiter(c.key_reports_per_min, false),
            ip_registrations: limiter(c.ip_registrations_per_hour, true),
            ip_requests: limiter(c.ip_requests_per_min, false),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        l: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
        cells: u32,
    ) -> Result<(), u64> {
        let Some(l) = l else { return Ok(()) };
        let Some(n) = NonZeroU32::new(cells) else {
            return Ok(());
        };
        match l.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now()).as_secs() + 1),
            // More cells than the burst can ever hold: wait a full period.
            Err(_) => Err(60),
        }
    }

    /// `n` reports from `ip`; `Err(seconds to wait)` when limited.
    pub fn ip_reports(&self, ip: IpAddr, n: u32) -> Result<(), u64> {
        self.check(&self.ip_reports, &client_key(ip), n)
    }
    /// One report from a verified key.
    pub fn key_report(&self, key: &[u8; 32]) -> Result<(), u64> {
        self.check(&self.key_reports, key, 1)
    }
    /// One registration from `ip`.
    pub fn ip_registration(&self, ip: IpAddr) -> Result<(), u64> {
        self.check(&self.ip_registrations, &client_key(ip), 1)
    }
    /// One other request from `ip`.
    pub fn ip_request(&self, ip: IpAddr) -> Result<(), u64> {
        self.check(&self.ip_requests, &client_key(ip), 1)
    }
    /// Forgets idle entries (called by the maintenance job).
    pub fn shrink(&self) {
        for l in [&self.ip_reports, &self.ip_registrations, &self.ip_requests]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.key_reports {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Keyed hash of the /24 (IPv4) or /48 (IPv6) network of `ip`.
pub fn net_hash(secret: &[u8; 32], ip: IpAddr) -> [u8; 16] {
    let prefix: Vec<u8> = match client_key(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            vec![4, o[0], o[1], o[2]]
        }
        IpAddr::V6(v6) => {
            let mut p = vec![6];
            p.extend_from_slice(&v6.octets()[..6]);
            p
        }
    };
    // HMAC accepts keys of any length: this cannot fail.
    let mut out = [0u8; 16];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(b"pricewatch/net/v1\n");
        mac.update(&prefix);
        out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_hash_groups_prefixes() {
        let s = [7u8; 32];
        let a = net_hash(&s, "192.0.2.1".parse().unwrap());
        let b = net_hash(&s, "192.0.2.200".parse().unwrap());
        let c = net_hash(&s, "192.0.3.1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, net_hash(&[8u8; 32], "192.0.2.1".parse().unwrap()));
        let v6a = net_hash(&s, "2001:db8:1:2::1".parse().unwrap());
        let v6b = net_hash(&s, "2001:db8:1:ffff::1".parse().unwrap());
        assert_eq!(v6a, v6b, "same /48");
        assert_eq!(
            net_hash(&s, "::ffff:192.0.2.9".parse().unwrap()),
            a,
            "mapped v4"
        );
    }

    #[test]
    fn limits_and_retry_after() {
        let l = Limiters::new(&LimitConfig {
            ip_reports_per_min: 10,
            key_reports_per_min: 2,
            ip_registrations_per_hour: 1,
            ip_requests_per_min: 0,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.ip_reports(ip, 10).is_ok());
        let wait = l.ip_reports(ip, 1).unwrap_err();
        assert!((1..=7).contains(&wait), "{wait}");
        assert!(l.ip_reports("192.0.2.2".parse().unwrap(), 1).is_ok());
        assert!(l.ip_reports(ip, 500).is_err());
        assert!(l.key_report(&[1; 32]).is_ok());
        assert!(l.key_report(&[1; 32]).is_ok());
        assert!(l.key_report(&[1; 32]).is_err());
        assert!(l.key_report(&[2; 32]).is_ok());
        assert!(l.ip_registration(ip).is_ok());
        assert!(l.ip_registration(ip).unwrap_err() > 60);
        for _ in 0..1000 {
            assert!(l.ip_request(ip).is_ok(), "0 = unlimited");
        }
    }
}
