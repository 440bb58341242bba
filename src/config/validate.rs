//! Checks that need more than one value or the file system. Each error names
//! the key to fix; the loader turns it into a line and column.

use super::{Config, SignalOtlp};

/// `(key path, message)`.
pub type ValidationError = (String, String);

pub fn validate(config: &Config) -> Result<(), ValidationError> {
    let fail = |key: &str, message: String| Err((key.to_owned(), message));

    for (key, value) in [
        ("tracing.ratio", config.tracing.ratio),
        ("tracing.outcome.ratio", config.tracing.outcome.ratio),
        ("sentry.sample_rate", config.sentry.sample_rate),
        (
            "sentry.traces_sample_rate",
            config.sentry.traces_sample_rate,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return fail(key, format!("must be between 0 and 1, got {value}"));
        }
    }
    for (key, limit) in [
        ("listener.max_connections", config.listener.max_connections),
        (
            "listener.max_concurrent_requests",
            config.listener.max_concurrent_requests,
        ),
    ] {
        if limit == Some(0) {
            return fail(
                key,
                "must be at least 1; remove the key for no limit".into(),
            );
        }
    }
    if config.listener.max_headers == 0 {
        return fail("listener.max_headers", "must be at least 1".into());
    }
    if config.listener.max_header_bytes.0 < 1024 {
        return fail("listener.max_header_bytes", "must be at least 1KiB".into());
    }
    // Port 0 asks the OS for a free port, so two of them never clash.
    if config.listener.address == config.admin.address && config.admin.address.port() != 0 {
        return fail(
            "admin.address",
            format!("{} is also the listener address", config.admin.address),
        );
    }
    if config.correlation.accept.is_empty() {
        return fail(
            "correlation.accept",
            "needs at least one header (usually the correlation header itself)".into(),
        );
    }
    if config
        .admin
        .token
        .as_ref()
        .is_some_and(|t| t.expose().is_empty())
    {
        return fail(
            "admin.token",
            "is empty; remove the key to disable it".into(),
        );
    }
    validate_genai(config)?;
    validate_routes(config)?;
    validate_outcome_routes(config)?;
    validate_metric_export(config)?;
    validate_otlp(config)?;
    validate_files(config)
}

/// Content capture needs room for one message, and patterns that compile
/// (they are compiled again, once, when the settings are built).
fn validate_genai(config: &Config) -> Result<(), ValidationError> {
    let max = config.genai.max_content_bytes.0;
    if !(MIN_CONTENT_BYTES..=MAX_CONTENT_BYTES).contains(&max) {
        return Err((
            "genai.max_content_bytes".into(),
            format!("must be between 256 and 1MiB, got {max}"),
        ));
    }
    for (i, pattern) in config.genai.redact_patterns.iter().enumerate() {
        if let Err(e) = regex::Regex::new(pattern) {
            let reason = e.to_string().lines().last().unwrap_or_default().to_owned();
            return Err((format!("genai.redact_patterns[{i}]"), reason));
        }
    }
    Ok(())
}

/// Bounds of `genai.max_content_bytes`: one short message, and what one
/// attribute value can reasonably carry.
const MIN_CONTENT_BYTES: u64 = 256;
const MAX_CONTENT_BYTES: u64 = 1 << 20;

fn validate_routes(config: &Config) -> Result<(), ValidationError> {
    for (i, route) in config.metrics.routes.iter().enumerate() {
        let key = |field: &str| format!("metrics.routes[{i}]{field}");
        match (&route.path, &route.prefix) {
            (Some(p), None) | (None, Some(p)) if p.starts_with('/') => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err((key(""), "path and prefix must start with '/'".into()))
            }
            _ => return Err((key(""), "needs exactly one of `path` or `prefix`".into())),
        }
        if route.name.is_empty() {
            return Err((key(".name"), "must not be empty".into()));
        }
    }
    Ok(())
}

/// Each `[[tracing.outcome.routes]]` names a route once, and sets a threshold.
fn validate_outcome_routes(config: &Config) -> Result<(), ValidationError> {
    let routes = &config.tracing.outcome.routes;
    for (i, route) in routes.iter().enumerate() {
        let key = |field: &str| format!("tracing.outcome.routes[{i}]{field}");
        // `other` is the handler of unmatched paths (`context::route::OTHER`).
        let known =
            route.name == "other" || config.metrics.routes.iter().any(|r| r.name == route.name);
        if !known {
            return Err((
                key(".name"),
                format!(
                    "{:?} is not a [metrics] routes name (nor \"other\")",
                    route.name
                ),
            ));
        }
        if routes[..i].iter().any(|r| r.name == route.name) {
            return Err((key(".name"), format!("{:?} is listed twice", route.name)));
        }
        if route.slower_than.is_none() && route.ttft_slower_than.is_none() {
            return Err((
                key(""),
                "sets neither slower_than nor ttft_slower_than".into(),
            ));
        }
    }
    Ok(())
}

/// The metric exporters read the registry every `export_interval`, whole:
/// the interval must be a period, and the span queue's keys, which
/// `[metrics.otlp]` shares the type of, mean nothing there. A value other
/// than the default is refused rather than silently ignored.
fn validate_metric_export(config: &Config) -> Result<(), ValidationError> {
    if config.metrics.export_interval.is_zero() {
        return Err((
            "metrics.export_interval".into(),
            "must be longer than 0s".into(),
        ));
    }
    let own = &config.metrics.otlp;
    let queue = SignalOtlp::default();
    for (key, set) in [
        ("max_queue_size", own.max_queue_size != queue.max_queue_size),
        ("schedule_delay", own.schedule_delay != queue.schedule_delay),
        (
            "max_export_batch_size",
            own.max_export_batch_size != queue.max_export_batch_size,
        ),
    ] {
        if set {
            return Err((
                format!("metrics.otlp.{key}"),
                "metrics have no queue: every export sends the whole registry \
                 (export_interval sets how often); remove the key"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Every signal exported over OTLP has a usable target: an http(s) URL, a
/// client certificate with its key, readable TLS files.
fn validate_otlp(config: &Config) -> Result<(), ValidationError> {
    use super::{LogsExporter, MetricsExporter, Signal, TraceExporter};
    let signals = [
        (
            Signal::Traces,
            "tracing.otlp",
            &config.tracing.otlp,
            config.tracing.enabled && config.tracing.exporters.contains(&TraceExporter::Otlp),
        ),
        (
            Signal::Metrics,
            "metrics.otlp",
            &config.metrics.otlp,
            config.metrics.exporters.contains(&MetricsExporter::Otlp),
        ),
        (
            Signal::Logs,
            "logging.otlp",
            &config.logging.otlp,
            config.logging.exporters.contains(&LogsExporter::Otlp),
        ),
    ];
    for (signal, table, own, exported) in signals {
        if !exported {
            continue;
        }
        let endpoint_key = match own.endpoint {
            Some(_) => format!("{table}.endpoint"),
            None => "otlp.endpoint".to_owned(),
        };
        let target = config.otlp.target(signal, own);
        match target.url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => {
                return Err((
                    endpoint_key,
                    format!("{:?} is not an http(s) URL", target.url),
                ))
            }
        }
        let cert = own.client_cert.is_some() || config.otlp.client_cert.is_some();
        let key = own.client_key.is_some() || config.otlp.client_key.is_some();
        if cert != key {
            return Err((
                format!("{table}.client_cert"),
                "client_cert and client_key go together (mTLS)".into(),
            ));
        }
        if let Some(ca) = &target.ca_file {
            if let Err(e) = crate::tls::load_ca_certs(ca) {
                return Err((format!("{table}.ca_file"), e.to_string()));
            }
        }
        if let Some((cert, key)) = &target.client_identity {
            if let Err(e) = crate::tls::client_config_with(None, Some((cert, key))) {
                return Err((format!("{table}.client_cert"), e.to_string()));
            }
        }
    }
    for (table, own) in [
        ("tracing.otlp", &config.tracing.otlp),
        ("logging.otlp", &config.logging.otlp),
    ] {
        if own.max_export_batch_size > own.max_queue_size {
            return Err((
                format!("{table}.max_export_batch_size"),
                "must not exceed max_queue_size".into(),
            ));
        }
    }
    Ok(())
}

fn validate_files(config: &Config) -> Result<(), ValidationError> {
    if let Some(tls) = &config.listener.tls {
        if let Err(e) = crate::tls::load_certified_key(&tls.cert, &tls.key) {
            return Err(("listener.tls".into(), e.to_string()));
        }
    }
    if let Some(ca) = &config.upstream.ca_file {
        if let Err(e) = crate::tls::load_ca_certs(ca) {
            return Err(("upstream.ca_file".into(), e.to_string()));
        }
    }
    if let Some(file) = &config.logging.file {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            return Err((
                "logging.file".into(),
                format!("directory of {} does not exist", file.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn refused(text: &str, env: &[(&str, &str)]) -> String {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let error = load_str(text, "t.toml", |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap_err();
        format!("{} {}", error.key.unwrap_or_default(), error.message)
    }

    #[test]
    fn outcome_routes_name_a_route_once_and_set_a_threshold() {
        let error = refused(
            "[[tracing.outcome.routes]]\nname = \"/nope\"\nslower_than = \"1s\"\n",
            &[],
        );
        assert!(
            error.starts_with("tracing.outcome.routes[0].name ") && error.contains("/nope"),
            "{error}"
        );
        let twice = "[[tracing.outcome.routes]]\nname = \"/api/chat\"\nslower_than = \"1s\"\n";
        let error = refused(&format!("{twice}{twice}"), &[]);
        assert!(
            error.starts_with("tracing.outcome.routes[1].name "),
            "{error}"
        );
        let error = refused("[[tracing.outcome.routes]]\nname = \"other\"\n", &[]);
        assert!(error.starts_with("tracing.outcome.routes[0] "), "{error}");
        let error = refused("[tracing.outcome]\nratio = 2.0\n", &[]);
        assert!(error.starts_with("tracing.outcome.ratio "), "{error}");
        assert!(load_str(
            "[tracing]\nsampler = \"outcome\"\n[tracing.outcome]\nratio = 0.05\n\
             upstream_sampled = \"always\"\n[[tracing.outcome.routes]]\n\
             name = \"/api/chat\"\nslower_than = \"60s\"\nttft_slower_than = \"2s\"\n",
            "t.toml",
            |_| None
        )
        .is_ok());
    }

    #[test]
    fn metric_exports_need_a_period() {
        let error = refused("[metrics]\nexport_interval = \"0s\"\n", &[]);
        assert!(error.starts_with("metrics.export_interval "), "{error}");
        let error = refused("", &[("OTEL_METRIC_EXPORT_INTERVAL", "0")]);
        assert!(error.starts_with("metrics.export_interval "), "{error}");
        assert!(
            load_str("[metrics]\nexport_interval = \"200ms\"\n", "t.toml", |_| {
                None
            })
            .is_ok()
        );
    }

    #[test]
    fn metrics_have_no_queue_to_configure() {
        for key in [
            "max_queue_size = 10",
            "schedule_delay = \"5s\"",
            "max_export_batch_size = 7",
        ] {
            let error = refused(&format!("[metrics.otlp]\n{key}\n"), &[]);
            let name = key.split(' ').next().unwrap();
            assert!(
                error.starts_with(&format!("metrics.otlp.{name} ")) && error.contains("no queue"),
                "{error}"
            );
        }
        // The span queue's keys are the spans'.
        assert!(load_str(
            "[tracing.otlp]\nmax_queue_size = 10\nmax_export_batch_size = 5\n",
            "t.toml",
            |_| None
        )
        .is_ok());
    }
}
