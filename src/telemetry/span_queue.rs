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

use super::export_health::ExportHealth;

/// The queue's settings (`[tracing.otlp]`, `OTEL_BSP_*`).
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub capacity: usize,
    /// Spans per export call.
    pub max_batch: usize,
    /// How long a partial batch waits before it is exported anyway.
    pub schedule_delay: Duration,
    /// Deadline of one export call.
    pub export_timeout: Duration,
}

impl QueueSettings {
    pub fn of(otlp: &crate::config::SignalOtlp, export_timeout: Duration) -> Self {
        Self {
            capacity: otlp.max_queue_size,
            max_batch: otlp.max_export_batch_size,
            schedule_delay: otlp.schedule_delay,
            export_timeout,
        }
    }
}

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
        settings: QueueSettings,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        let (queue, commands) = mpsc::channel(settings.capacity.max(1));
        tokio::spawn(export_loop(exporter, commands, settings, dropped.clone()));
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
    settings: QueueSettings,
    dropped: Arc<AtomicU64>,
) {
    let mut out = Exporting {
        exporter,
        settings,
        dropped,
        health: ExportHealth::new("span", "spans"),
    };
    let mut batch = Vec::with_capacity(settings.max_batch);
    let mut tick = tokio::time::interval(settings.schedule_delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = tick.tick() => {
                out.export(&mut batch).await;
                continue;
            }
        };
        match command {
            Some(Command::Span(span)) => {
                batch.push(span);
                if batch.len() >= settings.max_batch {
                    out.export(&mut batch).await;
                }
            }
            Some(Command::Flush(done)) => {
                drain(&mut commands, &mut batch);
                out.export(&mut batch).await;
                let _ = done.send(());
            }
            Some(Command::Shutdown(done)) => {
                drain(&mut commands, &mut batch);
                out.export(&mut batch).await;
                let _ = out.exporter.shutdown_with_timeout(settings.export_timeout);
                let _ = done.send(());
                return;
            }
            None => {
                out.export(&mut batch).await;
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

/// The exporting side of the queue.
struct Exporting<E> {
    exporter: E,
    settings: QueueSettings,
    dropped: Arc<AtomicU64>,
    health: ExportHealth,
}

impl<E: SpanExporter> Exporting<E> {
    /// Exports the batch in calls of at most `max_batch` spans; what fails
    /// or times out is dropped and counted.
    async fn export(&mut self, batch: &mut Vec<SpanData>) {
        let timeout = self.settings.export_timeout;
        while !batch.is_empty() {
            let size = batch.len().min(self.settings.max_batch);
            let chunk: Vec<SpanData> = batch.drain(..size).collect();
            let count = chunk.len() as u64;
            let failure = match tokio::time::timeout(timeout, self.exporter.export(chunk)).await {
                Ok(Ok(())) => {
                    self.health.succeeded();
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {timeout:?}"),
            };
            self.dropped.fetch_add(count, Ordering::Relaxed);
            self.health.failed(count, &failure);
        }
    }
}
