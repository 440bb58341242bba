//! Body wrappers. Each observes frames as they pass and never holds them:
//! nothing here buffers, so streams keep their timing through the proxy.

mod observed;
mod request;
mod response;

pub use observed::{ObservedBody, Recorder};
pub use request::{RequestBody, RequestBodyError, RequestStats};
pub use response::{ResponseBody, ResponseBodyError};
