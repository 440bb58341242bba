//! The one redaction used by logs, spans and Sentry, so a secret hidden from
//! one signal is hidden from all.
//!
//! Headers named in `redact_headers` are dropped; any header, query parameter,
//! tag or extra whose key contains a `redact_keys` substring (case-insensitive)
//! keeps its key and loses its value to `[REDACTED]`.

use std::borrow::Cow;

use crate::config::SentryConfig;

pub const REDACTED: &str = "[REDACTED]";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Lower-case header names never written anywhere.
    headers: Vec<String>,
    /// Lower-case key substrings whose values are replaced.
    keys: Vec<String>,
}

impl Redactor {
    pub fn new(config: &SentryConfig) -> Self {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        Self {
            headers: lower(&config.redact_headers),
            keys: lower(&config.redact_keys),
        }
    }

    /// True when a header's value must never leave the process.
    pub fn drops_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// True when a key (header, query parameter, tag) has a secret-looking name.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.keys.iter().any(|k| key.contains(k.as_str()))
    }

    /// A request target (`/path?query`) with secret query values replaced.
    pub fn target<'a>(&self, target: &'a str) -> Cow<'a, str> {
        match target.split_once('?') {
            None => Cow::Borrowed(target),
            Some((path, query)) => match self.query(query) {
                Cow::Borrowed(_) => Cow::Borrowed(target),
                Cow::Owned(q) => Cow::Owned(format!("{path}?{q}")),
            },
        }
    }

    /// A query string with the values of secret-looking parameters replaced.
    pub fn query<'a>(&self, query: &'a str) -> Cow<'a, str> {
        let secret = |pair: &str| {
            let key = pair.split('=').next().unwrap_or_default();
            self.is_secret_key(&percent_decoded_lossy(key))
        };
        if !query.split('&').any(secret) {
            return Cow::Borrowed(query);
        }
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if secret(pair) => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        Cow::Owned(pairs.join("&"))
    }
}

/// Decodes `%XX` and `+` so `api%5Fkey=` cannot slip past the key check.
fn percent_decoded_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&SentryConfig::default())
    }

    #[test]
    fn query_values_of_secret_keys_are_replaced() {
        let r = redactor();
        assert_eq!(
            r.target("/a?x=1&api_key=s3cr3t&Token=t"),
            "/a?x=1&api_key=[REDACTED]&Token=[REDACTED]"
        );
        assert_eq!(
            r.target("/a?access_token=abc"),
            "/a?access_token=[REDACTED]"
        );
        assert_eq!(r.target("/a?api%5Fkey=abc"), "/a?api%5Fkey=[REDACTED]");
        assert_eq!(r.target("/a?password"), "/a?password");
        assert!(matches!(r.target("/a?model=llama"), Cow::Borrowed(_)));
    }

    #[test]
    fn headers_and_keys() {
        let r = redactor();
        assert!(r.drops_header("Authorization"));
        assert!(!r.drops_header("x-correlation-id"));
        assert!(r.is_secret_key("X-Client-Secret"));
        assert!(!r.is_secret_key("content-type"));
    }
}
