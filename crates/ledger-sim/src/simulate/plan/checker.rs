//! Checks a [`Plan`] without a server: that every request it leads to passes the ledger's rules
//! in any order within a phase of a month, and that its totals are the targets.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, NaiveDate};
use ledger_domain::command::RegisterCompany;
use ledger_domain::{EnterpriseNumber, NationalNumber, Policy, Region, VoucherType};
use rust_decimal::Decimal;

use super::*;

impl Plan {
    /// Checks that every request of the plan passes the ledger's rules in any order within a
    /// phase of a month, and that the totals are the targets. The first breach found, if any.
    pub fn check(&self, policy: &Policy) -> Result<(), String> {
        let totals = self.totals();
        let targets = self.targets;
        if totals.companies_benefiting != targets.companies_benefiting
            || totals.workers_trained != targets.workers_trained
            || totals.hours_trained != targets.hours_trained
        {
            return Err(format!(
                "totals {totals:?} do not meet the targets {targets:?}"
            ));
        }
        let issued_eur = Decimal::from(totals.vouchers_issued) * self.region_share_eur;
        if issued_eur > targets.budget_eur() {
            return Err(format!(
                "region's share of the issued vouchers {issued_eur} is over the budget"
            ));
        }
        self.check_companies(policy)?;
        self.check_vouchers(policy)?;
        self.check_redemptions()?;
        self.check_usage_codes()?;
        self.check_payouts()
    }

    /// Every redemption files against a code of its company, provider, voucher type and month,
    /// the extra ones against codes of their own, inside the code's period; a code holds the
    /// hours of its redemptions exactly (so it is used up by the month's end), is ordered after
    /// the month's payments and before its trainings, and its period is within the vouchers'
    /// validity, which `check_vouchers` checks month by month.
    fn check_usage_codes(&self) -> Result<(), String> {
        if self.redemption_codes.len() != self.redemptions.len() {
            return Err("a redemption has no usage code".to_owned());
        }
        let mut filed = vec![0u32; self.usage_codes.len()];
        for (redemption, index) in self.redemptions.iter().zip(&self.redemption_codes) {
            let code = self
                .usage_codes
                .get(*index)
                .ok_or_else(|| format!("usage code #{index} is not planned"))?;
            let fits = code.company == redemption.company
                && code.provider == redemption.provider
                && code.voucher_type == redemption.voucher_type
                && code.extra == redemption.reversal.is_some()
                && (code.period_from..=code.period_until).contains(&redemption.training_date);
            if !fits {
                return Err(format!(
                    "a redemption on {} does not fit its usage code #{index}",
                    redemption.training_date
                ));
            }
            filed[*index] += redemption.hours;
        }
        for (index, (code, filed)) in self.usage_codes.iter().zip(filed).enumerate() {
            if code.hours != filed
                || code.period_from.month() != code.period_until.month()
                || code.ordered_on() >= code.period_from
            {
                return Err(format!(
                    "usage code #{index} of {} hours from {} to {}, {filed} hours filed",
                    code.hours, code.period_from, code.period_until
                ));
            }
        }
        Ok(())
    }

    fn check_companies(&self, policy: &Policy) -> Result<(), String> {
        let mut numbers = HashSet::new();
        for company in &self.companies {
            let number = EnterpriseNumber::parse(&company.enterprise_number)
                .ok_or_else(|| format!("{} is not a valid number", company.enterprise_number))?;
            if !numbers.insert(company.enterprise_number.as_str()) {
                return Err(format!("{} is planned twice", company.enterprise_number));
            }
            let registration = RegisterCompany {
                enterprise_number: number,
                year: self.year,
                name: company.name.clone(),
                legal_form: company.legal_form,
                region: Region::WalloniaFrenchSpeaking,
                fte: company.fte,
                turnover_eur: company.turnover_eur,
                balance_sheet_total_eur: company.balance_sheet_total_eur,
                autonomous: true,
                secondary_activity_months: company.secondary_activity_months,
                nace_sector: company.nace_sector.to_owned(),
                registered_on: company.registered_on,
            };
            let size_class = ledger_domain::decide::eligibility(&registration, policy)
                .map_err(|why| format!("{} is not eligible: {why:?}", company.enterprise_number))?;
            if size_class != company.size_class || company.registered_on.year() != self.year {
                return Err(format!(
                    "{} is registered as {size_class:?} on {}",
                    company.enterprise_number, company.registered_on
                ));
            }
        }
        let mut national_numbers = HashSet::new();
        for worker in &self.workers {
            if NationalNumber::parse(&worker.national_number).is_none()
                || !national_numbers.insert(worker.national_number.as_str())
            {
                return Err("a worker's national number is invalid or repeated".to_owned());
            }
        }
        Ok(())
    }

    fn check_vouchers(&self, policy: &Policy) -> Result<(), String> {
        type Key = (usize, VoucherType);
        let mut issued: BTreeMap<Key, u32> = BTreeMap::new();
        let mut redeemed: BTreeMap<Key, u32> = BTreeMap::new();
        let mut payments: BTreeMap<Key, Vec<(NaiveDate, u32)>> = BTreeMap::new();
        for issuance in &self.issuances {
            payments
                .entry((issuance.company, issuance.voucher_type))
                .or_default()
                .push((issuance.payment_date, issuance.quantity));
            let company = &self.companies[issuance.company];
            if issuance.payment_date.year() != self.year
                || issuance.payment_date.day() > PAYMENT_DAY_LAST
                || company.registered_on > issuance.payment_date
            {
                return Err(format!(
                    "{} pays on {} and registers on {}",
                    company.enterprise_number, issuance.payment_date, company.registered_on
                ));
            }
            *issued
                .entry((issuance.company, issuance.voucher_type))
                .or_default() += issuance.quantity;
        }
        for ((company, voucher_type), quantity) in &issued {
            let quota = policy.quota(self.companies[*company].size_class, *voucher_type);
            if *quantity > quota {
                return Err(format!(
                    "{} is issued {quantity} {voucher_type:?} vouchers over its quota {quota}",
                    self.companies[*company].enterprise_number
                ));
            }
        }
        for redemption in self.redemptions.iter().filter(|r| r.reversal.is_none()) {
            *redeemed
                .entry((redemption.company, redemption.voucher_type))
                .or_default() += redemption.hours;
        }
        for (key, hours) in &redeemed {
            if issued.get(key).copied().unwrap_or(0) < *hours {
                return Err(format!(
                    "{} redeems {hours} {:?} vouchers, more than issued",
                    self.companies[key.0].enterprise_number, key.1
                ));
            }
        }
        // Month by month, the vouchers paid before the month's first training cover every
        // regular redemption up to the month's end and the month's extra redemptions on top.
        let mut by_month: BTreeMap<(usize, VoucherType, u32), (u32, u32, NaiveDate)> =
            BTreeMap::new();
        for redemption in &self.redemptions {
            let entry = by_month
                .entry((
                    redemption.company,
                    redemption.voucher_type,
                    redemption.training_date.month(),
                ))
                .or_insert((0, 0, redemption.training_date));
            if redemption.reversal.is_none() {
                entry.0 += redemption.hours;
            } else {
                entry.1 += redemption.hours;
            }
            entry.2 = entry.2.min(redemption.training_date);
        }
        let mut cumulative: BTreeMap<Key, u32> = BTreeMap::new();
        for ((company, voucher_type, _), (regular, extra, first_training)) in by_month {
            let so_far = cumulative.entry((company, voucher_type)).or_default();
            *so_far += regular;
            let paid: u32 = payments
                .get(&(company, voucher_type))
                .map_or(0, |payments| {
                    payments
                        .iter()
                        .filter(|(payment_date, _)| *payment_date <= first_training)
                        .map(|(_, quantity)| *quantity)
                        .sum()
                });
            if paid < *so_far + extra {
                return Err(format!(
                    "{} has {paid} {voucher_type:?} vouchers paid by {first_training} for {} hours",
                    self.companies[company].enterprise_number,
                    *so_far + extra
                ));
            }
        }
        Ok(())
    }

    fn check_redemptions(&self) -> Result<(), String> {
        let mut followed: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        for redemption in &self.redemptions {
            let module = &self.modules[redemption.module];
            let worker = &self.workers[redemption.worker];
            let breach = if redemption.hours == 0 || redemption.hours > module.hours_max {
                Some("hours out of the module's length")
            } else if module.provider != redemption.provider {
                Some("module of another provider")
            } else if module.approved_from > redemption.training_date
                || self.providers[redemption.provider].approved_from > redemption.training_date
            {
                Some("module or provider not approved yet")
            } else if !module
                .accepted_voucher_types
                .contains(&redemption.voucher_type)
            {
                Some("voucher type not accepted")
            } else if !worker.trainee_status.may_be_trained_with_vouchers()
                || worker.company != redemption.company
            {
                Some("trainee not eligible")
            } else if redemption.training_date.year() != self.year
                || redemption.training_date.day() < TRAINING_DAY_FIRST
            {
                Some("training date out of the year's training days")
            } else if redemption.reversal.is_some_and(|reversal| {
                reversal.reversed_on < redemption.training_date
                    || reversal.reversed_on.month() != redemption.training_date.month()
            }) {
                Some("reversal outside the month of the training")
            } else {
                None
            };
            if let Some(breach) = breach {
                return Err(format!(
                    "redemption in {} on {}: {breach}",
                    module.id, redemption.training_date
                ));
            }
            *followed
                .entry((redemption.worker, redemption.module))
                .or_default() += redemption.hours;
        }
        for ((_, module), hours) in followed {
            if hours > self.modules[module].hours_max {
                return Err(format!(
                    "a worker follows {hours} hours of {}, longer than the module",
                    self.modules[module].id
                ));
            }
        }
        Ok(())
    }

    fn check_payouts(&self) -> Result<(), String> {
        let mut owed: BTreeMap<(u32, usize), Decimal> = BTreeMap::new();
        for redemption in self.redemptions.iter().filter(|r| r.reversal.is_none()) {
            *owed
                .entry((redemption.training_date.month(), redemption.provider))
                .or_default() += self.face_value_eur * Decimal::from(redemption.hours);
        }
        let mut paid: BTreeMap<(u32, usize), Decimal> = BTreeMap::new();
        for payout in &self.payouts {
            if payout.payout_date != last_of(self.year, payout.payout_date.month()) {
                return Err(format!(
                    "payout on {} is not at a month's end",
                    payout.payout_date
                ));
            }
            *paid
                .entry((payout.payout_date.month(), payout.provider))
                .or_default() += payout.amount_eur;
        }
        if owed != paid {
            return Err("payouts differ from what the providers are owed".to_owned());
        }
        Ok(())
    }
}
