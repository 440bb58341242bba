//! What the connection knows about the client side, carried by every
//! exchange on it.

use std::net::SocketAddr;

use http::HeaderValue;

/// What the connection knows about the client side.
#[derive(Debug, Clone)]
pub struct ClientSide {
    pub addr: SocketAddr,
    pub tls: bool,
    /// The client IP as `X-Forwarded-For` writes it, formatted once per connection.
    pub ip: HeaderValue,
}

impl ClientSide {
    /// `url.scheme` of the requests on this connection.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    pub fn new(addr: SocketAddr, tls: bool) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string())
            .expect("an IP address is a valid header value");
        Self { addr, tls, ip }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_follows_the_listener() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_eq!(ClientSide::new(addr, false).scheme(), "http");
        assert_eq!(ClientSide::new(addr, true).scheme(), "https");
    }
}
