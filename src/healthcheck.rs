//! `otel-sidecar healthcheck`: GET the admin `/healthz` and exit 0 on 200.
//! The runtime image has no shell or curl, so Docker's HEALTHCHECK runs this.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Probes `/healthz` on the admin address; an unspecified bind address
/// (`0.0.0.0`, `::`) is probed on loopback.
pub async fn probe(admin: SocketAddr) -> Result<(), String> {
    let target = match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), admin.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), admin.port())
        }
        _ => admin,
    };
    let check = async {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::get("/healthz")
            .header("host", target.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => Ok(()),
            other => Err(format!("/healthz answered {other}")),
        }
    };
    tokio::time::timeout(TIMEOUT, check)
        .await
        .map_err(|_| format!("/healthz on {target} did not answer within {TIMEOUT:?}"))?
}
