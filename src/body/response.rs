//! The response body sent to the client: the upstream's stream (with the
//! optional `idle_timeout` between frames) or a body the proxy generated.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::error::{classify_upstream, ProxyErrorKind, ResponseBodyError};

#[derive(Debug)]
pub enum ResponseBody {
    Upstream {
        body: Incoming,
        idle: Option<IdleTimer>,
    },
    Generated {
        data: Option<Bytes>,
    },
}

/// Fires when no frame arrived for `timeout`; re-armed by every frame.
#[derive(Debug)]
pub struct IdleTimer {
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl ResponseBody {
    pub fn upstream(body: Incoming, idle_timeout: Option<Duration>) -> Self {
        let idle = idle_timeout.map(|timeout| IdleTimer {
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        });
        Self::Upstream { body, idle }
    }

    pub fn generated(data: Bytes) -> Self {
        Self::Generated { data: Some(data) }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        match self.get_mut() {
            Self::Generated { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Upstream { body, idle } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(idle) = idle {
                        let deadline = Instant::now() + idle.timeout;
                        idle.sleep.as_mut().reset(deadline);
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ResponseBodyError {
                    kind: classify_upstream(&e),
                    source: Some(e),
                }))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    let expired = idle
                        .as_mut()
                        .is_some_and(|idle| idle.sleep.as_mut().poll(cx).is_ready());
                    if expired {
                        Poll::Ready(Some(Err(ResponseBodyError {
                            kind: ProxyErrorKind::IdleTimeout,
                            source: None,
                        })))
                    } else {
                        Poll::Pending
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Generated { data } => data.is_none(),
            Self::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Generated { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Self::Upstream { body, .. } => body.size_hint(),
        }
    }
}
