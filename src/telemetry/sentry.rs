//! The Sentry client: DSN, sampling, environment and release from the
//! configuration, the scrubbing `before_send`, and the counting transport.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use sentry::transports::ReqwestHttpTransportOptions;
use sentry::{ClientOptions, Transport, TransportOptions};

use super::sentry_transport::QueuedTransport;
use crate::config::Config;
use crate::redact::Redactor;

/// How long shutdown waits for queued events.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SentryClient {
    client: Arc<sentry::Client>,
}

impl SentryClient {
    /// `None` when no DSN is configured: then nothing on the request path touches Sentry.
    pub fn start(
        config: &Config,
        redactor: Arc<Redactor>,
        dropped: Arc<AtomicU64>,
    ) -> Option<Self> {
        let dsn = config.sentry.dsn.expose()?.parse().ok()?;
        // reqwest's rustls needs a process-wide provider; ours is ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sentry = &config.sentry;
        let environment = sentry
            .environment
            .clone()
            .unwrap_or_else(|| config.service.environment.clone());
        let release = sentry.release.clone().or_else(|| {
            (!config.service.version.is_empty())
                .then(|| format!("{}@{}", config.service.name, config.service.version))
        });
        let scrubber = redactor.clone();
        let capacity = sentry.max_queue_size;
        // ClientOptions is non-exhaustive: set its public fields one by one.
        let mut options = ClientOptions::default().sample_rate(sentry.sample_rate as f32);
        options.dsn = Some(dsn);
        options.environment = Some(Cow::Owned(environment));
        options.release = release.map(Cow::Owned);
        options.server_name = None;
        options.send_default_pii = false;
        options.default_integrations = false;
        options.max_breadcrumbs = 0;
        options.shutdown_timeout = SHUTDOWN_TIMEOUT;
        options.before_send = Some(Arc::new(move |mut event| {
            scrubber.scrub_event(&mut event);
            Some(event)
        }));
        options.transport = Some(Arc::new(move |options: &ClientOptions| {
            let inner: Arc<dyn Transport> = match TransportOptions::try_from_client_options(options)
            {
                Some(transport) => Arc::new(ReqwestHttpTransportOptions::from(transport).build()),
                None => Arc::new(NoDsn),
            };
            Arc::new(QueuedTransport::new(inner, capacity, dropped.clone())) as Arc<dyn Transport>
        }));
        Some(Self {
            client: Arc::new(sentry::Client::with_options(options)),
        })
    }

    pub fn client(&self) -> &sentry::Client {
        &self.client
    }

    /// Sends what is queued, waiting at most the shutdown timeout.
    pub fn close(&self) {
        self.client.close(Some(SHUTDOWN_TIMEOUT));
    }
}

/// Unreachable in practice (the DSN was checked above); keeps the factory total.
struct NoDsn;

impl Transport for NoDsn {
    fn send_envelope(&self, _envelope: sentry::Envelope) {}
}
