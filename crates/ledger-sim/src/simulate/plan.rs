//! The plan of a simulated year: which companies register, buy and train, which workers follow
//! which modules for how many hours, when payments, redemptions, reversals and payouts happen.
//!
//! Pure and deterministic: a plan depends only on the year, the seed, the targets and the
//! policy in force, never on a clock, the network or a crate's random-number stream. It is built
//! so that every request it leads to passes the ledger's rules (docs/RULES.md) whatever the
//! order of the requests within one phase of one month, and so that its own totals equal the
//! targets exactly; [`Plan::check`] verifies both without a server.
//!
//! The shape that makes concurrency safe: every payment is received on day 2 to 4 of a month
//! and every training is given from day 5 on, so within a month all the month's payments precede
//! all its trainings; a company's batches of a type are paid in the first month of the trainings
//! they cover; extra redemptions (the ones reversed right after) only draw vouchers that the
//! month's regular redemptions leave free.
//!
//! Every redemption files against a usage code (docs/RULES.md §20): the company orders one per
//! provider, voucher type and month of training, for the hours of that month's trainings with
//! that provider, on the 4th, after the month's payments and before its first training. The
//! code earmarks the vouchers those trainings would have drawn anyway (oldest expiry first,
//! among those paid by the period's first day), so the figures do not change, and the plan is
//! the same for the years before and after the policy's `usage_code_required_from`.
//!
//! Three parts: this file is the model (what a plan holds and adds up to), [`planner`] makes a
//! plan, [`checker`] verifies one against the rules and the targets.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Datelike, NaiveDate};
use ledger_domain::policy::last_day_of_month_after;
use ledger_domain::{LegalForm, SizeClass, Theme, TraineeStatus, VoucherType};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

mod checker;
mod planner;

use super::catalogue::OFFERS;

pub use planner::{plan, plan_after};

/// The scheme's figures of one year that a simulation reproduces exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The regional budget, in cents.
    pub budget_cents: u64,
    /// Companies with at least one redemption, not reversed, of training in the year.
    pub companies_benefiting: u32,
    /// Distinct workers with such a redemption.
    pub workers_trained: u32,
    /// Hours of such redemptions.
    pub hours_trained: u64,
}

impl Targets {
    /// The published figures of 2024 (docs/RULES.md §1).
    pub const PUBLISHED_2024: Targets = Targets {
        budget_cents: 765_700_000,
        companies_benefiting: 9_539,
        workers_trained: 27_860,
        hours_trained: 496_063,
    };

    /// The targets divided by `scale`: counts rounded down, the budget rounded to the cent
    /// (half a cent up).
    pub fn scaled(self, scale: u32) -> Targets {
        let scale = scale.max(1);
        let scale_wide = u64::from(scale);
        Targets {
            budget_cents: (self.budget_cents * 2 + scale_wide) / (2 * scale_wide),
            companies_benefiting: self.companies_benefiting / scale,
            workers_trained: self.workers_trained / scale,
            hours_trained: self.hours_trained / scale_wide,
        }
    }

    pub fn budget_eur(&self) -> Decimal {
        Decimal::from(self.budget_cents) / Decimal::from(100)
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the targets name no company to simulate (scale too large?)")]
    NoCompany,
    #[error("the targets are inconsistent: {0}")]
    InconsistentTargets(&'static str),
    #[error("the budget buys {vouchers_max} vouchers, fewer than the {hours} hours to redeem")]
    BudgetTooSmall { vouchers_max: u64, hours: u64 },
    #[error("the policy's region share {0} is not a positive amount in cents")]
    RegionShare(Decimal),
    #[error("the companies cannot absorb the targets: {0}")]
    Infeasible(&'static str),
    #[error("the plan breaks its own rules (a bug in the planner): {0}")]
    Broken(String),
}

#[derive(Clone, Debug)]
pub struct Provider {
    /// The SPW approval id ("AG-0012").
    pub id: String,
    pub name: String,
    pub approved_from: NaiveDate,
}

#[derive(Clone, Debug)]
pub struct Module {
    pub id: String,
    /// Index in [`Plan::providers`].
    pub provider: usize,
    pub title: String,
    pub hours_max: u32,
    pub accepted_voucher_types: Vec<VoucherType>,
    /// The first is the module's main theme.
    pub themes: Vec<Theme>,
    pub approved_from: NaiveDate,
}

/// How far a company goes in the year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participation {
    /// Buys vouchers and has training paid with them.
    Benefiting,
    /// Buys vouchers and uses none of them in the year.
    HoldsOnly,
    /// Registers and never orders.
    RegisteredOnly,
}

#[derive(Clone, Debug)]
pub struct Company {
    /// Plain form, ten digits.
    pub enterprise_number: String,
    pub name: String,
    pub legal_form: LegalForm,
    pub fte: Decimal,
    pub turnover_eur: Decimal,
    pub balance_sheet_total_eur: Decimal,
    pub secondary_activity_months: u32,
    pub nace_sector: &'static str,
    pub favoured_theme: Theme,
    pub size_class: SizeClass,
    pub registered_on: NaiveDate,
    pub participation: Participation,
}

/// A worker trained in the year. Its national register number is synthetic but valid; it is
/// still kept out of every message and of `Debug`, like a real one.
#[derive(Clone)]
pub struct Worker {
    /// Index in [`Plan::companies`].
    pub company: usize,
    pub national_number: String,
    pub trainee_status: TraineeStatus,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("company", &self.company)
            .field("trainee_status", &self.trainee_status)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct Issuance {
    pub company: usize,
    pub voucher_type: VoucherType,
    pub quantity: u32,
    pub payment_date: NaiveDate,
    /// A Belgian structured communication, "+++123/4567/89012+++".
    pub payment_reference: String,
}

#[derive(Clone, Debug)]
pub struct Redemption {
    pub provider: usize,
    pub module: usize,
    pub company: usize,
    pub worker: usize,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub training_date: NaiveDate,
    /// Set for the extra redemptions reversed right after they are recorded.
    pub reversal: Option<Reversal>,
}

/// A usage code ordered by a company for one provider and one voucher type, for the trainings
/// of one month: the hours of every redemption that files against it (the reversed ones too:
/// a reversal gives its vouchers back to the wallet, not to the code).
#[derive(Clone, Debug)]
pub struct UsageCodeOrder {
    pub company: usize,
    pub provider: usize,
    pub voucher_type: VoucherType,
    pub hours: u32,
    /// The first and last training day of its redemptions.
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
    /// For the month's extra redemptions (reversed right after), which a code of their own
    /// keeps off the vouchers of the regular ones.
    pub extra: bool,
}

impl UsageCodeOrder {
    /// The day the company orders it: the 4th of its month, after the month's payments (days
    /// 2 to 4) and before its trainings (from the 5th).
    pub fn ordered_on(&self) -> NaiveDate {
        ymd(
            self.period_from.year(),
            self.period_from.month(),
            PAYMENT_DAY_LAST,
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Reversal {
    pub reversed_on: NaiveDate,
    pub reason: &'static str,
}

#[derive(Clone, Debug)]
pub struct Payout {
    pub provider: usize,
    pub amount_eur: Decimal,
    pub payout_date: NaiveDate,
    pub payout_reference: String,
}

/// Everything a simulated year does, in the order the driver sends it month by month.
#[derive(Clone, Debug)]
pub struct Plan {
    pub year: i32,
    pub seed: u64,
    pub targets: Targets,
    pub face_value_eur: Decimal,
    pub employer_share_eur: Decimal,
    pub region_share_eur: Decimal,
    pub providers: Vec<Provider>,
    pub modules: Vec<Module>,
    pub companies: Vec<Company>,
    pub workers: Vec<Worker>,
    pub issuances: Vec<Issuance>,
    pub redemptions: Vec<Redemption>,
    pub payouts: Vec<Payout>,
    /// The expiry run after the year: every batch valid until a day before it expires.
    pub expire_as_of: NaiveDate,
    /// The last day of validity of each issuance, as the policy sets it.
    pub valid_until: Vec<NaiveDate>,
    /// The usage codes the companies order, by company, provider, voucher type and month.
    pub usage_codes: Vec<UsageCodeOrder>,
    /// The code each redemption files against, an index in `usage_codes`, parallel to
    /// `redemptions`.
    pub redemption_codes: Vec<usize>,
}

/// What the plan adds up to, computed from the plan alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub companies_registered: u32,
    pub companies_holding_vouchers: u32,
    pub companies_benefiting: u32,
    pub workers_trained: u32,
    pub hours_trained: u64,
    pub vouchers_issued: u64,
    /// Vouchers left in batches whose validity ends before the expiry run.
    pub vouchers_expiring: u64,
    pub redemptions: u64,
    pub reversals: u64,
    pub payouts: u64,
    /// AI modules approved at the end of the year, and of them those approved before it.
    pub ai_modules: u32,
    pub ai_modules_before_year: u32,
}

/// Most providers: the scheme had 259 active approved providers (2016, docs/RULES.md §1).
const PROVIDERS_MAX: u32 = 259;
/// Fewest providers, so that every theme of [`OFFERS`] has a provider at any scale.
const PROVIDERS_MIN: u32 = OFFERS.len() as u32;
/// Most hours one worker trains in the year: about two months of full-time training, the
/// length of the longest language paths.
const WORKER_HOURS_MAX: u32 = 300;
/// Growth of the AI-related course offer over the year, in percent (docs/RULES.md §1).
const AI_OFFER_GROWTH_PERCENT: u32 = 85;
/// Share of the other modules first approved during the year, per mille.
const OTHER_MODULES_NEW_PER_MILLE: u32 = 60;
/// Companies registered but never ordering, per thousand benefiting companies.
const REGISTERED_ONLY_PER_MILLE: u32 = 80;
/// Companies buying vouchers they do not use in the year, per thousand benefiting companies.
const HOLDS_ONLY_PER_MILLE: u32 = 20;
/// Extra redemptions reversed right after, per thousand regular redemptions.
const REVERSED_PER_MILLE: u32 = 4;
/// Payments are received on days 2 to 4 of a month and training is given from day 5 on.
pub const PAYMENT_DAY_LAST: u32 = 4;
const TRAINING_DAY_FIRST: u32 = 5;

/// What the earlier simulated years of one ledger leave to the plan of the next year.
///
/// The catalogue is approved once, in the first year, and reused as it is: the ledger refuses a
/// second approval of a provider or module over the same period, and a module's hours per
/// worker count over its whole life. Companies and workers are new each year (never a number
/// planned in an earlier year): a company holding last year's vouchers would draw them first
/// (oldest expiry first), moving its spend to last year's budget, and a year's figures could
/// then no longer be checked against its own plan.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The providers and modules of the first year, approved on the ledger.
    catalogue: Option<(Vec<Provider>, Vec<Module>)>,
    enterprise_bodies: HashSet<u32>,
    national_bodies: HashSet<u64>,
}

impl History {
    /// Adds `plan`, driven on the ledger, to what the next years must respect.
    pub fn record(&mut self, plan: &Plan) {
        if self.catalogue.is_none() {
            self.catalogue = Some((plan.providers.clone(), plan.modules.clone()));
        }
        // The planner writes these numbers as their digits then two check digits.
        self.enterprise_bodies.extend(
            plan.companies
                .iter()
                .filter_map(|company| company.enterprise_number.get(..8)?.parse::<u32>().ok()),
        );
        self.national_bodies.extend(
            plan.workers
                .iter()
                .filter_map(|worker| worker.national_number.get(..9)?.parse::<u64>().ok()),
        );
    }

    /// Whether a catalogue has been approved already (its requests must not be sent again).
    pub fn has_catalogue(&self) -> bool {
        self.catalogue.is_some()
    }
}

fn count_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A date of a month of a supported year; the planner only asks for days it checked exist.
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

fn first_of(year: i32, month: u32) -> NaiveDate {
    ymd(year, month, 1)
}

fn last_of(year: i32, month: u32) -> NaiveDate {
    last_day_of_month_after(first_of(year, month), 0)
}

impl Plan {
    /// What the plan adds up to.
    pub fn totals(&self) -> Totals {
        let trained: Vec<&Redemption> = self
            .redemptions
            .iter()
            .filter(|redemption| {
                redemption.reversal.is_none() && redemption.training_date.year() == self.year
            })
            .collect();
        let companies: BTreeSet<usize> = trained.iter().map(|r| r.company).collect();
        let workers: BTreeSet<&str> = trained
            .iter()
            .map(|r| self.workers[r.worker].national_number.as_str())
            .collect();
        let holding: BTreeSet<usize> = self.issuances.iter().map(|i| i.company).collect();
        let ai_modules: Vec<&Module> = self
            .modules
            .iter()
            .filter(|module| module.themes.contains(&Theme::Ai))
            .collect();
        Totals {
            companies_registered: count_u32(self.companies.len()),
            companies_holding_vouchers: count_u32(holding.len()),
            companies_benefiting: count_u32(companies.len()),
            workers_trained: count_u32(workers.len()),
            hours_trained: trained.iter().map(|r| u64::from(r.hours)).sum(),
            vouchers_issued: self.issuances.iter().map(|i| u64::from(i.quantity)).sum(),
            vouchers_expiring: self.vouchers_expiring(),
            redemptions: self.redemptions.len() as u64,
            reversals: self
                .redemptions
                .iter()
                .filter(|r| r.reversal.is_some())
                .count() as u64,
            payouts: self.payouts.len() as u64,
            ai_modules: count_u32(ai_modules.len()),
            ai_modules_before_year: count_u32(
                ai_modules
                    .iter()
                    .filter(|module| module.approved_from.year() < self.year)
                    .count(),
            ),
        }
    }

    /// Vouchers the expiry run will expire. A company's batches of a type are drawn oldest
    /// expiry first, and each batch paid earlier is usable whenever a later one is, so whatever
    /// the order of the trainings the vouchers left at the end are the last ones of that order.
    fn vouchers_expiring(&self) -> u64 {
        let mut batches: BTreeMap<(usize, VoucherType), Vec<usize>> = BTreeMap::new();
        for (index, issuance) in self.issuances.iter().enumerate() {
            batches
                .entry((issuance.company, issuance.voucher_type))
                .or_default()
                .push(index);
        }
        let mut used: BTreeMap<(usize, VoucherType), u64> = BTreeMap::new();
        for redemption in self.redemptions.iter().filter(|r| r.reversal.is_none()) {
            *used
                .entry((redemption.company, redemption.voucher_type))
                .or_default() += u64::from(redemption.hours);
        }
        let mut expiring = 0;
        for (key, mut indexes) in batches {
            indexes.sort_by_key(|index| {
                (
                    self.valid_until[*index],
                    self.issuances[*index].payment_date,
                )
            });
            let mut to_draw = used.get(&key).copied().unwrap_or(0);
            for index in indexes {
                let quantity = u64::from(self.issuances[index].quantity);
                let drawn = quantity.min(to_draw);
                to_draw -= drawn;
                if self.valid_until[index] < self.expire_as_of {
                    expiring += quantity - drawn;
                }
            }
        }
        expiring
    }

    /// A digest of the whole plan, to compare plans without printing them.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("{self:?}").as_bytes());
        for worker in &self.workers {
            hasher.update(worker.national_number.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests;
