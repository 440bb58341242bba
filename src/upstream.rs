//! The pooled keep-alive client to the upstream, http or https.

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::RequestBody;
use crate::config::UpstreamConfig;
use crate::tls::{self, TlsError};

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// The most an upstream connection buffers (reads, and the response head).
const UPSTREAM_READ_BUFFER_MAX: usize = 128 * 1024;

/// Builds the client: TCP_NODELAY, `connect_timeout` (which also bounds the
/// TLS handshake's TCP part), the idle pool, and rustls with the webpki roots
/// plus `ca_file`.
pub fn client(config: &UpstreamConfig) -> Result<UpstreamClient, TlsError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_keepalive(Some(std::time::Duration::from_secs(60)));

    let tls = tls::client_config(config.ca_file.as_deref())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);

    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle)
        // hyper grows a connection's read buffer up to this while a large
        // body streams through, and keeps it while the connection idles in
        // the pool: 128 KiB instead of hyper's ~400 KiB.
        .http1_max_buf_size(UPSTREAM_READ_BUFFER_MAX)
        // The proxy sets Host itself (the upstream's authority).
        .set_host(false)
        // A request that hyper never wrote to a reused connection that turned
        // out closed is safe to send again on a new one, whatever its method.
        // One that was written and lost is resent by `proxy::resend`, only
        // when idempotent and bodiless, and recorded on the client span.
        .retry_canceled_requests(true)
        .build(connector))
}
