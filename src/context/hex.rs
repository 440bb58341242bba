//! Lower-case hex and optional whitespace, as the trace header formats (W3C
//! Trace Context, B3) write ids: parsed strictly, written without the
//! formatting machinery (they are read and written on every request).

/// The id as `len` lower-case hex digits (2 per byte), or `None` for any
/// other character (upper case included: every format here says lower-hex).
pub(crate) fn lower_hex_u128(v: &[u8]) -> Option<u128> {
    if v.is_empty() || v.len() > 32 {
        return None;
    }
    v.iter().try_fold(0u128, |acc, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(digit))
    })
}

/// As [`lower_hex_u128`], for at most 16 digits.
pub(crate) fn lower_hex_u64(v: &[u8]) -> Option<u64> {
    if v.len() > 16 {
        return None;
    }
    lower_hex_u128(v).and_then(|n| u64::try_from(n).ok())
}

/// Writes `bytes` as lower-case hex into `out` (twice their length): a table
/// lookup per nibble.
pub(crate) fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// `v` without leading and trailing spaces and tabs (HTTP's `OWS`).
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_hex_parses() {
        assert_eq!(lower_hex_u128(b"00ff"), Some(0xff));
        assert_eq!(
            lower_hex_u128(b"ffffffffffffffffffffffffffffffff"),
            Some(u128::MAX)
        );
        assert_eq!(lower_hex_u64(b"ffffffffffffffff"), Some(u64::MAX));
        for bad in [&b""[..], b"00FF", b"0x12", b"+1", b"-1", b" 1", b"g"] {
            assert_eq!(lower_hex_u128(bad), None, "{bad:?}");
        }
        assert_eq!(lower_hex_u128(&[b'1'; 33]), None);
        assert_eq!(lower_hex_u64(&[b'1'; 17]), None);
    }

    #[test]
    fn hex_round_trips() {
        let mut out = [0u8; 8];
        hex_into(&mut out, &[0x01, 0xab, 0xcd, 0xef]);
        assert_eq!(&out, b"01abcdef");
        assert_eq!(lower_hex_u128(&out), Some(0x01ab_cdef));
    }

    #[test]
    fn only_spaces_and_tabs_are_trimmed() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b"\na"), b"\na");
    }
}
