//! The rules of usage codes (docs/RULES.md §14): ordering and cancelling a code, the checks of a
//! filing against one, and the codes an expiry run closes. Pure, like the rest of `decide`; the
//! caller passes today's date and the policy in the [`Context`].

use chrono::NaiveDate;

use crate::command::{CancelUsageCode, OrderUsageCode, RedeemHours};
use crate::decide::{check_text, draw_oldest_first, Context, MODULE_HOURS_MAX, REASON_BYTES_MAX};
use crate::event::{BatchDraw, Event, UsageCodeCancelled, UsageCodeLapsed, UsageCodeOrdered};
use crate::refusal::Refusal;
use crate::state::{LedgerState, UsageCodeRecord, UsageCodeStatus};
use crate::usage_code::UsageCode;

/// Longest period of a usage code, in days: a year, the vouchers' validity. Earmarked vouchers
/// are out of every other use for that long.
pub const USAGE_CODE_PERIOD_DAYS_MAX: u32 = 366;
/// Most codes derived for one order before giving up. A collision of two codes has a chance of
/// about one in 10^12 per open code; a thousand in a row cannot happen, so reaching the limit
/// means a bug, which the assertion reports.
const CODE_ATTEMPTS_MAX: u32 = 1_000;

pub(crate) fn order_usage_code(
    state: &LedgerState,
    command: &OrderUsageCode,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    if !(1..=MODULE_HOURS_MAX).contains(&command.hours) {
        return Err(Refusal::InvalidHours {
            hours_max: MODULE_HOURS_MAX,
        });
    }
    let (from, until) = (command.period_from, command.period_until);
    if until < from {
        return Err(Refusal::InvalidPeriod {
            from,
            until,
            field: "period_until",
        });
    }
    if (until - from).num_days() >= i64::from(USAGE_CODE_PERIOD_DAYS_MAX) {
        return Err(Refusal::UsageCodePeriodTooLong {
            days_max: USAGE_CODE_PERIOD_DAYS_MAX,
        });
    }
    if state.usage_code_orders.contains(&command.order_id) {
        return Err(Refusal::UsageCodeOrderAlreadyExists);
    }
    let company = state
        .companies
        .get(&command.enterprise_number)
        .ok_or(Refusal::CompanyNotFound)?;
    let provider = state
        .providers
        .get(&command.provider_id)
        .ok_or(Refusal::ProviderNotFound)?;
    for date in [from, until] {
        if !provider.approved_on(date) {
            return Err(Refusal::ProviderNotApproved { date });
        }
    }
    if let Some(module_id) = &command.module_id {
        let module = state
            .modules
            .get(module_id)
            .ok_or(Refusal::ModuleNotFound)?;
        if module.provider_id != command.provider_id {
            return Err(Refusal::ModuleNotOfProvider);
        }
        for date in [from, until] {
            if !module.approval.in_force_on(date) {
                return Err(Refusal::ModuleNotApproved { date });
            }
        }
        if !module
            .accepted_voucher_types
            .contains(&command.voucher_type)
        {
            return Err(Refusal::VoucherTypeNotAccepted {
                voucher_type: command.voucher_type,
            });
        }
    }
    let policy = context.policy_on(context.today)?;

    // Free vouchers of the type; of those, the ones that may pay for a training on any day of
    // the period: paid by its first day, valid through its last.
    let free: Vec<_> = company
        .batches
        .values()
        .filter(|batch| batch.voucher_type == command.voucher_type && batch.free() > 0)
        .collect();
    let free_total: u32 = free.iter().map(|batch| batch.free()).sum();
    let usable: Vec<_> = free
        .into_iter()
        .filter(|batch| batch.payment_date <= from && batch.valid_until >= until)
        .collect();
    let usable_total: u32 = usable.iter().map(|batch| batch.free()).sum();
    if usable_total < command.hours {
        if free_total >= command.hours {
            return Err(Refusal::UsageCodePeriodOutsideValidity {
                period_from: from,
                period_until: until,
                usable: usable_total,
                requested: command.hours,
            });
        }
        return Err(Refusal::InsufficientVouchers {
            available: free_total,
            requested: command.hours,
        });
    }
    // Oldest expiry first, as redemptions draw.
    let earmarks = draw_oldest_first(usable, command.hours);
    let code = (0..CODE_ATTEMPTS_MAX)
        .map(|attempt| UsageCode::derive(command.order_id, attempt))
        .find(|code| !state.usage_codes.contains_key(code));
    let Some(code) = code else {
        return Err(Refusal::UsageCodeNotDerivable);
    };
    let filing_until = until
        .checked_add_days(chrono::Days::new(u64::from(policy.filing_grace_days)))
        .unwrap_or(NaiveDate::MAX);
    Ok(vec![Event::UsageCodeOrdered(UsageCodeOrdered {
        code,
        order_id: command.order_id,
        enterprise_number: command.enterprise_number.clone(),
        provider_id: command.provider_id.clone(),
        module_id: command.module_id.clone(),
        voucher_type: command.voucher_type,
        hours: command.hours,
        period_from: from,
        period_until: until,
        filing_until,
        ordered_on: context.today,
        earmarks,
    })])
}

/// Checks common to cancelling and filing: the code exists, is the company's, is open and
/// still holds hours.
fn open_code_of_company<'a>(
    state: &'a LedgerState,
    code: &UsageCode,
    enterprise_number: &crate::EnterpriseNumber,
) -> Result<&'a UsageCodeRecord, Refusal> {
    let record = state
        .usage_codes
        .get(code)
        .ok_or(Refusal::UsageCodeNotFound)?;
    if &record.enterprise_number != enterprise_number {
        return Err(Refusal::UsageCodeNotOfCompany);
    }
    match record.status {
        UsageCodeStatus::Open => {}
        UsageCodeStatus::Cancelled => return Err(Refusal::UsageCodeCancelled),
        UsageCodeStatus::Lapsed => {
            return Err(Refusal::UsageCodeLapsed {
                filing_until: record.filing_until,
            })
        }
    }
    Ok(record)
}

pub(crate) fn cancel_usage_code(
    state: &LedgerState,
    command: &CancelUsageCode,
    context: &Context<'_>,
) -> Result<Vec<Event>, Refusal> {
    check_text("reason", &command.reason, REASON_BYTES_MAX)?;
    let record = open_code_of_company(state, &command.code, &command.enterprise_number)?;
    if record.hours_left == 0 {
        return Err(Refusal::UsageCodeUsedUp);
    }
    Ok(vec![Event::UsageCodeCancelled(UsageCodeCancelled {
        code: command.code.clone(),
        enterprise_number: command.enterprise_number.clone(),
        returned: record.earmarks().to_vec(),
        reason: command.reason.clone(),
        cancelled_on: context.today,
    })])
}

/// The code a filing draws on, once every rule of a filing against a code holds: the code's
/// provider, company, module and voucher type, a training date inside its period, a filing day
/// (today) no later than its grace, and enough hours left.
pub(crate) fn code_for_filing<'a>(
    state: &'a LedgerState,
    command: &RedeemHours,
    code: &UsageCode,
    context: &Context<'_>,
) -> Result<&'a UsageCodeRecord, Refusal> {
    let record = state
        .usage_codes
        .get(code)
        .ok_or(Refusal::UsageCodeNotFound)?;
    if record.provider_id != command.provider_id {
        return Err(Refusal::UsageCodeNotOfProvider);
    }
    let record = open_code_of_company(state, code, &command.enterprise_number)?;
    if context.today > record.filing_until {
        return Err(Refusal::UsageCodeLapsed {
            filing_until: record.filing_until,
        });
    }
    let terms = match &record.terms {
        Some(terms) if record.hours_left > 0 => terms,
        _ => return Err(Refusal::UsageCodeUsedUp),
    };
    if let Some(module_id) = &terms.module_id {
        if module_id != &command.module_id {
            return Err(Refusal::UsageCodeModuleMismatch {
                expected: module_id.to_string(),
            });
        }
    }
    if terms.voucher_type != command.voucher_type {
        return Err(Refusal::UsageCodeVoucherTypeMismatch {
            expected: terms.voucher_type,
        });
    }
    let date = command.training_date;
    if date < terms.period_from || date > terms.period_until {
        return Err(Refusal::TrainingOutsideUsageCodePeriod {
            training_date: date,
            period_from: terms.period_from,
            period_until: terms.period_until,
        });
    }
    if command.hours > record.hours_left {
        return Err(Refusal::HoursExceedUsageCode {
            hours_left: record.hours_left,
            requested: command.hours,
        });
    }
    Ok(record)
}

/// The first `hours` vouchers of a code's earmarks, in their order (oldest expiry first). The
/// caller checked that they hold enough.
pub(crate) fn draws_from_earmarks(earmarks: &[BatchDraw], hours: u32) -> Vec<BatchDraw> {
    let mut draws = Vec::new();
    let mut left = hours;
    for earmark in earmarks {
        if left == 0 {
            break;
        }
        let quantity = earmark.quantity.min(left);
        left -= quantity;
        draws.push(BatchDraw {
            quantity,
            ..earmark.clone()
        });
    }
    assert_eq!(left, 0, "the code was checked to hold enough hours");
    draws
}

/// The codes an expiry run on `as_of` closes: open, hours left, and a filing grace that ended
/// before `as_of`; at most `len_max`, the earliest grace first.
pub(crate) fn lapses_due(
    state: &LedgerState,
    as_of: NaiveDate,
    len_max: usize,
) -> Vec<UsageCodeLapsed> {
    let mut due: Vec<_> = state
        .usage_codes
        .iter()
        .filter(|(_, record)| {
            record.status == UsageCodeStatus::Open
                && record.hours_left > 0
                && record.filing_until < as_of
        })
        .collect();
    due.sort_by_key(|(code, record)| (record.filing_until, *code));
    due.truncate(len_max);
    due.into_iter()
        .map(|(code, record)| UsageCodeLapsed {
            code: code.clone(),
            enterprise_number: record.enterprise_number.clone(),
            returned: record.earmarks().to_vec(),
            lapsed_on: as_of,
        })
        .collect()
}
