//! The standard OpenTelemetry and Sentry environment variables, which win over
//! the file so a platform can configure every sidecar the same way.

use super::env_vars::{parse_key_values, EnvError, Overrides, Recorder};
use super::{Config, Sampler, SentryDsn};

/// Applies every standard variable that is set and not empty (the OpenTelemetry
/// specification treats an empty value as unset), and says which keys each set.
pub fn apply_overrides(
    config: &mut Config,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Overrides, EnvError> {
    let mut env = Recorder::new(lookup);

    if let Some(attrs) = env.get("OTEL_RESOURCE_ATTRIBUTES", "service.resource_attributes") {
        for (key, value) in parse_key_values(&attrs) {
            // service.name is `[service] name`: here it replaces the file's,
            // and OTEL_SERVICE_NAME below replaces it, as the specification
            // orders them.
            if key == SERVICE_NAME {
                config.service.name = value;
            } else {
                config.service.resource_attributes.insert(key, value);
            }
        }
    }
    if let Some(name) = env.get("OTEL_SERVICE_NAME", "service.name") {
        config.service.name = name;
    }
    super::env_otlp::apply(config, &mut env)?;
    if let Some(sampler) = env.get("OTEL_TRACES_SAMPLER", "tracing.sampler") {
        config.tracing.sampler = parse_sampler(sampler.trim()).ok_or((
            "OTEL_TRACES_SAMPLER",
            format!("unknown sampler {sampler:?}"),
        ))?;
    }
    if let Some(arg) = env.get("OTEL_TRACES_SAMPLER_ARG", "tracing.ratio") {
        config.tracing.ratio = arg.trim().parse().map_err(|_| {
            (
                "OTEL_TRACES_SAMPLER_ARG",
                format!("{arg:?} is not a number"),
            )
        })?;
    }
    if env
        .get_if("OTEL_SDK_DISABLED", "tracing.enabled", |v| {
            v.trim().eq_ignore_ascii_case("true")
        })
        .is_some()
    {
        config.tracing.enabled = false;
    }
    if env
        .get_if(
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "genai.capture_content",
            captures_content,
        )
        .is_some()
    {
        config.genai.capture_content = true;
    }
    if let Some(dsn) = env.get("SENTRY_DSN", "sentry.dsn") {
        config.sentry.dsn = SentryDsn::parse(&dsn).map_err(|e| ("SENTRY_DSN", e))?;
    }
    if let Some(environment) = env.get("SENTRY_ENVIRONMENT", "sentry.environment") {
        config.sentry.environment = Some(environment);
    }
    if let Some(release) = env.get("SENTRY_RELEASE", "sentry.release") {
        config.sentry.release = Some(release);
    }
    Ok(env.into_overrides())
}

/// `true`, or the OpenTelemetry Python GenAI instrumentations' values that
/// put content on spans. Anything else leaves the file's setting.
fn captures_content(value: &str) -> bool {
    ["true", "span_only", "span_and_event"]
        .iter()
        .any(|v| value.trim().eq_ignore_ascii_case(v))
}

/// The resource attribute that `[service] name` sets.
const SERVICE_NAME: &str = "service.name";

fn parse_sampler(name: &str) -> Option<Sampler> {
    Some(match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::Traceidratio,
        "parentbased_always_on" => Sampler::ParentbasedAlwaysOn,
        "parentbased_always_off" => Sampler::ParentbasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentbasedTraceidratio,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    #[test]
    fn the_genai_content_variable_turns_capture_on_never_off() {
        let capture = |file: &str, value: &str| {
            let variable = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
            load_str(file, "t.toml", |n| {
                (n == variable).then(|| value.to_owned())
            })
            .unwrap()
            .genai
            .capture_content
        };
        assert!(!capture("", ""));
        assert!(capture("", "true"));
        assert!(capture("", "SPAN_ONLY"));
        assert!(!capture("", "false"));
        assert!(!capture("", "EVENT_ONLY"));
        assert!(capture("[genai]\ncapture_content = true\n", "false"));
    }
}
