//! Finds the top-level `model` and `stream` of a JSON request body as it
//! streams upstream, in constant memory whatever the body's size and wherever
//! the keys sit: other values (a 5 MiB prompt, nested messages) are skipped
//! without being stored, strings with `memchr` (see [`super::json_scan`]).

use std::sync::Arc;

use super::content::{CaptureConfig, Rendered, RequestContent};
use super::json_scan::{JsonScanner, Scalar, Visitor, MAX_STRING};
use super::tee::Tee;

/// What the request said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub model: Option<String>,
    pub stream: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Model,
    Stream,
    Other,
}

/// Hears the scanner's events and keeps the two top-level values.
#[derive(Debug, Default)]
struct Keys {
    depth: u32,
    /// The body is not a JSON object: nothing to find in it.
    not_an_object: bool,
    /// The key whose value comes next, when at the top level.
    field: Option<Field>,
    info: RequestInfo,
}

impl Keys {
    fn top_level_field(&self) -> Option<Field> {
        self.field.filter(|_| self.depth == 1)
    }
}

impl Visitor for Keys {
    fn key(&mut self, key: Option<&[u8]>) {
        self.field = Some(match key {
            Some(b"model") => Field::Model,
            Some(b"stream") => Field::Stream,
            _ => Field::Other,
        });
    }

    fn keep_string(&self) -> bool {
        self.top_level_field() == Some(Field::Model)
    }

    fn begin(&mut self, array: bool) {
        self.not_an_object |= self.depth == 0 && array;
        self.depth += 1;
    }

    fn end(&mut self) {
        self.depth -= 1;
    }

    fn scalar(&mut self, value: Scalar<'_>) {
        match (self.top_level_field(), value) {
            (
                Some(Field::Model),
                Scalar::Str {
                    text: Some(model), ..
                },
            ) if model.len() <= MAX_STRING => {
                self.info.model = Some(model.to_owned());
            }
            (Some(Field::Stream), Scalar::Bool(stream)) => self.info.stream = Some(stream),
            _ => {}
        }
    }

    /// Both keys known: the rest of the body cannot change them.
    fn satisfied(&self) -> bool {
        self.not_an_object || (self.info.model.is_some() && self.info.stream.is_some())
    }
}

/// Feed it the body's frames in order; read [`RequestScanner::info`] any time.
#[derive(Debug, Default)]
pub struct RequestScanner {
    scanner: JsonScanner,
    keys: Keys,
    /// The messages, when content is captured.
    content: Option<(RequestContent, Arc<CaptureConfig>)>,
}

impl RequestScanner {
    /// A scanner that also captures the request's content.
    pub fn capturing(capture: Arc<CaptureConfig>) -> Self {
        Self {
            content: Some((RequestContent::new(capture.max_bytes), capture)),
            ..Self::default()
        }
    }

    pub fn info(&self) -> &RequestInfo {
        &self.keys.info
    }

    pub fn is_done(&self) -> bool {
        let captured = self.content.as_ref().is_none_or(|(c, _)| c.satisfied());
        (self.keys.satisfied() && captured) || self.scanner.is_finished()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.is_done() {
            return;
        }
        match &mut self.content {
            Some((content, _)) => self.scanner.feed(bytes, &mut Tee(&mut self.keys, content)),
            None => self.scanner.feed(bytes, &mut self.keys),
        }
    }

    /// The captured content, redacted and rendered, when capturing.
    pub fn render_content(&self) -> Option<Rendered> {
        let (content, capture) = self.content.as_ref()?;
        Some(content.transcript().render(&capture.redactor, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(body: &[u8]) -> RequestInfo {
        let mut s = RequestScanner::default();
        s.feed(body);
        s.info().clone()
    }

    fn info(model: Option<&str>, stream: Option<bool>) -> RequestInfo {
        RequestInfo {
            model: model.map(Into::into),
            stream,
        }
    }

    #[test]
    fn finds_model_and_stream_anywhere_at_the_top_level() {
        assert_eq!(
            scan(br#"{"model":"llama3.2:1b","prompt":"hi","stream":false}"#),
            info(Some("llama3.2:1b"), Some(false))
        );
        assert_eq!(
            scan(br#"{ "stream" : true , "model" : "m" }"#),
            info(Some("m"), Some(true))
        );
        assert_eq!(scan(br#"{"messages":[{"role":"user","content":"hi","model":"inner"}],"options":{"stream":true},"model":"outer"}"#), info(Some("outer"), None));
        assert_eq!(scan(br#"{"prompt":"a \"model\": \"fake\"","max_tokens":12,"temperature":-0.5,"x":null,"model":"real"}"#), info(Some("real"), None));
        assert_eq!(
            scan(br#"{"model":"a\/b \"q\""}"#),
            info(Some("a/b \"q\""), None)
        );
        assert_eq!(scan(br#"{"prompt":"no model"}"#), info(None, None));
    }

    #[test]
    fn gives_up_quietly_on_what_is_not_a_json_object() {
        assert_eq!(scan(b"not json"), info(None, None));
        assert_eq!(scan(br#"["model","m"]"#), info(None, None));
        assert_eq!(scan(br#"{"model":"m""#), info(Some("m"), None));
        assert_eq!(scan(br#"{"model": 42, "stream": "yes"}"#), info(None, None));
    }

    #[test]
    fn model_after_a_five_mib_prompt_is_found_in_bounded_memory() {
        let prompt = "word \\\\ \\\"quoted\\\" ".repeat(5 * 1024 * 1024 / 16);
        let body = format!(r#"{{"prompt":"{prompt}","stream":true,"model":"late-model"}}"#);
        let mut s = RequestScanner::default();
        for chunk in body.as_bytes().chunks(16 * 1024) {
            s.feed(chunk);
        }
        assert!(body.len() > 5 * 1024 * 1024);
        assert_eq!(s.info(), &info(Some("late-model"), Some(true)));
        assert!(s.is_done());
    }

    proptest! {
        /// Splitting the body anywhere, any number of times, changes nothing.
        #[test]
        fn frame_boundaries_do_not_matter(cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let body = br#"{"prompt":"say \"hi\", \\ {model}","options":{"num_predict":[1,{"a":"}"}]},"stream" : false,"model":"qwen2.5:0.5b"}"#;
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % body.len()).collect();
            points.sort_unstable();
            let mut s = RequestScanner::default();
            let mut start = 0;
            for p in points {
                s.feed(&body[start..p]);
                start = p;
            }
            s.feed(&body[start..]);
            prop_assert_eq!(s.info(), &info(Some("qwen2.5:0.5b"), Some(false)));
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_input_is_harmless(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut s = RequestScanner::default();
            s.feed(&bytes);
        }
    }
}
