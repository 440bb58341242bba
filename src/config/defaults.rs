//! Named defaults, so the documentation, `sidecar.toml` and the code agree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::ByteSize;

pub const DEFAULT_LISTENER_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
/// Endpoint removal reaches kube-proxy and most load balancers within a few
/// seconds; Istio's sidecar waits as long (`terminationDrainDuration`, 5s).
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HEADER_BYTES: ByteSize = ByteSize(64 * 1024);
pub const DEFAULT_MAX_HEADERS: usize = 100;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

pub const DEFAULT_UPSTREAM_URL: &str = "http://127.0.0.1:11434";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle upstream connections kept after a burst. Each costs about 4 KiB here
/// and a socket (and often a goroutine or thread) in the backend; beyond 256
/// concurrent exchanges, reconnecting to a sidecar's (usually loopback)
/// backend is cheap next to holding a thousand idle connections for
/// `pool_idle_timeout` after every burst (bench/streams: RSS 30 s after 2,000
/// streams, 1.77x the idle figure with 1,024 kept).
pub const DEFAULT_POOL_MAX_IDLE: usize = 256;
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

pub const DEFAULT_ADMIN_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);

pub const DEFAULT_SERVICE_NAME: &str = "otel-sidecar";
pub const DEFAULT_ENVIRONMENT: &str = "production";

pub const DEFAULT_CORRELATION_HEADER: &str = "x-correlation-id";
pub const DEFAULT_CORRELATION_ACCEPT: &[&str] = &["x-correlation-id", "x-request-id"];

/// The specification's `OTEL_METRIC_EXPORT_INTERVAL` default.
pub const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Without configured routes every request would be `other`; these are the
/// Ollama and OpenAI-compatible endpoints the default upstream serves.
pub const DEFAULT_ROUTES: &[&str] = &[
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
];
/// The `outcome` sampler's share of unremarkable exchanges.
pub const DEFAULT_OUTCOME_RATIO: f64 = 0.05;
/// Slower than this, an exchange is kept by the `outcome` sampler. Above
/// most APIs' p99 and below a chat completion's usual length; GenAI routes
/// are better judged by `ttft_slower_than` or a per-route value.
pub const DEFAULT_OUTCOME_SLOWER_THAN: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_MODELS: usize = 100;

pub const DEFAULT_LOG_LEVEL: &str = "info";

pub const DEFAULT_REDACT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];
pub const DEFAULT_SENTRY_QUEUE: usize = 256;

pub const DEFAULT_REDACT_KEYS: &[&str] = &["password", "token", "secret", "api_key"];

/// Per direction: a few turns of a chat, well under the 64 KiB many trace
/// backends allow an attribute value.
pub const DEFAULT_MAX_CONTENT_BYTES: ByteSize = ByteSize(16 * 1024);
/// Bearer tokens, `sk-…` API keys (OpenAI, Anthropic and the many servers
/// that copy their format) and e-mail addresses.
pub const DEFAULT_REDACT_PATTERNS: &[&str] = &[
    r"(?i)\bbearer\s+[a-z0-9._~+/=-]+",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
];
