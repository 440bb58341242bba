//! Reads a GenAI response's content when capture is on (tool calls are
//! counted by the usage visitor, see `genai::tool_calls`), from each JSON
//! document the response tap scans: Ollama's
//! `message` / `response` / `done_reason`, OpenAI's `choices[]` with their
//! `message`, streamed `delta` or `text`, and `finish_reason`.
//!
//! Streamed pieces are assembled as they come: text deltas join the text
//! before them, a tool call's argument fragments join by the call's
//! `index`, one output message per choice. Unlike usage, which is staged
//! until its document proves valid, what is read here counts at once: a
//! stream cut mid-line keeps the text it carried.

use super::transcript::{CallField, MessageField, Part, PartRef, Transcript};
use crate::genai::json_scan::{Scalar, Visitor};

/// Deepest container followed: choices → choice → delta → tool_calls → call → function.
const TRACKED: usize = 7;
/// Tool calls told apart; the parts of more are not captured.
const MAX_CALLS: usize = 64;
/// Choices captured as separate messages.
const MAX_CHOICES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Choices,
    Choice,
    /// Ollama's `message`, a choice's `message` or `delta`.
    Message,
    ToolCalls,
    ToolCall,
    Function,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Message,
    Delta,
    /// Ollama generate's `response`, a completion choice's `text`.
    Text,
    DoneReason,
    Choices,
    Index,
    FinishReason,
    Role,
    Content,
    ToolCalls,
    CallIndex,
    CallId,
    Function,
    Name,
    Arguments,
    Other,
}

#[derive(Debug)]
struct Call {
    /// `(choice, index)` of a streamed call, whose later deltas continue it.
    key: Option<(u64, u64)>,
    part: Option<PartRef>,
}

/// The tool call element being read.
#[derive(Debug, Default)]
struct Element {
    /// Inside a streamed `delta`.
    delta: bool,
    position: u64,
    index: Option<u64>,
    /// Which of `calls` it is, once known (`usize::MAX`: past `MAX_CALLS`).
    call: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct ResponseContent {
    transcript: Transcript,
    nodes: [Node; TRACKED],
    depth: usize,
    key: Field,
    /// Position and `index` of the choice being read.
    choice_position: u64,
    choice_index: Option<u64>,
    in_delta: bool,
    element: Element,
    element_position: u64,
    /// Output message of each choice index.
    choices: Vec<(u64, usize)>,
    calls: Vec<Call>,
    target: Option<PartRef>,
    /// Where the arguments object being recorded goes (the scan reports
    /// its inner keys and values too, so `target` cannot say).
    raw_target: Option<PartRef>,
}

impl ResponseContent {
    /// Captures in at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            transcript: Transcript::new(cap),
            nodes: [Node::Ignored; TRACKED],
            depth: 0,
            key: Field::Other,
            choice_position: 0,
            choice_index: None,
            in_delta: false,
            element: Element::default(),
            element_position: 0,
            choices: Vec::new(),
            calls: Vec::new(),
            target: None,
            raw_target: None,
        }
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The next JSON document (NDJSON line, SSE event) starts from the top.
    pub fn end_document(&mut self) {
        self.depth = 0;
        self.key = Field::Other;
        self.choice_position = 0;
        self.target = None;
    }

    /// Heap bytes held besides the transcript's text.
    pub fn heap_bytes(&self) -> usize {
        self.calls.capacity() * std::mem::size_of::<Call>()
            + self.choices.capacity() * std::mem::size_of::<(u64, usize)>()
    }

    fn parent(&self) -> Option<Node> {
        match self.depth {
            0 => None,
            d if d <= TRACKED => Some(self.nodes[d - 1]),
            _ => Some(Node::Ignored),
        }
    }

    fn slot(&self) -> Field {
        match self.parent() {
            None | Some(Node::Choices | Node::ToolCalls | Node::Ignored) => Field::Other,
            Some(_) => self.key,
        }
    }

    /// The choice the values being read belong to.
    fn choice(&self) -> u64 {
        if self.parent_chain_has(Node::Choice) {
            self.choice_index
                .unwrap_or(self.choice_position.saturating_sub(1))
        } else {
            0
        }
    }

    fn parent_chain_has(&self, node: Node) -> bool {
        self.nodes[..self.depth.min(TRACKED)].contains(&node)
    }

    /// The output message of the current choice, made when first needed.
    fn message(&mut self) -> Option<usize> {
        let choice = self.choice();
        if let Some(&(_, m)) = self.choices.iter().find(|(c, _)| *c == choice) {
            return Some(m);
        }
        if self.choices.len() >= MAX_CHOICES {
            return None;
        }
        let m = self.transcript.message(b"assistant")?;
        self.choices.push((choice, m));
        Some(m)
    }

    /// The call the element being read is: a streamed call's later delta
    /// continues it, anything else is a new call.
    fn call(&mut self) -> Option<usize> {
        if let Some(call) = self.element.call {
            return (call != usize::MAX).then_some(call);
        }
        let key = self.element.delta.then(|| {
            let index = self.element.index.unwrap_or(self.element.position);
            (self.choice(), index)
        });
        if let Some(i) = key.and_then(|k| self.calls.iter().position(|c| c.key == Some(k))) {
            self.element.call = Some(i);
            return Some(i);
        }
        if self.calls.len() >= MAX_CALLS {
            self.element.call = Some(usize::MAX);
            return None;
        }
        let part = self.message().and_then(|m| {
            let call = Part::ToolCall {
                id: Vec::new(),
                name: Vec::new(),
                arguments: Vec::new(),
            };
            self.transcript.part(Some(m), call)
        });
        self.calls.push(Call { key, part });
        self.element.call = Some(self.calls.len() - 1);
        self.element.call
    }

    /// The part a streamed string goes to: text joins the text before it.
    fn open_target(&mut self) -> Option<PartRef> {
        if self.target.is_none() {
            self.target = match self.slot() {
                Field::Text | Field::Content => {
                    let m = self.message()?;
                    let t = &mut self.transcript;
                    t.last_text(Some(m))
                        .or_else(|| t.part(Some(m), Part::Text(Vec::new())))
                }
                Field::Arguments => {
                    let call = self.call()?;
                    self.calls[call].part
                }
                _ => None,
            };
        }
        self.target
    }

    fn append(&mut self, bytes: &[u8]) {
        if let Some(at) = self.open_target() {
            self.transcript.append(at, bytes);
        }
    }

    fn set_message(&mut self, field: MessageField, value: &str) {
        if let Some(m) = self.message() {
            self.transcript.set(m, field, value.as_bytes());
        }
    }

    fn set_call(&mut self, field: CallField, value: &str) {
        let Some(call) = self.call() else {
            return;
        };
        if let Some(at) = self.calls[call].part {
            self.transcript.set_call(at, field, value.as_bytes());
        }
    }
}

impl Visitor for ResponseContent {
    const CAPTURES: bool = true;

    fn key(&mut self, key: Option<&[u8]>) {
        let Some(key) = key else {
            self.key = Field::Other;
            return;
        };
        self.key = match (self.parent(), key) {
            (Some(Node::Root), b"message") => Field::Message,
            (Some(Node::Root), b"response") => Field::Text,
            (Some(Node::Root), b"done_reason") => Field::DoneReason,
            (Some(Node::Root), b"choices") => Field::Choices,
            (Some(Node::Choice), b"index") => Field::Index,
            (Some(Node::Choice), b"message") => Field::Message,
            (Some(Node::Choice), b"delta") => Field::Delta,
            (Some(Node::Choice), b"text") => Field::Text,
            (Some(Node::Choice), b"finish_reason") => Field::FinishReason,
            (Some(Node::Message), b"role") => Field::Role,
            (Some(Node::Message), b"content") => Field::Content,
            (Some(Node::Message), b"tool_calls") => Field::ToolCalls,
            (Some(Node::ToolCall), b"index") => Field::CallIndex,
            (Some(Node::ToolCall), b"id") => Field::CallId,
            (Some(Node::ToolCall), b"function") => Field::Function,
            (Some(Node::Function), b"name") => Field::Name,
            (Some(Node::Function), b"arguments") => Field::Arguments,
            _ => Field::Other,
        };
    }

    fn keep_string(&self) -> bool {
        matches!(
            self.slot(),
            Field::Name | Field::DoneReason | Field::FinishReason | Field::Role | Field::CallId
        )
    }

    fn stream_string(&self) -> bool {
        !self.transcript.is_full()
            && matches!(self.slot(), Field::Text | Field::Content | Field::Arguments)
    }

    fn string_piece(&mut self, piece: &[u8]) {
        self.append(piece);
    }

    fn record_raw(&self, first: u8) -> bool {
        self.slot() == Field::Arguments && matches!(first, b'{' | b'[')
    }

    fn raw(&mut self, bytes: &[u8]) {
        if let Some(at) = self.raw_target {
            self.transcript.append(at, bytes);
        }
    }

    fn begin(&mut self, array: bool) {
        let node = match (self.parent(), self.slot(), array) {
            (None, _, false) => Node::Root,
            (_, Field::Choices, true) => Node::Choices,
            (_, Field::Message | Field::Delta, false) => {
                self.in_delta = self.slot() == Field::Delta;
                Node::Message
            }
            (_, Field::ToolCalls, true) => {
                self.element_position = 0;
                Node::ToolCalls
            }
            (_, Field::Function, false) => Node::Function,
            (_, Field::Arguments, _) => {
                self.raw_target = self.call().and_then(|c| self.calls[c].part);
                Node::Ignored
            }
            (Some(Node::Choices), _, false) => {
                self.choice_position += 1;
                self.choice_index = None;
                Node::Choice
            }
            (Some(Node::ToolCalls), _, false) => {
                self.element = Element {
                    delta: self.in_delta,
                    position: self.element_position,
                    index: None,
                    call: None,
                };
                self.element_position += 1;
                Node::ToolCall
            }
            _ => Node::Ignored,
        };
        if let Some(slot) = self.nodes.get_mut(self.depth) {
            *slot = node;
        }
        self.depth += 1;
    }

    fn end(&mut self) {
        if self.parent() == Some(Node::ToolCall) {
            // An element with nothing but its index still is a call.
            self.call();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        let slot = self.slot();
        self.target = None;
        match (slot, value) {
            (Field::Index, Scalar::U64(i)) => self.choice_index = Some(i),
            (Field::CallIndex, Scalar::U64(i)) => self.element.index = Some(i),
            (
                Field::DoneReason | Field::FinishReason,
                Scalar::Str {
                    text: Some(reason), ..
                },
            ) if !reason.is_empty() => self.set_message(MessageField::FinishReason, reason),
            (
                Field::Role,
                Scalar::Str {
                    text: Some(role), ..
                },
            ) => self.set_message(MessageField::Role, role),
            (Field::CallId, Scalar::Str { text: Some(id), .. }) if !id.is_empty() => {
                self.set_call(CallField::Id, id)
            }
            (
                Field::Name,
                Scalar::Str {
                    text: Some(name), ..
                },
            ) if !name.is_empty() => self.set_call(CallField::Name, name),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::config::Config;
    use crate::genai::{CaptureConfig, GenAiUsage, ResponseTap};
    use crate::mock_ollama::{reply, Reply, ANSWER};

    fn capture(max_bytes: u64) -> Arc<CaptureConfig> {
        let mut config = Config::default();
        config.genai.capture_content = true;
        config.genai.max_content_bytes.0 = max_bytes;
        CaptureConfig::from_config(&config).unwrap().unwrap()
    }

    fn body_of(path: &str, request: Value) -> (String, Vec<u8>) {
        match reply(path, &request) {
            Some(Reply::Stream {
                content_type,
                chunks,
            }) => (content_type.to_owned(), chunks.concat()),
            Some(Reply::Json(v)) => ("application/json".to_owned(), v.to_string().into_bytes()),
            _ => panic!("no reply"),
        }
    }

    /// Runs `body` through a tap, split at `points`.
    fn tap(
        ct: &str,
        body: &[u8],
        points: &[usize],
        capture: Option<Arc<CaptureConfig>>,
    ) -> GenAiUsage {
        let mut tap = ResponseTap::new(Some(ct), true, capture);
        let mut start = 0;
        for &p in points {
            tap.feed(&body[start..p]);
            start = p;
        }
        tap.feed(&body[start..]);
        tap.finish()
    }

    fn weather(path: &str, stream: bool) -> (String, Vec<u8>) {
        body_of(
            path,
            json!({"model": "m", "stream": stream,
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
        )
    }

    fn output(usage: &GenAiUsage) -> Value {
        serde_json::from_str(usage.output.as_ref().unwrap().messages.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn tool_calls_are_counted_and_captured_streamed_or_not() {
        for (path, stream) in [
            ("/api/chat", true),
            ("/api/chat", false),
            ("/v1/chat/completions", true),
            ("/v1/chat/completions", false),
        ] {
            let (ct, body) = weather(path, stream);
            let off = tap(&ct, &body, &[], None);
            assert_eq!(off.tool_calls.count, 1, "{path} {stream}");
            assert_eq!(off.tool_calls.names, [("get_weather".to_owned(), 1)]);
            assert!(off.output.is_none());
            let on = tap(&ct, &body, &[], Some(capture(16384)));
            assert_eq!(on.tool_calls, off.tool_calls);
            let (id, reason) = if path.starts_with("/v1") {
                (Some("call_mock_1"), "tool_call")
            } else {
                (None, "stop")
            };
            let mut call =
                json!({"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}});
            if let Some(id) = id {
                call.as_object_mut()
                    .unwrap()
                    .shift_insert(1, "id".into(), id.into());
            }
            assert_eq!(
                output(&on),
                json!([{"role": "assistant", "parts": [call], "finish_reason": reason}]),
                "{path} {stream}"
            );
        }
    }

    #[test]
    fn streamed_text_is_assembled() {
        for path in [
            "/api/chat",
            "/api/generate",
            "/v1/chat/completions",
            "/v1/completions",
        ] {
            let (ct, body) = body_of(
                path,
                json!({"model": "m", "stream": true, "prompt": "x",
                    "messages": [{"role": "user", "content": "why?"}]}),
            );
            let usage = tap(&ct, &body, &[], Some(capture(16384)));
            assert_eq!(usage.tool_calls.count, 0);
            assert_eq!(
                output(&usage),
                json!([{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}]),
                "{path}"
            );
        }
    }

    #[test]
    fn several_choices_and_calls_are_told_apart() {
        let event = |v: Value| format!("data: {v}\n\n");
        let body = [
            event(json!({"choices": [{"index": 1, "delta": {"role": "assistant", "tool_calls": [
                {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"x\""}},
                {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]}}]})),
            event(json!({"choices": [{"index": 0, "delta": {"content": "zero"}}]})),
            event(json!({"choices": [{"index": 1, "delta": {"tool_calls": [
                {"index": 1, "function": {"arguments": "[1]"}}, {"index": 0, "function": {"arguments": ":2}"}}]}}]})),
            event(json!({"choices": [{"index": 1, "delta": {}, "finish_reason": "tool_calls"}, {"index": 0, "delta": {}, "finish_reason": "stop"}]})),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        let usage = tap(
            "text/event-stream",
            body.as_bytes(),
            &[],
            Some(capture(16384)),
        );
        assert_eq!(usage.tool_calls.count, 2);
        assert_eq!(
            usage.tool_calls.names,
            [("f".to_owned(), 1), ("g".to_owned(), 1)]
        );
        assert_eq!(
            output(&usage),
            json!([
                {"role": "assistant", "parts": [
                    {"type": "tool_call", "id": "a", "name": "f", "arguments": {"x": 2}},
                    {"type": "tool_call", "id": "b", "name": "g", "arguments": [1]}], "finish_reason": "tool_call"},
                {"role": "assistant", "parts": [{"type": "text", "content": "zero"}], "finish_reason": "stop"}
            ])
        );
    }

    #[test]
    fn a_long_ollama_stream_is_charged_for_its_text_not_its_repeated_role() {
        let body: String = (0..3000)
            .map(|i| format!("{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\"done\":false}}\n", i % 10))
            .chain([r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#.to_owned()])
            .collect();
        let usage = tap(
            "application/x-ndjson",
            body.as_bytes(),
            &[],
            Some(capture(16384)),
        );
        let rendered = usage.output.unwrap();
        assert!(!rendered.truncated);
        let text: String = (0..3000)
            .map(|i| char::from(b'0' + (i % 10) as u8))
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&rendered.messages.unwrap()).unwrap(),
            json!([{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}])
        );
    }

    #[test]
    fn a_long_answer_is_cut_to_the_cap_and_marked() {
        let words: Vec<String> = (0..200).map(|i| format!("word{i} ")).collect();
        let body: String = words
            .iter()
            .map(|w| {
                format!(
                    "data: {}\n\n",
                    json!({"choices": [{"index": 0, "delta": {"content": w}}]})
                )
            })
            .chain([
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                    .to_owned(),
            ])
            .collect();
        let rendered = tap(
            "text/event-stream",
            body.as_bytes(),
            &[],
            Some(capture(256)),
        )
        .output
        .unwrap();
        let json = rendered.messages.unwrap();
        assert!(rendered.truncated);
        assert!(json.len() <= 256, "{}", json.len());
        let v: Value = serde_json::from_str(&json).unwrap();
        let text = v[0]["parts"][0]["content"].as_str().unwrap();
        assert!(
            words.concat().starts_with(text) && text.len() > 100,
            "{text}"
        );
        assert_eq!(
            v[0]["finish_reason"], "stop",
            "what follows the cut still counts"
        );
    }

    #[test]
    fn a_long_streamed_answer_with_tool_calls_holds_the_cap_not_the_body() {
        let cap = 16384;
        let mut tap = ResponseTap::new(Some("text/event-stream"), true, Some(capture(cap as u64)));
        let mut most = 0;
        let mut total = 0;
        for i in 0..100_000u64 {
            let delta = match i % 1000 {
                0 => {
                    json!({"tool_calls": [{"index": i / 1000, "id": format!("c{i}"), "function": {"name": "f", "arguments": ""}}]})
                }
                1..=9 => {
                    json!({"tool_calls": [{"index": i / 1000, "function": {"arguments": "{\"k\": 1} "}}]})
                }
                _ => json!({"content": format!("token{i} ")}),
            };
            let event = format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": delta}]})
            );
            total += event.len();
            tap.feed(event.as_bytes());
            most = most.max(tap.state_bytes());
        }
        assert!(total > 6 << 20, "{total}");
        assert!(
            most <= cap + (32 << 10),
            "{most} bytes of state for a {total}-byte body"
        );
        let usage = tap.finish();
        assert_eq!(usage.tool_calls.count, 100);
        assert!(usage.output.unwrap().truncated);
    }

    /// A secret split across two SSE events and any frames.
    fn leaky_stream(secret: &str, at: usize) -> Vec<u8> {
        let text = format!("Here it is: {secret} and more words after it.");
        let at = at % (text.len() + 1);
        let at = (0..=at)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let (a, b) = text.split_at(at);
        let delta = |t: &str| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": t}}]})
            )
        };
        [delta(a), delta(b), "data: [DONE]\n\n".to_owned()]
            .concat()
            .into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any split of any of the mock's answers gives the same tool calls
        /// and capture, within the cap.
        #[test]
        fn any_split_captures_the_same(case in 0usize..6, cuts in prop::collection::vec(any::<usize>(), 0..10), cap in 256u64..1024) {
            let (ct, body) = match case {
                0 => weather("/api/chat", true),
                1 => weather("/v1/chat/completions", true),
                2 => weather("/v1/chat/completions", false),
                3 => weather("/api/chat", false),
                4 => body_of("/v1/chat/completions", json!({"model": "m", "stream": true, "messages": []})),
                _ => body_of("/api/generate", json!({"model": "m", "prompt": "p"})),
            };
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let whole = tap(&ct, &body, &[], Some(capture(cap)));
            let split = tap(&ct, &body, &points, Some(capture(cap)));
            prop_assert_eq!(&split.tool_calls, &whole.tool_calls);
            prop_assert_eq!(&split.output, &whole.output);
            let json = whole.output.unwrap().messages.unwrap_or_default();
            prop_assert!(json.len() as u64 <= cap);
        }

        /// A planted secret, split across events and frames, cut or not by
        /// the cap, never comes out.
        #[test]
        fn planted_secrets_never_come_out(
            secret in prop::sample::select(vec![
                "sk-proj-Zx81Kq0aLmN3pQ7rS2tU",
                "Bearer eyJhbGciOiJIUzI1NiJ9.abc.def",
                "jane.doe@example.org",
            ]),
            at in any::<usize>(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            cap in 256u64..400,
        ) {
            let body = leaky_stream(secret, at);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let usage = tap("text/event-stream", &body, &points, Some(capture(cap)));
            let json = usage.output.unwrap().messages.unwrap_or_default();
            let visible = secret.split_once(' ').map_or(secret, |(_, token)| token);
            prop_assert!(!json.contains(visible), "{}", json);
        }
    }
}
