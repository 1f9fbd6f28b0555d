//! A year's summary on its own: the budgets and the figures of one year that a year summary
//! reports (companies registered, holding, benefiting; workers trained; hours; vouchers issued),
//! and nothing else of the projections.
//!
//! Why: a year summary `as_of` a past position must not load and replay every projection
//! (wallets, statements, positions of every redemption: tens of megabytes after ten years).
//! The engine keeps, every few thousand positions, the budgets and the summary figures of the
//! years that moved (`ledger_engine::year_points`); a summary as of a position then starts from
//! the nearest of those and folds the events after it into a [`YearSummaryFold`], which needs
//! nothing but the events (and, for a reversal, the redemption it takes back).
//!
//! One place computes each figure: [`fold_budgets`] and [`fold_year_summary`] are what
//! [`crate::Projections::apply`] folds the same figures with, and [`summary_year`] says which
//! year's summary an event moves, for the fold and for the engine's record of which years
//! changed alike.

use imbl::OrdMap;

use chrono::Datelike;
use ledger_domain::event::HoursRedeemed;
use ledger_domain::{EnterpriseNumber, Event, WorkerPseudonym};
use rust_decimal::Decimal;

use crate::{adjust, bump, update_entry, BudgetFigures, ProjectionError, YearFigures};

/// What a redemption counts in the summary of its year (the year of its training), and what
/// its reversal takes back.
#[derive(Clone, Copy, Debug)]
pub struct Trainee<'a> {
    pub year: i32,
    pub enterprise_number: &'a EnterpriseNumber,
    pub worker: &'a WorkerPseudonym,
    pub hours: u32,
}

impl<'a> Trainee<'a> {
    pub fn of(redemption: &'a HoursRedeemed) -> Trainee<'a> {
        Trainee {
            year: redemption.training_date.year(),
            enterprise_number: &redemption.enterprise_number,
            worker: &redemption.worker,
            hours: redemption.hours,
        }
    }
}

/// The year whose summary figures `event` moves, if any (at most one); `reversed` is the
/// redemption a reversal takes back (its training's year is the one that moves). Budgets are
/// not counted here: every summary carries all of them.
pub fn summary_year(event: &Event, reversed: Option<&Trainee<'_>>) -> Option<i32> {
    match event {
        Event::CompanyRegistered(e) => Some(e.year),
        Event::VouchersIssued(e) => Some(e.budget_year),
        Event::HoursRedeemed(e) => Some(e.training_date.year()),
        Event::RedemptionReversed(_) => reversed.map(|trainee| trainee.year),
        _ => None,
    }
}

impl YearFigures {
    /// A company registered for the year.
    pub fn register(&mut self, enterprise_number: &EnterpriseNumber) {
        if !self.registered.contains(enterprise_number) {
            self.registered.insert(enterprise_number.clone());
        }
    }

    /// Vouchers paid in the year issued to a company.
    pub fn hold(&mut self, enterprise_number: &EnterpriseNumber, quantity: u32) {
        if !self.holding.contains(enterprise_number) {
            self.holding.insert(enterprise_number.clone());
        }
        self.vouchers_issued += u64::from(quantity);
    }

    /// A redemption of training in the year (or, `add` false, its reversal): who benefited and
    /// the year's hours.
    pub fn count_trainee(&mut self, trainee: &Trainee<'_>, add: bool) {
        bump(&mut self.benefiting, trainee.enterprise_number, add);
        bump(&mut self.workers, trainee.worker, add);
        adjust(&mut self.hours.total, u64::from(trainee.hours), add);
    }
}

/// Folds what `event` changes of the budgets: the one place the reports' budget figures are
/// computed, with [`BudgetFigures`]' own methods, which the decision state uses too.
pub fn fold_budgets(budgets: &mut OrdMap<i32, BudgetFigures>, event: &Event) {
    let mut budget = |year: i32, change: &dyn Fn(&mut BudgetFigures)| {
        update_entry(budgets, &year, change);
    };
    match event {
        Event::BudgetOpened(e) => budget(e.year, &|b| b.allocated_eur = e.allocated_eur),
        Event::BudgetAdjusted(e) => budget(e.year, &|b| b.allocated_eur = e.allocated_eur),
        Event::VouchersIssued(e) => budget(e.budget_year, &|b| {
            b.commit(e.region_share_eur * Decimal::from(e.quantity))
        }),
        Event::HoursRedeemed(e) => {
            for draw in &e.draws {
                budget(draw.budget_year, &|b| b.spend(draw.region_eur()));
            }
        }
        Event::RedemptionReversed(e) => {
            for draw in &e.returned {
                budget(draw.budget_year, &|b| b.unspend(draw.region_eur()));
            }
        }
        Event::VouchersExpired(e) => {
            budget(e.budget_year, &|b| b.release(e.region_share_released_eur))
        }
        _ => {}
    }
}

/// Folds what `event` changes of the year summaries' figures (registered, holding, vouchers
/// issued, benefiting, workers, hours) into `figures`, those of the year [`summary_year`]
/// names. `reversed`: the redemption a reversal takes back.
pub fn fold_year_summary(figures: &mut YearFigures, event: &Event, reversed: Option<&Trainee<'_>>) {
    match event {
        Event::CompanyRegistered(e) => figures.register(&e.enterprise_number),
        Event::VouchersIssued(e) => figures.hold(&e.enterprise_number, e.quantity),
        Event::HoursRedeemed(e) => figures.count_trainee(&Trainee::of(e), true),
        Event::RedemptionReversed(_) => {
            if let Some(trainee) = reversed {
                figures.count_trainee(trainee, false);
            }
        }
        _ => {}
    }
}

/// The budgets and one year's summary figures, as of `position`: what a year summary reports,
/// folded without the other projections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YearSummaryFold {
    pub position: u64,
    pub year: i32,
    pub budgets: OrdMap<i32, BudgetFigures>,
    /// Only the summary's figures are filled: the hours' breakdowns stay empty.
    pub figures: YearFigures,
}

impl YearSummaryFold {
    /// Folds the event at `position`, which must be the next one; `reversed` is the redemption
    /// a reversal takes back, read from the log.
    pub fn apply(
        &mut self,
        position: u64,
        event: &Event,
        reversed: Option<&HoursRedeemed>,
    ) -> Result<(), ProjectionError> {
        if position != self.position + 1 {
            return Err(ProjectionError {
                position,
                what: "position is not the next one",
            });
        }
        if matches!(event, Event::RedemptionReversed(_)) && reversed.is_none() {
            return Err(ProjectionError {
                position,
                what: "unknown redemption",
            });
        }
        fold_budgets(&mut self.budgets, event);
        let reversed = reversed.map(Trainee::of);
        if summary_year(event, reversed.as_ref()) == Some(self.year) {
            fold_year_summary(&mut self.figures, event, reversed.as_ref());
        }
        self.position = position;
        Ok(())
    }
}

impl YearFigures {
    /// The summary's figures only, copied (what a year summary folds from a year point).
    pub fn summary_only(&self) -> YearFigures {
        let mut figures = YearFigures {
            registered: self.registered.clone(),
            holding: self.holding.clone(),
            benefiting: self.benefiting.clone(),
            workers: self.workers.clone(),
            vouchers_issued: self.vouchers_issued,
            ..YearFigures::default()
        };
        figures.hours.total = self.hours.total;
        figures
    }
}
