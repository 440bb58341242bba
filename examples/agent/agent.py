#!/usr/bin/env python3
"""A small agent API that calls Ollama: the backend of otel-sidecar's agent topology.

    POST /agent/run  {"prompt": "..."}  plans with one model call, answers with a second
    GET  /healthz                       200 while the process serves

Standard library only, so it runs in a stock python:3.x-slim image and in the
tests. Configured by environment:

    OLLAMA_HOST              where model calls go, in Ollama's own conventions:
                             "http://host:port", "host:port", "host", ":port"
                             (default 127.0.0.1:11434). In monitoring/docker-compose.yml
                             it names the sidecar in front of Ollama, so every
                             model call is measured there.
    AGENT_MODEL              the model both calls use (default gemma3n:e2b)
    AGENT_HOST, AGENT_PORT   where to listen (default 0.0.0.0 and 8000; port 0
                             takes a free port). The bound address is printed on
                             stdout as one JSON line once the agent accepts requests.
    AGENT_TIMEOUT            seconds a model call may stay silent (default 300)
    AGENT_PROPAGATE_CONTEXT  true (default) or false, see below

What joins the two sidecars' traces
-----------------------------------
The sidecar in front of this agent starts a trace (or continues the client's)
and sends `traceparent`, `tracestate`, `baggage` and `X-Correlation-ID` with
each request. The model calls are made here, by the agent, not by either
sidecar, so those headers reach the sidecar in front of Ollama only if the
agent copies them onto its model calls:

- AGENT_PROPAGATE_CONTEXT=true: copied. Both sidecars' spans are one trace;
  the Ollama side's server span is a child of the agent side's client span,
  and both sides log and tag the same correlation id.
- AGENT_PROPAGATE_CONTEXT=false: not copied. The agent's request is one trace,
  and each model call is a trace of its own with a new correlation id. Every
  trace is complete, but nothing in them says which agent request a model
  call served; only timing does.

The agent records no spans, metrics or access logs of its own: what an
operator sees of it comes from the two sidecars. It writes a line to stderr
only when a request fails.

Run it against a local Ollama (or `cargo run --example mock_ollama`):

    OLLAMA_HOST=127.0.0.1:11434 python3 examples/agent/agent.py
    curl localhost:8000/agent/run -d '{"prompt": "Why is the sky blue?"}'
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The request headers that carry the trace context and the correlation id.
PROPAGATED = ("traceparent", "tracestate", "baggage", "X-Correlation-ID")

MAX_BODY = 1 << 20

PLAN_PROMPT = (
    "You are planning an answer. List at most three short steps to answer the "
    "user's request. Do not answer it yet."
)
ANSWER_PROMPT = "Answer the user's request. Follow this plan:\n"


def ollama_base_url(host):
    """The base URL of OLLAMA_HOST, read as the official ollama client reads it.

    >>> ollama_base_url(None)
    'http://127.0.0.1:11434'
    >>> ollama_base_url('ollama-sidecar:8080')
    'http://ollama-sidecar:8080'
    >>> ollama_base_url('example.com')
    'http://example.com:11434'
    >>> ollama_base_url(':56789')
    'http://127.0.0.1:56789'
    >>> ollama_base_url('http://example.com')
    'http://example.com:80'
    >>> ollama_base_url('https://example.com')
    'https://example.com:443'
    >>> ollama_base_url('http://10.0.0.7:11434/')
    'http://10.0.0.7:11434'
    >>> ollama_base_url('https://example.com:56789/ollama/')
    'https://example.com:56789/ollama'
    >>> ollama_base_url('[::1]:11434')
    'http://[::1]:11434'
    """
    host, port = (host or "").strip(), 11434
    scheme, _, hostport = host.partition("://")
    if not hostport:
        scheme, hostport = "http", host
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    else:
        raise ValueError(f"OLLAMA_HOST: scheme must be http or https, not {scheme!r}")
    split = urllib.parse.urlsplit(f"{scheme}://{hostport}")
    hostname = split.hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    path = split.path.rstrip("/")
    return f"{scheme}://{hostname}:{split.port or port}{path}"


def env_flag(name, default):
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected true or false, not {value!r}")


class ModelError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Agent:
    def __init__(self, base_url, model, timeout, propagate):
        self.base_url = base_url
        self.model = model
        self.timeout = timeout
        self.propagate = propagate
        # The model endpoint is a neighbour (the sidecar beside Ollama); an
        # HTTP(S)_PROXY meant for the internet must not take those calls elsewhere.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def run(self, prompt, inbound_headers):
        context = self.context_headers(inbound_headers)
        plan, plan_usage = self.chat(
            [{"role": "system", "content": PLAN_PROMPT}, {"role": "user", "content": prompt}],
            stream=False,
            context=context,
        )
        # Streamed, as a chat UI would read it: the sidecar in front of Ollama
        # measures the time to the first token on this call.
        answer, answer_usage = self.chat(
            [
                {"role": "system", "content": ANSWER_PROMPT + plan},
                {"role": "user", "content": prompt},
            ],
            stream=True,
            context=context,
        )
        return {
            "answer": answer,
            "plan": plan,
            "model": self.model,
            "model_calls": [dict(step="plan", **plan_usage), dict(step="answer", **answer_usage)],
        }

    def context_headers(self, inbound_headers):
        if not self.propagate:
            return {}
        return {name: inbound_headers[name] for name in PROPAGATED if inbound_headers.get(name)}

    def chat(self, messages, stream, context):
        body = json.dumps({"model": self.model, "messages": messages, "stream": stream})
        request = urllib.request.Request(
            self.base_url + "/api/chat",
            data=body.encode(),
            headers={"Content-Type": "application/json", **context},
            method="POST",
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                if not stream:
                    reply = json.load(response)
                    return reply["message"]["content"], usage(reply)
                parts, last = [], {}
                for line in response:
                    if not line.strip():
                        continue
                    last = json.loads(line)
                    if "error" in last:
                        raise ModelError(502, f"model stream failed: {last['error']}")
                    parts.append(last.get("message", {}).get("content", ""))
                if not last.get("done"):
                    raise ModelError(502, "model stream ended before done")
                return "".join(parts), usage(last)
        except urllib.error.HTTPError as e:
            detail = e.read(512).decode(errors="replace")
            raise ModelError(502, f"model call answered {e.code}: {detail}") from e
        except socket.timeout as e:
            raise ModelError(504, f"model call silent for {self.timeout}s") from e
        except urllib.error.URLError as e:
            status = 504 if isinstance(e.reason, socket.timeout) else 502
            raise ModelError(status, f"model call failed: {e.reason}") from e
        except (OSError, http.client.HTTPException) as e:
            raise ModelError(502, f"model call failed: {e!r}") from e
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(502, f"model answered something other than a chat reply: {e!r}") from e


def usage(reply):
    """Token counts as Ollama reports them in its final message (None when absent)."""
    return {"input_tokens": reply.get("prompt_eval_count"), "output_tokens": reply.get("eval_count")}


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, and no idle timeout: the sidecar pools connections to this
    # agent for 90 s, and a POST sent on a connection the agent had just
    # closed would come back to the client as a 502.
    protocol_version = "HTTP/1.1"
    agent = None

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/agent/run":
            self.discard_body()
            self.reply(404, {"error": "not found"})
            return
        try:
            request = json.loads(self.read_body())
            prompt = request["prompt"]
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError("prompt must be a non-empty string")
        except BodyTooLarge:
            self.reply(413, {"error": f"request body over {MAX_BODY} bytes"})
            return
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": f'expected {{"prompt": "..."}}: {e}'})
            return
        try:
            self.reply(200, self.agent.run(prompt, self.headers))
        except ModelError as e:
            print(f"agent: POST /agent/run: {e}", file=sys.stderr, flush=True)
            self.reply(e.status, {"error": str(e)})

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            # Without a length the next request on this connection cannot be found.
            self.close_connection = True
            raise
        if length > MAX_BODY:
            self.close_connection = True
            raise BodyTooLarge()
        return self.rfile.read(length)

    def read_chunked(self):
        body = bytearray()
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailer fields, if any, end with an empty line.
                while self.rfile.readline(8192).strip():
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                self.close_connection = True
                raise BodyTooLarge()
            body += self.rfile.read(size)
            self.rfile.readline(8)

    def discard_body(self):
        try:
            self.read_body()
        except (BodyTooLarge, ValueError):
            self.close_connection = True

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        # The sidecar in front writes the access log; a second one here would
        # only disagree with it.
        pass


class BodyTooLarge(Exception):
    pass


def main():
    try:
        agent = Agent(
            base_url=ollama_base_url(os.environ.get("OLLAMA_HOST")),
            model=os.environ.get("AGENT_MODEL", "gemma3n:e2b"),
            timeout=float(os.environ.get("AGENT_TIMEOUT", "300")),
            propagate=env_flag("AGENT_PROPAGATE_CONTEXT", True),
        )
        port = int(os.environ.get("AGENT_PORT", "8000"))
    except ValueError as e:
        print(f"agent: invalid configuration: {e}", file=sys.stderr)
        return 2
    Handler.agent = agent
    server = ThreadingHTTPServer((os.environ.get("AGENT_HOST", "0.0.0.0"), port), Handler)
    # As PID 1 in a container SIGTERM would otherwise be ignored until the
    # runtime kills the process; shutdown() must run off the serving thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    started = {
        "message": "agent listening",
        "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "ollama": agent.base_url,
        "model": agent.model,
        "propagate_context": agent.propagate,
    }
    print(json.dumps(started), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
