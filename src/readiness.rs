//! `/readyz`'s latch: the upstream answered a TCP connect within the last
//! probe interval, and the proxy is not draining.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Readiness {
    draining: AtomicBool,
    /// `None` when the last probe succeeded, else why it failed.
    problem: RwLock<Option<String>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            draining: AtomicBool::new(false),
            problem: RwLock::new(Some("upstream not probed yet".to_owned())),
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
        self.draining.store(true, Ordering::Relaxed);
    }

    fn set(&self, problem: Option<String>) {
        *self.problem.write().unwrap_or_else(|e| e.into_inner()) = problem;
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

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}
