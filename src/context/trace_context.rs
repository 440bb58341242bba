//! W3C Trace Context level 1, inbound and outbound.
//!
//! A `traceparent` is continued only when there is exactly one, it parses
//! strictly (lower-case hex, no all-zero ids, version `ff` refused, version
//! `00` exactly 55 characters, future versions may append `-…`), after
//! trimming optional whitespace. `tracestate` is passed on only with a valid
//! `traceparent` and only when the combined list is valid (at most 32
//! members, well-formed keys and values, no duplicate keys); otherwise it is
//! dropped, as the W3C test suite requires.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

const TRACEPARENT_LEN: usize = 55;
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The client's trace context, read once when the exchange starts: the
/// remote parent, and what may be passed on upstream.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub parent: SpanContext,
    /// The `traceparent` as received, forwarded as is when tracing is off.
    pub traceparent: HeaderValue,
    /// The `tracestate` headers, when together they form a valid list.
    pub tracestate: Option<Vec<HeaderValue>>,
}

/// The client's valid trace context, or `None`: a new trace starts, and
/// neither header is ever forwarded.
pub fn inbound(headers: &HeaderMap) -> Option<Box<Inbound>> {
    let parent = extract(headers)?;
    Some(Box::new(Inbound {
        parent,
        traceparent: headers.get(&TRACEPARENT)?.clone(),
        tracestate: valid_tracestate(headers),
    }))
}

/// The remote parent from a valid `traceparent`, or `None` (start a new trace).
pub fn extract(headers: &HeaderMap) -> Option<SpanContext> {
    let mut values = headers.get_all(&TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (trace_id, span_id, flags) = parse_traceparent(value.as_bytes())?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

fn parse_traceparent(raw: &[u8]) -> Option<(TraceId, SpanId, u8)> {
    let v = trim_ows(raw);
    if v.len() < TRACEPARENT_LEN {
        return None;
    }
    let version = hex_u8(&v[0..2])?;
    let dashes = v[2] == b'-' && v[35] == b'-' && v[52] == b'-';
    let tail_ok = match version {
        0xff => false,
        0x00 => v.len() == TRACEPARENT_LEN,
        _ => v.len() == TRACEPARENT_LEN || v[TRACEPARENT_LEN] == b'-',
    };
    if !dashes || !tail_ok {
        return None;
    }
    let trace_id = u128::from_str_radix(lower_hex(&v[3..35])?, 16).ok()?;
    let span_id = u64::from_str_radix(lower_hex(&v[36..52])?, 16).ok()?;
    let flags = hex_u8(&v[53..55])?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some((TraceId::from(trace_id), SpanId::from(span_id), flags))
}

/// The `tracestate` headers to pass on, when all of them together form a valid list.
pub fn valid_tracestate(headers: &HeaderMap) -> Option<Vec<HeaderValue>> {
    let values: Vec<&HeaderValue> = headers.get_all(&TRACESTATE).iter().collect();
    if values.is_empty() {
        return None;
    }
    let mut keys: Vec<&[u8]> = Vec::new();
    for value in &values {
        for member in value.as_bytes().split(|b| *b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let eq = member.iter().position(|b| *b == b'=')?;
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
                return None;
            }
            keys.push(key);
        }
    }
    if keys.is_empty() || keys.len() > MAX_TRACESTATE_MEMBERS {
        return None;
    }
    Some(
        values
            .into_iter()
            .filter(|v| !trim_ows(v.as_bytes()).is_empty())
            .cloned()
            .collect(),
    )
}

/// `simple-key` or `tenant@system` per the W3C grammar.
fn valid_key(key: &[u8]) -> bool {
    let rest_ok = |s: &[u8]| {
        s.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
        })
    };
    match key.iter().position(|b| *b == b'@') {
        None => (1..=256).contains(&key.len()) && key[0].is_ascii_lowercase() && rest_ok(&key[1..]),
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && rest_ok(&tenant[1..])
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && rest_ok(&system[1..])
        }
    }
}

/// 1–256 printable characters without `,` or `=`, not ending in a space.
fn valid_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|b| (0x20..=0x7e).contains(b) && *b != b',' && *b != b'=')
        && value.last() != Some(&b' ')
}

/// The outbound `traceparent` for a span: always version 00, sampled flag only.
pub fn traceparent_value(context: &SpanContext) -> HeaderValue {
    let flags = (context.trace_flags() & TraceFlags::SAMPLED).to_u8();
    let mut buf = [b'-'; TRACEPARENT_LEN];
    buf[..2].copy_from_slice(b"00");
    hex_into(&mut buf[3..35], &context.trace_id().to_bytes());
    hex_into(&mut buf[36..52], &context.span_id().to_bytes());
    hex_into(&mut buf[53..55], &[flags]);
    HeaderValue::from_bytes(&buf).expect("hex digits and dashes are a valid header value")
}

/// Lower-case hex of a trace id, as logs, exemplars and error bodies show it.
pub fn trace_id_hex(id: TraceId) -> String {
    hex_string(&id.to_bytes())
}

/// Lower-case hex of a span id.
pub fn span_id_hex(id: SpanId) -> String {
    hex_string(&id.to_bytes())
}

fn hex_string(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    hex_into(&mut buf, bytes);
    // Only ASCII hex digits were written.
    String::from_utf8(buf).unwrap_or_default()
}

/// Writes `bytes` as lower-case hex into `out` (twice their length): a table
/// lookup per nibble instead of the formatting machinery, on every request.
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn lower_hex(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

fn hex_u8(v: &[u8]) -> Option<u8> {
    u8::from_str_radix(lower_hex(v)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn parent(value: &str) -> Option<SpanContext> {
        extract(&headers(&[("traceparent", value)]))
    }

    #[test]
    fn valid_traceparents_continue_the_trace() {
        for ok in [
            VALID,
            " 00-12345678901234567890123456789012-1234567890123456-01",
            "\t00-12345678901234567890123456789012-1234567890123456-01 \t",
            "cc-12345678901234567890123456789012-1234567890123456-01",
            "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            "00-12345678901234567890123456789012-1234567890123456-00",
            "00-12345678901234567890123456789012-1234567890123456-09",
        ] {
            let sc = parent(ok).unwrap_or_else(|| panic!("{ok:?} rejected"));
            assert_eq!(
                sc.trace_id().to_string(),
                "12345678901234567890123456789012"
            );
            assert_eq!(sc.span_id().to_string(), "1234567890123456");
            assert!(sc.is_remote());
        }
        assert!(parent(VALID).unwrap().is_sampled());
        assert!(
            !parent("00-12345678901234567890123456789012-1234567890123456-00")
                .unwrap()
                .is_sampled()
        );
    }

    /// The invalid cases of the W3C trace-context test suite (test/test.py).
    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        let too_long_trace = format!(
            "00-{}3-1234567890123456-01",
            "12345678901234567890123456789012"
        );
        for bad in [
            "00-12345678901234567890123456789012-1234567890123456-01.",
            "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
            "ff-12345678901234567890123456789012-1234567890123456-01",
            ".0-12345678901234567890123456789012-1234567890123456-01",
            "0.-12345678901234567890123456789012-1234567890123456-01",
            "000-12345678901234567890123456789012-1234567890123456-01",
            "0000-12345678901234567890123456789012-1234567890123456-01",
            "0-12345678901234567890123456789012-1234567890123456-01",
            "00-00000000000000000000000000000000-1234567890123456-01",
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-1234567890123456789012345678901.-1234567890123456-01",
            too_long_trace.as_str(),
            "00-1234567890123456789012345678901-1234567890123456-01",
            "00-12345678901234567890123456789012-0000000000000000-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345.-01",
            "00-12345678901234567890123456789012-12345678901234567-01",
            "00-12345678901234567890123456789012-123456789012345-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "00-12345678901234567890123456789012-1234567890123456-0.",
            "00-12345678901234567890123456789012-1234567890123456-001",
            "00-12345678901234567890123456789012-1234567890123456-1",
            "00-1234567890123456789012345678901A-1234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345A-01",
            "",
        ] {
            assert!(parent(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn duplicated_or_misnamed_traceparent_is_ignored() {
        let two = headers(&[("traceparent", VALID), ("traceparent", VALID)]);
        assert!(extract(&two).is_none());
        assert!(extract(&headers(&[("trace-parent", VALID)])).is_none());
    }

    fn state(values: &[&str]) -> Option<Vec<String>> {
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("tracestate", *v)).collect();
        valid_tracestate(&headers(&pairs))
            .map(|v| v.iter().map(|h| h.to_str().unwrap().to_owned()).collect())
    }

    #[test]
    fn tracestate_passed_on_when_valid() {
        assert_eq!(state(&["foo=1,bar=2"]), Some(vec!["foo=1,bar=2".into()]));
        assert_eq!(state(&["foo=1", ""]), Some(vec!["foo=1".into()]));
        assert!(state(&["foo=1 \t , \t bar=2, \t baz=3"]).is_some());
        let all_chars: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        assert!(state(&[&format!("{key}={all_chars}")]).is_some());
        assert!(state(&[&format!("{key}@a-z0-9_-*/={all_chars}")]).is_some());
        let thirty_two: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        assert!(state(&[&thirty_two.join(",")]).is_some());
        assert!(state(&["foo=1", &format!("{}=1", "z".repeat(256))]).is_some());
        assert!(state(&[
            "foo=1",
            &format!("{}@{}=1", "t".repeat(241), "v".repeat(14))
        ])
        .is_some());
    }

    #[test]
    fn tracestate_dropped_when_invalid() {
        let thirty_three: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        for bad in [
            vec!["foo=1,foo=1"],
            vec!["foo=1", "foo=2"],
            vec!["foo =1"],
            vec!["FOO=1"],
            vec!["foo.bar=1"],
            vec!["foo@=1,bar=2"],
            vec!["@foo=1,bar=2"],
            vec!["foo@@bar=1,bar=2"],
            vec!["foo@bar@baz=1,bar=2"],
            vec![thirty_three.join(",").leak()],
            vec!["foo=1", format!("{}=1", "z".repeat(257)).leak()],
            vec!["foo=1", format!("{}@v=1", "t".repeat(242)).leak()],
            vec!["foo=1", format!("t@{}=1", "v".repeat(15)).leak()],
            vec!["foo=bar=baz"],
            vec!["foo=,bar=3"],
            vec![""],
        ] {
            assert!(state(&bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn outbound_traceparent_is_version_00_with_only_the_sampled_flag() {
        let sc = SpanContext::new(
            TraceId::from(0x1234_u128),
            SpanId::from(0xabcd_u64),
            TraceFlags::new(0xff),
            false,
            TraceState::default(),
        );
        assert_eq!(
            traceparent_value(&sc),
            "00-00000000000000000000000000001234-000000000000abcd-01"
        );
    }

    proptest::proptest! {
        /// Whatever bytes arrive, parsing never panics, and what it accepts
        /// round-trips through the outbound format.
        #[test]
        fn any_header_bytes_are_safe(value in proptest::collection::vec(0x20u8..0x7f, 0..80), state in "[ -~]{0,300}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                h.insert(&TRACEPARENT, v);
            }
            if let Ok(v) = HeaderValue::from_str(&state) {
                h.insert(&TRACESTATE, v);
            }
            if let Some(sc) = extract(&h) {
                let out = traceparent_value(&sc);
                let again = headers(&[("traceparent", out.to_str().unwrap())]);
                proptest::prop_assert_eq!(extract(&again).map(|s| (s.trace_id(), s.span_id())), Some((sc.trace_id(), sc.span_id())));
            }
            let _ = valid_tracestate(&h);
        }

        #[test]
        fn valid_ids_round_trip(trace in 1u128.., span in 1u64.., sampled in proptest::bool::ANY) {
            let text = format!("00-{trace:032x}-{span:016x}-{:02x}", u8::from(sampled));
            let sc = extract(&headers(&[("traceparent", &text)])).unwrap();
            proptest::prop_assert_eq!((sc.trace_id(), sc.span_id(), sc.is_sampled()), (TraceId::from(trace), SpanId::from(span), sampled));
        }
    }
}
