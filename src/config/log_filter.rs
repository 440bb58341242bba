//! `logging.level`: a level (`info`) or `tracing` directives
//! (`info,otel_sidecar::proxy=debug`), checked at load. Without the check a
//! typo such as `warning` is a valid directive to `tracing` — "everything
//! from the target named `warning`" — and silences the whole log.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

const LEVELS: &str = "off, error, warn (or warning), info, debug, trace";

/// A validated filter, with level names normalised (`WARNING` → `warn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl Default for LogFilter {
    fn default() -> Self {
        Self(super::defaults::DEFAULT_LOG_LEVEL.to_owned())
    }
}

impl LogFilter {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn level(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "off" => "off",
        "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        _ => return None,
    })
}

/// One directive: a bare level, or `target=level`. A bare target (which
/// `tracing` reads as "that target at every level") is refused: in a level
/// key it is almost always a misspelt level.
fn directive(text: &str) -> Result<String, String> {
    let unknown =
        |l: &str| format!("unknown level {l:?}: use one of {LEVELS}, or TARGET=LEVEL directives");
    match text.split_once('=') {
        None => level(text).map(str::to_owned).ok_or_else(|| unknown(text)),
        Some((target, l)) => {
            let target = target.trim();
            if target.is_empty() || target.contains(|c: char| c.is_whitespace()) {
                return Err(format!("invalid target {target:?} in directive {text:?}"));
            }
            Ok(format!("{target}={}", level(l).ok_or_else(|| unknown(l))?))
        }
    }
}

impl FromStr for LogFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let directives = s
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .map(directive)
            .collect::<Result<Vec<_>, _>>()?;
        if directives.is_empty() {
            return Err(format!("is empty: use one of {LEVELS}"));
        }
        Ok(Self(directives.join(",")))
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LogFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for LogFilter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_level() {
        let default = LogFilter::default();
        assert_eq!(default.as_str().parse::<LogFilter>().unwrap(), default);
    }

    #[test]
    fn levels_and_directives() {
        for (text, want) in [
            ("info", "info"),
            ("WARNING", "warn"),
            ("warn", "warn"),
            (
                "info,otel_sidecar::proxy=debug",
                "info,otel_sidecar::proxy=debug",
            ),
            ("error, hyper=warning", "error,hyper=warn"),
            ("off", "off"),
        ] {
            assert_eq!(text.parse::<LogFilter>().unwrap().as_str(), want, "{text}");
        }
    }

    #[test]
    fn misspellings_are_refused_with_the_allowed_values() {
        for bad in ["warnings", "verbose", "info,hyper=loud", "", " , "] {
            let error = bad.parse::<LogFilter>().unwrap_err();
            assert!(error.contains("warn (or warning)"), "{bad}: {error}");
        }
        assert!("=debug".parse::<LogFilter>().is_err());
    }
}
