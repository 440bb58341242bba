//! Live reload with the real binary: SIGHUP and `POST /reload` read the file
//! again; what can change takes effect for new exchanges while traffic
//! flows, what cannot is reported, and an invalid file changes nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;

use crate::lifecycle::signal;
use crate::metrics::value;
use crate::otlp::OtlpReceiver;
use crate::support::*;

/// The binary's configuration: `[tracing]` and extra sections vary.
fn config(upstream: &TestUpstream, receiver: &OtlpReceiver, ratio: f64, extra: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n\
         [admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [tracing]\nsampler = \"traceidratio\"\nratio = {ratio}\n\
         [tracing.otlp]\nendpoint = \"{}\"\n{extra}",
        upstream.url(),
        receiver.endpoint()
    )
}

async fn metrics(admin: &str, token: Option<&str>) -> String {
    let mut req = Request::get(format!("http://{admin}/metrics"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let (_, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
    String::from_utf8_lossy(&body).into_owned()
}

/// Waits until `/metrics` shows `series` at `expected`.
async fn eventually(admin: &str, token: Option<&str>, series: &str, expected: f64) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = metrics(admin, token).await;
        if value(&text, series) == Some(expected) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{series} never reached {expected}:\n{text}");
}

async fn get_with_id(proxy: &str, path: &str, id: &str) -> u16 {
    let req = Request::get(format!("http://{proxy}{path}"))
        .header("x-correlation-id", id)
        .body(full(Bytes::new()))
        .unwrap();
    send(&client(), req).await.0.status.as_u16()
}

#[tokio::test]
async fn sighup_changes_the_ratio_under_traffic_and_no_request_fails() {
    let (upstream, _gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let binary = spawn_binary(&config(&upstream, &receiver, 0.0, ""));
    let (proxy, admin) = (binary.listener.clone(), binary.admin());

    // Traffic on keep-alive connections throughout: before, during and
    // after the reload. Bounded by count and by the stop flag.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (stop, ok, failed, proxy) = (stop.clone(), ok.clone(), failed.clone(), proxy.clone());
        tokio::spawn(async move {
            let client = client();
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = Request::get(format!("http://{proxy}/quick"))
                    .header("x-correlation-id", format!("during-{i}"))
                    .body(full(Bytes::new()))
                    .unwrap();
                match client.request(req).await {
                    Ok(response) if response.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    for i in 0..20 {
        assert_eq!(
            get_with_id(&proxy, "/quick", &format!("before-{i}")).await,
            200
        );
    }

    std::fs::write(binary.config_path(), config(&upstream, &receiver, 1.0, "")).unwrap();
    signal(&binary.child, "-HUP");
    eventually(
        &admin,
        None,
        r#"sidecar_config_reloads_total{result="success"}"#,
        1.0,
    )
    .await;
    for i in 0..20 {
        assert_eq!(
            get_with_id(&proxy, "/quick", &format!("after-{i}")).await,
            200
        );
    }
    stop.store(true, Ordering::Relaxed);
    bounded("the traffic", traffic).await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed during the reload"
    );

    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
    let spans = receiver.wait_for(40).await;
    let traced = |prefix: &str| {
        spans
            .iter()
            .filter(|s| {
                s.str_attr("correlation_id")
                    .is_some_and(|id| id.starts_with(prefix))
            })
            .count()
    };
    assert_eq!(traced("before-"), 0, "ratio 0 before the reload");
    assert_eq!(traced("after-"), 20, "ratio 1 after it: every server span");
}

#[tokio::test]
async fn an_invalid_file_changes_nothing() {
    let (upstream, _gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let routes = "[metrics]\nroutes = [{ name = \"/kept\", path = \"/kept\" }]\n";
    let binary = spawn_binary(&config(&upstream, &receiver, 0.0, routes));
    let (proxy, admin) = (binary.listener.clone(), binary.admin());
    let before = metrics(&admin, None).await;
    let loaded_at = value(
        &before,
        "sidecar_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();

    // A typo in a key: the whole file is refused, the running one stays.
    let broken = config(&upstream, &receiver, 1.0, "")
        + "[metrics]\nroutes = [{ name = \"/new\", pth = \"/new\" }]\n";
    std::fs::write(binary.config_path(), broken).unwrap();
    signal(&binary.child, "-HUP");
    let after = eventually(
        &admin,
        None,
        r#"sidecar_config_reloads_total{result="failure"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        value(&after, r#"sidecar_config_reloads_total{result="success"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(
            &after,
            "sidecar_config_last_reload_success_timestamp_seconds"
        ),
        Some(loaded_at)
    );
    for path in ["/kept", "/new"] {
        assert_eq!(get_with_id(&proxy, path, "invalid-reload").await, 200);
    }
    let text = eventually(
        &admin,
        None,
        r#"http_requests_total{method="GET",handler="/kept",status="200"}"#,
        1.0,
    )
    .await;
    assert!(
        !text.contains(r#"handler="/new""#),
        "the refused routes took effect"
    );

    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    let lines = binary.lines.lock().unwrap().clone();
    let rejected = lines
        .iter()
        .find(|l| l.contains("configuration reload rejected"))
        .unwrap_or_else(|| panic!("no rejection logged: {lines:#?}"));
    assert!(
        rejected.contains("sidecar.toml:") && rejected.contains("metrics.routes"),
        "the error names file, line and key: {rejected}"
    );
    // Ratio 0 still: nothing traced.
    assert!(receiver.spans().is_empty());
}

#[tokio::test]
async fn post_reload_is_guarded_and_names_what_needs_a_restart() {
    let (upstream, _gate) = gated_upstream().await;
    let (other_upstream, _other_gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let with_token =
        |text: String| text.replace("[admin]\n", "[admin]\ntoken = \"reload-token\"\n");
    let start = with_token(config(&upstream, &receiver, 0.0, ""));
    let binary = spawn_binary(&start);
    let (proxy, admin) = (binary.listener.clone(), binary.admin());

    // New routes and a debug log level take effect; a new upstream cannot.
    let next = with_token(config(
        &other_upstream,
        &receiver,
        0.0,
        "[metrics]\nroutes = [{ name = \"/new\", path = \"/new\" }]\n[logging]\nlevel = \"debug\"\n",
    ));
    std::fs::write(binary.config_path(), next).unwrap();

    let post = |token: Option<&'static str>| {
        let admin = admin.clone();
        async move {
            let mut req = Request::post(format!("http://{admin}/reload"));
            if let Some(token) = token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
            (parts.status.as_u16(), json_body(&body))
        }
    };
    assert_eq!(post(None).await.0, 401);
    assert_eq!(post(Some("wrong")).await.0, 401);
    let (status, report) = post(Some("reload-token")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "reloaded");
    assert_eq!(
        report["restart_needed"],
        serde_json::json!(["upstream.url"])
    );

    assert_eq!(get_with_id(&proxy, "/new", "after-reload").await, 200);
    eventually(
        &admin,
        Some("reload-token"),
        r#"http_requests_total{method="GET",handler="/new",status="200"}"#,
        1.0,
    )
    .await;
    // Debug now: an invalid inbound correlation id is logged (by length only).
    assert_eq!(get_with_id(&proxy, "/quick", "bad id").await, 200);

    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    let lines = binary.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("discarded an invalid inbound correlation id")),
        "the debug level took effect: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bound at start") && l.contains("upstream.url")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn sighup_switches_to_the_outcome_sampler() {
    let upstream = TestUpstream::start(|req| async move {
        let status = if req.uri().path() == "/fail" {
            500
        } else {
            200
        };
        http::Response::builder()
            .status(status)
            .body(full("x"))
            .unwrap()
    })
    .await;
    let receiver = OtlpReceiver::grpc().await;
    let binary = spawn_binary(&config(&upstream, &receiver, 0.0, ""));
    let (proxy, admin) = (binary.listener.clone(), binary.admin());
    assert_eq!(get_with_id(&proxy, "/fail", "before-fail").await, 500);

    let outcome = config(
        &upstream,
        &receiver,
        0.0,
        "[tracing.outcome]\nratio = 0.0\n",
    )
    .replace("sampler = \"traceidratio\"", "sampler = \"outcome\"");
    std::fs::write(binary.config_path(), outcome).unwrap();
    signal(&binary.child, "-HUP");
    eventually(
        &admin,
        None,
        r#"sidecar_config_reloads_total{result="success"}"#,
        1.0,
    )
    .await;
    assert_eq!(get_with_id(&proxy, "/fail", "after-fail").await, 500);
    assert_eq!(get_with_id(&proxy, "/ok", "after-ok").await, 200);
    let kept = r#"sidecar_traces_sampled_total{decision="kept",reason="error"}"#;
    eventually(&admin, None, kept, 1.0).await;
    let dropped = r#"sidecar_traces_sampled_total{decision="dropped",reason="ratio"}"#;
    eventually(&admin, None, dropped, 1.0).await;

    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
    let spans = receiver.wait_for(2).await;
    let traced: std::collections::BTreeSet<String> = spans
        .iter()
        .filter_map(|s| s.str_attr("correlation_id"))
        .collect();
    assert_eq!(
        traced,
        std::collections::BTreeSet::from(["after-fail".to_owned()]),
        "ratio 0 dropped the failure before the reload; outcome keeps it after, and drops the 200"
    );
}
