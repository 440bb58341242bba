//! Command line (clap): `run` (the default), `check`, `demo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A reverse-proxy sidecar that gives any HTTP backend correlation IDs, W3C
/// trace context, RED metrics, OTLP spans, JSON logs, Sentry reports and GenAI
/// token telemetry, without touching the backend.
#[derive(Debug, Parser)]
#[command(name = "otel-sidecar", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no command is given).
    Run(ConfigArg),
    /// Validate the configuration and print the effective settings, secrets masked.
    Check(ConfigArg),
    /// Exit 0 if the admin listener's /healthz answers 200 (for container HEALTHCHECKs).
    Healthcheck(ConfigArg),
    /// A self-contained tour: a built-in mock Ollama, the proxy in front of it, a few requests.
    Demo,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file [default: $SIDECAR_CONFIG, else ./sidecar.toml]
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
}

pub const DEFAULT_CONFIG_PATH: &str = "sidecar.toml";
pub const CONFIG_ENV: &str = "SIDECAR_CONFIG";

impl ConfigArg {
    /// `--config`, else `$SIDECAR_CONFIG`, else `./sidecar.toml`.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> PathBuf {
        self.config
            .clone()
            .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_precedence() {
        let flag = ConfigArg {
            config: Some("a.toml".into()),
        };
        let none = ConfigArg { config: None };
        let env = |v: &str| (v == CONFIG_ENV).then(|| "b.toml".to_owned());
        assert_eq!(flag.resolve(env), PathBuf::from("a.toml"));
        assert_eq!(none.resolve(env), PathBuf::from("b.toml"));
        assert_eq!(none.resolve(|_| None), PathBuf::from("sidecar.toml"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
