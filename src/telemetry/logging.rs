//! Process-wide logging: JSON lines (or pretty text) on stdout and optionally
//! a file, written by background threads so a slow terminal or disk never
//! blocks the request path; lines dropped when their queue is full are counted.

use std::io;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LoggingConfig};

/// Lines buffered per writer before new ones are dropped (and counted).
const LOG_QUEUE_LINES: usize = 16 * 1024;

/// Keeps the writer threads alive; dropping it flushes what is queued.
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
    counters: Vec<ErrorCounter>,
}

impl LogGuards {
    /// Lines dropped so far because a writer could not keep up.
    pub fn dropped_lines(&self) -> usize {
        self.counters.iter().map(ErrorCounter::dropped_lines).sum()
    }

    /// The writers' drop counters, for `sidecar_telemetry_dropped_total{signal="logs"}`.
    pub fn counters(&self) -> Vec<ErrorCounter> {
        self.counters.clone()
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, replaces `logging.level`.
pub fn init_logging(config: &LoggingConfig) -> io::Result<LogGuards> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let mut guards = Vec::new();
    let mut counters = Vec::new();
    let mut writer = |w: Box<dyn io::Write + Send>| {
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .finish(w);
        counters.push(writer.error_counter());
        guards.push(guard);
        writer
    };

    let stdout = writer(Box::new(io::stdout()));
    let stdout_layer = match config.format {
        LogFormat::Json => json_layer(stdout).boxed(),
        LogFormat::Pretty => fmt::layer()
            .with_ansi(io::IsTerminal::is_terminal(&io::stdout()))
            .with_writer(stdout)
            .with_span_events(FmtSpan::NONE)
            .boxed(),
    };
    let file_layer = match &config.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            Some(json_layer(writer(Box::new(file))))
        }
        None => None,
    };
    Registry::default()
        .with(stdout_layer.and_then(file_layer).with_filter(filter()))
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuards {
        _guards: guards,
        counters,
    })
}

fn json_layer(writer: NonBlocking) -> impl Layer<Registry> {
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
}
