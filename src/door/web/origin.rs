//! Who may open the chat's WebSocket, and who the client is behind a reverse proxy: two pure
//! functions of the request, tested without sockets.
//!
//! Why an origin check when the door sets no cookies: a page on another site could still make a
//! visitor's browser connect to this server, so the connection would come from the visitor's
//! address. That defeats address bans and per-address limits, and against a server on the
//! visitor's own machine it would come from loopback, where passwords may be sent in the clear.
//! Browsers always send `Origin` on a WebSocket handshake and scripts cannot forge it, so the
//! upgrade is allowed only when it names the page's own origin (or one the operator listed).
//!
//! Nothing here reads sockets or knows about the hub.

use std::net::IpAddr;

use crate::moderation::ban::Net;

/// How the listener is reached: decides the scheme the page's origin must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A web origin: scheme, host (lower case, IPv6 in brackets) and port (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses an `Origin` header value or a configured origin: `https://chat.example.org`,
    /// `http://127.0.0.1:7880`, `http://[::1]:7880`. `null`, paths and other schemes are refused.
    pub fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return None,
        };
        let (host, port) = host_port(rest.strip_suffix('/').unwrap_or(rest), scheme)?;
        Some(Origin { scheme, host, port })
    }

    /// The origin of a page served by a listener of `scheme` under the `Host` header `host`.
    pub fn of_host(scheme: Scheme, host: &str) -> Option<Origin> {
        let (host, port) = host_port(host, scheme)?;
        Some(Origin { scheme, host, port })
    }

    /// Whether the host is a loopback name or address: `localhost`, `*.localhost`, `127.x`,
    /// `[::1]`.
    fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || bare
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback())
    }
}

/// Splits `host[:port]` (IPv6 in brackets), lower-casing the host and filling in the scheme's
/// default port. Refuses user info, paths and empty hosts.
fn host_port(text: &str, scheme: Scheme) -> Option<(String, u16)> {
    if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let port = text[end + 1..].strip_prefix(':');
        if port.is_none() && end + 1 != text.len() {
            return None;
        }
        text[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        (&text[..=end], port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => port.parse::<u16>().ok()?,
        None => scheme.default_port(),
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// Why an upgrade was refused (answered 403, logged with the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("no valid Host header")]
    NoHost,
    #[error("origin {0:?} is not this page's origin")]
    Foreign(String),
    #[error("origin {0:?} reached the server from loopback under a name that is not loopback's (DNS rebinding?)")]
    Rebinding(String),
}

/// Decides whether an upgrade may proceed.
///
/// - No `Origin` header: allowed. Browsers always send one, so this is a program (a bot, the
///   bench), which has no visitor's address or browser to abuse.
/// - `Origin` equal to one of `allowed` (the operator's list, for a reverse proxy whose public
///   origin differs from what the listener sees): allowed.
/// - `Origin` equal to `scheme://Host`: allowed, unless the client is loopback and the host is
///   not a loopback name, which is how DNS rebinding looks (a foreign name pointed at
///   127.0.0.1).
///
/// `scheme` and `client` are the client's as the door sees them: behind a trusted proxy, the
/// forwarded ones (see [`TrustProxy`]).
pub fn check_origin(
    origin: Option<&str>,
    host: Option<&str>,
    scheme: Scheme,
    allowed: &[Origin],
    client: IpAddr,
) -> Result<(), OriginError> {
    let Some(origin_text) = origin else {
        return Ok(());
    };
    let foreign = || OriginError::Foreign(origin_text.chars().take(100).collect());
    let origin = Origin::parse(origin_text).ok_or_else(foreign)?;
    if allowed.contains(&origin) {
        return Ok(());
    }
    let own = host
        .and_then(|h| Origin::of_host(scheme, h))
        .ok_or(OriginError::NoHost)?;
    if origin != own {
        return Err(foreign());
    }
    if client.to_canonical().is_loopback() && !own.is_loopback() {
        return Err(OriginError::Rebinding(
            origin_text.chars().take(100).collect(),
        ));
    }
    Ok(())
}

/// The `--trust-proxy` setting: the proxies whose `X-Forwarded-For` is believed. Empty (the
/// default) believes nobody, so a client cannot pick its own address by sending the header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustProxy {
    proxies: Vec<Net>,
}

impl TrustProxy {
    /// Trusts nobody.
    pub fn off() -> TrustProxy {
        TrustProxy::default()
    }

    /// Trusts these proxies (the checked `--trust-proxy`).
    pub fn of(proxies: Vec<Net>) -> TrustProxy {
        TrustProxy { proxies }
    }

    /// Parses a comma-separated list of proxy addresses or prefixes (`127.0.0.1`,
    /// `10.0.0.0/24, ::1`).
    pub fn parse(list: &str) -> Result<TrustProxy, String> {
        let proxies = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Net::parse(item).ok_or_else(|| format!("not an address or prefix: {item}")))
            .collect::<Result<Vec<Net>, String>>()?;
        Ok(TrustProxy { proxies })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|net| net.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    /// `X-Forwarded-For` values (all of them, in order, as one list) are read from the right,
    /// skipping trusted proxies: the first address not trusted is the client. An entry that is
    /// not an address stops the walk at the last trusted hop, since what lies left of it could
    /// be anything the client wrote.
    pub fn client_addr<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let values: Vec<&str> = forwarded_for
            .into_iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        let mut hop = peer;
        for entry in values.iter().flat_map(|v| v.split(',')).rev() {
            match parse_forwarded(entry.trim()) {
                Some(ip) if self.trusts(ip) => hop = ip,
                Some(ip) => return ip,
                None => return hop,
            }
        }
        hop
    }

    /// Whether the client reached the proxy over HTTPS: only a trusted proxy's
    /// `X-Forwarded-Proto: https` says so (a proxy sends one value; a list is not believed).
    pub fn forwarded_https<'a>(
        &self,
        peer: IpAddr,
        forwarded_proto: impl IntoIterator<Item = &'a [u8]>,
    ) -> bool {
        let mut values = forwarded_proto.into_iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        self.trusts(peer.to_canonical()) && value.trim_ascii().eq_ignore_ascii_case(b"https")
    }
}

/// One `X-Forwarded-For` entry: `192.0.2.1`, `192.0.2.1:5555`, `2001:db8::1`, `[2001:db8::1]`
/// or `[2001:db8::1]:5555`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':')?.parse::<u16>().is_ok()) {
            return None;
        }
        return ip.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (ip, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    const REMOTE: &str = "198.51.100.7";

    /// The page's own origin may upgrade, with default ports and case folded.
    #[test]
    fn own_origin_is_allowed() {
        let ok =
            |origin, host, scheme| check_origin(Some(origin), Some(host), scheme, &[], ip(REMOTE));
        assert_eq!(
            ok("http://chat.example.org", "chat.example.org", Scheme::Http),
            Ok(())
        );
        assert_eq!(
            ok(
                "http://Chat.Example.org:80",
                "chat.example.org",
                Scheme::Http
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                "https://chat.example.org",
                "chat.example.org:443",
                Scheme::Https
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                "http://[2001:db8::1]:7880",
                "[2001:DB8::1]:7880",
                Scheme::Http
            ),
            Ok(())
        );
    }

    /// Another site, another port, another scheme, `null` and garbage are refused.
    #[test]
    fn foreign_origins_are_refused() {
        let host = Some("chat.example.org:7880");
        for origin in [
            "http://evil.example",
            "http://chat.example.org",
            "https://chat.example.org:7880",
            "http://chat.example.org:7880.evil.example",
            "null",
            "http://chat.example.org:7880@evil.example",
            "",
        ] {
            let got = check_origin(Some(origin), host, Scheme::Http, &[], ip(REMOTE));
            assert!(
                matches!(got, Err(OriginError::Foreign(_))),
                "{origin}: {got:?}"
            );
        }
        let no_host = check_origin(Some("http://a"), None, Scheme::Http, &[], ip(REMOTE));
        assert_eq!(no_host, Err(OriginError::NoHost));
    }

    /// A program without `Origin` may connect; a configured origin is allowed whatever the Host.
    #[test]
    fn programs_and_configured_origins() {
        assert_eq!(
            check_origin(None, None, Scheme::Http, &[], ip(REMOTE)),
            Ok(())
        );
        let allowed = [Origin::parse("https://chat.example.org").expect("origin")];
        let behind_proxy = check_origin(
            Some("https://chat.example.org"),
            Some("127.0.0.1:7880"),
            Scheme::Http,
            &allowed,
            ip("127.0.0.1"),
        );
        assert_eq!(behind_proxy, Ok(()));
    }

    /// From loopback, only loopback names pass the Host check: a foreign name pointed at
    /// 127.0.0.1 (DNS rebinding) is refused.
    #[test]
    fn rebinding_is_refused() {
        let local = ip("127.0.0.1");
        for host in [
            "localhost:7880",
            "127.0.0.1:7880",
            "[::1]:7880",
            "chat.localhost:7880",
        ] {
            let origin = format!("http://{host}");
            assert_eq!(
                check_origin(Some(&origin), Some(host), Scheme::Http, &[], local),
                Ok(())
            );
        }
        let got = check_origin(
            Some("http://evil.example:7880"),
            Some("evil.example:7880"),
            Scheme::Http,
            &[],
            local,
        );
        assert!(matches!(got, Err(OriginError::Rebinding(_))));
    }

    /// Without `--trust-proxy`, `X-Forwarded-For` is ignored.
    #[test]
    fn forwarded_for_is_ignored_by_default() {
        let headers: [&[u8]; 1] = [b"203.0.113.9"];
        assert_eq!(
            TrustProxy::off().client_addr(ip(REMOTE), headers),
            ip(REMOTE)
        );
    }

    /// A trusted proxy's header is read from the right, skipping trusted hops; anything from an
    /// untrusted peer, or left of a bad entry, is not believed.
    #[test]
    fn forwarded_for_from_trusted_proxies() {
        let trust = TrustProxy::parse("127.0.0.1, 10.0.0.0/8").expect("list");
        let proxy = ip("127.0.0.1");
        let addr = |values: &[&str]| trust.client_addr(proxy, values.iter().map(|v| v.as_bytes()));
        assert_eq!(addr(&["203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(addr(&["1.1.1.1, 203.0.113.9, 10.1.2.3"]), ip("203.0.113.9"));
        assert_eq!(addr(&["1.1.1.1", "203.0.113.9:5555"]), ip("203.0.113.9"));
        assert_eq!(addr(&["[2001:db8::5]:80"]), ip("2001:db8::5"));
        assert_eq!(addr(&["::ffff:203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(addr(&["203.0.113.9, garbage"]), proxy);
        assert_eq!(addr(&["garbage, 10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(addr(&[]), proxy);
        assert_eq!(
            addr(&["10.0.0.1"]),
            ip("10.0.0.1"),
            "all trusted: the leftmost hop"
        );
        let direct = trust.client_addr(ip(REMOTE), [b"203.0.113.9".as_slice()]);
        assert_eq!(direct, ip(REMOTE));
        assert!(TrustProxy::parse("127.0.0.1, nonsense").is_err());
    }

    /// Only a trusted proxy's single `X-Forwarded-Proto: https` makes a connection secure.
    #[test]
    fn forwarded_proto() {
        let trust = TrustProxy::parse("127.0.0.1").expect("list");
        let https: [&[u8]; 1] = [b" HTTPS "];
        assert!(trust.forwarded_https(ip("127.0.0.1"), https));
        assert!(!trust.forwarded_https(ip(REMOTE), https));
        assert!(!TrustProxy::off().forwarded_https(ip("127.0.0.1"), https));
        let two: [&[u8]; 2] = [b"https", b"http"];
        assert!(!trust.forwarded_https(ip("127.0.0.1"), two));
    }
}
