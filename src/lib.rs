//! otel-sidecar: a reverse proxy that gives an unmodified HTTP backend
//! correlation IDs, trace context, RED metrics, spans, JSON logs and Sentry
//! reports, and reads GenAI usage from LLM streams as they pass.
//!
//! The life of one exchange (see `proxy`): context → forward → observed
//! response body → one [`exchange::Completion`] → [`sinks`].

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod body;
pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod error;
pub mod exchange;
pub mod fd_limit;
pub mod genai;
pub mod healthcheck;
pub mod limit;
pub mod metrics;
pub mod mock_ollama;
pub mod proxy;
pub mod readiness;
pub mod redact;
pub mod reload;
pub mod server;
pub mod settings;
pub mod sidecar;
pub mod signals;
pub mod sinks;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use sidecar::{Extras, Sidecar, StartError};
