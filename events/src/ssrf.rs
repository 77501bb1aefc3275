//! Which URLs recaudo may call (DESIGN.md, Events: SSRF). A webhook URL must be `https`,
//! carry no credentials, and every address its host resolves to must be public: not
//! private, loopback, link-local (the cloud metadata service at 169.254.169.254), shared
//! (carrier-grade NAT), multicast, reserved or unspecified, in IPv4 or IPv6 (IPv4 mapped
//! into IPv6 included). The check runs at registration and again before every delivery,
//! and the delivery connects to the very addresses checked, so a name that changes its
//! answer (DNS rebinding) cannot steer it inside.
//!
//! `RECAUDO_WEBHOOK_ALLOW_PRIVATE=true` lifts the address rule and allows `http`, for
//! development and tests only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// What may be called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Development only: private addresses and `http` allowed.
    pub allow_private: bool,
}

/// Why a URL is refused. Each says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not valid: {0}")]
    NotAUrl(String),
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL must be https")]
    NotHttps,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host {host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error(
        "the host {host} resolves to {addr}, which is not a public address (private, \
         loopback, link-local or reserved addresses are never called)"
    )]
    NotPublic { host: String, addr: IpAddr },
}

/// Parses a webhook URL and checks what can be checked without DNS.
pub fn parse(text: &str, policy: Policy) -> Result<Url, Refused> {
    if text.len() > MAX_URL_LEN {
        return Err(Refused::TooLong);
    }
    let url = Url::parse(text).map_err(|e| Refused::NotAUrl(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        _ => return Err(Refused::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Refused::NoHost);
    }
    Ok(url)
}

/// The addresses `url` may be called at: every address its host resolves to, each public
/// (unless the policy allows private ones).
pub async fn resolve(url: &Url, policy: Policy) -> Result<Vec<SocketAddr>, Refused> {
    let host = url.host_str().ok_or(Refused::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(443);
    // An IPv6 literal comes bracketed; an IP literal needs no lookup.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Refused::Unresolvable {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolvable {
            host: host.to_string(),
            reason: "no addresses".into(),
        });
    }
    if !policy.allow_private
        && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
    {
        return Err(Refused::NotPublic {
            host: host.to_string(),
            addr: bad.ip(),
        });
    }
    Ok(addrs)
}

/// Parses and resolves: the whole check, as at registration.
pub async fn check(text: &str, policy: Policy) -> Result<Url, Refused> {
    let url = parse(text, policy)?;
    resolve(&url, policy).await?;
    Ok(url)
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) addresses reach IPv4 ones.
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the old site-local, fec0::/10.
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (s[0] == 0x2001 && s[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_private: false,
    };

    #[tokio::test]
    async fn inside_addresses_and_plain_http_are_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://172.16.5.4/hook",
            "https://192.168.1.1/hook",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:169.254.169.254]/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://localhost/hook",
        ] {
            assert!(
                matches!(check(url, STRICT).await, Err(Refused::NotPublic { .. })),
                "{url} was not refused as inside"
            );
        }
        assert_eq!(
            check("http://93.184.215.14/hook", STRICT).await,
            Err(Refused::NotHttps)
        );
        assert_eq!(
            check("https://user:pw@93.184.215.14/hook", STRICT).await,
            Err(Refused::Credentials)
        );
        assert!(matches!(
            check("not a url", STRICT).await,
            Err(Refused::NotAUrl(_))
        ));
    }

    #[tokio::test]
    async fn a_public_address_passes_and_the_override_lets_loopback_in() {
        assert!(check("https://93.184.215.14/hook", STRICT).await.is_ok());
        assert!(
            check("https://[2606:4700::1111]/hook", STRICT)
                .await
                .is_ok()
        );
        let dev = Policy {
            allow_private: true,
        };
        assert!(check("http://127.0.0.1:9/hook", dev).await.is_ok());
        assert!(check("https://localhost/hook", dev).await.is_ok());
    }
}
