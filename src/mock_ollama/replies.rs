//! The JSON shapes Ollama sends, native and OpenAI-compatible, built from the
//! request so token counts are predictable: the answer is [`ANSWER`] cut to
//! `num_predict`/`max_tokens` words, and the prompt counts one token per word.
//! Chat requests with `tools` get a tool call first (see [`super::tools`]).

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use super::tools::{self, ToolCall, TOOL_CALL_TOKENS};

/// What every generation answers, one token per word.
pub const ANSWER: &str = "The sky looks blue because air molecules scatter short blue wavelengths of sunlight much more strongly than red ones.";

const CREATED_AT: &str = "2026-11-26T12:00:00.000000Z";
const CREATED_UNIX: u64 = 1_795_000_000;
const NANOS_PER_TOKEN: u64 = 20_000_000;

pub enum Reply {
    Json(Value),
    Stream {
        content_type: &'static str,
        chunks: Vec<Bytes>,
    },
    Error(StatusCode, String),
}

pub fn reply(path: &str, req: &Value) -> Option<Reply> {
    let Some(model) = req
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return Some(Reply::Error(
            StatusCode::BAD_REQUEST,
            "model is required".into(),
        ));
    };
    let limit = req
        .pointer("/options/num_predict")
        .or_else(|| req.get("max_tokens"))
        .or_else(|| req.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    let chat = matches!(path, "/api/chat" | "/v1/chat/completions");
    let after_tool = chat.then(|| tools::answer_after_tool(req)).flatten();
    let answer = after_tool.as_deref().unwrap_or(ANSWER);
    let tokens = answer_tokens(answer, limit);
    let gen = Generation {
        model,
        prompt_tokens: prompt_tokens(req),
        finish: if tokens.len() < answer.split(' ').count() {
            "length"
        } else {
            "stop"
        },
        tokens,
        tool: chat.then(|| tools::call_for(req)).flatten(),
    };
    let stream_flag = req.get("stream").and_then(Value::as_bool);
    Some(match path {
        "/api/generate" => gen.ollama(stream_flag.unwrap_or(true), false),
        "/api/chat" => gen.ollama(stream_flag.unwrap_or(true), true),
        "/api/embed" => Reply::Json(embed(model, gen.prompt_tokens, input_count(req))),
        "/api/embeddings" => Reply::Json(json!({"embedding": vector(0)})),
        "/v1/chat/completions" => {
            gen.openai(stream_flag.unwrap_or(false), include_usage(req), true)
        }
        "/v1/completions" => gen.openai(stream_flag.unwrap_or(false), include_usage(req), false),
        "/v1/embeddings" => Reply::Json(openai_embeddings(
            model,
            gen.prompt_tokens,
            input_count(req),
        )),
        _ => return None,
    })
}

struct Generation<'a> {
    model: &'a str,
    prompt_tokens: u64,
    tokens: Vec<String>,
    finish: &'static str,
    /// The model calls a tool instead of answering.
    tool: Option<ToolCall>,
}

impl Generation<'_> {
    fn ollama(&self, stream: bool, chat: bool) -> Reply {
        if let Some(tool) = &self.tool {
            return self.ollama_tool_call(tool, stream);
        }
        let piece = |text: &str| -> Value {
            if chat {
                json!({"model": self.model, "created_at": CREATED_AT,
                       "message": {"role": "assistant", "content": text}, "done": false})
            } else {
                json!({"model": self.model, "created_at": CREATED_AT, "response": text, "done": false})
            }
        };
        let full = if stream { String::new() } else { self.text() };
        let mut last = piece(&full);
        let eval = self.tokens.len() as u64;
        let stats = json!({
            "done": true, "done_reason": self.finish,
            "total_duration": (eval + 5) * NANOS_PER_TOKEN, "load_duration": 2 * NANOS_PER_TOKEN,
            "prompt_eval_count": self.prompt_tokens, "prompt_eval_duration": NANOS_PER_TOKEN,
            "eval_count": eval, "eval_duration": eval * NANOS_PER_TOKEN,
        });
        merge(&mut last, stats);
        if !chat {
            last["context"] = json!([1, 2, 3]);
        }
        if !stream {
            return Reply::Json(last);
        }
        let mut chunks: Vec<Bytes> = self.tokens.iter().map(|t| ndjson(&piece(t))).collect();
        chunks.push(ndjson(&last));
        Reply::Stream {
            content_type: "application/x-ndjson",
            chunks,
        }
    }

    /// Ollama streams a tool call whole in one line, then the done line.
    fn ollama_tool_call(&self, tool: &ToolCall, stream: bool) -> Reply {
        let message = |calls: bool| {
            let mut m = json!({"role": "assistant", "content": ""});
            if calls {
                m["tool_calls"] = tool.ollama();
            }
            json!({"model": self.model, "created_at": CREATED_AT, "message": m, "done": false})
        };
        let mut last = message(!stream);
        merge(
            &mut last,
            json!({"done": true, "done_reason": "stop",
                "total_duration": (TOOL_CALL_TOKENS + 5) * NANOS_PER_TOKEN, "load_duration": 2 * NANOS_PER_TOKEN,
                "prompt_eval_count": self.prompt_tokens, "prompt_eval_duration": NANOS_PER_TOKEN,
                "eval_count": TOOL_CALL_TOKENS, "eval_duration": TOOL_CALL_TOKENS * NANOS_PER_TOKEN}),
        );
        if !stream {
            return Reply::Json(last);
        }
        Reply::Stream {
            content_type: "application/x-ndjson",
            chunks: vec![ndjson(&message(true)), ndjson(&last)],
        }
    }

    fn openai(&self, stream: bool, include_usage: bool, chat: bool) -> Reply {
        let output_tokens = match self.tool {
            Some(_) => TOOL_CALL_TOKENS,
            None => self.tokens.len() as u64,
        };
        let usage = json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": output_tokens,
                           "total_tokens": self.prompt_tokens + output_tokens});
        let (object, chunk_object) = if chat {
            ("chat.completion", "chat.completion.chunk")
        } else {
            ("text_completion", "text_completion")
        };
        let head = |object: &str| {
            json!({"id": "chatcmpl-427", "object": object, "created": CREATED_UNIX,
                                         "model": self.model, "system_fingerprint": "fp_ollama"})
        };
        if !stream {
            let choice = if let Some(tool) = &self.tool {
                json!({"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": tool.openai()},
                       "finish_reason": "tool_calls"})
            } else if chat {
                json!({"index": 0, "message": {"role": "assistant", "content": self.text()}, "finish_reason": self.finish})
            } else {
                json!({"index": 0, "text": self.text(), "finish_reason": self.finish})
            };
            let mut body = head(object);
            merge(&mut body, json!({"choices": [choice], "usage": usage}));
            return Reply::Json(body);
        }
        let chunk = |text: &str, finish: Option<&str>| {
            let choice = if chat {
                json!({"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": finish})
            } else {
                json!({"index": 0, "text": text, "finish_reason": finish})
            };
            let mut c = head(chunk_object);
            merge(&mut c, json!({"choices": [choice]}));
            c
        };
        let mut chunks: Vec<Bytes> = match &self.tool {
            Some(tool) => {
                let delta = |delta: Value, finish: Option<&str>| {
                    let mut c = head(chunk_object);
                    merge(
                        &mut c,
                        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                    );
                    sse(&c)
                };
                let mut chunks: Vec<Bytes> = tool
                    .openai_deltas()
                    .into_iter()
                    .map(|d| delta(d, None))
                    .collect();
                chunks.push(delta(json!({}), Some("tool_calls")));
                chunks
            }
            None => {
                let mut chunks: Vec<Bytes> =
                    self.tokens.iter().map(|t| sse(&chunk(t, None))).collect();
                chunks.push(sse(&chunk("", Some(self.finish))));
                chunks
            }
        };
        if include_usage {
            let mut c = head(chunk_object);
            merge(&mut c, json!({"choices": [], "usage": usage}));
            chunks.push(sse(&c));
        }
        chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Reply::Stream {
            content_type: "text/event-stream",
            chunks,
        }
    }

    fn text(&self) -> String {
        self.tokens.concat()
    }
}

fn answer_tokens(answer: &str, limit: Option<u64>) -> Vec<String> {
    let words: Vec<&str> = answer.split(' ').collect();
    let n = limit.map_or(words.len(), |l| (l as usize).min(words.len()));
    words[..n]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                (*w).to_owned()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// One token per whitespace-separated word of the prompt, messages or input.
fn prompt_tokens(req: &Value) -> u64 {
    let words = |v: &Value| {
        v.as_str()
            .map_or(0, |s| s.split_whitespace().count() as u64)
    };
    let from_messages = req.get("messages").and_then(Value::as_array).map(|msgs| {
        msgs.iter()
            .map(|m| m.get("content").map_or(0, words))
            .sum::<u64>()
    });
    let from_input = req.get("input").map(|i| match i {
        Value::Array(items) => items.iter().map(words).sum(),
        other => words(other),
    });
    from_messages
        .or(from_input)
        .or_else(|| req.get("prompt").map(words))
        .unwrap_or(0)
        .max(1)
}

fn input_count(req: &Value) -> usize {
    req.get("input")
        .and_then(Value::as_array)
        .map_or(1, Vec::len)
}

fn include_usage(req: &Value) -> bool {
    req.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn embed(model: &str, prompt_tokens: u64, inputs: usize) -> Value {
    let embeddings: Vec<Value> = (0..inputs).map(vector).collect();
    json!({"model": model, "embeddings": embeddings, "total_duration": 14_143_917u64,
           "load_duration": 1_019_500u64, "prompt_eval_count": prompt_tokens})
}

fn openai_embeddings(model: &str, prompt_tokens: u64, inputs: usize) -> Value {
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "embedding": vector(i), "index": i}))
        .collect();
    json!({"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}})
}

fn vector(seed: usize) -> Value {
    json!((0..8)
        .map(|i| ((seed * 8 + i) as f64 * 0.137).sin())
        .collect::<Vec<f64>>())
}

pub fn tags() -> Value {
    json!({"models": [{"name": "llama3.2:1b", "model": "llama3.2:1b", "modified_at": CREATED_AT,
        "size": 1_321_098_329u64, "digest": "baf6a787fdffd633537aa2eb51cfd54cb93ff08e28040095462bb63daf552878",
        "details": {"format": "gguf", "family": "llama", "parameter_size": "1.2B", "quantization_level": "Q8_0"}}]})
}

pub fn models() -> Value {
    json!({"object": "list", "data": [{"id": "llama3.2:1b", "object": "model", "created": CREATED_UNIX, "owned_by": "library"}]})
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

fn ndjson(v: &Value) -> Bytes {
    let mut line = v.to_string();
    line.push('\n');
    Bytes::from(line)
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_follow_the_request() {
        let req = json!({"model": "m", "prompt": "why is the sky blue", "stream": false, "options": {"num_predict": 3}});
        let Some(Reply::Json(v)) = reply("/api/generate", &req) else {
            panic!("expected JSON")
        };
        assert_eq!(v["prompt_eval_count"], 5);
        assert_eq!(v["eval_count"], 3);
        assert_eq!(v["response"], "The sky looks");
        assert_eq!(v["done_reason"], "length");
    }

    #[test]
    fn openai_stream_ends_with_usage_and_done() {
        let req = json!({"model": "m", "messages": [{"role": "user", "content": "hi there"}],
                         "stream": true, "stream_options": {"include_usage": true}});
        let Some(Reply::Stream { chunks, .. }) = reply("/v1/chat/completions", &req) else {
            panic!()
        };
        let n = chunks.len();
        assert_eq!(&chunks[n - 1][..], b"data: [DONE]\n\n");
        assert!(std::str::from_utf8(&chunks[n - 2])
            .unwrap()
            .contains("\"prompt_tokens\":2"));
    }
}
