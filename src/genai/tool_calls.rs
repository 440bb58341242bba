//! Counting the tool calls a response asks for, with its usage and in the
//! same scan: each document's `tool_calls` elements are staged, and counted
//! once the document proves valid. A streamed call arrives as several
//! `delta` elements with the same `index` in the same choice: one call.

/// Calls told apart per response (and named); more are counted, not named.
const MAX_CALLS: usize = 64;

/// The tool calls a response asked for: how many, and how many by name
/// (calls past the first 64 of a response, or without a name, are counted
/// only in `count`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCalls {
    pub count: u64,
    pub names: Vec<(String, u64)>,
}

/// One `tool_calls` element as read.
#[derive(Debug, Clone, Default)]
struct Element {
    choice: u64,
    /// In a streamed `delta`: later elements with the same index continue it.
    delta: bool,
    index: u64,
    name: Option<String>,
}

/// The elements of the document being read.
#[derive(Debug, Default)]
pub(crate) struct StagedCalls {
    elements: Vec<Element>,
    current: Option<Element>,
}

impl StagedCalls {
    /// An element starts; `position` is its index unless it says otherwise.
    pub fn begin(&mut self, choice: u64, delta: bool, position: u64) {
        self.current = Some(Element {
            choice,
            delta,
            index: position,
            name: None,
        });
    }

    pub fn index(&mut self, index: u64) {
        if let Some(e) = self.current.as_mut() {
            e.index = index;
        }
    }

    pub fn name(&mut self, name: &str) {
        if let Some(e) = self.current.as_mut() {
            e.name.get_or_insert_with(|| name.to_owned());
        }
    }

    pub fn end(&mut self) {
        if let Some(e) = self.current.take() {
            if self.elements.len() < MAX_CALLS {
                self.elements.push(e);
            }
        }
    }

    /// Ready for the next document, its buffer kept.
    pub fn clear(&mut self) {
        self.elements.clear();
        self.current = None;
    }

    pub fn heap_bytes(&self) -> usize {
        self.elements.capacity() * std::mem::size_of::<Element>()
            + self
                .elements
                .iter()
                .map(|e| e.name.as_ref().map_or(0, String::capacity))
                .sum::<usize>()
    }
}

/// The calls of the whole response.
#[derive(Debug, Default)]
pub(crate) struct CallCounter {
    /// `(choice, index)` of each streamed call, and whether it was named.
    streamed: Vec<((u64, u64), bool)>,
    /// The last streamed call, told apart even past `MAX_CALLS`: servers
    /// stream calls one after the other.
    last: Option<(u64, u64)>,
    count: u64,
    names: Vec<(String, u64)>,
}

impl CallCounter {
    /// Counts the elements of a valid document.
    pub fn commit(&mut self, staged: &StagedCalls) {
        for e in &staged.elements {
            let named = e.name.is_some();
            if e.delta {
                let key = (e.choice, e.index);
                let last = self.last.replace(key);
                // A later fragment names the call only if none did.
                if let Some(i) = self.streamed.iter().position(|(k, _)| *k == key) {
                    if named && !self.streamed[i].1 {
                        self.streamed[i].1 = true;
                        self.name(e.name.as_deref());
                    }
                    continue;
                }
                if last == Some(key) {
                    continue;
                }
                if self.streamed.len() < MAX_CALLS {
                    self.streamed.push((key, named));
                }
            }
            self.count += 1;
            self.name(e.name.as_deref());
        }
    }

    fn name(&mut self, name: Option<&str>) {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return;
        };
        if let Some((_, n)) = self.names.iter_mut().find(|(n, _)| n == name) {
            *n += 1;
        } else if self.names.len() < MAX_CALLS {
            self.names.push((name.to_owned(), 1));
        }
    }

    pub fn tool_calls(&self) -> ToolCalls {
        ToolCalls {
            count: self.count,
            names: self.names.clone(),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.streamed.capacity() * std::mem::size_of::<((u64, u64), bool)>()
            + self.names.capacity() * std::mem::size_of::<(String, u64)>()
            + self.names.iter().map(|(n, _)| n.capacity()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(staged: &mut StagedCalls, choice: u64, delta: bool, index: u64, name: Option<&str>) {
        staged.begin(choice, delta, 99);
        staged.index(index);
        if let Some(name) = name {
            staged.name(name);
        }
        staged.end();
    }

    #[test]
    fn streamed_fragments_are_one_call_whole_elements_each_one() {
        let mut counter = CallCounter::default();
        let mut doc = StagedCalls::default();
        element(&mut doc, 0, true, 0, Some("f"));
        element(&mut doc, 0, true, 1, None);
        counter.commit(&doc);
        doc.clear();
        element(&mut doc, 0, true, 0, None);
        element(&mut doc, 0, true, 1, Some("g"));
        element(&mut doc, 1, true, 0, Some("f"));
        counter.commit(&doc);
        doc.clear();
        element(&mut doc, 0, false, 0, Some("f"));
        element(&mut doc, 0, false, 0, Some("f"));
        counter.commit(&doc);
        let calls = counter.tool_calls();
        assert_eq!(calls.count, 5);
        assert_eq!(calls.names, [("f".to_owned(), 4), ("g".to_owned(), 1)]);
    }
}
