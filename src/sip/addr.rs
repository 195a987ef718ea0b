//! Source addresses and the table key derived from them.
//!
//! Every address becomes 128 bits: IPv4 as an IPv4-mapped IPv6 address
//! (::ffff:a.b.c.d, kept whole), IPv6 masked to the configured prefix, because
//! an attacker who owns a /64 can rotate through it at will.
//!
//! A prefix ban (`ban_prefix_v4` / `ban_prefix_v6`) has a key of its own: the
//! network of the address, shown and written as a CIDR (`198.51.100.0/24`,
//! `2001:db8:1::/48`).

pub use crate::util::fixed_buf::FixedBuf;
use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ::ffff:0:0/96, shifted down by the 32 IPv4 bits.
const V4_MAPPED_PREFIX: u128 = 0xffff;

/// A source as the table knows it: 128 bits plus how many of them count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub bits: u128,
    /// Significant bits of `bits` as IPv6 (128 for an IPv4 source).
    pub prefix: u8,
}

pub(crate) fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - p as u32),
    }
}

pub(crate) fn is_v4_mapped(bits: u128) -> bool {
    bits >> 32 == V4_MAPPED_PREFIX
}

impl Key {
    /// Key of a raw address: 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    pub fn from_bytes(addr: &[u8], ipv6_prefix: u8) -> Option<Key> {
        address_bits(addr).map(|bits| Key::from_address_bits(bits, ipv6_prefix))
    }

    pub fn from_ip(ip: IpAddr, ipv6_prefix: u8) -> Key {
        Key::from_address_bits(to_bits(ip), ipv6_prefix)
    }

    /// Key of a whole address as [`address_bits`] gives it.
    pub fn from_address_bits(bits: u128, ipv6_prefix: u8) -> Key {
        if is_v4_mapped(bits) {
            Key { bits, prefix: 128 }
        } else {
            Key {
                bits: bits & mask(ipv6_prefix),
                prefix: ipv6_prefix,
            }
        }
    }

    /// The network of `len` bits (IPv4 bits for an IPv4 address, IPv6 bits
    /// otherwise) that holds the address `bits` ([`address_bits`]).
    pub fn network(bits: u128, len: u8) -> Key {
        let prefix = if is_v4_mapped(bits) {
            96 + len.min(32)
        } else {
            len.min(128)
        };
        Key {
            bits: bits & mask(prefix),
            prefix,
        }
    }

    /// A network written as a CIDR ("198.51.100.0/24", "2001:db8::/48");
    /// the host bits are cleared. None without a length or with a bad one.
    pub fn parse_network(text: &str) -> Option<Key> {
        let (ip, len) = parse_ip_with_prefix(text).ok()?;
        let len: u8 = len?.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (len <= max).then(|| Key::network(to_bits(ip), len))
    }

    /// Whether this key is a network of IPv4 addresses (shorter than /32).
    pub fn is_v4_network(&self) -> bool {
        is_v4_mapped(self.bits) && self.prefix < 128
    }

    /// Key from text: an address ("192.0.2.1", "2001:db8::1", "[::1]") or,
    /// as written in the state file, "2001:db8::/64".
    pub fn parse(text: &str, ipv6_prefix: u8) -> Option<Key> {
        let (ip, len) = parse_ip_with_prefix(text).ok()?;
        if len.is_some_and(|l| l.parse::<u8>().is_err()) {
            return None;
        }
        Some(Key::from_ip(ip, ipv6_prefix))
    }

    pub fn halves(&self) -> [u64; 2] {
        [(self.bits >> 64) as u64, self.bits as u64]
    }

    /// The key stored as two halves: IPv4 sources are whole addresses,
    /// IPv6 ones prefixes of `ipv6_prefix` bits.
    pub fn from_halves(h: [u64; 2], ipv6_prefix: u8) -> Key {
        Key::from_halves_with(h, 32, ipv6_prefix)
    }

    /// The key stored as two halves, IPv4 keys being networks of `v4_len`
    /// bits (32: whole addresses) and IPv6 ones of `v6_len` bits.
    pub fn from_halves_with(h: [u64; 2], v4_len: u8, v6_len: u8) -> Key {
        let bits = ((h[0] as u128) << 64) | h[1] as u128;
        Key {
            bits,
            prefix: if is_v4_mapped(bits) {
                96 + v4_len.min(32)
            } else {
                v6_len
            },
        }
    }

    /// The address part, without the prefix length (for `src=` in logs).
    pub fn address(&self) -> IpAddr {
        if is_v4_mapped(self.bits) {
            IpAddr::V4(Ipv4Addr::from(self.bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.bits))
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4_network() {
            write!(f, "{}/{}", Ipv4Addr::from(self.bits as u32), self.prefix - 96)
        } else if is_v4_mapped(self.bits) {
            write!(f, "{}", Ipv4Addr::from(self.bits as u32))
        } else if self.prefix == 128 {
            write!(f, "{}", Ipv6Addr::from(self.bits))
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.bits), self.prefix)
        }
    }
}

fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => (V4_MAPPED_PREFIX << 32) | u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// "addr", "[addr]" or "addr/len" → (address, length text if given).
fn parse_ip_with_prefix(text: &str) -> Result<(IpAddr, Option<&str>), &'static str> {
    let t = text.trim();
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (t, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| "not an IPv4 or IPv6 address")?;
    Ok((ip, len))
}

/// An allowlist entry. IPv4 networks are stored in the mapped range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    mask: u128,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, &'static str> {
        let (ip, len) = parse_ip_with_prefix(text)?;
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.parse::<u8>().map_err(|_| "bad prefix length")?,
            None => max,
        };
        if len > max {
            return Err("prefix length too long for the address family");
        }
        let mapped_len = if ip.is_ipv4() { len + 96 } else { len };
        let mask = mask(mapped_len);
        Ok(Cidr {
            net: to_bits(ip) & mask,
            mask,
        })
    }

    /// Whether a raw address (4 or 16 bytes) lies in this network.
    pub fn contains(&self, addr_bits: u128) -> bool {
        addr_bits & self.mask == self.net
    }

    /// Its first address (IPv4 in the mapped range).
    pub fn network(&self) -> u128 {
        self.net
    }

    /// Its prefix length over 128 bits (an IPv4 /24 is 120).
    pub fn prefix_len(&self) -> u8 {
        self.mask.count_ones() as u8
    }
}

/// Whole address bits (not masked), for the allowlist.
pub fn address_bits(addr: &[u8]) -> Option<u128> {
    match addr.len() {
        4 => {
            Some((V4_MAPPED_PREFIX << 32) | u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]) as u128)
        }
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(addr);
            Some(u128::from_be_bytes(b))
        }
        _ => None,
    }
}

/// Parse a plain address ("192.0.2.1", "::1", "[::1]") into 16 bytes without allocating.
pub fn parse_address(text: &str) -> Option<[u8; 16]> {
    match parse_ip_with_prefix(text) {
        Ok((ip, None)) => Some(to_bits(ip).to_be_bytes()),
        _ => None,
    }
}

/// Text of a raw source address for log lines.
pub fn display_address(addr: &[u8]) -> FixedBuf<48> {
    let mut out = FixedBuf::new();
    if let Some(bits) = address_bits(addr) {
        let _ = if is_v4_mapped(bits) {
            write!(out, "{}", Ipv4Addr::from(bits as u32))
        } else {
            write!(out, "{}", Ipv6Addr::from(bits))
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_keys_are_whole_addresses() {
        let k = Key::from_bytes(&[127, 0, 0, 2], 64).unwrap();
        assert_eq!(k.to_string(), "127.0.0.2");
        assert_ne!(k, Key::from_bytes(&[127, 0, 0, 3], 64).unwrap());
    }

    #[test]
    fn ipv6_keys_share_a_prefix() {
        let a = Key::parse("2001:db8::1", 64).unwrap();
        let b = Key::parse("2001:db8::ffff:1", 64).unwrap();
        let c = Key::parse("2001:db8:0:1::1", 64).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8::/64");
        assert_eq!(Key::parse("::1", 64).unwrap().to_string(), "::/64");
        assert_eq!(Key::parse("[::1]", 128).unwrap().to_string(), "::1");
    }

    #[test]
    fn mapped_ipv6_is_the_ipv4_source() {
        let mapped = Key::parse("::ffff:192.0.2.7", 64).unwrap();
        assert_eq!(mapped, Key::from_bytes(&[192, 0, 2, 7], 64).unwrap());
    }

    #[test]
    fn state_file_keys_round_trip() {
        for text in ["10.1.2.3", "2001:db8::/64"] {
            assert_eq!(Key::parse(text, 64).unwrap().to_string(), text);
        }
    }

    #[test]
    fn networks_of_addresses() {
        let v4 = address_bits(&[198, 51, 100, 77]).unwrap();
        let n = Key::network(v4, 24);
        assert_eq!(n.to_string(), "198.51.100.0/24");
        assert!(n.is_v4_network());
        assert_eq!(n.address().to_string(), "198.51.100.0");
        assert_eq!(
            Key::network(v4, 32),
            Key::from_bytes(&[198, 51, 100, 77], 64).unwrap()
        );
        let v6 = u128::from("2001:db8:1:2::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(Key::network(v6, 48).to_string(), "2001:db8:1::/48");
        for text in ["198.51.100.0/24", "2001:db8:1::/48", "10.0.0.0/8"] {
            let k = Key::parse_network(text).unwrap();
            assert_eq!(k.to_string(), text);
            assert_eq!(
                Key::from_halves_with(k.halves(), k.prefix.saturating_sub(96), k.prefix),
                k
            );
        }
        // Host bits are cleared; a length is required and must fit.
        assert_eq!(
            Key::parse_network("198.51.100.9/24").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(Key::parse_network("198.51.100.9"), None);
        assert_eq!(Key::parse_network("198.51.100.0/33"), None);
        assert_eq!(Key::parse_network("::/129"), None);
        // A whole IPv4 address is no network.
        assert!(!Key::parse("198.51.100.9", 64).unwrap().is_v4_network());
    }

    #[test]
    fn cidr_matching() {
        let v4 = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains(address_bits(&[10, 9, 8, 7]).unwrap()));
        assert!(!v4.contains(address_bits(&[11, 0, 0, 1]).unwrap()));
        let host = Cidr::parse("127.0.0.250").unwrap();
        assert!(host.contains(address_bits(&[127, 0, 0, 250]).unwrap()));
        assert!(!host.contains(address_bits(&[127, 0, 0, 251]).unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(u128::from("2001:db8:1::5".parse::<Ipv6Addr>().unwrap())));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert!(Cidr::parse("::/129").is_err());
    }
}
