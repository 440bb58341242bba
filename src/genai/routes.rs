//! Which paths carry GenAI traffic, and what they mean.

/// `gen_ai.operation.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    TextCompletion,
    Embeddings,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::TextCompletion => "text_completion",
            Self::Embeddings => "embeddings",
        }
    }
}

/// `gen_ai.provider.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ollama,
    OpenAi,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenAiRoute {
    pub operation: Operation,
    pub provider: Provider,
    /// What the API does when the request has no `stream` key: Ollama's
    /// generate and chat stream, everything else answers in one piece.
    pub streams_by_default: bool,
}

impl GenAiRoute {
    /// The GenAI route of a request path (exact match, query excluded).
    pub fn of(path: &str) -> Option<Self> {
        use Operation::*;
        use Provider::*;
        let (operation, provider, streams_by_default) = match path {
            "/api/generate" => (TextCompletion, Ollama, true),
            "/api/chat" => (Chat, Ollama, true),
            "/api/embed" | "/api/embeddings" => (Embeddings, Ollama, false),
            "/v1/chat/completions" => (Chat, OpenAi, false),
            "/v1/completions" => (TextCompletion, OpenAi, false),
            "/v1/embeddings" => (Embeddings, OpenAi, false),
            _ => return None,
        };
        Some(Self {
            operation,
            provider,
            streams_by_default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let chat = GenAiRoute::of("/api/chat").unwrap();
        assert_eq!(
            (
                chat.operation.as_str(),
                chat.provider.as_str(),
                chat.streams_by_default
            ),
            ("chat", "ollama", true)
        );
        let v1 = GenAiRoute::of("/v1/chat/completions").unwrap();
        assert_eq!(
            (
                v1.operation.as_str(),
                v1.provider.as_str(),
                v1.streams_by_default
            ),
            ("chat", "openai", false)
        );
        assert_eq!(
            GenAiRoute::of("/api/embeddings").unwrap().operation,
            Operation::Embeddings
        );
        assert_eq!(
            GenAiRoute::of("/v1/completions")
                .unwrap()
                .operation
                .as_str(),
            "text_completion"
        );
        assert!(GenAiRoute::of("/api/tags").is_none());
        assert!(GenAiRoute::of("/api/generate/x").is_none());
    }
}
