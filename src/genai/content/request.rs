//! Reads a GenAI request's content into a [`Transcript`] as the body streams
//! upstream: `messages` (Ollama and OpenAI chat: text, OpenAI content parts,
//! tool calls, tool answers), `prompt` (generate and completions) and
//! `system` (Ollama generate's instructions, outside the chat history).

use super::transcript::{CallField, MessageField, Part, PartRef, Transcript};
use crate::genai::json_scan::{Scalar, Visitor};

/// Deepest container followed: messages → message → tool_calls → call → function.
const TRACKED: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Messages,
    Message,
    /// OpenAI content parts.
    ContentParts,
    ContentPart,
    Prompts,
    ToolCalls,
    ToolCall,
    Function,
    Ignored,
}

/// What the next value is, by its key and container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Messages,
    Prompt,
    System,
    Role,
    Content,
    ToolCallId,
    ToolCalls,
    /// A tool call's `id`.
    CallId,
    Function,
    Name,
    Arguments,
    /// `text` of a content part.
    PartText,
    Other,
}

#[derive(Debug)]
pub(crate) struct RequestContent {
    transcript: Transcript,
    nodes: [Node; TRACKED],
    depth: usize,
    key: Field,
    message: Option<usize>,
    /// The user message holding `prompt`.
    prompt: Option<usize>,
    call: Option<PartRef>,
    /// The part the string being read goes to, made at its first piece.
    target: Option<PartRef>,
}

impl RequestContent {
    pub fn new(cap: usize) -> Self {
        Self {
            transcript: Transcript::new(cap),
            nodes: [Node::Ignored; TRACKED],
            depth: 0,
            key: Field::Other,
            message: None,
            prompt: None,
            call: None,
            target: None,
        }
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
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
            Some(Node::Prompts) => Field::Prompt,
            Some(
                Node::Root | Node::Message | Node::ContentPart | Node::ToolCall | Node::Function,
            ) => self.key,
            _ => Field::Other,
        }
    }

    /// The part a streamed string goes to, made at its first piece.
    fn open_target(&mut self) -> Option<PartRef> {
        if self.target.is_none() {
            self.target = match self.slot() {
                Field::System => self.transcript.part(None, Part::Text(Vec::new())),
                Field::Prompt => {
                    if self.prompt.is_none() {
                        self.prompt = self.transcript.message(b"user");
                    }
                    let m = self.prompt?;
                    self.transcript.part(Some(m), Part::Text(Vec::new()))
                }
                Field::Content | Field::PartText => {
                    let m = self.message?;
                    self.transcript.part(Some(m), Part::Text(Vec::new()))
                }
                Field::Arguments => self.call,
                _ => None,
            };
        }
        self.target
    }
}

impl Visitor for RequestContent {
    const CAPTURES: bool = true;

    fn key(&mut self, key: Option<&[u8]>) {
        let Some(key) = key else {
            self.key = Field::Other;
            return;
        };
        self.key = match (self.parent(), key) {
            (Some(Node::Root), b"messages") => Field::Messages,
            (Some(Node::Root), b"prompt") => Field::Prompt,
            (Some(Node::Root), b"system") => Field::System,
            (Some(Node::Message), b"role") => Field::Role,
            (Some(Node::Message), b"content") => Field::Content,
            (Some(Node::Message), b"tool_call_id") => Field::ToolCallId,
            (Some(Node::Message), b"tool_calls") => Field::ToolCalls,
            (Some(Node::ContentPart), b"text") => Field::PartText,
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
            Field::Role | Field::ToolCallId | Field::CallId | Field::Name
        )
    }

    fn stream_string(&self) -> bool {
        !self.transcript.is_full()
            && matches!(
                self.slot(),
                Field::System | Field::Prompt | Field::Content | Field::PartText | Field::Arguments
            )
    }

    fn string_piece(&mut self, piece: &[u8]) {
        if let Some(at) = self.open_target() {
            self.transcript.append(at, piece);
        }
    }

    /// Ollama's arguments are an object: kept as written.
    fn record_raw(&self, first: u8) -> bool {
        self.slot() == Field::Arguments && matches!(first, b'{' | b'[')
    }

    fn raw(&mut self, bytes: &[u8]) {
        if let Some(at) = self.call {
            self.transcript.append(at, bytes);
        }
    }

    fn begin(&mut self, array: bool) {
        let node = match (self.parent(), self.slot(), array) {
            (None, _, false) => Node::Root,
            (_, Field::Messages, true) => Node::Messages,
            (_, Field::Prompt, true) if self.parent() == Some(Node::Root) => Node::Prompts,
            (_, Field::Content, true) => Node::ContentParts,
            (_, Field::ToolCalls, true) => Node::ToolCalls,
            (_, Field::Function, false) => Node::Function,
            (Some(Node::Messages), _, false) => {
                self.message = self.transcript.message(b"");
                Node::Message
            }
            (Some(Node::ContentParts), _, false) => Node::ContentPart,
            (Some(Node::ToolCalls), _, false) => {
                self.call = self.message.and_then(|m| {
                    let call = Part::ToolCall {
                        id: Vec::new(),
                        name: Vec::new(),
                        arguments: Vec::new(),
                    };
                    self.transcript.part(Some(m), call)
                });
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
        self.depth = self.depth.saturating_sub(1);
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        let slot = self.slot();
        self.target = None;
        let Scalar::Str {
            text: Some(text), ..
        } = value
        else {
            return;
        };
        match (slot, self.message, self.call) {
            (Field::Role, Some(m), _) => {
                self.transcript.set(m, MessageField::Role, text.as_bytes())
            }
            (Field::ToolCallId, Some(m), _) => {
                self.transcript
                    .set(m, MessageField::ToolCallId, text.as_bytes())
            }
            (Field::CallId, _, Some(at)) => {
                self.transcript.set_call(at, CallField::Id, text.as_bytes())
            }
            (Field::Name, _, Some(at)) => {
                self.transcript
                    .set_call(at, CallField::Name, text.as_bytes())
            }
            _ => {}
        }
    }

    /// Once the cap is reached nothing more is taken: the rest need not be read.
    fn satisfied(&self) -> bool {
        self.transcript.is_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::genai::content::redact::ContentRedactor;
    use crate::genai::json_scan::JsonScanner;
    use proptest::prelude::*;

    fn capture(body: &[u8], cuts: &[usize], cap: usize) -> (Option<String>, Option<String>, bool) {
        let mut scanner = JsonScanner::default();
        let mut content = RequestContent::new(cap);
        let mut start = 0;
        for &p in cuts.iter().chain([&body.len()]) {
            scanner.feed(&body[start..p], &mut content);
            start = p;
        }
        let r = content
            .transcript()
            .render(&ContentRedactor::new(&Config::default()).unwrap(), false);
        (r.system_instructions, r.messages, r.truncated)
    }

    const OPENAI_CHAT: &str = r#"{"model":"gpt-4o","messages":[
        {"role":"system","content":"You are terse."},
        {"content":[{"type":"text","text":"Weather in "},{"type":"image_url","image_url":{"url":"data:,x"}},{"type":"text","text":"Paris? mail me at jo@example.com"}],"role":"user"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"api_key\":\"k-123\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":\"12C\"}"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"stream":true}"#;

    #[test]
    fn openai_chat_with_parts_tool_calls_and_answers() {
        let (system, messages, truncated) = capture(OPENAI_CHAT.as_bytes(), &[], 16384);
        assert_eq!(system, None);
        let v: serde_json::Value = serde_json::from_str(&messages.unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Weather in "}, {"type": "text", "content": "Paris? mail me at [REDACTED]"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "api_key": "[REDACTED]"}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": {"temp": "12C"}}]}
            ])
        );
        assert!(!truncated);
    }

    #[test]
    fn ollama_generate_and_chat() {
        let (system, messages, _) = capture(
            br#"{"model":"m","system":"Be \"brief\".","prompt":"why?","options":{"system":"no"}}"#,
            &[],
            4096,
        );
        assert_eq!(
            system.as_deref(),
            Some(r#"[{"type":"text","content":"Be \"brief\"."}]"#)
        );
        assert_eq!(
            messages.as_deref(),
            Some(r#"[{"role":"user","parts":[{"type":"text","content":"why?"}]}]"#)
        );
        let (_, messages, _) = capture(
            br#"{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"add","arguments":{"a": 1.5e3, "b":[true]}}}]},{"role":"tool","content":"1501","tool_name":"add"}]}"#,
            &[],
            4096,
        );
        assert_eq!(
            messages.as_deref(),
            Some(concat!(
                r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"add","arguments":{"a":1500.0,"b":[true]}}]},"#,
                r#"{"role":"tool","parts":[{"type":"tool_call_response","response":"1501"}]}]"#
            ))
        );
    }

    #[test]
    fn a_huge_prompt_is_cut_in_bounded_memory() {
        let word = "lorem ipsum ";
        let body = format!(
            r#"{{"model":"m","prompt":"{}","stream":false}}"#,
            word.repeat(1 << 18)
        );
        let mut scanner = JsonScanner::default();
        let mut content = RequestContent::new(1024);
        for chunk in body.as_bytes().chunks(4096) {
            scanner.feed(chunk, &mut content);
            assert!(content.transcript().held() <= 1024);
        }
        assert!(scanner.is_finished(), "the scan stops at the cap");
        let r = content
            .transcript()
            .render(&ContentRedactor::new(&Config::default()).unwrap(), false);
        assert!(r.truncated);
        assert!(r.messages.as_ref().unwrap().len() <= 1024);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A secret planted anywhere in a message, or as a secret key's
        /// value in tool arguments, never comes out, whatever the split
        /// and wherever the cap cuts.
        #[test]
        fn planted_secrets_never_come_out(
            words in 0usize..120,
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            cap in 256usize..1024,
        ) {
            let secret = "sk-live-Zq81Kq0aLmN3pQ7rS2tUvW";
            let prose = "lorem ipsum ".repeat(words);
            let arguments = serde_json::json!({"password": "hunter2-hunter2", "q": prose}).to_string();
            let body = serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": format!("{prose}{secret} and more")},
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]},
            ]}).to_string();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let (_, messages, _) = capture(body.as_bytes(), &points, cap);
            let messages = messages.unwrap_or_default();
            // Not even the start of one: a cut ends at a word boundary.
            prop_assert!(!messages.contains("sk-live") && !messages.contains("hunt"), "{}", messages);
        }

        /// Any split of the body captures the same, at any cap.
        #[test]
        fn any_split_captures_the_same(cuts in prop::collection::vec(any::<usize>(), 0..10), cap in 256usize..2048) {
            let body = OPENAI_CHAT.as_bytes();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let split = capture(body, &points, cap);
            prop_assert_eq!(&split, &capture(body, &[], cap));
            let total = split.0.map_or(0, |s| s.len()) + split.1.map_or(0, |s| s.len());
            prop_assert!(total <= cap);
        }
    }
}
