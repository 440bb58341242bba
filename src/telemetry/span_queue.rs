//! The bounded queue between finished spans and the exporter, with a drop
//! counter.
//!
//! The SDK's `BatchSpanProcessor` bounds its queue too but keeps its drop
//! count private; this one counts every span that is not delivered (queue
//! full, export failed or timed out) so `sidecar_telemetry_dropped_total`
//! can say so. It is not an SDK `SpanProcessor`: nothing starts SDK spans
//! here (the pipeline builds finished `SpanData` itself), so only `push`,
//! `flush` and `shutdown` exist. `push` never blocks: it is a `try_send`. One
//! export runs at a time; while a collector hangs, the queue fills and
//! further spans are dropped and counted instead of piling up in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::{mpsc, oneshot};

/// Spans per export call.
const MAX_BATCH: usize = 512;
/// How long a partial batch waits before it is exported anyway.
const SCHEDULED_DELAY: Duration = Duration::from_millis(1000);

// Nearly every message is a span, so boxing it would add an allocation per
// span to save queue space only the rare control messages waste.
#[allow(clippy::large_enum_variant)]
enum Command {
    Span(SpanData),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct SpanQueue {
    queue: mpsc::Sender<Command>,
    dropped: Arc<AtomicU64>,
}

impl SpanQueue {
    /// Spawns the export task on the current Tokio runtime.
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        capacity: usize,
        export_timeout: Duration,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        let (queue, commands) = mpsc::channel(capacity.max(1));
        tokio::spawn(export_loop(
            exporter,
            commands,
            export_timeout,
            dropped.clone(),
        ));
        Self { queue, dropped }
    }

    /// Queues a finished span; a full queue drops it and counts it.
    pub fn push(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Command::Span(span)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exports what is queued; resolves when done or after `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }

    /// Exports what is queued and shuts the exporter down, within `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(timeout, self.queue.send(Command::Shutdown(done))).await;
        if matches!(sent, Ok(Ok(()))) {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

async fn export_loop<E: SpanExporter>(
    exporter: E,
    mut commands: mpsc::Receiver<Command>,
    timeout: Duration,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut health = ExportHealth::default();
    let mut tick = tokio::time::interval(SCHEDULED_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = tick.tick() => {
                export(&exporter, &mut batch, timeout, &dropped, &mut health).await;
                continue;
            }
        };
        match command {
            Some(Command::Span(span)) => {
                batch.push(span);
                if batch.len() >= MAX_BATCH {
                    export(&exporter, &mut batch, timeout, &dropped, &mut health).await;
                }
            }
            Some(Command::Flush(done)) => {
                drain(&mut commands, &mut batch);
                export(&exporter, &mut batch, timeout, &dropped, &mut health).await;
                let _ = done.send(());
            }
            Some(Command::Shutdown(done)) => {
                drain(&mut commands, &mut batch);
                export(&exporter, &mut batch, timeout, &dropped, &mut health).await;
                let _ = exporter.shutdown_with_timeout(timeout);
                let _ = done.send(());
                return;
            }
            None => {
                export(&exporter, &mut batch, timeout, &dropped, &mut health).await;
                return;
            }
        }
    }
}

/// Moves every span already queued into the batch.
fn drain(commands: &mut mpsc::Receiver<Command>, batch: &mut Vec<SpanData>) {
    while let Ok(command) = commands.try_recv() {
        match command {
            Command::Span(span) => batch.push(span),
            Command::Flush(done) | Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Whether the last export failed, so a collector that goes down is logged
/// as a warning once, and its recovery once, however many batches fail.
#[derive(Default)]
struct ExportHealth {
    failing: bool,
}

impl ExportHealth {
    fn succeeded(&mut self) {
        if std::mem::take(&mut self.failing) {
            tracing::info!("span export recovered");
        }
    }

    fn failed(&mut self, spans: u64, failure: &str) {
        if std::mem::replace(&mut self.failing, true) {
            tracing::debug!(spans, error = %failure, "span export failed; dropping spans");
        } else {
            tracing::warn!(spans, error = %failure, "span export failed; dropping spans");
        }
    }
}

async fn export<E: SpanExporter>(
    exporter: &E,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
    dropped: &AtomicU64,
    health: &mut ExportHealth,
) {
    while !batch.is_empty() {
        let chunk: Vec<SpanData> = batch.drain(..batch.len().min(MAX_BATCH)).collect();
        let count = chunk.len() as u64;
        let failure = match tokio::time::timeout(timeout, exporter.export(chunk)).await {
            Ok(Ok(())) => {
                health.succeeded();
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        dropped.fetch_add(count, Ordering::Relaxed);
        health.failed(count, &failure);
    }
}
