//! A span processor with a bounded queue and a drop counter.
//!
//! The SDK's `BatchSpanProcessor` bounds its queue too but keeps its drop
//! count private; this one counts every span that is not delivered (queue
//! full, export failed or timed out) so `sidecar_telemetry_dropped_total`
//! can say so. `on_end` never blocks: it is a `try_send`. One export runs at a
//! time; while a collector hangs, the queue fills and further spans are
//! dropped and counted instead of piling up in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
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
pub struct QueueingSpanProcessor {
    queue: mpsc::Sender<Command>,
    dropped: Arc<AtomicU64>,
}

impl QueueingSpanProcessor {
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

impl SpanProcessor for QueueingSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Command::Span(span)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The SDK calls this synchronously; waiting here could block a runtime
    /// thread, so it only asks for a flush. [`QueueingSpanProcessor::flush`] waits.
    fn force_flush(&self) -> OTelSdkResult {
        let (done, _) = oneshot::channel();
        self.queue
            .try_send(Command::Flush(done))
            .map_err(|_| OTelSdkError::InternalFailure("span queue full or closed".into()))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let (done, _) = oneshot::channel();
        let _ = self.queue.try_send(Command::Shutdown(done));
        Ok(())
    }
}

async fn export_loop<E: SpanExporter>(
    exporter: E,
    mut commands: mpsc::Receiver<Command>,
    timeout: Duration,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(SCHEDULED_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = tick.tick() => {
                export(&exporter, &mut batch, timeout, &dropped).await;
                continue;
            }
        };
        match command {
            Some(Command::Span(span)) => {
                batch.push(span);
                if batch.len() >= MAX_BATCH {
                    export(&exporter, &mut batch, timeout, &dropped).await;
                }
            }
            Some(Command::Flush(done)) => {
                drain(&mut commands, &mut batch);
                export(&exporter, &mut batch, timeout, &dropped).await;
                let _ = done.send(());
            }
            Some(Command::Shutdown(done)) => {
                drain(&mut commands, &mut batch);
                export(&exporter, &mut batch, timeout, &dropped).await;
                let _ = exporter.shutdown_with_timeout(timeout);
                let _ = done.send(());
                return;
            }
            None => {
                export(&exporter, &mut batch, timeout, &dropped).await;
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

async fn export<E: SpanExporter>(
    exporter: &E,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
    dropped: &AtomicU64,
) {
    while !batch.is_empty() {
        let chunk: Vec<SpanData> = batch.drain(..batch.len().min(MAX_BATCH)).collect();
        let count = chunk.len() as u64;
        let failure = match tokio::time::timeout(timeout, exporter.export(chunk)).await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        // Counting first keeps the warning cheap to rate-limit: only the first
        // failure after a success is logged.
        if dropped.fetch_add(count, Ordering::Relaxed) == 0 {
            tracing::warn!(spans = count, error = %failure, "span export failed; dropping spans");
        } else {
            tracing::debug!(spans = count, error = %failure, "span export failed; dropping spans");
        }
    }
}
