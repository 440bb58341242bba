//! Value types that validate themselves while being deserialized, so a bad
//! value is reported with the exact line and column of the value.

use std::fmt;
use std::str::FromStr;

use http::header::HeaderName;
use http::uri::{Authority, Scheme, Uri};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::defaults::DEFAULT_UPSTREAM_URL;

/// Parses through `FromStr` and serializes through `Display`.
macro_rules! string_serde {
    ($ty:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

/// The upstream base URL, split once into the parts every request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix prepended to every request path; empty for `/`.
    pub base_path: String,
}

impl UpstreamUrl {
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The port to connect to, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority
            .port_u16()
            .unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    pub fn host(&self) -> &str {
        self.authority.host()
    }
}

impl Default for UpstreamUrl {
    fn default() -> Self {
        DEFAULT_UPSTREAM_URL
            .parse()
            .expect("DEFAULT_UPSTREAM_URL is a valid http URL")
    }
}

impl FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uri: Uri = s.parse().map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        let scheme = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => scheme.clone(),
            Some(other) => return Err(format!("URL scheme must be http or https, not {other:?}")),
            None => return Err(format!("URL {s:?} needs a scheme: http:// or https://")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("URL {s:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("URL must not carry credentials (user:password@)".to_owned());
        }
        if uri.query().is_some() {
            return Err(format!("URL {s:?} must not have a query"));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            base_path,
        })
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

string_serde!(UpstreamUrl);

/// A header name, validated and lower-cased at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNameValue(pub HeaderName);

impl HeaderNameValue {
    pub fn from_static(name: &'static str) -> Self {
        Self(HeaderName::from_static(name))
    }
}

impl FromStr for HeaderNameValue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HeaderName::from_bytes(s.as_bytes())
            .map(Self)
            .map_err(|_| format!("invalid header name {s:?}"))
    }
}

impl fmt::Display for HeaderNameValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

string_serde!(HeaderNameValue);

/// An inclusive range of HTTP status codes: `"500-599"` or a single `"429"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

impl StatusRange {
    pub const SERVER_ERRORS: Self = Self {
        first: 500,
        last: 599,
    };

    pub fn contains(&self, status: u16) -> bool {
        (self.first..=self.last).contains(&status)
    }
}

impl FromStr for StatusRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = |part: &str| -> Result<u16, String> {
            match part.trim().parse::<u16>() {
                Ok(c) if (100..=999).contains(&c) => Ok(c),
                _ => Err(format!(
                    "invalid status code {part:?} in {s:?} (expected 100-999)"
                )),
            }
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => (code(s)?, code(s)?),
        };
        if first > last {
            return Err(format!("status range {s:?} is empty: {first} > {last}"));
        }
        Ok(Self { first, last })
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Code(c) => c.to_string().parse().map_err(de::Error::custom),
            Raw::Text(t) => t.parse().map_err(de::Error::custom),
        }
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes, written as an integer or with a unit: `"64KiB"`, `"10MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid size {s:?} (e.g. 65536, \"64KiB\", \"10MB\")"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" | "k" => 1 << 10,
            "mb" => 1_000_000,
            "mib" | "m" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" | "g" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} in {s:?}")),
        };
        n.checked_mul(mult)
            .map(Self)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(t) => t.parse().map_err(de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_url_parts() {
        let u: UpstreamUrl = "https://llm.internal:8443/base/".parse().unwrap();
        assert!(u.is_https());
        assert_eq!(u.port(), 8443);
        assert_eq!(u.base_path, "/base");
        assert_eq!(u.to_string(), "https://llm.internal:8443/base");
        let d: UpstreamUrl = "http://ollama".parse().unwrap();
        assert_eq!(d.port(), 80);
        assert_eq!(d.base_path, "");
    }

    #[test]
    fn upstream_url_rejects() {
        for bad in [
            "ftp://x",
            "localhost:11434",
            "http://u:p@x",
            "http://x/?a=b",
            "::",
        ] {
            assert!(bad.parse::<UpstreamUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn status_ranges() {
        let r: StatusRange = "500-599".parse().unwrap();
        assert!(r.contains(503) && !r.contains(499));
        assert_eq!("429".parse::<StatusRange>().unwrap().to_string(), "429");
        for bad in ["600-500", "abc", "5000", "99"] {
            assert!(bad.parse::<StatusRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("64KiB".parse::<ByteSize>().unwrap(), ByteSize(65536));
        assert_eq!("10MB".parse::<ByteSize>().unwrap(), ByteSize(10_000_000));
        assert_eq!("123".parse::<ByteSize>().unwrap(), ByteSize(123));
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
        assert!("12 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999999GiB".parse::<ByteSize>().is_err());
    }
}
