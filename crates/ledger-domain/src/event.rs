//! The facts the ledger records, in the past tense. Every event that moves money carries
//! balanced double-entry postings; the amounts in force when it happened are part of the event,
//! so that a replay never depends on today's policy.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{EnterpriseNumber, Identifier, WorkerPseudonym};
use crate::types::{LegalForm, Region, SizeClass, Theme, TraineeStatus, VoucherType};
use crate::usage_code::UsageCode;

/// The accounts of the double entry. Money moves from the credited account to the debited one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Account {
    /// What companies paid for their vouchers.
    CompanyContributions,
    /// The Region's budget of one year: credited by its share of issued vouchers, debited by the
    /// share released when vouchers expire.
    RegionBudget(i32),
    /// The float: the face value of every voucher issued and not yet redeemed or expired.
    VouchersOutstanding,
    /// What a provider is owed for redeemed vouchers.
    ProviderPayable(Identifier),
    /// What a provider was paid.
    ProviderPaid(Identifier),
    /// The company's share of expired vouchers, kept by the scheme.
    CompanyExpired,
    /// The company's share of expired vouchers, given back to the company.
    CompanyRefunded,
}

impl Account {
    /// Parses the name written by `Display`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Account> {
        let (kind, suffix) = match text.split_once('/') {
            Some((kind, suffix)) => (kind, Some(suffix)),
            None => (text, None),
        };
        match (kind, suffix) {
            ("company_contributions", None) => Some(Account::CompanyContributions),
            ("vouchers_outstanding", None) => Some(Account::VouchersOutstanding),
            ("company_expired", None) => Some(Account::CompanyExpired),
            ("company_refunded", None) => Some(Account::CompanyRefunded),
            ("region_budget", Some(year)) => year.parse().ok().map(Account::RegionBudget),
            ("provider_payable", Some(id)) => Identifier::parse(id).map(Account::ProviderPayable),
            ("provider_paid", Some(id)) => Identifier::parse(id).map(Account::ProviderPaid),
            _ => None,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::CompanyContributions => f.write_str("company_contributions"),
            Account::RegionBudget(year) => write!(f, "region_budget/{year}"),
            Account::VouchersOutstanding => f.write_str("vouchers_outstanding"),
            Account::ProviderPayable(id) => write!(f, "provider_payable/{id}"),
            Account::ProviderPaid(id) => write!(f, "provider_paid/{id}"),
            Account::CompanyExpired => f.write_str("company_expired"),
            Account::CompanyRefunded => f.write_str("company_refunded"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

/// One leg of a double entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub side: Side,
    pub amount_eur: Decimal,
}

impl Posting {
    pub fn debit(account: Account, amount_eur: Decimal) -> Posting {
        Posting {
            account,
            side: Side::Debit,
            amount_eur,
        }
    }

    pub fn credit(account: Account, amount_eur: Decimal) -> Posting {
        Posting {
            account,
            side: Side::Credit,
            amount_eur,
        }
    }

    /// The posting's effect on its account's balance: debits count positive, credits negative.
    pub fn signed_amount_eur(&self) -> Decimal {
        match self.side {
            Side::Debit => self.amount_eur,
            Side::Credit => -self.amount_eur,
        }
    }
}

/// Whether the debits of `postings` equal their credits.
pub fn postings_balance(postings: &[Posting]) -> bool {
    postings
        .iter()
        .map(Posting::signed_amount_eur)
        .sum::<Decimal>()
        .is_zero()
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetOpened {
    pub year: i32,
    pub allocated_eur: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetAdjusted {
    pub year: i32,
    pub allocated_eur: Decimal,
    pub previous_allocated_eur: Decimal,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderApproved {
    pub provider_id: Identifier,
    pub name: String,
    pub approved_from: NaiveDate,
    pub approved_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderWithdrawn {
    pub provider_id: Identifier,
    pub withdrawn_from: NaiveDate,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModuleApproved {
    pub module_id: Identifier,
    pub provider_id: Identifier,
    pub title: String,
    pub hours_max: u32,
    pub accepted_voucher_types: Vec<VoucherType>,
    pub themes: Vec<Theme>,
    pub approved_from: NaiveDate,
    pub approved_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModuleWithdrawn {
    pub module_id: Identifier,
    pub provider_id: Identifier,
    pub withdrawn_from: NaiveDate,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompanyRegistered {
    pub enterprise_number: EnterpriseNumber,
    pub year: i32,
    pub name: String,
    pub legal_form: LegalForm,
    pub region: Region,
    pub fte: Decimal,
    pub turnover_eur: Decimal,
    pub balance_sheet_total_eur: Decimal,
    pub autonomous: bool,
    pub secondary_activity_months: u32,
    pub nace_sector: String,
    pub size_class: SizeClass,
    pub registered_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VouchersIssued {
    pub enterprise_number: EnterpriseNumber,
    pub batch_id: Uuid,
    pub voucher_type: VoucherType,
    pub quantity: u32,
    pub payment_date: NaiveDate,
    pub payment_reference: String,
    pub paid_amount_eur: Decimal,
    pub face_value_eur: Decimal,
    pub employer_share_eur: Decimal,
    pub region_share_eur: Decimal,
    pub budget_year: i32,
    pub valid_until: NaiveDate,
    pub quota: u32,
    pub issued_in_year: u32,
    pub postings: Vec<Posting>,
}

/// Vouchers taken from one batch by a redemption, or given back to it by a reversal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDraw {
    pub batch_id: Uuid,
    pub quantity: u32,
    pub budget_year: i32,
    pub face_value_eur: Decimal,
    pub region_share_eur: Decimal,
    pub valid_until: NaiveDate,
}

impl BatchDraw {
    /// The Region's share of the vouchers drawn (or given back).
    pub fn region_eur(&self) -> Decimal {
        self.region_share_eur * Decimal::from(self.quantity)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HoursRedeemed {
    pub redemption_id: Uuid,
    pub provider_id: Identifier,
    pub module_id: Identifier,
    pub enterprise_number: EnterpriseNumber,
    pub worker: WorkerPseudonym,
    pub trainee_status: TraineeStatus,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub training_date: NaiveDate,
    pub draws: Vec<BatchDraw>,
    pub amount_owed_eur: Decimal,
    pub postings: Vec<Posting>,
    /// The code the hours were filed against; the draws came from its earmarked vouchers.
    pub usage_code: Option<UsageCode>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedemptionReversed {
    pub redemption_id: Uuid,
    pub provider_id: Identifier,
    pub enterprise_number: EnterpriseNumber,
    pub returned: Vec<BatchDraw>,
    pub amount_eur: Decimal,
    pub reason: String,
    pub reversed_on: NaiveDate,
    pub postings: Vec<Posting>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VouchersExpired {
    pub enterprise_number: EnterpriseNumber,
    pub batch_id: Uuid,
    pub voucher_type: VoucherType,
    pub quantity: u32,
    pub budget_year: i32,
    pub valid_until: NaiveDate,
    pub region_share_released_eur: Decimal,
    pub employer_share_eur: Decimal,
    pub employer_share_refunded: bool,
    pub expired_on: NaiveDate,
    pub postings: Vec<Posting>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PayoutRecorded {
    pub provider_id: Identifier,
    pub amount_eur: Decimal,
    pub payout_date: NaiveDate,
    pub payout_reference: String,
    pub postings: Vec<Posting>,
}

/// A company consented to one training: vouchers earmarked for one provider. Moves no money:
/// the earmarked vouchers stay in `VouchersOutstanding` (docs/RULES.md §14).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageCodeOrdered {
    pub code: UsageCode,
    pub order_id: Uuid,
    pub enterprise_number: EnterpriseNumber,
    pub provider_id: Identifier,
    pub module_id: Option<Identifier>,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
    /// Last day the provider may file against the code: the period's end plus the policy's
    /// `filing_grace_days` in force on the day of the order.
    pub filing_until: NaiveDate,
    pub ordered_on: NaiveDate,
    /// The vouchers earmarked, oldest expiry first.
    pub earmarks: Vec<BatchDraw>,
}

/// A code cancelled: its unused vouchers are free in the wallet again, with their own expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageCodeCancelled {
    pub code: UsageCode,
    pub enterprise_number: EnterpriseNumber,
    pub returned: Vec<BatchDraw>,
    pub reason: String,
    pub cancelled_on: NaiveDate,
}

/// A code whose filing grace passed with hours unused, closed by an expiry run: its unused
/// vouchers are free again (and expire with the same run when their own validity has ended).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageCodeLapsed {
    pub code: UsageCode,
    pub enterprise_number: EnterpriseNumber,
    pub returned: Vec<BatchDraw>,
    pub lapsed_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    BudgetOpened(BudgetOpened),
    BudgetAdjusted(BudgetAdjusted),
    ProviderApproved(ProviderApproved),
    ProviderWithdrawn(ProviderWithdrawn),
    ModuleApproved(ModuleApproved),
    ModuleWithdrawn(ModuleWithdrawn),
    CompanyRegistered(CompanyRegistered),
    VouchersIssued(VouchersIssued),
    HoursRedeemed(HoursRedeemed),
    RedemptionReversed(RedemptionReversed),
    VouchersExpired(VouchersExpired),
    PayoutRecorded(PayoutRecorded),
    UsageCodeOrdered(UsageCodeOrdered),
    UsageCodeCancelled(UsageCodeCancelled),
    UsageCodeLapsed(UsageCodeLapsed),
}

impl Event {
    /// The stream the event belongs to: one per budget year, provider and company.
    pub fn stream(&self) -> String {
        match self {
            Event::BudgetOpened(BudgetOpened { year, .. })
            | Event::BudgetAdjusted(BudgetAdjusted { year, .. }) => format!("budget/{year}"),
            Event::ProviderApproved(ProviderApproved { provider_id, .. })
            | Event::ProviderWithdrawn(ProviderWithdrawn { provider_id, .. })
            | Event::ModuleApproved(ModuleApproved { provider_id, .. })
            | Event::ModuleWithdrawn(ModuleWithdrawn { provider_id, .. })
            | Event::PayoutRecorded(PayoutRecorded { provider_id, .. }) => {
                format!("provider/{provider_id}")
            }
            Event::CompanyRegistered(CompanyRegistered {
                enterprise_number, ..
            })
            | Event::VouchersIssued(VouchersIssued {
                enterprise_number, ..
            })
            | Event::HoursRedeemed(HoursRedeemed {
                enterprise_number, ..
            })
            | Event::RedemptionReversed(RedemptionReversed {
                enterprise_number, ..
            })
            | Event::VouchersExpired(VouchersExpired {
                enterprise_number, ..
            })
            | Event::UsageCodeOrdered(UsageCodeOrdered {
                enterprise_number, ..
            })
            | Event::UsageCodeCancelled(UsageCodeCancelled {
                enterprise_number, ..
            })
            | Event::UsageCodeLapsed(UsageCodeLapsed {
                enterprise_number, ..
            }) => {
                format!("company/{enterprise_number}")
            }
        }
    }

    /// The business date the event is about, where it has one of its own.
    pub fn business_date(&self) -> Option<NaiveDate> {
        match self {
            Event::BudgetOpened(_) | Event::BudgetAdjusted(_) => None,
            Event::ProviderApproved(event) => Some(event.approved_from),
            Event::ProviderWithdrawn(event) => Some(event.withdrawn_from),
            Event::ModuleApproved(event) => Some(event.approved_from),
            Event::ModuleWithdrawn(event) => Some(event.withdrawn_from),
            Event::CompanyRegistered(event) => Some(event.registered_on),
            Event::VouchersIssued(event) => Some(event.payment_date),
            Event::HoursRedeemed(event) => Some(event.training_date),
            Event::RedemptionReversed(event) => Some(event.reversed_on),
            Event::VouchersExpired(event) => Some(event.expired_on),
            Event::PayoutRecorded(event) => Some(event.payout_date),
            Event::UsageCodeOrdered(event) => Some(event.ordered_on),
            Event::UsageCodeCancelled(event) => Some(event.cancelled_on),
            Event::UsageCodeLapsed(event) => Some(event.lapsed_on),
        }
    }

    /// The event's postings; empty for an event that moves no money.
    pub fn postings(&self) -> &[Posting] {
        match self {
            Event::VouchersIssued(event) => &event.postings,
            Event::HoursRedeemed(event) => &event.postings,
            Event::RedemptionReversed(event) => &event.postings,
            Event::VouchersExpired(event) => &event.postings,
            Event::PayoutRecorded(event) => &event.postings,
            Event::BudgetOpened(_)
            | Event::BudgetAdjusted(_)
            | Event::ProviderApproved(_)
            | Event::ProviderWithdrawn(_)
            | Event::ModuleApproved(_)
            | Event::ModuleWithdrawn(_)
            | Event::CompanyRegistered(_)
            | Event::UsageCodeOrdered(_)
            | Event::UsageCodeCancelled(_)
            | Event::UsageCodeLapsed(_) => &[],
        }
    }

    /// The event type's name, as in the protobuf schema.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::BudgetOpened(_) => "BudgetOpened",
            Event::BudgetAdjusted(_) => "BudgetAdjusted",
            Event::ProviderApproved(_) => "ProviderApproved",
            Event::ProviderWithdrawn(_) => "ProviderWithdrawn",
            Event::ModuleApproved(_) => "ModuleApproved",
            Event::ModuleWithdrawn(_) => "ModuleWithdrawn",
            Event::CompanyRegistered(_) => "CompanyRegistered",
            Event::VouchersIssued(_) => "VouchersIssued",
            Event::HoursRedeemed(_) => "HoursRedeemed",
            Event::RedemptionReversed(_) => "RedemptionReversed",
            Event::VouchersExpired(_) => "VouchersExpired",
            Event::PayoutRecorded(_) => "PayoutRecorded",
            Event::UsageCodeOrdered(_) => "UsageCodeOrdered",
            Event::UsageCodeCancelled(_) => "UsageCodeCancelled",
            Event::UsageCodeLapsed(_) => "UsageCodeLapsed",
        }
    }
}
