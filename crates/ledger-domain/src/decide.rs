//! `decide`: every rule of the scheme, as one pure function from the state, a command and its
//! context to the events the command causes, or the one reason it is refused.
//!
//! Checks run in a fixed order: the shape of the input first (a malformed command is refused
//! the same way whatever the state), then the rules in the order `docs/RULES.md` lists them.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::command::{
    AdjustBudget, ApproveModule, ApproveProvider, CancelUsageCode, Command, ExpireVouchers,
    IssueVouchers, OpenBudget, OrderUsageCode, Principal, RecordPayout, RedeemHours,
    RegisterCompany, ReverseRedemption, WithdrawModule, WithdrawProvider,
};
use crate::event::{
    Account, BatchDraw, BudgetAdjusted, BudgetOpened, CompanyRegistered, Event, HoursRedeemed,
    ModuleApproved, ModuleWithdrawn, PayoutRecorded, Posting, ProviderApproved, ProviderWithdrawn,
    RedemptionReversed, VouchersExpired, VouchersIssued,
};
use crate::money;
use crate::policy::{Policy, PolicyTable};
use crate::refusal::{Ineligibility, Refusal};
use crate::state::{Approval, LedgerState};
use crate::types::{LegalForm, Region, SizeClass};

/// Longest company, provider or module name, in bytes.
pub const NAME_BYTES_MAX: usize = 200;
/// Longest free-text reason (withdrawal, adjustment, reversal), in bytes.
pub const REASON_BYTES_MAX: usize = 500;
/// Longest payment or payout reference, in bytes: bank references are at most 140 characters.
pub const REFERENCE_BYTES_MAX: usize = 140;
/// Most vouchers in one issuance: above every quota of the policy (800), so the quota speaks
/// first, and small enough that amounts never come near overflow.
pub const ISSUE_QUANTITY_MAX: u32 = 10_000;
/// Longest module, in hours for one worker: a full year of full-time training is about 1 700.
pub const MODULE_HOURS_MAX: u32 = 2_000;
/// Most batches one expiry run expires; the run is repeated for the rest, so that one command
/// never makes a group too large to write in one batch.
pub const EXPIRY_EVENTS_MAX: usize = 10_000;
/// Years the ledger accepts: the scheme started in 2004.
pub const YEAR_MIN: i32 = 2004;
pub const YEAR_MAX: i32 = 2100;

/// What a decision needs from outside the state: today's date (from the server's clock, read at
/// the edge) and the policy table.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub today: NaiveDate,
    pub policy: &'a PolicyTable,
}

impl Context<'_> {
    pub(crate) fn policy_on(&self, date: NaiveDate) -> Result<&Policy, Refusal> {
        self.policy
            .in_force(date)
            .ok_or(Refusal::PolicyNotInForce { date })
    }

    pub(crate) fn not_after_today(&self, date: NaiveDate) -> Result<(), Refusal> {
        if date > self.today {
            return Err(Refusal::DateInFuture {
                date,
                today: self.today,
            });
        }
        Ok(())
    }
}

/// Whether `principal` may send `command`. A provider acts only as itself; an auditor changes
/// nothing.
pub fn authorize(principal: &Principal, command: &Command) -> Result<(), Refusal> {
    let allowed = match (principal, command) {
        (
            Principal::Administration,
            Command::OpenBudget(_)
            | Command::AdjustBudget(_)
            | Command::ApproveProvider(_)
            | Command::WithdrawProvider(_)
            | Command::ApproveModule(_)
            | Command::WithdrawModule(_),
        ) => true,
        (
            Principal::Operator,
            Command::RegisterCompany(_)
            | Command::IssueVouchers(_)
            | Command::ExpireVouchers(_)
            | Command::RecordPayout(_),
        ) => true,
        (Principal::Provider(acting), Command::RedeemHours(RedeemHours { provider_id, .. }))
        | (
            Principal::Provider(acting),
            Command::ReverseRedemption(ReverseRedemption { provider_id, .. }),
        ) => acting == provider_id,
        // A company consents to training for itself only; the operator acts for any company.
        (
            Principal::Company(acting),
            Command::OrderUsageCode(OrderUsageCode {
                enterprise_number, ..
            }),
        )
        | (
            Principal::Company(acting),
            Command::CancelUsageCode(CancelUsageCode {
                enterprise_number, ..
            }),
        ) => acting == enterprise_number,
        (Principal::Operator, Command::OrderUsageCode(_) | Command::CancelUsageCode(_)) => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal::PermissionDenied {
            principal: principal.to_string(),
            action: command.action(),
        })
    }
}

/// The events `command` causes in `state`, or why it is refused. Never panics, whatever the
/// command holds.
pub fn decide(
    state: &LedgerState,
    command: &Command,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    match command {
        Command::OpenBudget(command) => open_budget(state, command),
        Command::AdjustBudget(command) => adjust_budget(state, command),
        Command::ApproveProvider(command) => approve_provider(state, command),
        Command::WithdrawProvider(command) => withdraw_provider(state, command),
        Command::ApproveModule(command) => approve_module(state, command),
        Command::WithdrawModule(command) => withdraw_module(state, command),
        Command::RegisterCompany(command) => register_company(state, command, context),
        Command::IssueVouchers(command) => issue_vouchers(state, command, context),
        Command::RedeemHours(command) => redeem_hours(state, command, context),
        Command::ReverseRedemption(command) => reverse_redemption(state, command, context),
        Command::ExpireVouchers(command) => expire_vouchers(state, command, context),
        Command::RecordPayout(command) => record_payout(state, command, context),
        Command::OrderUsageCode(command) => {
            crate::usage_rules::order_usage_code(state, command, context)
        }
        Command::CancelUsageCode(command) => {
            crate::usage_rules::cancel_usage_code(state, command, context)
        }
    }
}

pub(crate) fn check_text(field: &'static str, text: &str, bytes_max: usize) -> Result<(), Refusal> {
    check_free_text(field, text, bytes_max)
}

/// Free text (a name, a title, a reason, a reference): at most `bytes_max` bytes, and no C0 or
/// C1 control character (`char::is_control`: U+0000–U+001F, U+007F–U+009F), which would reach
/// terminals and logs as sent (an ESC clears a screen). The length is checked first, so that
/// a huge text is refused without being scanned.
pub fn check_free_text(field: &'static str, text: &str, bytes_max: usize) -> Result<(), Refusal> {
    if text.len() > bytes_max {
        return Err(Refusal::TextTooLong { field, bytes_max });
    }
    if text.chars().any(char::is_control) {
        return Err(Refusal::TextHasControlCharacters { field });
    }
    Ok(())
}

fn check_amount(field: &'static str, amount: Decimal) -> Result<(), Refusal> {
    if !money::is_valid_eur(amount) {
        return Err(Refusal::InvalidAmount { field });
    }
    Ok(())
}

fn check_year(year: i32) -> Result<(), Refusal> {
    if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
        return Err(Refusal::InvalidYear { year });
    }
    Ok(())
}

fn check_period(from: NaiveDate, until: Option<NaiveDate>) -> Result<(), Refusal> {
    match until {
        Some(until) if until < from => Err(Refusal::InvalidPeriod {
            from,
            until,
            field: "approved_until",
        }),
        _ => Ok(()),
    }
}

fn open_budget(state: &LedgerState, command: &OpenBudget) -> Result<Vec<Event>, Refusal> {
    check_year(command.year)?;
    check_amount("allocated_eur", command.allocated_eur)?;
    if state.budgets.contains_key(&command.year) {
        return Err(Refusal::BudgetAlreadyOpened { year: command.year });
    }
    Ok(vec![Event::BudgetOpened(BudgetOpened {
        year: command.year,
        allocated_eur: money::to_cents(command.allocated_eur),
    })])
}

fn adjust_budget(state: &LedgerState, command: &AdjustBudget) -> Result<Vec<Event>, Refusal> {
    check_year(command.year)?;
    check_amount("allocated_eur", command.allocated_eur)?;
    check_text("reason", &command.reason, REASON_BYTES_MAX)?;
    let budget = state
        .budgets
        .get(&command.year)
        .ok_or(Refusal::BudgetNotOpened { year: command.year })?;
    let used_eur = budget.committed_eur + budget.spent_eur;
    if command.allocated_eur < used_eur {
        return Err(Refusal::BudgetBelowUsed {
            year: command.year,
            used_eur: money::to_cents(used_eur),
        });
    }
    Ok(vec![Event::BudgetAdjusted(BudgetAdjusted {
        year: command.year,
        allocated_eur: money::to_cents(command.allocated_eur),
        previous_allocated_eur: budget.allocated_eur,
        reason: command.reason.clone(),
    })])
}

fn approve_provider(state: &LedgerState, command: &ApproveProvider) -> Result<Vec<Event>, Refusal> {
    check_text("name", &command.name, NAME_BYTES_MAX)?;
    check_period(command.approved_from, command.approved_until)?;
    let approval = Approval {
        from: command.approved_from,
        until: command.approved_until,
        withdrawn_from: None,
    };
    if let Some(provider) = state.providers.get(&command.provider_id) {
        if provider
            .approvals
            .iter()
            .any(|existing| existing.overlaps(&approval))
        {
            return Err(Refusal::ProviderAlreadyApproved);
        }
    }
    Ok(vec![Event::ProviderApproved(ProviderApproved {
        provider_id: command.provider_id.clone(),
        name: command.name.clone(),
        approved_from: command.approved_from,
        approved_until: command.approved_until,
    })])
}

fn withdraw_provider(
    state: &LedgerState,
    command: &WithdrawProvider,
) -> Result<Vec<Event>, Refusal> {
    check_text("reason", &command.reason, REASON_BYTES_MAX)?;
    let provider = state
        .providers
        .get(&command.provider_id)
        .ok_or(Refusal::ProviderNotFound)?;
    let date = command.withdrawn_from;
    // The withdrawal ends the approval in force on its date, whichever was recorded last.
    if !provider
        .approvals
        .iter()
        .any(|approval| approval.in_force_on(date))
    {
        let withdrawn_already = provider.approvals.iter().any(|approval| {
            approval
                .withdrawn_from
                .is_some_and(|withdrawn_from| withdrawn_from <= date)
                && approval.from <= date
                && approval.until.is_none_or(|until| date <= until)
        });
        if withdrawn_already {
            return Err(Refusal::ProviderAlreadyWithdrawn);
        }
        return Err(Refusal::ProviderNotApproved { date });
    }
    Ok(vec![Event::ProviderWithdrawn(ProviderWithdrawn {
        provider_id: command.provider_id.clone(),
        withdrawn_from: command.withdrawn_from,
        reason: command.reason.clone(),
    })])
}

fn approve_module(state: &LedgerState, command: &ApproveModule) -> Result<Vec<Event>, Refusal> {
    check_text("title", &command.title, NAME_BYTES_MAX)?;
    if !(1..=MODULE_HOURS_MAX).contains(&command.hours_max) {
        return Err(Refusal::InvalidHours {
            hours_max: MODULE_HOURS_MAX,
        });
    }
    if command.accepted_voucher_types.is_empty() {
        return Err(Refusal::EmptyList {
            field: "accepted_voucher_types",
        });
    }
    if command.themes.is_empty() {
        return Err(Refusal::EmptyList { field: "themes" });
    }
    check_period(command.approved_from, command.approved_until)?;
    if let Some(theme) = command.themes.iter().find(|theme| !theme.may_be_approved()) {
        return Err(Refusal::ThemeNotApprovable { theme: *theme });
    }
    if !state.providers.contains_key(&command.provider_id) {
        return Err(Refusal::ProviderNotFound);
    }
    if state.modules.contains_key(&command.module_id) {
        return Err(Refusal::ModuleAlreadyApproved);
    }
    let mut accepted_voucher_types = command.accepted_voucher_types.clone();
    accepted_voucher_types.sort();
    accepted_voucher_types.dedup();
    let mut themes = command.themes.clone();
    themes.sort();
    themes.dedup();
    Ok(vec![Event::ModuleApproved(ModuleApproved {
        module_id: command.module_id.clone(),
        provider_id: command.provider_id.clone(),
        title: command.title.clone(),
        hours_max: command.hours_max,
        accepted_voucher_types,
        themes,
        approved_from: command.approved_from,
        approved_until: command.approved_until,
    })])
}

fn withdraw_module(state: &LedgerState, command: &WithdrawModule) -> Result<Vec<Event>, Refusal> {
    check_text("reason", &command.reason, REASON_BYTES_MAX)?;
    let module = state
        .modules
        .get(&command.module_id)
        .ok_or(Refusal::ModuleNotFound)?;
    let withdrawn_already = module
        .approval
        .withdrawn_from
        .is_some_and(|withdrawn_from| withdrawn_from <= command.withdrawn_from);
    if withdrawn_already {
        return Err(Refusal::ModuleAlreadyWithdrawn);
    }
    Ok(vec![Event::ModuleWithdrawn(ModuleWithdrawn {
        module_id: command.module_id.clone(),
        provider_id: module.provider_id.clone(),
        withdrawn_from: command.withdrawn_from,
        reason: command.reason.clone(),
    })])
}

/// A NACE-BEL code: two digits, optionally a dot and one to three more ("62", "62.01", "62.010").
fn is_nace_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    let division_ok = bytes.len() >= 2 && bytes[..2].iter().all(u8::is_ascii_digit);
    let rest = &bytes[2.min(bytes.len())..];
    let rest_ok = rest.is_empty()
        || (rest[0] == b'.'
            && (2..=4).contains(&rest.len())
            && rest[1..].iter().all(u8::is_ascii_digit));
    division_ok && rest_ok
}

/// The size class of an eligible company, or why it is not eligible (docs/RULES.md rules 2, 3).
pub fn eligibility(command: &RegisterCompany, policy: &Policy) -> Result<SizeClass, Ineligibility> {
    match command.legal_form {
        LegalForm::NonProfit => return Err(Ineligibility::NonProfit),
        LegalForm::PublicBody => return Err(Ineligibility::PublicBody),
        LegalForm::CommercialCompany
        | LegalForm::SelfEmployedMain
        | LegalForm::SelfEmployedSecondary => {}
    }
    match command.region {
        Region::WalloniaFrenchSpeaking => {}
        Region::WalloniaGermanSpeaking | Region::Brussels | Region::Flanders => {
            return Err(Ineligibility::RegionNotCovered)
        }
    }
    if command.fte > policy.fte_max {
        return Err(Ineligibility::TooManyEmployees);
    }
    if command.turnover_eur > policy.turnover_max_eur
        && command.balance_sheet_total_eur > policy.balance_sheet_total_max_eur
    {
        return Err(Ineligibility::TooLarge);
    }
    if !command.autonomous {
        return Err(Ineligibility::NotAutonomous);
    }
    match command.legal_form {
        LegalForm::SelfEmployedSecondary => {
            if command.secondary_activity_months < policy.secondary_self_employed_months_min {
                return Err(Ineligibility::SecondaryActivityTooShort);
            }
            Ok(SizeClass::SecondarySelfEmployed)
        }
        LegalForm::SelfEmployedMain => Ok(SizeClass::Micro),
        _ => Ok(size_class_of_fte(command.fte)),
    }
}

/// The quota table's rows: below 2 FTE, 2 to 50, over 50 to 100, over 100 to 200, over 200.
fn size_class_of_fte(fte: Decimal) -> SizeClass {
    if fte < Decimal::from(2) {
        SizeClass::Micro
    } else if fte <= Decimal::from(50) {
        SizeClass::Fte2To50
    } else if fte <= Decimal::from(100) {
        SizeClass::Fte51To100
    } else if fte <= Decimal::from(200) {
        SizeClass::Fte101To200
    } else {
        SizeClass::Fte201To250
    }
}

fn register_company(
    state: &LedgerState,
    command: &RegisterCompany,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    check_year(command.year)?;
    check_text("name", &command.name, NAME_BYTES_MAX)?;
    if !is_nace_code(&command.nace_sector) {
        return Err(Refusal::InvalidIdentifier {
            field: "nace_sector",
        });
    }
    if command.fte.is_sign_negative()
        || command.fte.normalize().scale() > 2
        || command.fte > Decimal::from(1_000_000)
    {
        return Err(Refusal::InvalidAmount { field: "fte" });
    }
    check_amount("turnover_eur", command.turnover_eur)?;
    check_amount("balance_sheet_total_eur", command.balance_sheet_total_eur)?;
    context.not_after_today(command.registered_on)?;
    if command.year > context.today.year() + 1 || command.registered_on.year() > command.year {
        return Err(Refusal::YearNotOpen { year: command.year });
    }
    let policy = context.policy_on(command.registered_on)?;
    let size_class =
        eligibility(command, policy).map_err(|why| Refusal::CompanyNotEligible { why })?;
    let already = state
        .companies
        .get(&command.enterprise_number)
        .is_some_and(|company| company.registrations.contains_key(&command.year));
    if already {
        return Err(Refusal::CompanyAlreadyRegistered { year: command.year });
    }
    Ok(vec![Event::CompanyRegistered(CompanyRegistered {
        enterprise_number: command.enterprise_number.clone(),
        year: command.year,
        name: command.name.clone(),
        legal_form: command.legal_form,
        region: command.region,
        fte: command.fte,
        turnover_eur: money::to_cents(command.turnover_eur),
        balance_sheet_total_eur: money::to_cents(command.balance_sheet_total_eur),
        autonomous: command.autonomous,
        secondary_activity_months: command.secondary_activity_months,
        nace_sector: command.nace_sector.clone(),
        size_class,
        registered_on: command.registered_on,
    })])
}

fn issue_vouchers(
    state: &LedgerState,
    command: &IssueVouchers,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    if !(1..=ISSUE_QUANTITY_MAX).contains(&command.quantity) {
        return Err(Refusal::InvalidQuantity {
            quantity_max: ISSUE_QUANTITY_MAX,
        });
    }
    check_amount("paid_amount_eur", command.paid_amount_eur)?;
    check_text(
        "payment_reference",
        &command.payment_reference,
        REFERENCE_BYTES_MAX,
    )?;
    // Vouchers are issued when the payment is received, never before.
    context.not_after_today(command.payment_date)?;
    let year = command.payment_date.year();
    check_year(year)?;
    let policy = context.policy_on(command.payment_date)?;
    let company = state.companies.get(&command.enterprise_number);
    // Registration comes before ordering: a payment dated before the registration day was not
    // made under it.
    let registration = company
        .and_then(|company| company.registrations.get(&year))
        .filter(|registration| registration.registered_on <= command.payment_date)
        .ok_or(Refusal::CompanyNotRegistered { year })?;
    if state.batch_ids.contains(&command.batch_id) {
        return Err(Refusal::BatchAlreadyExists);
    }
    let expected_eur = money::times(policy.employer_share_eur, command.quantity);
    if command.paid_amount_eur != expected_eur {
        return Err(Refusal::PaymentAmountMismatch {
            expected_eur,
            paid_eur: money::to_cents(command.paid_amount_eur),
        });
    }
    let quota = policy.quota(registration.size_class, command.voucher_type);
    let issued = company
        .and_then(|company| company.issued.get(&(year, command.voucher_type)))
        .copied()
        .unwrap_or(0);
    if issued.saturating_add(command.quantity) > quota {
        return Err(Refusal::QuotaExceeded {
            voucher_type: command.voucher_type,
            year,
            quota,
            issued,
            requested: command.quantity,
        });
    }
    let budget = state
        .budgets
        .get(&year)
        .ok_or(Refusal::BudgetNotOpened { year })?;
    let region_eur = money::times(policy.region_share_eur, command.quantity);
    if region_eur > budget.available_eur() {
        return Err(Refusal::BudgetExhausted {
            year,
            available_eur: money::to_cents(budget.available_eur()),
            needed_eur: region_eur,
        });
    }
    let face_eur = money::times(policy.face_value_eur, command.quantity);
    Ok(vec![Event::VouchersIssued(VouchersIssued {
        enterprise_number: command.enterprise_number.clone(),
        batch_id: command.batch_id,
        voucher_type: command.voucher_type,
        quantity: command.quantity,
        payment_date: command.payment_date,
        payment_reference: command.payment_reference.clone(),
        paid_amount_eur: expected_eur,
        face_value_eur: policy.face_value_eur,
        employer_share_eur: policy.employer_share_eur,
        region_share_eur: policy.region_share_eur,
        budget_year: year,
        valid_until: policy.valid_until(command.payment_date),
        quota,
        issued_in_year: issued + command.quantity,
        postings: vec![
            Posting::debit(Account::VouchersOutstanding, face_eur),
            Posting::credit(Account::CompanyContributions, expected_eur),
            Posting::credit(Account::RegionBudget(year), region_eur),
        ],
    })])
}

fn redeem_hours(
    state: &LedgerState,
    command: &RedeemHours,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    if !(1..=MODULE_HOURS_MAX).contains(&command.hours) {
        return Err(Refusal::InvalidHours {
            hours_max: MODULE_HOURS_MAX,
        });
    }
    // Vouchers pay for training already given.
    context.not_after_today(command.training_date)?;
    if state.redemptions.contains_key(&command.redemption_id) {
        return Err(Refusal::RedemptionAlreadyExists);
    }
    let date = command.training_date;
    // The company's consent comes first: without it, or with a code that does not fit, the
    // rest does not matter.
    let usage_code = match &command.usage_code {
        Some(code) => Some(crate::usage_rules::code_for_filing(
            state, command, code, context,
        )?),
        None => {
            if let Some(required_from) = context
                .policy
                .in_force(date)
                .and_then(|policy| policy.usage_code_required_from)
                .filter(|required_from| *required_from <= date)
            {
                return Err(Refusal::UsageCodeRequired { required_from });
            }
            None
        }
    };
    let provider = state
        .providers
        .get(&command.provider_id)
        .ok_or(Refusal::ProviderNotFound)?;
    if !provider.approved_on(date) {
        return Err(Refusal::ProviderNotApproved { date });
    }
    let module = state
        .modules
        .get(&command.module_id)
        .ok_or(Refusal::ModuleNotFound)?;
    if module.provider_id != command.provider_id {
        return Err(Refusal::ModuleNotOfProvider);
    }
    if !module.approval.in_force_on(date) {
        return Err(Refusal::ModuleNotApproved { date });
    }
    if !module
        .accepted_voucher_types
        .contains(&command.voucher_type)
    {
        return Err(Refusal::VoucherTypeNotAccepted {
            voucher_type: command.voucher_type,
        });
    }
    if !command.trainee_status.may_be_trained_with_vouchers() {
        return Err(Refusal::TraineeNotEligible {
            status: command.trainee_status,
        });
    }
    let already = state
        .worker_module_hours
        .get(&command.module_id, &command.worker)
        .unwrap_or(0);
    if already + command.hours > module.hours_max {
        return Err(Refusal::HoursExceedModuleLength {
            hours_max: module.hours_max,
            already,
            requested: command.hours,
        });
    }
    let company = state
        .companies
        .get(&command.enterprise_number)
        .ok_or(Refusal::CompanyNotFound)?;

    let draws = match usage_code {
        Some(code) => crate::usage_rules::draws_from_earmarks(code.earmarks(), command.hours),
        None => free_draws(company, command, date)?,
    };
    let amount_owed_eur: Decimal = draws
        .iter()
        .map(|draw| money::times(draw.face_value_eur, draw.quantity))
        .sum();
    Ok(vec![Event::HoursRedeemed(HoursRedeemed {
        redemption_id: command.redemption_id,
        provider_id: command.provider_id.clone(),
        module_id: command.module_id.clone(),
        enterprise_number: command.enterprise_number.clone(),
        worker: command.worker,
        trainee_status: command.trainee_status,
        voucher_type: command.voucher_type,
        hours: command.hours,
        training_date: date,
        draws,
        amount_owed_eur,
        postings: vec![
            Posting::credit(Account::VouchersOutstanding, amount_owed_eur),
            Posting::debit(
                Account::ProviderPayable(command.provider_id.clone()),
                amount_owed_eur,
            ),
        ],
        usage_code: command.usage_code.clone(),
    })])
}

/// The draws of a redemption without a code: the free vouchers held on the training date, oldest
/// expiry first.
fn free_draws(
    company: &crate::state::Company,
    command: &RedeemHours,
    date: NaiveDate,
) -> Result<Vec<BatchDraw>, Refusal> {
    // Vouchers held on the training date: paid by then, of the right type, not used up, not
    // earmarked for a usage code.
    let mut held: Vec<_> = company
        .batches
        .values()
        .filter(|batch| {
            batch.voucher_type == command.voucher_type
                && batch.free() > 0
                && batch.payment_date <= date
        })
        .collect();
    let held_total: u32 = held.iter().map(|batch| batch.free()).sum();
    held.retain(|batch| batch.valid_until >= date);
    let unexpired: u32 = held.iter().map(|batch| batch.free()).sum();
    if unexpired < command.hours {
        if held_total >= command.hours {
            return Err(Refusal::VouchersExpired {
                unexpired,
                requested: command.hours,
            });
        }
        return Err(Refusal::InsufficientVouchers {
            available: unexpired,
            requested: command.hours,
        });
    }
    Ok(draw_oldest_first(held, command.hours))
}

/// Draws `hours` free vouchers from `batches`, which the caller has counted as enough: oldest
/// expiry first and, among equal expiries, the batch issued first. How a redemption draws and
/// how a usage code earmarks.
pub(crate) fn draw_oldest_first(
    mut batches: Vec<&crate::state::Batch>,
    hours: u32,
) -> Vec<BatchDraw> {
    batches.sort_by_key(|batch| (batch.valid_until, batch.sequence));
    let mut draws = Vec::new();
    let mut left = hours;
    for batch in batches {
        if left == 0 {
            break;
        }
        let quantity = batch.free().min(left);
        left -= quantity;
        draws.push(BatchDraw {
            batch_id: batch.batch_id,
            quantity,
            budget_year: batch.budget_year,
            face_value_eur: batch.face_value_eur,
            region_share_eur: batch.region_share_eur,
            valid_until: batch.valid_until,
        });
    }
    assert_eq!(left, 0, "the vouchers drawn from were counted as enough");
    draws
}

fn reverse_redemption(
    state: &LedgerState,
    command: &ReverseRedemption,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    check_text("reason", &command.reason, REASON_BYTES_MAX)?;
    context.not_after_today(command.reversed_on)?;
    let redemption = state
        .redemptions
        .get(&command.redemption_id)
        .ok_or(Refusal::RedemptionNotFound)?;
    if redemption.provider_id != command.provider_id {
        return Err(Refusal::RedemptionNotOfProvider);
    }
    if redemption.reversed {
        return Err(Refusal::RedemptionAlreadyReversed);
    }
    // Training cannot be cancelled before it was given: such a date is a typing error that
    // would put the reversal before its redemption in every dated report.
    if command.reversed_on < redemption.training_date {
        return Err(Refusal::ReversalBeforeTraining {
            reversed_on: command.reversed_on,
            training_date: redemption.training_date,
        });
    }
    let owed_eur = state
        .providers
        .get(&command.provider_id)
        .map_or(Decimal::ZERO, |provider| provider.owed_eur);
    // A provider already paid for the training gives the money back before it is reversed.
    if owed_eur < redemption.amount_eur {
        return Err(Refusal::ProviderBalanceTooLow {
            owed_eur,
            amount_eur: redemption.amount_eur,
        });
    }
    Ok(vec![Event::RedemptionReversed(RedemptionReversed {
        redemption_id: command.redemption_id,
        provider_id: command.provider_id.clone(),
        enterprise_number: redemption.enterprise_number.clone(),
        returned: redemption.draws.clone(),
        amount_eur: redemption.amount_eur,
        reason: command.reason.clone(),
        reversed_on: command.reversed_on,
        postings: vec![
            Posting::debit(Account::VouchersOutstanding, redemption.amount_eur),
            Posting::credit(
                Account::ProviderPayable(command.provider_id.clone()),
                redemption.amount_eur,
            ),
        ],
    })])
}

fn expire_vouchers(
    state: &LedgerState,
    command: &ExpireVouchers,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    context.not_after_today(command.as_of)?;
    let policy = context.policy_on(command.as_of)?;
    // Codes whose filing grace has passed close first, so that their vouchers expire in the
    // same run when their own validity has ended; vouchers of codes still in their grace stay.
    let lapses = crate::usage_rules::lapses_due(state, command.as_of, EXPIRY_EVENTS_MAX);
    let mut lapsed_per_batch: std::collections::BTreeMap<uuid::Uuid, u32> =
        std::collections::BTreeMap::new();
    for lapse in &lapses {
        for draw in &lapse.returned {
            *lapsed_per_batch.entry(draw.batch_id).or_default() += draw.quantity;
        }
    }
    let expirable = |batch: &crate::state::Batch| {
        let lapsed = lapsed_per_batch.get(&batch.batch_id).copied().unwrap_or(0);
        batch.free() + lapsed.min(batch.earmarked)
    };
    let mut due: Vec<_> = state
        .companies
        .iter()
        .flat_map(|(enterprise_number, company)| {
            company
                .batches
                .values()
                .map(move |batch| (enterprise_number, batch))
        })
        .filter(|(_, batch)| expirable(batch) > 0 && batch.valid_until < command.as_of)
        .collect();
    due.sort_by_key(|(enterprise_number, batch)| {
        (batch.valid_until, batch.sequence, *enterprise_number)
    });
    due.truncate(EXPIRY_EVENTS_MAX - lapses.len());
    let refunded = policy.refund_employer_share_on_expiry;
    let expiries = due.into_iter().map(|(enterprise_number, batch)| {
        let quantity = expirable(batch);
        let face_eur = money::times(batch.face_value_eur, quantity);
        let region_eur = money::times(batch.region_share_eur, quantity);
        let employer_eur = face_eur - region_eur;
        let company_account = if refunded {
            Account::CompanyRefunded
        } else {
            Account::CompanyExpired
        };
        Event::VouchersExpired(VouchersExpired {
            enterprise_number: enterprise_number.clone(),
            batch_id: batch.batch_id,
            voucher_type: batch.voucher_type,
            quantity,
            budget_year: batch.budget_year,
            valid_until: batch.valid_until,
            region_share_released_eur: region_eur,
            employer_share_eur: employer_eur,
            employer_share_refunded: refunded,
            expired_on: command.as_of,
            postings: vec![
                Posting::credit(Account::VouchersOutstanding, face_eur),
                Posting::debit(Account::RegionBudget(batch.budget_year), region_eur),
                Posting::debit(company_account, employer_eur),
            ],
        })
    });
    let events = lapses
        .into_iter()
        .map(Event::UsageCodeLapsed)
        .chain(expiries)
        .collect();
    Ok(events)
}

fn record_payout(
    state: &LedgerState,
    command: &RecordPayout,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    check_amount("amount_eur", command.amount_eur)?;
    if command.amount_eur.is_zero() {
        return Err(Refusal::InvalidAmount {
            field: "amount_eur",
        });
    }
    check_text(
        "payout_reference",
        &command.payout_reference,
        REFERENCE_BYTES_MAX,
    )?;
    context.not_after_today(command.payout_date)?;
    let provider = state
        .providers
        .get(&command.provider_id)
        .ok_or(Refusal::ProviderNotFound)?;
    let amount_eur = money::to_cents(command.amount_eur);
    if amount_eur > provider.owed_eur {
        return Err(Refusal::ProviderBalanceTooLow {
            owed_eur: provider.owed_eur,
            amount_eur,
        });
    }
    Ok(vec![Event::PayoutRecorded(PayoutRecorded {
        provider_id: command.provider_id.clone(),
        amount_eur,
        payout_date: command.payout_date,
        payout_reference: command.payout_reference.clone(),
        postings: vec![
            Posting::credit(
                Account::ProviderPayable(command.provider_id.clone()),
                amount_eur,
            ),
            Posting::debit(
                Account::ProviderPaid(command.provider_id.clone()),
                amount_eur,
            ),
        ],
    })])
}

#[cfg(test)]
mod tests {
    use super::is_nace_code;

    #[test]
    fn nace_codes() {
        for code in ["62", "62.01", "62.010", "01.1"] {
            assert!(is_nace_code(code), "{code}");
        }
        for code in ["", "6", "6a", "62.", "62.0101", "62,01", "62.0a"] {
            assert!(!is_nace_code(code), "{code}");
        }
    }
}
