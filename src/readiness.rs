//! `/readyz`'s latch: the upstream answered a TCP connect within the last
//! probe interval, and the proxy is not draining. `sidecar_ready` follows it,
//! so an alert sees what the kubelet sees.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Readiness {
    draining: AtomicBool,
    /// `None` when the last probe succeeded, else why it failed.
    problem: RwLock<Option<String>>,
    gauge: Gauge,
}

impl Readiness {
    /// Not ready until the first probe; `gauge` mirrors every change.
    pub fn new(gauge: Gauge) -> Self {
        gauge.set(0);
        Self {
            draining: AtomicBool::new(false),
            problem: RwLock::new(Some("upstream not probed yet".to_owned())),
            gauge,
        }
    }

    /// `Ok` when ready, else the reason.
    pub fn check(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("draining: shutting down".to_owned());
        }
        match &*self.problem.read().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    pub fn set_draining(&self) {
        // Under the probe's lock, so a probe finishing now cannot set 1 after this 0.
        let _probe = self.problem.write().unwrap_or_else(|e| e.into_inner());
        self.draining.store(true, Ordering::Relaxed);
        self.gauge.set(0);
    }

    fn set(&self, problem: Option<String>) {
        let mut current = self.problem.write().unwrap_or_else(|e| e.into_inner());
        *current = problem;
        // Under the lock, so the gauge cannot end up behind the latch.
        let ready = current.is_none() && !self.draining.load(Ordering::Relaxed);
        self.gauge.set(i64::from(ready));
    }

    /// Probes `host:port` every `interval` until `shutdown` flips.
    pub async fn probe_loop(
        &self,
        host: String,
        port: u16,
        interval: Duration,
        connect_timeout: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let result =
                tokio::time::timeout(connect_timeout, TcpStream::connect((host.as_str(), port)))
                    .await;
            self.set(match result {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("upstream {host}:{port} unreachable: {e}")),
                Err(_) => Some(format!(
                    "upstream {host}:{port} did not accept within {connect_timeout:?}"
                )),
            });
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = crate::server::stopped(&mut shutdown) => return,
            }
        }
    }
}
