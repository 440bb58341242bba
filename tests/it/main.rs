//! Integration tests: the real proxy on 127.0.0.1:0 in front of real upstreams
//! on loopback. One test binary (linkerd's `tests/it` layout) keeps link time down.

mod admin;
mod agent;
mod config;
mod container;
mod errors;
mod faults;
mod forward;
mod genai;
mod genai_content;
mod hostile;
mod kubernetes;
mod lifecycle;
mod logs;
mod metrics;
mod metrics_collector;
mod monitoring;
mod otlp;
mod otlp_export;
mod otlp_http;
mod otlp_logs;
mod otlp_metrics;
mod overload;
mod pki;
mod pool;
mod propagation;
mod protocols;
mod reload;
mod sampling;
mod sentry;
mod shutdown;
mod streams_at_scale;
mod support;
mod tools;
mod tracing;
mod wire;
