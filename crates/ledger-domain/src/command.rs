//! What the ledger's users ask of it, and who is asking. Commands are plain data, already
//! parsed into the domain's types at the edge; `decide` checks every rule.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{EnterpriseNumber, Identifier, WorkerPseudonym};
use crate::types::{LegalForm, Region, Theme, TraineeStatus, VoucherType};

/// Who acts. A provider acts only as itself.
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
}

impl Principal {
    /// Parses "administration", "operator", "auditor" or "provider:<approval id>".
    pub fn parse(text: &str) -> Option<Principal> {
        match text {
            "administration" => Some(Principal::Administration),
            "operator" => Some(Principal::Operator),
            "auditor" => Some(Principal::Auditor),
            _ => text
                .strip_prefix("provider:")
                .and_then(Identifier::parse)
                .map(Principal::Provider),
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
        }
    }

    /// A canonical encoding of the command, for the request digest that tells a retry from a
    /// different request under the same id. serde_json writes struct fields in declaration
    /// order, so the same command always gives the same bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
