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
//! And one answer tonic would give without guidance: when a write's deadline (`grpc-timeout`)
//! passes, tonic ends the call with `CANCELLED` / "Timeout expired", though the command may be
//! written all the same. The edge answers a little before that deadline instead, with
//! `DEADLINE_EXCEEDED` / `LEDGER_OUTCOME_UNKNOWN`: the write may have been made, retry with the
//! same request id. (A client whose own timer fires first still sees its library's status.)
//!
//! What this is not: it reads no body and knows no message type. It tells tonic's refusals
//! from the API's by the details: every status the API builds carries a `google.rpc.Status`
//! in `grpc-status-details-bin`, and tonic's transport and codec errors never do.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use ledger_domain::Principal;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::services::Ledger;
use crate::status::{
    malformed_request_status, request_too_large_status, server_status, ServerReason,
};

/// How much earlier than the client's deadline the edge answers a write, at most, in
/// milliseconds: its answer must cross the network before the client's own timer fires (a
/// tenth of the deadline when that is less, so that short deadlines keep most of their time).
const DEADLINE_MARGIN_MS_MAX: u64 = 250;

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
        let answer_within = is_write(request.uri().path())
            .then(|| grpc_timeout(request.headers()))
            .flatten()
            .map(|deadline| {
                deadline.saturating_sub(
                    (deadline / 10).min(Duration::from_millis(DEADLINE_MARGIN_MS_MAX)),
                )
            });
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
            let call = inner.call(request);
            let response = match answer_within {
                None => call.await?,
                Some(within) => match tokio::time::timeout(within, call).await {
                    Ok(response) => response?,
                    Err(_) => return Ok(outcome_unknown().into_http()),
                },
            };
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

/// Whether the call at `path` is a write: every method of the administration's, operator's and
/// provider's and company's services but their reads (`Get…`, `List…`).
fn is_write(path: &str) -> bool {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return false;
    };
    matches!(
        service,
        "voucherledger.v1.AdministrationService"
            | "voucherledger.v1.OperatorService"
            | "voucherledger.v1.ProviderService"
            | "voucherledger.v1.CompanyService"
    ) && !method.starts_with("Get")
        && !method.starts_with("List")
}

/// The client's deadline from `grpc-timeout` (at most 8 digits and a unit, as tonic reads it).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let split = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// DEADLINE_EXCEEDED / LEDGER_OUTCOME_UNKNOWN: the write's deadline passed before its answer.
fn outcome_unknown() -> Status {
    tracing::info!("a write's deadline passed before its answer; its outcome is unknown");
    server_status(
        ServerReason::LedgerOutcomeUnknown,
        "the call's deadline passed before the write was answered; it may have been made: retry with the same request id",
    )
}

/// The length tonic read in the frame header, from its message ("found N bytes").
fn announced_bytes(message: &str) -> Option<usize> {
    let after = message.split("found ").nth(1)?;
    after.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{announced_bytes, grpc_timeout, is_write};
    use std::time::Duration;
    use tonic::codegen::http::{HeaderMap, HeaderValue};

    #[test]
    fn writes_are_the_three_write_services_but_their_reads() {
        assert!(is_write("/voucherledger.v1.ProviderService/RedeemHours"));
        assert!(is_write(
            "/voucherledger.v1.OperatorService/IssueVouchersBatch"
        ));
        assert!(!is_write("/voucherledger.v1.OperatorService/GetWallet"));
        assert!(!is_write("/voucherledger.v1.AuditService/Backup"));
        assert!(!is_write("/voucherledger.v1.ReportService/GetBudget"));
    }

    #[test]
    fn the_grpc_timeout_header_is_read_as_tonic_reads_it() {
        let read = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                "grpc-timeout",
                HeaderValue::from_str(value).expect("a header value"),
            );
            grpc_timeout(&headers)
        };
        assert_eq!(read("100m"), Some(Duration::from_millis(100)));
        assert_eq!(read("2S"), Some(Duration::from_secs(2)));
        assert_eq!(read("5u"), Some(Duration::from_micros(5)));
        assert_eq!(read("123456789m"), None);
        assert_eq!(read("m"), None);
        assert_eq!(read("10x"), None);
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

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
