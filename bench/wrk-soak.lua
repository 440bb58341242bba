-- wrk script for bench/soak: every STREAM_EVERY-th request (counted per wrk thread) is
-- a streamed generation (NDJSON through the mock Ollama), the rest small
-- non-streamed POSTs; wrk-report.lua's JSON line with totals at the end.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk-report.lua")
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
