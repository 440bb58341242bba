//! Request-side context: what the proxy decides about a request before
//! forwarding it. Each decision is made once and carried in the [`Exchange`](crate::exchange::Exchange).

pub mod baggage;
pub mod correlation;
mod route;
pub mod spans;
pub mod trace_context;

pub use correlation::{CorrelationId, Rejected};
pub use route::{Handler, RouteTable};
pub use spans::ExchangeTrace;
