//! The one place where a refusal becomes a gRPC status: a code, a lowercase message, a
//! `google.rpc.ErrorInfo` with the stable reason, and a `google.rpc.BadRequest` naming the field
//! when the input was malformed. The reasons are the domain's [`Refusal`]s and the server's own
//! [`ServerReason`]s, each with one code here; no other module builds a `tonic::Status`.

use std::collections::HashMap;

use ledger_domain::Refusal;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error of this API.
pub const ERROR_DOMAIN: &str = "voucherledger.v1";

/// A reason the server gives of its own, beside the domain's [`Refusal`]s: authentication,
/// the size and shape of a request, batches, the audit calls, and the state of the ledger
/// itself. Each has exactly one gRPC code, in [`ServerReason::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerReason {
    Unauthenticated,
    PermissionDenied,
    RequestTooLarge,
    MalformedRequest,
    BatchEmpty,
    BatchTooLong,
    PageTokenInvalid,
    PageTokenMismatch,
    PageTokenStale,
    TextTooLong,
    UnknownEventType,
    InvalidBackupDir,
    BackupDirNotEmpty,
    BackupFailed,
    SubscriberTooSlow,
    LedgerUnavailable,
    LedgerOutcomeUnknown,
    ReplayFailed,
    ChainBroken,
    StoreError,
    /// A write sent to a hot standby (issue 19): retry it at the writer.
    NotTheWriter,
    /// `Backup` on a ledger whose log is in PostgreSQL: the database's own tools back it up.
    BackupByTheDatabase,
}

impl ServerReason {
    /// Every server reason, for the README table test; [`ServerReason::index`] makes a
    /// reason missing from it a compile error.
    pub const ALL: [ServerReason; 22] = [
        ServerReason::Unauthenticated,
        ServerReason::PermissionDenied,
        ServerReason::RequestTooLarge,
        ServerReason::MalformedRequest,
        ServerReason::BatchEmpty,
        ServerReason::BatchTooLong,
        ServerReason::PageTokenInvalid,
        ServerReason::PageTokenMismatch,
        ServerReason::PageTokenStale,
        ServerReason::TextTooLong,
        ServerReason::UnknownEventType,
        ServerReason::InvalidBackupDir,
        ServerReason::BackupDirNotEmpty,
        ServerReason::BackupFailed,
        ServerReason::SubscriberTooSlow,
        ServerReason::LedgerUnavailable,
        ServerReason::LedgerOutcomeUnknown,
        ServerReason::ReplayFailed,
        ServerReason::ChainBroken,
        ServerReason::StoreError,
        ServerReason::NotTheWriter,
        ServerReason::BackupByTheDatabase,
    ];

    /// The place of this reason in [`ServerReason::ALL`], found at compile time. The match is
    /// exhaustive on purpose: a new variant does not compile until it gets an arm here, and its
    /// arm (`const { position_in_all(..) }`, like the others) does not compile until the
    /// variant is listed in `ALL`, so `ALL`, the README table test and the uniqueness test
    /// cannot forget it.
    pub const fn index(self) -> usize {
        match self {
            ServerReason::Unauthenticated => {
                const { position_in_all(ServerReason::Unauthenticated) }
            }
            ServerReason::PermissionDenied => {
                const { position_in_all(ServerReason::PermissionDenied) }
            }
            ServerReason::RequestTooLarge => {
                const { position_in_all(ServerReason::RequestTooLarge) }
            }
            ServerReason::MalformedRequest => {
                const { position_in_all(ServerReason::MalformedRequest) }
            }
            ServerReason::BatchEmpty => const { position_in_all(ServerReason::BatchEmpty) },
            ServerReason::BatchTooLong => const { position_in_all(ServerReason::BatchTooLong) },
            ServerReason::PageTokenInvalid => {
                const { position_in_all(ServerReason::PageTokenInvalid) }
            }
            ServerReason::PageTokenMismatch => {
                const { position_in_all(ServerReason::PageTokenMismatch) }
            }
            ServerReason::PageTokenStale => const { position_in_all(ServerReason::PageTokenStale) },
            ServerReason::TextTooLong => const { position_in_all(ServerReason::TextTooLong) },
            ServerReason::UnknownEventType => {
                const { position_in_all(ServerReason::UnknownEventType) }
            }
            ServerReason::InvalidBackupDir => {
                const { position_in_all(ServerReason::InvalidBackupDir) }
            }
            ServerReason::BackupDirNotEmpty => {
                const { position_in_all(ServerReason::BackupDirNotEmpty) }
            }
            ServerReason::BackupFailed => const { position_in_all(ServerReason::BackupFailed) },
            ServerReason::SubscriberTooSlow => {
                const { position_in_all(ServerReason::SubscriberTooSlow) }
            }
            ServerReason::LedgerUnavailable => {
                const { position_in_all(ServerReason::LedgerUnavailable) }
            }
            ServerReason::LedgerOutcomeUnknown => {
                const { position_in_all(ServerReason::LedgerOutcomeUnknown) }
            }
            ServerReason::ReplayFailed => const { position_in_all(ServerReason::ReplayFailed) },
            ServerReason::ChainBroken => const { position_in_all(ServerReason::ChainBroken) },
            ServerReason::StoreError => const { position_in_all(ServerReason::StoreError) },
            ServerReason::NotTheWriter => const { position_in_all(ServerReason::NotTheWriter) },
            ServerReason::BackupByTheDatabase => {
                const { position_in_all(ServerReason::BackupByTheDatabase) }
            }
        }
    }

    /// The stable `ErrorInfo.reason`. `TEXT_TOO_LONG` and `PERMISSION_DENIED` are also domain
    /// reasons: a client sees one meaning whichever side found it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerReason::Unauthenticated => "UNAUTHENTICATED",
            ServerReason::PermissionDenied => "PERMISSION_DENIED",
            ServerReason::RequestTooLarge => "REQUEST_TOO_LARGE",
            ServerReason::MalformedRequest => "MALFORMED_REQUEST",
            ServerReason::BatchEmpty => "BATCH_EMPTY",
            ServerReason::BatchTooLong => "BATCH_TOO_LONG",
            ServerReason::PageTokenInvalid => "PAGE_TOKEN_INVALID",
            ServerReason::PageTokenMismatch => "PAGE_TOKEN_MISMATCH",
            ServerReason::PageTokenStale => "PAGE_TOKEN_STALE",
            ServerReason::TextTooLong => "TEXT_TOO_LONG",
            ServerReason::UnknownEventType => "UNKNOWN_EVENT_TYPE",
            ServerReason::InvalidBackupDir => "INVALID_BACKUP_DIR",
            ServerReason::BackupDirNotEmpty => "BACKUP_DIR_NOT_EMPTY",
            ServerReason::BackupFailed => "BACKUP_FAILED",
            ServerReason::SubscriberTooSlow => "SUBSCRIBER_TOO_SLOW",
            ServerReason::LedgerUnavailable => "LEDGER_UNAVAILABLE",
            ServerReason::LedgerOutcomeUnknown => "LEDGER_OUTCOME_UNKNOWN",
            ServerReason::ReplayFailed => "REPLAY_FAILED",
            ServerReason::ChainBroken => "CHAIN_BROKEN",
            ServerReason::StoreError => "STORE_ERROR",
            ServerReason::NotTheWriter => "NOT_THE_WRITER",
            ServerReason::BackupByTheDatabase => "BACKUP_BY_THE_DATABASE",
        }
    }

    /// The gRPC code every answer with this reason carries.
    pub fn code(self) -> Code {
        match self {
            ServerReason::Unauthenticated => Code::Unauthenticated,
            ServerReason::PermissionDenied => Code::PermissionDenied,
            ServerReason::RequestTooLarge
            | ServerReason::MalformedRequest
            | ServerReason::BatchEmpty
            | ServerReason::BatchTooLong
            | ServerReason::PageTokenInvalid
            | ServerReason::PageTokenMismatch
            | ServerReason::PageTokenStale
            | ServerReason::TextTooLong
            | ServerReason::UnknownEventType
            | ServerReason::InvalidBackupDir => Code::InvalidArgument,
            ServerReason::BackupDirNotEmpty | ServerReason::BackupFailed => {
                Code::FailedPrecondition
            }
            ServerReason::SubscriberTooSlow => Code::ResourceExhausted,
            ServerReason::LedgerUnavailable => Code::Unavailable,
            ServerReason::LedgerOutcomeUnknown => Code::DeadlineExceeded,
            // The log holds what cannot be folded or chained: not a retryable failure.
            ServerReason::ReplayFailed | ServerReason::ChainBroken => Code::DataLoss,
            ServerReason::StoreError => Code::Internal,
            ServerReason::NotTheWriter => Code::Unavailable,
            ServerReason::BackupByTheDatabase => Code::FailedPrecondition,
        }
    }
}

/// Where `reason` stands in [`ServerReason::ALL`]; a compile error (in
/// [`ServerReason::index`]'s inline constants) when it is not there.
const fn position_in_all(reason: ServerReason) -> usize {
    let mut position = 0;
    while position < ServerReason::ALL.len() {
        // Fieldless variants compare by discriminant: `==` is not a const fn.
        if ServerReason::ALL[position] as usize == reason as usize {
            return position;
        }
        position += 1;
    }
    panic!("a server reason is missing from ServerReason::ALL")
}

/// The gRPC code of a refusal, and the request field it is about when the input was malformed.
pub fn classify(refusal: &Refusal) -> (Code, Option<&'static str>) {
    match refusal {
        Refusal::InvalidRequestId => (Code::InvalidArgument, Some("request_id")),
        Refusal::InvalidDate { field }
        | Refusal::DateOutOfRange { field }
        | Refusal::UnknownEnumValue { field }
        | Refusal::InvalidNumber { field }
        | Refusal::InvalidAmount { field }
        | Refusal::InvalidIdentifier { field }
        | Refusal::TextTooLong { field, .. }
        | Refusal::TextHasControlCharacters { field }
        | Refusal::EmptyList { field } => (Code::InvalidArgument, Some(field)),
        Refusal::InvalidEnterpriseNumber => (Code::InvalidArgument, Some("enterprise_number")),
        Refusal::InvalidNationalNumber => (Code::InvalidArgument, Some("national_number")),
        Refusal::InvalidQuantity { .. } => (Code::InvalidArgument, Some("quantity")),
        Refusal::InvalidHours { .. } => (Code::InvalidArgument, Some("hours")),
        Refusal::InvalidYear { .. } => (Code::InvalidArgument, Some("year")),
        Refusal::InvalidPeriod { field, .. } => (Code::InvalidArgument, Some(field)),
        Refusal::EventTooLarge { .. } => (Code::InvalidArgument, None),
        Refusal::PermissionDenied { .. } => (Code::PermissionDenied, None),
        Refusal::RequestIdReused => (Code::AlreadyExists, Some("request_id")),
        Refusal::CompanyAlreadyRegistered { .. }
        | Refusal::BudgetAlreadyOpened { .. }
        | Refusal::ProviderAlreadyApproved
        | Refusal::ModuleAlreadyApproved
        | Refusal::BatchAlreadyExists
        | Refusal::RedemptionAlreadyExists => (Code::AlreadyExists, None),
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
        | Refusal::ReversalBeforeTraining { .. }
        | Refusal::ProviderBalanceTooLow { .. } => (Code::FailedPrecondition, None),
        // Usage codes (docs/RULES.md §20).
        Refusal::InvalidUsageCode => (Code::InvalidArgument, Some("usage_code")),
        Refusal::UsageCodePeriodTooLong { .. } => (Code::InvalidArgument, Some("period_until")),
        Refusal::UsageCodeOrderAlreadyExists => (Code::AlreadyExists, Some("request_id")),
        // Another request id derives other codes: the client retries at a higher level.
        Refusal::UsageCodeNotDerivable => (Code::Aborted, None),
        Refusal::UsageCodeNotFound => (Code::NotFound, None),
        Refusal::UsageCodePeriodOutsideValidity { .. }
        | Refusal::UsageCodeNotOfProvider
        | Refusal::UsageCodeNotOfCompany
        | Refusal::UsageCodeCancelled
        | Refusal::UsageCodeUsedUp
        | Refusal::UsageCodeLapsed { .. }
        | Refusal::UsageCodeModuleMismatch { .. }
        | Refusal::UsageCodeVoucherTypeMismatch { .. }
        | Refusal::TrainingOutsideUsageCodePeriod { .. }
        | Refusal::HoursExceedUsageCode { .. }
        | Refusal::UsageCodeRequired { .. } => (Code::FailedPrecondition, None),
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
    // Malformed input names its field twice: in `ErrorInfo.metadata.field`, for clients that
    // read only the reason, and in the `BadRequest`.
    if let (Code::InvalidArgument, Some(field)) = (code, field) {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    let mut details = ErrorDetails::with_error_info(refusal.reason(), ERROR_DOMAIN, metadata);
    if let (Code::InvalidArgument, Some(field)) = (code, field) {
        details.add_bad_request_violation(field, message.clone());
    }
    Status::with_error_details(code, message, details)
}

/// INVALID_ARGUMENT with a reason of the server's own and a `BadRequest` naming the field, for
/// malformed input that is not a domain refusal (subscription filters, backup folders).
pub fn invalid_field_status(reason: ServerReason, field: &str, message: String) -> Status {
    debug_assert_eq!(reason.code(), Code::InvalidArgument, "{reason:?}");
    let mut details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    details.add_bad_request_violation(field, message.clone());
    Status::with_error_details(reason.code(), message, details)
}

/// The `google.rpc.Status` of one item of a batch: the code, message and details (ErrorInfo,
/// BadRequest) the same request alone would have been answered with.
pub fn item_status(status: &Status) -> tonic_types::pb::Status {
    // tonic carries a status with details as an encoded `google.rpc.Status`; one built without
    // details (none in this crate) still gets its code and message.
    match <tonic_types::pb::Status as prost::Message>::decode(status.details()) {
        Ok(encoded) if !status.details().is_empty() => encoded,
        _ => tonic_types::pb::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Vec::new(),
        },
    }
}

/// INVALID_ARGUMENT / REQUEST_TOO_LARGE, with the limit in `ErrorInfo.metadata.bytes_max` and,
/// when known, the request's size in `metadata.bytes`: the same answer whether the API's own
/// check or tonic's decoding cap found the request too large.
pub fn request_too_large_status(bytes: Option<usize>, bytes_max: usize) -> Status {
    let mut metadata = HashMap::new();
    metadata.insert("bytes_max".to_owned(), bytes_max.to_string());
    let message = match bytes {
        Some(bytes) => {
            metadata.insert("bytes".to_owned(), bytes.to_string());
            format!("request of {bytes} bytes is larger than {bytes_max} bytes")
        }
        None => format!("request is larger than {bytes_max} bytes"),
    };
    let reason = ServerReason::RequestTooLarge;
    let details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
    Status::with_error_details(reason.code(), message, details)
}

/// INVALID_ARGUMENT / MALFORMED_REQUEST: the body is not an encoded message of the call's type.
/// `detail` is what the decoder said (it never holds the body's bytes).
pub fn malformed_request_status(detail: &str) -> Status {
    let detail = detail.trim_end_matches('.');
    let reason = ServerReason::MalformedRequest;
    let details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(
        reason.code(),
        format!(
            "the request body cannot be decoded: {}",
            detail.to_lowercase()
        ),
        details,
    )
}

/// A status with a reason of the server's own (authentication, size, availability).
pub fn server_status(reason: ServerReason, message: impl Into<String>) -> Status {
    server_status_with(reason, message, HashMap::new())
}

/// [`server_status`] with `ErrorInfo.metadata`: what a client needs to act on the answer
/// (where a subscriber resumes, say).
pub fn server_status_with(
    reason: ServerReason,
    message: impl Into<String>,
    metadata: HashMap<String, String>,
) -> Status {
    let details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
    Status::with_error_details(reason.code(), message, details)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use ledger_domain::{Ineligibility, Refusal, Theme, TraineeStatus, VoucherType};
    use rust_decimal::Decimal;
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::{classify, refusal_status, server_status, ServerReason, ERROR_DOMAIN};
    use crate::metrics::calls::code_name;

    const README: &str = include_str!("../../../README.md");

    /// The place of each variant. An exhaustive match: a new variant of `Refusal` does not
    /// compile here until it is given a place, and then `every_variant_has_an_example` fails
    /// until `examples` has one of it.
    fn variant_index(refusal: &Refusal) -> usize {
        match refusal {
            Refusal::InvalidRequestId => 0,
            Refusal::InvalidDate { .. } => 1,
            Refusal::DateOutOfRange { .. } => 2,
            Refusal::UnknownEnumValue { .. } => 3,
            Refusal::InvalidNumber { .. } => 4,
            Refusal::InvalidEnterpriseNumber => 5,
            Refusal::InvalidNationalNumber => 6,
            Refusal::InvalidAmount { .. } => 7,
            Refusal::InvalidIdentifier { .. } => 8,
            Refusal::TextTooLong { .. } => 9,
            Refusal::TextHasControlCharacters { .. } => 10,
            Refusal::InvalidQuantity { .. } => 11,
            Refusal::InvalidHours { .. } => 12,
            Refusal::InvalidYear { .. } => 13,
            Refusal::EmptyList { .. } => 14,
            Refusal::InvalidPeriod { .. } => 15,
            Refusal::EventTooLarge { .. } => 16,
            Refusal::PermissionDenied { .. } => 17,
            Refusal::RequestIdReused => 18,
            Refusal::PolicyNotInForce { .. } => 19,
            Refusal::DateInFuture { .. } => 20,
            Refusal::YearNotOpen { .. } => 21,
            Refusal::CompanyNotEligible { .. } => 22,
            Refusal::CompanyAlreadyRegistered { .. } => 23,
            Refusal::CompanyNotRegistered { .. } => 24,
            Refusal::CompanyNotFound => 25,
            Refusal::PaymentAmountMismatch { .. } => 26,
            Refusal::QuotaExceeded { .. } => 27,
            Refusal::BudgetNotOpened { .. } => 28,
            Refusal::BudgetAlreadyOpened { .. } => 29,
            Refusal::BudgetExhausted { .. } => 30,
            Refusal::BudgetBelowUsed { .. } => 31,
            Refusal::ProviderNotFound => 32,
            Refusal::ProviderAlreadyApproved => 33,
            Refusal::ProviderNotApproved { .. } => 34,
            Refusal::ProviderAlreadyWithdrawn => 35,
            Refusal::ModuleNotFound => 36,
            Refusal::ModuleAlreadyApproved => 37,
            Refusal::ModuleNotOfProvider => 38,
            Refusal::ModuleNotApproved { .. } => 39,
            Refusal::ModuleAlreadyWithdrawn => 40,
            Refusal::ThemeNotApprovable { .. } => 41,
            Refusal::VoucherTypeNotAccepted { .. } => 42,
            Refusal::TraineeNotEligible { .. } => 43,
            Refusal::HoursExceedModuleLength { .. } => 44,
            Refusal::InsufficientVouchers { .. } => 45,
            Refusal::VouchersExpired { .. } => 46,
            Refusal::RedemptionNotFound => 47,
            Refusal::RedemptionNotOfProvider => 48,
            Refusal::RedemptionAlreadyReversed => 49,
            Refusal::ProviderBalanceTooLow { .. } => 50,
            Refusal::BatchAlreadyExists => 51,
            Refusal::RedemptionAlreadyExists => 52,
            Refusal::ReversalBeforeTraining { .. } => 53,
            Refusal::InvalidUsageCode => 54,
            Refusal::UsageCodePeriodTooLong { .. } => 55,
            Refusal::UsageCodeOrderAlreadyExists => 56,
            Refusal::UsageCodePeriodOutsideValidity { .. } => 57,
            Refusal::UsageCodeNotFound => 58,
            Refusal::UsageCodeNotOfProvider => 59,
            Refusal::UsageCodeNotOfCompany => 60,
            Refusal::UsageCodeCancelled => 61,
            Refusal::UsageCodeUsedUp => 62,
            Refusal::UsageCodeLapsed { .. } => 63,
            Refusal::UsageCodeModuleMismatch { .. } => 64,
            Refusal::UsageCodeVoucherTypeMismatch { .. } => 65,
            Refusal::TrainingOutsideUsageCodePeriod { .. } => 66,
            Refusal::HoursExceedUsageCode { .. } => 67,
            Refusal::UsageCodeRequired { .. } => 68,
            Refusal::UsageCodeNotDerivable => 69,
        }
    }
    const VARIANT_COUNT: usize = 70;

    fn examples() -> Vec<Refusal> {
        let day = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default();
        let eur = Decimal::new(1500, 2);
        vec![
            Refusal::InvalidRequestId,
            Refusal::InvalidDate {
                field: "payment_date",
            },
            Refusal::DateOutOfRange {
                field: "approved_from",
            },
            Refusal::UnknownEnumValue {
                field: "voucher_type",
            },
            Refusal::InvalidNumber { field: "fte" },
            Refusal::InvalidEnterpriseNumber,
            Refusal::InvalidNationalNumber,
            Refusal::InvalidAmount {
                field: "paid_amount_eur",
            },
            Refusal::InvalidIdentifier {
                field: "provider_id",
            },
            Refusal::TextTooLong {
                field: "name",
                bytes_max: 200,
            },
            Refusal::TextHasControlCharacters { field: "reason" },
            Refusal::InvalidQuantity {
                quantity_max: 10_000,
            },
            Refusal::InvalidHours { hours_max: 2_000 },
            Refusal::InvalidYear { year: 1999 },
            Refusal::EmptyList { field: "themes" },
            Refusal::InvalidPeriod {
                from: day,
                until: day,
                field: "approved_until",
            },
            Refusal::EventTooLarge {
                bytes: 5000,
                bytes_max: 4096,
            },
            Refusal::PermissionDenied {
                principal: "auditor".into(),
                action: "issue_vouchers",
            },
            Refusal::RequestIdReused,
            Refusal::PolicyNotInForce { date: day },
            Refusal::DateInFuture {
                date: day,
                today: day,
            },
            Refusal::YearNotOpen { year: 2030 },
            Refusal::CompanyNotEligible {
                why: Ineligibility::NonProfit,
            },
            Refusal::CompanyAlreadyRegistered { year: 2025 },
            Refusal::CompanyNotRegistered { year: 2025 },
            Refusal::CompanyNotFound,
            Refusal::PaymentAmountMismatch {
                expected_eur: eur,
                paid_eur: eur,
            },
            Refusal::QuotaExceeded {
                voucher_type: VoucherType::General,
                year: 2025,
                quota: 400,
                issued: 400,
                requested: 1,
            },
            Refusal::BudgetNotOpened { year: 2025 },
            Refusal::BudgetAlreadyOpened { year: 2025 },
            Refusal::BudgetExhausted {
                year: 2025,
                available_eur: eur,
                needed_eur: eur,
            },
            Refusal::BudgetBelowUsed {
                year: 2025,
                used_eur: eur,
            },
            Refusal::ProviderNotFound,
            Refusal::ProviderAlreadyApproved,
            Refusal::ProviderNotApproved { date: day },
            Refusal::ProviderAlreadyWithdrawn,
            Refusal::ModuleNotFound,
            Refusal::ModuleAlreadyApproved,
            Refusal::ModuleNotOfProvider,
            Refusal::ModuleNotApproved { date: day },
            Refusal::ModuleAlreadyWithdrawn,
            Refusal::ThemeNotApprovable {
                theme: Theme::WellBeing,
            },
            Refusal::VoucherTypeNotAccepted {
                voucher_type: VoucherType::Languages,
            },
            Refusal::TraineeNotEligible {
                status: TraineeStatus::Intern,
            },
            Refusal::HoursExceedModuleLength {
                hours_max: 40,
                already: 39,
                requested: 2,
            },
            Refusal::InsufficientVouchers {
                available: 0,
                requested: 1,
            },
            Refusal::VouchersExpired {
                unexpired: 0,
                requested: 1,
            },
            Refusal::RedemptionNotFound,
            Refusal::RedemptionNotOfProvider,
            Refusal::RedemptionAlreadyReversed,
            Refusal::ProviderBalanceTooLow {
                owed_eur: eur,
                amount_eur: eur,
            },
            Refusal::BatchAlreadyExists,
            Refusal::RedemptionAlreadyExists,
            Refusal::ReversalBeforeTraining {
                reversed_on: day,
                training_date: day,
            },
            Refusal::InvalidUsageCode,
            Refusal::UsageCodePeriodTooLong { days_max: 366 },
            Refusal::UsageCodeOrderAlreadyExists,
            Refusal::UsageCodePeriodOutsideValidity {
                period_from: day,
                period_until: day,
                usable: 0,
                requested: 1,
            },
            Refusal::UsageCodeNotFound,
            Refusal::UsageCodeNotOfProvider,
            Refusal::UsageCodeNotOfCompany,
            Refusal::UsageCodeCancelled,
            Refusal::UsageCodeUsedUp,
            Refusal::UsageCodeLapsed { filing_until: day },
            Refusal::UsageCodeModuleMismatch {
                expected: "MOD-1".into(),
            },
            Refusal::UsageCodeVoucherTypeMismatch {
                expected: VoucherType::General,
            },
            Refusal::TrainingOutsideUsageCodePeriod {
                training_date: day,
                period_from: day,
                period_until: day,
            },
            Refusal::HoursExceedUsageCode {
                hours_left: 1,
                requested: 2,
            },
            Refusal::UsageCodeRequired { required_from: day },
            Refusal::UsageCodeNotDerivable,
        ]
    }

    #[test]
    fn every_variant_has_an_example() {
        let mut seen: Vec<usize> = examples().iter().map(variant_index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..VARIANT_COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn readme_lists_every_reason_with_its_code() {
        for refusal in examples() {
            let (code, _) = classify(&refusal);
            let row = format!("| `{}` | {} |", refusal.reason(), code_name(code));
            assert!(README.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn every_status_carries_its_reason_and_malformed_input_names_its_field() {
        for refusal in examples() {
            let status = refusal_status(&refusal);
            let (code, field) = classify(&refusal);
            assert_eq!(status.code(), code);
            let info = status
                .get_details_error_info()
                .expect("every refusal carries ErrorInfo");
            assert_eq!(info.reason, refusal.reason());
            assert_eq!(info.domain, ERROR_DOMAIN);
            let violations = status
                .get_details_bad_request()
                .map(|bad| bad.field_violations)
                .unwrap_or_default();
            match (code, field) {
                (Code::InvalidArgument, Some(field)) => {
                    assert_eq!(violations.len(), 1, "{refusal:?}");
                    assert_eq!(violations[0].field, field);
                }
                _ => assert!(violations.is_empty(), "{refusal:?}"),
            }
            let message = status.message();
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()) && !message.ends_with('.'),
                "messages start lowercase and have no trailing period: {message}"
            );
        }
    }

    #[test]
    fn readme_lists_every_server_reason_with_its_code() {
        for reason in ServerReason::ALL {
            let row = format!("| `{}` | {} |", reason.as_str(), code_name(reason.code()));
            assert!(README.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn every_server_reason_stands_at_its_index_in_all_once() {
        for (position, reason) in ServerReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), position, "{reason:?}");
        }
    }

    #[test]
    fn a_server_status_carries_its_reason_and_code() {
        for reason in ServerReason::ALL {
            let status = server_status(reason, "the message");
            assert_eq!(status.code(), reason.code(), "{reason:?}");
            let info = status.get_details_error_info().expect("error info");
            assert_eq!(info.reason, reason.as_str());
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
        let reasons: std::collections::HashSet<&str> = ServerReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        assert_eq!(
            reasons.len(),
            ServerReason::ALL.len(),
            "reasons are distinct"
        );
    }

    #[test]
    fn ineligibility_travels_in_error_info_metadata() {
        let status = refusal_status(&Refusal::CompanyNotEligible {
            why: Ineligibility::RegionNotCovered,
        });
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(
            info.metadata.get("why").map(String::as_str),
            Some("region_not_covered")
        );
    }
}
