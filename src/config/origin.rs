//! Where each effective value came from: a line of the file (and the
//! `${VAR}`s it used), a standard environment variable, or the default.
//! `check` prints it beside every value, and an invalid value set by a
//! variable is reported against the variable, not against the file.

use std::fmt::Write;

use toml_edit::{DocumentMut, Item, Value};

use super::env_vars::Overrides;

/// One key written in the file.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: String,
    pub line: usize,
    /// Variables its value interpolates, with whether each was set.
    pub variables: Vec<(String, bool)>,
}

/// The origins of one loaded configuration.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    file: String,
    written: Vec<Written>,
    overrides: Overrides,
}

/// `path` itself, or something inside it (`a.b` is inside `a`, `a[0]` too).
fn within(path: &str, outer: &str) -> bool {
    path.strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

impl Origins {
    pub fn new(file: &str, written: Vec<Written>, overrides: Overrides) -> Self {
        Self {
            file: file.to_owned(),
            written,
            overrides,
        }
    }

    /// The variable that set `key` (or a value inside it), if one did.
    pub fn variable_for(&self, key: &str) -> Option<&'static str> {
        self.overrides
            .iter()
            .rev()
            .find(|(path, _)| within(path, key) || within(key, path))
            .map(|(_, var)| *var)
    }

    /// `sidecar.toml:12`, `sidecar.toml:12 via $UPSTREAM_URL`,
    /// `$OTEL_SERVICE_NAME (over sidecar.toml:14)` or `default`.
    pub fn describe(&self, path: &str) -> String {
        let written = self
            .written
            .iter()
            .find(|w| w.path == path)
            .or_else(|| self.written.iter().find(|w| within(&w.path, path)));
        let mut variables: Vec<&str> = Vec::new();
        for (set, var) in &self.overrides {
            if (within(set, path) || within(path, set)) && !variables.contains(var) {
                variables.push(var);
            }
        }
        let file_part = written.map(|w| {
            let mut text = format!("{}:{}", self.file, w.line);
            for (i, (name, set)) in w.variables.iter().enumerate() {
                let sep = if i == 0 { " via " } else { ", " };
                let state = if *set { "" } else { " (unset: default)" };
                let _ = write!(text, "{sep}${{{name}}}{state}");
            }
            text
        });
        match (variables.is_empty(), file_part) {
            (true, Some(file)) => file,
            (true, None) => "default".to_owned(),
            (false, file) => {
                let mut text = format!("${}", variables.join(", $"));
                if let Some(file) = file {
                    let _ = write!(text, " (over {file})");
                }
                text
            }
        }
    }

    /// The effective settings as TOML, each value followed by its origin.
    pub fn annotate(&self, effective_toml: &str) -> String {
        let Ok(mut doc) = effective_toml.parse::<DocumentMut>() else {
            return effective_toml.to_owned();
        };
        self.annotate_item(doc.as_item_mut(), "");
        doc.to_string()
    }

    fn annotate_item(&self, item: &mut Item, path: &str) {
        match item {
            Item::Table(table) => {
                for (key, child) in table.iter_mut() {
                    self.annotate_item(child, &join(path, &key));
                }
            }
            Item::ArrayOfTables(array) => {
                for (i, table) in array.iter_mut().enumerate() {
                    let element = format!("{path}[{i}]");
                    for (key, child) in table.iter_mut() {
                        self.annotate_item(child, &join(&element, &key));
                    }
                }
            }
            Item::Value(value) => self.annotate_value(value, path),
            Item::None => {}
        }
    }

    fn annotate_value(&self, value: &mut Value, path: &str) {
        // One line per key, so the origin sits beside the whole value.
        if let Value::Array(array) = value {
            array.fmt();
        }
        let origin = self.describe(path);
        value.decor_mut().set_suffix(format!("  # {origin}"));
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The `${NAME}` and `${NAME:-default}` references in a value as written.
pub fn referenced_variables(written: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = written;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        // `$${` is a literal `${`, not a reference.
        if let Some(escaped) = after.strip_prefix("${") {
            rest = escaped;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            rest = after;
            continue;
        };
        let end = body.find('}').unwrap_or(body.len());
        let name = body[..end].split(":-").next().unwrap_or_default();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = &body[end..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        Origins::new(
            "sidecar.toml",
            vec![
                Written {
                    path: "service.name".into(),
                    line: 14,
                    variables: vec![],
                },
                Written {
                    path: "upstream.url".into(),
                    line: 3,
                    variables: vec![("UPSTREAM_URL".into(), true)],
                },
                Written {
                    path: "sentry.dsn".into(),
                    line: 20,
                    variables: vec![("SENTRY_DSN".into(), false)],
                },
                Written {
                    path: "sentry.redact_keys".into(),
                    line: 21,
                    variables: vec![],
                },
            ],
            vec![
                ("service.name".into(), "OTEL_SERVICE_NAME"),
                ("tracing.ratio".into(), "OTEL_TRACES_SAMPLER_ARG"),
            ],
        )
    }

    #[test]
    fn every_kind_of_origin() {
        let o = origins();
        assert_eq!(
            o.describe("upstream.url"),
            "sidecar.toml:3 via ${UPSTREAM_URL}"
        );
        assert_eq!(
            o.describe("sentry.dsn"),
            "sidecar.toml:20 via ${SENTRY_DSN} (unset: default)"
        );
        assert_eq!(
            o.describe("service.name"),
            "$OTEL_SERVICE_NAME (over sidecar.toml:14)"
        );
        assert_eq!(o.describe("tracing.ratio"), "$OTEL_TRACES_SAMPLER_ARG");
        assert_eq!(o.describe("listener.drain_timeout"), "default");
        assert_eq!(o.describe("sentry.redact_keys"), "sidecar.toml:21");
        // `service.name` is not inside `service.namespace`.
        assert_eq!(o.describe("service.namespace"), "default");
    }

    #[test]
    fn errors_point_at_the_variable_that_set_a_key() {
        let o = origins();
        assert_eq!(
            o.variable_for("tracing.ratio"),
            Some("OTEL_TRACES_SAMPLER_ARG")
        );
        assert_eq!(o.variable_for("service"), Some("OTEL_SERVICE_NAME"));
        assert_eq!(o.variable_for("upstream.url"), None);
    }

    #[test]
    fn annotated_values_keep_their_toml() {
        let text = o_text();
        let annotated = origins().annotate(text);
        assert!(
            annotated.contains("ratio = 0.5  # $OTEL_TRACES_SAMPLER_ARG"),
            "{annotated}"
        );
        assert!(
            annotated.contains("name = \"api\"  # $OTEL_SERVICE_NAME"),
            "{annotated}"
        );
        assert_eq!(
            annotated.parse::<DocumentMut>().unwrap().to_string().len(),
            annotated.len()
        );
    }

    fn o_text() -> &'static str {
        "[service]\nname = \"api\"\n[tracing]\nratio = 0.5\n"
    }

    #[test]
    fn variables_in_a_value() {
        assert_eq!(
            referenced_variables("${A}-${B:-x}${A}$${C}"),
            vec!["A".to_owned(), "B".to_owned()]
        );
        assert!(referenced_variables("plain $HOME").is_empty());
    }
}
