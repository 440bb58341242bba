//! From a file to a validated [`Config`], with errors that point at the line,
//! column and key an operator has to fix.
//!
//! Steps: parse with `toml_edit` (keeps spans), expand `${VAR}` in every string
//! value, deserialize with serde (`deny_unknown_fields`), apply the standard
//! environment overrides, validate. Interpolation rewrites values in place, so
//! line numbers of the rewritten text equal the original's.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml_edit::{Document, DocumentMut, Item, Value};

use super::interpolate::interpolate;
use super::origin::{join, referenced_variables, Origins, Written};
use super::{env, validate, Config};

/// A configuration error, located where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column of the offending key or value.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `upstream.url` or `metrics.routes[1].path`.
    pub key: Option<String>,
    /// The environment variable whose value is at fault, when one is.
    pub variable: Option<&'static str>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A bad variable is fixed in the environment, not in the file.
        match self.variable {
            Some(variable) => write!(f, "environment variable {variable}")?,
            None => f.write_str(&self.file)?,
        }
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and loads `path`, with variables from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_explained(path).map(|(config, _)| config)
}

/// As [`load_file`], with where each value came from.
pub fn load_file_explained(path: &Path) -> Result<(Config, Origins), ConfigError> {
    let file = path.display().to_string();
    let text = read(path, &file)?;
    load_str_explained(&text, &file, |name| std::env::var(name).ok())
}

fn read(path: &Path, file: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.to_owned(),
        position: None,
        key: None,
        variable: None,
        message: format!("cannot read configuration: {e}"),
    })
}

/// Loads configuration text; `file` names it in errors, `lookup` resolves variables
/// (both for `${VAR}` and for the `OTEL_*`/`SENTRY_*` overrides).
pub fn load_str(
    text: &str,
    file: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load_str_explained(text, file, lookup).map(|(config, _)| config)
}

/// As [`load_str`], with where each value came from.
pub fn load_str_explained(
    text: &str,
    file: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Config, Origins), ConfigError> {
    let error = |text: &str, span: Option<Range<usize>>, key: Option<String>, message: String| {
        let position = span.as_ref().map(|s| line_column(text, s.start));
        let key = key.or_else(|| span_key(text, span));
        ConfigError {
            file: file.to_owned(),
            position,
            key,
            variable: None,
            message,
        }
    };
    let by_variable = |variable, key: Option<String>, message| ConfigError {
        file: file.to_owned(),
        position: None,
        key,
        variable: Some(variable),
        message,
    };
    let interpolated = interpolate_values(text, &lookup)
        .map_err(|(span, key, message)| error(text, span, key, message))?;
    let mut config: Config = toml::from_str(&interpolated)
        .map_err(|e| error(&interpolated, e.span(), None, e.message().trim().to_owned()))?;
    let overrides = env::apply_overrides(&mut config, &lookup)
        .map_err(|(variable, message)| by_variable(variable, None, message))?;
    let origins = Origins::new(file, written(text, &lookup), overrides);
    validate::validate(&config).map_err(|(key, message)| match origins.variable_for(&key) {
        Some(variable) => by_variable(variable, Some(key), message),
        None => {
            let span = key_span(&interpolated, &key);
            error(&interpolated, span, Some(key), message)
        }
    })?;
    Ok((config, origins))
}

/// Every key written in `text`, with its line and the variables it uses.
fn written(text: &str, lookup: &impl Fn(&str) -> Option<String>) -> Vec<Written> {
    entries(text)
        .into_iter()
        .map(|e| {
            let variables = referenced_variables(text.get(e.value.clone()).unwrap_or_default())
                .into_iter()
                .map(|name| {
                    let set = lookup(&name).is_some_and(|v| !v.is_empty());
                    (name, set)
                })
                .collect();
            Written {
                line: line_column(text, e.key.start).0,
                path: e.path,
                variables,
            }
        })
        .collect()
}

type LocatedError = (Option<Range<usize>>, Option<String>, String);

/// Expands variables in every string value, leaving everything else byte-identical.
fn interpolate_values(
    text: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, LocatedError> {
    let doc = Document::parse(text.to_owned())
        .map_err(|e| (e.span(), None, e.message().trim().to_owned()))?;
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut locations = Vec::new();
    collect_entries(doc.as_item(), String::new(), &mut locations);
    let mut doc: DocumentMut = doc.into_mut();
    let mut failure = None;
    visit_strings_mut(doc.as_item_mut(), "", &mut |path, value| {
        if failure.is_some() {
            return;
        }
        match interpolate(value, lookup) {
            Ok(expanded) => *value = expanded,
            Err(e) => {
                let span = locations
                    .iter()
                    .find(|l| l.path == path)
                    .map(|l| l.value.clone());
                failure = Some((span, Some(path.to_owned()), e.to_string()));
            }
        }
    });
    match failure {
        Some(f) => Err(f),
        None => Ok(doc.to_string()),
    }
}

fn visit_strings_mut(item: &mut Item, path: &str, f: &mut impl FnMut(&str, &mut String)) {
    match item {
        Item::Table(table) => {
            for (key, child) in table.iter_mut() {
                visit_strings_mut(child, &join(path, &key), f);
            }
        }
        Item::ArrayOfTables(array) => {
            for (i, table) in array.iter_mut().enumerate() {
                for (key, child) in table.iter_mut() {
                    visit_strings_mut(child, &join(&format!("{path}[{i}]"), &key), f);
                }
            }
        }
        Item::Value(value) => visit_value_strings_mut(value, path, f),
        Item::None => {}
    }
}

fn visit_value_strings_mut(value: &mut Value, path: &str, f: &mut impl FnMut(&str, &mut String)) {
    match value {
        Value::String(s) if s.value().contains('$') => {
            let mut text = s.value().clone();
            f(path, &mut text);
            let decor = s.decor().clone();
            *s = toml_edit::Formatted::new(text);
            *s.decor_mut() = decor;
        }
        Value::Array(array) => {
            for (i, v) in array.iter_mut().enumerate() {
                visit_value_strings_mut(v, &format!("{path}[{i}]"), f);
            }
        }
        Value::InlineTable(table) => {
            for (key, v) in table.iter_mut() {
                visit_value_strings_mut(v, &join(path, &key), f);
            }
        }
        _ => {}
    }
}

/// One key of the document and where its key and value sit in the text.
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

fn collect_entries(item: &Item, path: String, out: &mut Vec<Entry>) {
    match item {
        Item::Table(table) => {
            for (name, _) in table.iter() {
                if let Some((key, child)) = table.get_key_value(name) {
                    let child_path = join(&path, name);
                    push_entry(out, &child_path, key.span(), child.span());
                    collect_entries(child, child_path, out);
                }
            }
        }
        Item::ArrayOfTables(array) => {
            for (i, table) in array.iter().enumerate() {
                let element = format!("{path}[{i}]");
                push_entry(out, &element, table.span(), table.span());
                collect_entries(&Item::Table(table.clone()), element, out);
            }
        }
        Item::Value(value) => collect_value_entries(value, &path, out),
        Item::None => {}
    }
}

fn collect_value_entries(value: &Value, path: &str, out: &mut Vec<Entry>) {
    match value {
        Value::Array(array) => {
            for (i, v) in array.iter().enumerate() {
                let element = format!("{path}[{i}]");
                push_entry(out, &element, v.span(), v.span());
                collect_value_entries(v, &element, out);
            }
        }
        Value::InlineTable(table) => {
            for (name, _) in table.iter() {
                if let Some((key, v)) = table.get_key_value(name) {
                    let child_path = join(path, name);
                    push_entry(out, &child_path, key.span(), v.span());
                    if let Some(v) = v.as_value() {
                        collect_value_entries(v, &child_path, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn push_entry(
    out: &mut Vec<Entry>,
    path: &str,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
) {
    if let (Some(key), Some(value)) = (key.clone().or(value.clone()), value.or(key)) {
        out.push(Entry {
            path: path.to_owned(),
            key,
            value,
        });
    }
}

fn entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    if let Ok(doc) = Document::parse(text.to_owned()) {
        collect_entries(doc.as_item(), String::new(), &mut out);
    }
    out
}

/// The innermost key whose key or value contains the span's start.
fn span_key(text: &str, span: Option<Range<usize>>) -> Option<String> {
    let at = span?.start;
    let inside = |r: &Range<usize>| r.start <= at && at < r.end.max(r.start + 1);
    entries(text)
        .into_iter()
        .filter(|e| inside(&e.key) || inside(&e.value))
        .min_by_key(|e| e.value.len().min(e.key.len()))
        .map(|e| e.path)
}

/// Where `path` (or its nearest present ancestor) is written.
fn key_span(text: &str, path: &str) -> Option<Range<usize>> {
    let all = entries(text);
    let mut candidate = path;
    loop {
        if let Some(e) = all.iter().find(|e| e.path == candidate) {
            return Some(e.key.clone());
        }
        candidate = &candidate[..candidate.rfind(['.', '['])?];
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
