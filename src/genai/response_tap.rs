//! Reads GenAI usage from a response as its frames pass: NDJSON lines
//! (Ollama), SSE `data:` events (OpenAI-compatible), or one JSON body.
//!
//! Nothing of the body is held: each line, event or body runs through the
//! incremental [`JsonScanner`], which keeps only the few values read here
//! (bounded strings, integers), so a 64 MiB embeddings answer or a 1 MiB
//! `context` array costs the same few hundred bytes as a short chunk.
//! Values are staged per document and applied only when it ends as valid
//! JSON: a line that turns out malformed halfway contributes nothing, as
//! when it was parsed whole. The frames themselves are never touched.

use std::sync::Arc;
use std::time::Instant;

use super::content::{CaptureConfig, Rendered, ResponseContent};
use super::json_scan::{JsonScanner, Outcome, Scalar, Visitor};
use super::tee::Tee;
use super::tool_calls::{CallCounter, StagedCalls, ToolCalls};

/// Distinct finish reasons kept (a response has one per choice).
const MAX_REASONS: usize = 8;

/// What the response said about the generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenAiUsage {
    pub response_model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub finish_reasons: Vec<String>,
    /// When the first chunk with non-empty content arrived.
    pub first_token_at: Option<Instant>,
    pub tool_calls: ToolCalls,
    /// `gen_ai.output.messages`, when content is captured.
    pub output: Option<Rendered>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Ndjson,
    Sse,
    Json,
}

/// Where an SSE line is: its start decides whether it is `data:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SseLine {
    /// `matched` bytes of `data:` seen at the line's start.
    Start { matched: u8 },
    /// A lone `\r` so far: a blank line if `\n` follows.
    CarriageReturn,
    /// Just after `data:`, where one space is dropped.
    DataStart,
    /// In a `data:` value, which goes to the scanner.
    Data,
    /// Some other field or a comment: skipped.
    Other,
}

#[derive(Debug)]
pub struct ResponseTap {
    framing: Framing,
    scanner: JsonScanner,
    chunk: Chunk,
    sse_line: SseLine,
    /// The SSE event being read has had a `data:` line.
    event_has_data: bool,
    first_data_at: Option<Instant>,
    usage: GenAiUsage,
    calls: CallCounter,
    /// The content, when captured (with its configuration).
    content: Option<(ResponseContent, Arc<CaptureConfig>)>,
}

impl ResponseTap {
    /// A tap for a response of `content_type`; `streaming` (what the request
    /// asked for) decides when the content type says nothing useful.
    /// `capture`: also capture the answer's content.
    pub fn new(
        content_type: Option<&str>,
        streaming: bool,
        capture: Option<Arc<CaptureConfig>>,
    ) -> Self {
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
            scanner: JsonScanner::default(),
            chunk: Chunk::default(),
            sse_line: SseLine::Start { matched: 0 },
            event_has_data: false,
            first_data_at: None,
            usage: GenAiUsage::default(),
            calls: CallCounter::default(),
            content: capture.map(|c| (ResponseContent::new(c.max_bytes), c)),
        }
    }

    /// Runs bytes of the current document through the usage visitor, and
    /// the content visitor when capturing (off, the scan is what it was).
    fn scan(&mut self, bytes: &[u8]) {
        match &mut self.content {
            Some((content, _)) => self.scanner.feed(bytes, &mut Tee(&mut self.chunk, content)),
            None => self.scanner.feed(bytes, &mut self.chunk),
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.first_data_at.get_or_insert_with(Instant::now);
        match self.framing {
            Framing::Json => self.scan(data),
            Framing::Ndjson => self.feed_ndjson(data),
            Framing::Sse => self.feed_sse(data),
        }
    }

    /// The usage seen, once the body has ended (or been cut).
    pub fn finish(mut self) -> GenAiUsage {
        match self.framing {
            Framing::Json => {
                if self.end_document() {
                    self.usage.first_token_at = self.first_data_at;
                }
            }
            // A last line without its newline still counts.
            Framing::Ndjson => {
                self.end_document();
            }
            Framing::Sse => self.end_event(),
        }
        self.usage.tool_calls = self.calls.tool_calls();
        if let Some((content, capture)) = &self.content {
            self.usage.output = Some(content.transcript().render(&capture.redactor, true));
        }
        self.usage
    }

    /// Bytes the tap holds, inline and on the heap, whatever the body's size.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.scanner.heap_bytes()
            + self.chunk.heap_bytes()
            + string_bytes(self.usage.response_model.iter())
            + vec_bytes(&self.usage.finish_reasons)
            + self.calls.heap_bytes()
            + self
                .content
                .as_ref()
                .map_or(0, |(c, _)| c.heap_bytes() + c.transcript().held())
    }

    fn feed_ndjson(&mut self, mut data: &[u8]) {
        while let Some(newline) = memchr::memchr(b'\n', data) {
            self.scan(&data[..newline]);
            self.end_document();
            data = &data[newline + 1..];
        }
        self.scan(data);
    }

    fn feed_sse(&mut self, mut data: &[u8]) {
        while let Some(&b) = data.first() {
            let mut used = 1;
            self.sse_line = match (self.sse_line, b) {
                (SseLine::Start { matched: 0 }, b'\n') | (SseLine::CarriageReturn, b'\n') => {
                    self.end_event();
                    SseLine::Start { matched: 0 }
                }
                (SseLine::Start { matched: 0 }, b'\r') => SseLine::CarriageReturn,
                (SseLine::Start { matched }, _) if b == b"data:"[matched as usize] => {
                    if matched == 4 {
                        SseLine::DataStart
                    } else {
                        SseLine::Start {
                            matched: matched + 1,
                        }
                    }
                }
                (SseLine::DataStart, _) => {
                    // The event's data lines are joined with newlines.
                    if self.event_has_data {
                        self.scan(b"\n");
                    }
                    self.event_has_data = true;
                    used = usize::from(b == b' ');
                    SseLine::Data
                }
                (SseLine::Data | SseLine::Other, _) | (_, b'\n') => {
                    let end = memchr::memchr(b'\n', data);
                    let line = &data[..end.unwrap_or(data.len())];
                    if self.sse_line == SseLine::Data {
                        // A `\r` before the newline is JSON whitespace: no need to strip it.
                        self.scan(line);
                    }
                    used = end.map_or(data.len(), |end| end + 1);
                    match end {
                        Some(_) => SseLine::Start { matched: 0 },
                        None => self.sse_line,
                    }
                }
                _ => SseLine::Other,
            };
            data = &data[used..];
        }
    }

    /// A blank line (or the body's end) dispatches the event read so far.
    fn end_event(&mut self) {
        if self.sse_line == SseLine::DataStart {
            self.event_has_data = true;
        }
        if std::mem::take(&mut self.event_has_data) {
            self.end_document();
        }
    }

    /// Applies the document just read if it was valid JSON; true when it
    /// carried content. Either way the next document starts afresh.
    fn end_document(&mut self) -> bool {
        let outcome = match &mut self.content {
            Some((content, _)) => self.scanner.end(&mut Tee(&mut self.chunk, content)),
            None => self.scanner.end(&mut self.chunk),
        };
        let content = outcome == Outcome::Complete && !self.chunk.invalid && self.commit();
        self.scanner.reset();
        self.chunk.reset();
        if let Some((content, _)) = &mut self.content {
            content.end_document();
        }
        content
    }

    /// Applies the staged values of a valid chunk; true when it carried content.
    fn commit(&mut self) -> bool {
        self.calls.commit(&self.chunk.calls);
        let chunk = &self.chunk;
        let usage = &mut self.usage;
        if let Some(model) = chunk.model.as_deref().filter(|m| !m.is_empty()) {
            if usage.response_model.as_deref() != Some(model) {
                usage.response_model = Some(model.to_owned());
            }
        }
        for reason in &chunk.reasons {
            push_reason(&mut usage.finish_reasons, reason);
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
        let (prompt, completion) = (chunk.prompt_tokens, chunk.completion_tokens);
        if prompt.unwrap_or(0) > 0 || completion.unwrap_or(0) > 0 {
            usage.input_tokens = prompt.or(usage.input_tokens);
            usage.output_tokens = completion.or(usage.output_tokens);
        }
        if chunk.content && usage.first_token_at.is_none() && self.framing != Framing::Json {
            usage.first_token_at = Some(Instant::now());
        }
        chunk.content
    }
}

fn push_reason(reasons: &mut Vec<String>, reason: &str) {
    if !reason.is_empty() && !reasons.iter().any(|r| r == reason) && reasons.len() < MAX_REASONS {
        reasons.push(reason.to_owned());
    }
}

fn string_bytes<'a>(strings: impl Iterator<Item = &'a String>) -> usize {
    strings.map(String::capacity).sum()
}

fn vec_bytes(strings: &Vec<String>) -> usize {
    strings.capacity() * std::mem::size_of::<String>() + string_bytes(strings.iter())
}

/// The containers whose keys matter, by what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    /// `message` (top level or in a choice) or a choice's `delta`.
    Content,
    Usage,
    Choices,
    Choice,
    ToolCalls,
    ToolCall,
    Function,
    Ignored,
}

/// What the next value is, by its key and container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    TopLevel,
    Model,
    /// A string whose non-emptiness means a token arrived.
    ContentText,
    /// An object with a `content` string.
    ContentObject,
    /// A choice's streamed `delta`: a `ContentObject` whose tool calls come
    /// in fragments.
    DeltaObject,
    ChoiceIndex,
    ToolCalls,
    ToolCallItem,
    CallIndex,
    Function,
    ToolName,
    Done,
    DoneReason,
    PromptEvalCount,
    EvalCount,
    Choices,
    ChoiceItem,
    FinishReason,
    Usage,
    PromptTokens,
    CompletionTokens,
    Other,
}

/// The deepest container read: `choices` → a choice → its `delta` →
/// `tool_calls` → a call → its `function`.
const TRACKED: usize = 7;

/// One chunk's values, staged until it proves valid. Types follow the serde
/// model this replaced: a known key with a value of the wrong type makes the
/// chunk invalid, `null` counts as absent, other keys are skipped. (Two
/// differences nobody sends: a repeated key's last value wins where serde
/// failed, and an array in place of an object is invalid where serde's
/// derive would have read it positionally.) Strings keep their buffers from
/// one chunk to the next: Ollama repeats the model on every line.
#[derive(Debug)]
struct Chunk {
    nodes: [Node; TRACKED],
    depth: usize,
    key: Field,
    invalid: bool,
    model: Option<String>,
    content: bool,
    reasons: Vec<String>,
    done: Option<bool>,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    /// The `index` and position of the choice being read.
    choice_index: Option<u64>,
    choice_position: u64,
    /// The choice the `message` or `delta` being read belongs to.
    content_choice: u64,
    in_delta: bool,
    call_position: u64,
    /// Tool calls (wrong types are skipped, never invalid: the usage's
    /// serde model had no tool calls).
    calls: StagedCalls,
    /// Buffers of the last chunk's strings, for the next one's.
    spare: Vec<String>,
}

impl Default for Chunk {
    fn default() -> Self {
        Self {
            nodes: [Node::Ignored; TRACKED],
            depth: 0,
            key: Field::Other,
            invalid: false,
            model: None,
            content: false,
            reasons: Vec::new(),
            done: None,
            done_reason: None,
            prompt_eval_count: None,
            eval_count: None,
            prompt_tokens: None,
            completion_tokens: None,
            choice_index: None,
            choice_position: 0,
            content_choice: 0,
            in_delta: false,
            call_position: 0,
            calls: StagedCalls::default(),
            spare: Vec::new(),
        }
    }
}

impl Chunk {
    /// Ready for the next document.
    fn reset(&mut self) {
        let mut spare = std::mem::take(&mut self.spare);
        let mut reasons = std::mem::take(&mut self.reasons);
        let mut calls = std::mem::take(&mut self.calls);
        calls.clear();
        spare.extend(self.model.take());
        spare.extend(self.done_reason.take());
        spare.append(&mut reasons);
        // At most one string per kind a chunk keeps (bounded by MAX_REASONS).
        spare.truncate(MAX_REASONS + 2);
        *self = Self {
            reasons,
            calls,
            spare,
            ..Self::default()
        };
    }

    fn heap_bytes(&self) -> usize {
        string_bytes(self.model.iter().chain(&self.done_reason))
            + vec_bytes(&self.reasons)
            + vec_bytes(&self.spare)
            + self.calls.heap_bytes()
    }

    /// A copy of `text` in a spare buffer.
    fn keep(&mut self, text: &str) -> String {
        let mut s = self.spare.pop().unwrap_or_default();
        s.clear();
        s.push_str(text);
        s
    }

    fn parent(&self) -> Option<Node> {
        match self.depth {
            0 => None,
            d if d <= TRACKED => Some(self.nodes[d - 1]),
            _ => Some(Node::Ignored),
        }
    }

    /// What the value starting here is.
    fn slot(&self) -> Field {
        match self.parent() {
            None => Field::TopLevel,
            Some(Node::Choices) => Field::ChoiceItem,
            Some(Node::ToolCalls) => Field::ToolCallItem,
            Some(Node::Ignored) => Field::Other,
            Some(_) => self.key,
        }
    }
}

impl Visitor for Chunk {
    fn key(&mut self, key: Option<&[u8]>) {
        let Some(key) = key else {
            self.key = Field::Other;
            return;
        };
        self.key = match (self.parent(), key) {
            (Some(Node::Root), b"model") => Field::Model,
            (Some(Node::Root), b"response") => Field::ContentText,
            (Some(Node::Root), b"message") => Field::ContentObject,
            (Some(Node::Root), b"done") => Field::Done,
            (Some(Node::Root), b"done_reason") => Field::DoneReason,
            (Some(Node::Root), b"prompt_eval_count") => Field::PromptEvalCount,
            (Some(Node::Root), b"eval_count") => Field::EvalCount,
            (Some(Node::Root), b"choices") => Field::Choices,
            (Some(Node::Root), b"usage") => Field::Usage,
            (Some(Node::Choice), b"text") => Field::ContentText,
            (Some(Node::Choice), b"message") => Field::ContentObject,
            (Some(Node::Choice), b"delta") => Field::DeltaObject,
            (Some(Node::Choice), b"index") => Field::ChoiceIndex,
            (Some(Node::Choice), b"finish_reason") => Field::FinishReason,
            (Some(Node::Content), b"content") => Field::ContentText,
            (Some(Node::Content), b"tool_calls") => Field::ToolCalls,
            (Some(Node::ToolCall), b"index") => Field::CallIndex,
            (Some(Node::ToolCall), b"function") => Field::Function,
            (Some(Node::Function), b"name") => Field::ToolName,
            (Some(Node::Usage), b"prompt_tokens") => Field::PromptTokens,
            (Some(Node::Usage), b"completion_tokens") => Field::CompletionTokens,
            _ => Field::Other,
        };
    }

    fn keep_string(&self) -> bool {
        matches!(
            self.slot(),
            Field::Model | Field::DoneReason | Field::FinishReason | Field::ToolName
        )
    }

    fn begin(&mut self, array: bool) {
        let slot = self.slot();
        let node = match (slot, array) {
            (Field::TopLevel, false) => Node::Root,
            (Field::ContentObject | Field::DeltaObject, false) => {
                self.in_delta = slot == Field::DeltaObject;
                self.content_choice = match self.parent() {
                    Some(Node::Choice) => self
                        .choice_index
                        .unwrap_or(self.choice_position.saturating_sub(1)),
                    _ => 0,
                };
                Node::Content
            }
            (Field::Usage, false) => Node::Usage,
            (Field::Choices, true) => Node::Choices,
            (Field::ChoiceItem, false) => {
                self.choice_position += 1;
                self.choice_index = None;
                Node::Choice
            }
            (Field::ToolCalls, true) => {
                self.call_position = 0;
                Node::ToolCalls
            }
            (Field::ToolCallItem, false) => {
                self.calls
                    .begin(self.content_choice, self.in_delta, self.call_position);
                self.call_position += 1;
                Node::ToolCall
            }
            (Field::Function, false) => Node::Function,
            (
                Field::Other
                | Field::ChoiceIndex
                | Field::ToolCalls
                | Field::ToolCallItem
                | Field::CallIndex
                | Field::Function
                | Field::ToolName,
                _,
            ) => Node::Ignored,
            _ => {
                self.invalid = true;
                Node::Ignored
            }
        };
        if let Some(slot) = self.nodes.get_mut(self.depth) {
            *slot = node;
        }
        self.depth += 1;
    }

    fn end(&mut self) {
        if self.parent() == Some(Node::ToolCall) {
            self.calls.end();
        }
        self.depth -= 1;
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        let field = self.slot();
        match (field, value) {
            (Field::Other, _) => {}
            (Field::ChoiceIndex, Scalar::U64(i)) => self.choice_index = Some(i),
            (Field::CallIndex, Scalar::U64(i)) => self.calls.index(i),
            (Field::ToolName, Scalar::Str { text: Some(t), .. }) => self.calls.name(t),
            (
                Field::ChoiceIndex
                | Field::ToolCalls
                | Field::ToolCallItem
                | Field::CallIndex
                | Field::Function
                | Field::ToolName,
                _,
            ) => {}
            (Field::TopLevel | Field::ChoiceItem, _) => self.invalid = true,
            (_, Scalar::Null) => match field {
                Field::Model => self.model = None,
                Field::Done => self.done = None,
                Field::DoneReason => self.done_reason = None,
                Field::PromptEvalCount => self.prompt_eval_count = None,
                Field::EvalCount => self.eval_count = None,
                Field::PromptTokens => self.prompt_tokens = None,
                Field::CompletionTokens => self.completion_tokens = None,
                _ => {}
            },
            // A model name or reason past MAX_STRING is dropped, not kept in part.
            (Field::Model, Scalar::Str { text, .. }) => {
                self.model = text.map(|t| self.keep(t));
            }
            (Field::DoneReason, Scalar::Str { text, .. }) => {
                self.done_reason = text.map(|t| self.keep(t));
            }
            (Field::FinishReason, Scalar::Str { text, .. }) => {
                if let Some(t) = text {
                    if !t.is_empty()
                        && self.reasons.len() < MAX_REASONS
                        && !self.reasons.iter().any(|r| r == t)
                    {
                        let kept = self.keep(t);
                        self.reasons.push(kept);
                    }
                }
            }
            (Field::ContentText, Scalar::Str { empty, .. }) => self.content |= !empty,
            (Field::Done, Scalar::Bool(done)) => self.done = Some(done),
            (Field::PromptEvalCount, Scalar::U64(n)) => self.prompt_eval_count = Some(n),
            (Field::EvalCount, Scalar::U64(n)) => self.eval_count = Some(n),
            (Field::PromptTokens, Scalar::U64(n)) => self.prompt_tokens = Some(n),
            (Field::CompletionTokens, Scalar::U64(n)) => self.completion_tokens = Some(n),
            _ => self.invalid = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_ollama::Reply;
    use proptest::prelude::*;

    fn run(content_type: &str, streaming: bool, frames: &[&[u8]]) -> GenAiUsage {
        let mut tap = ResponseTap::new(Some(content_type), streaming, None);
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
        // A long garbage line contributes nothing and costs nothing; the next line counts.
        let huge = vec![b'x'; 2 << 20];
        let usage = run(
            "application/x-ndjson",
            true,
            &[&huge, b"\n{\"eval_count\":3}\n"],
        );
        assert_eq!(usage.output_tokens, Some(3));
        // A line that goes wrong after its counts applies none of them.
        let usage = run(
            "application/x-ndjson",
            true,
            &[b"{\"model\":\"m\",\"prompt_eval_count\":4,\"eval_count\":3,\"context\":[1,2,x]}\n"],
        );
        assert_eq!(usage, GenAiUsage::default());
        let usage = run(
            "text/event-stream",
            true,
            &[b"data: {\"model\":\"m\",\"usage\":{\"prompt_tokens\":1}} trailing\n\n"],
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
        let mut tap = ResponseTap::new(Some(ct), true, None);
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

    /// The bound the tap must hold whatever the body.
    const MAX_STATE: usize = 64 << 10;

    /// Feeds `body` in `frame`-byte frames; the usage and the largest state seen.
    fn bounded_run(ct: &str, streaming: bool, body: &[u8], frame: usize) -> (GenAiUsage, usize) {
        let mut tap = ResponseTap::new(Some(ct), streaming, None);
        let mut most = tap.state_bytes();
        for f in body.chunks(frame.max(1)) {
            tap.feed(f);
            most = most.max(tap.state_bytes());
        }
        (tap.finish(), most)
    }

    /// A vector of `n` floats as an embedding server writes them.
    fn floats(n: usize, seed: usize) -> String {
        let mut s = String::from("[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            let v = ((i * 7919 + seed * 104_729) % 20_000) as f64 / 10_000.0 - 1.0;
            s.push_str(&format!("{v:.7}"));
        }
        s.push(']');
        s
    }

    #[test]
    fn sixty_four_mib_of_embeddings_in_bounded_state() {
        // Generated frame by frame: the body never exists whole.
        let row = floats(1024, 1);
        let mut tap = ResponseTap::new(Some("application/json; charset=utf-8"), false, None);
        let mut frame = Vec::with_capacity(64 << 10);
        let mut total = 0usize;
        let mut most = 0;
        let mut send = |tap: &mut ResponseTap, frame: &mut Vec<u8>, bytes: &[u8]| {
            for piece in bytes.chunks(64 << 10) {
                let room = (64 << 10) - frame.len();
                let (now, later) = piece.split_at(piece.len().min(room));
                frame.extend_from_slice(now);
                if frame.len() == 64 << 10 {
                    tap.feed(frame);
                    total += frame.len();
                    most = most.max(tap.state_bytes());
                    frame.clear();
                }
                frame.extend_from_slice(later);
            }
        };
        send(
            &mut tap,
            &mut frame,
            br#"{"model":"nomic-embed-text","embeddings":["#,
        );
        let rows = (64 << 20) / row.len() + 1;
        for r in 0..rows {
            if r > 0 {
                send(&mut tap, &mut frame, b",");
            }
            send(&mut tap, &mut frame, row.as_bytes());
        }
        send(
            &mut tap,
            &mut frame,
            br#"],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":12}"#,
        );
        tap.feed(&frame);
        total += frame.len();
        most = most.max(tap.state_bytes());
        assert!(total > 64 << 20);
        assert!(most <= MAX_STATE, "{most} bytes of tap state");
        println!("64 MiB embeddings: at most {most} bytes of tap state");
        let usage = tap.finish();
        assert_eq!(usage.response_model.as_deref(), Some("nomic-embed-text"));
        assert_eq!((usage.input_tokens, usage.output_tokens), (Some(12), None));
        assert!(usage.first_token_at.is_none());
    }

    #[test]
    fn openai_embeddings_with_usage_after_the_vectors() {
        let data: Vec<String> = (0..600)
            .map(|i| {
                format!(
                    r#"{{"object":"embedding","index":{i},"embedding":{}}}"#,
                    floats(1536, i)
                )
            })
            .collect();
        let body = format!(
            r#"{{"object":"list","data":[{}],"model":"text-embedding-3-small","usage":{{"prompt_tokens":8,"total_tokens":8}}}}"#,
            data.join(",")
        );
        assert!(body.len() > 8 << 20);
        let (usage, most) = bounded_run("application/json", false, body.as_bytes(), 16 << 10);
        assert!(most <= MAX_STATE, "{most}");
        assert_eq!(
            usage.response_model.as_deref(),
            Some("text-embedding-3-small")
        );
        assert_eq!(usage.input_tokens, Some(8));
    }

    /// Ollama's stream for `/api/generate`, its last line carrying `context`.
    fn generate_stream(context_len: usize) -> Vec<u8> {
        let mut body = Vec::new();
        for word in ["The", " sky", " is", " blue"] {
            body.extend_from_slice(
                format!(
                    "{{\"model\":\"llama3.2:1b\",\"created_at\":\"2025-01-01T00:00:00Z\",\"response\":\"{word}\",\"done\":false}}\n"
                )
                .as_bytes(),
            );
        }
        let context: Vec<String> = (0..context_len)
            .map(|i| (128_000 + i % 5_000).to_string())
            .collect();
        body.extend_from_slice(
            format!(
                "{{\"model\":\"llama3.2:1b\",\"created_at\":\"2025-01-01T00:00:01Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"context\":[{}],\"total_duration\":5043500667,\"prompt_eval_count\":26,\"prompt_eval_duration\":325953000,\"eval_count\":290,\"eval_duration\":4709213000}}\n",
                context.join(",")
            )
            .as_bytes(),
        );
        body
    }

    #[test]
    fn ndjson_final_line_with_a_one_mib_context() {
        let body = generate_stream(150_000);
        assert!(body.len() > 1 << 20);
        for frame in [1 << 10, 4 << 10, 64 << 10, body.len()] {
            let (usage, most) = bounded_run("application/x-ndjson", true, &body, frame);
            assert!(most <= MAX_STATE, "{most}");
            assert_eq!(usage.response_model.as_deref(), Some("llama3.2:1b"));
            assert_eq!(
                (usage.input_tokens, usage.output_tokens),
                (Some(26), Some(290))
            );
            assert_eq!(usage.finish_reasons, ["stop"]);
            assert!(usage.first_token_at.is_some());
        }
    }

    /// An OpenAI chat stream as the API sends it, usage in the last chunk.
    fn openai_sse(newline: &str) -> Vec<u8> {
        let chunk = |rest: &str| {
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_1\",{rest}}}{newline}{newline}"
            )
        };
        let mut body = format!(": keep-alive{newline}{newline}");
        body += &chunk(
            r#""choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null"#,
        );
        body += &chunk(
            r#""choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null"#,
        );
        body += &chunk(
            r#""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null"#,
        );
        body += &chunk(
            r#""choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
        );
        body += &format!("event: done{newline}data: [DONE]{newline}{newline}");
        body.into_bytes()
    }

    #[test]
    fn openai_sse_stream_with_usage_in_the_last_chunk() {
        for newline in ["\n", "\r\n"] {
            let body = openai_sse(newline);
            let (usage, most) = bounded_run("text/event-stream; charset=utf-8", true, &body, 7);
            assert!(most <= MAX_STATE);
            assert_eq!(
                usage.response_model.as_deref(),
                Some("gpt-4o-mini-2024-07-18")
            );
            assert_eq!(
                (usage.input_tokens, usage.output_tokens),
                (Some(9), Some(2))
            );
            assert_eq!(usage.finish_reasons, ["stop"]);
            assert!(usage.first_token_at.is_some());
        }
        // Data split over two `data:` lines is one event.
        let usage = run(
            "text/event-stream",
            true,
            &[b"data: {\"usage\":\ndata: {\"prompt_tokens\":4}}\n\n"],
        );
        assert_eq!(usage.input_tokens, Some(4));
    }

    /// A non-streamed OpenAI chat completion.
    const OPENAI_CHAT: &[u8] = br#"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default"
}
"#;

    #[test]
    fn openai_chat_completion_not_streamed() {
        let (usage, most) = bounded_run("application/json", false, OPENAI_CHAT, 5);
        assert!(most <= MAX_STATE);
        assert_eq!(usage.response_model.as_deref(), Some("gpt-4.1-2025-04-14"));
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (Some(19), Some(10))
        );
        assert_eq!(usage.finish_reasons, ["stop"]);
        assert!(usage.first_token_at.is_some());
        // Cut short, it says nothing.
        let (usage, _) = bounded_run(
            "application/json",
            false,
            &OPENAI_CHAT[..OPENAI_CHAT.len() - 3],
            64,
        );
        assert_eq!(usage, GenAiUsage::default());
    }

    /// The serde model the scanner replaced, kept as the oracle of its semantics.
    mod oracle {
        use serde::Deserialize;

        #[derive(Deserialize)]
        pub struct Chunk {
            pub model: Option<String>,
            pub response: Option<String>,
            pub message: Option<Content>,
            pub done: Option<bool>,
            pub done_reason: Option<String>,
            pub prompt_eval_count: Option<u64>,
            pub eval_count: Option<u64>,
            pub choices: Option<Vec<Choice>>,
            pub usage: Option<Usage>,
        }
        #[derive(Deserialize)]
        pub struct Content {
            pub content: Option<String>,
        }
        #[derive(Deserialize)]
        pub struct Choice {
            pub text: Option<String>,
            pub delta: Option<Content>,
            pub message: Option<Content>,
            pub finish_reason: Option<String>,
        }
        #[derive(Deserialize)]
        pub struct Usage {
            pub prompt_tokens: Option<u64>,
            pub completion_tokens: Option<u64>,
        }
    }

    /// What the serde tap made of one NDJSON line.
    fn oracle_usage(line: &[u8]) -> (Option<String>, Option<u64>, Option<u64>, Vec<String>, bool) {
        let mut u = (None, None, None, Vec::new(), false);
        let Ok(c) = serde_json::from_slice::<oracle::Chunk>(line) else {
            return u;
        };
        let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        u.0 = c.model.filter(|m| !m.is_empty());
        u.4 = nonempty(&c.response) || c.message.as_ref().is_some_and(|m| nonempty(&m.content));
        for ch in c.choices.iter().flatten() {
            u.4 |= nonempty(&ch.text)
                || ch.message.as_ref().is_some_and(|m| nonempty(&m.content))
                || ch.delta.as_ref().is_some_and(|m| nonempty(&m.content));
            if let Some(r) = &ch.finish_reason {
                push_reason(&mut u.3, r);
            }
        }
        if c.done == Some(true) {
            if let Some(r) = &c.done_reason {
                push_reason(&mut u.3, r);
            }
        }
        u.1 = c.prompt_eval_count;
        u.2 = c.eval_count;
        if let Some(us) = c
            .usage
            .filter(|us| us.prompt_tokens.unwrap_or(0) > 0 || us.completion_tokens.unwrap_or(0) > 0)
        {
            u.1 = us.prompt_tokens.or(u.1);
            u.2 = us.completion_tokens.or(u.2);
        }
        u
    }

    /// JSON values of every type, to put under the keys the tap reads. No
    /// array that serde's derive would read as a struct, field by field
    /// (`[null]`, `[null, 1]` as `usage`): the documented difference.
    fn any_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop::sample::select(vec![
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(7),
            json!(u64::MAX),
            json!(-1),
            json!(1.5),
            json!(""),
            json!("stop"),
            json!("length"),
            json!("x\u{e9}\"\\"),
            json!([]),
            json!([1, "a"]),
            json!({}),
            json!({"content": "hi"}),
            json!({"content": ""}),
            json!({"content": null, "role": "assistant"}),
            json!({"content": 3}),
            json!({"prompt_tokens": 5, "completion_tokens": 2}),
            json!({"prompt_tokens": 0, "completion_tokens": 0}),
            json!({"completion_tokens": 4, "total_tokens": 4}),
            json!({"prompt_tokens": "5"}),
            json!([{"delta": {"content": "a"}, "finish_reason": null}]),
            json!([{"text": "", "finish_reason": "length"}, {"message": {"content": "b"}, "finish_reason": "stop"}]),
            json!([{"delta": {}, "finish_reason": 1}]),
            json!(["a", 1]),
            json!([{"delta": []}]),
            json!({"nested": {"model": "inner", "usage": {"prompt_tokens": 9}}}),
        ])
    }

    fn any_chunk() -> impl Strategy<Value = serde_json::Value> {
        const KEYS: [&str; 11] = [
            "model",
            "response",
            "message",
            "done",
            "done_reason",
            "prompt_eval_count",
            "eval_count",
            "choices",
            "usage",
            "created_at",
            "context",
        ];
        prop::collection::vec((prop::sample::select(KEYS.to_vec()), any_value()), 0..8).prop_map(
            |fields| {
                serde_json::Value::Object(
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                )
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Line by line, the scanner reads what serde read.
        #[test]
        fn reads_what_serde_read(chunk in any_chunk(), cut in any::<usize>()) {
            let line = chunk.to_string();
            let cut = cut % (line.len() + 1);
            let usage = split_run("application/x-ndjson", line.as_bytes(), &[cut]);
            prop_assert_eq!(comparable(usage), oracle_usage(line.as_bytes()), "{}", line);
        }

        /// For each framing, any split of the bytes reads the same as the
        /// whole body in one frame, in bounded state.
        #[test]
        fn any_split_of_each_framing_reads_the_same(framing in 0usize..4, cuts in prop::collection::vec(any::<usize>(), 0..12)) {
            let (ct, body) = match framing {
                0 => ("application/x-ndjson".to_owned(), generate_stream(3_000)),
                1 => ("text/event-stream".to_owned(), openai_sse("\r\n")),
                2 => ("application/json".to_owned(), OPENAI_CHAT.to_vec()),
                _ => ("application/json".to_owned(), format!(r#"{{"model":"e","embeddings":[{},{}],"prompt_eval_count":3}}"#, floats(2_000, 1), floats(2_000, 2)).into_bytes()),
            };
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let mut tap = ResponseTap::new(Some(&ct), true, None);
            let mut start = 0;
            for p in points.into_iter().chain([body.len()]) {
                tap.feed(&body[start..p]);
                start = p;
                prop_assert!(tap.state_bytes() <= MAX_STATE);
            }
            let whole = comparable(split_run(&ct, &body, &[]));
            prop_assert!(whole.1.is_some() || whole.2.is_some());
            prop_assert_eq!(comparable(tap.finish()), whole);
        }
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
            let mut tap = ResponseTap::new(Some(content_type), true, None);
            for chunk in bytes.chunks(7) {
                tap.feed(chunk);
            }
            let _ = tap.finish();
        }
    }
}
