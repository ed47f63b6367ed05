//! The unit every per-address limit counts: an IPv4 address, or an IPv6 /64.
//!
//! One IPv6 host is routinely given a whole /64 (SLAAC, privacy addresses) and can pick a fresh
//! address for every connection, so limits keyed by the full IPv6 address (the connect throttle,
//! the per-address cap, the login delay, the name hold) would not limit anyone. Grouping by /64
//! treats a subscriber's network as one address, as IPv4 NAT already does. Bans are not keyed
//! this way: they match the prefixes operators give them (`src/moderation/ban.rs`).

use std::net::{IpAddr, Ipv6Addr};

/// The IPv6 prefix length a host may own whole. Not configurable: /64 is the smallest prefix
/// SLAAC hands out, so anything finer is under one host's control.
pub const IPV6_GROUP_BITS: u32 = 64;

/// The limit key of `ip`: an IPv4 address as it is (IPv4-mapped IPv6 addresses included), an
/// IPv6 address with all but its first [`IPV6_GROUP_BITS`] bits cleared.
pub fn group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_GROUP_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// FOR TESTS (`--test-loopback-as-ipv6`): an IPv6 address standing for the loopback IPv4 address
/// `ip`, since `::1` is the only IPv6 loopback address and no test can connect from two
/// addresses of one /64. `127.0.A.B` becomes `fd00:0:0:A::B`, so `127.0.1.2` and `127.0.1.3`
/// share a /64 and `127.0.2.2` does not. Other addresses are returned unchanged.
pub fn loopback_as_ipv6(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let [_, _, a, b] = v4.octets();
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, a.into(), 0, 0, 0, b.into()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_groups_by_64_and_ipv4_stays_whole() {
        assert_eq!(
            group(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            group(ip("2001:db8:1:2::1")),
            group(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(group(ip("2001:db8:1:2::1")), group(ip("2001:db8:1:3::1")));
        assert_eq!(group(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(group(ip("192.0.2.7")), group(ip("192.0.2.8")));
        assert_eq!(group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(group(ip("::1")), ip("::"));
    }

    #[test]
    fn test_mapping_puts_loopback_in_chosen_64s() {
        let a = loopback_as_ipv6(ip("127.0.1.2"));
        assert_eq!(a, ip("fd00:0:0:1::2"));
        assert_eq!(group(a), group(loopback_as_ipv6(ip("127.0.1.3"))));
        assert_ne!(group(a), group(loopback_as_ipv6(ip("127.0.2.2"))));
        assert_eq!(loopback_as_ipv6(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
