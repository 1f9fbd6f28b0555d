//! Reports by business date: the projections folded over the log with only the events whose
//! business date is on or before a day (docs/RULES.md §21).
//!
//! Business dates do not follow log order: a filing made in January is about a training in
//! December, a payout is back-dated, an approval takes effect next month. So a report "as of
//! the business date D" is not the projections at some position: it is the fold of the whole
//! log, in log order, skipping every event that does not count yet on D. An event counts on D
//! when the business date the log records for it (the envelope's `business_date`: the event's
//! own date, or for the budget events, which have none, the day they were recorded) is on or
//! before D, **and** what it builds on counts too:
//! - a redemption needs every batch it draws from and, when filed against a code, the code's
//!   order;
//! - a reversal needs its redemption;
//! - an expiry needs its batch; an order needs every batch it earmarks;
//! - a code's cancellation or lapse needs its order.
//!
//! So a filing dated before the order of its code counts from the order's date: the fold never
//! applies an event whose premises it left out, and the projections' own checks hold.
//!
//! What it costs: one pass over the whole log (read, chain check, decode, fold), the events
//! skipped included, whatever D is; no retained snapshot shortens it, since a snapshot at a
//! position may hold events dated after D. This module never touches the writer: it runs on
//! the caller's (blocking) thread through a [`LogReader`].

use std::collections::BTreeSet;

use chrono::NaiveDate;
use ledger_domain::event::HoursRedeemed;
use ledger_domain::{Event, UsageCode};
use ledger_projections::Projections;
use ledger_store::LogReader;
use uuid::Uuid;

use crate::recovery::original_of;
use crate::{decode, StartError};

/// What the fold has counted so far that later events may build on.
#[derive(Debug, Default)]
struct Counted {
    batches: BTreeSet<Uuid>,
    codes: BTreeSet<UsageCode>,
}

impl Counted {
    fn redemption(&self, redemption: &HoursRedeemed, date: NaiveDate) -> bool {
        redemption.training_date <= date
            && redemption
                .draws
                .iter()
                .all(|draw| self.batches.contains(&draw.batch_id))
            && redemption
                .usage_code
                .as_ref()
                .is_none_or(|code| self.codes.contains(code))
    }
}

/// The projections of the events of positions 1 to `last_position` that count on the business
/// date `date` (see the module's documentation). Their `position` is `last_position`: every
/// event up to it was considered. Blocking.
pub fn projections_as_of_business_date(
    reader: &LogReader,
    date: NaiveDate,
    last_position: u64,
) -> Result<Projections, StartError> {
    let mut projections = Projections::default();
    let mut counted = Counted::default();
    for recorded in reader.iter(1, last_position) {
        let recorded = recorded?;
        let position = recorded.position;
        let event =
            decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
        let recorded_date =
            ledger_codec::decode_date("business_date", &recorded.event.business_date)
                .map_err(|source| StartError::Undecodable { position, source })?;
        let counts = recorded_date <= date
            && match &event {
                Event::VouchersIssued(issued) => {
                    counted.batches.insert(issued.batch_id);
                    true
                }
                Event::HoursRedeemed(redemption) => counted.redemption(redemption, date),
                Event::RedemptionReversed(_) => match original_of(reader, position, &event)? {
                    Some(original) if counted.redemption(&original.event, date) => {
                        projections.load_redemption(&original.event);
                        true
                    }
                    _ => false,
                },
                Event::VouchersExpired(expired) => counted.batches.contains(&expired.batch_id),
                Event::UsageCodeOrdered(order) => {
                    let builds_on_counted = order
                        .earmarks
                        .iter()
                        .all(|draw| counted.batches.contains(&draw.batch_id));
                    if builds_on_counted {
                        counted.codes.insert(order.code.clone());
                    }
                    builds_on_counted
                }
                Event::UsageCodeCancelled(cancelled) => counted.codes.contains(&cancelled.code),
                Event::UsageCodeLapsed(lapsed) => counted.codes.contains(&lapsed.code),
                Event::BudgetOpened(_)
                | Event::BudgetAdjusted(_)
                | Event::ProviderApproved(_)
                | Event::ProviderWithdrawn(_)
                | Event::ModuleApproved(_)
                | Event::ModuleWithdrawn(_)
                | Event::CompanyRegistered(_)
                | Event::PayoutRecorded(_) => true,
            };
        if counts {
            projections
                .apply(position, &event)
                .map_err(|source| StartError::Projection { source })?;
        } else {
            // Considered and left out: the next event is still the next position.
            projections.position = position;
        }
    }
    Ok(projections)
}
