//! HTTP/2 with prior knowledge, TLS with ALPN (h2 and http/1.1), and a
//! WebSocket upgrade tunnelled end to end.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Answers with the protocol version and `x-forwarded-proto` it received.
async fn version_upstream() -> TestUpstream {
    TestUpstream::start(|req| async move {
        let proto = req
            .headers()
            .get("x-forwarded-proto")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Response::new(full(format!("{:?} {proto}", req.version())))
    })
    .await
}

#[tokio::test]
async fn http2_prior_knowledge_is_served_and_forwarded_as_http1() {
    let upstream = version_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let response = bounded(
        "h2c",
        h2c_client().request(get(format!("http://{}/x", sidecar.proxy_addr()))),
    )
    .await
    .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert!(response.headers().contains_key("x-correlation-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"HTTP/1.1 http");
    sidecar.stop().await;
}

#[tokio::test]
async fn tls_listener_negotiates_h2_and_http1_via_alpn() {
    let upstream = version_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let identity =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, identity.cert.pem()).unwrap();
    std::fs::write(&key_path, identity.signing_key.serialize_pem()).unwrap();

    let mut config = test_config(&upstream.url());
    config.listener.tls = Some(otel_sidecar::config::TlsFiles {
        cert: cert_path,
        key: key_path,
    });
    let sidecar = start_sidecar(config).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(identity.cert.der().to_vec()))
        .unwrap();
    for (alpn, expected) in [
        (&b"h2"[..], Version::HTTP_2),
        (&b"http/1.1"[..], Version::HTTP_11),
    ] {
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        tls.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let tcp = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();
        let stream = bounded(
            "TLS handshake",
            connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
        )
        .await
        .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
        let io = TokioIo::new(stream);
        let req = Request::get("https://localhost/x")
            .body(full(Bytes::new()))
            .unwrap();
        let response = if expected == Version::HTTP_2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            bounded("h2 over TLS", sender.send_request(req))
                .await
                .unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let mut req = req;
            req.headers_mut()
                .insert("host", "localhost".parse().unwrap());
            bounded("http/1.1 over TLS", sender.send_request(req))
                .await
                .unwrap()
        };
        assert_eq!(response.version(), expected);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            b"HTTP/1.1 https",
            "upstream sees HTTP/1.1 and X-Forwarded-Proto https"
        );
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        let _ = ws.send(msg).await;
                    }
                }
            });
        }
    });
    let sidecar = start_sidecar(test_config(&format!("http://{upstream}"))).await;
    let tcp = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();
    let url = format!("ws://{}/ws", sidecar.proxy_addr());
    let (mut ws, response) = bounded(
        "websocket handshake",
        tokio_tungstenite::client_async(url, tcp),
    )
    .await
    .expect("upgrade through the proxy");
    assert_eq!(response.status(), 101);
    assert!(response.headers().contains_key("x-correlation-id"));
    for text in ["hello", "through", "the sidecar"] {
        ws.send(Message::text(text)).await.unwrap();
        let echo = bounded("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(echo, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        bounded("binary echo", ws.next()).await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.unwrap();
    sidecar.stop().await;
}

/// An HTTPS upstream whose certificate is signed by a private CA.
async fn https_upstream(ca: &rcgen::Issuer<'_, rcgen::KeyPair>) -> std::net::SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let host = req
                            .headers()
                            .get("host")
                            .map(|h| h.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(Response::new(full(format!(
                            "tls ok, host {host}"
                        ))))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_upstream_with_a_private_ca_and_a_clear_error_without_it() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_pem = ca_cert.pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let addr = https_upstream(&issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("https://localhost:{}", addr.port());

    let mut config = test_config(&url);
    config.upstream.ca_file = Some(ca_file);
    let sidecar = start_sidecar(config).await;
    let (parts, body) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
    assert_eq!(parts.status, 200, "{body:?}");
    assert_eq!(
        &body[..],
        format!("tls ok, host localhost:{}", addr.port()).as_bytes()
    );
    sidecar.stop().await;

    // Without the CA the certificate does not verify: 502 naming TLS.
    let sidecar = start_sidecar(test_config(&url)).await;
    let (parts, body) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
    assert_eq!(parts.status, 502);
    assert_eq!(json_body(&body)["error"], "upstream TLS handshake failed");
    sidecar.stop().await;
}
