//! Body wrappers. Each observes frames as they pass and never holds them:
//! nothing here buffers, so streams keep their timing through the proxy.

mod observed;
mod request;
mod response;

pub use observed::ObservedBody;
pub use request::RequestBody;
pub use response::ResponseBody;
