//! The read models of the ledger, folded from its events one position at a time.
//!
//! [`Projections`] holds every report of docs/RULES.md §16 (regional budgets; companies per year by size
//! class and sector; distinct workers trained; training hours by voucher type, provider, module
//! theme and sector; wallets; provider statements; the trial balance) and the position of the
//! last event folded in. Folding is pure and deterministic: ordered maps only, so the same
//! events always give the same value and the same bytes ([`Projections::to_bytes`]), which is
//! what lets a rebuild from position 1 be compared byte for byte with a checkpoint.
//!
//! This crate reads no log and writes no checkpoint: the engine feeds it events and stores its
//! bytes. It never sees a national register number, only pseudonyms.

use std::collections::{BTreeMap, BTreeSet};

use imbl::{OrdMap, OrdSet};
use std::fmt;

pub mod usage_codes;
pub use usage_codes::{CodeStatus, CodeView, UsageCodes};

use chrono::{Datelike, NaiveDate};
use ledger_domain::event::HoursRedeemed;
use ledger_domain::small_map::SmallMap;
use ledger_domain::{
    EnterpriseNumber, Event, Identifier, SizeClass, Theme, VoucherType, WorkerPseudonym,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod queries;
pub use queries::ProviderRecords;

pub mod year_summary;
pub use year_summary::{summary_year, Trainee, YearSummaryFold};

pub mod year_reports;
pub use year_reports::YearReportFold;

/// The Region's budget of one year: the decision state's own figures (`ledger_domain::state::Budget`),
/// folded by the same methods, so that the rules and the reports cannot disagree.
pub use ledger_domain::state::Budget as BudgetFigures;

/// Training hours of a year, whole and broken down. A module may have several themes: its hours
/// count once under each, so the themes may add up to more than the total.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursBreakdown {
    pub total: u64,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub by_voucher_type: OrdMap<VoucherType, u64>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub by_provider: OrdMap<Identifier, u64>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub by_theme: OrdMap<Theme, u64>,
    /// By NACE division (the first two digits of the company's sector code).
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub by_sector: OrdMap<String, u64>,
}

/// The figures of one calendar year.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearFigures {
    /// Companies registered for the year.
    #[serde(deserialize_with = "ledger_domain::dense::ord_set")]
    pub registered: OrdSet<EnterpriseNumber>,
    /// Companies issued vouchers paid in the year.
    #[serde(deserialize_with = "ledger_domain::dense::ord_set")]
    pub holding: OrdSet<EnterpriseNumber>,
    /// Companies with redemptions (not reversed) of training in the year, with their count.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub benefiting: OrdMap<EnterpriseNumber, u32>,
    /// Workers with redemptions (not reversed) of training in the year, with their count.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub workers: OrdMap<WorkerPseudonym, u32>,
    /// Vouchers paid in the year.
    pub vouchers_issued: u64,
    pub hours: HoursBreakdown,
    /// Hours (not reversed) of each company in the year: what moves to another sector of
    /// `hours.by_sector` when a later registration changes the company's profile for the year.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub hours_by_company: OrdMap<EnterpriseNumber, u64>,
}

/// What a company declared when it registered for a year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyProfile {
    pub name: String,
    pub size_class: SizeClass,
    /// NACE division, the first two digits of the sector code.
    pub sector: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBatch {
    pub voucher_type: VoucherType,
    pub quantity: u32,
    pub remaining: u32,
    /// Of `remaining`, the vouchers earmarked for open usage codes: reserved, shown apart.
    pub earmarked: u32,
    pub payment_date: NaiveDate,
    pub valid_until: NaiveDate,
    pub budget_year: i32,
}

/// A company's batches: a handful each, so a [`SmallMap`] (see `ledger_domain::small_map`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub batches: SmallMap<Uuid, WalletBatch>,
}

impl Wallet {
    pub fn balance(&self, voucher_type: VoucherType) -> u32 {
        self.batches
            .values()
            .filter(|batch| batch.voucher_type == voucher_type)
            .map(|batch| batch.remaining)
            .sum()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub name: String,
    /// Hours redeemed and not reversed.
    pub redeemed_hours: u64,
    /// Owed and not yet paid.
    pub owed_eur: Decimal,
    pub paid_eur: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModuleProfile {
    themes: Vec<Theme>,
}

/// Every company's registrations, by year: what [`profile_in`] reads a company's profile in.
pub type Registrations = OrdMap<EnterpriseNumber, SmallMap<i32, CompanyProfile>>;

/// The themes of each approved module, by module id.
pub(crate) type Modules = OrdMap<Identifier, ModuleProfile>;

/// What a reversal must take back out of the year figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RedemptionFacts {
    year: i32,
    enterprise_number: EnterpriseNumber,
    worker: WorkerPseudonym,
    provider_id: Identifier,
    voucher_type: VoucherType,
    themes: Vec<Theme>,
    sector: String,
    hours: u32,
}

/// What [`count_redemption_in`] counts of a redemption, borrowed: from a [`RedemptionFacts`]
/// or straight from the event and the projections.
pub(crate) struct Counted<'a> {
    enterprise_number: &'a EnterpriseNumber,
    provider_id: &'a Identifier,
    voucher_type: VoucherType,
    themes: &'a [Theme],
    sector: &'a str,
    hours: u32,
}

impl RedemptionFacts {
    pub(crate) fn counted(&self) -> Counted<'_> {
        Counted {
            enterprise_number: &self.enterprise_number,
            provider_id: &self.provider_id,
            voucher_type: self.voucher_type,
            themes: &self.themes,
            sector: &self.sector,
            hours: self.hours,
        }
    }

    pub(crate) fn trainee(&self) -> Trainee<'_> {
        Trainee {
            year: self.year,
            enterprise_number: &self.enterprise_number,
            worker: &self.worker,
            hours: self.hours,
        }
    }
}

/// Counts of companies, for one size class or one sector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompanyCounts {
    pub registered: u32,
    pub holding: u32,
    pub benefiting: u32,
}

/// Companies of a year, whole and broken down by size class and by sector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompaniesReport {
    pub total: CompanyCounts,
    pub by_size_class: BTreeMap<SizeClass, CompanyCounts>,
    pub by_sector: BTreeMap<String, CompanyCounts>,
}

/// An event that does not fit the projections: only a log not written by the engine causes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionError {
    pub position: u64,
    pub what: &'static str,
}

impl std::fmt::Display for ProjectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event at position {} does not fit the projections: {}",
            self.position, self.what
        )
    }
}

impl std::error::Error for ProjectionError {}

/// Every read model, and the log position it reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projections {
    /// Every event up to this position is folded in, and none after it.
    pub position: u64,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub budgets: OrdMap<i32, BudgetFigures>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub years: OrdMap<i32, YearFigures>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub wallets: OrdMap<EnterpriseNumber, Wallet>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub statements: OrdMap<Identifier, Statement>,
    /// Each account's debits minus its credits, by account name; sums to zero.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub trial_balance: OrdMap<String, Decimal>,
    /// Registrations, per company and year (one or two years each: a [`SmallMap`]).
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub companies: Registrations,
    modules: Modules,
    /// Where each provider's redemptions, reversals and payouts are in the log (see
    /// [`queries`]).
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub provider_records: OrdMap<Identifier, ProviderRecords>,
    /// Usage codes: each code, the codes of each company, the hours reserved per company.
    pub usage_codes: UsageCodes,
    /// Where each company's redemptions and their reversals are in the log, increasing: its
    /// statement of redemptions, listed page by page (see [`queries`]).
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub company_redemptions: OrdMap<EnterpriseNumber, Vec<u64>>,
    /// Only a redemption loaded for its reversal, between [`Projections::load_redemption`] and
    /// the reversal's [`Projections::apply`]: empty otherwise.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    redemptions: OrdMap<Uuid, RedemptionFacts>,
}

/// NACE division of a sector code: "62.01" → "62".
fn division(nace_sector: &str) -> String {
    nace_sector.chars().take(2).collect()
}

impl Projections {
    /// The deterministic encoding of the projections (postcard over ordered maps).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Projections> {
        postcard::from_bytes(bytes).ok()
    }

    /// Sum of the trial balance; zero after every event.
    pub fn trial_balance_total_eur(&self) -> Decimal {
        self.trial_balance.values().copied().sum()
    }

    /// Folds the event at `position`, which must be the next one.
    pub fn apply(&mut self, position: u64, event: &Event) -> Result<(), ProjectionError> {
        let fail = |what: &'static str| ProjectionError { position, what };
        if position != self.position + 1 {
            return Err(fail("position is not the next one"));
        }
        // What a reversal takes back out of its year, from the redemption loaded for it.
        let reversed = match event {
            Event::RedemptionReversed(e) => Some(
                self.redemptions
                    .get(&e.redemption_id)
                    .ok_or(fail("unknown redemption"))?
                    .trainee(),
            ),
            _ => None,
        };
        // The budgets and the year summaries' figures, folded by the same functions as a
        // year's partition (`year_summary`), so that the two cannot disagree.
        year_summary::fold_budgets(&mut self.budgets, event);
        if let Some(year) = summary_year(event, reversed.as_ref()) {
            let figures = self.years.entry(year).or_default();
            year_summary::fold_year_summary(figures, event, reversed.as_ref());
        }
        match event {
            Event::BudgetOpened(_) | Event::BudgetAdjusted(_) => {}
            Event::ProviderApproved(e) => {
                self.statements
                    .entry(e.provider_id.clone())
                    .or_default()
                    .name = e.name.clone();
            }
            Event::ProviderWithdrawn(_) | Event::ModuleWithdrawn(_) => {}
            Event::ModuleApproved(e) => {
                self.modules.insert(
                    e.module_id.clone(),
                    ModuleProfile {
                        themes: e.themes.clone(),
                    },
                );
            }
            Event::CompanyRegistered(e) => {
                let sectors_before = self.sectors_with_hours(&e.enterprise_number);
                self.companies
                    .entry(e.enterprise_number.clone())
                    .or_default()
                    .insert(
                        e.year,
                        CompanyProfile {
                            name: e.name.clone(),
                            size_class: e.size_class,
                            sector: division(&e.nace_sector),
                        },
                    );
                self.move_hours_to_profile(&e.enterprise_number, sectors_before);
            }
            Event::VouchersIssued(e) => {
                self.wallets
                    .entry(e.enterprise_number.clone())
                    .or_default()
                    .batches
                    .insert(
                        e.batch_id,
                        WalletBatch {
                            voucher_type: e.voucher_type,
                            quantity: e.quantity,
                            remaining: e.quantity,
                            earmarked: 0,
                            payment_date: e.payment_date,
                            valid_until: e.valid_until,
                            budget_year: e.budget_year,
                        },
                    );
            }
            Event::HoursRedeemed(e) => {
                let wallet = self
                    .wallets
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown wallet"))?;
                for draw in &e.draws {
                    let batch = wallet
                        .batches
                        .get_mut(&draw.batch_id)
                        .ok_or(fail("unknown batch"))?;
                    batch.remaining = batch
                        .remaining
                        .checked_sub(draw.quantity)
                        .ok_or(fail("batch overdrawn"))?;
                    if e.usage_code.is_some() {
                        batch.earmarked = batch
                            .earmarked
                            .checked_sub(draw.quantity)
                            .ok_or(fail("batch earmark overdrawn"))?;
                    }
                }
                if let Some(code) = &e.usage_code {
                    self.usage_codes.filed(e, code).map_err(fail)?;
                }
                update_entry(&mut self.statements, &e.provider_id, |statement| {
                    statement.redeemed_hours += u64::from(e.hours);
                    statement.owed_eur += e.amount_owed_eur;
                });
                // Borrowed, not a `RedemptionFacts`: four copies (strings and the themes) per
                // redemption were a tenth of a rebuild's projections' fold.
                let year = e.training_date.year();
                let counted = Counted {
                    enterprise_number: &e.enterprise_number,
                    provider_id: &e.provider_id,
                    voucher_type: e.voucher_type,
                    themes: self
                        .modules
                        .get(&e.module_id)
                        .map_or(&[][..], |module| module.themes.as_slice()),
                    sector: profile_in(&self.companies, &e.enterprise_number, year)
                        .map_or("", |profile| profile.sector.as_str()),
                    hours: e.hours,
                };
                count_redemption_in(self.years.entry(year).or_default(), &counted, true);
                update_entry(&mut self.provider_records, &e.provider_id, |records| {
                    records.redemptions.push(position)
                });
                update_entry(
                    &mut self.company_redemptions,
                    &e.enterprise_number,
                    |positions| positions.push(position),
                );
            }
            Event::RedemptionReversed(e) => {
                let wallet = self
                    .wallets
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown wallet"))?;
                for draw in &e.returned {
                    let batch = wallet
                        .batches
                        .get_mut(&draw.batch_id)
                        .ok_or(fail("unknown batch"))?;
                    batch.remaining += draw.quantity;
                }
                let facts = self
                    .redemptions
                    .remove(&e.redemption_id)
                    .ok_or(fail("unknown redemption"))?;
                update_entry(&mut self.statements, &e.provider_id, |statement| {
                    statement.redeemed_hours = statement
                        .redeemed_hours
                        .saturating_sub(u64::from(facts.hours));
                    statement.owed_eur -= e.amount_eur;
                });
                count_redemption_in(
                    self.years.entry(facts.year).or_default(),
                    &facts.counted(),
                    false,
                );
                update_entry(&mut self.provider_records, &e.provider_id, |records| {
                    records.redemptions.push(position)
                });
                update_entry(
                    &mut self.company_redemptions,
                    &e.enterprise_number,
                    |positions| positions.push(position),
                );
            }
            Event::VouchersExpired(e) => {
                let wallet = self
                    .wallets
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown wallet"))?;
                let batch = wallet
                    .batches
                    .get_mut(&e.batch_id)
                    .ok_or(fail("unknown batch"))?;
                batch.remaining = batch
                    .remaining
                    .checked_sub(e.quantity)
                    .ok_or(fail("batch overdrawn"))?;
            }
            Event::PayoutRecorded(e) => {
                update_entry(&mut self.statements, &e.provider_id, |statement| {
                    statement.owed_eur -= e.amount_eur;
                    statement.paid_eur += e.amount_eur;
                });
                update_entry(&mut self.provider_records, &e.provider_id, |records| {
                    records.payouts.push(position)
                });
            }
            Event::UsageCodeOrdered(e) => {
                self.earmark(&e.enterprise_number, &e.earmarks, true)
                    .map_err(fail)?;
                self.usage_codes.ordered(e);
            }
            Event::UsageCodeCancelled(e) => {
                self.earmark(&e.enterprise_number, &e.returned, false)
                    .map_err(fail)?;
                self.usage_codes
                    .closed(&e.code, &e.returned, e.cancelled_on, CodeStatus::Cancelled)
                    .map_err(fail)?;
            }
            Event::UsageCodeLapsed(e) => {
                self.earmark(&e.enterprise_number, &e.returned, false)
                    .map_err(fail)?;
                self.usage_codes
                    .closed(&e.code, &e.returned, e.lapsed_on, CodeStatus::Lapsed)
                    .map_err(fail)?;
            }
        }
        for posting in event.postings() {
            let amount = posting.signed_amount_eur();
            // The account's name is written on the stack: a `String` per posting was one of
            // the rebuild's largest allocation sources. Only a new account allocates its key.
            let mut name = AccountName::default();
            match fmt::Write::write_fmt(&mut name, format_args!("{}", posting.account))
                .ok()
                .and_then(|()| name.as_str())
            {
                Some(name) => {
                    update_entry(&mut self.trial_balance, name, |balance| *balance += amount)
                }
                None => {
                    *self
                        .trial_balance
                        .entry(posting.account.to_string())
                        .or_default() += amount
                }
            }
        }
        self.position = position;
        Ok(())
    }

    /// Marks vouchers of a wallet's batches as earmarked for a code, or (`add` false) frees
    /// them again.
    fn earmark(
        &mut self,
        enterprise_number: &EnterpriseNumber,
        draws: &[ledger_domain::event::BatchDraw],
        add: bool,
    ) -> Result<(), &'static str> {
        let wallet = self
            .wallets
            .get_mut(enterprise_number)
            .ok_or("unknown wallet")?;
        for draw in draws {
            let batch = wallet
                .batches
                .get_mut(&draw.batch_id)
                .ok_or("unknown batch")?;
            batch.earmarked = if add {
                batch.earmarked + draw.quantity
            } else {
                batch
                    .earmarked
                    .checked_sub(draw.quantity)
                    .ok_or("batch earmark overdrawn")?
            };
        }
        Ok(())
    }

    /// What the figures counted of a redemption, found again from its event: its module's
    /// themes (fixed when the module is approved) and its company's sector for the training's
    /// year.
    fn redemption_facts(&self, e: &HoursRedeemed) -> RedemptionFacts {
        let sector = self.sector_of(&e.enterprise_number, e.training_date.year());
        redemption_facts_in(sector, &self.modules, e)
    }

    /// Makes a redemption read back from the log known again, right before its reversal is
    /// applied. The projections keep nothing per redemption (they are as many as the log's
    /// events): a reversal finds what to take back out of the figures from the redemption's
    /// own event, which the caller reads from the log.
    pub fn load_redemption(&mut self, e: &HoursRedeemed) {
        let facts = self.redemption_facts(e);
        self.redemptions.insert(e.redemption_id, facts);
    }

    /// The sector of a company in `year`'s figures (see [`Projections::profile_of`]).
    fn sector_of(&self, enterprise_number: &EnterpriseNumber, year: i32) -> String {
        sector_in(&self.companies, enterprise_number, year)
    }

    /// The profile (size class, sector) a company is counted under in `year`'s figures, the one
    /// rule of every report: its registration for `year`, or else its latest earlier one, the
    /// registration its vouchers were paid under (vouchers paid in November are used the next
    /// year, by a company that need not register again); a company only known by a later
    /// registration is counted under its first.
    pub fn profile_of(
        &self,
        enterprise_number: &EnterpriseNumber,
        year: i32,
    ) -> Option<&CompanyProfile> {
        profile_in(&self.companies, enterprise_number, year)
    }

    /// The years in which `company` has hours, with the sector they are counted under and how
    /// many they are.
    fn sectors_with_hours(&self, company: &EnterpriseNumber) -> Vec<(i32, String, u64)> {
        self.years
            .iter()
            .filter_map(|(year, figures)| {
                let hours = *figures.hours_by_company.get(company)?;
                Some((*year, self.sector_of(company, *year), hours))
            })
            .collect()
    }

    /// After a registration: moves the company's hours of each year whose profile it changed
    /// (a registration for the training's year filed after the training, or a first one) to
    /// the new sector, so that the hours report counts them where the companies report counts
    /// the company, by the one rule of [`Projections::profile_of`].
    fn move_hours_to_profile(
        &mut self,
        company: &EnterpriseNumber,
        sectors_before: Vec<(i32, String, u64)>,
    ) {
        for (year, before, hours) in sectors_before {
            let after = self.sector_of(company, year);
            if after == before {
                continue;
            }
            move_hours_in(self.years.entry(year).or_default(), &before, after, hours);
        }
    }

    /// Companies of `year`: registered, holding vouchers paid in the year, benefiting from a
    /// redemption; whole, by size class and by sector (by [`Projections::profile_of`], as the
    /// hours report counts their hours), so that each breakdown sums to the total.
    pub fn companies_report(&self, year: i32) -> CompaniesReport {
        match self.years.get(&year) {
            Some(figures) => companies_report_in(
                |company| profile_in(&self.companies, company, year),
                figures,
            ),
            None => CompaniesReport::default(),
        }
    }
}

/// The profile (size class, sector) a company is counted under in `year`'s figures: see
/// [`Projections::profile_of`], which reads it here, as a year's partition does
/// ([`YearReportFold`]).
pub(crate) fn profile_in<'a>(
    companies: &'a Registrations,
    enterprise_number: &EnterpriseNumber,
    year: i32,
) -> Option<&'a CompanyProfile> {
    companies.get(enterprise_number).and_then(|years| {
        years
            .range(..=year)
            .next_back()
            .or_else(|| years.iter().next())
            .map(|(_, profile)| profile)
    })
}

/// The sector of a company in `year`'s figures (see [`profile_in`]); empty for a company
/// never registered.
pub(crate) fn sector_in(
    companies: &Registrations,
    enterprise_number: &EnterpriseNumber,
    year: i32,
) -> String {
    profile_in(companies, enterprise_number, year)
        .map(|profile| profile.sector.clone())
        .unwrap_or_default()
}

/// What the figures count of a redemption, found from its event: its module's themes (fixed
/// when the module is approved) and `sector`, its company's sector for the training's year.
pub(crate) fn redemption_facts_in(
    sector: String,
    modules: &Modules,
    e: &HoursRedeemed,
) -> RedemptionFacts {
    let year = e.training_date.year();
    RedemptionFacts {
        year,
        enterprise_number: e.enterprise_number.clone(),
        worker: e.worker,
        provider_id: e.provider_id.clone(),
        voucher_type: e.voucher_type,
        themes: modules
            .get(&e.module_id)
            .map(|m| m.themes.clone())
            .unwrap_or_default(),
        sector,
        hours: e.hours,
    }
}

/// Moves `hours` of one company in a year's hours by sector from `before` to `after`: a
/// registration changed the profile it is counted under.
pub(crate) fn move_hours_in(figures: &mut YearFigures, before: &str, after: String, hours: u64) {
    let by_sector = &mut figures.hours.by_sector;
    if let Some(value) = by_sector.get_mut(before) {
        *value = value.saturating_sub(hours);
        if *value == 0 {
            by_sector.remove(before);
        }
    }
    *by_sector.entry(after).or_default() += hours;
}

/// Adds (or, for a reversal, takes back) a redemption in the breakdowns of its year's figures
/// (`year`, the year of `facts`).
pub(crate) fn count_redemption_in(year: &mut YearFigures, facts: &Counted<'_>, add: bool) {
    // Who benefited and the year's total are counted with the year summary's figures
    // (`YearFigures::count_trainee`); here the breakdowns.
    let hours = u64::from(facts.hours);
    let mut none_left = false;
    update_entry(
        &mut year.hours_by_company,
        facts.enterprise_number,
        |hours_of_company| {
            adjust(hours_of_company, hours, add);
            none_left = *hours_of_company == 0;
        },
    );
    if none_left {
        year.hours_by_company.remove(facts.enterprise_number);
    }
    let breakdown = &mut year.hours;
    adjust(
        breakdown
            .by_voucher_type
            .entry(facts.voucher_type)
            .or_default(),
        hours,
        add,
    );
    update_entry(&mut breakdown.by_provider, facts.provider_id, |value| {
        adjust(value, hours, add)
    });
    update_entry(&mut breakdown.by_sector, facts.sector, |value| {
        adjust(value, hours, add)
    });
    for theme in facts.themes {
        adjust(breakdown.by_theme.entry(*theme).or_default(), hours, add);
    }
}

/// The companies report of a year from its figures and `profile_of`, the profile each company
/// is counted under in that year (see [`profile_in`]): see [`Projections::companies_report`].
pub(crate) fn companies_report_in<'a>(
    profile_of: impl Fn(&EnterpriseNumber) -> Option<&'a CompanyProfile>,
    figures: &YearFigures,
) -> CompaniesReport {
    let mut report = CompaniesReport::default();
    let everyone: BTreeSet<&EnterpriseNumber> = figures
        .registered
        .iter()
        .chain(figures.holding.iter())
        .chain(figures.benefiting.keys())
        .collect();
    for company in everyone {
        let profile = profile_of(company);
        let flags = (
            figures.registered.contains(company),
            figures.holding.contains(company),
            figures.benefiting.contains_key(company),
        );
        let mut counts = vec![&mut report.total];
        let (by_size, by_sector) = (&mut report.by_size_class, &mut report.by_sector);
        if let Some(profile) = profile {
            counts.push(by_size.entry(profile.size_class).or_default());
            counts.push(by_sector.entry(profile.sector.clone()).or_default());
        }
        for count in counts {
            count.registered += u32::from(flags.0);
            count.holding += u32::from(flags.1);
            count.benefiting += u32::from(flags.2);
        }
    }
    report
}

/// Counts one more (or one less) redemption for `key`; a key whose count falls to zero is
/// removed, so that "distinct" is the number of keys.
pub(crate) fn bump<K: Ord + Clone>(counts: &mut OrdMap<K, u32>, key: &K, add: bool) {
    if add {
        update_entry(counts, key, |count| *count += 1);
    } else if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// `f(map.entry(key.to_owned()).or_default())`, but the key is copied only when it is new:
/// most events touch keys already there, and copying them (strings) cost more than the lookup.
/// A closure rather than a returned `&mut V`: the borrow checker cannot yet return the borrow of
/// a successful `get_mut` and insert on the other branch, and a second lookup costs as much as
/// the copy saved.
pub(crate) fn update_entry<K, Q, V>(map: &mut OrdMap<K, V>, key: &Q, f: impl FnOnce(&mut V))
where
    K: Ord + Clone + std::borrow::Borrow<Q>,
    Q: Ord + ToOwned<Owned = K> + ?Sized,
    V: Default + Clone,
{
    if let Some(value) = map.get_mut(key) {
        f(value);
        return;
    }
    let mut value = V::default();
    f(&mut value);
    map.insert(key.to_owned(), value);
}

/// An account's name, written on the stack: the longest, `provider_payable/` and an
/// identifier of `Identifier::BYTES_MAX` bytes, is 81 bytes. Writing a longer one fails and the
/// caller falls back to a `String`.
struct AccountName {
    bytes: [u8; 96],
    length: usize,
}

impl Default for AccountName {
    fn default() -> Self {
        AccountName {
            bytes: [0; 96],
            length: 0,
        }
    }
}

impl AccountName {
    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.length)?).ok()
    }
}

impl fmt::Write for AccountName {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.length + text.len();
        let slot = self.bytes.get_mut(self.length..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.length = end;
        Ok(())
    }
}

pub(crate) fn adjust(value: &mut u64, amount: u64, add: bool) {
    *value = if add {
        *value + amount
    } else {
        value.saturating_sub(amount)
    };
}
