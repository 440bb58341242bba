//! The client-facing listener: accept, optional TLS, HTTP/1.1 or HTTP/2 per
//! connection, and a graceful drain on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use tower::Layer;

use crate::config::ListenerConfig;
use crate::exchange::ClientSide;
use crate::limit::{Limit, Permit};
use crate::proxy::admission::{Admission, AdmissionLayer};
use crate::proxy::{Proxy, ProxyService};

/// hyper's own parse limits sit above the configured ones, so an oversized
/// head normally reaches the proxy and gets its JSON 431; past these hard
/// limits hyper answers a bare 431 without buffering more.
const HARD_LIMIT_FACTOR: usize = 2;

/// The listener's two limits (`listener.max_connections`,
/// `listener.max_concurrent_requests`), changed in place by a reload.
#[derive(Clone)]
pub struct Limits {
    pub connections: Arc<Limit>,
    pub requests: Arc<Limit>,
}

impl Limits {
    pub fn new(config: &ListenerConfig) -> Self {
        Self {
            connections: Limit::new(config.max_connections),
            requests: Limit::new(config.max_concurrent_requests),
        }
    }

    pub fn set(&self, config: &ListenerConfig) {
        self.connections.set(config.max_connections);
        self.requests.set(config.max_concurrent_requests);
    }
}

/// The service stack of one connection, outermost first: admission (the
/// concurrent-request limit), then the proxy.
type ConnectionService = AlwaysReady<Admission<ProxyService>>;

/// hyper's `Service` for a tower stack whose services are always ready, as
/// this one's are (admission only decides, the proxy never waits to take a
/// request): each call clones the stack and calls it, without the
/// `Oneshot` state machine of hyper-util's `TowerToHyperService`, which cost
/// 1,600 instructions per request (bench/callgrind) to learn nothing.
#[derive(Clone)]
pub struct AlwaysReady<S>(S);

impl<S, R> hyper::service::Service<R> for AlwaysReady<S>
where
    S: tower::Service<R> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> S::Future {
        self.0.clone().call(req)
    }
}

/// Connection settings shared by every accepted connection.
pub struct ConnectionSettings {
    builder: auto::Builder<TokioExecutor>,
    /// The same without HTTP/1 keep-alive, for connections accepted during
    /// the shutdown delay: one exchange, answered with `Connection: close`.
    closing_builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    limits: Limits,
}

impl ConnectionSettings {
    pub fn new(
        config: &ListenerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> Self {
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
        let mut closing_builder = builder.clone();
        closing_builder.http1().keep_alive(false);
        Self {
            builder,
            closing_builder,
            tls: tls.map(TlsAcceptor::from),
            handshake_timeout: config.header_read_timeout,
            limits,
        }
    }
}

/// When the listener stops accepting and how long exchanges may then run.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// Accepting goes on this long after `shutdown` flips, while endpoints
    /// and load balancers stop routing here.
    pub delay: Duration,
    /// In-flight exchanges may run this long after the listener closes.
    pub timeout: Duration,
}

impl Drain {
    pub fn new(config: &ListenerConfig) -> Self {
        Self {
            delay: config.shutdown_delay,
            timeout: config.drain_timeout,
        }
    }
}

/// How long connections cut at the drain timeout get to unwind (their
/// exchanges are recorded as they drop) before the listener gives up on them.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Serves until `shutdown` flips, then drains in three phases:
///
/// 1. the shutdown delay: the listener still accepts while endpoints stop
///    routing here; connections opened before the signal finish their
///    exchange in flight and close (HTTP/1 `Connection: close`, HTTP/2
///    GOAWAY), and new ones serve one HTTP/1 exchange each, so clients move
///    to other endpoints as soon as they are told;
/// 2. the listener closes and exchanges in flight run for `drain.timeout`;
/// 3. what is left is cut, and recorded as it drops.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<ConnectionSettings>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
    drain: Drain,
) {
    // Connection tasks are kept in a set so the cut can abort them: a cut
    // signal each connection polled would cost every request a poll.
    let mut connections = JoinSet::new();
    let accept = Accept {
        listener: &listener,
        settings: &settings,
        proxy: &proxy,
    };
    let serving = GracefulShutdown::new();
    accept
        .until(&mut connections, &serving, false, stopped(&mut shutdown))
        .await;

    let during_delay = GracefulShutdown::new();
    let opened_before = tokio::spawn(serving.shutdown());
    if !drain.delay.is_zero() {
        tracing::info!(delay = ?drain.delay, "still accepting during the shutdown delay");
        let delay = tokio::time::sleep(drain.delay);
        accept
            .until(&mut connections, &during_delay, true, delay)
            .await;
    }
    drop(listener);

    tracing::info!(
        connections = connections.len(),
        timeout = ?drain.timeout,
        "listener closed; draining"
    );
    let drained = async {
        let _ = tokio::join!(opened_before, during_delay.shutdown());
    };
    if tokio::time::timeout(drain.timeout, drained).await.is_ok() {
        return;
    }
    tracing::warn!(
        drain_timeout = ?drain.timeout,
        "drain timeout reached; cutting the remaining connections"
    );
    proxy.start_cutting();
    connections.abort_all();
    // Aborted tasks drop their connections, whose response bodies record
    // their exchanges as they drop.
    let unwound = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(CUT_GRACE, unwound).await;
}

/// The accept loop's parts.
struct Accept<'a> {
    listener: &'a TcpListener,
    settings: &'a Arc<ConnectionSettings>,
    proxy: &'a Arc<Proxy>,
}

impl Accept<'_> {
    /// Accepts connections, watched by `graceful`, until `end` completes;
    /// `closing` marks connections accepted during the shutdown delay.
    async fn until(
        &self,
        connections: &mut JoinSet<()>,
        graceful: &GracefulShutdown,
        closing: bool,
        end: impl Future,
    ) {
        let mut backoff = AcceptBackoff::default();
        tokio::pin!(end);
        loop {
            // Beyond `max_connections`, new connections wait in the kernel's
            // backlog until a connection ends (and are refused once it is full).
            let place = tokio::select! {
                place = self.settings.limits.connections.acquire() => place,
                // Reaps finished connections as they end, so the set holds
                // only live ones.
                Some(_) = connections.join_next() => continue,
                _ = &mut end => return,
            };
            let (stream, addr) = loop {
                tokio::select! {
                    accepted = self.listener.accept() => match accepted {
                        Ok(pair) => { backoff.reset(); break pair; }
                        Err(e) => backoff.wait(&e).await,
                    },
                    Some(_) = connections.join_next() => {}
                    _ = &mut end => return,
                }
            };
            let _ = stream.set_nodelay(true);
            let guard = ConnectionGuard {
                watcher: graceful.watcher(),
                closing,
                _place: place,
            };
            let tls = self.settings.tls.is_some();
            let proxy = ProxyService::new(self.proxy.clone(), ClientSide::new(addr, tls));
            let admission = AdmissionLayer::new(self.settings.limits.requests.clone());
            let service = AlwaysReady(admission.layer(proxy));
            let settings = self.settings.clone();
            // Separate tasks for plain and TLS connections keep each task's
            // future (its memory while a connection idles) as small as it can be.
            if tls {
                connections.spawn(serve_tls(stream, settings, service, guard));
            } else {
                connections.spawn(serve_plain(stream, settings, service, guard));
            }
        }
    }
}

/// What each connection task holds of the listener: the graceful watcher
/// (stop taking requests), whether it was accepted during the shutdown
/// delay, and its place under `max_connections`.
struct ConnectionGuard {
    watcher: Watcher,
    closing: bool,
    _place: Permit,
}

async fn serve_plain(
    stream: TcpStream,
    settings: Arc<ConnectionSettings>,
    service: ConnectionService,
    guard: ConnectionGuard,
) {
    serve_stream(stream, &settings, service, guard).await;
}

async fn serve_tls(
    stream: TcpStream,
    settings: Arc<ConnectionSettings>,
    service: ConnectionService,
    guard: ConnectionGuard,
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
    serve_stream(tls_stream, &settings, service, guard).await;
}

/// HTTP/1 or HTTP/2 on an accepted (and, for TLS, handshaken) stream until
/// it closes or the drain ends it.
async fn serve_stream<S>(
    stream: S,
    settings: &ConnectionSettings,
    service: ConnectionService,
    guard: ConnectionGuard,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ConnectionGuard {
        watcher, closing, ..
    } = guard;
    let builder = if closing {
        &settings.closing_builder
    } else {
        &settings.builder
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
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
/// Connections the kernel queues for `accept` (clamped to
/// `net.core.somaxconn`): tokio's default of 1,024 overflows when thousands
/// of clients arrive at once (a rollout moving every stream to this pod),
/// and an overflowing queue drops SYNs, which clients retry only after a
/// second. Go listens with somaxconn for the same reason.
const LISTEN_BACKLOG: u32 = 4096;

pub async fn bind(addr: SocketAddr, what: &str) -> io::Result<TcpListener> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As tokio's own bind: a restarted sidecar can take its port back
        // while the old connections sit in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e: io::Error| {
        io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
    })
}
