//! Listener and admin addresses as operators write them: `0.0.0.0:8080`,
//! `[::1]:9901`, `:8080` (every interface, as Go and Envoy read it),
//! `localhost:9901` or any host name. Names are resolved once, at load, so
//! `check` shows the address the process will bind and a name that does not
//! resolve fails before anything starts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use serde::{de, Deserialize, Deserializer};

const FORMS: &str = "write IP:PORT, [IPv6]:PORT, :PORT (every interface) or HOST:PORT";

/// Parses one address, resolving a host name with the system resolver.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} has no port; {FORMS}"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: {port:?} is not a port number; {FORMS}"))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if host.starts_with('[') || host.contains(':') {
        return Err(format!("{text:?} is not a valid address; {FORMS}"));
    }
    resolve(host, port)
}

/// The first IPv4 address of the name, else its first address: an IPv4
/// loopback or pod address works in IPv4-only containers, which are the
/// common case, while `localhost` often resolves to `::1` first.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host:?}: {e}; {FORMS}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("host {host:?} resolves to no address; {FORMS}"))
}

/// `#[serde(deserialize_with = ...)]` for a `SocketAddr` field.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form() {
        let cases = [
            ("0.0.0.0:8080", "0.0.0.0:8080"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:9901", "[::1]:9901"),
            ("[::]:8080", "[::]:8080"),
            (":8080", "0.0.0.0:8080"),
            (" :9901 ", "0.0.0.0:9901"),
            ("localhost:9901", "127.0.0.1:9901"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap().to_string(), want, "{text}");
        }
    }

    #[test]
    fn refusals_say_what_to_write() {
        for bad in [
            "localhost",
            "8080",
            "host:port",
            "::1:8080",
            "[::1]",
            "127.0.0.1:70000",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(":PORT (every interface)"), "{bad}: {error}");
        }
    }
}
