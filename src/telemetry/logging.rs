//! Process-wide logging: JSON lines (or pretty text) on stdout (the
//! `console` exporter) and optionally a file, written by background threads
//! so a slow terminal or disk never blocks the request path; and with the
//! `otlp` exporter, OpenTelemetry log records ([`otlp_logs`](super::otlp_logs)).
//! Lines dropped because a queue is full, lost because a write failed (a
//! full or unwritable disk), and records not delivered are counted.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use super::access_target::ACCESS_TARGET;
use super::otlp_logs::{self, LogRecords, OtlpLayer, PendingLogExport};
use crate::config::{LogFormat, LoggingConfig, LogsExporter};

/// Lines buffered per writer before new ones are dropped (and counted).
const LOG_QUEUE_LINES: usize = 16 * 1024;
/// The writer threads write whatever is queued, then flush: a buffer turns a
/// burst of lines into a few large writes instead of one syscall per line.
const WRITE_BUFFER: usize = 64 * 1024;

/// Keeps the writer threads alive; dropping it flushes what is queued.
pub struct LogGuards {
    _guards: Vec<WorkerGuard>,
    drops: LogDrops,
    access: AccessOutputs,
    otlp: Option<PendingLogExport>,
    control: LogControl,
}

/// Where the access line goes, decided once by [`init_logging`].
#[derive(Clone, Debug)]
pub struct AccessOutputs {
    /// The writers that take JSON lines (stdout in JSON format, the file):
    /// the access log serializes its line once and hands it to each.
    pub json_writers: Vec<NonBlocking>,
    /// Whether the line is also a `tracing` event, for the pretty stdout
    /// (the JSON layers leave the event out: they got the line already).
    pub event: bool,
    /// OTLP log records, with the `otlp` exporter.
    pub otlp: Option<LogRecords>,
}

impl Default for AccessOutputs {
    /// The library used on its own: the line is a `tracing` event for
    /// whatever subscriber the embedding program installed.
    fn default() -> Self {
        Self {
            json_writers: Vec::new(),
            event: true,
            otlp: None,
        }
    }
}

impl AccessOutputs {
    /// Nothing takes the line: no access log is worth recording.
    pub fn is_empty(&self) -> bool {
        self.json_writers.is_empty() && !self.event && self.otlp.is_none()
    }
}

/// Changes the running filter: `logging.level` and `logging.access_log`
/// take effect on a configuration reload (`RUST_LOG` still wins).
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    pub fn apply(&self, config: &LoggingConfig) -> Result<(), String> {
        self.handle
            .reload(filter(config))
            .map_err(|e| format!("cannot change the log filter: {e}"))
    }
}

impl LogGuards {
    /// The handle a configuration reload changes the filter through.
    pub fn control(&self) -> LogControl {
        self.control.clone()
    }

    /// Where the access line goes.
    pub fn access_outputs(&self) -> AccessOutputs {
        self.access.clone()
    }

    /// The OTLP record export, to be started once the runtime runs; `None`
    /// without the `otlp` exporter (or once taken).
    pub fn take_otlp_export(&mut self) -> Option<PendingLogExport> {
        self.otlp.take()
    }

    /// The counters behind `sidecar_telemetry_dropped_total{signal="logs"}`.
    pub fn drops(&self) -> LogDrops {
        self.drops.clone()
    }
}

/// Log lines and records lost so far: lines dropped from a full queue or
/// failed to write, OTLP records dropped from a full queue or whose export
/// failed. Each output counts its own: a line written to stdout but dropped
/// from the OTLP queue counts once.
#[derive(Clone, Default, Debug)]
pub struct LogDrops {
    queues: Vec<ErrorCounter>,
    failed_writes: Arc<AtomicU64>,
    otlp_records: Arc<AtomicU64>,
}

impl LogDrops {
    pub fn lost(&self) -> u64 {
        let dropped: usize = self.queues.iter().map(ErrorCounter::dropped_lines).sum();
        dropped as u64
            + self.failed_writes.load(Ordering::Relaxed)
            + self.otlp_records.load(Ordering::Relaxed)
    }
}

/// Buffers lines and writes them in large chunks. A chunk that fails to write
/// (a full or unwritable disk) is discarded and every line in it counted as
/// lost, so the writer thread neither stalls nor retries stale lines forever.
/// The non-blocking worker hands over one whole line per `write` call.
struct CountingWriter {
    inner: Box<dyn io::Write + Send>,
    buffer: Vec<u8>,
    buffered_lines: u64,
    failed: Arc<AtomicU64>,
}

impl CountingWriter {
    fn new(inner: Box<dyn io::Write + Send>, failed: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            buffered_lines: 0,
            failed,
        }
    }

    fn write_buffer(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        if self.inner.write_all(&self.buffer).is_err() {
            self.failed
                .fetch_add(self.buffered_lines, Ordering::Relaxed);
        }
        self.buffer.clear();
        self.buffered_lines = 0;
    }
}

impl io::Write for CountingWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + line.len() > WRITE_BUFFER {
            self.write_buffer();
        }
        self.buffer.extend_from_slice(line);
        self.buffered_lines += 1;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer();
        let _ = self.inner.flush();
        Ok(())
    }
}

/// `RUST_LOG` when set and valid, else `logging.level`; the access log is
/// switched by `logging.access_log` alone, so a quieter level (`warn`) keeps
/// one line per exchange.
fn filter(config: &LoggingConfig) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.level.as_str()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let access = if config.access_log { "info" } else { "off" };
    match format!("{ACCESS_TARGET}={access}").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// A boxed layer of the subscriber.
type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: stdout with the `console` exporter, the
/// file when set, OTLP records with the `otlp` exporter, all under one
/// level filter. `RUST_LOG`, when set, replaces `logging.level`.
pub fn init_logging(config: &LoggingConfig) -> io::Result<LogGuards> {
    let mut guards = Vec::new();
    let mut drops = LogDrops::default();
    let failed = drops.failed_writes.clone();
    let mut writer = |w: Box<dyn io::Write + Send>| {
        let counting = CountingWriter::new(w, failed.clone());
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .finish(counting);
        drops.queues.push(writer.error_counter());
        guards.push(guard);
        writer
    };

    let mut layers: Vec<BoxedLayer> = Vec::new();
    let mut access = AccessOutputs {
        json_writers: Vec::new(),
        event: false,
        otlp: None,
    };
    // The JSON writers get the access line from the access log itself.
    let not_access = || filter_fn(|metadata| metadata.target() != ACCESS_TARGET);
    if config.exporters.contains(&LogsExporter::Console) {
        let stdout = writer(Box::new(io::stdout()));
        match config.format {
            LogFormat::Json => {
                access.json_writers.push(stdout.clone());
                layers.push(json_layer(stdout).with_filter(not_access()).boxed());
            }
            LogFormat::Pretty => {
                access.event = true;
                let pretty = fmt::layer()
                    .with_ansi(io::IsTerminal::is_terminal(&io::stdout()))
                    .with_writer(stdout)
                    .with_span_events(FmtSpan::NONE);
                layers.push(pretty.boxed());
            }
        }
    }
    if let Some(path) = &config.file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let file = writer(Box::new(file));
        access.json_writers.push(file.clone());
        layers.push(json_layer(file).with_filter(not_access()).boxed());
    }
    let mut otlp = None;
    if config.exporters.contains(&LogsExporter::Otlp) {
        let (records, pending) =
            LogRecords::new(config.otlp.max_queue_size, drops.otlp_records.clone());
        let layer = OtlpLayer::new(records.clone()).with_filter(filter_fn(otlp_logs::exported));
        layers.push(layer.boxed());
        access.otlp = Some(records);
        otlp = Some(pending);
    }
    let (filter, handle) = reload::Layer::new(filter(config));
    Registry::default()
        .with(layers.with_filter(filter))
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuards {
        _guards: guards,
        drops,
        access,
        otlp,
        control: LogControl { handle },
    })
}

/// The JSON lines format: one object per event, fields at the top level.
pub fn json_layer<W>(writer: W) -> impl Layer<Registry>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
}

/// The JSON lines that `f` logs, as the JSON writers would get them.
#[cfg(test)]
pub(crate) fn capture_json_lines(f: impl FnOnce()) -> Vec<u8> {
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = Registry::default().with(json_layer(move || writer.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let lines = captured.0.lock().unwrap().clone();
    lines
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    struct FullDisk;

    impl io::Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Disk(Arc<Mutex<Vec<Vec<u8>>>>);

    impl io::Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_a_failed_chunk_is_counted() {
        let failed = Arc::new(AtomicU64::new(0));
        let mut writer = CountingWriter::new(Box::new(FullDisk), failed.clone());
        for _ in 0..3 {
            writer.write_all(b"{\"msg\":\"line\"}\n").unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(failed.load(Ordering::Relaxed), 3);
        writer.write_all(b"{}\n").unwrap();
        writer.flush().unwrap();
        assert_eq!(
            failed.load(Ordering::Relaxed),
            4,
            "a lost chunk is not retried"
        );
    }

    #[test]
    fn lines_reach_the_disk_in_order_and_in_few_writes() {
        let disk = Disk::default();
        let failed = Arc::new(AtomicU64::new(0));
        let mut writer = CountingWriter::new(Box::new(disk.clone()), failed.clone());
        let line = vec![b'x'; 1000];
        for _ in 0..100 {
            writer.write_all(&line).unwrap();
        }
        writer.flush().unwrap();
        let writes = disk.0.lock().unwrap();
        assert_eq!(writes.concat(), line.repeat(100));
        assert_eq!(writes.len(), 2, "64 lines fit a chunk, then 36");
        assert_eq!(failed.load(Ordering::Relaxed), 0);
    }
}
