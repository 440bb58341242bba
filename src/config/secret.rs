//! Secrets in the configuration: usable by the code, masked everywhere a human
//! or a log could see them (`Debug`, `check`'s printout).

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

const MASK: &str = "****";

/// A token, password or header value. `Debug` and `Serialize` print `****`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// A Sentry DSN (`https://<public key>@<host>/<project id>`); empty means off.
/// Only the key is secret: the masked form keeps host and project so an
/// operator can still see where events go.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SentryDsn(Option<String>);

impl SentryDsn {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self(None));
        }
        let uri: http::Uri = raw.parse().map_err(|_| "invalid Sentry DSN".to_owned())?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let has_key = uri.authority().is_some_and(|a| a.as_str().contains('@'));
        let has_project = uri
            .path()
            .trim_matches('/')
            .rsplit('/')
            .next()
            .is_some_and(|p| !p.is_empty());
        if scheme_ok && has_key && has_project {
            Ok(Self(Some(raw.to_owned())))
        } else {
            Err("invalid Sentry DSN: expected https://<key>@<host>/<project>".to_owned())
        }
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn masked(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(dsn) => match (dsn.find("://"), dsn.find('@')) {
                (Some(s), Some(at)) if s + 3 < at => {
                    format!("{}{MASK}{}", &dsn[..s + 3], &dsn[at..])
                }
                _ => MASK.to_owned(),
            },
        }
    }
}

impl fmt::Debug for SentryDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for SentryDsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Serialize for SentryDsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "MASKED");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"****\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn dsn_masks_only_the_key() {
        let dsn = SentryDsn::parse("https://abc123@o1.ingest.sentry.io/42").unwrap();
        assert!(dsn.is_set());
        assert_eq!(format!("{dsn:?}"), "https://****@o1.ingest.sentry.io/42");
        assert!(!SentryDsn::parse("").unwrap().is_set());
        assert!(SentryDsn::parse("https://o1.ingest.sentry.io/42").is_err());
        assert!(SentryDsn::parse("https://k@host/").is_err());
    }
}
