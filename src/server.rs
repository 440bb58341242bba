//! The client-facing listener: accept, optional TLS, HTTP/1.1 or HTTP/2 per
//! connection, and a graceful drain on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;
use crate::proxy::{ClientSide, Proxy, ProxyService};

/// hyper's own parse limits sit above the configured ones, so an oversized
/// head normally reaches the proxy and gets its JSON 431; past these hard
/// limits hyper answers a bare 431 without buffering more.
const HARD_LIMIT_FACTOR: usize = 2;

/// Connection settings shared by every accepted connection.
pub struct ConnectionSettings {
    builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
}

impl ConnectionSettings {
    pub fn new(config: &ListenerConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let max_head = (config.max_header_bytes.0 as usize).saturating_mul(HARD_LIMIT_FACTOR);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(max_head.max(8192))
            .max_headers(config.max_headers.saturating_mul(HARD_LIMIT_FACTOR));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
        Self {
            builder,
            tls: tls.map(TlsAcceptor::from),
            handshake_timeout: config.header_read_timeout,
        }
    }
}

/// Accepts until `shutdown` flips, then lets open connections finish their
/// in-flight exchanges for up to `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<ConnectionSettings>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff.reset(); pair }
                Err(e) => { backoff.wait(&e).await; continue; }
            },
            _ = crate::server::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let client = ClientSide::new(addr, settings.tls.is_some());
        let service = ProxyService::new(proxy.clone(), client);
        // Separate tasks for plain and TLS connections keep each task's
        // future (its memory while a connection idles) as small as it can be.
        if settings.tls.is_some() {
            tokio::spawn(serve_tls(stream, settings.clone(), service, watcher));
        } else {
            tokio::spawn(serve_plain(stream, settings.clone(), service, watcher));
        }
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "draining");
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            "drain timeout reached; closing remaining connections"
        );
    }
}

async fn serve_plain(
    stream: TcpStream,
    settings: Arc<ConnectionSettings>,
    service: ProxyService,
    watcher: Watcher,
) {
    serve_stream(stream, &settings, service, watcher).await;
}

async fn serve_tls(
    stream: TcpStream,
    settings: Arc<ConnectionSettings>,
    service: ProxyService,
    watcher: Watcher,
) {
    let Some(acceptor) = &settings.tls else {
        return;
    };
    let tls_stream = match tls_handshake(acceptor, stream, settings.handshake_timeout).await {
        Ok(tls_stream) => tls_stream,
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
    };
    serve_stream(tls_stream, &settings, service, watcher).await;
}

/// HTTP/1 or HTTP/2 on an accepted (and, for TLS, handshaken) stream until
/// it closes or the drain ends it.
async fn serve_stream<S>(
    stream: S,
    settings: &ConnectionSettings,
    service: ProxyService,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = settings
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn tls_handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// Backs off on accept errors (e.g. out of file descriptors) instead of spinning.
#[derive(Default)]
struct AcceptBackoff {
    delay: Duration,
}

impl AcceptBackoff {
    const MIN: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    async fn wait(&mut self, error: &io::Error) {
        self.delay = (self.delay * 2).clamp(Self::MIN, Self::MAX);
        tracing::warn!(%error, delay = ?self.delay, "accept failed; backing off");
        tokio::time::sleep(self.delay).await;
    }
}

/// Resolves once `shutdown` says stop (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr, what: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}")))
}
