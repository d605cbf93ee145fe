//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address), for
//! trusted proxies and address allowlists.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the range. An IPv4 address written as IPv6
    /// (`::ffff:10.0.0.1`) matches IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Cidr {
    /// The same range written one way: host bits cleared (`10.1.2.3/8` is
    /// `10.0.0.0/8`), and an IPv4 range written as IPv6 (`::ffff:10.0.0.0/104`) as IPv4.
    fn normalised(self) -> Cidr {
        match self.network {
            IpAddr::V6(v6) if self.prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                let v4 = v6.to_ipv4_mapped().map_or(self.network, IpAddr::V4);
                Cidr {
                    network: v4,
                    prefix: self.prefix - 96,
                }
                .normalised()
            }
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                Cidr {
                    network: IpAddr::V4((u32::from(v4) & mask).into()),
                    prefix: self.prefix,
                }
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                Cidr {
                    network: IpAddr::V6((u128::from(v6) & mask).into()),
                    prefix: self.prefix,
                }
            }
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an address or a CIDR range");
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Cidr { network, prefix }.normalised())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A comma-separated list of ranges, as settings write them.
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(Cidr::from_str)
        .collect()
}

/// The most ranges one token's allowlist may hold.
pub const MAX_ALLOWLIST: usize = 32;

/// A token's address allowlist: normalised ranges, without repeats, in the order
/// given; never empty (no allowlist is `None`). Stored as text, space-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist(Vec<Cidr>);

impl Allowlist {
    /// Reads what a person or client typed: entries separated by commas, spaces or
    /// lines (a bare address is its /32 or /128). None when there is no entry.
    pub fn parse_input<'a>(
        parts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Allowlist>, String> {
        let mut ranges: Vec<Cidr> = Vec::new();
        for entry in parts
            .into_iter()
            .flat_map(|p| p.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|e| !e.is_empty())
        {
            let cidr: Cidr = entry.parse()?;
            if !ranges.contains(&cidr) {
                ranges.push(cidr);
            }
            if ranges.len() > MAX_ALLOWLIST {
                return Err(format!(
                    "An allowlist holds at most {MAX_ALLOWLIST} addresses or ranges."
                ));
            }
        }
        Ok((!ranges.is_empty()).then_some(Allowlist(ranges)))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The ranges as text, for JSON and the pages.
    pub fn strings(&self) -> Vec<String> {
        self.0.iter().map(Cidr::to_string).collect()
    }
}

impl fmt::Display for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.strings().join(" "))
    }
}

impl FromStr for Allowlist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Allowlist::parse_input([s])?.ok_or_else(|| "an empty allowlist".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses() {
        let ten: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(ten.contains(ip("10.1.2.3")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.0.0.1")), "mapped IPv4");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")));
        assert_eq!(ten.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.1/-1",
            "1.2.3.4/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_list("127.0.0.1/8, ::1").unwrap().len(), 2);
        assert!(parse_list("127.0.0.1/8, nope").is_err());
        assert!(parse_list("").unwrap().is_empty());
        assert!("10.0.0.0/+8".parse::<Cidr>().is_err());
    }

    #[test]
    fn ranges_are_normalised() {
        let text = |s: &str| s.parse::<Cidr>().unwrap().to_string();
        assert_eq!(text("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(text("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(text("2001:DB8::1"), "2001:db8::1/128");
        assert_eq!(text("2001:db8:ffff::/32"), "2001:db8::/32");
        assert_eq!(text("::ffff:10.9.9.9/104"), "10.0.0.0/8");
        assert_eq!(text("0.0.0.0/0"), "0.0.0.0/0");
    }

    #[test]
    fn allowlists_read_typed_lists() {
        let list = Allowlist::parse_input(["10.0.0.1, 10.0.0.1/32\n2001:db8::/48", " "])
            .unwrap()
            .unwrap();
        assert_eq!(list.strings(), ["10.0.0.1/32", "2001:db8::/48"]);
        assert!(list.allows(ip("2001:db8:0:1::9")));
        assert!(!list.allows(ip("2001:db8:1::9")));
        assert!(list.allows(ip("::ffff:10.0.0.1")));
        assert_eq!(list.to_string().parse::<Allowlist>().unwrap(), list);
        assert_eq!(Allowlist::parse_input(["", " , "]).unwrap(), None);
        assert!(Allowlist::parse_input(["10.0.0.0/33"]).is_err());
        let many: Vec<String> = (0..33).map(|i| format!("10.0.0.{i}")).collect();
        assert!(Allowlist::parse_input(many.iter().map(String::as_str)).is_err());
        assert!(Allowlist::parse_input(many[..32].iter().map(String::as_str)).is_ok());
    }
}
