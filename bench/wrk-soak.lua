-- wrk script for bench/soak: every STREAM_EVERY-th request on a connection is
-- a streamed generation (NDJSON through the mock Ollama), the rest small
-- non-streamed POSTs; one JSON line with totals at the end.
local every = tonumber(os.getenv("STREAM_EVERY") or "10")
local small, stream
local n = 0

-- Built here, not at load: wrk sets the Host header just before init.
function init(args)
  local json = {["Content-Type"] = "application/json"}
  small = wrk.format("POST", "/api/generate", json, '{"model":"llama3.2:1b","prompt":"hi","stream":false}')
  stream = wrk.format("POST", "/stream/api/generate", json,
    '{"model":"llama3.2:1b","prompt":"why is the sky blue","stream":true}')
end

function request()
  n = n + 1
  if n % every == 0 then return stream end
  return small
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
