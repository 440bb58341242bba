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

impl Redactor {
    /// Headers fit to leave the process: dropped ones removed, secret-looking
    /// ones with their value replaced.
    pub fn headers(&self, headers: &http::HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _)| !self.drops_header(name.as_str()))
            .map(|(name, value)| {
                let value = if self.is_secret_key(name.as_str()) {
                    REDACTED.to_owned()
                } else {
                    without_userinfo(&String::from_utf8_lossy(value.as_bytes())).into_owned()
                };
                (name.as_str().to_owned(), value)
            })
            .collect()
    }

    /// The scrubbing every Sentry event goes through before it leaves the
    /// process (the client's `before_send`): whatever built the event, no
    /// header named in `redact_headers`, no value of a secret-looking key, no
    /// URL credentials, cookies, bodies, environment or client IP remain.
    pub fn scrub_event(&self, event: &mut sentry::protocol::Event<'static>) {
        if let Some(request) = event.request.as_mut() {
            request.headers.retain(|name, _| !self.drops_header(name));
            for (name, value) in request.headers.iter_mut() {
                if self.is_secret_key(name) {
                    *value = REDACTED.to_owned();
                } else if let Cow::Owned(clean) = without_userinfo(value) {
                    *value = clean;
                }
            }
            request.cookies = None;
            request.data = None;
            request.env.clear();
            if let Some(query) = request.query_string.as_mut() {
                *query = self.query(query).into_owned();
            }
            if let Some(url) = request.url.as_mut() {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                if let Some(query) = url.query().map(|q| self.query(q).into_owned()) {
                    url.set_query(Some(&query));
                }
            }
        }
        for (key, value) in event.tags.iter_mut() {
            if self.is_secret_key(key) {
                *value = REDACTED.to_owned();
            }
        }
        for (key, value) in event.extra.iter_mut() {
            if self.is_secret_key(key) {
                *value = REDACTED.into();
            }
        }
        if let Some(user) = event.user.as_mut() {
            user.ip_address = None;
            user.email = None;
        }
    }
}

impl Redactor {
    /// The same scrubbing for a transaction (which `before_send` does not see).
    pub fn scrub_transaction(&self, transaction: &mut sentry::protocol::Transaction<'static>) {
        let mut carrier = sentry::protocol::Event {
            request: transaction.request.take(),
            tags: std::mem::take(&mut transaction.tags),
            extra: std::mem::take(&mut transaction.extra),
            user: transaction.user.take(),
            ..Default::default()
        };
        self.scrub_event(&mut carrier);
        transaction.request = carrier.request;
        transaction.tags = carrier.tags;
        transaction.extra = carrier.extra;
        transaction.user = carrier.user;
    }
}

/// A value with the `user:password@` of any URL in it removed (a Referer or
/// Origin may carry credentials).
pub fn without_userinfo(value: &str) -> Cow<'_, str> {
    let Some(scheme_end) = value.find("://") else {
        return Cow::Borrowed(value);
    };
    let authority_start = scheme_end + 3;
    let authority_end = value[authority_start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| authority_start + i);
    match value[authority_start..authority_end].rfind('@') {
        None => Cow::Borrowed(value),
        Some(at) => {
            let rest = without_userinfo(&value[authority_start + at + 1..]).into_owned();
            Cow::Owned(format!("{}{rest}", &value[..authority_start]))
        }
    }
}

/// Decodes `%XX` and `+` (form encoding), so `api%5Fkey=` cannot slip past the key check.
fn percent_decoded_lossy(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
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
    fn userinfo_is_removed_from_urls() {
        assert_eq!(
            without_userinfo("https://user:hunter2@example.com/a?b=c"),
            "https://example.com/a?b=c"
        );
        assert_eq!(
            without_userinfo("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert!(matches!(without_userinfo("plain value"), Cow::Borrowed(_)));
    }

    /// GenAI content is redacted below this module, by the same rule.
    #[test]
    fn genai_content_redaction_agrees() {
        let config = crate::config::Config::default();
        let content = crate::genai::content::ContentRedactor::new(&config).unwrap();
        assert_eq!(crate::genai::content::REDACTED, REDACTED);
        for key in [
            "X-Client-Secret",
            "API_KEY",
            "content-type",
            "passwd",
            "MyPassword",
        ] {
            assert_eq!(
                content.is_secret_key(key),
                redactor().is_secret_key(key),
                "{key}"
            );
        }
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
