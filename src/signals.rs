//! The process signals the sidecar acts on, kept registered from start to
//! exit so none is missed between two waits: SIGTERM and SIGINT stop it (a
//! second one at once), SIGHUP reloads the configuration.

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: its name and number.
    Stop(&'static str, u8),
    /// SIGHUP.
    Reload,
}

pub struct Signals {
    term: Stream,
    int: Stream,
    hup: Stream,
}

impl Signals {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop("SIGTERM", 15),
            _ = self.int.recv() => Signal::Stop("SIGINT", 2),
            _ = self.hup.recv() => Signal::Reload,
        }
    }

    /// The next SIGTERM or SIGINT; SIGHUPs meanwhile reload through `reload`.
    pub async fn next_stop<F, Fut>(&mut self, mut reload: F) -> (&'static str, u8)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            match self.next().await {
                Signal::Stop(name, number) => return (name, number),
                Signal::Reload => reload().await,
            }
        }
    }
}
