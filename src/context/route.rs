//! Route classification: the bounded `handler` name of a request.
//!
//! Only configured routes name a handler; everything else is `other`, so no
//! client can create new label values or span names by inventing paths.

use std::sync::Arc;

use crate::config::RouteConfig;

/// The handler a request matched. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// Position in the route table; `routes.len()` for `other`.
    pub index: usize,
    pub name: Arc<str>,
}

pub const OTHER: &str = "other";

#[derive(Debug)]
enum Matcher {
    Exact(String),
    Prefix(String),
}

/// The configured routes, matched in order.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<(Matcher, Handler)>,
    other: Handler,
}

impl RouteTable {
    pub fn new(routes: &[RouteConfig]) -> Self {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let matcher = match (&r.path, &r.prefix) {
                    (Some(path), _) => Matcher::Exact(path.clone()),
                    (None, Some(prefix)) => Matcher::Prefix(prefix.clone()),
                    (None, None) => Matcher::Prefix("/".to_owned()),
                };
                let handler = Handler {
                    index,
                    name: Arc::from(r.name.as_str()),
                };
                (matcher, handler)
            })
            .collect::<Vec<_>>();
        let other = Handler {
            index: routes.len(),
            name: Arc::from(OTHER),
        };
        Self { routes, other }
    }

    /// The first route matching `path` (without query), else `other`.
    pub fn classify(&self, path: &str) -> &Handler {
        self.routes
            .iter()
            .find(|(m, _)| match m {
                Matcher::Exact(p) => path == p,
                Matcher::Prefix(p) => path.starts_with(p.as_str()),
            })
            .map_or(&self.other, |(_, h)| h)
    }

    /// Every handler, `other` last: for pre-creating metric handles.
    pub fn handlers(&self) -> impl Iterator<Item = &Handler> {
        self.routes
            .iter()
            .map(|(_, h)| h)
            .chain(std::iter::once(&self.other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, path: Option<&str>, prefix: Option<&str>) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            path: path.map(Into::into),
            prefix: prefix.map(Into::into),
        }
    }

    #[test]
    fn first_match_wins_else_other() {
        let table = RouteTable::new(&[
            route("/api/chat", Some("/api/chat"), None),
            route("/agents/{id}", None, Some("/agents/")),
        ]);
        assert_eq!(&*table.classify("/api/chat").name, "/api/chat");
        assert_eq!(&*table.classify("/api/chat/x").name, "other");
        assert_eq!(&*table.classify("/agents/42/run").name, "/agents/{id}");
        assert_eq!(table.classify("/random").index, 2);
        assert_eq!(table.handlers().count(), 3);
    }
}
