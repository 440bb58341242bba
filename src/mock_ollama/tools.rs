//! Tool calling, as Ollama's chat endpoints do it: a request with `tools`
//! whose last message is the user's gets a call to the first tool; once the
//! tool has answered (a `tool` message last), the model answers in text.
//!
//! The call is deterministic: every parameter of the tool gets the last
//! word of the user's message (`"weather in Paris?"` → `{"city": "Paris"}`).

use serde_json::{json, Map, Value};

/// Output tokens a tool call counts.
pub const TOOL_CALL_TOKENS: u64 = 12;
/// The id OpenAI-compatible replies give the call.
const CALL_ID: &str = "call_mock_1";

/// The call a chat request gets, if it gets one.
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

impl ToolCall {
    /// Ollama's native `message.tool_calls`.
    pub fn ollama(&self) -> Value {
        json!([{"function": {"name": self.name, "arguments": self.arguments}}])
    }

    /// OpenAI's `message.tool_calls`, arguments as a JSON string.
    pub fn openai(&self) -> Value {
        json!([{"id": CALL_ID, "index": 0, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments.to_string()}}])
    }

    /// OpenAI's streamed deltas: the call's head, then its arguments in
    /// fragments, as the API sends them (clients join them by `index`).
    pub fn openai_deltas(&self) -> Vec<Value> {
        let arguments = self.arguments.to_string();
        let mut deltas = vec![json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": CALL_ID, "type": "function", "function": {"name": self.name, "arguments": ""}}]})];
        let chars: Vec<char> = arguments.chars().collect();
        for piece in chars.chunks(5) {
            let piece: String = piece.iter().collect();
            deltas.push(json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}));
        }
        deltas
    }
}

/// The call for `req`: its first tool, when the user spoke last.
pub fn call_for(req: &Value) -> Option<ToolCall> {
    let tool = req.get("tools")?.as_array()?.first()?.get("function")?;
    let messages = req.get("messages")?.as_array()?;
    let last = messages.last()?;
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return None;
    }
    let word = last
        .get("content")
        .and_then(Value::as_str)
        .and_then(|c| c.split_whitespace().last())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .unwrap_or_default();
    let arguments: Map<String, Value> = tool
        .pointer("/parameters/properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().map(|k| (k.clone(), json!(word))).collect())
        .unwrap_or_default();
    Some(ToolCall {
        name: tool.get("name")?.as_str()?.to_owned(),
        arguments: Value::Object(arguments),
    })
}

/// After a tool answered, the model's text: it repeats the answer.
pub fn answer_after_tool(req: &Value) -> Option<String> {
    let last = req.get("messages")?.as_array()?.last()?;
    if last.get("role").and_then(Value::as_str) != Some("tool") {
        return None;
    }
    let result = last.get("content").and_then(Value::as_str).unwrap_or("");
    Some(format!("The tool says: {result}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather_request(last: Value) -> Value {
        json!({"model": "m", "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "messages": [{"role": "user", "content": "Weather in Paris?"}, last]})
    }

    #[test]
    fn the_user_gets_a_call_and_the_tool_an_answer() {
        let req = weather_request(json!({"role": "user", "content": "And in Lyon?"}));
        let call = call_for(&req).unwrap();
        assert_eq!(call.name, "get_weather");
        assert_eq!(call.arguments, json!({"city": "Lyon"}));
        let joined: String = call.openai_deltas()[1..]
            .iter()
            .map(|d| {
                d["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(joined, r#"{"city":"Lyon"}"#);
        let req = weather_request(json!({"role": "tool", "content": "rainy, 12 C"}));
        assert!(call_for(&req).is_none());
        assert_eq!(
            answer_after_tool(&req).as_deref(),
            Some("The tool says: rainy, 12 C")
        );
    }
}
