//! Reading environment variables into the configuration: the error that names
//! a variable, the record of which keys the variables set (for `check`'s
//! origins), and the `key=value,...` lists several variables share.

/// `(variable, message)` for a variable whose value cannot be used.
pub type EnvError = (&'static str, String);

/// `(key path, variable)` for each value a variable set, in the order applied.
pub type Overrides = Vec<(String, &'static str)>;

/// Reads variables and remembers which keys the used ones set.
pub(super) struct Recorder<'a, F> {
    lookup: &'a F,
    set: Overrides,
}

impl<'a, F: Fn(&str) -> Option<String>> Recorder<'a, F> {
    pub(super) fn new(lookup: &'a F) -> Self {
        Self {
            lookup,
            set: Overrides::new(),
        }
    }

    /// The variable's value when it is set and not empty (the OpenTelemetry
    /// specification treats an empty value as unset).
    pub(super) fn get(&mut self, name: &'static str, key: &str) -> Option<String> {
        self.get_if(name, key, |_| true)
    }

    /// As [`get`](Self::get), when the value also `applies`.
    pub(super) fn get_if(
        &mut self,
        name: &'static str,
        key: &str,
        applies: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let value = (self.lookup)(name).filter(|v| !v.trim().is_empty() && applies(v))?;
        self.set.push((key.to_owned(), name));
        Some(value)
    }

    pub(super) fn into_overrides(self) -> Overrides {
        self.set
    }
}

/// `key1=value1,key2=value2` with percent-encoded values (W3C Baggage octets),
/// as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS` use. Malformed
/// members are skipped, as the specification asks.
pub fn parse_key_values(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter_map(|member| {
            let (key, value) = member.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| {
                let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
                (key.to_owned(), value.into_owned())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_values("a=1, b = x%20y ,bad,=v,c=%ZZ"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "%ZZ".into())
            ]
        );
    }
}
