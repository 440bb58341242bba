//! The admin listener: liveness, readiness from an upstream probe, token.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};

use crate::metrics::{scrape, value};
use crate::support::*;

async fn ready_gauge(sidecar: &otel_sidecar::Sidecar) -> Option<f64> {
    value(&scrape(sidecar, None).await.2, "sidecar_ready")
}

async fn admin_get(
    sidecar: &otel_sidecar::Sidecar,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = Request::get(format!("http://{}{path}", sidecar.admin_addr()));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
    (parts.status.as_u16(), json_body(&body))
}

async fn eventually_status(
    sidecar: &otel_sidecar::Sidecar,
    path: &str,
    status: u16,
) -> serde_json::Value {
    for _ in 0..100 {
        let (got, body) = admin_get(sidecar, path, None).await;
        if got == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never answered {status}");
}

#[tokio::test]
async fn health_and_readiness_follow_the_upstream() {
    let upstream = TestUpstream::start(|_req| async { Response::new(full("ok")) }).await;
    let url = upstream.url();
    let sidecar = start_sidecar(test_config(&url)).await;
    assert_eq!(
        admin_get(&sidecar, "/healthz", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    eventually_status(&sidecar, "/readyz", 200).await;
    assert_eq!(ready_gauge(&sidecar).await, Some(1.0));

    drop(upstream); // nothing listens on the port any more
    let body = eventually_status(&sidecar, "/readyz", 503).await;
    assert!(
        body["reason"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    assert_eq!(ready_gauge(&sidecar).await, Some(0.0), "the gauge follows");
    assert_eq!(admin_get(&sidecar, "/healthz", None).await.0, 200);

    let (status, body) = admin_get(&sidecar, "/nope", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not found")));
    sidecar.stop().await;
}

#[tokio::test]
async fn readyz_reports_draining_while_a_stream_finishes() {
    let (upstream, release_tx) = gated_stream(b"first\n", b"").await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    eventually_status(&sidecar, "/readyz", 200).await;
    let stream = open_stream(get(format!("http://{}/s", sidecar.proxy_addr()))).await;

    sidecar.shutdown();
    let reply = eventually_status(&sidecar, "/readyz", 503).await;
    assert!(
        reply["reason"].as_str().unwrap().contains("draining"),
        "{reply}"
    );
    assert_eq!(
        ready_gauge(&sidecar).await,
        Some(0.0),
        "draining is not ready"
    );
    assert_eq!(
        admin_get(&sidecar, "/healthz", None).await.0,
        200,
        "liveness holds while draining"
    );
    release_tx.send(()).await.unwrap();
    bounded("stream end", http_body_util::BodyExt::collect(stream.body))
        .await
        .unwrap();
    bounded("drain", sidecar.wait()).await;
}

#[tokio::test]
async fn admin_token_guards_metrics_but_not_the_probes() {
    let upstream = TestUpstream::start(|_req| async { Response::new(full("ok")) }).await;
    let mut config = test_config(&upstream.url());
    config.admin.token = Some(otel_sidecar::config::Secret::new("s3cret-token"));
    let sidecar = start_sidecar(config).await;
    // A kubelet probe carries no token: liveness and readiness answer it.
    assert_eq!(admin_get(&sidecar, "/healthz", None).await.0, 200);
    eventually_status(&sidecar, "/readyz", 200).await;
    for token in [None, Some("wrong-token!")] {
        let mut req = Request::get(format!("http://{}/metrics", sidecar.admin_addr()));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (parts, _) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
        assert_eq!(parts.status, 401, "/metrics with token {token:?}");
    }

    // Not ready: the status is public, the reason (the upstream's address)
    // only for holders of the token.
    drop(upstream);
    let anonymous = eventually_status(&sidecar, "/readyz", 503).await;
    assert_eq!(anonymous, serde_json::json!({"status": "not ready"}));
    let (status, detailed) = admin_get(&sidecar, "/readyz", Some("s3cret-token")).await;
    assert_eq!(status, 503);
    assert!(
        detailed["reason"].as_str().unwrap().contains("unreachable"),
        "{detailed}"
    );
    sidecar.stop().await;
}
