//! How the request's method and protocol are named in each signal. Each is
//! classified once when the exchange starts and rendered from one table, so
//! metrics, spans, logs and Sentry cannot drift apart.

use http::{Method, Version};

/// The request method, bounded: the standard methods, and `Other` for the
/// rest, so a client cannot mint label values or span names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownMethod {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Connect,
    Trace,
    Other,
}

/// `(method, metric label, semantic-conventions name)`, in index order.
const METHODS: [(KnownMethod, &str, &str); 10] = [
    (KnownMethod::Get, "GET", "GET"),
    (KnownMethod::Post, "POST", "POST"),
    (KnownMethod::Put, "PUT", "PUT"),
    (KnownMethod::Delete, "DELETE", "DELETE"),
    (KnownMethod::Head, "HEAD", "HEAD"),
    (KnownMethod::Options, "OPTIONS", "OPTIONS"),
    (KnownMethod::Patch, "PATCH", "PATCH"),
    (KnownMethod::Connect, "CONNECT", "CONNECT"),
    (KnownMethod::Trace, "TRACE", "TRACE"),
    // The metrics contract says OTHER; the HTTP conventions say _OTHER.
    (KnownMethod::Other, "OTHER", "_OTHER"),
];

impl KnownMethod {
    /// Every method, in index order.
    pub const ALL: [KnownMethod; 10] = {
        let mut all = [KnownMethod::Other; 10];
        let mut i = 0;
        while i < METHODS.len() {
            all[i] = METHODS[i].0;
            i += 1;
        }
        all
    };

    pub fn of(method: &Method) -> Self {
        match *method {
            Method::GET => Self::Get,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::DELETE => Self::Delete,
            Method::HEAD => Self::Head,
            Method::OPTIONS => Self::Options,
            Method::PATCH => Self::Patch,
            Method::CONNECT => Self::Connect,
            Method::TRACE => Self::Trace,
            _ => Self::Other,
        }
    }

    /// Position in [`ALL`](Self::ALL), for tables of handles.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `method` label of metrics and Sentry's `http.method` tag.
    pub fn label(self) -> &'static str {
        METHODS[self.index()].1
    }

    /// `http.request.method` and span names, per the HTTP conventions.
    pub fn semconv(self) -> &'static str {
        METHODS[self.index()].2
    }
}

/// `(version, access log's protocol, network.protocol.version)`.
const PROTOCOLS: [(Version, &str, &str); 5] = [
    (Version::HTTP_09, "HTTP/0.9", "0.9"),
    (Version::HTTP_10, "HTTP/1.0", "1.0"),
    (Version::HTTP_11, "HTTP/1.1", "1.1"),
    (Version::HTTP_2, "HTTP/2.0", "2"),
    (Version::HTTP_3, "HTTP/3.0", "3"),
];

fn protocol(version: Version) -> &'static (Version, &'static str, &'static str) {
    PROTOCOLS
        .iter()
        .find(|(v, _, _)| *v == version)
        .unwrap_or(&PROTOCOLS[2])
}

/// The access log's `protocol`: `HTTP/1.1`.
pub fn protocol_log_name(version: Version) -> &'static str {
    protocol(version).1
}

/// The span's `network.protocol.version`: `1.1`.
pub fn protocol_semconv(version: Version) -> &'static str {
    protocol(version).2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_renders_from_its_row() {
        for (i, method) in KnownMethod::ALL.iter().enumerate() {
            assert_eq!(method.index(), i);
            assert_eq!(METHODS[i].0, *method);
        }
        assert_eq!(KnownMethod::of(&Method::POST).label(), "POST");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(KnownMethod::of(&custom).label(), "OTHER");
        assert_eq!(KnownMethod::of(&custom).semconv(), "_OTHER");
    }

    #[test]
    fn protocols() {
        assert_eq!(protocol_log_name(Version::HTTP_2), "HTTP/2.0");
        assert_eq!(protocol_semconv(Version::HTTP_2), "2");
        assert_eq!(protocol_log_name(Version::HTTP_11), "HTTP/1.1");
        assert_eq!(protocol_semconv(Version::HTTP_10), "1.0");
    }
}
