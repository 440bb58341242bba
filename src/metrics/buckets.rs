//! Histogram bucket boundaries.

/// Request durations: Prometheus' defaults, extended to five minutes because
/// a streamed LLM answer is one request.
pub const DURATION_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Body sizes: 64 B to 64 MiB, by factors of four.
pub fn size_bytes() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(64.0, 4.0, 11)
}

// The OpenTelemetry GenAI semantic conventions' advisory boundaries.

/// `gen_ai.client.token.usage`.
pub const TOKENS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// `gen_ai.client.operation.duration`.
pub const OPERATION_SECONDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// `gen_ai.server.time_to_first_token`.
pub const TTFT_SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// `gen_ai.server.time_per_output_token`.
pub const TIME_PER_TOKEN_SECONDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];
