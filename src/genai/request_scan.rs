//! Finds the top-level `model` and `stream` of a JSON request body as it
//! streams upstream, in constant memory whatever the body's size and wherever
//! the keys sit: other values (a 5 MiB prompt, nested messages) are skipped
//! without being stored, strings with `memchr`.

const MAX_KEY: usize = 16;
const MAX_MODEL: usize = 256;

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

#[derive(Debug)]
enum State {
    /// Before the opening `{`.
    Start,
    /// Inside the top-level object, before a key (or `}`).
    BeforeKey,
    /// Reading a key; `buf` is `None` once it is too long or escaped to matter.
    Key {
        buf: Option<Vec<u8>>,
        escape: bool,
    },
    BeforeColon(Field),
    BeforeValue(Field),
    /// A string value being kept (the model); `escape` after a backslash.
    Keep {
        buf: Vec<u8>,
        escape: bool,
    },
    /// A literal being kept (`true`/`false` of `stream`).
    Literal(Vec<u8>),
    /// Skipping a string value.
    SkipString {
        escape: bool,
    },
    /// Skipping an object or array value, `depth` deep.
    SkipNested {
        depth: u32,
        in_string: bool,
        escape: bool,
    },
    /// Skipping a number, `null`, or a literal of another key.
    SkipScalar,
    AfterValue,
    /// Finished, or not JSON we understand: nothing more to learn.
    Done,
}

/// Feed it the body's frames in order; read [`RequestScanner::info`] any time.
#[derive(Debug)]
pub struct RequestScanner {
    state: State,
    info: RequestInfo,
}

impl Default for RequestScanner {
    fn default() -> Self {
        Self {
            state: State::Start,
            info: RequestInfo::default(),
        }
    }
}

/// Skips string content up to and including its closing quote. Returns the
/// bytes consumed and whether the string ended; `escape` carries a trailing
/// backslash over to the next frame.
fn skip_string(bytes: &[u8], escape: &mut bool) -> (usize, bool) {
    if *escape {
        *escape = false;
        return (1, false);
    }
    match memchr::memchr2(b'"', b'\\', bytes) {
        None => (bytes.len(), false),
        Some(end) if bytes[end] == b'\\' => {
            *escape = true;
            (end + 1, false)
        }
        Some(end) => (end + 1, true),
    }
}

impl RequestScanner {
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.is_done() {
            let used = self.step(bytes);
            bytes = &bytes[used..];
        }
    }

    /// Consumes a prefix of `bytes` and returns its length; 0 only after a
    /// state change, when the same byte must be read again by the new state.
    fn step(&mut self, bytes: &[u8]) -> usize {
        let b = bytes[0];
        match &mut self.state {
            State::Start => match b {
                b'{' => self.state = State::BeforeKey,
                _ if b.is_ascii_whitespace() => {}
                _ => self.state = State::Done,
            },
            State::BeforeKey => match b {
                b'"' => {
                    self.state = State::Key {
                        buf: Some(Vec::new()),
                        escape: false,
                    }
                }
                b'}' => self.state = State::Done,
                b',' => {}
                _ if b.is_ascii_whitespace() => {}
                _ => self.state = State::Done,
            },
            State::Key { buf, escape } => {
                if *escape {
                    *escape = false;
                    return 1;
                }
                let Some(end) = memchr::memchr2(b'"', b'\\', bytes) else {
                    Self::push_bounded(buf, bytes, MAX_KEY);
                    return bytes.len();
                };
                Self::push_bounded(buf, &bytes[..end], MAX_KEY);
                if bytes[end] == b'\\' {
                    // An escaped key is never `model` or `stream` in practice.
                    *buf = None;
                    *escape = true;
                    return end + 1;
                }
                let field = match buf.as_deref() {
                    Some(b"model") => Field::Model,
                    Some(b"stream") => Field::Stream,
                    _ => Field::Other,
                };
                self.state = State::BeforeColon(field);
                return end + 1;
            }
            State::BeforeColon(field) => match b {
                b':' => self.state = State::BeforeValue(*field),
                _ if b.is_ascii_whitespace() => {}
                _ => self.state = State::Done,
            },
            State::BeforeValue(field) => {
                let field = *field;
                self.state = match (b, field) {
                    (_, _) if b.is_ascii_whitespace() => return 1,
                    (b'"', Field::Model) => State::Keep {
                        buf: Vec::new(),
                        escape: false,
                    },
                    (b'"', _) => State::SkipString { escape: false },
                    (b'{' | b'[', _) => State::SkipNested {
                        depth: 1,
                        in_string: false,
                        escape: false,
                    },
                    (_, Field::Stream) => State::Literal(vec![b]),
                    _ => State::SkipScalar,
                };
            }
            State::Keep { buf, escape } => {
                if *escape {
                    *escape = false;
                    match b {
                        b'"' | b'\\' | b'/' => buf.push(b),
                        // \uXXXX and control escapes never occur in model names: give up on it.
                        _ => {
                            self.state = State::SkipString { escape: false };
                            return 1;
                        }
                    }
                    return 1;
                }
                let Some(end) = memchr::memchr2(b'"', b'\\', bytes) else {
                    buf.extend_from_slice(bytes);
                    if buf.len() > MAX_MODEL {
                        self.state = State::SkipString { escape: false };
                    }
                    return bytes.len();
                };
                buf.extend_from_slice(&bytes[..end]);
                if bytes[end] == b'\\' {
                    *escape = true;
                    return end + 1;
                }
                if buf.len() <= MAX_MODEL {
                    self.info.model = String::from_utf8(std::mem::take(buf)).ok();
                }
                self.state = State::AfterValue;
                self.finish_if_complete();
                return end + 1;
            }
            State::Literal(buf) => {
                if b.is_ascii_alphabetic() && buf.len() < 5 {
                    buf.push(b);
                    return 1;
                }
                self.info.stream = match buf.as_slice() {
                    b"true" => Some(true),
                    b"false" => Some(false),
                    _ => self.info.stream,
                };
                self.state = State::AfterValue;
                self.finish_if_complete();
                // The byte after a literal belongs to what follows: read it again.
                return 0;
            }
            State::SkipString { escape } => {
                let (used, closed) = skip_string(bytes, escape);
                if closed {
                    self.state = State::AfterValue;
                }
                return used;
            }
            State::SkipNested {
                depth,
                in_string,
                escape,
            } => {
                if *in_string {
                    let (used, closed) = skip_string(bytes, escape);
                    *in_string = !closed;
                    return used;
                }
                match b {
                    b'"' => *in_string = true,
                    b'{' | b'[' => *depth += 1,
                    b'}' | b']' => {
                        *depth -= 1;
                        if *depth == 0 {
                            self.state = State::AfterValue;
                        }
                    }
                    _ => {}
                }
            }
            State::SkipScalar => match b {
                b',' | b'}' => {
                    self.state = State::AfterValue;
                    return 0;
                }
                _ => {}
            },
            State::AfterValue => match b {
                b',' => self.state = State::BeforeKey,
                b'}' => self.state = State::Done,
                _ if b.is_ascii_whitespace() => {}
                _ => self.state = State::Done,
            },
            State::Done => return bytes.len(),
        }
        1
    }

    fn push_bounded(key: &mut Option<Vec<u8>>, bytes: &[u8], max: usize) {
        if let Some(k) = key {
            if k.len() + bytes.len() > max {
                *key = None;
            } else {
                k.extend_from_slice(bytes);
            }
        }
    }

    /// Both keys known: the rest of the body cannot change them.
    fn finish_if_complete(&mut self) {
        if self.info.model.is_some() && self.info.stream.is_some() {
            self.state = State::Done;
        }
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
