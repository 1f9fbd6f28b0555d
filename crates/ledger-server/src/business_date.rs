//! Reports `as_of` a business date (`AsOf.business_date`): the projections of the events whose
//! business date is on or before a day, folded on the caller's blocking thread (see
//! `ledger_engine::business_date` and docs/RULES.md §21). The writer never waits for it.

use chrono::NaiveDate;
use ledger_projections::Projections;
use ledger_store::LogReader;
use tonic::Status;

use crate::status::{server_status, ServerReason};

/// The projections of the events up to `head` that count on `date`. Blocking.
pub(crate) fn projections(
    reader: &LogReader,
    date: NaiveDate,
    head: u64,
) -> Result<Projections, Status> {
    ledger_engine::business_date::projections_as_of_business_date(reader, date, head).map_err(
        |error| {
            tracing::error!(%error, business_date = %date, head, "business-date replay failed");
            server_status(
                ServerReason::ReplayFailed,
                format!("the log cannot be replayed for the business date {date}"),
            )
        },
    )
}
