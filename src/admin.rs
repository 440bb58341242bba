//! The admin listener: one small service matching on path. It is a separate
//! port (loopback by default) so health checks and scrapes never queue
//! behind client traffic and are never exposed with it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Secret;
use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
use crate::readiness::Readiness;
use crate::reload::{ReloadOutcome, Reloader};

pub struct Admin {
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    /// `prometheus` is among `[metrics] exporters`: `/metrics` serves.
    pub prometheus: bool,
    pub token: Option<Secret>,
    /// Present when the configuration came from a file.
    pub reloader: Option<Arc<Reloader>>,
}

impl Admin {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/reload" {
            return self.respond(&req);
        }
        if req.method() != Method::POST {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":"use POST /reload"}"#.into(),
            );
        }
        // Reloading changes what the proxy does: token holders only.
        if !self.authorized(&req) {
            return unauthorized();
        }
        let Some(reloader) = self.reloader.clone() else {
            return json(
                StatusCode::CONFLICT,
                r#"{"error":"no configuration file to reload from"}"#.into(),
            );
        };
        // Reading the file and maybe starting a Sentry client block.
        match tokio::task::spawn_blocking(move || reloader.reload()).await {
            Ok(ReloadOutcome::Reloaded { restart_needed }) => json(
                StatusCode::OK,
                serde_json::json!({"status": "reloaded", "restart_needed": restart_needed})
                    .to_string(),
            ),
            Ok(ReloadOutcome::Rejected { error }) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"status": "rejected", "error": error}).to_string(),
            ),
            Err(_) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"reload failed"}"#.into(),
            ),
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":"method not allowed"}"#.into(),
            );
        }
        let path = req.uri().path();
        let authorized = self.authorized(req);
        // Probes stay open: a kubelet or load balancer cannot send a bearer
        // token, and a status code reveals nothing. Metrics (route names,
        // models, traffic) and readiness details (the upstream's address)
        // are for holders of the token.
        if !matches!(path, "/healthz" | "/readyz") && !authorized {
            return unauthorized();
        }
        match path {
            "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#.into()),
            "/metrics" if !self.prometheus => json(
                StatusCode::NOT_FOUND,
                r#"{"error":"the prometheus metrics exporter is not enabled"}"#.into(),
            ),
            "/metrics" => {
                let mut response = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
                );
                response
            }
            "/readyz" => match self.readiness.check() {
                Ok(()) => json(StatusCode::OK, r#"{"status":"ready"}"#.into()),
                Err(reason) if authorized => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "not ready", "reason": reason}).to_string(),
                ),
                Err(_) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"status":"not ready"}"#.into(),
                ),
            },
            _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .is_some_and(|given| constant_time_eq(given, token.expose().as_bytes()))
    }
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"unauthorized"}"#.into(),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Compares without an early exit, so response timing reveals nothing about
/// how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves the admin endpoints until `shutdown` flips.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, mut shutdown: watch::Receiver<bool>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::server::stopped(&mut shutdown) => return,
        };
        let admin = admin.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.handle(req).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
