//! Wire requests to domain commands, and domain state to wire answers. Every field from outside
//! is parsed here into the domain's types; a field that does not parse is refused with the
//! refusal that names it, and nothing reaches the engine.

use chrono::NaiveDate;
use ledger_codec::{encode_date, encode_eur};
use ledger_domain::command::{
    AdjustBudget, ApproveModule, ApproveProvider, ExpireVouchers, IssueVouchers, OpenBudget,
    RecordPayout, RedeemHours, RegisterCompany, ReverseRedemption, WithdrawModule,
    WithdrawProvider,
};
use ledger_domain::decide::{
    MODULE_HOURS_MAX, NAME_BYTES_MAX, REASON_BYTES_MAX, REFERENCE_BYTES_MAX,
};
use ledger_domain::{
    money, Command, EnterpriseNumber, Identifier, NationalNumber, PseudonymKey, Refusal,
};
use ledger_projections::{Projections, YearFigures};
use ledger_proto::v1 as api;
use rust_decimal::Decimal;
use uuid::Uuid;

pub mod codes;

pub fn request_id(text: &str) -> Result<Uuid, Refusal> {
    match Uuid::parse_str(text) {
        Ok(id) if !id.is_nil() && text.len() == 36 => Ok(id),
        _ => Err(Refusal::InvalidRequestId),
    }
}

pub fn date(field: &'static str, text: &str) -> Result<NaiveDate, Refusal> {
    if text.len() != 10 {
        return Err(Refusal::InvalidDate { field });
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| Refusal::InvalidDate { field })
}

/// A date of the scheme's own records (an approval, a withdrawal, a payout, a reversal): well
/// formed, and in the years the ledger knows, so that "0000-01-01" or a year before the scheme
/// began (2004) is refused here rather than recorded.
fn ledger_date(field: &'static str, text: &str) -> Result<NaiveDate, Refusal> {
    use chrono::Datelike;
    let date = date(field, text)?;
    if !(ledger_domain::decide::YEAR_MIN..=ledger_domain::decide::YEAR_MAX).contains(&date.year()) {
        return Err(Refusal::DateOutOfRange { field });
    }
    Ok(date)
}

fn optional_ledger_date(field: &'static str, text: &str) -> Result<Option<NaiveDate>, Refusal> {
    if text.is_empty() {
        return Ok(None);
    }
    ledger_date(field, text).map(Some)
}

/// Free text (a name, a title, a reason, a reference), refused at the edge when it is over the
/// domain's limit or holds a control character, with the refusal the domain would give: it is
/// neither copied nor queued for the writer.
fn text(field: &'static str, value: &str, bytes_max: usize) -> Result<String, Refusal> {
    ledger_domain::decide::check_free_text(field, value, bytes_max)?;
    Ok(value.to_owned())
}

/// Longest NACE-BEL code, in bytes ("62.010"); the domain checks its shape.
const NACE_SECTOR_BYTES_MAX: usize = 6;

fn nace_sector(value: &str) -> Result<String, Refusal> {
    if value.len() > NACE_SECTOR_BYTES_MAX {
        return Err(Refusal::InvalidIdentifier {
            field: "nace_sector",
        });
    }
    Ok(value.to_owned())
}

/// Longest text of a UUID, in bytes: the URN form (`urn:uuid:` and 36 characters) is the
/// longest `Uuid::parse_str` accepts.
const UUID_TEXT_BYTES_MAX: usize = 45;

fn amount(field: &'static str, text: &str) -> Result<Decimal, Refusal> {
    money::parse_eur(text).ok_or(Refusal::InvalidAmount { field })
}

fn id(field: &'static str, text: &str) -> Result<Identifier, Refusal> {
    Identifier::parse(text).ok_or(Refusal::InvalidIdentifier { field })
}

pub fn enterprise_number(text: &str) -> Result<EnterpriseNumber, Refusal> {
    EnterpriseNumber::parse(text).ok_or(Refusal::InvalidEnterpriseNumber)
}

/// Whole hours written as digits only: "0", "-1", "1.5", "+2" and "2e1" are all refused.
fn hours(text: &str) -> Result<u32, Refusal> {
    let refused = Refusal::InvalidHours {
        hours_max: MODULE_HOURS_MAX,
    };
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused);
    }
    match text.parse::<u32>() {
        Ok(hours) if (1..=MODULE_HOURS_MAX).contains(&hours) => Ok(hours),
        _ => Err(refused),
    }
}

/// Longest FTE text, in bytes: the scheme counts companies up to 250 FTE; twelve bytes leave
/// room for leading zeros and two decimals.
const FTE_TEXT_BYTES_MAX: usize = 12;

fn fte(text: &str) -> Result<Decimal, Refusal> {
    let refused = Refusal::InvalidNumber { field: "fte" };
    if text.len() > FTE_TEXT_BYTES_MAX || !money::is_plain_decimal_text(text) {
        return Err(refused);
    }
    let value: Decimal = text.parse().map_err(|_| refused.clone())?;
    if value.normalize().scale() > 2 {
        return Err(refused);
    }
    Ok(value)
}

fn year(value: i32) -> Result<i32, Refusal> {
    if !(ledger_domain::decide::YEAR_MIN..=ledger_domain::decide::YEAR_MAX).contains(&value) {
        return Err(Refusal::InvalidYear { year: value });
    }
    Ok(value)
}

fn voucher_type(field: &'static str, value: i32) -> Result<ledger_domain::VoucherType, Refusal> {
    ledger_codec::voucher_type_from_proto(value).ok_or(Refusal::UnknownEnumValue { field })
}

pub fn open_budget(request: &api::OpenBudgetRequest) -> Result<Command, Refusal> {
    Ok(Command::OpenBudget(OpenBudget {
        year: year(request.year)?,
        allocated_eur: amount("allocated_eur", &request.allocated_eur)?,
    }))
}

pub fn adjust_budget(request: &api::AdjustBudgetRequest) -> Result<Command, Refusal> {
    Ok(Command::AdjustBudget(AdjustBudget {
        year: year(request.year)?,
        allocated_eur: amount("allocated_eur", &request.allocated_eur)?,
        reason: text("reason", &request.reason, REASON_BYTES_MAX)?,
    }))
}

pub fn approve_provider(request: &api::ApproveProviderRequest) -> Result<Command, Refusal> {
    Ok(Command::ApproveProvider(ApproveProvider {
        provider_id: id("provider_id", &request.provider_id)?,
        name: text("name", &request.name, NAME_BYTES_MAX)?,
        approved_from: ledger_date("approved_from", &request.approved_from)?,
        approved_until: optional_ledger_date("approved_until", &request.approved_until)?,
    }))
}

pub fn withdraw_provider(request: &api::WithdrawProviderRequest) -> Result<Command, Refusal> {
    Ok(Command::WithdrawProvider(WithdrawProvider {
        provider_id: id("provider_id", &request.provider_id)?,
        withdrawn_from: ledger_date("withdrawn_from", &request.withdrawn_from)?,
        reason: text("reason", &request.reason, REASON_BYTES_MAX)?,
    }))
}

/// Most voucher types or themes in one module approval; there are 3 and 11 of them.
const MODULE_LIST_LEN_MAX: usize = 16;

pub fn approve_module(request: &api::ApproveModuleRequest) -> Result<Command, Refusal> {
    if request.accepted_voucher_types.len() > MODULE_LIST_LEN_MAX {
        return Err(Refusal::TextTooLong {
            field: "accepted_voucher_types",
            bytes_max: MODULE_LIST_LEN_MAX,
        });
    }
    if request.themes.len() > MODULE_LIST_LEN_MAX {
        return Err(Refusal::TextTooLong {
            field: "themes",
            bytes_max: MODULE_LIST_LEN_MAX,
        });
    }
    let accepted_voucher_types = request
        .accepted_voucher_types
        .iter()
        .map(|value| voucher_type("accepted_voucher_types", *value))
        .collect::<Result<_, _>>()?;
    let themes = request
        .themes
        .iter()
        .map(|value| {
            ledger_codec::theme_from_proto(*value)
                .ok_or(Refusal::UnknownEnumValue { field: "themes" })
        })
        .collect::<Result<_, _>>()?;
    Ok(Command::ApproveModule(ApproveModule {
        module_id: id("module_id", &request.module_id)?,
        provider_id: id("provider_id", &request.provider_id)?,
        title: text("title", &request.title, NAME_BYTES_MAX)?,
        hours_max: request.hours_max,
        accepted_voucher_types,
        themes,
        approved_from: ledger_date("approved_from", &request.approved_from)?,
        approved_until: optional_ledger_date("approved_until", &request.approved_until)?,
    }))
}

pub fn withdraw_module(request: &api::WithdrawModuleRequest) -> Result<Command, Refusal> {
    Ok(Command::WithdrawModule(WithdrawModule {
        module_id: id("module_id", &request.module_id)?,
        withdrawn_from: ledger_date("withdrawn_from", &request.withdrawn_from)?,
        reason: text("reason", &request.reason, REASON_BYTES_MAX)?,
    }))
}

pub fn register_company(request: &api::RegisterCompanyRequest) -> Result<Command, Refusal> {
    Ok(Command::RegisterCompany(RegisterCompany {
        enterprise_number: enterprise_number(&request.enterprise_number)?,
        year: year(request.year)?,
        name: text("name", &request.name, NAME_BYTES_MAX)?,
        legal_form: ledger_codec::legal_form_from_proto(request.legal_form).ok_or(
            Refusal::UnknownEnumValue {
                field: "legal_form",
            },
        )?,
        region: ledger_codec::region_from_proto(request.region)
            .ok_or(Refusal::UnknownEnumValue { field: "region" })?,
        fte: fte(&request.fte)?,
        turnover_eur: amount("turnover_eur", &request.turnover_eur)?,
        balance_sheet_total_eur: amount(
            "balance_sheet_total_eur",
            &request.balance_sheet_total_eur,
        )?,
        autonomous: request.autonomous,
        secondary_activity_months: request.secondary_activity_months,
        nace_sector: nace_sector(&request.nace_sector)?,
        registered_on: date("registered_on", &request.registered_on)?,
    }))
}

pub fn issue_vouchers(
    request: &api::IssueVouchersRequest,
    batch_id: Uuid,
) -> Result<Command, Refusal> {
    Ok(Command::IssueVouchers(IssueVouchers {
        batch_id,
        enterprise_number: enterprise_number(&request.enterprise_number)?,
        voucher_type: voucher_type("voucher_type", request.voucher_type)?,
        quantity: request.quantity,
        paid_amount_eur: amount("paid_amount_eur", &request.paid_amount_eur)?,
        payment_date: date("payment_date", &request.payment_date)?,
        payment_reference: text(
            "payment_reference",
            &request.payment_reference,
            REFERENCE_BYTES_MAX,
        )?,
    }))
}

pub fn expire_vouchers(request: &api::ExpireVouchersRequest) -> Result<Command, Refusal> {
    Ok(Command::ExpireVouchers(ExpireVouchers {
        as_of: date("as_of", &request.as_of)?,
    }))
}

pub fn record_payout(request: &api::RecordPayoutRequest) -> Result<Command, Refusal> {
    Ok(Command::RecordPayout(RecordPayout {
        provider_id: id("provider_id", &request.provider_id)?,
        amount_eur: amount("amount_eur", &request.amount_eur)?,
        payout_date: ledger_date("payout_date", &request.payout_date)?,
        payout_reference: text(
            "payout_reference",
            &request.payout_reference,
            REFERENCE_BYTES_MAX,
        )?,
    }))
}

/// The national register number is validated and replaced by its pseudonym here, at the edge;
/// it goes no further.
pub fn redeem_hours(
    request: &api::RedeemHoursRequest,
    redemption_id: Uuid,
    key: &PseudonymKey,
) -> Result<Command, Refusal> {
    let worker = NationalNumber::parse(&request.national_number)
        .ok_or(Refusal::InvalidNationalNumber)?
        .pseudonymize(key);
    Ok(Command::RedeemHours(RedeemHours {
        redemption_id,
        provider_id: id("provider_id", &request.provider_id)?,
        module_id: id("module_id", &request.module_id)?,
        enterprise_number: enterprise_number(&request.enterprise_number)?,
        worker,
        trainee_status: ledger_codec::trainee_status_from_proto(request.trainee_status).ok_or(
            Refusal::UnknownEnumValue {
                field: "trainee_status",
            },
        )?,
        voucher_type: voucher_type("voucher_type", request.voucher_type)?,
        hours: hours(&request.hours)?,
        training_date: date("training_date", &request.training_date)?,
        usage_code: codes::optional_usage_code(&request.usage_code)?,
    }))
}

pub fn reverse_redemption(request: &api::ReverseRedemptionRequest) -> Result<Command, Refusal> {
    let invalid = Refusal::InvalidIdentifier {
        field: "redemption_id",
    };
    if request.redemption_id.len() > UUID_TEXT_BYTES_MAX {
        return Err(invalid);
    }
    let redemption_id = Uuid::parse_str(&request.redemption_id).map_err(|_| invalid)?;
    Ok(Command::ReverseRedemption(ReverseRedemption {
        redemption_id,
        provider_id: id("provider_id", &request.provider_id)?,
        reason: text("reason", &request.reason, REASON_BYTES_MAX)?,
        reversed_on: ledger_date("reversed_on", &request.reversed_on)?,
    }))
}

pub fn provider_id(text: &str) -> Result<Identifier, Refusal> {
    id("provider_id", text)
}

pub fn report_year(value: i32) -> Result<i32, Refusal> {
    year(value)
}

pub fn wallet(
    projections: &Projections,
    number: &EnterpriseNumber,
) -> Result<api::Wallet, Refusal> {
    let registered_years: Vec<i32> = projections
        .companies
        .get(number)
        .map(|years| years.keys().copied().collect())
        .unwrap_or_default();
    let wallet = projections.wallets.get(number);
    if wallet.is_none() && registered_years.is_empty() {
        return Err(Refusal::CompanyNotFound);
    }
    let empty = ledger_projections::Wallet::default();
    let wallet = wallet.unwrap_or(&empty);
    let balances = ledger_domain::VoucherType::ALL
        .iter()
        .map(|voucher_type| api::WalletBalance {
            voucher_type: ledger_codec::voucher_type_to_proto(*voucher_type) as i32,
            vouchers: wallet.balance(*voucher_type),
            reserved: wallet
                .batches
                .values()
                .filter(|batch| batch.voucher_type == *voucher_type)
                .map(|batch| batch.earmarked)
                .sum(),
        })
        .collect();
    let mut batches: Vec<_> = wallet
        .batches
        .iter()
        .filter(|(_, batch)| batch.remaining > 0)
        .collect();
    batches.sort_by_key(|(batch_id, batch)| (batch.valid_until, batch.payment_date, **batch_id));
    Ok(api::Wallet {
        enterprise_number: number.to_string(),
        registered_years,
        balances,
        batches: batches
            .into_iter()
            .map(|(batch_id, batch)| wallet_batch(batch_id, batch))
            .collect(),
        as_of_position: projections.position,
    })
}

/// One batch of a wallet, as `GetWallet` and `ListWalletBatches` answer it.
pub fn wallet_batch(batch_id: &Uuid, batch: &ledger_projections::WalletBatch) -> api::WalletBatch {
    api::WalletBatch {
        batch_id: batch_id.to_string(),
        voucher_type: ledger_codec::voucher_type_to_proto(batch.voucher_type) as i32,
        quantity: batch.quantity,
        remaining: batch.remaining,
        payment_date: encode_date(batch.payment_date),
        valid_until: encode_date(batch.valid_until),
        budget_year: batch.budget_year,
        earmarked: batch.earmarked,
    }
}

pub fn statement(
    projections: &Projections,
    provider_id: &Identifier,
) -> Result<api::Statement, Refusal> {
    let statement = projections
        .statements
        .get(provider_id)
        .ok_or(Refusal::ProviderNotFound)?;
    Ok(api::Statement {
        provider_id: provider_id.to_string(),
        name: statement.name.clone(),
        redeemed_hours: statement.redeemed_hours,
        owed_eur: encode_eur(statement.owed_eur),
        paid_eur: encode_eur(statement.paid_eur),
        as_of_position: projections.position,
    })
}

/// The budget of `year`; a year whose budget was never opened has none: every figure zero, as
/// the companies and hours reports of that year answer zeros rather than refuse.
pub fn budget(projections: &Projections, year: i32) -> Result<api::Budget, Refusal> {
    budget_of(year, projections.budgets.get(&year), projections.position)
}

/// The budget of `year` as the reports give it, from its figures at `position` (`None`: not
/// opened).
fn budget_of(
    year: i32,
    budget: Option<&ledger_projections::BudgetFigures>,
    position: u64,
) -> Result<api::Budget, Refusal> {
    let unopened = ledger_projections::BudgetFigures::default();
    let budget = budget.unwrap_or(&unopened);
    Ok(api::Budget {
        year,
        allocated_eur: encode_eur(budget.allocated_eur),
        committed_eur: encode_eur(budget.committed_eur),
        spent_eur: encode_eur(budget.spent_eur),
        released_eur: encode_eur(budget.released_eur),
        available_eur: encode_eur(budget.available_eur()),
        as_of_position: position,
    })
}

pub fn year_summary(projections: &Projections, year: i32) -> Result<api::YearSummary, Refusal> {
    let empty = YearFigures::default();
    year_summary_of(
        year,
        projections.budgets.get(&year),
        projections.years.get(&year).unwrap_or(&empty),
        projections.position,
    )
}

/// A year summary folded on its own, from a year point (see `ledger_engine::year_points`):
/// the same answer as [`year_summary`] of the projections at the same position.
pub fn year_summary_folded(
    summary: &ledger_projections::YearSummaryFold,
) -> Result<api::YearSummary, Refusal> {
    year_summary_of(
        summary.year,
        summary.budgets.get(&summary.year),
        &summary.figures,
        summary.position,
    )
}

fn year_summary_of(
    year: i32,
    budget: Option<&ledger_projections::BudgetFigures>,
    figures: &YearFigures,
    position: u64,
) -> Result<api::YearSummary, Refusal> {
    let budget = budget_of(year, budget, position)?;
    Ok(api::YearSummary {
        year,
        companies_registered: count(figures.registered.len()),
        companies_holding_vouchers: count(figures.holding.len()),
        companies_benefiting: count(figures.benefiting.len()),
        workers_trained: count(figures.workers.len()),
        hours_trained: figures.hours.total,
        vouchers_issued: figures.vouchers_issued,
        budget: Some(budget),
        as_of_position: position,
    })
}

fn company_counts(key: &str, counts: &ledger_projections::CompanyCounts) -> api::CompanyCounts {
    api::CompanyCounts {
        key: key.to_owned(),
        registered: counts.registered,
        holding: counts.holding,
        benefiting: counts.benefiting,
    }
}

pub fn companies(projections: &Projections, year: i32) -> api::CompaniesReport {
    companies_of(
        &projections.companies_report(year),
        year,
        projections.position,
    )
}

/// The companies report folded from a year point (see `ledger_engine::year_points`): the same
/// answer as [`companies`] of the projections at the same position.
pub fn companies_folded(fold: &ledger_projections::YearReportFold) -> api::CompaniesReport {
    companies_of(&fold.companies_report(), fold.year, fold.position)
}

fn companies_of(
    report: &ledger_projections::CompaniesReport,
    year: i32,
    position: u64,
) -> api::CompaniesReport {
    api::CompaniesReport {
        year,
        total: Some(company_counts("total", &report.total)),
        by_size_class: report
            .by_size_class
            .iter()
            .map(|(size_class, counts)| company_counts(size_class.name(), counts))
            .collect(),
        by_sector: report
            .by_sector
            .iter()
            .map(|(sector, counts)| company_counts(sector, counts))
            .collect(),
        as_of_position: position,
    }
}

fn hours_counts<'a, K: 'a>(
    counts: impl IntoIterator<Item = (&'a K, &'a u64)>,
    key: impl Fn(&K) -> String,
) -> Vec<api::HoursCount> {
    counts
        .into_iter()
        .map(|(k, hours)| api::HoursCount {
            key: key(k),
            hours: *hours,
        })
        .collect()
}

pub fn training_hours(projections: &Projections, year: i32) -> api::TrainingHours {
    let empty = YearFigures::default();
    training_hours_of(
        projections.years.get(&year).unwrap_or(&empty),
        year,
        projections.position,
    )
}

/// The training hours folded from a year point: the same answer as [`training_hours`] of the
/// projections at the same position.
pub fn training_hours_folded(fold: &ledger_projections::YearReportFold) -> api::TrainingHours {
    training_hours_of(&fold.figures, fold.year, fold.position)
}

/// The budget folded from a year point's budgets: the same answer as [`budget`] of the
/// projections at the same position.
pub fn budget_folded(
    budgets: &ledger_engine::year_points::BudgetsAsOf,
    year: i32,
) -> Result<api::Budget, Refusal> {
    budget_of(year, budgets.budgets.get(&year), budgets.position)
}

fn training_hours_of(figures: &YearFigures, year: i32, position: u64) -> api::TrainingHours {
    let hours = &figures.hours;
    api::TrainingHours {
        year,
        total: hours.total,
        by_voucher_type: hours_counts(&hours.by_voucher_type, |t| t.name().to_owned()),
        by_provider: hours_counts(&hours.by_provider, |p| p.to_string()),
        by_theme: hours_counts(&hours.by_theme, |t| t.name().to_owned()),
        by_sector: hours_counts(&hours.by_sector, |s| s.clone()),
        as_of_position: position,
    }
}

pub fn trial_balance(projections: &Projections) -> api::TrialBalance {
    api::TrialBalance {
        accounts: projections
            .trial_balance
            .iter()
            .map(|(account, balance)| api::AccountBalance {
                account: account.clone(),
                balance_eur: encode_eur(*balance),
            })
            .collect(),
        total_eur: encode_eur(projections.trial_balance_total_eur()),
        as_of_position: projections.position,
    }
}

/// The point of history a report is asked for, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    Position(u64),
    Date(NaiveDate),
    /// The events whose business date is on or before this day (docs/RULES.md §21).
    BusinessDate(NaiveDate),
}

pub fn as_of(as_of: Option<&api::AsOf>) -> Result<Option<AsOf>, Refusal> {
    match as_of.and_then(|as_of| as_of.point.as_ref()) {
        None => Ok(None),
        Some(api::as_of::Point::Position(position)) => Ok(Some(AsOf::Position(*position))),
        Some(api::as_of::Point::Date(text)) => Ok(Some(AsOf::Date(date("as_of.date", text)?))),
        Some(api::as_of::Point::BusinessDate(text)) => {
            Ok(Some(AsOf::BusinessDate(date("as_of.business_date", text)?)))
        }
    }
}

fn count(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
