//! The edge of every API service, in front of tonic's generated server: a caller is
//! authenticated from its headers (or its client certificate) before a byte of the body is
//! read, and the refusals tonic makes on its own, without the API's details, are answered as
//! the API answers everything: with a reason.
//!
//! The order a request meets, and what each step answers:
//!
//! 1. authentication, here: `UNAUTHENTICATED`, whatever the body holds;
//! 2. tonic's decoding cap (`max_decoding_message_size`), as the frame header announces the
//!    message's length: `INVALID_ARGUMENT` / `REQUEST_TOO_LARGE` with the API's limit (tonic
//!    says `OUT_OF_RANGE`; this module rewrites it);
//! 3. decoding: a body that is no valid message (a truncated varint, a wrong wire type, a
//!    missing message) is `INVALID_ARGUMENT` / `MALFORMED_REQUEST` (tonic says `INTERNAL`);
//! 4. then the handler: the caller's role, the API's own size limit, each field (`wire`).
//!
//! What this is not: it reads no body and knows no message type. It tells tonic's refusals
//! from the API's by the details: every status the API builds carries a `google.rpc.Status`
//! in `grpc-status-details-bin`, and tonic's transport and codec errors never do.

use std::convert::Infallible;
use std::task::{Context, Poll};

use ledger_domain::Principal;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::services::Ledger;
use crate::status::{malformed_request_status, request_too_large_status};

/// The principal the edge found, handed to the handler in the request's extensions so that it
/// is not looked up twice. Extensions never come from the wire.
#[derive(Clone, Debug)]
pub(crate) struct Authenticated(pub(crate) Principal);

/// One API service behind the edge.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
    ledger: Ledger,
}

impl<S> Edge<S> {
    pub fn new(inner: S, ledger: Ledger) -> Edge<S> {
        Edge { inner, ledger }
    }
}

impl<S: NamedService> NamedService for Edge<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Edge<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let bytes_max = self.ledger.message_bytes_max(request.uri().path());
        match self.ledger.authenticate_http(&request) {
            Ok(principal) => {
                request.extensions_mut().insert(Authenticated(principal));
            }
            Err(status) => {
                tracing::info!(
                    path = request.uri().path(),
                    "call refused before its body was read: unauthenticated"
                );
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        // The service that was polled ready takes this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(with_the_apis_reason(response, bytes_max))
        })
    }
}

/// `response`, unless it is one of tonic's own refusals of the request body (a trailers-only
/// answer without details): then the API's answer for it.
fn with_the_apis_reason(response: http::Response<Body>, bytes_max: usize) -> http::Response<Body> {
    let headers = response.headers();
    if headers.contains_key("grpc-status-details-bin") {
        return response;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return response;
    };
    match status.code() {
        // "Error, decoded message length too large: found N bytes, the limit is: M bytes"
        Code::OutOfRange => {
            tracing::info!(message = status.message(), "request over the decoding cap");
            request_too_large_status(announced_bytes(status.message()), bytes_max).into_http()
        }
        // prost's decode errors, "Missing request message.", a truncated frame, a bad
        // compression flag: all about the bytes the client sent.
        Code::Internal => {
            tracing::info!(message = status.message(), "request body cannot be decoded");
            malformed_request_status(status.message()).into_http()
        }
        _ => response,
    }
}

/// The length tonic read in the frame header, from its message ("found N bytes").
fn announced_bytes(message: &str) -> Option<usize> {
    let after = message.split("found ").nth(1)?;
    after.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::announced_bytes;

    #[test]
    fn the_announced_length_is_read_from_tonics_message() {
        assert_eq!(
            announced_bytes(
                "Error, decoded message length too large: found 262189 bytes, the limit is: 262144 bytes"
            ),
            Some(262_189)
        );
        assert_eq!(announced_bytes("something else"), None);
    }
}
