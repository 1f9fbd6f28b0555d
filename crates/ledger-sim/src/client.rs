//! What `simulate` and `bench` both need to talk to the ledger as its clients: the demo
//! configuration's tokens, a bearer header, a request that carries it, and a refusal read back
//! from a `Status` (code, `google.rpc.ErrorInfo` reason, message).
//!
//! Never a national register number in a refusal: callers name their request without it.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// Bearer tokens of `config/demo.toml` (listed in its header), which the in-process server
/// loads with the demo configuration.
pub const DEMO_ADMINISTRATION_TOKEN: &str = "demo-administration-token";
pub const DEMO_OPERATOR_TOKEN: &str = "demo-operator-token";
pub const DEMO_AUDITOR_TOKEN: &str = "demo-auditor-token";
/// The demo configuration's providers and their tokens.
pub const DEMO_PROVIDERS: [(&str, &str); 2] = [
    ("AG-0012", "demo-provider-AG-0012-token"),
    ("AG-0099", "demo-provider-AG-0099-token"),
];

/// The `authorization` value of a bearer token.
pub fn bearer(token: &str) -> MetadataValue<Ascii> {
    // The tokens here (the demo's and those made per run) are ASCII letters, digits and
    // dashes, always valid in a header.
    MetadataValue::try_from(format!("Bearer {token}"))
        .expect("an ascii bearer token is a valid header value")
}

/// `message` as a request with the `authorization` header `token`.
pub fn authorized<T>(message: T, token: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

/// A request the ledger refused, as the tools report it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{request} was refused: {code:?} {reason}: {message}")]
pub struct Refused {
    /// The request, named for an operator (never with a national register number).
    pub request: String,
    pub code: Code,
    /// The `google.rpc.ErrorInfo` reason, empty when the status has none.
    pub reason: String,
    pub message: String,
}

/// `status`, the answer to `request`, as a [`Refused`].
pub fn refused(request: impl Into<String>, status: &Status) -> Refused {
    Refused {
        request: request.into(),
        code: status.code(),
        reason: status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default(),
        message: status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_the_code_the_reason_and_the_message() {
        let status = Status::with_error_details(
            Code::FailedPrecondition,
            "not enough vouchers",
            tonic_types::ErrorDetails::with_error_info(
                "INSUFFICIENT_VOUCHERS",
                "voucherledger",
                std::collections::HashMap::new(),
            ),
        );
        let refusal = refused("redeem_hours of worker 3", &status);
        assert_eq!(refusal.code, Code::FailedPrecondition);
        assert_eq!(refusal.reason, "INSUFFICIENT_VOUCHERS");
        assert_eq!(
            refusal.to_string(),
            "redeem_hours of worker 3 was refused: FailedPrecondition INSUFFICIENT_VOUCHERS: \
             not enough vouchers"
        );
    }

    #[test]
    fn a_status_without_error_info_has_an_empty_reason() {
        let refusal = refused("get_head", &Status::unavailable("stopping"));
        assert_eq!(refusal.reason, "");
        assert_eq!(refusal.code, Code::Unavailable);
    }

    #[test]
    fn an_authorized_request_carries_the_bearer_token() {
        let request = authorized((), &bearer(DEMO_AUDITOR_TOKEN));
        assert_eq!(
            request.metadata().get("authorization"),
            Some(&bearer("demo-auditor-token"))
        );
    }
}
