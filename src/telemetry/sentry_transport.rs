//! Sentry's own rustls transport behind a bounded queue that counts what it
//! cannot take.
//!
//! The `sentry` crate's transport drops envelopes silently when its channel
//! is full. Here one worker thread hands envelopes to it one at a time and
//! waits for each to be sent (or to time out) before taking the next, so the
//! inner queue never overflows and every envelope that does not fit is
//! dropped here, where it is counted. A down, slow or rate-limiting Sentry
//! fills this queue; it never slows a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use sentry::{Envelope, Transport};

/// Longest wait for one envelope to be sent before the next is taken.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

enum Task {
    Send(Box<Envelope>),
    Flush(SyncSender<()>),
}

pub struct QueuedTransport {
    queue: SyncSender<Task>,
    dropped: Arc<AtomicU64>,
}

impl QueuedTransport {
    pub fn new(inner: Arc<dyn Transport>, capacity: usize, dropped: Arc<AtomicU64>) -> Self {
        let (queue, tasks) = sync_channel(capacity.max(1));
        let spawned = std::thread::Builder::new()
            .name("sentry-queue".into())
            .spawn(move || work(inner, tasks));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the Sentry sender thread; events will be dropped");
        }
        Self { queue, dropped }
    }

    /// Waits until everything queued before now was handed over and sent.
    fn wait_drained(&self, timeout: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        let deadline = std::time::Instant::now() + timeout;
        let mut task = Task::Flush(done);
        // The queue may be full of envelopes to a slow Sentry: retry until the deadline.
        loop {
            match self.queue.try_send(task) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    task = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
    }
}

impl Transport for QueuedTransport {
    fn send_envelope(&self, envelope: Envelope) {
        if self.queue.try_send(Task::Send(Box::new(envelope))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.wait_drained(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.wait_drained(timeout)
    }
}

fn work(inner: Arc<dyn Transport>, tasks: Receiver<Task>) {
    for task in tasks {
        match task {
            Task::Send(envelope) => {
                inner.send_envelope(*envelope);
                inner.flush(SEND_TIMEOUT);
            }
            Task::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
    let _ = inner.shutdown(SEND_TIMEOUT);
}
