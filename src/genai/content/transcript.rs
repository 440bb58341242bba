//! The messages of one direction as they are read, held in at most the
//! configured number of bytes, and rendered once at the end as the GenAI
//! conventions' JSON (`gen_ai.system_instructions`, `gen_ai.input.messages`,
//! `gen_ai.output.messages`).
//!
//! Every byte kept and every message or part started is charged against
//! the cap, so memory follows the cap, not the body. When something does
//! not fit, the text being read is cut back to the last whitespace (a secret
//! cut in half would slip past the redaction patterns) and nothing more is
//! taken. Rendering redacts first and then cuts the JSON to the cap exactly.

use serde_json::{Map, Value};

use super::redact::ContentRedactor;

/// What a message or part costs besides its text: about its JSON skeleton
/// (`{"type":"text","content":""},` is 29 bytes), so thousands of empty
/// parts cannot hold more memory than the cap allows.
const PART_COST: usize = 48;

/// Output messages end with a reason; one cut short has none to give.
const NO_FINISH_REASON: &str = "error";

#[derive(Debug)]
pub(crate) enum Part {
    Text(Vec<u8>),
    ToolCall {
        id: Vec<u8>,
        name: Vec<u8>,
        /// JSON text: a decoded string (OpenAI) or a value as written (Ollama).
        arguments: Vec<u8>,
    },
}

#[derive(Debug, Default)]
struct Message {
    role: Vec<u8>,
    parts: Vec<Part>,
    finish_reason: Vec<u8>,
    /// A `tool` message's answer is to this call.
    tool_call_id: Vec<u8>,
}

/// Where a part is: in a message, or (`None`) in the system instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartRef {
    pub message: Option<usize>,
    pub part: usize,
}

/// One direction's captured content, in bounded memory.
#[derive(Debug)]
pub(crate) struct Transcript {
    system: Vec<Part>,
    messages: Vec<Message>,
    held: usize,
    cap: usize,
    cut: bool,
}

/// A direction rendered: JSON strings for the attributes, and whether
/// anything was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub system_instructions: Option<String>,
    pub messages: Option<String>,
    pub truncated: bool,
}

impl Transcript {
    pub fn new(cap: usize) -> Self {
        Self {
            system: Vec::new(),
            messages: Vec::new(),
            held: 0,
            cap,
            cut: false,
        }
    }

    /// Nothing more will be taken.
    pub fn is_full(&self) -> bool {
        self.cut
    }

    /// Bytes charged so far (text, names and each message and part).
    pub fn held(&self) -> usize {
        self.held
    }

    fn charge(&mut self, n: usize) -> bool {
        if self.cut || self.held + n > self.cap {
            self.cut = true;
            return false;
        }
        self.held += n;
        true
    }

    pub fn message(&mut self, role: &[u8]) -> Option<usize> {
        if !self.charge(PART_COST + role.len()) {
            return None;
        }
        self.messages.push(Message {
            role: role.to_vec(),
            ..Message::default()
        });
        Some(self.messages.len() - 1)
    }

    /// Sets a short field of message `m` (role, finish reason, tool call id).
    /// A finish reason is kept even past the cap, uncharged: it comes last,
    /// says how the answer ended however much of it was kept, and is short
    /// (the scan keeps at most 256 bytes, once per message).
    pub fn set(&mut self, m: usize, field: MessageField, value: &[u8]) {
        if field == MessageField::FinishReason {
            if let Some(slot) = self.message_slot(m, field) {
                slot.clear();
                slot.extend_from_slice(value);
            }
            return;
        }
        let Some(old) = self.message_slot(m, field).map(|s| s.len()) else {
            return;
        };
        self.replace(|t| t.message_slot(m, field), old, value);
    }

    fn message_slot(&mut self, m: usize, field: MessageField) -> Option<&mut Vec<u8>> {
        let message = self.messages.get_mut(m)?;
        Some(match field {
            MessageField::Role => &mut message.role,
            MessageField::FinishReason => &mut message.finish_reason,
            MessageField::ToolCallId => &mut message.tool_call_id,
        })
    }

    /// Replaces a short field whose value is `old` bytes long, charging
    /// only growth: Ollama repeats the role on every streamed line.
    fn replace(
        &mut self,
        slot: impl FnOnce(&mut Self) -> Option<&mut Vec<u8>>,
        old: usize,
        value: &[u8],
    ) {
        if value.len() > old && !self.charge(value.len() - old) {
            return;
        }
        self.held -= old.saturating_sub(value.len());
        if let Some(slot) = slot(self) {
            slot.clear();
            slot.extend_from_slice(value);
        }
    }

    pub fn part(&mut self, message: Option<usize>, part: Part) -> Option<PartRef> {
        if !self.charge(PART_COST) {
            return None;
        }
        let parts = self.parts_mut(message)?;
        parts.push(part);
        Some(PartRef {
            message,
            part: parts.len() - 1,
        })
    }

    /// The last part of `message` when it is text, for the next text delta.
    pub fn last_text(&self, message: Option<usize>) -> Option<PartRef> {
        let parts = match message {
            None => &self.system,
            Some(m) => &self.messages.get(m)?.parts,
        };
        matches!(parts.last(), Some(Part::Text(_))).then(|| PartRef {
            message,
            part: parts.len() - 1,
        })
    }

    /// Appends to a text part's content or a tool call's arguments; what
    /// does not fit is cut back to a word boundary and ends the capture.
    pub fn append(&mut self, at: PartRef, piece: &[u8]) {
        if self.cut {
            return;
        }
        let room = self.cap - self.held;
        let fits = piece.len() <= room;
        let taken = if fits { piece } else { &piece[..room] };
        self.held += taken.len();
        let Some(text) = self.field_mut(at, None) else {
            return;
        };
        text.extend_from_slice(taken);
        if !fits {
            let word_start = text
                .iter()
                .rposition(|b| b.is_ascii_whitespace())
                .map_or(0, |i| i + 1);
            let dropped = text.len() - word_start;
            text.truncate(word_start);
            self.held -= dropped;
            self.cut = true;
        }
    }

    /// Sets a tool call's id or name.
    pub fn set_call(&mut self, at: PartRef, field: CallField, value: &[u8]) {
        let Some(old) = self.field_mut(at, Some(field)).map(|s| s.len()) else {
            return;
        };
        self.replace(|t| t.field_mut(at, Some(field)), old, value);
    }

    fn parts_mut(&mut self, message: Option<usize>) -> Option<&mut Vec<Part>> {
        match message {
            None => Some(&mut self.system),
            Some(m) => self.messages.get_mut(m).map(|m| &mut m.parts),
        }
    }

    /// The growing text of a part (`field` None) or a tool call's id or name.
    fn field_mut(&mut self, at: PartRef, field: Option<CallField>) -> Option<&mut Vec<u8>> {
        match (self.parts_mut(at.message)?.get_mut(at.part)?, field) {
            (Part::Text(text), None) => Some(text),
            (Part::ToolCall { arguments, .. }, None) => Some(arguments),
            (Part::ToolCall { id, .. }, Some(CallField::Id)) => Some(id),
            (Part::ToolCall { name, .. }, Some(CallField::Name)) => Some(name),
            (Part::Text(_), Some(_)) => None,
        }
    }

    /// The conventions' JSON, redacted, at most the cap in total;
    /// `output` adds each message's `finish_reason`.
    pub fn render(&self, redactor: &ContentRedactor, output: bool) -> Rendered {
        let mut system: Vec<Value> = self
            .system
            .iter()
            .filter_map(|p| render_part(p, false, &[], redactor))
            .collect();
        let mut messages: Vec<Value> = self
            .messages
            .iter()
            .filter_map(|m| render_message(m, output, redactor))
            .collect();
        let fitted = fit(&mut system, &mut messages, self.cap);
        let json =
            |values: Vec<Value>| (!values.is_empty()).then(|| Value::Array(values).to_string());
        Rendered {
            system_instructions: json(system),
            messages: json(messages),
            truncated: self.cut || fitted,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageField {
    Role,
    FinishReason,
    ToolCallId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallField {
    Id,
    Name,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn render_message(m: &Message, output: bool, redactor: &ContentRedactor) -> Option<Value> {
    let role = match (m.role.is_empty(), output) {
        (false, _) => text(&m.role),
        (true, true) => "assistant".to_owned(),
        (true, false) => "user".to_owned(),
    };
    let answers = (role == "tool").then_some(m.tool_call_id.as_slice());
    let parts: Vec<Value> = m
        .parts
        .iter()
        .filter_map(|p| render_part(p, answers.is_some(), answers.unwrap_or(&[]), redactor))
        .collect();
    if parts.is_empty() && !output {
        return None;
    }
    let mut object = Map::new();
    object.insert("role".into(), role.into());
    object.insert("parts".into(), parts.into());
    if output {
        let reason = match m.finish_reason.as_slice() {
            [] => NO_FINISH_REASON.to_owned(),
            // The conventions' name for what OpenAI calls `tool_calls`.
            b"tool_calls" | b"function_call" => "tool_call".to_owned(),
            reason => text(reason),
        };
        object.insert("finish_reason".into(), reason.into());
    }
    Some(Value::Object(object))
}

/// A part; a `tool` message's text is the answer to call `answers`.
fn render_part(
    part: &Part,
    tool_answer: bool,
    answers: &[u8],
    redactor: &ContentRedactor,
) -> Option<Value> {
    let mut object = Map::new();
    match part {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) if tool_answer => {
            object.insert("type".into(), "tool_call_response".into());
            if !answers.is_empty() {
                object.insert("id".into(), redactor.text(&text(answers)).into());
            }
            object.insert("response".into(), json_or_text(t, redactor));
        }
        Part::Text(t) => {
            object.insert("type".into(), "text".into());
            object.insert("content".into(), redactor.text(&text(t)).into());
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            object.insert("type".into(), "tool_call".into());
            if !id.is_empty() {
                object.insert("id".into(), redactor.text(&text(id)).into());
            }
            object.insert("name".into(), redactor.text(&text(name)).into());
            if !arguments.is_empty() {
                object.insert("arguments".into(), json_or_text(arguments, redactor));
            }
        }
    }
    Some(Value::Object(object))
}

/// Tool arguments and answers are JSON when they parse (the conventions
/// want objects), redacted key by key; otherwise redacted text.
fn json_or_text(bytes: &[u8], redactor: &ContentRedactor) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            redactor.value(&mut value);
            value
        }
        _ => redactor.text(&text(bytes)).into(),
    }
}

/// Cuts the rendered values until their JSON fits `cap` in total: the last
/// string of the last part shortened, else the part dropped. True when
/// anything was cut. Redaction ran before, so a cut cannot expose a secret.
fn fit(system: &mut Vec<Value>, messages: &mut Vec<Value>, cap: usize) -> bool {
    let size = |values: &Vec<Value>| {
        if values.is_empty() {
            0
        } else {
            serde_json::to_vec(values).map_or(0, |v| v.len())
        }
    };
    let mut cut = false;
    // Each round shortens a string or drops a part or message.
    loop {
        let total = size(system) + size(messages);
        if total <= cap {
            return cut;
        }
        cut = true;
        let excess = total - cap;
        let last_parts = match messages.last_mut() {
            Some(message) => match message.get_mut("parts").and_then(Value::as_array_mut) {
                Some(parts) if !parts.is_empty() => parts,
                _ => {
                    messages.pop();
                    continue;
                }
            },
            None if !system.is_empty() => system,
            None => return cut,
        };
        let Some(part) = last_parts.last_mut() else {
            continue;
        };
        if !shorten(part, excess) {
            last_parts.pop();
        }
    }
}

/// Shortens the part's main string by at least `excess` bytes; false when
/// it has none that long.
fn shorten(part: &mut Value, excess: usize) -> bool {
    let Some(object) = part.as_object_mut() else {
        return false;
    };
    for key in ["content", "response", "arguments"] {
        if let Some(Value::String(s)) = object.get_mut(key) {
            if s.len() <= excess {
                return false;
            }
            let mut end = s.len() - excess;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn redactor() -> ContentRedactor {
        ContentRedactor::new(&Config::default()).unwrap()
    }

    #[test]
    fn renders_the_conventions_shape() {
        let mut t = Transcript::new(4096);
        let system = t.part(None, Part::Text(b"be brief".to_vec())).unwrap();
        assert_eq!(system.message, None);
        let m = t.message(b"user").unwrap();
        let at = t.part(Some(m), Part::Text(Vec::new())).unwrap();
        t.append(at, b"weather in ");
        t.append(at, b"Paris?");
        let a = t.message(b"assistant").unwrap();
        let call = t
            .part(
                Some(a),
                Part::ToolCall {
                    id: b"call_1".to_vec(),
                    name: b"get_weather".to_vec(),
                    arguments: Vec::new(),
                },
            )
            .unwrap();
        t.append(call, br#"{"city":"#);
        t.append(call, br#""Paris"}"#);
        let tool = t.message(b"tool").unwrap();
        t.set(tool, MessageField::ToolCallId, b"call_1");
        let answer = t.part(Some(tool), Part::Text(Vec::new())).unwrap();
        t.append(answer, b"rainy");
        let r = t.render(&redactor(), false);
        assert_eq!(
            r.system_instructions.as_deref(),
            Some(r#"[{"type":"text","content":"be brief"}]"#)
        );
        assert_eq!(
            r.messages.as_deref(),
            Some(concat!(
                r#"[{"role":"user","parts":[{"type":"text","content":"weather in Paris?"}]},"#,
                r#"{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"city":"Paris"}}]},"#,
                r#"{"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"rainy"}]}]"#
            ))
        );
        assert!(!r.truncated);
        let mut out = Transcript::new(4096);
        let m = out.message(b"").unwrap();
        out.set(m, MessageField::FinishReason, b"tool_calls");
        assert_eq!(
            out.render(&redactor(), true).messages.as_deref(),
            Some(r#"[{"role":"assistant","parts":[],"finish_reason":"tool_call"}]"#)
        );
    }

    #[test]
    fn a_cut_ends_at_a_word_and_the_json_fits_the_cap() {
        let mut t = Transcript::new(300);
        let m = t.message(b"user").unwrap();
        let at = t.part(Some(m), Part::Text(Vec::new())).unwrap();
        for _ in 0..100 {
            t.append(at, "word é\"\\ ".as_bytes());
        }
        assert!(t.is_full());
        assert!(t.held() <= 300);
        t.append(at, b"more");
        assert!(t.message(b"user").is_none());
        let r = t.render(&redactor(), false);
        let json = r.messages.unwrap();
        assert!(r.truncated);
        assert!(json.len() <= 300, "{}", json.len());
        let parsed: Value = serde_json::from_str(&json).unwrap();
        let content = parsed[0]["parts"][0]["content"].as_str().unwrap();
        // No word was cut in half.
        assert!(
            content
                .split_whitespace()
                .all(|w| w == "word" || w == "é\"\\"),
            "{content:?}"
        );
    }
}
