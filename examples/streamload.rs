//! LLM-shaped load for `bench/streams`: thousands of long, slow token streams
//! held open at once, Ollama NDJSON or OpenAI SSE.
//!
//! ```text
//! streamload origin 127.0.0.1:18180
//! streamload client 127.0.0.1:18190 PROXY_PID STREAMS CHUNKS INTERVAL_MS ndjson|sse [h1|h2]
//! streamload rss PID        # prints the process's RSS in KiB
//! ```
//!
//! The origin streams `X-Chunks` chunks `X-Interval-Ms` apart (chunked
//! transfer encoding, one token per chunk), then the final chunk with the
//! usage. The client opens STREAMS connections (each its own, ramped), counts
//! the token chunks each receives and samples the proxy's RSS and CPU while
//! they are open, then prints one JSON line. Its own memory does not matter
//! (it is not under test), so it uses a plain hyper connection per stream.
//! With `h2` the streams share HTTP/2 connections (prior knowledge, 100
//! streams each), as behind a gateway that multiplexes its clients: the
//! proxy then holds one descriptor per stream instead of two, which is how
//! 10,000 streams fit under an open-file limit of 20,000.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const NDJSON_TOKEN: &[u8] = b"{\"model\":\"llama3.2:1b\",\"created_at\":\"2026-12-01T00:00:00Z\",\"response\":\" tok\",\"done\":false}\n";
const SSE_TOKEN: &[u8] = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764547200,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok\"},\"finish_reason\":null}]}\n\n";

fn ndjson_last(n: usize) -> Bytes {
    Bytes::from(format!(
        "{{\"model\":\"llama3.2:1b\",\"created_at\":\"2026-12-01T00:00:00Z\",\"response\":\"\",\"done\":true,\
         \"done_reason\":\"stop\",\"prompt_eval_count\":12,\"eval_count\":{n},\"total_duration\":1000}}\n"
    ))
}

fn sse_last(n: usize) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764547200,\
         \"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\
         \"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\ndata: [DONE]\n\n",
        n + 12
    ))
}

fn header_number(req: &http::Request<hyper::body::Incoming>, name: &str, default: u64) -> u64 {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(default)
}

type ChunkBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn respond(
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<ChunkBody>, Infallible> {
    let chunks = header_number(&req, "x-chunks", 5) as usize;
    let interval = Duration::from_millis(header_number(&req, "x-interval-ms", 10));
    let sse = req.uri().path().starts_with("/v1/");
    let _ = req.into_body().collect().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        let token = Bytes::from_static(if sse { SSE_TOKEN } else { NDJSON_TOKEN });
        for _ in 0..chunks {
            tokio::time::sleep(interval).await;
            if tx.send(token.clone()).await.is_err() {
                return;
            }
        }
        let last = if sse {
            sse_last(chunks)
        } else {
            ndjson_last(chunks)
        };
        let _ = tx.send(last).await;
    });
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let body = StreamBody::new(frames).boxed();
    Ok(http::Response::builder()
        .header("content-type", content_type)
        .body(body)
        .expect("static response parts"))
}

async fn origin(addr: SocketAddr) -> std::io::Result<()> {
    // Thousands of proxy connections arrive at once: tokio's default backlog
    // (1,024) would drop SYNs and turn into the proxy's connect timeouts.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(8192)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(respond))
                .await;
        });
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// User and system clock ticks of `pid`.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    (field(11), field(12))
}

#[derive(Default)]
struct Tally {
    chunks: AtomicU64,
    complete: AtomicU64,
    errors: AtomicU64,
    /// Frames that carried more than one token: merged on the way.
    merged: AtomicU64,
    open: AtomicU64,
}

type StreamError = Box<dyn std::error::Error + Send + Sync>;
type RequestBody = Full<Bytes>;
type H2Sender = hyper::client::conn::http2::SendRequest<RequestBody>;

/// HTTP/2 streams per client connection: under nginx's and hyper's default
/// limits on concurrent streams (128 and 200).
const STREAMS_PER_H2_CONNECTION: u64 = 100;

/// How a stream reaches the proxy.
#[derive(Clone)]
enum Via {
    /// Its own HTTP/1.1 connection.
    H1(SocketAddr),
    /// A stream on a shared HTTP/2 connection.
    H2(H2Sender),
}

async fn h2_connection(proxy: SocketAddr) -> Result<H2Sender, StreamError> {
    let stream = TcpStream::connect(proxy).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    via: Via,
    req: http::Request<RequestBody>,
) -> Result<http::Response<hyper::body::Incoming>, StreamError> {
    Ok(match via {
        Via::H1(proxy) => {
            let stream = TcpStream::connect(proxy).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        }
        Via::H2(mut sender) => {
            sender.ready().await?;
            sender.send_request(req).await?
        }
    })
}

async fn one_stream(
    via: Via,
    chunks: u64,
    interval_ms: u64,
    sse: bool,
    tally: &Tally,
) -> Result<(), StreamError> {
    let (path, body) = if sse {
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"why is the sky blue"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
    } else {
        (
            "/api/generate",
            r#"{"model":"llama3.2:1b","prompt":"why is the sky blue","stream":true}"#,
        )
    };
    let uri = match via {
        Via::H1(_) => path.to_string(),
        Via::H2(_) => format!("http://streamload{path}"),
    };
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .header("x-chunks", chunks)
        .header("x-interval-ms", interval_ms)
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    let mut req = req;
    if let Via::H1(_) = via {
        req.headers_mut()
            .insert("host", http::HeaderValue::from_static("streamload"));
    }
    let response = send(via, req).await?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    tally.open.fetch_add(1, Ordering::Relaxed);
    let marker: &[u8] = if sse {
        b"\"finish_reason\":null"
    } else {
        b"\"done\":false"
    };
    let mut body = response.into_body();
    let mut got = 0;
    let result = loop {
        match body.frame().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let tokens = data.windows(marker.len()).filter(|w| *w == marker).count() as u64;
                    if tokens > 1 {
                        tally.merged.fetch_add(1, Ordering::Relaxed);
                    }
                    got += tokens;
                }
            }
        }
    };
    tally.open.fetch_sub(1, Ordering::Relaxed);
    tally.chunks.fetch_add(got, Ordering::Relaxed);
    if got == chunks {
        tally.complete.fetch_add(1, Ordering::Relaxed);
    }
    result
}

struct ClientArgs {
    proxy: SocketAddr,
    pid: u32,
    streams: u64,
    chunks: u64,
    interval_ms: u64,
    sse: bool,
    h2: bool,
}

async fn client(args: ClientArgs) {
    let tally = Arc::new(Tally::default());
    let base_rss = rss_kib(args.pid);
    let (u0, s0) = cpu_ticks(args.pid);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut h2: Option<H2Sender> = None;
    for i in 0..args.streams {
        let tally = tally.clone();
        let (chunks, interval, sse) = (args.chunks, args.interval_ms, args.sse);
        let via = if args.h2 {
            if i % STREAMS_PER_H2_CONNECTION == 0 {
                match h2_connection(args.proxy).await {
                    Ok(sender) => h2 = Some(sender),
                    Err(e) => {
                        eprintln!("HTTP/2 connection failed: {e}");
                        h2 = None;
                    }
                }
            }
            match &h2 {
                Some(sender) => Via::H2(sender.clone()),
                // The batch's connection failed: each of its streams counts.
                None => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        } else {
            Via::H1(args.proxy)
        };
        tasks.spawn(async move {
            if let Err(e) = one_stream(via, chunks, interval, sse, &tally).await {
                if tally.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("stream failed: {e}");
                }
            }
        });
        // Ramp: 200 connections per 50 ms, as a fleet of clients would arrive.
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (mut peak, mut peak_open) = (base_rss, 0);
    let mut sampler = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = sampler.tick() => {
                let rss = rss_kib(args.pid);
                if rss > peak {
                    peak = rss;
                    peak_open = tally.open.load(Ordering::Relaxed);
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (u1, s1) = cpu_ticks(args.pid);
    let hz = 100.0; // USER_HZ: what /proc reports ticks in on Linux
    let chunks = tally.chunks.load(Ordering::Relaxed);
    let per_chunk = |ticks: u64| ticks as f64 / hz / chunks.max(1) as f64 * 1e6;
    let expected = args.streams * args.chunks;
    println!(
        "{}",
        serde_json::json!({
            "format": if args.sse { "sse" } else { "ndjson" },
            "client_protocol": if args.h2 { "h2" } else { "h1" },
            "streams": args.streams,
            "chunks_each": args.chunks,
            "interval_ms": args.interval_ms,
            "complete": tally.complete.load(Ordering::Relaxed),
            "errors": tally.errors.load(Ordering::Relaxed),
            "chunks": chunks,
            "chunks_lost": expected.saturating_sub(chunks),
            "frames_merged": tally.merged.load(Ordering::Relaxed),
            "rss_base_kib": base_rss,
            "rss_peak_kib": peak,
            "open_at_peak": peak_open,
            "kib_per_stream": (peak.saturating_sub(base_rss)) as f64 / args.streams.max(1) as f64,
            "rss_after_kib": rss_kib(args.pid),
            "cpu_us_per_chunk": per_chunk((u1 - u0) + (s1 - s0)),
            "user_us_per_chunk": per_chunk(u1 - u0),
            "sys_us_per_chunk": per_chunk(s1 - s0),
            "seconds": elapsed,
        })
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: streamload origin ADDR\n       streamload client PROXY_ADDR PROXY_PID STREAMS CHUNKS INTERVAL_MS ndjson|sse [h1|h2]\n       streamload rss PID"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match args.first().map(String::as_str) {
        Some("origin") => {
            let addr = arg(1).parse().unwrap_or_else(|_| usage());
            if let Err(e) = origin(addr).await {
                eprintln!("origin: {e}");
                std::process::exit(1);
            }
        }
        Some("client") => {
            let number = |i: usize| arg(i).parse::<u64>().unwrap_or_else(|_| usage());
            client(ClientArgs {
                proxy: arg(1).parse().unwrap_or_else(|_| usage()),
                pid: number(2) as u32,
                streams: number(3),
                chunks: number(4),
                interval_ms: number(5),
                sse: match arg(6).as_str() {
                    "sse" => true,
                    "ndjson" => false,
                    _ => usage(),
                },
                h2: match args.get(7).map(String::as_str) {
                    None | Some("h1") => false,
                    Some("h2") => true,
                    _ => usage(),
                },
            })
            .await
        }
        Some("rss") => println!("{}", rss_kib(arg(1).parse().unwrap_or_else(|_| usage()))),
        _ => usage(),
    }
}
