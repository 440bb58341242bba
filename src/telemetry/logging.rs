//! Process-wide logging: JSON lines (or pretty text) on stdout and optionally
//! a file, written by background threads so a slow terminal or disk never
//! blocks the request path. Lines dropped because a queue is full, or lost
//! because a write failed (a full or unwritable disk), are counted.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LoggingConfig};

/// Lines buffered per writer before new ones are dropped (and counted).
const LOG_QUEUE_LINES: usize = 16 * 1024;
/// The writer threads write whatever is queued, then flush: a buffer turns a
/// burst of lines into a few large writes instead of one syscall per line.
const WRITE_BUFFER: usize = 64 * 1024;

/// Keeps the writer threads alive; dropping it flushes what is queued.
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
    drops: LogDrops,
    json_writers: Vec<NonBlocking>,
}

impl LogGuards {
    /// The writers that take JSON lines (stdout in JSON format, and the file):
    /// the access log formats its line once and hands it to each.
    pub fn json_writers(&self) -> Vec<NonBlocking> {
        self.json_writers.clone()
    }

    /// The counters behind `sidecar_telemetry_dropped_total{signal="logs"}`.
    pub fn drops(&self) -> LogDrops {
        self.drops.clone()
    }
}

/// Log lines lost so far: dropped from a full queue or failed to write.
#[derive(Clone, Default, Debug)]
pub struct LogDrops {
    queues: Vec<ErrorCounter>,
    failed_writes: Arc<AtomicU64>,
}

impl LogDrops {
    pub fn lines(&self) -> u64 {
        let dropped: usize = self.queues.iter().map(ErrorCounter::dropped_lines).sum();
        dropped as u64 + self.failed_writes.load(Ordering::Relaxed)
    }
}

/// Counts writes that fail and reports them as done, so a full disk loses
/// lines (counted) instead of stalling or killing the writer thread.
struct CountingWriter {
    inner: io::BufWriter<Box<dyn io::Write + Send>>,
    failed: Arc<AtomicU64>,
}

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.inner.write_all(buf).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.inner.flush().is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
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
    let mut drops = LogDrops::default();
    let failed = drops.failed_writes.clone();
    let mut writer = |w: Box<dyn io::Write + Send>| {
        let counting = CountingWriter {
            inner: io::BufWriter::with_capacity(WRITE_BUFFER, w),
            failed: failed.clone(),
        };
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .finish(counting);
        drops.queues.push(writer.error_counter());
        guards.push(guard);
        writer
    };

    let mut json_writers = Vec::new();
    let stdout = writer(Box::new(io::stdout()));
    let stdout_layer = match config.format {
        LogFormat::Json => {
            json_writers.push(stdout.clone());
            json_layer(stdout).boxed()
        }
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
            let file = writer(Box::new(file));
            json_writers.push(file.clone());
            Some(json_layer(file))
        }
        None => None,
    };
    Registry::default()
        .with(stdout_layer.and_then(file_layer).with_filter(filter()))
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuards {
        _guards: guards,
        drops,
        json_writers,
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
