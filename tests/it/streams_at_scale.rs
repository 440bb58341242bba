//! Hundreds of token streams open through one sidecar at once, each relayed
//! chunk by chunk. The upstream sends a stream's next chunk only after the
//! client has received the previous one, so a chunk the proxy held back
//! (buffered, or merged with the next) stalls its stream and fails the test
//! rather than passing unnoticed by a timing accident.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use crate::metrics::scrape;
use crate::support::*;

const STREAMS: u64 = 200;
const TOKENS: u64 = 5;

fn token_line(stream: u64, k: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"model\":\"llama3.2:1b\",\"response\":\"s{stream}t{k}\",\"done\":false}}\n"
    ))
}

fn final_line() -> Bytes {
    Bytes::from(format!(
        "{{\"model\":\"llama3.2:1b\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\
         \"prompt_eval_count\":3,\"eval_count\":{TOKENS}}}\n"
    ))
}

/// One permit per chunk the client has taken, by stream.
#[derive(Default, Clone)]
struct Lockstep(Arc<Mutex<HashMap<u64, Arc<Semaphore>>>>);

impl Lockstep {
    fn gate(&self, stream: u64) -> Arc<Semaphore> {
        self.0
            .lock()
            .unwrap()
            .entry(stream)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }
}

async fn lockstep_upstream(lockstep: Lockstep) -> TestUpstream {
    TestUpstream::start(move |req| {
        let lockstep = lockstep.clone();
        async move {
            let stream: u64 = req.headers()["x-stream"].to_str().unwrap().parse().unwrap();
            let _ = req.into_body().collect().await;
            let gate = lockstep.gate(stream);
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                for k in 0..=TOKENS {
                    gate.acquire().await.unwrap().forget();
                    let chunk = if k < TOKENS {
                        token_line(stream, k)
                    } else {
                        final_line()
                    };
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            });
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(body)
                .unwrap()
        }
    })
    .await
}

/// Runs `STREAMS` lockstep streams at once through `client`, numbered from
/// `first`, and checks every chunk arrived alone and in order.
async fn run_streams(base: String, client: TestClient, lockstep: Lockstep, first: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for stream in first..first + STREAMS {
        let (base, client, gate) = (base.clone(), client.clone(), lockstep.gate(stream));
        tasks.spawn(async move {
            let req = Request::post(format!("{base}/api/generate"))
                .header("x-stream", stream)
                .header("content-type", "application/json")
                .body(full(r#"{"model":"llama3.2:1b","prompt":"hi"}"#))
                .unwrap();
            let response = bounded("stream headers", client.request(req))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            for k in 0..=TOKENS {
                let frame = bounded("the next chunk, alone", body.frame())
                    .await
                    .unwrap_or_else(|| panic!("stream {stream} ended after {k} chunks"))
                    .unwrap();
                let data = frame.into_data().unwrap();
                let expected = if k < TOKENS {
                    token_line(stream, k)
                } else {
                    final_line()
                };
                assert_eq!(data, expected, "stream {stream}, chunk {k}");
                gate.add_permits(1);
            }
            // HTTP/2 may close the stream with an empty DATA frame.
            while let Some(rest) = bounded("the end of the stream", body.frame()).await {
                let rest = rest.unwrap().into_data().unwrap();
                assert!(
                    rest.is_empty(),
                    "stream {stream}: after the final line {rest:?}"
                );
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_streams_arrive_whole_chunk_by_chunk_with_their_usage() {
    let lockstep = Lockstep::default();
    let upstream = lockstep_upstream(lockstep.clone()).await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let base = format!("http://{}", sidecar.proxy_addr());

    // A connection per stream, then every stream on shared HTTP/2
    // connections: the two ways clients reach the proxy.
    run_streams(base.clone(), client(), lockstep.clone(), 0).await;
    run_streams(base, h2c_client(), lockstep, STREAMS).await;

    // Every stream's usage was read from its final line as it passed.
    let (_, _, text) = scrape(&sidecar, None).await;
    let output_tokens: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_client_token_usage_sum")
                && l.contains(r#"gen_ai_token_type="output""#)
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum();
    assert_eq!(output_tokens, (2 * STREAMS * TOKENS) as f64, "{text}");
    sidecar.stop().await;
}
