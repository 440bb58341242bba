//! W3C Baggage: the client's members pass on, and `correlation_id` joins them
//! so every service downstream can log the same ID.
//!
//! Invalid members are dropped one by one; the result is capped at 64 members
//! and 8192 bytes (the specification's limits), so hostile input can neither
//! grow the header nor be forwarded raw.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::CorrelationId;

pub static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

const KEY: &str = "correlation_id";
const MAX_MEMBERS: usize = 64;
const MAX_BYTES: usize = 8192;

/// The outbound `baggage`: the client's valid members plus `correlation_id`.
pub fn merged(headers: &HeaderMap, correlation: &CorrelationId) -> HeaderValue {
    let own = format!("{KEY}={}", encode(correlation.as_str()));
    let mut out = String::new();
    let mut members = 1;
    for value in headers.get_all(&BAGGAGE) {
        for member in value.as_bytes().split(|b| *b == b',') {
            let Some(member) = valid_member(member) else {
                continue;
            };
            if member_key(member) == KEY
                || members == MAX_MEMBERS
                || out.len() + member.len() + own.len() + 2 > MAX_BYTES
            {
                continue;
            }
            out.push_str(member);
            out.push(',');
            members += 1;
        }
    }
    out.push_str(&own);
    HeaderValue::from_str(&out)
        .expect("validated baggage members and an encoded id form a valid header value")
}

/// A trimmed member `key=value(;property)*` if every part is well formed.
fn valid_member(raw: &[u8]) -> Option<&str> {
    let member = std::str::from_utf8(raw).ok()?.trim_matches([' ', '\t']);
    let mut parts = member.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = key.trim_matches([' ', '\t']);
    let value = value.trim_matches([' ', '\t']);
    let properties_ok = parts.all(|p| {
        let p = p.trim_matches([' ', '\t']);
        match p.split_once('=') {
            Some((k, v)) => is_token(k.trim()) && v.trim().bytes().all(is_baggage_octet),
            None => is_token(p),
        }
    });
    (is_token(key) && value.bytes().all(is_baggage_octet) && properties_ok).then_some(member)
}

fn member_key(member: &str) -> &str {
    member.split('=').next().unwrap_or_default().trim()
}

/// RFC 7230 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// What a correlation ID may hold but a W3C baggage value may not: the
/// complement of `baggage-octet` within printable ASCII, and `%` itself so
/// the value decodes back to the ID.
const NOT_BAGGAGE_OCTET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

/// Percent-encodes what a correlation ID may hold but a baggage value may not.
fn encode(id: &str) -> String {
    utf8_percent_encode(id, NOT_BAGGAGE_OCTET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CorrelationId {
        let mut h = HeaderMap::new();
        h.insert("x-correlation-id", HeaderValue::from_str(s).unwrap());
        CorrelationId::from_headers(&h, &[HeaderName::from_static("x-correlation-id")]).0
    }

    #[test]
    fn encoded_ids_are_baggage_octets_and_decode_back() {
        let every_visible: String = (0x21u8..=0x7e).map(char::from).collect();
        let encoded = encode(&every_visible);
        assert!(encoded.bytes().all(is_baggage_octet), "{encoded}");
        let decoded = percent_encoding::percent_decode_str(&encoded)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, every_visible);
        assert_eq!(encode("a;b,c"), "a%3Bb%2Cc");
    }

    fn merge(client: &[&str], correlation: &str) -> String {
        let mut h = HeaderMap::new();
        for v in client {
            h.append(&BAGGAGE, HeaderValue::from_str(v).unwrap());
        }
        merged(&h, &id(correlation)).to_str().unwrap().to_owned()
    }

    #[test]
    fn adds_correlation_id_to_client_members() {
        assert_eq!(merge(&[], "abc-1"), "correlation_id=abc-1");
        assert_eq!(
            merge(&["userId=alice,isProduction=false"], "abc"),
            "userId=alice,isProduction=false,correlation_id=abc"
        );
        assert_eq!(
            merge(&["a=1;prop=x", "b=2"], "abc"),
            "a=1;prop=x,b=2,correlation_id=abc"
        );
    }

    #[test]
    fn client_correlation_member_is_replaced() {
        assert_eq!(
            merge(&["correlation_id=forged,a=1"], "real"),
            "a=1,correlation_id=real"
        );
    }

    #[test]
    fn invalid_members_are_dropped() {
        assert_eq!(
            merge(&["good=1,bad value=2,=3,noequals,q=\"x\""], "id"),
            "good=1,correlation_id=id"
        );
    }

    #[test]
    fn ids_with_reserved_characters_are_encoded() {
        assert_eq!(
            merge(&[], "a,b;c%d\\e\"f"),
            "correlation_id=a%2Cb%3Bc%25d%5Ce%22f"
        );
    }

    #[test]
    fn size_and_member_count_are_capped() {
        let many: Vec<String> = (0..5000).map(|i| format!("k{i}=v")).collect();
        let out = merge(&[&many.join(",")], "id");
        assert_eq!(out.split(',').count(), 64);
        assert!(out.ends_with("correlation_id=id"));
        let big = format!("k={}", "v".repeat(9000));
        assert_eq!(merge(&[&big, "small=1"], "id"), "small=1,correlation_id=id");
    }

    proptest::proptest! {
        /// Any client baggage yields a valid header within the limits that
        /// ends with the proxy's own member.
        #[test]
        fn merged_baggage_is_always_bounded_and_valid(members in proptest::collection::vec("[ -~]{0,40}", 0..400)) {
            let out = merge(&[&members.join(",")], "corr-1");
            proptest::prop_assert!(out.len() <= MAX_BYTES);
            proptest::prop_assert!(out.split(',').count() <= MAX_MEMBERS);
            proptest::prop_assert!(out.ends_with("correlation_id=corr-1"));
            proptest::prop_assert!(HeaderValue::from_str(&out).is_ok());
        }
    }
}
