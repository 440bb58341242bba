//! Reads GenAI usage from a response as its frames pass: NDJSON lines
//! (Ollama), SSE `data:` events (OpenAI-compatible), or one JSON body.
//!
//! Lines and events may be split across frames anywhere; the tap keeps only
//! the unfinished line (bounded). A line that does not parse is skipped; a
//! line or body over the bound makes the tap give up. Either way the frames
//! themselves are never touched.

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

/// Longest NDJSON line or SSE event kept while incomplete.
const MAX_LINE: usize = 1 << 20;
/// Largest non-streamed JSON body parsed (embeddings can be large).
const MAX_BODY: usize = 4 << 20;

/// What the response said about the generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenAiUsage {
    pub response_model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub finish_reasons: Vec<String>,
    /// When the first chunk with non-empty content arrived.
    pub first_token_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Ndjson,
    Sse,
    Json,
}

#[derive(Debug)]
pub struct ResponseTap {
    framing: Framing,
    /// The unfinished line (NDJSON, SSE) or the body so far (JSON).
    pending: Vec<u8>,
    /// `data:` lines of the SSE event being read.
    event: Vec<u8>,
    first_data_at: Option<Instant>,
    gave_up: bool,
    usage: GenAiUsage,
}

impl ResponseTap {
    /// A tap for a response of `content_type`; `streaming` (what the request
    /// asked for) decides when the content type says nothing useful.
    pub fn new(content_type: Option<&str>, streaming: bool) -> Self {
        let media = content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let framing = match media.as_deref() {
            Some("application/x-ndjson" | "application/jsonl" | "application/ndjson") => {
                Framing::Ndjson
            }
            Some("text/event-stream") => Framing::Sse,
            Some("application/json") => Framing::Json,
            _ if streaming => Framing::Ndjson,
            _ => Framing::Json,
        };
        Self {
            framing,
            pending: Vec::new(),
            event: Vec::new(),
            first_data_at: None,
            gave_up: false,
            usage: GenAiUsage::default(),
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.gave_up || data.is_empty() {
            return;
        }
        self.first_data_at.get_or_insert_with(Instant::now);
        match self.framing {
            Framing::Json => {
                if self.pending.len() + data.len() > MAX_BODY {
                    self.give_up();
                } else {
                    self.pending.extend_from_slice(data);
                }
            }
            Framing::Ndjson | Framing::Sse => self.feed_lines(data),
        }
    }

    /// The usage seen, once the body has ended (or been cut).
    pub fn finish(mut self) -> GenAiUsage {
        if !self.gave_up {
            match self.framing {
                Framing::Json => {
                    let body = std::mem::take(&mut self.pending);
                    if self.apply(&body) {
                        self.usage.first_token_at = self.first_data_at;
                    }
                }
                // A last line without its newline still counts.
                Framing::Ndjson => {
                    let line = std::mem::take(&mut self.pending);
                    self.line(&line);
                }
                Framing::Sse => {
                    let line = std::mem::take(&mut self.pending);
                    self.line(&line);
                    self.line(b"");
                }
            }
        }
        self.usage
    }

    fn give_up(&mut self) {
        self.gave_up = true;
        self.pending = Vec::new();
        self.event = Vec::new();
    }

    fn feed_lines(&mut self, mut data: &[u8]) {
        while let Some(newline) = memchr::memchr(b'\n', data) {
            let (head, rest) = data.split_at(newline);
            if self.pending.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(head);
                self.line(&line);
                line.clear();
                self.pending = line;
            }
            if self.gave_up {
                return;
            }
            data = &rest[1..];
        }
        if self.pending.len() + data.len() > MAX_LINE {
            self.give_up();
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match self.framing {
            Framing::Ndjson | Framing::Json => {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    self.apply(line);
                }
            }
            Framing::Sse => self.sse_line(line),
        }
    }

    /// SSE: `data:` lines accumulate until a blank line ends the event.
    fn sse_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if !event.is_empty() && event != b"[DONE]" {
                self.apply(&event);
            }
            return;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.event.len() + value.len() > MAX_LINE {
                self.give_up();
                return;
            }
            if !self.event.is_empty() {
                self.event.push(b'\n');
            }
            self.event.extend_from_slice(value);
        }
    }

    /// Applies one JSON object; true when it carried content.
    fn apply(&mut self, json: &[u8]) -> bool {
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(json) else {
            return false;
        };
        let usage = &mut self.usage;
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            if usage.response_model.as_deref() != Some(&model) {
                usage.response_model = Some(model.into_owned());
            }
        }
        let mut content = chunk.response.as_deref().is_some_and(|r| !r.is_empty())
            || chunk
                .message
                .as_ref()
                .and_then(|m| m.content.as_deref())
                .is_some_and(|c| !c.is_empty());
        for choice in chunk.choices.iter().flatten() {
            content |= choice.text.as_deref().is_some_and(|t| !t.is_empty())
                || choice
                    .message
                    .as_ref()
                    .and_then(|m| m.content.as_deref())
                    .is_some_and(|c| !c.is_empty())
                || choice
                    .delta
                    .as_ref()
                    .and_then(|d| d.content.as_deref())
                    .is_some_and(|c| !c.is_empty());
            if let Some(reason) = &choice.finish_reason {
                push_reason(&mut usage.finish_reasons, reason);
            }
        }
        if chunk.done == Some(true) {
            if let Some(reason) = &chunk.done_reason {
                push_reason(&mut usage.finish_reasons, reason);
            }
        }
        if chunk.prompt_eval_count.is_some() {
            usage.input_tokens = chunk.prompt_eval_count;
        }
        if chunk.eval_count.is_some() {
            usage.output_tokens = chunk.eval_count;
        }
        // Some servers repeat a zeroed `usage` on every chunk: only a real one counts.
        if let Some(u) = chunk
            .usage
            .filter(|u| u.prompt_tokens.unwrap_or(0) > 0 || u.completion_tokens.unwrap_or(0) > 0)
        {
            usage.input_tokens = u.prompt_tokens.or(usage.input_tokens);
            usage.output_tokens = u.completion_tokens.or(usage.output_tokens);
        }
        if content && usage.first_token_at.is_none() && self.framing != Framing::Json {
            usage.first_token_at = Some(Instant::now());
        }
        content
    }
}

fn push_reason(reasons: &mut Vec<String>, reason: &str) {
    if !reason.is_empty() && !reasons.iter().any(|r| r == reason) && reasons.len() < 8 {
        reasons.push(reason.to_owned());
    }
}

/// Every field any of the supported APIs puts in a chunk or response.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    response: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Content<'a>>,
    done: Option<bool>,
    #[serde(borrow)]
    done_reason: Option<Cow<'a, str>>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delta: Option<Content<'a>>,
    #[serde(borrow)]
    message: Option<Content<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_ollama::Reply;
    use proptest::prelude::*;

    fn run(content_type: &str, streaming: bool, frames: &[&[u8]]) -> GenAiUsage {
        let mut tap = ResponseTap::new(Some(content_type), streaming);
        for f in frames {
            tap.feed(f);
        }
        tap.finish()
    }

    fn stream_of(path: &str, request: serde_json::Value) -> (String, Vec<u8>) {
        match crate::mock_ollama::reply(path, &request) {
            Some(Reply::Stream {
                content_type,
                chunks,
            }) => (content_type.to_owned(), chunks.concat()),
            Some(Reply::Json(v)) => ("application/json".to_owned(), v.to_string().into_bytes()),
            _ => panic!("no reply"),
        }
    }

    #[test]
    fn ollama_generate_stream() {
        let (ct, body) = stream_of(
            "/api/generate",
            serde_json::json!({"model": "llama3.2:1b", "prompt": "why is the sky blue", "options": {"num_predict": 4}}),
        );
        let usage = run(&ct, true, &[&body]);
        assert_eq!(usage.response_model.as_deref(), Some("llama3.2:1b"));
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(5), Some(4))
        );
        assert_eq!(usage.finish_reasons, vec!["length".to_owned()]);
        assert!(usage.first_token_at.is_some());
    }

    #[test]
    fn openai_stream_with_and_without_usage() {
        let req = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "a b c"}], "stream": true, "stream_options": {"include_usage": true}});
        let (ct, body) = stream_of("/v1/chat/completions", req);
        let usage = run(&ct, true, &[&body]);
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(3), Some(19))
        );
        assert_eq!(usage.finish_reasons, vec!["stop".to_owned()]);
        let (ct, body) = stream_of(
            "/v1/chat/completions",
            serde_json::json!({"model": "m", "messages": [], "stream": true}),
        );
        let usage = run(&ct, true, &[&body]);
        assert_eq!((usage.input_tokens, usage.output_tokens), (None, None));
        assert!(usage.first_token_at.is_some());
    }

    #[test]
    fn zeroed_usage_on_intermediate_chunks_is_ignored() {
        let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0}}\n\n\
                     data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n\
                     data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0}}\n\ndata: [DONE]\n\n";
        let usage = run("text/event-stream", true, &[body]);
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(7), Some(2))
        );
    }

    #[test]
    fn non_streamed_json_and_embeddings() {
        let (ct, body) = stream_of(
            "/api/chat",
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x y"}], "stream": false}),
        );
        let usage = run(&ct, false, &[&body[..10], &body[10..]]);
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(2), Some(19))
        );
        assert!(usage.first_token_at.is_some());
        let (ct, body) = stream_of(
            "/api/embed",
            serde_json::json!({"model": "e", "input": ["one two", "three"]}),
        );
        let usage = run(&ct, false, &[&body]);
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.first_token_at.is_some()
            ),
            (Some(3), None, false)
        );
        let (ct, body) = stream_of(
            "/v1/embeddings",
            serde_json::json!({"model": "e", "input": "one two three four"}),
        );
        assert_eq!(run(&ct, false, &[&body]).input_tokens, Some(4));
    }

    #[test]
    fn malformed_or_truncated_streams_give_up_quietly() {
        let usage = run(
            "application/x-ndjson",
            true,
            &[
                b"{\"model\":\"m\",\"response\":\"a\"}\nnot json\n{\"done\":true,\"eval_count\":3",
                b"}\n",
            ],
        );
        assert_eq!(
            (usage.response_model.as_deref(), usage.output_tokens),
            (Some("m"), Some(3))
        );
        let huge = vec![b'x'; MAX_LINE + 10];
        let usage = run(
            "application/x-ndjson",
            true,
            &[&huge, b"\n{\"eval_count\":3}\n"],
        );
        assert_eq!(usage, GenAiUsage::default());
        let usage = run(
            "text/event-stream",
            true,
            &[b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"],
        );
        assert_eq!(
            usage.input_tokens,
            Some(1),
            "an event cut at the end still counts"
        );
        assert_eq!(
            run("application/json", false, &[b"{\"model\":"]),
            GenAiUsage::default()
        );
    }

    /// Runs `body` through the tap split at `points` (sorted offsets).
    fn split_run(ct: &str, body: &[u8], points: &[usize]) -> GenAiUsage {
        let mut tap = ResponseTap::new(Some(ct), true);
        let mut start = 0;
        for &p in points {
            tap.feed(&body[start..p]);
            start = p;
        }
        tap.feed(&body[start..]);
        tap.finish()
    }

    fn comparable(u: GenAiUsage) -> (Option<String>, Option<u64>, Option<u64>, Vec<String>, bool) {
        (
            u.response_model,
            u.input_tokens,
            u.output_tokens,
            u.finish_reasons,
            u.first_token_at.is_some(),
        )
    }

    #[test]
    fn every_single_split_point_gives_the_same_result() {
        let cases = [
            stream_of(
                "/api/chat",
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "options": {"num_predict": 3}}),
            ),
            stream_of(
                "/v1/chat/completions",
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "a"}], "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 3}),
            ),
        ];
        for (ct, body) in cases {
            let whole = comparable(split_run(&ct, &body, &[]));
            assert!(whole.2.is_some());
            for p in 0..=body.len() {
                assert_eq!(
                    comparable(split_run(&ct, &body, &[p])),
                    whole,
                    "{ct} split at {p}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_splits_give_the_same_result(cuts in proptest::collection::vec(any::<usize>(), 0..12), sse in any::<bool>()) {
            let (ct, body) = if sse {
                stream_of("/v1/completions", serde_json::json!({"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}}))
            } else {
                stream_of("/api/generate", serde_json::json!({"model": "m", "prompt": "x y z"}))
            };
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            prop_assert_eq!(comparable(split_run(&ct, &body, &points)), comparable(split_run(&ct, &body, &[])));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024), ct in 0usize..3) {
            let content_type = ["application/x-ndjson", "text/event-stream", "application/json"][ct];
            let mut tap = ResponseTap::new(Some(content_type), true);
            for chunk in bytes.chunks(7) {
                tap.feed(chunk);
            }
            let _ = tap.finish();
        }
    }
}
