//! The client address behind proxies.
use crate::extract::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::DescribeInput;
use axum::extract::ConnectInfo;
use axum::response::Response;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use http::request::Parts;
use http::{Extensions, HeaderMap, Request};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// Which peers may tell the client's address in `X-Forwarded-For`
/// (uvicorn's `FORWARDED_ALLOW_IPS`).
///
/// Parsed from a comma-separated list of addresses and CIDR networks, or
/// `*` for every peer; the empty string trusts nobody.
///
/// ```
/// use ferrapi::middleware::TrustedProxies;
///
/// let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1, ::1".parse().unwrap();
/// assert!(trusted.is_trusted("10.1.2.3".parse().unwrap()));
/// assert!(!trusted.is_trusted("192.0.2.1".parse().unwrap()));
/// assert!("not-an-ip".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Trust);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Trust {
    #[default]
    Nobody,
    Everybody,
    Networks(Vec<Network>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
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

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket
/// reports) compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A malformed trusted-proxy list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{entry}` is not an IP address or CIDR network (expected e.g. `10.0.0.1`, `10.0.0.0/8`, `::1` or `*`)"
)]
pub struct TrustedProxiesError {
    /// The entry that could not be read.
    pub entry: String,
}

impl TrustedProxies {
    /// Trusts nobody: the peer address is the client's (the default).
    pub fn none() -> Self {
        Self(Trust::Nobody)
    }

    /// Trusts every peer: only for a server reachable solely through the
    /// proxy.
    pub fn all() -> Self {
        Self(Trust::Everybody)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        match &self.0 {
            Trust::Nobody => false,
            Trust::Everybody => true,
            Trust::Networks(nets) => nets.iter().any(|n| n.contains(ip)),
        }
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut current = canonical(peer);
        if !self.is_trusted(current) {
            return current;
        }
        // All `X-Forwarded-For` lines, in order, as one list; walked from
        // the proxy nearest to us outward.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from beyond the last trusted hop: the nearest
                // address we know is the best answer.
                return current;
            };
            current = canonical(ip);
            if !self.is_trusted(current) {
                return current;
            }
        }
        current
    }
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let entries: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::none());
        }
        if entries.contains(&"*") {
            return Ok(Self::all());
        }
        let mut nets = Vec::with_capacity(entries.len());
        for entry in entries {
            let bad = || TrustedProxiesError {
                entry: entry.to_owned(),
            };
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
                None => (entry, None),
            };
            let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix.unwrap_or(max);
            if prefix > max {
                return Err(bad());
            }
            nets.push(Network { addr, prefix });
        }
        Ok(Self(Trust::Networks(nets)))
    }
}

/// The client's IP address: resolved by [`ClientIpLayer`] when installed
/// (through trusted proxies), else the connection's peer address.
///
/// ```
/// use ferrapi::middleware::ClientIp;
/// use ferrapi::prelude::*;
///
/// #[get("/ip")]
/// async fn ip(ClientIp(ip): ClientIp) -> String {
///     ip.to_string()
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client address of a request: the [`ClientIp`] a
    /// [`ClientIpLayer`] stored, else `trusted` applied to the peer address;
    /// `None` without a peer address (a server that does not record it).
    pub fn resolve(
        extensions: &Extensions,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> Option<IpAddr> {
        if let Some(ClientIp(ip)) = extensions.get::<ClientIp>() {
            return Some(*ip);
        }
        let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
        Some(trusted.client_ip(peer, headers))
    }
}

impl FromRequestParts for ClientIp {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        match ClientIp::resolve(&parts.extensions, &parts.headers, &TrustedProxies::none()) {
            Some(ip) => Ok(ClientIp(ip)),
            None => Err(super::request_id::MissingLayer {
                extractor: "ClientIp",
                layer: "ConnectInfo (served by App::serve or TestClient)",
            }
            .into()),
        }
    }
}

impl DescribeInput for ClientIp {}

/// The scheme the client used: `https` when a trusted proxy says so in
/// `X-Forwarded-Proto` (uvicorn's `--proxy-headers`), else `http` (the
/// server itself speaks plain HTTP). Stored by [`ClientIpLayer`]; an
/// extractor for handlers that build absolute URLs.
///
/// ```
/// use ferrapi::middleware::ClientScheme;
/// use ferrapi::prelude::*;
///
/// #[get("/self")]
/// async fn me(scheme: ClientScheme) -> String {
///     format!("{}://example.com/self", scheme.as_str())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientScheme {
    /// Plain HTTP.
    Http,
    /// HTTPS, terminated by a trusted proxy.
    Https,
}

impl ClientScheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientScheme::Http => "http",
            ClientScheme::Https => "https",
        }
    }

    /// The scheme of a request from `peer`: `X-Forwarded-Proto` (its first
    /// value) when `peer` is trusted, else `http`.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> Self {
        if !trusted.is_trusted(peer) {
            return ClientScheme::Http;
        }
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim);
        match proto {
            Some(p) if p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("wss") => {
                ClientScheme::Https
            }
            _ => ClientScheme::Http,
        }
    }
}

impl FromRequestParts for ClientScheme {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(parts
            .extensions
            .get::<ClientScheme>()
            .copied()
            .unwrap_or(ClientScheme::Http))
    }
}

impl DescribeInput for ClientScheme {}

/// The client's address behind proxies: [`TrustedProxies`] says whose
/// `X-Forwarded-For` is believed, [`ClientIpLayer`] resolves the address once
/// per request, [`ClientIp`] hands it to handlers.
///
/// The peer address comes from the connection (`ConnectInfo`, set by
/// [`App::serve`](crate::App::serve) and the test client). When the peer is
/// a trusted proxy, `X-Forwarded-For` is read from right to left, skipping
/// trusted hops; the first untrusted address is the client. A client talking
/// to the server directly cannot spoof its address: its own
/// `X-Forwarded-For` is ignored.
///
/// Resolves the client address once per request and stores it as
/// [`ClientIp`] in the request's extensions, for handlers, logs and the
/// rate limiter.
///
/// ```
/// use ferrapi::middleware::ClientIpLayer;
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(ClientIpLayer::new("10.0.0.0/8".parse().unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct ClientIpLayer {
    trusted: Arc<TrustedProxies>,
}

impl ClientIpLayer {
    /// Believes `X-Forwarded-For` from `trusted` peers only.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            trusted: Arc::new(trusted),
        }
    }
}

super::hook_layer!(ClientIpLayer, ClientIpService);

/// A request half only: the address and scheme in the request's
/// extensions (nothing kept for the response).
impl Hook for ClientIpLayer {
    type State = ();
    type Wait = NoWait<()>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<()> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(peer) = peer {
            let ip = self.trusted.client_ip(peer, req.headers());
            let scheme = ClientScheme::resolve(peer, req.headers(), &self.trusted);
            req.extensions_mut().insert(ClientIp(ip));
            req.extensions_mut().insert(scheme);
        }
        Flow::Continue(())
    }

    #[inline]
    fn finish((): (), res: Response) -> Response {
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = v.parse() {
            h.insert("x-forwarded-for", v);
        }
        h
    }

    #[test]
    fn forwarded_proto_is_believed_from_trusted_peers_only() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-proto",
            http::HeaderValue::from_static("https, http"),
        );
        let trusted: TrustedProxies = "10.0.0.0/8"
            .parse()
            .unwrap_or_else(|_| TrustedProxies::none());
        assert_eq!(
            ClientScheme::resolve(ip("10.1.2.3"), &h, &trusted),
            ClientScheme::Https
        );
        assert_eq!(
            ClientScheme::resolve(ip("192.0.2.9"), &h, &trusted),
            ClientScheme::Http
        );
        assert_eq!(
            ClientScheme::resolve(ip("10.1.2.3"), &HeaderMap::new(), &trusted),
            ClientScheme::Http
        );
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let t = TrustedProxies::none();
        assert_eq!(
            t.client_ip(ip("192.0.2.9"), &xff("1.1.1.1")),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap_or_default();
        // The client forged the first entry; the proxy appended the real one.
        let h = xff("6.6.6.6, 203.0.113.7, 10.0.0.2");
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.7"));
        // Every hop trusted: the leftmost.
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("10.9.9.9")),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Garbage beyond the trusted hops: the nearest known address.
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("nonsense")),
            ip("10.0.0.1")
        );
        // Ports and brackets.
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("[2001:db8::1]:443")),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("198.51.100.2:5555")),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn parsing() {
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::none()));
        assert_eq!("*".parse::<TrustedProxies>(), Ok(TrustedProxies::all()));
        let t: TrustedProxies = "127.0.0.1, ::1, 2001:db8::/32".parse().unwrap_or_default();
        assert!(t.is_trusted(ip("127.0.0.1")));
        assert!(t.is_trusted(ip("::ffff:127.0.0.1")));
        assert!(t.is_trusted(ip("::1")));
        assert!(t.is_trusted(ip("2001:db8:ffff::1")));
        assert!(!t.is_trusted(ip("127.0.0.2")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("10.0.0.0/x".parse::<TrustedProxies>().is_err());
        assert_eq!(
            "1.2.3.4, nope"
                .parse::<TrustedProxies>()
                .map_err(|e| e.entry),
            Err("nope".to_owned())
        );
        let all_v4: TrustedProxies = "0.0.0.0/0".parse().unwrap_or_default();
        assert!(all_v4.is_trusted(ip("8.8.8.8")));
        assert!(!all_v4.is_trusted(ip("::2")));
    }
}
