//! What `verify` checks of each event's meaning, beyond its postings: the facts an event states
//! must agree with each other and with the ledger as it stood before it. A log written by this
//! ledger's `decide` always passes; an event edited by hand (and re-chained) does not, even
//! when its postings still balance: a redemption whose hours were raised without its draws, a
//! draw from a batch that does not hold the vouchers, a reversal that gives back other
//! vouchers than the redemption took.
//!
//! Pure functions of the state and the event; `verify` calls [`before`] with the state before
//! the event and [`after`] with the state once the event was applied.

use ledger_domain::event::{BatchDraw, HoursRedeemed, RedemptionReversed, VouchersIssued};
use ledger_domain::money::times;
use ledger_domain::{Event, LedgerState};
use rust_decimal::Decimal;

/// What must hold between the event and the ledger before it.
pub(super) fn before(state: &LedgerState, event: &Event) -> Result<(), String> {
    match event {
        Event::VouchersIssued(issued) => issuance(issued),
        Event::HoursRedeemed(redeemed) => redemption(state, redeemed),
        Event::RedemptionReversed(reversed) => reversal(state, reversed),
        _ => Ok(()),
    }
}

/// What must hold of the ledger after every event: no budget uses more than its allocation,
/// no provider is owed a negative amount.
pub(super) fn after(state: &LedgerState) -> Result<(), String> {
    for (year, budget) in &state.budgets {
        if budget.committed_eur.is_sign_negative() || budget.spent_eur.is_sign_negative() {
            return Err(format!(
                "budget {year} has EUR {} committed and EUR {} spent: a negative amount",
                budget.committed_eur, budget.spent_eur
            ));
        }
        if budget.committed_eur + budget.spent_eur > budget.allocated_eur {
            return Err(format!(
                "budget {year} has EUR {} committed and EUR {} spent, more than its allocation of EUR {}",
                budget.committed_eur, budget.spent_eur, budget.allocated_eur
            ));
        }
    }
    for (provider_id, provider) in &state.providers {
        if provider.owed_eur.is_sign_negative() && !provider.owed_eur.is_zero() {
            return Err(format!(
                "provider {provider_id} is owed EUR {}: a negative amount",
                provider.owed_eur
            ));
        }
    }
    Ok(())
}

fn issuance(issued: &VouchersIssued) -> Result<(), String> {
    if issued.employer_share_eur + issued.region_share_eur != issued.face_value_eur {
        return Err(format!(
            "the shares EUR {} and EUR {} of batch {} do not add up to its face value EUR {}",
            issued.employer_share_eur,
            issued.region_share_eur,
            issued.batch_id,
            issued.face_value_eur
        ));
    }
    let expected_eur = times(issued.employer_share_eur, issued.quantity);
    if issued.paid_amount_eur != expected_eur {
        return Err(format!(
            "batch {} of {} vouchers was paid EUR {}, not the employer's share EUR {expected_eur}",
            issued.batch_id, issued.quantity, issued.paid_amount_eur
        ));
    }
    Ok(())
}

fn drawn(draws: &[BatchDraw]) -> (u64, Decimal) {
    draws
        .iter()
        .fold((0, Decimal::ZERO), |(count, amount), draw| {
            (
                count + u64::from(draw.quantity),
                amount + times(draw.face_value_eur, draw.quantity),
            )
        })
}

fn redemption(state: &LedgerState, redeemed: &HoursRedeemed) -> Result<(), String> {
    let (vouchers, amount_eur) = drawn(&redeemed.draws);
    if vouchers != u64::from(redeemed.hours) {
        return Err(format!(
            "redemption {} counts {} hours but draws {vouchers} vouchers",
            redeemed.redemption_id, redeemed.hours
        ));
    }
    if amount_eur != redeemed.amount_owed_eur {
        return Err(format!(
            "redemption {} owes EUR {}, but its vouchers at their face value make EUR {amount_eur}",
            redeemed.redemption_id, redeemed.amount_owed_eur
        ));
    }
    let company = state
        .companies
        .get(&redeemed.enterprise_number)
        .ok_or_else(|| {
            format!(
                "redemption {} draws from company {}, which holds no voucher",
                redeemed.redemption_id, redeemed.enterprise_number
            )
        })?;
    for draw in &redeemed.draws {
        let batch = company.batches.get(&draw.batch_id).ok_or_else(|| {
            format!(
                "redemption {} draws from batch {}, which company {} does not hold",
                redeemed.redemption_id, draw.batch_id, redeemed.enterprise_number
            )
        })?;
        if batch.remaining < draw.quantity {
            return Err(format!(
                "redemption {} draws {} vouchers from batch {}, which holds {}",
                redeemed.redemption_id, draw.quantity, draw.batch_id, batch.remaining
            ));
        }
        if batch.voucher_type != redeemed.voucher_type {
            return Err(format!(
                "redemption {} of {} vouchers draws from batch {} of {} vouchers",
                redeemed.redemption_id,
                redeemed.voucher_type.name(),
                draw.batch_id,
                batch.voucher_type.name()
            ));
        }
        if batch.face_value_eur != draw.face_value_eur {
            return Err(format!(
                "redemption {} values batch {} at EUR {}, issued at EUR {}",
                redeemed.redemption_id, draw.batch_id, draw.face_value_eur, batch.face_value_eur
            ));
        }
    }
    Ok(())
}

fn reversal(state: &LedgerState, reversed: &RedemptionReversed) -> Result<(), String> {
    let redemption = state
        .redemptions
        .get(&reversed.redemption_id)
        .ok_or_else(|| {
            format!(
                "reversal of redemption {}, which is not in the log before it",
                reversed.redemption_id
            )
        })?;
    if redemption.reversed {
        return Err(format!(
            "redemption {} is reversed a second time",
            reversed.redemption_id
        ));
    }
    if reversed.returned != redemption.draws {
        return Err(format!(
            "the reversal of redemption {} gives back other vouchers than the redemption drew",
            reversed.redemption_id
        ));
    }
    if reversed.amount_eur != redemption.amount_eur {
        return Err(format!(
            "the reversal of redemption {} takes back EUR {}, the redemption owed EUR {}",
            reversed.redemption_id, reversed.amount_eur, redemption.amount_eur
        ));
    }
    Ok(())
}
