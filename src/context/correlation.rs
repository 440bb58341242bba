//! The correlation ID: accepted from the client when valid, generated otherwise.
//!
//! Valid means 1–128 visible ASCII characters (no spaces or control bytes), so
//! the value is safe to put in headers, logs and label-free fields as is.
//! Invalid values are discarded and only their header name and length logged:
//! a hostile value never reaches a log line raw.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

const MAX_LEN: usize = 128;

/// A validated correlation ID. Cheap to clone (shares the header's bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct CorrelationId(HeaderValue);

/// An inbound value that was not valid: where it was, and how long.
/// Its content is never kept, so it cannot reach a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub header: HeaderName,
    pub length: usize,
}

impl CorrelationId {
    /// The first valid value among the `accept` headers, else a new UUID v4;
    /// and the first invalid candidate seen, if any, for the caller to log.
    pub fn from_headers(headers: &HeaderMap, accept: &[HeaderName]) -> (Self, Option<Rejected>) {
        let mut rejected = None;
        for name in accept {
            for value in headers.get_all(name) {
                if is_valid(value.as_bytes()) {
                    return (Self(value.clone()), rejected);
                }
                rejected.get_or_insert_with(|| Rejected {
                    header: name.clone(),
                    length: value.len(),
                });
            }
        }
        (Self::generate(), rejected)
    }

    pub fn generate() -> Self {
        let mut buf = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        Self(HeaderValue::from_str(text).expect("a hyphenated UUID is a valid header value"))
    }

    pub fn as_str(&self) -> &str {
        // Validation admitted only visible ASCII, which is valid UTF-8.
        self.0.to_str().unwrap_or_default()
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({})", self.as_str())
    }
}

/// 1–128 bytes, each a visible ASCII character (0x21–0x7E).
pub fn is_valid(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept() -> Vec<HeaderName> {
        vec![
            HeaderName::from_static("x-correlation-id"),
            HeaderName::from_static("x-request-id"),
        ]
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn first_valid_accept_header_wins() {
        let h = headers(&[("x-request-id", b"req-2"), ("x-correlation-id", b"corr-1")]);
        let (id, rejected) = CorrelationId::from_headers(&h, &accept());
        assert_eq!((id.as_str(), rejected), ("corr-1", None));
    }

    #[test]
    fn invalid_values_fall_through() {
        let long = vec![b'a'; 129];
        for bad in [
            &b"has space"[..],
            b"",
            &long,
            b"tab\there",
            "caf\u{e9}".as_bytes(),
        ] {
            let h = headers(&[("x-correlation-id", bad), ("x-request-id", b"ok-1")]);
            let (id, rejected) = CorrelationId::from_headers(&h, &accept());
            assert_eq!(id.as_str(), "ok-1");
            let rejected = rejected.expect("the invalid value is reported");
            assert_eq!(rejected.header.as_str(), "x-correlation-id");
            assert_eq!(rejected.length, bad.len());
        }
    }

    #[test]
    fn generated_when_absent() {
        let (id, rejected) = CorrelationId::from_headers(&HeaderMap::new(), &accept());
        assert_eq!(rejected, None);
        assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        assert_ne!(id, CorrelationId::generate());
    }

    #[test]
    fn boundaries() {
        assert!(is_valid(&[b'x'; 128]));
        assert!(is_valid(b"!~"));
        assert!(!is_valid(b"a\x7f"));
    }

    proptest::proptest! {
        /// The chosen id is always 1-128 visible ASCII characters, whatever came in.
        #[test]
        fn chosen_ids_are_always_safe(value in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                h.insert("x-correlation-id", v);
            }
            let (id, _) = CorrelationId::from_headers(&h, &accept());
            proptest::prop_assert!(is_valid(id.as_str().as_bytes()));
        }
    }
}
