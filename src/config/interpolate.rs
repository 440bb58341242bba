//! `${VAR}` and `${VAR:-default}` in string values.
//!
//! Shell semantics for `:-`: the default applies when the variable is unset or
//! empty. `$${` is a literal `${`. A `$` not followed by `{` is kept as is, so
//! values like regexes or passwords containing `$` need no escaping.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InterpolationError {
    #[error("environment variable {0} is not set (use ${{{0}:-default}} to give a default)")]
    Unset(String),
    #[error("unterminated ${{ in {0:?}")]
    Unterminated(String),
    #[error("invalid variable name {0:?}")]
    InvalidName(String),
}

/// Expands every `${...}` in `input` with `lookup`.
pub fn interpolate(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| InterpolationError::Unterminated(input.to_owned()))?;
            out.push_str(&expand(&body[..end], &lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(
    expr: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let (name, default) = match expr.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (expr, None),
    };
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(InterpolationError::InvalidName(name.to_owned()));
    }
    match (
        lookup(name).filter(|v| !v.is_empty() || default.is_none()),
        default,
    ) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(InterpolationError::Unset(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("ollama".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands() {
        assert_eq!(
            interpolate("http://${HOST}:1", env).unwrap(),
            "http://ollama:1"
        );
        assert_eq!(interpolate("${NOPE:-dflt}", env).unwrap(), "dflt");
        assert_eq!(interpolate("${EMPTY:-dflt}", env).unwrap(), "dflt");
        assert_eq!(interpolate("${EMPTY}", env).unwrap(), "");
        assert_eq!(interpolate("${SENTRY_DSN:-}", env).unwrap(), "");
        assert_eq!(interpolate("a$b$${HOST}", env).unwrap(), "a$b${HOST}");
        assert_eq!(interpolate("${HOST}${HOST}", env).unwrap(), "ollamaollama");
        assert_eq!(interpolate("${NOPE:-a:-b}", env).unwrap(), "a:-b");
    }

    #[test]
    fn rejects() {
        assert_eq!(
            interpolate("${NOPE}", env),
            Err(InterpolationError::Unset("NOPE".into()))
        );
        assert!(matches!(
            interpolate("${HOST", env),
            Err(InterpolationError::Unterminated(_))
        ));
        assert!(matches!(
            interpolate("${1X}", env),
            Err(InterpolationError::InvalidName(_))
        ));
        assert!(matches!(
            interpolate("${}", env),
            Err(InterpolationError::InvalidName(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_plain_text_is_unchanged(text in "\\PC{0,80}") {
            let _ = interpolate(&text, env);
            if !text.contains('$') {
                proptest::prop_assert_eq!(interpolate(&text, env).unwrap(), text);
            }
        }
    }
}
