//! Every reason the ledger can refuse a command, one variant each. A refusal writes nothing.
//! The server maps each variant, in one exhaustive match, to a gRPC code and a reason string;
//! [`Refusal::reason`] is that stable string.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::types::{Theme, TraineeStatus, VoucherType};

/// Why a company may not register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ineligibility {
    /// Non-profit associations (ASBL) are excluded.
    NonProfit,
    /// Public bodies of every kind are excluded.
    PublicBody,
    /// The main seat is not in French-speaking Wallonia.
    RegionNotCovered,
    /// More full-time equivalents than the policy allows (250).
    TooManyEmployees,
    /// Both the turnover and the balance-sheet total exceed their limits.
    TooLarge,
    /// Linked to a larger group.
    NotAutonomous,
    /// A secondary-occupation self-employed person active for less than the minimum months.
    SecondaryActivityTooShort,
}

impl Ineligibility {
    pub fn name(self) -> &'static str {
        match self {
            Ineligibility::NonProfit => "non_profit",
            Ineligibility::PublicBody => "public_body",
            Ineligibility::RegionNotCovered => "region_not_covered",
            Ineligibility::TooManyEmployees => "too_many_employees",
            Ineligibility::TooLarge => "too_large",
            Ineligibility::NotAutonomous => "not_autonomous",
            Ineligibility::SecondaryActivityTooShort => "secondary_activity_too_short",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // Malformed input: the command can never succeed as written.
    #[error("request id must be a uuid")]
    InvalidRequestId,
    #[error("{field} must be an iso date (yyyy-mm-dd)")]
    InvalidDate { field: &'static str },
    /// A well-formed date outside the years the ledger knows (the scheme began in 2004).
    #[error(
        "{field} must be a date in the years {} to {}",
        crate::decide::YEAR_MIN,
        crate::decide::YEAR_MAX
    )]
    DateOutOfRange { field: &'static str },
    #[error("{field} has no known value")]
    UnknownEnumValue { field: &'static str },
    #[error("{field} must be a decimal number with at most two decimals")]
    InvalidNumber { field: &'static str },
    #[error("invalid enterprise number")]
    InvalidEnterpriseNumber,
    /// Never carries the number itself: a national register number is personal data.
    #[error("invalid national register number")]
    InvalidNationalNumber,
    #[error("{field} is not a valid amount in euros with at most two decimals")]
    InvalidAmount { field: &'static str },
    #[error("{field} is not a valid identifier")]
    InvalidIdentifier { field: &'static str },
    #[error("{field} is longer than {bytes_max} bytes")]
    TextTooLong {
        field: &'static str,
        bytes_max: usize,
    },
    /// A C0 or C1 control character (NUL, ESC, CR, DEL, …) in free text: it would reach
    /// auditors' terminals and logs as it was sent.
    #[error("{field} holds a control character")]
    TextHasControlCharacters { field: &'static str },
    #[error("quantity must be between 1 and {quantity_max}")]
    InvalidQuantity { quantity_max: u32 },
    #[error("hours must be a whole number between 1 and {hours_max}")]
    InvalidHours { hours_max: u32 },
    #[error("year {year} is outside the years the ledger accepts")]
    InvalidYear { year: i32 },
    #[error("{field} must not be empty")]
    EmptyList { field: &'static str },
    /// `field` is the period's end in the request: an approval's `approved_until`, a usage
    /// code's `period_until`.
    #[error("the period ends on {until} before it starts on {from}")]
    InvalidPeriod {
        from: NaiveDate,
        until: NaiveDate,
        field: &'static str,
    },
    /// The command would record an event larger than the log accepts (a redemption drawing
    /// from very many small batches); split it.
    #[error(
        "the command's event would take {bytes} bytes, more than the {bytes_max} the log accepts"
    )]
    EventTooLarge { bytes: usize, bytes_max: usize },

    // Authorization.
    #[error("principal {principal} may not {action}")]
    PermissionDenied {
        principal: String,
        action: &'static str,
    },

    // Idempotency.
    #[error("request id was already used for a different request")]
    RequestIdReused,

    // Rules of the scheme.
    #[error("no policy is in force on {date}")]
    PolicyNotInForce { date: NaiveDate },
    #[error("date {date} is after today {today}")]
    DateInFuture { date: NaiveDate, today: NaiveDate },
    #[error("year {year} is not yet open for registration")]
    YearNotOpen { year: i32 },
    #[error("company is not eligible: {}", why.name())]
    CompanyNotEligible { why: Ineligibility },
    #[error("company is already registered for {year}")]
    CompanyAlreadyRegistered { year: i32 },
    #[error("company is not registered for {year}")]
    CompanyNotRegistered { year: i32 },
    #[error("company is not known to the ledger")]
    CompanyNotFound,
    #[error(
        "paid amount {paid_eur} differs from {expected_eur} (quantity times the employer share)"
    )]
    PaymentAmountMismatch {
        expected_eur: Decimal,
        paid_eur: Decimal,
    },
    #[error("quota of {quota} {} vouchers for {year} exceeded: {issued} issued, {requested} requested", voucher_type.name())]
    QuotaExceeded {
        voucher_type: VoucherType,
        year: i32,
        quota: u32,
        issued: u32,
        requested: u32,
    },
    #[error("no budget is open for {year}")]
    BudgetNotOpened { year: i32 },
    #[error("budget {year} is already open")]
    BudgetAlreadyOpened { year: i32 },
    #[error("budget {year} has {available_eur} available, {needed_eur} needed")]
    BudgetExhausted {
        year: i32,
        available_eur: Decimal,
        needed_eur: Decimal,
    },
    #[error("budget {year} cannot go below the {used_eur} already committed or spent")]
    BudgetBelowUsed { year: i32, used_eur: Decimal },
    #[error("provider is not known to the ledger")]
    ProviderNotFound,
    #[error("provider already has an approval in force over that period")]
    ProviderAlreadyApproved,
    #[error("provider approval is not in force on {date}")]
    ProviderNotApproved { date: NaiveDate },
    #[error("provider approval is already withdrawn")]
    ProviderAlreadyWithdrawn,
    #[error("module is not known to the ledger")]
    ModuleNotFound,
    #[error("module is already approved")]
    ModuleAlreadyApproved,
    #[error("module belongs to another provider")]
    ModuleNotOfProvider,
    #[error("module approval is not in force on {date}")]
    ModuleNotApproved { date: NaiveDate },
    #[error("module approval is already withdrawn")]
    ModuleAlreadyWithdrawn,
    #[error("theme {} is never approved", theme.name())]
    ThemeNotApprovable { theme: Theme },
    #[error("module does not accept {} vouchers", voucher_type.name())]
    VoucherTypeNotAccepted { voucher_type: VoucherType },
    #[error("trainee status {} may not be trained with vouchers", status.name())]
    TraineeNotEligible { status: TraineeStatus },
    #[error("module allows {hours_max} hours per worker: {already} already redeemed, {requested} requested")]
    HoursExceedModuleLength {
        hours_max: u32,
        already: u32,
        requested: u32,
    },
    #[error("wallet holds {available} usable vouchers, {requested} requested")]
    InsufficientVouchers { available: u32, requested: u32 },
    #[error("wallet holds only {unexpired} unexpired vouchers on the training date, {requested} requested")]
    VouchersExpired { unexpired: u32, requested: u32 },
    #[error("redemption is not known to the ledger")]
    RedemptionNotFound,
    /// Batch ids are unique across the ledger (the server uses the request id).
    #[error("batch id is already used")]
    BatchAlreadyExists,
    /// Redemption ids are unique across the ledger (the server uses the request id).
    #[error("redemption id is already used")]
    RedemptionAlreadyExists,
    #[error("redemption belongs to another provider")]
    RedemptionNotOfProvider,
    #[error("redemption is already reversed")]
    RedemptionAlreadyReversed,
    #[error(
        "a reversal dated {reversed_on} is before the training it reverses on {training_date}"
    )]
    ReversalBeforeTraining {
        reversed_on: NaiveDate,
        training_date: NaiveDate,
    },
    #[error("provider is owed {owed_eur}, less than the {amount_eur} asked")]
    ProviderBalanceTooLow {
        owed_eur: Decimal,
        amount_eur: Decimal,
    },

    // Usage codes (docs/RULES.md §14).
    #[error("usage code is not valid: nine symbols of 23456789ABCDEFGHJKLMNPQRSTVWXYZ with a correct check symbol")]
    InvalidUsageCode,
    #[error("the period of a usage code may last at most {days_max} days")]
    UsageCodePeriodTooLong { days_max: u32 },
    /// Order ids are unique across the ledger (the server uses the request id).
    #[error("usage code order id is already used")]
    UsageCodeOrderAlreadyExists,
    /// Every code derived from the order id is taken: never seen (1 000 derivations in a space
    /// of 29^8 codes), a refusal rather than a panic of the writer; another order id (request
    /// id) derives other codes.
    #[error(
        "no free usage code can be derived from this order id; order again under a new request id"
    )]
    UsageCodeNotDerivable,
    #[error("wallet holds {usable} vouchers valid over the whole period from {period_from} to {period_until}, {requested} requested")]
    UsageCodePeriodOutsideValidity {
        period_from: NaiveDate,
        period_until: NaiveDate,
        usable: u32,
        requested: u32,
    },
    #[error("usage code is not known to the ledger")]
    UsageCodeNotFound,
    #[error("usage code belongs to another provider")]
    UsageCodeNotOfProvider,
    #[error("usage code belongs to another company")]
    UsageCodeNotOfCompany,
    #[error("usage code was cancelled")]
    UsageCodeCancelled,
    #[error("usage code has no hours left")]
    UsageCodeUsedUp,
    #[error("usage code could be filed against until {filing_until}, its grace has passed")]
    UsageCodeLapsed { filing_until: NaiveDate },
    #[error("usage code is for module {expected}")]
    UsageCodeModuleMismatch { expected: String },
    #[error("usage code is for {} vouchers", expected.name())]
    UsageCodeVoucherTypeMismatch { expected: VoucherType },
    #[error("training date {training_date} is outside the usage code's period from {period_from} to {period_until}")]
    TrainingOutsideUsageCodePeriod {
        training_date: NaiveDate,
        period_from: NaiveDate,
        period_until: NaiveDate,
    },
    #[error("usage code holds {hours_left} hours, {requested} requested")]
    HoursExceedUsageCode { hours_left: u32, requested: u32 },
    #[error("training from {required_from} on needs a usage code, the company's consent")]
    UsageCodeRequired { required_from: NaiveDate },
}

impl Refusal {
    /// The stable, machine-readable reason, as sent in `google.rpc.ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidRequestId => "INVALID_REQUEST_ID",
            Refusal::InvalidDate { .. } => "INVALID_DATE",
            Refusal::DateOutOfRange { .. } => "DATE_OUT_OF_RANGE",
            Refusal::UnknownEnumValue { .. } => "UNKNOWN_ENUM_VALUE",
            Refusal::InvalidNumber { .. } => "INVALID_NUMBER",
            Refusal::InvalidEnterpriseNumber => "INVALID_ENTERPRISE_NUMBER",
            Refusal::InvalidNationalNumber => "INVALID_NATIONAL_NUMBER",
            Refusal::InvalidAmount { .. } => "INVALID_AMOUNT",
            Refusal::InvalidIdentifier { .. } => "INVALID_IDENTIFIER",
            Refusal::TextTooLong { .. } => "TEXT_TOO_LONG",
            Refusal::TextHasControlCharacters { .. } => "TEXT_HAS_CONTROL_CHARACTERS",
            Refusal::InvalidQuantity { .. } => "INVALID_QUANTITY",
            Refusal::InvalidHours { .. } => "INVALID_HOURS",
            Refusal::InvalidYear { .. } => "INVALID_YEAR",
            Refusal::EmptyList { .. } => "EMPTY_LIST",
            Refusal::InvalidPeriod { .. } => "INVALID_PERIOD",
            Refusal::EventTooLarge { .. } => "EVENT_TOO_LARGE",
            Refusal::PermissionDenied { .. } => "PERMISSION_DENIED",
            Refusal::RequestIdReused => "REQUEST_ID_REUSED",
            Refusal::PolicyNotInForce { .. } => "POLICY_NOT_IN_FORCE",
            Refusal::DateInFuture { .. } => "DATE_IN_FUTURE",
            Refusal::YearNotOpen { .. } => "YEAR_NOT_OPEN",
            Refusal::CompanyNotEligible { .. } => "COMPANY_NOT_ELIGIBLE",
            Refusal::CompanyAlreadyRegistered { .. } => "COMPANY_ALREADY_REGISTERED",
            Refusal::CompanyNotRegistered { .. } => "COMPANY_NOT_REGISTERED",
            Refusal::CompanyNotFound => "COMPANY_NOT_FOUND",
            Refusal::PaymentAmountMismatch { .. } => "PAYMENT_AMOUNT_MISMATCH",
            Refusal::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            Refusal::BudgetNotOpened { .. } => "BUDGET_NOT_OPENED",
            Refusal::BudgetAlreadyOpened { .. } => "BUDGET_ALREADY_OPENED",
            Refusal::BudgetExhausted { .. } => "BUDGET_EXHAUSTED",
            Refusal::BudgetBelowUsed { .. } => "BUDGET_BELOW_USED",
            Refusal::ProviderNotFound => "PROVIDER_NOT_FOUND",
            Refusal::ProviderAlreadyApproved => "PROVIDER_ALREADY_APPROVED",
            Refusal::ProviderNotApproved { .. } => "PROVIDER_NOT_APPROVED",
            Refusal::ProviderAlreadyWithdrawn => "PROVIDER_ALREADY_WITHDRAWN",
            Refusal::ModuleNotFound => "MODULE_NOT_FOUND",
            Refusal::ModuleAlreadyApproved => "MODULE_ALREADY_APPROVED",
            Refusal::ModuleNotOfProvider => "MODULE_NOT_OF_PROVIDER",
            Refusal::ModuleNotApproved { .. } => "MODULE_NOT_APPROVED",
            Refusal::ModuleAlreadyWithdrawn => "MODULE_ALREADY_WITHDRAWN",
            Refusal::ThemeNotApprovable { .. } => "THEME_NOT_APPROVABLE",
            Refusal::VoucherTypeNotAccepted { .. } => "VOUCHER_TYPE_NOT_ACCEPTED",
            Refusal::TraineeNotEligible { .. } => "TRAINEE_NOT_ELIGIBLE",
            Refusal::HoursExceedModuleLength { .. } => "HOURS_EXCEED_MODULE_LENGTH",
            Refusal::InsufficientVouchers { .. } => "INSUFFICIENT_VOUCHERS",
            Refusal::VouchersExpired { .. } => "VOUCHERS_EXPIRED",
            Refusal::RedemptionNotFound => "REDEMPTION_NOT_FOUND",
            Refusal::BatchAlreadyExists => "BATCH_ALREADY_EXISTS",
            Refusal::RedemptionAlreadyExists => "REDEMPTION_ALREADY_EXISTS",
            Refusal::RedemptionNotOfProvider => "REDEMPTION_NOT_OF_PROVIDER",
            Refusal::RedemptionAlreadyReversed => "REDEMPTION_ALREADY_REVERSED",
            Refusal::ReversalBeforeTraining { .. } => "REVERSAL_BEFORE_TRAINING",
            Refusal::ProviderBalanceTooLow { .. } => "PROVIDER_BALANCE_TOO_LOW",
            Refusal::InvalidUsageCode => "INVALID_USAGE_CODE",
            Refusal::UsageCodePeriodTooLong { .. } => "USAGE_CODE_PERIOD_TOO_LONG",
            Refusal::UsageCodeOrderAlreadyExists => "USAGE_CODE_ORDER_ALREADY_EXISTS",
            Refusal::UsageCodeNotDerivable => "USAGE_CODE_NOT_DERIVABLE",
            Refusal::UsageCodePeriodOutsideValidity { .. } => "USAGE_CODE_PERIOD_OUTSIDE_VALIDITY",
            Refusal::UsageCodeNotFound => "USAGE_CODE_NOT_FOUND",
            Refusal::UsageCodeNotOfProvider => "USAGE_CODE_NOT_OF_PROVIDER",
            Refusal::UsageCodeNotOfCompany => "USAGE_CODE_NOT_OF_COMPANY",
            Refusal::UsageCodeCancelled => "USAGE_CODE_CANCELLED",
            Refusal::UsageCodeUsedUp => "USAGE_CODE_USED_UP",
            Refusal::UsageCodeLapsed { .. } => "USAGE_CODE_LAPSED",
            Refusal::UsageCodeModuleMismatch { .. } => "USAGE_CODE_MODULE_MISMATCH",
            Refusal::UsageCodeVoucherTypeMismatch { .. } => "USAGE_CODE_VOUCHER_TYPE_MISMATCH",
            Refusal::TrainingOutsideUsageCodePeriod { .. } => "TRAINING_OUTSIDE_USAGE_CODE_PERIOD",
            Refusal::HoursExceedUsageCode { .. } => "HOURS_EXCEED_USAGE_CODE",
            Refusal::UsageCodeRequired { .. } => "USAGE_CODE_REQUIRED",
        }
    }
}
