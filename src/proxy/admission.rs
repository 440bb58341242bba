//! Overload protection for requests in flight, as a tower layer around the
//! proxy service: `AdmissionLayer` + `Admission<S>` + a named
//! `ResponseFuture` + `AdmittedBody`, in tower-http's shape.
//!
//! tower's own `ConcurrencyLimit` + `LoadShed` do not fit a streaming proxy:
//! `ConcurrencyLimit` gives its permit back when the response future
//! resolves, at the response headers, so a 40 s LLM stream would stop
//! counting after its first byte; and `LoadShed` fails the call before the
//! proxy has an exchange, so the 503 could carry no correlation id and would
//! be recorded nowhere. Here the permit rides in the response body and is
//! released when the body ends or is dropped; a request that finds no place
//! is marked [`Shed`] and still reaches the proxy, which answers it with its
//! JSON 503 through the path every failure takes (metrics, span, access
//! log), before anything is sent upstream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::limit::{Limit, Permit};

/// In a request's extensions: no place was free; the proxy answers 503.
#[derive(Debug, Clone, Copy)]
pub struct Shed;

/// Admits requests while `limit` has places.
#[derive(Clone)]
pub struct AdmissionLayer {
    limit: Arc<Limit>,
}

impl AdmissionLayer {
    pub fn new(limit: Arc<Limit>) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            limit: self.limit.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    limit: Arc<Limit>,
}

impl<S, B, ResBody> Service<Request<B>> for Admission<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<AdmittedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let permit = match self.limit.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => {
                req.extensions_mut().insert(Shed);
                None
            }
        };
        ResponseFuture {
            inner: self.inner.call(req),
            permit,
        }
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        permit: Option<Permit>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<AdmittedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let permit = this.permit.take();
        Poll::Ready(Ok(response.map(|inner| AdmittedBody { inner, permit })))
    }
}

pin_project! {
    /// The response body, holding the exchange's place until it ends.
    pub struct AdmittedBody<B> {
        #[pin]
        inner: B,
        permit: Option<Permit>,
    }
}

impl<B: Body> Body for AdmittedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = frame {
            // Free the place as soon as the exchange is over, not when hyper
            // gets round to dropping the body.
            this.permit.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
