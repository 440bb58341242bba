//! Request-side context: what the proxy decides about a request before
//! forwarding it. Each decision is made once and carried in the [`Exchange`](crate::exchange::Exchange).

pub mod b3;
pub mod baggage;
pub mod correlation;
pub mod exchange_trace;
mod hex;
pub mod propagation;
mod route;
pub mod trace_context;

pub use correlation::{CorrelationId, Rejected};
pub use exchange_trace::ExchangeTrace;
pub use propagation::Propagators;
pub use route::{Handler, RouteTable};
