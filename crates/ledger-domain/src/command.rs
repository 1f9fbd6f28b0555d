//! What the ledger's users ask of it, and who is asking. Commands are plain data, already
//! parsed into the domain's types at the edge; `decide` checks every rule.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{EnterpriseNumber, Identifier, WorkerPseudonym};
use crate::types::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use crate::usage_code::UsageCode;

/// Who acts. A provider acts only as itself, and so does a company.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// The Public Service of Wallonia: budgets, provider and module approvals.
    Administration,
    /// The issuer: company registrations, issuance, expiry, payouts.
    Operator,
    /// An approved provider, by its approval id.
    Provider(Identifier),
    /// Reads everything, changes nothing.
    Auditor,
    /// A company, by its enterprise number: orders and cancels its own usage codes and reads
    /// its own wallet, codes and statement.
    Company(EnterpriseNumber),
}

impl Principal {
    /// Parses "administration", "operator", "auditor", "provider:<approval id>" or
    /// "company:<enterprise number>".
    pub fn parse(text: &str) -> Option<Principal> {
        match text {
            "administration" => Some(Principal::Administration),
            "operator" => Some(Principal::Operator),
            "auditor" => Some(Principal::Auditor),
            _ => {
                if let Some(number) = text.strip_prefix("company:") {
                    return EnterpriseNumber::parse(number).map(Principal::Company);
                }
                text.strip_prefix("provider:")
                    .and_then(Identifier::parse)
                    .map(Principal::Provider)
            }
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Administration => f.write_str("administration"),
            Principal::Operator => f.write_str("operator"),
            Principal::Provider(id) => write!(f, "provider:{id}"),
            Principal::Auditor => f.write_str("auditor"),
            Principal::Company(number) => write!(f, "company:{number}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenBudget {
    pub year: i32,
    pub allocated_eur: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdjustBudget {
    pub year: i32,
    /// The new allocation of the year (not a difference).
    pub allocated_eur: Decimal,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveProvider {
    pub provider_id: Identifier,
    pub name: String,
    pub approved_from: NaiveDate,
    pub approved_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithdrawProvider {
    pub provider_id: Identifier,
    /// First day on which the approval is no longer in force.
    pub withdrawn_from: NaiveDate,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApproveModule {
    pub module_id: Identifier,
    pub provider_id: Identifier,
    pub title: String,
    /// Approved length for one worker, in whole hours.
    pub hours_max: u32,
    pub accepted_voucher_types: Vec<VoucherType>,
    pub themes: Vec<Theme>,
    pub approved_from: NaiveDate,
    pub approved_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithdrawModule {
    pub module_id: Identifier,
    pub withdrawn_from: NaiveDate,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterCompany {
    pub enterprise_number: EnterpriseNumber,
    pub year: i32,
    pub name: String,
    pub legal_form: LegalForm,
    pub region: Region,
    pub fte: Decimal,
    pub turnover_eur: Decimal,
    pub balance_sheet_total_eur: Decimal,
    pub autonomous: bool,
    /// Months of activity of a secondary-occupation self-employed person; 0 otherwise.
    pub secondary_activity_months: u32,
    /// NACE-BEL code of the main activity, such as "62.01" or "62.010".
    pub nace_sector: String,
    pub registered_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueVouchers {
    /// Id of the new batch, chosen by the caller (the server uses the request id).
    pub batch_id: Uuid,
    pub enterprise_number: EnterpriseNumber,
    pub voucher_type: VoucherType,
    pub quantity: u32,
    pub paid_amount_eur: Decimal,
    /// The day the company's payment was received; vouchers are never issued before it.
    pub payment_date: NaiveDate,
    pub payment_reference: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedeemHours {
    /// Id of the new redemption, chosen by the caller (the server uses the request id).
    pub redemption_id: Uuid,
    pub provider_id: Identifier,
    pub module_id: Identifier,
    pub enterprise_number: EnterpriseNumber,
    pub worker: WorkerPseudonym,
    pub trainee_status: TraineeStatus,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub training_date: NaiveDate,
    /// The company's consent: the usage code the hours are filed against. Absent, the hours
    /// are drawn from the wallet's free vouchers, which the policy allows only for training
    /// before `usage_code_required_from`. Left out of the JSON when absent, so that the digest
    /// bytes of version 1 of requests without a code stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_code: Option<UsageCode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReverseRedemption {
    pub redemption_id: Uuid,
    pub provider_id: Identifier,
    pub reason: String,
    pub reversed_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpireVouchers {
    /// Vouchers valid until a day before this date expire.
    pub as_of: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordPayout {
    pub provider_id: Identifier,
    pub amount_eur: Decimal,
    pub payout_date: NaiveDate,
    pub payout_reference: String,
}

/// A company's consent to one training: `hours` vouchers of one type earmarked for one provider
/// (and one module when named), for training between two dates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderUsageCode {
    /// Id of the order, chosen by the caller (the server uses the request id); the code is
    /// derived from it.
    pub order_id: Uuid,
    pub enterprise_number: EnterpriseNumber,
    pub provider_id: Identifier,
    pub module_id: Option<Identifier>,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
}

/// Gives the code's unused hours back to the wallet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelUsageCode {
    pub code: UsageCode,
    /// The company the caller says the code is of: a company may cancel only its own.
    pub enterprise_number: EnterpriseNumber,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    OpenBudget(OpenBudget),
    AdjustBudget(AdjustBudget),
    ApproveProvider(ApproveProvider),
    WithdrawProvider(WithdrawProvider),
    ApproveModule(ApproveModule),
    WithdrawModule(WithdrawModule),
    RegisterCompany(RegisterCompany),
    IssueVouchers(IssueVouchers),
    RedeemHours(RedeemHours),
    ReverseRedemption(ReverseRedemption),
    ExpireVouchers(ExpireVouchers),
    RecordPayout(RecordPayout),
    OrderUsageCode(OrderUsageCode),
    CancelUsageCode(CancelUsageCode),
}

impl Command {
    /// The action's name, as used in permission refusals and logs.
    pub fn action(&self) -> &'static str {
        match self {
            Command::OpenBudget(_) => "open_budget",
            Command::AdjustBudget(_) => "adjust_budget",
            Command::ApproveProvider(_) => "approve_provider",
            Command::WithdrawProvider(_) => "withdraw_provider",
            Command::ApproveModule(_) => "approve_module",
            Command::WithdrawModule(_) => "withdraw_module",
            Command::RegisterCompany(_) => "register_company",
            Command::IssueVouchers(_) => "issue_vouchers",
            Command::RedeemHours(_) => "redeem_hours",
            Command::ReverseRedemption(_) => "reverse_redemption",
            Command::ExpireVouchers(_) => "expire_vouchers",
            Command::RecordPayout(_) => "record_payout",
            Command::OrderUsageCode(_) => "order_usage_code",
            Command::CancelUsageCode(_) => "cancel_usage_code",
        }
    }

    /// The command's canonical encoding, for the request digest that tells a retry from a
    /// different request under the same id (the engine hashes it with the principal, and the
    /// digest is stored in the request record, for ever).
    ///
    /// An explicit format, fixed by [`CANONICAL_ENCODING_TAG`] (its version) and written here
    /// field by field, so that renaming, reordering or adding a field of a Rust type, or
    /// changing a serializer, cannot change the bytes of a command: a change of the bytes is a
    /// new version, made on purpose. See [`canonical`] for the rules; the golden digests of
    /// `tests/canonical.rs` keep each kind's bytes fixed. It cannot fail.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical::encode(self)
    }

    /// The request digest's bytes before version 2 ([`CANONICAL_ENCODING_TAG`]): the command as
    /// serde_json wrote it. Request records written before the upgrade hold digests of these
    /// bytes; kept so that the engine may accept a retry of such a request (see the commit
    /// that introduced version 2). Never use it for new records.
    pub fn canonical_bytes_json_v1(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The first bytes of every [`Command::canonical_bytes`]: the format and its version. Version 1
/// was serde_json's output, which had no tag.
pub const CANONICAL_ENCODING_TAG: &[u8] = b"voucher-ledger/command/v2\0";

/// The canonical encoding of commands, version 2.
///
/// The tag, then the command's kind as text, then its fields in the order written below
/// (declaration order today, but fixed here, not by the type):
/// - text (names, identifiers, the enterprise number, enum values): its length as a u64,
///   big-endian, then its UTF-8 bytes; enum values by the stable names written here;
/// - whole numbers: big-endian, at their width (`i32` years, `u32` quantities and hours);
/// - amounts and FTE: the decimal's text normalized (no trailing zeros: `15.00` is `15`), as
///   text, so that `15`, `15.0` and `15.00` are one amount;
/// - dates: `yyyy-mm-dd` as text; an optional date: a byte 0 (absent) or 1 and the date;
/// - uuids: their 16 bytes; a pseudonym: its 32 bytes; booleans: a byte 0 or 1;
/// - lists: their length as a u64, big-endian, then each element.
///
/// Every length is written before what it measures, so no two commands share bytes.
pub mod canonical {
    use chrono::NaiveDate;
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use super::{Command, CANONICAL_ENCODING_TAG};
    use crate::types::{LegalForm, Region, Theme, TraineeStatus, VoucherType};

    struct Writer(Vec<u8>);

    impl Writer {
        fn text(&mut self, text: &str) -> &mut Self {
            self.length(text.len());
            self.0.extend_from_slice(text.as_bytes());
            self
        }
        fn length(&mut self, length: usize) -> &mut Self {
            self.0.extend_from_slice(&(length as u64).to_be_bytes());
            self
        }
        fn year(&mut self, value: i32) -> &mut Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn count(&mut self, value: u32) -> &mut Self {
            self.0.extend_from_slice(&value.to_be_bytes());
            self
        }
        fn decimal(&mut self, value: Decimal) -> &mut Self {
            self.text(&value.normalize().to_string())
        }
        fn date(&mut self, value: NaiveDate) -> &mut Self {
            self.text(&value.format("%Y-%m-%d").to_string())
        }
        fn optional_date(&mut self, value: Option<NaiveDate>) -> &mut Self {
            match value {
                None => self.flag(false),
                Some(date) => self.flag(true).date(date),
            }
        }
        fn flag(&mut self, value: bool) -> &mut Self {
            self.0.push(u8::from(value));
            self
        }
        fn uuid(&mut self, value: Uuid) -> &mut Self {
            self.0.extend_from_slice(value.as_bytes());
            self
        }
        fn raw(&mut self, bytes: &[u8]) -> &mut Self {
            self.0.extend_from_slice(bytes);
            self
        }
    }

    fn voucher_type(value: VoucherType) -> &'static str {
        match value {
            VoucherType::General => "general",
            VoucherType::Languages => "languages",
            VoucherType::EcoClimate => "eco_climate",
        }
    }

    fn theme(value: Theme) -> &'static str {
        match value {
            Theme::Ai => "ai",
            Theme::Digital => "digital",
            Theme::Green => "green",
            Theme::Languages => "languages",
            Theme::Management => "management",
            Theme::Technical => "technical",
            Theme::Safety => "safety",
            Theme::Other => "other",
            Theme::Behavioural => "behavioural",
            Theme::WellBeing => "well_being",
            Theme::PersonalDevelopment => "personal_development",
        }
    }

    fn legal_form(value: LegalForm) -> &'static str {
        match value {
            LegalForm::CommercialCompany => "commercial_company",
            LegalForm::SelfEmployedMain => "self_employed_main",
            LegalForm::SelfEmployedSecondary => "self_employed_secondary",
            LegalForm::NonProfit => "non_profit",
            LegalForm::PublicBody => "public_body",
        }
    }

    fn region(value: Region) -> &'static str {
        match value {
            Region::WalloniaFrenchSpeaking => "wallonia_french_speaking",
            Region::WalloniaGermanSpeaking => "wallonia_german_speaking",
            Region::Brussels => "brussels",
            Region::Flanders => "flanders",
        }
    }

    fn trainee_status(value: TraineeStatus) -> &'static str {
        match value {
            TraineeStatus::Employee => "employee",
            TraineeStatus::TemporaryWorker => "temporary_worker",
            TraineeStatus::SelfEmployedManagerOrPartner => "self_employed_manager_or_partner",
            TraineeStatus::HelpingSpouse => "helping_spouse",
            TraineeStatus::SecondarySelfEmployed => "secondary_self_employed",
            TraineeStatus::PfiTrainee => "pfi_trainee",
            TraineeStatus::Apprentice => "apprentice",
            TraineeStatus::Student => "student",
            TraineeStatus::Intern => "intern",
        }
    }

    pub(super) fn encode(command: &Command) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(256));
        out.raw(CANONICAL_ENCODING_TAG);
        match command {
            Command::OpenBudget(fields) => {
                out.text("open_budget")
                    .year(fields.year)
                    .decimal(fields.allocated_eur);
            }
            Command::AdjustBudget(fields) => {
                out.text("adjust_budget")
                    .year(fields.year)
                    .decimal(fields.allocated_eur)
                    .text(&fields.reason);
            }
            Command::ApproveProvider(fields) => {
                out.text("approve_provider")
                    .text(fields.provider_id.as_str())
                    .text(&fields.name)
                    .date(fields.approved_from)
                    .optional_date(fields.approved_until);
            }
            Command::WithdrawProvider(fields) => {
                out.text("withdraw_provider")
                    .text(fields.provider_id.as_str())
                    .date(fields.withdrawn_from)
                    .text(&fields.reason);
            }
            Command::ApproveModule(fields) => {
                out.text("approve_module")
                    .text(fields.module_id.as_str())
                    .text(fields.provider_id.as_str())
                    .text(&fields.title)
                    .count(fields.hours_max)
                    .length(fields.accepted_voucher_types.len());
                for value in &fields.accepted_voucher_types {
                    out.text(voucher_type(*value));
                }
                out.length(fields.themes.len());
                for value in &fields.themes {
                    out.text(theme(*value));
                }
                out.date(fields.approved_from)
                    .optional_date(fields.approved_until);
            }
            Command::WithdrawModule(fields) => {
                out.text("withdraw_module")
                    .text(fields.module_id.as_str())
                    .date(fields.withdrawn_from)
                    .text(&fields.reason);
            }
            Command::RegisterCompany(fields) => {
                out.text("register_company")
                    .text(fields.enterprise_number.as_str())
                    .year(fields.year)
                    .text(&fields.name)
                    .text(legal_form(fields.legal_form))
                    .text(region(fields.region))
                    .decimal(fields.fte)
                    .decimal(fields.turnover_eur)
                    .decimal(fields.balance_sheet_total_eur)
                    .flag(fields.autonomous)
                    .count(fields.secondary_activity_months)
                    .text(&fields.nace_sector)
                    .date(fields.registered_on);
            }
            Command::IssueVouchers(fields) => {
                out.text("issue_vouchers")
                    .uuid(fields.batch_id)
                    .text(fields.enterprise_number.as_str())
                    .text(voucher_type(fields.voucher_type))
                    .count(fields.quantity)
                    .decimal(fields.paid_amount_eur)
                    .date(fields.payment_date)
                    .text(&fields.payment_reference);
            }
            Command::RedeemHours(fields) => {
                out.text("redeem_hours")
                    .uuid(fields.redemption_id)
                    .text(fields.provider_id.as_str())
                    .text(fields.module_id.as_str())
                    .text(fields.enterprise_number.as_str())
                    .raw(fields.worker.as_bytes())
                    .text(trainee_status(fields.trainee_status))
                    .text(voucher_type(fields.voucher_type))
                    .count(fields.hours)
                    .date(fields.training_date);
                // Written only when present, so that a request without a code keeps the bytes
                // (and the digest) it had before codes existed.
                if let Some(code) = &fields.usage_code {
                    out.flag(true).text(code.as_str());
                }
            }
            Command::ReverseRedemption(fields) => {
                out.text("reverse_redemption")
                    .uuid(fields.redemption_id)
                    .text(fields.provider_id.as_str())
                    .text(&fields.reason)
                    .date(fields.reversed_on);
            }
            Command::ExpireVouchers(fields) => {
                out.text("expire_vouchers").date(fields.as_of);
            }
            Command::RecordPayout(fields) => {
                out.text("record_payout")
                    .text(fields.provider_id.as_str())
                    .decimal(fields.amount_eur)
                    .date(fields.payout_date)
                    .text(&fields.payout_reference);
            }
            Command::OrderUsageCode(fields) => {
                out.text("order_usage_code")
                    .uuid(fields.order_id)
                    .text(fields.enterprise_number.as_str())
                    .text(fields.provider_id.as_str());
                match &fields.module_id {
                    None => out.flag(false),
                    Some(module_id) => out.flag(true).text(module_id.as_str()),
                };
                out.text(voucher_type(fields.voucher_type))
                    .count(fields.hours)
                    .date(fields.period_from)
                    .date(fields.period_until);
            }
            Command::CancelUsageCode(fields) => {
                out.text("cancel_usage_code")
                    .text(fields.code.as_str())
                    .text(fields.enterprise_number.as_str())
                    .text(&fields.reason);
            }
        }
        out.0
    }
}
