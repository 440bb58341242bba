//! Request-side context: what the proxy decides about a request before
//! forwarding it. Each decision is made once and carried in the [`Exchange`](crate::exchange::Exchange).

mod correlation;
mod route;

pub use correlation::{CorrelationId, CorrelationSource};
pub use route::{Handler, RouteTable};
