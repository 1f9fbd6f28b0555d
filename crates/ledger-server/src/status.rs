//! The one place where a refusal becomes a gRPC status: a code, a lowercase message, a
//! `google.rpc.ErrorInfo` with the stable reason, and a `google.rpc.BadRequest` naming the field
//! when the input was malformed. No other module builds a `tonic::Status` from a refusal.

use std::collections::HashMap;

use ledger_domain::Refusal;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error of this API.
pub const ERROR_DOMAIN: &str = "voucherledger.v1";

/// The gRPC code of a refusal, and the request field it is about when the input was malformed.
pub fn classify(refusal: &Refusal) -> (Code, Option<&'static str>) {
    match refusal {
        Refusal::InvalidRequestId => (Code::InvalidArgument, Some("request_id")),
        Refusal::InvalidDate { field }
        | Refusal::UnknownEnumValue { field }
        | Refusal::InvalidNumber { field }
        | Refusal::InvalidAmount { field }
        | Refusal::InvalidIdentifier { field }
        | Refusal::TextTooLong { field, .. }
        | Refusal::EmptyList { field } => (Code::InvalidArgument, Some(field)),
        Refusal::InvalidEnterpriseNumber => (Code::InvalidArgument, Some("enterprise_number")),
        Refusal::InvalidNationalNumber => (Code::InvalidArgument, Some("national_number")),
        Refusal::InvalidQuantity { .. } => (Code::InvalidArgument, Some("quantity")),
        Refusal::InvalidHours { .. } => (Code::InvalidArgument, Some("hours")),
        Refusal::InvalidYear { .. } => (Code::InvalidArgument, Some("year")),
        Refusal::InvalidPeriod { .. } => (Code::InvalidArgument, Some("approved_until")),
        Refusal::EventTooLarge { .. } => (Code::InvalidArgument, None),
        Refusal::PermissionDenied { .. } => (Code::PermissionDenied, None),
        Refusal::RequestIdReused => (Code::AlreadyExists, Some("request_id")),
        Refusal::CompanyAlreadyRegistered { .. }
        | Refusal::BudgetAlreadyOpened { .. }
        | Refusal::ProviderAlreadyApproved
        | Refusal::ModuleAlreadyApproved => (Code::AlreadyExists, None),
        Refusal::CompanyNotFound
        | Refusal::ProviderNotFound
        | Refusal::ModuleNotFound
        | Refusal::RedemptionNotFound => (Code::NotFound, None),
        Refusal::PolicyNotInForce { .. }
        | Refusal::DateInFuture { .. }
        | Refusal::YearNotOpen { .. }
        | Refusal::CompanyNotEligible { .. }
        | Refusal::CompanyNotRegistered { .. }
        | Refusal::PaymentAmountMismatch { .. }
        | Refusal::QuotaExceeded { .. }
        | Refusal::BudgetNotOpened { .. }
        | Refusal::BudgetExhausted { .. }
        | Refusal::BudgetBelowUsed { .. }
        | Refusal::ProviderNotApproved { .. }
        | Refusal::ProviderAlreadyWithdrawn
        | Refusal::ModuleNotOfProvider
        | Refusal::ModuleNotApproved { .. }
        | Refusal::ModuleAlreadyWithdrawn
        | Refusal::ThemeNotApprovable { .. }
        | Refusal::VoucherTypeNotAccepted { .. }
        | Refusal::TraineeNotEligible { .. }
        | Refusal::HoursExceedModuleLength { .. }
        | Refusal::InsufficientVouchers { .. }
        | Refusal::VouchersExpired { .. }
        | Refusal::RedemptionNotOfProvider
        | Refusal::RedemptionAlreadyReversed
        | Refusal::ProviderBalanceTooLow { .. } => (Code::FailedPrecondition, None),
    }
}

/// The status answering a refusal. Its message is the refusal's own text, which never carries
/// a national register number.
pub fn refusal_status(refusal: &Refusal) -> Status {
    let (code, field) = classify(refusal);
    let message = refusal.to_string();
    let mut metadata = HashMap::new();
    if let Refusal::CompanyNotEligible { why } = refusal {
        metadata.insert("why".to_owned(), why.name().to_owned());
    }
    let mut details = ErrorDetails::with_error_info(refusal.reason(), ERROR_DOMAIN, metadata);
    if let (Code::InvalidArgument, Some(field)) = (code, field) {
        details.add_bad_request_violation(field, message.clone());
    }
    Status::with_error_details(code, message, details)
}

/// A status with a reason of the server's own (authentication, size, availability).
pub fn server_status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}
