//! Reads a GenAI response's tool calls, always, and its content when
//! capture is on, from each JSON document the response tap scans: Ollama's
//! `message` / `response` / `done_reason`, OpenAI's `choices[]` with their
//! `message`, streamed `delta` or `text`, and `finish_reason`.
//!
//! Streamed pieces are assembled as they come: text deltas join the text
//! before them, a tool call's argument fragments join by the call's
//! `index`, one output message per choice. Unlike usage, which is staged
//! until its document proves valid, what is read here counts at once: a
//! stream cut mid-line keeps the text it carried.

use super::transcript::{CallField, MessageField, Part, PartRef, Transcript};
use super::ToolCalls;
use crate::genai::json_scan::{Scalar, Visitor};

/// Deepest container followed: choices → choice → delta → tool_calls → call → function.
const TRACKED: usize = 7;
/// Tool calls told apart (and named); more are counted, not named.
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
    name: Option<String>,
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
    /// `None`: capture off, tool calls only.
    transcript: Option<Transcript>,
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
    count: u64,
    target: Option<PartRef>,
}

impl ResponseContent {
    /// `cap`: capture content in that many bytes; `None`: tool calls only.
    pub fn new(cap: Option<usize>) -> Self {
        Self {
            transcript: cap.map(Transcript::new),
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
            count: 0,
            target: None,
        }
    }

    pub fn transcript(&self) -> Option<&Transcript> {
        self.transcript.as_ref()
    }

    /// The next JSON document (NDJSON line, SSE event) starts from the top.
    pub fn end_document(&mut self) {
        self.depth = 0;
        self.key = Field::Other;
        self.choice_position = 0;
        self.target = None;
    }

    pub fn tool_calls(&self) -> ToolCalls {
        let mut names: Vec<(String, u64)> = Vec::new();
        for name in self.calls.iter().filter_map(|c| c.name.as_deref()) {
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, n)) => *n += 1,
                None => names.push((name.to_owned(), 1)),
            }
        }
        ToolCalls {
            count: self.count,
            names,
        }
    }

    /// Heap bytes held besides the transcript's text.
    pub fn heap_bytes(&self) -> usize {
        self.calls.capacity() * std::mem::size_of::<Call>()
            + self
                .calls
                .iter()
                .map(|c| c.name.as_ref().map_or(0, String::capacity))
                .sum::<usize>()
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
        let m = self.transcript.as_mut()?.message(b"assistant")?;
        self.choices.push((choice, m));
        Some(m)
    }

    /// The call the element being read is: a streamed call's later delta
    /// continues it, anything else is a new call (counted here).
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
        self.count += 1;
        if self.calls.len() >= MAX_CALLS {
            self.element.call = Some(usize::MAX);
            return None;
        }
        let part = match self.message() {
            Some(m) => self.transcript.as_mut().and_then(|t| {
                let call = Part::ToolCall {
                    id: Vec::new(),
                    name: Vec::new(),
                    arguments: Vec::new(),
                };
                t.part(Some(m), call)
            }),
            None => None,
        };
        self.calls.push(Call {
            key,
            part,
            name: None,
        });
        self.element.call = Some(self.calls.len() - 1);
        self.element.call
    }

    /// The part a streamed string goes to: text joins the text before it.
    fn open_target(&mut self) -> Option<PartRef> {
        if self.target.is_none() {
            self.target = match self.slot() {
                Field::Text | Field::Content => {
                    let m = self.message()?;
                    let t = self.transcript.as_mut()?;
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
        if let (Some(at), Some(t)) = (self.open_target(), self.transcript.as_mut()) {
            t.append(at, bytes);
        }
    }

    fn set_message(&mut self, field: MessageField, value: &str) {
        if self.transcript.is_none() {
            return;
        }
        if let (Some(m), Some(t)) = (self.message(), self.transcript.as_mut()) {
            t.set(m, field, value.as_bytes());
        }
    }

    fn set_call(&mut self, field: CallField, value: &str) {
        let Some(call) = self.call() else {
            return;
        };
        let call = &mut self.calls[call];
        if field == CallField::Name && call.name.is_none() {
            call.name = Some(value.to_owned());
        }
        if let (Some(at), Some(t)) = (call.part, self.transcript.as_mut()) {
            t.set_call(at, field, value.as_bytes());
        }
    }
}

impl Visitor for ResponseContent {
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
        match self.slot() {
            Field::Name => true,
            Field::DoneReason | Field::FinishReason | Field::Role | Field::CallId => {
                self.transcript.is_some()
            }
            _ => false,
        }
    }

    fn stream_string(&self) -> bool {
        self.transcript.is_some()
            && matches!(self.slot(), Field::Text | Field::Content | Field::Arguments)
    }

    fn string_piece(&mut self, piece: &[u8]) {
        self.append(piece);
    }

    fn record_raw(&self, first: u8) -> bool {
        self.transcript.is_some() && self.slot() == Field::Arguments && matches!(first, b'{' | b'[')
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.append(bytes);
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
