//! Well-formed requests with plain defaults, each with a fresh request id. A test changes what
//! its rule is about with struct update syntax:
//! `IssueVouchersRequest { paid_amount_eur: "140.00".into(), ..issue_vouchers(...) }`.

use ledger_proto::event::v1::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_proto::v1 as api;
use uuid::Uuid;

/// Companies (valid BCE numbers: `97 - (first 8 digits mod 97)` is the last two).
pub const COMPANY_A: &str = "0403019261";
pub const COMPANY_A_DOTTED: &str = "0403.019.261";
pub const COMPANY_B: &str = "0431150350";
/// Valid, and never registered anywhere.
pub const COMPANY_UNKNOWN: &str = "0800000075";

/// Workers (valid NISS numbers: `97 - (first 9 digits mod 97)` is the last two).
pub const WORKER_1: &str = "85073003328";
pub const WORKER_2: &str = "90010112395";
pub const WORKER_3: &str = "75123145679";

/// The employer's share of one voucher in the policy table, in euros.
const EMPLOYER_SHARE_EUR: u32 = 15;

pub fn new_request_id() -> String {
    Uuid::new_v4().to_string()
}

pub fn open_budget(year: i32, allocated_eur: &str) -> api::OpenBudgetRequest {
    api::OpenBudgetRequest {
        request_id: new_request_id(),
        year,
        allocated_eur: allocated_eur.to_owned(),
    }
}

pub fn adjust_budget(year: i32, allocated_eur: &str) -> api::AdjustBudgetRequest {
    api::AdjustBudgetRequest {
        request_id: new_request_id(),
        year,
        allocated_eur: allocated_eur.to_owned(),
        reason: "regional budget revised by the government".to_owned(),
    }
}

pub fn approve_provider(provider_id: &str, approved_from: &str) -> api::ApproveProviderRequest {
    api::ApproveProviderRequest {
        request_id: new_request_id(),
        provider_id: provider_id.to_owned(),
        name: format!("Formations {provider_id} SRL"),
        approved_from: approved_from.to_owned(),
        approved_until: String::new(),
    }
}

pub fn withdraw_provider(provider_id: &str, withdrawn_from: &str) -> api::WithdrawProviderRequest {
    api::WithdrawProviderRequest {
        request_id: new_request_id(),
        provider_id: provider_id.to_owned(),
        withdrawn_from: withdrawn_from.to_owned(),
        reason: "approval conditions no longer met".to_owned(),
    }
}

/// A module of 40 hours, for general vouchers, on digital skills, open-ended.
pub fn approve_module(
    module_id: &str,
    provider_id: &str,
    approved_from: &str,
) -> api::ApproveModuleRequest {
    api::ApproveModuleRequest {
        request_id: new_request_id(),
        module_id: module_id.to_owned(),
        provider_id: provider_id.to_owned(),
        title: "Spreadsheets for accountants".to_owned(),
        hours_max: 40,
        accepted_voucher_types: vec![VoucherType::General as i32],
        themes: vec![Theme::Digital as i32],
        approved_from: approved_from.to_owned(),
        approved_until: String::new(),
    }
}

pub fn withdraw_module(module_id: &str, withdrawn_from: &str) -> api::WithdrawModuleRequest {
    api::WithdrawModuleRequest {
        request_id: new_request_id(),
        module_id: module_id.to_owned(),
        withdrawn_from: withdrawn_from.to_owned(),
        reason: "module no longer offered".to_owned(),
    }
}

/// An eligible commercial company of 12.5 FTE (quota: 400 general vouchers a year) in
/// French-speaking Wallonia, registered on the 1st of February of `year`.
pub fn register_company(enterprise_number: &str, year: i32) -> api::RegisterCompanyRequest {
    api::RegisterCompanyRequest {
        request_id: new_request_id(),
        enterprise_number: enterprise_number.to_owned(),
        year,
        name: "Menuiserie Dubois SA".to_owned(),
        legal_form: LegalForm::CommercialCompany as i32,
        region: Region::WalloniaFrenchSpeaking as i32,
        fte: "12.5".to_owned(),
        turnover_eur: "2500000.00".to_owned(),
        balance_sheet_total_eur: "1200000.00".to_owned(),
        autonomous: true,
        secondary_activity_months: 0,
        nace_sector: "16.23".to_owned(),
        registered_on: format!("{year}-02-01"),
    }
}

/// Issuance of `quantity` general vouchers, paid exactly (quantity × EUR 15.00).
pub fn issue_vouchers(
    enterprise_number: &str,
    quantity: u32,
    payment_date: &str,
) -> api::IssueVouchersRequest {
    api::IssueVouchersRequest {
        request_id: new_request_id(),
        enterprise_number: enterprise_number.to_owned(),
        voucher_type: VoucherType::General as i32,
        quantity,
        paid_amount_eur: format!("{}.00", quantity * EMPLOYER_SHARE_EUR),
        payment_date: payment_date.to_owned(),
        payment_reference: "+++090/9337/55493+++".to_owned(),
    }
}

pub fn expire_vouchers(as_of: &str) -> api::ExpireVouchersRequest {
    api::ExpireVouchersRequest {
        request_id: new_request_id(),
        as_of: as_of.to_owned(),
    }
}

pub fn record_payout(
    provider_id: &str,
    amount_eur: &str,
    payout_date: &str,
) -> api::RecordPayoutRequest {
    api::RecordPayoutRequest {
        request_id: new_request_id(),
        provider_id: provider_id.to_owned(),
        amount_eur: amount_eur.to_owned(),
        payout_date: payout_date.to_owned(),
        payout_reference: "SEPA-2026-000123".to_owned(),
    }
}

/// A redemption of general vouchers for an employee.
pub fn redeem_hours(
    provider_id: &str,
    module_id: &str,
    enterprise_number: &str,
    national_number: &str,
    hours: &str,
    training_date: &str,
) -> api::RedeemHoursRequest {
    api::RedeemHoursRequest {
        request_id: new_request_id(),
        provider_id: provider_id.to_owned(),
        module_id: module_id.to_owned(),
        enterprise_number: enterprise_number.to_owned(),
        national_number: national_number.to_owned(),
        trainee_status: TraineeStatus::Employee as i32,
        voucher_type: VoucherType::General as i32,
        hours: hours.to_owned(),
        training_date: training_date.to_owned(),
        usage_code: String::new(),
    }
}

/// `enterprise_number` consents to `hours` general hours with `provider_id`, any module.
pub fn order_usage_code(
    enterprise_number: &str,
    provider_id: &str,
    hours: &str,
    period_from: &str,
    period_until: &str,
) -> api::OrderUsageCodeRequest {
    api::OrderUsageCodeRequest {
        request_id: new_request_id(),
        enterprise_number: enterprise_number.to_owned(),
        provider_id: provider_id.to_owned(),
        module_id: String::new(),
        voucher_type: VoucherType::General as i32,
        hours: hours.to_owned(),
        period_from: period_from.to_owned(),
        period_until: period_until.to_owned(),
    }
}

pub fn cancel_usage_code(usage_code: &str, enterprise_number: &str) -> api::CancelUsageCodeRequest {
    api::CancelUsageCodeRequest {
        request_id: new_request_id(),
        usage_code: usage_code.to_owned(),
        enterprise_number: enterprise_number.to_owned(),
        reason: "training postponed".to_owned(),
    }
}

pub fn get_usage_code(usage_code: &str) -> api::GetUsageCodeRequest {
    api::GetUsageCodeRequest {
        usage_code: usage_code.to_owned(),
        as_of: None,
    }
}

pub fn list_usage_codes(enterprise_number: &str) -> api::ListUsageCodesRequest {
    api::ListUsageCodesRequest {
        enterprise_number: enterprise_number.to_owned(),
        status: 0,
        as_of: None,
    }
}

pub fn reverse_redemption(
    provider_id: &str,
    redemption_id: &str,
    reversed_on: &str,
) -> api::ReverseRedemptionRequest {
    api::ReverseRedemptionRequest {
        request_id: new_request_id(),
        provider_id: provider_id.to_owned(),
        redemption_id: redemption_id.to_owned(),
        reason: "training cancelled".to_owned(),
        reversed_on: reversed_on.to_owned(),
    }
}

pub fn get_wallet(enterprise_number: &str) -> api::GetWalletRequest {
    api::GetWalletRequest {
        enterprise_number: enterprise_number.to_owned(),
        as_of: None,
    }
}

pub fn get_statement(provider_id: &str) -> api::GetStatementRequest {
    api::GetStatementRequest {
        provider_id: provider_id.to_owned(),
        as_of: None,
    }
}

pub fn get_budget(year: i32) -> api::GetBudgetRequest {
    api::GetBudgetRequest { year, as_of: None }
}

pub fn get_year_summary(year: i32) -> api::GetYearSummaryRequest {
    api::GetYearSummaryRequest { year, as_of: None }
}

pub fn get_companies(year: i32) -> api::GetCompaniesRequest {
    api::GetCompaniesRequest { year, as_of: None }
}

pub fn get_training_hours(year: i32) -> api::GetTrainingHoursRequest {
    api::GetTrainingHoursRequest { year, as_of: None }
}

pub fn get_trial_balance() -> api::GetTrialBalanceRequest {
    api::GetTrialBalanceRequest { as_of: None }
}

/// A read of the ledger as it stood once the event at `position` was recorded.
pub fn as_of_position(position: u64) -> Option<api::AsOf> {
    Some(api::AsOf {
        point: Some(api::as_of::Point::Position(position)),
    })
}
