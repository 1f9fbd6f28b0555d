//! What went wrong with a call, how it is shown, and the exit status it gives.
//!
//! The server's statuses carry a `google.rpc.ErrorInfo` with a stable reason (`QUOTA_EXCEEDED`)
//! and, for malformed input, a `google.rpc.BadRequest` naming the fields; both are shown. A
//! status without an `ErrorInfo` whose code means that no answer came back (UNAVAILABLE,
//! DEADLINE_EXCEEDED, CANCELLED, or UNKNOWN with a transport error behind it) is the
//! transport's, not the server's: the server could not be reached, and the exit status says so.

use std::process::ExitCode;

use serde_json::{json, Value};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Exit status when the server refused the command or failed.
pub const EXIT_REFUSED: u8 = 1;
/// Exit status for a bad command line (what clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the server could not be reached, or did not answer in time.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why a call did not give an answer.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error status.
    Refused(Status),
    /// No answer came back from the server at `server`.
    Unreachable {
        server: String,
        code: Code,
        detail: String,
    },
}

impl Failure {
    /// Sorts a status from a call: the server's own, or the transport's.
    pub fn from_status(status: Status, server: &str) -> Failure {
        // UNKNOWN with a transport error behind it: the connection broke during the call, as
        // when a server in mutual TLS refuses the client's certificate (or its absence) just
        // after the handshake.
        let broken_connection =
            status.code() == Code::Unknown && std::error::Error::source(&status).is_some();
        let transport_code = broken_connection
            || matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
            );
        if transport_code && status.get_details_error_info().is_none() {
            let mut detail = status.message().to_owned();
            if let Some(source) = std::error::Error::source(&status) {
                detail = format!("{detail}: {}", error_chain(source));
            }
            return Failure::Unreachable {
                server: server.to_owned(),
                code: status.code(),
                detail,
            };
        }
        Failure::Refused(status)
    }

    /// A connection that could not be made.
    pub fn unreachable(server: &str, error: &(dyn std::error::Error + 'static)) -> Failure {
        Failure::Unreachable {
            server: server.to_owned(),
            code: Code::Unavailable,
            detail: error_chain(error),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Refused(_) => ExitCode::from(EXIT_REFUSED),
            Failure::Unreachable { .. } => ExitCode::from(EXIT_UNREACHABLE),
        }
    }

    /// The failure as shown: code, reason, message and field violations.
    pub fn report(&self) -> ErrorReport {
        match self {
            Failure::Refused(status) => ErrorReport {
                code: code_name(status.code()),
                reason: status.get_details_error_info().map(|info| info.reason),
                message: status.message().to_owned(),
                field_violations: status
                    .get_details_bad_request()
                    .map(|bad_request| {
                        bad_request
                            .field_violations
                            .into_iter()
                            .map(|violation| FieldViolation {
                                field: violation.field,
                                description: violation.description,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Failure::Unreachable {
                server,
                code,
                detail,
            } => ErrorReport {
                code: code_name(*code),
                reason: None,
                message: format!("no answer from the server at {server}: {detail}"),
                field_violations: Vec::new(),
            },
        }
    }
}

/// An error as voucherctl shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReport {
    /// The gRPC code's canonical name, such as `FAILED_PRECONDITION`.
    pub code: &'static str,
    /// The stable reason of the server's `ErrorInfo`, such as `QUOTA_EXCEEDED`.
    pub reason: Option<String>,
    pub message: String,
    pub field_violations: Vec<FieldViolation>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl ErrorReport {
    /// For stderr: `error: CODE: message (reason REASON)`, then one line per field violation.
    /// What the server sent is shown with its control characters escaped (see
    /// [`crate::output::one_line`]).
    pub fn human(&self) -> String {
        use crate::output::one_line;
        let mut text = format!("error: {}: {}", self.code, one_line(&self.message));
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" (reason {})", one_line(reason)));
        }
        text.push('\n');
        for violation in &self.field_violations {
            text.push_str(&format!(
                "  field {}: {}\n",
                one_line(&violation.field),
                one_line(&violation.description)
            ));
        }
        text
    }

    /// For stdout with `--json`; `request_id` is the write's, so that a retry can reuse it.
    pub fn json(&self, request_id: Option<&str>) -> Value {
        let mut value = json!({
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "field_violations": self.field_violations.iter().map(|violation| json!({
                "field": violation.field,
                "description": violation.description,
            })).collect::<Vec<_>>(),
        });
        if let (Some(request_id), Value::Object(object)) = (request_id, &mut value) {
            object.insert("request_id".to_owned(), request_id.into());
        }
        value
    }
}

/// The canonical name of a gRPC code, as in `google.rpc.Code`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its sources, `outer: inner: innermost`, without repeating a message that a
/// wrapper already includes.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::ErrorDetails;

    use super::*;

    const SERVER: &str = "http://127.0.0.1:50051/";

    fn server_status(code: Code, reason: &str, message: &str) -> Status {
        Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, "voucherledger.v1", HashMap::new()),
        )
    }

    #[test]
    fn a_refusal_shows_code_message_and_reason() {
        let failure = Failure::from_status(
            server_status(
                Code::FailedPrecondition,
                "QUOTA_EXCEEDED",
                "quota of 400 general vouchers for 2025 exceeded: 10 issued, 500 requested",
            ),
            SERVER,
        );
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_REFUSED));
        let report = failure.report();
        assert_eq!(
            report.human(),
            "error: FAILED_PRECONDITION: quota of 400 general vouchers for 2025 exceeded: \
             10 issued, 500 requested (reason QUOTA_EXCEEDED)\n"
        );
        assert_eq!(
            report.json(None),
            json!({
                "code": "FAILED_PRECONDITION",
                "reason": "QUOTA_EXCEEDED",
                "message": "quota of 400 general vouchers for 2025 exceeded: 10 issued, 500 requested",
                "field_violations": [],
            })
        );
    }

    #[test]
    fn malformed_input_shows_the_field_violations() {
        let mut details =
            ErrorDetails::with_error_info("INVALID_DATE", "voucherledger.v1", HashMap::new());
        details.add_bad_request_violation("payment_date", "payment_date is not a date");
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "payment_date is not a date",
            details,
        );
        let report = Failure::from_status(status, SERVER).report();
        assert_eq!(
            report.human(),
            "error: INVALID_ARGUMENT: payment_date is not a date (reason INVALID_DATE)\n  \
             field payment_date: payment_date is not a date\n"
        );
        let value = report.json(Some("6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30"));
        assert_eq!(value["field_violations"][0]["field"], "payment_date");
        assert_eq!(value["request_id"], "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30");
    }

    #[test]
    fn a_status_without_details_has_no_reason() {
        let report = Failure::from_status(Status::unimplemented("no such method"), SERVER).report();
        assert_eq!(report.human(), "error: UNIMPLEMENTED: no such method\n");
        assert_eq!(report.json(None)["reason"], Value::Null);
    }

    #[test]
    fn the_servers_own_unavailable_is_a_refusal_not_unreachable() {
        let failure = Failure::from_status(
            server_status(
                Code::Unavailable,
                "LEDGER_UNAVAILABLE",
                "the ledger's writer is not running; retry with the same request id",
            ),
            SERVER,
        );
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_REFUSED));
    }

    #[test]
    fn a_transport_status_means_unreachable() {
        for status in [
            Status::unavailable("tcp connect error"),
            Status::cancelled("Timeout expired"),
            Status::deadline_exceeded("deadline"),
        ] {
            let failure = Failure::from_status(status, SERVER);
            assert_eq!(failure.exit_code(), ExitCode::from(EXIT_UNREACHABLE));
            assert!(failure
                .report()
                .message
                .starts_with("no answer from the server at http://127.0.0.1:50051/"));
        }
    }

    #[test]
    fn a_connection_broken_during_the_call_means_unreachable() {
        let error = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "received fatal alert: CertificateRequired",
        );
        let status = Status::from_error(Box::new(error));
        assert_eq!(status.code(), Code::Unknown);
        let failure = Failure::from_status(status, SERVER);
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_UNREACHABLE));
        assert!(failure.report().message.contains("CertificateRequired"));
        // The server's own UNKNOWN, without a source, stays a refusal.
        let failure = Failure::from_status(Status::unknown("something odd"), SERVER);
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_REFUSED));
    }

    #[test]
    fn a_connection_error_shows_its_sources() {
        let error = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let failure = Failure::unreachable(SERVER, &error);
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_UNREACHABLE));
        assert_eq!(
            failure.report().human(),
            "error: UNAVAILABLE: no answer from the server at http://127.0.0.1:50051/: refused\n"
        );
    }
}
