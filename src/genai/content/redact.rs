//! Redaction of captured GenAI content, before it goes anywhere: the values
//! of secret-looking keys (`sentry.redact_keys`, matched as `crate::redact`
//! matches them everywhere else: a case-insensitive substring) inside JSON,
//! and every match of `[genai] redact_patterns`, become `[REDACTED]`.
//! (`genai` sits below `redact.rs`, so the rule is restated here; a test
//! there checks both agree.)
//!
//! Keys are matched in parsed JSON (tool arguments and answers), and also in
//! JSON-looking text (`"api_key": "…"` inside a message, or arguments cut
//! short that no longer parse), so a cut cannot turn a key match into a leak.

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

use crate::config::Config;

/// What a redacted value becomes, as in every other signal.
pub const REDACTED: &str = "[REDACTED]";

#[derive(Debug)]
pub struct ContentRedactor {
    /// Lower-case `sentry.redact_keys`.
    keys: Vec<String>,
    /// `"<key containing a redact_keys entry>": <value>` in text.
    key_values: Option<Regex>,
    patterns: Vec<Regex>,
}

impl ContentRedactor {
    /// Fails on a pattern that does not compile (validation reports it first).
    pub fn new(config: &Config) -> Result<Self, regex::Error> {
        let patterns = config
            .genai
            .redact_patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<_, _>>()?;
        let keys: Vec<String> = config
            .sentry
            .redact_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| k.to_ascii_lowercase())
            .collect();
        // A quoted key containing an entry, then its value: a string (maybe
        // cut before its closing quote) or anything up to a delimiter.
        let alternatives: Vec<String> = keys.iter().map(|k| regex::escape(k)).collect();
        let key_values = (!keys.is_empty())
            .then(|| {
                Regex::new(&format!(
                    r#"(?i)("[^"\\]*(?:{})[^"\\]*"\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|[^\s,}}\]]+)"#,
                    alternatives.join("|")
                ))
            })
            .transpose()?;
        Ok(Self {
            keys,
            key_values,
            patterns,
        })
    }

    /// A key whose value is a secret: it contains a `redact_keys` entry.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.keys.iter().any(|k| key.contains(k.as_str()))
    }

    /// Text with secret key values and pattern matches replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if let Some(re) = &self.key_values {
            if let Cow::Owned(s) = re.replace_all(&out, format!("${{1}}\"{REDACTED}\"")) {
                out = Cow::Owned(s);
            }
        }
        for re in &self.patterns {
            if let Cow::Owned(s) = re.replace_all(&out, REDACTED) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// A JSON value with the values of secret keys replaced and every
    /// string redacted as text.
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if self.is_secret_key(key) {
                        *v = REDACTED.into();
                    } else {
                        self.value(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::String(s) => {
                if let Cow::Owned(clean) = self.text(s) {
                    *s = clean;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> ContentRedactor {
        ContentRedactor::new(&Config::default()).unwrap()
    }

    #[test]
    fn default_patterns_catch_tokens_keys_and_addresses() {
        let r = redactor();
        assert_eq!(
            r.text("use Authorization: Bearer abc.DEF-123_x= now"),
            "use Authorization: [REDACTED] now"
        );
        assert_eq!(
            r.text("key sk-proj-AbCdEf0123456789xyz ok"),
            "key [REDACTED] ok"
        );
        assert_eq!(
            r.text("mail jane.doe+x@mail.example.co.uk."),
            "mail [REDACTED]."
        );
        assert!(matches!(r.text("nothing here, sk-short"), Cow::Borrowed(_)));
    }

    #[test]
    fn secret_keys_are_redacted_in_json_and_in_text() {
        let r = redactor();
        let mut v = serde_json::json!({"city": "Paris", "Api_Key": "k1", "nested": [{"password": {"a": 1}}], "note": "sk-ABCDEFGHIJKLMNOPQRST"});
        r.value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"city": "Paris", "Api_Key": "[REDACTED]", "nested": [{"password": "[REDACTED]"}], "note": "[REDACTED]"})
        );
        assert_eq!(
            r.text(r#"{"city": "Paris", "my_token" : "hunter\"2", "x_secret": 42, "password": "cut sho"#),
            r#"{"city": "Paris", "my_token" : "[REDACTED]", "x_secret": "[REDACTED]", "password": "[REDACTED]""#
        );
    }
}
