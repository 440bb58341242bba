//! Header rewriting between the client and the upstream (RFC 9110 §7.6.1):
//! hop-by-hop fields stay on their hop, `X-Forwarded-*` record the client side.

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};

/// Fields that describe one connection and are never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop fields, including every field named by `Connection`.
/// With `keep_upgrade`, `Upgrade` survives and `Connection: upgrade` is set
/// again, so a WebSocket handshake reaches the next hop.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of these: one pass over the (few) names is
    // cheaper than hashing seven names for lookups that find nothing.
    let present = headers.keys().any(is_hop_by_hop);
    if !present && !keep_upgrade {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(|name| !(keep_upgrade && name == header::UPGRADE))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// A match on the name's text: a length check and one comparison, where
/// comparing against each `HeaderName` would not be.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// True for an HTTP/1.1 request asking to switch protocols (e.g. WebSocket).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Appends the client's view to `X-Forwarded-For`, `-Proto` and `-Host`,
/// keeping what earlier proxies wrote (one comma-separated list per header).
pub fn append_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    append_list(headers, &X_FORWARDED_FOR, client_ip.as_bytes());
    append_list(headers, &X_FORWARDED_PROTO, proto.as_bytes());
    if let Some(host) = host {
        append_list(headers, &X_FORWARDED_HOST, host.as_bytes());
    }
}

fn append_list(headers: &mut HeaderMap, name: &HeaderName, value: &[u8]) {
    match headers.entry(name) {
        Entry::Vacant(slot) => {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                slot.insert(v);
            }
        }
        Entry::Occupied(mut slot) => {
            let mut all = Vec::with_capacity(64 + value.len());
            for (i, v) in slot.iter().enumerate() {
                if i > 0 {
                    all.extend_from_slice(b", ");
                }
                all.extend_from_slice(v.as_bytes());
            }
            all.extend_from_slice(b", ");
            all.extend_from_slice(value);
            if let Ok(v) = HeaderValue::from_bytes(&all) {
                slot.insert(v);
            }
        }
    }
}

/// Total size of a header block as HTTP/1 would write it, and its field count.
pub fn header_block_size(headers: &HeaderMap) -> (usize, usize) {
    headers.iter().fold((0, 0), |(bytes, count), (n, v)| {
        (bytes + n.as_str().len() + v.len() + 4, count + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn keeps_upgrade_for_websocket() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade_request(&h));
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        append_forwarded(
            &mut h,
            &HeaderValue::from_static("127.0.0.1"),
            "http",
            Some(HeaderValue::from_static("api.example")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }
}
