//! Who the client is, for throttling: the TCP peer, unless the peer is a proxy the operator
//! trusts (`TRUSTED_PROXIES`); then the right-most `X-Forwarded-For` address that is not a
//! trusted proxy. `Forwarded` is ignored: anything a client can write itself is no address.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// One `TRUSTED_PROXIES` entry: an address or a CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(raw: &str) -> Result<Self, String> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{raw}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{raw}`: the prefix length must be 0-{max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
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

/// `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `TRUSTED_PROXIES`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| Net::parse(e))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless trusted; then the right-most
    /// `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the address
    /// it saw, so entries left of the first untrusted one may be made up by the client).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
            match parse_forwarded_addr(entry) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // Garbage where an address should be: stop at the last address we trust.
                None => return client,
            }
        }
        client
    }

    /// The client address of a request, as text (for throttling keys).
    pub fn client_of(&self, req: &HttpRequest) -> String {
        let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
            return "unknown".into();
        };
        if self.is_empty() {
            return canonical(peer).to_string();
        }
        let headers: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        self.client(peer, &headers).to_string()
    }
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:51000`.
fn parse_forwarded_addr(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = raw.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let p = TrustedProxies::default();
        assert_eq!(
            p.client(ip("198.51.100.9"), &["1.2.3.4"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("198.51.100.9"), &["1.2.3.4"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client wrote "6.6.6.6" itself; the proxies appended what they saw.
        assert_eq!(
            p.client(ip("10.0.0.2"), &["6.6.6.6, 203.0.113.7, 192.168.1.1"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            p.client(ip("10.0.0.2"), &["6.6.6.6", "203.0.113.7:5000"]),
            ip("203.0.113.7")
        );
        // Only proxies in the chain: the left-most of them.
        assert_eq!(p.client(ip("10.0.0.2"), &["10.1.1.1"]), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        // Garbage does not become an address.
        assert_eq!(p.client(ip("10.0.0.2"), &["unknown"]), ip("10.0.0.2"));
    }

    #[test]
    fn mapped_ipv4_and_ipv6_ranges_match() {
        let p = proxies(&["127.0.0.1", "fd00::/8"]);
        assert!(p.trusts(ip("::ffff:127.0.0.1")));
        assert!(p.trusts(ip("fd12::1")));
        assert!(!p.trusts(ip("fe80::1")));
        assert!(proxies(&["0.0.0.0/0"]).trusts(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["10.0.0.0/33", "not-an-ip", "::/129", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
