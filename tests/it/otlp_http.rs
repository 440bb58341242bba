//! The OTLP/HTTP side of the test collectors, one server for traces, metrics
//! and logs: it checks what every OTLP/HTTP export is (a POST of
//! `application/x-protobuf` to the signal's path), undoes a gzip
//! `Content-Encoding`, and hands the protobuf bytes to the signal's store.

use std::io::Read;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One export as it arrived: its `Content-Encoding` and its body, decompressed.
pub struct Export {
    pub encoding: Option<String>,
    pub body: Bytes,
}

/// Serves exports to `path` until the task is aborted. `take` decodes one and
/// says whether it was a valid request of its signal (200) or not (400); what
/// is not an OTLP/HTTP export at all is answered 400 without reaching it.
pub fn serve<F>(listener: TcpListener, path: &'static str, take: F) -> JoinHandle<()>
where
    F: Fn(Export) -> bool + Clone + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let take = take.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let take = take.clone();
                        async move {
                            let taken = read(req, path).await.is_some_and(&take);
                            let status = if taken {
                                StatusCode::OK
                            } else {
                                StatusCode::BAD_REQUEST
                            };
                            // Every Export*ServiceResponse without a partial
                            // success encodes to no bytes at all.
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            response.headers_mut().insert(
                                "content-type",
                                http::HeaderValue::from_static("application/x-protobuf"),
                            );
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn read(req: http::Request<hyper::body::Incoming>, path: &str) -> Option<Export> {
    let is_export = req.method() == http::Method::POST
        && req.uri().path() == path
        && req
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/x-protobuf");
    let encoding = req
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = req.into_body().collect().await.ok()?.to_bytes();
    if !is_export {
        return None;
    }
    let body = match encoding.as_deref() {
        None | Some("identity") => body,
        Some("gzip") => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .ok()?;
            Bytes::from(plain)
        }
        Some(_) => return None,
    };
    Some(Export { encoding, body })
}
