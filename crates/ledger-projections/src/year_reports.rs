//! A year's reports on their own: the budgets, one year's whole figures (the summary's and the
//! hours' breakdowns) and what those figures are broken down by (the profile each company is
//! counted under in the year, every module's themes), and nothing else of the projections: no
//! wallet, no statement, no trial balance, nothing per redemption.
//!
//! Why: the budget, companies and training hours reports `as_of` a past position must not load
//! and replay every projection (issue 12 item 4). The engine keeps these parts at its year
//! points (`ledger_engine::year_points`), each written only when it moved: a year's figures,
//! a year's registrations, the modules. A report as of a position starts from the nearest point
//! and folds the events after it into a [`YearReportFold`], which needs nothing but the events
//! (and, for a reversal, the redemption it takes back).
//!
//! One place computes each figure: the fold calls the functions [`crate::Projections::apply`]
//! folds with ([`crate::year_summary::fold_budgets`], [`crate::year_summary::fold_year_summary`],
//! `count_redemption_in`, `move_hours_in`, `companies_report_in`), a company's profile follows
//! the rule of `profile_in` (`counts_before`), and the engine's tests compare the fold with
//! the full projections at every position.

use std::collections::BTreeMap;

use imbl::OrdMap;

use chrono::Datelike;
use ledger_domain::event::HoursRedeemed;
use ledger_domain::{EnterpriseNumber, Event, SizeClass};
use serde::{Deserialize, Serialize};

use crate::year_summary::{fold_budgets, fold_year_summary};
use crate::{
    companies_report_in, count_redemption_in, move_hours_in, redemption_facts_in, summary_year,
    BudgetFigures, CompaniesReport, CompanyProfile, ModuleProfile, Modules, ProjectionError,
    Projections, YearFigures,
};

/// The budgets, one year's whole figures, the profile each company is counted under in that
/// year and every module's themes, as of `position`: what the budget, companies and hours
/// reports of the year need, folded without the other projections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YearReportFold {
    pub position: u64,
    pub year: i32,
    pub budgets: OrdMap<i32, BudgetFigures>,
    pub figures: YearFigures,
    /// For each company registered for any year, the registration it is counted under in
    /// `year` ([`crate::Projections::profile_of`]'s rule) and the year of that registration.
    /// Its name is left empty: no report of a year reads it, and 105 000 names after ten years
    /// were most of what a report decoded and freed.
    counted: BTreeMap<EnterpriseNumber, (i32, CompanyProfile)>,
    modules: Modules,
}

/// A registration as a year point keeps it, read without copying its name.
#[derive(Deserialize)]
struct RegistrationRef<'a> {
    #[serde(borrow)]
    _name: &'a str,
    size_class: SizeClass,
    #[serde(borrow)]
    sector: &'a str,
}

/// Whether a registration for `registration_year` replaces one for `counted_year` as the
/// profile a company is counted under in `year`: its registration for `year`, or else its
/// latest earlier one, or else (none earlier) its first (see `profile_in`). A registration for
/// the same year replaces the one before, as in the projections' map.
fn counts_before(registration_year: i32, counted_year: i32, year: i32) -> bool {
    match (registration_year <= year, counted_year <= year) {
        _ if registration_year == counted_year => true,
        (true, true) => registration_year > counted_year,
        (true, false) => true,
        (false, true) => false,
        (false, false) => registration_year < counted_year,
    }
}

impl YearReportFold {
    /// The fold from a point's parts: `registrations`, each year's registrations as encoded by
    /// [`Projections::registrations_bytes`]; `modules`, [`Projections::modules_bytes`]'
    /// encoding. `None` for bytes that do not decode.
    pub fn from_parts<'a>(
        position: u64,
        year: i32,
        budgets: OrdMap<i32, BudgetFigures>,
        figures: YearFigures,
        registrations: impl IntoIterator<Item = (i32, &'a [u8])>,
        modules: Option<&[u8]>,
    ) -> Option<YearReportFold> {
        let modules = match modules {
            Some(bytes) => postcard::from_bytes(bytes).ok()?,
            None => Modules::new(),
        };
        let mut fold = YearReportFold {
            position,
            year,
            budgets,
            figures,
            counted: BTreeMap::new(),
            modules,
        };
        for (registration_year, bytes) in registrations {
            let of_year: Vec<(EnterpriseNumber, RegistrationRef<'_>)> =
                postcard::from_bytes(bytes).ok()?;
            for (enterprise_number, registration) in of_year {
                fold.register(
                    enterprise_number,
                    registration_year,
                    registration.size_class,
                    registration.sector,
                );
            }
        }
        Some(fold)
    }

    /// Notes a registration for `registration_year`: the company's counted profile when it
    /// counts before the one known (see [`counts_before`]).
    fn register(
        &mut self,
        enterprise_number: EnterpriseNumber,
        registration_year: i32,
        size_class: SizeClass,
        sector: &str,
    ) {
        let year = self.year;
        let profile = || CompanyProfile {
            name: String::new(),
            size_class,
            sector: sector.to_owned(),
        };
        match self.counted.get_mut(&enterprise_number) {
            Some(counted) => {
                if counts_before(registration_year, counted.0, year) {
                    *counted = (registration_year, profile());
                }
            }
            None => {
                self.counted
                    .insert(enterprise_number, (registration_year, profile()));
            }
        }
    }

    /// The profile `company` is counted under in the year (its name left empty): the same as
    /// [`Projections::profile_of`] at the same position, but for the name.
    pub fn profile_of(&self, company: &EnterpriseNumber) -> Option<&CompanyProfile> {
        self.counted.get(company).map(|(_, profile)| profile)
    }

    /// Every company registered for any year, as far as the fold knows them.
    pub fn companies_known(&self) -> usize {
        self.counted.len()
    }

    fn sector_of(&self, company: &EnterpriseNumber) -> String {
        self.profile_of(company)
            .map(|profile| profile.sector.clone())
            .unwrap_or_default()
    }

    /// Folds the event at `position`, which must be the next one; `reversed` is the redemption
    /// a reversal takes back, read from the log. Only `year`'s figures are kept: the events of
    /// other years move the budgets, the registrations and the modules, nothing else.
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
        // What a reversal takes back, found as the projections find it when they load the
        // redemption for its reversal: from the registrations and modules as they stand now.
        let reversed_facts = match event {
            Event::RedemptionReversed(_) => Some(
                reversed
                    .map(|redemption| {
                        let sector = self.sector_of(&redemption.enterprise_number);
                        redemption_facts_in(sector, &self.modules, redemption)
                    })
                    .ok_or(ProjectionError {
                        position,
                        what: "unknown redemption",
                    })?,
            ),
            _ => None,
        };
        fold_budgets(&mut self.budgets, event);
        let trainee = reversed_facts.as_ref().map(|facts| facts.trainee());
        if summary_year(event, trainee.as_ref()) == Some(self.year) {
            fold_year_summary(&mut self.figures, event, trainee.as_ref());
        }
        match event {
            Event::ModuleApproved(e) => {
                self.modules.insert(
                    e.module_id.clone(),
                    ModuleProfile {
                        themes: e.themes.clone(),
                    },
                );
            }
            Event::CompanyRegistered(e) => {
                let company = &e.enterprise_number;
                // As `Projections::move_hours_to_profile`, for this one year.
                let before = self
                    .figures
                    .hours_by_company
                    .get(company)
                    .map(|hours| (*hours, self.sector_of(company)));
                let sector = crate::division(&e.nace_sector);
                self.register(company.clone(), e.year, e.size_class, &sector);
                if let Some((hours, before)) = before {
                    let after = self.sector_of(company);
                    if after != before {
                        move_hours_in(&mut self.figures, &before, after, hours);
                    }
                }
            }
            Event::HoursRedeemed(e) if e.training_date.year() == self.year => {
                let facts =
                    redemption_facts_in(self.sector_of(&e.enterprise_number), &self.modules, e);
                count_redemption_in(&mut self.figures, &facts.counted(), true);
            }
            Event::RedemptionReversed(_) => {
                if let Some(facts) = reversed_facts.filter(|facts| facts.year == self.year) {
                    count_redemption_in(&mut self.figures, &facts.counted(), false);
                }
            }
            _ => {}
        }
        self.position = position;
        Ok(())
    }

    /// The companies report of the year: [`Projections::companies_report`]'s answer at the same
    /// position.
    pub fn companies_report(&self) -> CompaniesReport {
        companies_report_in(|company| self.profile_of(company), &self.figures)
    }
}

impl YearFigures {
    /// The deterministic encoding (postcard) of a year's whole figures.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Figures from [`YearFigures::to_bytes`]; `None` for bytes that do not decode.
    pub fn from_bytes(bytes: &[u8]) -> Option<YearFigures> {
        postcard::from_bytes(bytes).ok()
    }
}

impl Projections {
    /// The registrations for each of `years`, each encoded on its own (postcard of the
    /// companies registered for the year and their profiles, in order): what a year point
    /// keeps of the registrations, one part per registration year, so that a closed year's
    /// part is written once. One pass over the companies whatever the number of years.
    pub fn registrations_bytes(
        &self,
        years: impl IntoIterator<Item = i32>,
    ) -> BTreeMap<i32, Vec<u8>> {
        let mut of_year: BTreeMap<i32, Vec<(&EnterpriseNumber, &CompanyProfile)>> =
            years.into_iter().map(|year| (year, Vec::new())).collect();
        for (enterprise_number, registrations) in &self.companies {
            for (year, profile) in registrations.iter() {
                if let Some(list) = of_year.get_mut(year) {
                    list.push((enterprise_number, profile));
                }
            }
        }
        of_year
            .into_iter()
            .map(|(year, list)| (year, encode(&list)))
            .collect()
    }

    /// Every year some company registered for.
    pub fn registration_years(&self) -> std::collections::BTreeSet<i32> {
        self.companies
            .values()
            .flat_map(|registrations| registrations.keys().copied())
            .collect()
    }

    /// The modules' themes, encoded (postcard): what a year point keeps of the modules.
    pub fn modules_bytes(&self) -> Vec<u8> {
        encode(&self.modules)
    }

    /// The years in which `company` has hours (whose hours by sector a registration of it may
    /// move).
    pub fn years_with_hours_of(&self, company: &EnterpriseNumber) -> Vec<i32> {
        self.years
            .iter()
            .filter(|(_, figures)| figures.hours_by_company.contains_key(company))
            .map(|(year, _)| *year)
            .collect()
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}
