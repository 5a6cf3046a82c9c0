//! The SSRF guard: which webhook targets may be reached.
//!
//! A subscriber chooses the URL, so without a guard a webhook is a request forgery primitive against the
//! server's own network (loopback services, the private network, the cloud metadata endpoint). Checks
//! happen twice:
//!
//! 1. [`validate_url`] when a subscription is created and before every request: scheme, host, no
//!    credentials, and an IP-literal host checked by [`check_ip`] (reqwest never resolves IP literals, so
//!    this is the only check they get);
//! 2. [`GuardedResolver`], the HTTP client's DNS resolver, at connect time: every address a name resolves
//!    to is checked, so a name that resolved to a public address at creation and to `127.0.0.1` now (DNS
//!    rebinding) is refused, and the address checked is the address connected to.
//!
//! `allow_private = true` (development, tests) disables the address checks, not the URL shape checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The IPv4 cloud metadata address (AWS, GCP, Azure, …).
pub const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The AWS IPv6 metadata address (`fd00:ec2::254`).
pub const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The kind of address a refused target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressKind {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `0.0.0.0`, `::` and the rest of `0.0.0.0/8` ("this network", which reaches the local host).
    Unspecified,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    /// The cloud metadata endpoint: `169.254.169.254` or `fd00:ec2::254`.
    CloudMetadata,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4` (reserved) and `192.0.0.0/24` (IETF protocol assignments).
    Reserved,
}

impl std::fmt::Display for AddressKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Unspecified => "an unspecified (this-host) address",
            Self::Private => "a private-network address",
            Self::SharedAddressSpace => "a carrier-grade NAT address (100.64.0.0/10)",
            Self::CloudMetadata => "the cloud metadata endpoint (169.254.169.254 / fd00:ec2::254)",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "an IPv6 unique-local address (fc00::/7)",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// An address webhooks may not be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {kind}, which webhooks may not target")]
pub struct RefusedTarget {
    /// The address as given (for an IPv4-mapped IPv6 address, the IPv6 form).
    pub ip: IpAddr,
    /// What it is.
    pub kind: AddressKind,
}

/// Why a webhook target URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not a URL.
    #[error("not a valid URL")]
    Parse(#[source] url::ParseError),
    /// A scheme other than `http` or `https`.
    #[error("the scheme {0:?} is not allowed: use http or https")]
    Scheme(String),
    /// No host.
    #[error("the URL has no host")]
    MissingHost,
    /// A user name or password in the URL (they would end up in logs and attempt histories).
    #[error("the URL carries credentials (user:password@): put them in the receiver's configuration instead")]
    Credentials,
    /// The host is an address webhooks may not target.
    #[error("refused target address")]
    Refused(#[from] RefusedTarget),
    /// The host name did not resolve.
    #[error("resolving {host} failed")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The host name resolved to no address.
    #[error("{host} resolves to no address")]
    NoAddresses {
        /// The host name.
        host: String,
    },
    /// The host name resolved to an address webhooks may not target.
    #[error("{host} resolves to a refused address")]
    ResolvedRefused {
        /// The host name.
        host: String,
        /// The refused address.
        #[source]
        source: RefusedTarget,
    },
}

/// Refuses addresses that reach the local host or a private, link-local, metadata, multicast or reserved
/// network, in IPv4 and IPv6 — including IPv4 addresses embedded in IPv6 (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), which reach the IPv4 address.
pub fn check_ip(ip: IpAddr) -> Result<(), RefusedTarget> {
    let kind = match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    };
    match kind {
        Some(kind) => Err(RefusedTarget { ip, kind }),
        None => Ok(()),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        AddressKind::Loopback
    } else if a == 0 {
        AddressKind::Unspecified
    } else if ip.is_private() {
        AddressKind::Private
    } else if a == 100 && (b & 0xc0) == 64 {
        AddressKind::SharedAddressSpace
    } else if ip == METADATA_V4 {
        AddressKind::CloudMetadata
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if ip.is_broadcast() {
        AddressKind::Broadcast
    } else if a >= 240 || (a == 192 && b == 0 && c == 0) {
        AddressKind::Reserved
    } else {
        return None;
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<AddressKind> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some(AddressKind::Loopback);
    }
    if ip.is_unspecified() {
        return Some(AddressKind::Unspecified);
    }
    if let Some(v4) = embedded_v4(ip) {
        return v4_kind(v4);
    }
    Some(if ip == METADATA_V6 {
        AddressKind::CloudMetadata
    } else if ip.is_unique_local() {
        AddressKind::UniqueLocal
    } else if ip.is_unicast_link_local() || (s[0] & 0xffc0) == 0xfec0 {
        // fec0::/10 (deprecated site-local) is as internal as link-local.
        AddressKind::LinkLocal
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 address reaches, for the forms that embed one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (deprecated): ::a.b.c.d (:: and ::1 are handled before).
        Some(last)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix.
        Some(last)
    } else if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48.
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// Parses and checks a webhook target URL: `http` or `https`, a host, no credentials, and — unless
/// `allow_private` — an IP-literal host that [`check_ip`] accepts. Host names are checked when they are
/// resolved, by [`GuardedResolver`].
pub fn validate_url(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(url).map_err(TargetError::Parse)?;
    check_url(&url, allow_private)?;
    Ok(url)
}

/// [`validate_url`] for an already-parsed URL.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let ip = match url.host().ok_or(TargetError::MissingHost)? {
        Host::Domain("") => return Err(TargetError::MissingHost),
        Host::Domain(_) => return Ok(()),
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
    };
    if !allow_private {
        check_ip(ip)?;
    }
    Ok(())
}

/// The HTTP client's DNS resolver: resolves with the system resolver (tokio's `lookup_host`) and, unless
/// `allow_private`, fails when *any* resolved address is refused by [`check_ip`] — the connect-time
/// re-check against DNS rebinding. reqwest does not call it for IP-literal hosts: see [`validate_url`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver {
    /// Accept every address (development and tests only).
    pub allow_private: bool,
}

impl GuardedResolver {
    /// A resolver refusing private targets unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Resolves `host` and checks every address.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, TargetError> {
        let resolved = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| TargetError::Resolve { host: host.to_owned(), source })?;
        let addrs: Vec<SocketAddr> = resolved.collect();
        if addrs.is_empty() {
            return Err(TargetError::NoAddresses { host: host.to_owned() });
        }
        if !self.allow_private {
            for addr in &addrs {
                check_ip(addr.ip())
                    .map_err(|source| TargetError::ResolvedRefused { host: host.to_owned(), source })?;
            }
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = *self;
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await.inspect_err(|error| {
                tracing::debug!(
                    host = name.as_str(),
                    error = error as &dyn std::error::Error,
                    "webhook target refused at resolution"
                );
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ip_refuses_internal_addresses() {
        use AddressKind::*;
        let refused: &[(&str, AddressKind)] = &[
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.254", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.254", SharedAddressSpace),
            ("169.254.169.254", CloudMetadata),
            ("169.254.0.1", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", UniqueLocal),
            ("fdff:ffff::1", UniqueLocal),
            ("fd00:ec2::254", CloudMetadata),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", LinkLocal),
            ("ff02::1", Multicast),
            // IPv4-mapped, -compatible, NAT64 and 6to4 forms reach the IPv4 address.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:255.255.255.255", Broadcast),
            ("::127.0.0.1", Loopback),
            ("::192.168.0.1", Private),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("64:ff9b::7f00:1", Loopback),
            ("2002:7f00:1::1", Loopback),
            ("2002:c0a8:101::", Private),
        ];
        for (ip, kind) in refused {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(check_ip(ip), Err(RefusedTarget { ip, kind: *kind }), "{ip}");
        }
    }

    #[test]
    fn check_ip_allows_public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(check_ip(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn the_metadata_address_is_named_in_the_error() {
        let error = check_ip("169.254.169.254".parse().unwrap()).unwrap_err().to_string();
        assert!(error.contains("metadata") && error.contains("169.254.169.254"), "{error}");
    }

    #[test]
    fn validate_url_checks_shape_and_literal_addresses() {
        assert_eq!(validate_url("https://hooks.example.com/x?y=1", false).unwrap().path(), "/x");
        validate_url("http://93.184.216.34:8080/", false).unwrap();
        validate_url("http://127.0.0.1:9000/hook", true).unwrap();
        // Names are left to the resolver, even `localhost`.
        validate_url("http://localhost/", false).unwrap();

        assert!(matches!(validate_url("not a url", false), Err(TargetError::Parse(_))));
        assert!(
            matches!(validate_url("ftp://example.com/", false), Err(TargetError::Scheme(s)) if s == "ftp")
        );
        assert!(matches!(validate_url("file:///etc/passwd", true), Err(TargetError::Scheme(_))));
        assert!(matches!(validate_url("https://user:pw@example.com/", false), Err(TargetError::Credentials)));
        assert!(matches!(validate_url("https://user@example.com/", true), Err(TargetError::Credentials)));
        for url in [
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            // WHATWG parsing turns these spellings into 127.0.0.1 too.
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0/",
        ] {
            assert!(matches!(validate_url(url, false), Err(TargetError::Refused(_))), "{url}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        let error = GuardedResolver::new(false).lookup("localhost").await.unwrap_err();
        assert!(
            matches!(&error, TargetError::ResolvedRefused { host, source } if host == "localhost" && source.kind == AddressKind::Loopback),
            "{error:?}"
        );
        let addrs = GuardedResolver::new(true).lookup("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
