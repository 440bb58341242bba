//! W3C Trace Context Level 2, inbound and outbound.
//!
//! A `traceparent` is continued only when there is exactly one, it parses
//! strictly (lower-case hex, no all-zero ids, version `ff` refused, version
//! `00` exactly 55 characters, future versions may append `-…`), after
//! trimming optional whitespace. Of its flags only the two this version
//! defines are kept, `sampled` (0x01) and `random` (0x02): the spec asks
//! that unknown flags go out as zero, and that the random flag of a
//! continued trace go out as it came in.
//!
//! `tracestate` is passed on only with a valid `traceparent`, and only when
//! every member is well formed per the Level 2 grammar (a key starts with a
//! lower-case letter or a digit and has at most 256 characters from
//! `a-z 0-9 _ - * / @`) and there are at most 32 of them; otherwise it is
//! dropped whole, as the W3C test suite requires. A key that appears again
//! keeps its first (left-most, most recent) member and the later ones are
//! dropped, which the spec allows ("vendors MAY also discard duplicate keys").

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use super::hex::{hex_into, lower_hex_u128, lower_hex_u64, trim_ows};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The response header of the W3C trace context server timing metric.
pub static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Level 2's random trace-id flag: at least the right-most 7 bytes of the
/// trace id are random. `opentelemetry` 0.33 has no constant for it.
pub const RANDOM: TraceFlags = TraceFlags::new(0x02);
/// The flags this version of the spec defines; any other bit goes out as zero.
const KNOWN_FLAGS: TraceFlags = TraceFlags::new(0x03);

const TRACEPARENT_LEN: usize = 55;
const MAX_TRACESTATE_MEMBERS: usize = 32;
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;

/// The remote parent from a valid `traceparent`, or `None` (start a new trace).
/// Its flags are the sampled and random flags as received.
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
        TraceFlags::new(flags) & KNOWN_FLAGS,
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
    let trace_id = lower_hex_u128(&v[3..35])?;
    let span_id = lower_hex_u64(&v[36..52])?;
    let flags = hex_u8(&v[53..55])?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some((TraceId::from(trace_id), SpanId::from(span_id), flags))
}

fn hex_u8(v: &[u8]) -> Option<u8> {
    if v.len() != 2 {
        return None;
    }
    lower_hex_u64(v).and_then(|n| u8::try_from(n).ok())
}

/// The `tracestate` headers to pass on, when all of them together form a
/// valid list: the non-empty headers as received, or, when a key appears
/// more than once, one header with the first member of each key.
pub fn valid_tracestate(headers: &HeaderMap) -> Option<Vec<HeaderValue>> {
    let values = headers.get_all(&TRACESTATE);
    let mut iter = values.iter().peekable();
    iter.peek()?;
    // (key, member) in order; a list holds at most 32, so a scan finds duplicates.
    let mut members: Vec<(&[u8], &[u8])> = Vec::new();
    let mut duplicated = false;
    for value in iter {
        for member in value.as_bytes().split(|b| *b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let eq = member.iter().position(|b| *b == b'=')?;
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            if !valid_key(key) || !valid_value(value) {
                return None;
            }
            // The grammar's limit is on the list as sent, duplicates included.
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return None;
            }
            duplicated |= members.iter().any(|(k, _)| *k == key);
            members.push((key, member));
        }
    }
    if members.is_empty() {
        return None;
    }
    if !duplicated {
        return Some(
            values
                .iter()
                .filter(|v| !trim_ows(v.as_bytes()).is_empty())
                .cloned()
                .collect(),
        );
    }
    let mut list = Vec::new();
    for (i, (key, member)) in members.iter().enumerate() {
        if members[..i].iter().any(|(k, _)| k == key) {
            continue;
        }
        if !list.is_empty() {
            list.push(b',');
        }
        list.extend_from_slice(member);
    }
    let list = HeaderValue::from_bytes(&list)
        .expect("members of printable ASCII joined by commas are a valid header value");
    Some(vec![list])
}

/// Level 2 `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, where `keychar`
/// is `a-z`, `0-9`, `_`, `-`, `*`, `/` or `@`: `@` may appear anywhere but
/// first, any number of times (`foo@`, `foo@@bar`, `foo@bar@baz`).
fn valid_key(key: &[u8]) -> bool {
    matches!(key.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && key.len() <= MAX_KEY_LEN
        && key[1..]
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'))
}

/// 1–256 printable characters without `,` or `=`, not ending in a space.
fn valid_value(value: &[u8]) -> bool {
    (1..=MAX_VALUE_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| (0x20..=0x7e).contains(b) && *b != b',' && *b != b'=')
        && value.last() != Some(&b' ')
}

/// The outbound `traceparent` for a span: always version 00, with the
/// sampled and random flags only.
pub fn traceparent_value(context: &SpanContext) -> HeaderValue {
    HeaderValue::from_bytes(&traceparent_bytes(context))
        .expect("hex digits and dashes are a valid header value")
}

/// The W3C trace context server timing metric of a span:
/// `trace;desc=00-<trace id>-<span id>-<flags>`.
pub fn server_timing_value(context: &SpanContext) -> HeaderValue {
    const PREFIX: &[u8] = b"trace;desc=";
    let mut buf = [0u8; PREFIX.len() + TRACEPARENT_LEN];
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..].copy_from_slice(&traceparent_bytes(context));
    HeaderValue::from_bytes(&buf).expect("ASCII letters, hex digits and dashes")
}

fn traceparent_bytes(context: &SpanContext) -> [u8; TRACEPARENT_LEN] {
    let flags = (context.trace_flags() & KNOWN_FLAGS).to_u8();
    let mut buf = [b'-'; TRACEPARENT_LEN];
    buf[..2].copy_from_slice(b"00");
    hex_into(&mut buf[3..35], &context.trace_id().to_bytes());
    hex_into(&mut buf[36..52], &context.span_id().to_bytes());
    hex_into(&mut buf[53..55], &[flags]);
    buf
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

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";
    /// The traceparent the W3C suite sends with every tracestate case.
    const SUITE_PARENT: &str = "00-12345678901234567890123456789012-1234567890123456-00";

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
            "00-12345678901234567890123456789012-1234567890123456-+1",
            "",
        ] {
            assert!(parent(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn duplicated_or_misnamed_traceparent_is_ignored() {
        // test.py: test_traceparent_duplicated, test_traceparent_header_name.
        let two = headers(&[
            (
                "traceparent",
                "00-12345678901234567890123456789011-1234567890123456-01",
            ),
            ("traceparent", VALID),
        ]);
        assert!(extract(&two).is_none());
        assert!(extract(&headers(&[("trace-parent", VALID)])).is_none());
        assert!(extract(&headers(&[("trace.parent", VALID)])).is_none());
    }

    /// Level 2: the random flag (0x02) is read and written; flags this
    /// version does not define are dropped. test.py, TraceContext2Test:
    /// test_propagates_random_flag sends `-02` and expects bit 2 set.
    #[test]
    fn the_random_flag_survives_and_unknown_flags_do_not() {
        let flags = |v: &str| parent(v).unwrap().trace_flags().to_u8();
        let tp = |version: &str, flags: &str| {
            format!("{version}-12345678901234567890123456789012-1234567890123456-{flags}")
        };
        assert_eq!(flags(&tp("00", "02")), 0x02);
        assert_eq!(flags(&tp("00", "03")), 0x03);
        assert_eq!(flags(&tp("00", "ff")), 0x03);
        assert_eq!(flags(&tp("00", "fc")), 0x00);
        assert_eq!(flags(&tp("cc", "06")), 0x02);
        let random = parent(&tp("00", "02")).unwrap();
        assert!(
            !random.is_sampled(),
            "the random flag is not the sampled flag"
        );
        assert!(parent(&tp("00", "03")).unwrap().is_sampled());
        let out = traceparent_value(&random);
        assert_eq!(
            out,
            "00-12345678901234567890123456789012-1234567890123456-02"
        );
    }

    #[test]
    fn outbound_traceparent_is_version_00_with_only_the_defined_flags() {
        let sc = SpanContext::new(
            TraceId::from(0x1234_u128),
            SpanId::from(0xabcd_u64),
            TraceFlags::new(0xff),
            false,
            TraceState::default(),
        );
        assert_eq!(
            traceparent_value(&sc),
            "00-00000000000000000000000000001234-000000000000abcd-03"
        );
        assert_eq!(
            server_timing_value(&sc),
            "trace;desc=00-00000000000000000000000000001234-000000000000abcd-03"
        );
    }

    /// The tracestate the W3C harness would read from what is forwarded
    /// (test/tracecontext/tracestate.py `from_string`): members in order, a
    /// repeated key ignored; `None` when nothing is forwarded.
    fn forwarded(values: &[&str]) -> Option<Vec<(String, String)>> {
        let mut pairs = vec![("traceparent", SUITE_PARENT)];
        pairs.extend(values.iter().map(|v| ("tracestate", *v)));
        let out = valid_tracestate(&headers(&pairs))?;
        let mut members: Vec<(String, String)> = Vec::new();
        for value in &out {
            for member in value.to_str().unwrap().split(',') {
                let member = member.trim_matches([' ', '\t']);
                if member.is_empty() {
                    continue;
                }
                let (key, value) = member.split_once('=').unwrap();
                assert!(
                    members.iter().all(|(k, _)| k != key),
                    "{key} forwarded twice: {out:?}"
                );
                members.push((key.to_owned(), value.to_owned()));
            }
        }
        Some(members)
    }

    fn kv(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// test.py: test_tracestate_included_traceparent_included,
    /// test_tracestate_empty_header, test_tracestate_multiple_headers_different_keys,
    /// test_tracestate_ows_handling.
    #[test]
    fn tracestate_is_inherited_in_order_with_whitespace_ignored() {
        let foo = kv(&[("foo", "1")]);
        assert_eq!(
            forwarded(&["foo=1,bar=2"]),
            kv(&[("foo", "1"), ("bar", "2")])
        );
        assert_eq!(forwarded(&[""]), None);
        assert_eq!(forwarded(&["foo=1", ""]), foo);
        assert_eq!(forwarded(&["", "foo=1"]), foo);
        assert_eq!(
            forwarded(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
            kv(&[
                ("foo", "1"),
                ("bar", "2"),
                ("rojo", "1"),
                ("congo", "2"),
                ("baz", "3")
            ])
        );
        let three = kv(&[("foo", "1"), ("bar", "2"), ("baz", "3")]);
        assert_eq!(forwarded(&["foo=1 \t , \t bar=2, \t baz=3"]), three);
        assert_eq!(forwarded(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"]), three);
        for one in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(forwarded(&[one]), foo, "{one:?}");
        }
        // Empty headers are not forwarded: the spec asks not to send them.
        let out = valid_tracestate(&headers(&[("tracestate", "foo=1"), ("tracestate", "")]));
        assert_eq!(out, Some(vec![HeaderValue::from_static("foo=1")]));
    }

    /// test.py: test_tracestate_all_allowed_characters.
    #[test]
    fn every_allowed_character_is_inherited() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let key_with_vendor = format!("{key}@a-z0-9_-*/");
        let value: String = (0x20u8..=0x2b)
            .chain(0x2d..=0x3c)
            .chain(0x3e..=0x7e)
            .map(char::from)
            .collect();
        for key in [key, &key_with_vendor] {
            assert_eq!(
                forwarded(&[&format!("{key}={value}")]),
                kv(&[(key, &value)])
            );
        }
    }

    /// Level 2 keys, test.py: test_tracestate_key_illegal_vendor_format and
    /// test_tracestate_key_illegal_characters.
    #[test]
    fn level_2_keys_may_hold_at_signs_anywhere_but_first() {
        for key in ["foo@", "foo@@bar", "foo@bar@baz", "1foo", "1@", "a@b@c@d"] {
            assert_eq!(
                forwarded(&[&format!("{key}=1,bar=2")]),
                kv(&[(key, "1"), ("bar", "2")]),
                "{key}"
            );
        }
        for bad in [
            "@foo=1,bar=2",
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "_foo=1",
            "=1",
        ] {
            assert_eq!(forwarded(&[bad]), None, "{bad:?} forwarded");
        }
    }

    /// test.py: test_tracestate_key_length_limit (256 characters in all,
    /// at signs included) and test_tracestate_member_count_limit.
    #[test]
    fn keys_up_to_256_characters_and_lists_up_to_32_members() {
        for key in [
            "z".repeat(256),
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
            format!("{}@", "a".repeat(255)),
        ] {
            assert_eq!(
                forwarded(&["foo=1", &format!("{key}=1")]),
                kv(&[("foo", "1"), (&key, "1")]),
                "{} characters",
                key.len()
            );
        }
        for key in ["z".repeat(257), format!("{}@v", "t".repeat(255))] {
            assert_eq!(forwarded(&["foo=1", &format!("{key}=1")]), None);
        }

        let members = |range: std::ops::RangeInclusive<u32>| {
            range
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (a, b, c) = (members(1..=10), members(11..=20), members(21..=30));
        let thirty_two = forwarded(&[&a, &b, &c, &members(31..=32)]).unwrap();
        assert_eq!(thirty_two.len(), 32);
        assert_eq!(thirty_two[0], ("bar01".into(), "01".into()));
        assert_eq!(forwarded(&[&a, &b, &c, &members(31..=33)]), None);
        // The limit is on the list as sent: 33 members, one of them repeated.
        assert_eq!(forwarded(&[&members(1..=32), "bar01=01"]), None);
    }

    /// test.py: test_tracestate_value_illegal_characters, and the value
    /// grammar's edges (256 characters, no trailing space, leading kept).
    #[test]
    fn malformed_values_drop_the_whole_header() {
        for bad in [
            "foo=bar=baz".to_owned(),
            "foo=,bar=3".to_owned(),
            "foo".to_owned(),
            format!("foo={}", "v".repeat(257)),
            "foo=a\tb".to_owned(),
        ] {
            assert_eq!(forwarded(&[&bad]), None, "{bad:?} forwarded");
        }
        assert_eq!(forwarded(&["foo= 1"]), kv(&[("foo", " 1")]));
        let long = "v".repeat(256);
        assert_eq!(forwarded(&[&format!("foo={long}")]), kv(&[("foo", &long)]));
    }

    /// test.py: test_tracestate_duplicated_keys accepts either every member
    /// or one per key. The first (left-most: the most recent position) is
    /// kept, so what goes on is a valid list.
    #[test]
    fn a_duplicated_key_keeps_its_first_member() {
        assert_eq!(forwarded(&["foo=1,foo=1"]), kv(&[("foo", "1")]));
        assert_eq!(forwarded(&["foo=1,foo=2"]), kv(&[("foo", "1")]));
        assert_eq!(forwarded(&["foo=1", "foo=1"]), kv(&[("foo", "1")]));
        assert_eq!(forwarded(&["foo=1", "foo=2"]), kv(&[("foo", "1")]));
        let out = valid_tracestate(&headers(&[
            ("tracestate", "rojo=1, congo=2 ,rojo=3"),
            ("tracestate", "congo=4,foo@=5"),
        ]));
        assert_eq!(
            out,
            Some(vec![HeaderValue::from_static("rojo=1,congo=2,foo@=5")])
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
                proptest::prop_assert_eq!(extract(&again).map(|s| (s.trace_id(), s.span_id(), s.trace_flags())), Some((sc.trace_id(), sc.span_id(), sc.trace_flags())));
            }
            let _ = valid_tracestate(&h);
        }

        /// What goes on is itself a valid list with one member per key,
        /// and passing it on again changes nothing.
        #[test]
        fn forwarded_tracestate_is_a_valid_list(members in proptest::collection::vec(("[a-c1][a-c@]{0,2}", r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,4}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"), 1..36), split in 0usize..36) {
            let all: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let split = split.min(all.len());
            let h = headers(&[("tracestate", &all[..split].join(",")), ("tracestate", &all[split..].join(","))]);
            if let Some(out) = valid_tracestate(&h) {
                let mut again = HeaderMap::new();
                for v in &out {
                    again.append(&TRACESTATE, v.clone());
                }
                let twice = valid_tracestate(&again);
                proptest::prop_assert_eq!(twice.as_ref(), Some(&out));
                let text: Vec<&str> = out.iter().map(|v| v.to_str().unwrap()).collect();
                let keys: Vec<&str> = text.iter().flat_map(|t| t.split(',')).map(|m| m.trim().split('=').next().unwrap()).collect();
                let mut unique = keys.clone();
                unique.sort_unstable();
                unique.dedup();
                proptest::prop_assert_eq!(unique.len(), keys.len());
                proptest::prop_assert!(keys.len() <= 32);
            }
        }

        #[test]
        fn valid_ids_round_trip(trace in 1u128.., span in 1u64.., flags in 0u8..=0xff) {
            let text = format!("00-{trace:032x}-{span:016x}-{flags:02x}");
            let sc = extract(&headers(&[("traceparent", &text)])).unwrap();
            proptest::prop_assert_eq!((sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()), (TraceId::from(trace), SpanId::from(span), flags & 0x03));
            proptest::prop_assert_eq!(traceparent_value(&sc), format!("00-{trace:032x}-{span:016x}-{:02x}", flags & 0x03));
        }
    }
}
