//! The tracing target of the access log's lines: the access sink writes on
//! it, the log filter lets it through whatever the level, and the OTLP log
//! layer leaves it to the sink (which makes its typed record itself). Its own
//! file so that neither the writers nor the OTLP layer owns the other.

pub const ACCESS_TARGET: &str = "access";
