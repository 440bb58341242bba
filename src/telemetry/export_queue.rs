//! The bounded queue between finished telemetry items (spans, log records)
//! and their exporter, with a drop counter.
//!
//! The SDK's `BatchSpanProcessor` and `BatchLogProcessor` bound their queues
//! too but keep their drop counts private; this one counts every item that
//! is not delivered (queue full, export failed or timed out) so
//! `sidecar_telemetry_dropped_total` can say so. It is not an SDK processor:
//! nothing emits through the SDK's tracer or logger here (spans and records
//! are built whole by their pipelines), so only `push`, `flush` and
//! `shutdown` exist. `push` never blocks: it is a `try_send`. One export runs
//! at a time; while a collector hangs, the queue fills and further items are
//! dropped and counted instead of piling up in memory.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use tokio::sync::{mpsc, oneshot};

pub use super::export_health::LOG_EXPORT_TARGET;
use super::export_health::{ExportHealth, Exported};

/// What a queue carries, for its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Spans,
    LogRecords,
}

impl From<Queued> for Exported {
    fn from(queued: Queued) -> Self {
        match queued {
            Queued::Spans => Self::Spans,
            Queued::LogRecords => Self::LogRecords,
        }
    }
}

/// An exporter of one signal, taking its items in owned batches.
pub trait BatchExport: Send + 'static {
    type Item: Send + 'static;
    const QUEUED: Queued;
    fn export(&self, batch: Vec<Self::Item>) -> impl Future<Output = OTelSdkResult> + Send;
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult;
}

/// The queue's settings (`[tracing.otlp]` and `OTEL_BSP_*`, `[logging.otlp]`
/// and `OTEL_BLRP_*`).
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub capacity: usize,
    /// Items per export call.
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
            max_batch: otlp.max_export_batch_size.max(1),
            schedule_delay: otlp.schedule_delay,
            export_timeout,
        }
    }
}

// Nearly every message is an item, so boxing it would add an allocation per
// item to save queue space only the rare control messages waste.
#[allow(clippy::large_enum_variant)]
enum Command<T> {
    Item(T),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug)]
pub struct ExportQueue<T> {
    queue: mpsc::Sender<Command<T>>,
    dropped: Arc<AtomicU64>,
}

impl<T> Clone for ExportQueue<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

/// The receiving end of a queue whose export task has not started yet.
pub struct Waiting<T> {
    commands: mpsc::Receiver<Command<T>>,
    dropped: Arc<AtomicU64>,
}

impl<T: Send + 'static> ExportQueue<T> {
    /// Spawns the export task on the current Tokio runtime.
    pub fn start<E: BatchExport<Item = T>>(
        exporter: E,
        settings: QueueSettings,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        let (queue, waiting) = Self::waiting(settings.capacity, dropped);
        waiting.start(exporter, settings);
        queue
    }

    /// A queue that takes items now and exports them once
    /// [`Waiting::start`] runs: log lines are queued from the first one,
    /// before the runtime the exporter needs exists.
    pub fn waiting(capacity: usize, dropped: Arc<AtomicU64>) -> (Self, Waiting<T>) {
        let (queue, commands) = mpsc::channel(capacity.max(1));
        let waiting = Waiting {
            commands,
            dropped: dropped.clone(),
        };
        (Self { queue, dropped }, waiting)
    }

    /// Queues an item; a full queue (or one whose export has stopped) drops
    /// it and counts it.
    pub fn push(&self, item: T) {
        if self.queue.try_send(Command::Item(item)).is_err() {
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

impl<T: Send + 'static> Waiting<T> {
    /// Spawns the export task on the current Tokio runtime.
    pub fn start<E: BatchExport<Item = T>>(self, exporter: E, settings: QueueSettings) {
        tokio::spawn(export_loop(exporter, self.commands, settings, self.dropped));
    }
}

async fn export_loop<E: BatchExport>(
    exporter: E,
    mut commands: mpsc::Receiver<Command<E::Item>>,
    settings: QueueSettings,
    dropped: Arc<AtomicU64>,
) {
    let mut out = Exporting {
        exporter,
        settings,
        dropped,
        health: ExportHealth::new(E::QUEUED.into()),
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
            Some(Command::Item(item)) => {
                batch.push(item);
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
                let _ = out.exporter.shutdown(settings.export_timeout);
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

/// Moves every item already queued into the batch.
fn drain<T>(commands: &mut mpsc::Receiver<Command<T>>, batch: &mut Vec<T>) {
    while let Ok(command) = commands.try_recv() {
        match command {
            Command::Item(item) => batch.push(item),
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

impl<E: BatchExport> Exporting<E> {
    /// Exports the batch in calls of at most `max_batch` items; what fails
    /// or times out is dropped and counted.
    async fn export(&mut self, batch: &mut Vec<E::Item>) {
        let timeout = self.settings.export_timeout;
        while !batch.is_empty() {
            let size = batch.len().min(self.settings.max_batch);
            let chunk: Vec<E::Item> = batch.drain(..size).collect();
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
