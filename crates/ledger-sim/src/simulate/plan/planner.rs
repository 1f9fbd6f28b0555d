//! Makes a [`Plan`]: providers and modules, companies and their workers, the month each
//! trains in, the vouchers each buys, then the reversals, payouts and expiry, from the seed
//! alone; then [`Plan::check`] before the plan is handed out.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use ledger_domain::{LegalForm, Policy, SizeClass, Theme, TraineeStatus, VoucherType};
use rust_decimal::Decimal;

use super::super::catalogue::{
    ThemeOffer, COMPANY_FORMS, FIRST_NAMES, MONTH_WEIGHTS, OFFERS, PROVIDER_KINDS,
    REVERSAL_REASONS, SECTORS, SURNAMES, TOWNS,
};
use super::super::rng::SplitMix64;
use super::*;

/// Makes the plan of `year` for `targets` under `policy` (the policy in force all year).
pub fn plan(year: i32, seed: u64, targets: Targets, policy: &Policy) -> Result<Plan, PlanError> {
    plan_after(year, seed, targets, policy, &History::default())
}

/// [`plan`] for a ledger that already holds the years of `history`: the catalogue is the one
/// approved already, and no company or worker of an earlier year comes back. With an empty
/// history, the same plan as [`plan`].
pub fn plan_after(
    year: i32,
    seed: u64,
    targets: Targets,
    policy: &Policy,
    history: &History,
) -> Result<Plan, PlanError> {
    if targets.companies_benefiting == 0 {
        return Err(PlanError::NoCompany);
    }
    if targets.workers_trained < targets.companies_benefiting {
        return Err(PlanError::InconsistentTargets(
            "fewer workers than companies benefiting",
        ));
    }
    if targets.hours_trained < u64::from(targets.workers_trained) {
        return Err(PlanError::InconsistentTargets("fewer hours than workers"));
    }
    let region_share_cents = policy.region_share_eur * Decimal::from(100);
    let region_share_cents = u64::try_from(region_share_cents)
        .ok()
        .filter(|cents| *cents > 0 && Decimal::from(*cents) == region_share_cents)
        .ok_or(PlanError::RegionShare(policy.region_share_eur))?;
    let vouchers_max = targets.budget_cents / region_share_cents;
    if vouchers_max < targets.hours_trained {
        return Err(PlanError::BudgetTooSmall {
            vouchers_max,
            hours: targets.hours_trained,
        });
    }
    let mut planner = Planner {
        year,
        policy,
        rng: SplitMix64::new(seed),
        enterprise_bodies: history.enterprise_bodies.clone(),
        national_bodies: history.national_bodies.clone(),
        plan: Plan {
            year,
            seed,
            targets,
            face_value_eur: policy.face_value_eur,
            employer_share_eur: policy.employer_share_eur,
            region_share_eur: policy.region_share_eur,
            providers: Vec::new(),
            modules: Vec::new(),
            companies: Vec::new(),
            workers: Vec::new(),
            issuances: Vec::new(),
            redemptions: Vec::new(),
            payouts: Vec::new(),
            expire_as_of: first_of(year + 1, 1),
            valid_until: Vec::new(),
            usage_codes: Vec::new(),
            redemption_codes: Vec::new(),
        },
        demand: Vec::new(),
        used: Vec::new(),
        worker_modules: Vec::new(),
    };
    match &history.catalogue {
        Some((providers, modules)) => {
            planner.plan.providers.clone_from(providers);
            planner.plan.modules.clone_from(modules);
        }
        None => planner.catalogue(),
    }
    planner.benefiting_companies()?;
    planner.trainings()?;
    planner.batches();
    planner.slack(vouchers_max - targets.hours_trained);
    planner.registered_only();
    planner.reversals();
    planner.payouts();
    planner.registration_dates();
    planner.usage_codes();
    let mut plan = planner.plan;
    plan.valid_until = plan
        .issuances
        .iter()
        .map(|issuance| policy.valid_until(issuance.payment_date))
        .collect();
    plan.check(policy).map_err(PlanError::Broken)?;
    Ok(plan)
}

struct Planner<'a> {
    year: i32,
    policy: &'a Policy,
    rng: SplitMix64,
    plan: Plan,
    enterprise_bodies: HashSet<u32>,
    national_bodies: HashSet<u64>,
    /// Per company and voucher type: hours of regular redemptions by month (1 to 12).
    demand: Vec<BTreeMap<(VoucherType, u32), u32>>,
    /// Per company: vouchers planned so far by type (regular redemptions, then issuance).
    used: Vec<BTreeMap<VoucherType, u32>>,
    /// Per worker: the modules of its regular redemptions, with their hours.
    worker_modules: Vec<BTreeMap<usize, u32>>,
}

impl Planner<'_> {
    fn first_of_year(&self) -> NaiveDate {
        first_of(self.year, 1)
    }

    /// Providers and their modules. The two providers of the demo configuration come first,
    /// then one per theme at least, so that every theme is taught at any scale.
    fn catalogue(&mut self) {
        let targets = self.plan.targets;
        let providers = (u64::from(PROVIDERS_MAX) * u64::from(targets.companies_benefiting)
            / u64::from(Targets::PUBLISHED_2024.companies_benefiting))
        .clamp(u64::from(PROVIDERS_MIN), u64::from(PROVIDERS_MAX));
        let theme_weights: Vec<u32> = OFFERS.iter().map(|offer| offer.weight).collect();
        for index in 0..providers {
            let id = match index {
                0 => "AG-0012".to_owned(),
                1 => "AG-0099".to_owned(),
                _ => format!("AG-{:04}", 100 + index),
            };
            let main_offer = match usize::try_from(index) {
                Ok(index) if index < OFFERS.len() => index,
                _ => self.rng.weighted(&theme_weights),
            };
            let name = format!(
                "{} {} {}",
                PROVIDER_KINDS[self.rng.index(PROVIDER_KINDS.len())],
                self.rng_pick(&TOWNS),
                index + 1
            );
            let approved_from = self.date_between(first_of(2005, 1), first_of(self.year - 1, 6));
            let provider = self.plan.providers.len();
            self.plan.providers.push(Provider {
                id: id.clone(),
                name,
                approved_from,
            });
            let module_count = self.rng.between(2, 6);
            for number in 1..=module_count {
                // The first module is of the provider's main theme.
                let offer = if number == 1 || self.rng.chance(650) {
                    &OFFERS[main_offer]
                } else {
                    &OFFERS[self.rng.weighted(&theme_weights)]
                };
                let approved_from = if offer.theme != Theme::Ai
                    && number > 1
                    && self.rng.chance(OTHER_MODULES_NEW_PER_MILLE)
                {
                    first_of(self.year, self.rng.between(2, 10))
                } else {
                    self.date_between(approved_from, first_of(self.year - 1, 12))
                };
                self.plan.modules.push(module(
                    offer,
                    provider,
                    &id,
                    number,
                    approved_from,
                    &mut self.rng,
                ));
            }
        }
        // The AI offer grew 85% during the year: of the AI modules at the end of the year,
        // 85 in 185 were first approved in it. The first module of the first providers stays
        // older, so that every theme can be followed from January on.
        let mut ai_modules: Vec<usize> = (0..self.plan.modules.len())
            .filter(|index| self.plan.modules[*index].themes.contains(&Theme::Ai))
            .collect();
        let new_count = (ai_modules.len() * AI_OFFER_GROWTH_PERCENT as usize
            + (100 + AI_OFFER_GROWTH_PERCENT as usize) / 2)
            / (100 + AI_OFFER_GROWTH_PERCENT as usize);
        ai_modules.retain(|index| {
            let module = &self.plan.modules[*index];
            !(module.id.ends_with("-M01") && module.provider < OFFERS.len())
        });
        self.rng.shuffle(&mut ai_modules);
        for index in ai_modules.into_iter().take(new_count) {
            self.plan.modules[index].approved_from = first_of(self.year, self.rng.between(2, 10));
        }
    }

    fn rng_pick<const N: usize>(&mut self, items: &[&'static str; N]) -> &'static str {
        items[self.rng.index(N)]
    }

    /// A day from `from` to `until`, both included.
    fn date_between(&mut self, from: NaiveDate, until: NaiveDate) -> NaiveDate {
        let span = u64::try_from((until - from).num_days()).unwrap_or(0);
        from.checked_add_days(Days::new(self.rng.below(span + 1)))
            .unwrap_or(from)
    }

    /// The benefiting companies with their size classes, and their workers.
    fn benefiting_companies(&mut self) -> Result<(), PlanError> {
        let targets = self.plan.targets;
        let count = targets.companies_benefiting as usize;
        let mut profiles = Vec::with_capacity(count);
        for _ in 0..count {
            let size_class = SIZE_CLASSES[self.rng.weighted(&SIZE_CLASS_WEIGHTS)];
            profiles.push(self.profile(size_class));
        }
        // At large scales a handful of companies must still take every worker and hour: make
        // companies bigger, first to last, until they can.
        let hours_cap = |profiles: &[Profile], policy: &Policy| -> u64 {
            profiles
                .iter()
                .map(|profile| {
                    u64::from(
                        policy
                            .quota(profile.size_class, VoucherType::General)
                            .min(profile.workers_max * WORKER_HOURS_MAX),
                    )
                })
                .sum()
        };
        let mut upgraded = 0;
        while profiles
            .iter()
            .map(|p| u64::from(p.workers_max))
            .sum::<u64>()
            < u64::from(targets.workers_trained)
            || hours_cap(&profiles, self.policy) < targets.hours_trained
        {
            let Some(profile) = profiles.get_mut(upgraded) else {
                return Err(PlanError::Infeasible(
                    "too many workers or hours for the companies",
                ));
            };
            *profile = Profile::fte(SizeClass::Fte201To250, 230);
            upgraded += 1;
        }

        let caps: Vec<u32> = profiles.iter().map(|p| p.workers_max).collect();
        let weights: Vec<u32> = profiles.iter().map(|p| p.workers_weight).collect();
        let workers_per_company =
            self.allocate_workers(&caps, &weights, targets.workers_trained)?;

        for (profile, workers) in profiles.into_iter().zip(workers_per_company) {
            let company = self.company(profile, Participation::Benefiting);
            for index in 0..workers {
                let trainee_status = trainee_status(
                    self.plan.companies[company].legal_form,
                    index,
                    &mut self.rng,
                );
                let national_number = self.national_number();
                self.plan.workers.push(Worker {
                    company,
                    national_number,
                    trainee_status,
                });
            }
        }
        Ok(())
    }

    /// Size, legal form and the most workers a company of `size_class` trains in a year.
    fn profile(&mut self, size_class: SizeClass) -> Profile {
        match size_class {
            SizeClass::SecondarySelfEmployed => Profile {
                size_class,
                legal_form: LegalForm::SelfEmployedSecondary,
                fte: Decimal::ZERO,
                secondary_activity_months: self.rng.between(6, 180),
                workers_max: 1,
                workers_weight: 0,
            },
            SizeClass::Micro if self.rng.chance(500) => Profile {
                size_class,
                legal_form: LegalForm::SelfEmployedMain,
                fte: Decimal::ONE,
                secondary_activity_months: 0,
                // The self-employed person and a helping spouse.
                workers_max: 2,
                workers_weight: 2,
            },
            SizeClass::Micro => Profile {
                size_class,
                legal_form: LegalForm::CommercialCompany,
                fte: Decimal::new(i64::from(self.rng.between(1, 3)) * 5, 1),
                secondary_activity_months: 0,
                workers_max: 2,
                workers_weight: 2,
            },
            SizeClass::Fte2To50 => {
                // Most small companies are very small.
                let spread = self.rng.between(0, 48);
                let fte = 2 + self.rng.between(0, spread);
                Profile::fte(size_class, fte)
            }
            SizeClass::Fte51To100 => Profile::fte(size_class, self.rng.between(51, 100)),
            SizeClass::Fte101To200 => Profile::fte(size_class, self.rng.between(101, 200)),
            SizeClass::Fte201To250 => Profile::fte(size_class, self.rng.between(201, 250)),
        }
    }

    /// Spreads `total` workers over the companies: one each, the rest drawn by weight within
    /// each company's maximum.
    fn allocate_workers(
        &mut self,
        caps: &[u32],
        weights: &[u32],
        total: u32,
    ) -> Result<Vec<u32>, PlanError> {
        let mut counts = vec![1_u32; caps.len()];
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut sum = 0_u64;
        for weight in weights {
            sum += u64::from(*weight);
            cumulative.push(sum);
        }
        let mut remaining = total - count_u32(caps.len());
        let mut misses = 0;
        while remaining > 0 {
            let chosen = if sum > 0 && misses < 1_000 {
                let draw = self.rng.below(sum);
                cumulative.partition_point(|bound| *bound <= draw)
            } else {
                // Every weighted draw lately hit a full company: take the next one with room.
                let start = self.rng.index(caps.len());
                (0..caps.len())
                    .map(|offset| (start + offset) % caps.len())
                    .find(|index| counts[*index] < caps[*index])
                    .ok_or(PlanError::Infeasible(
                        "more workers than the companies employ",
                    ))?
            };
            if counts[chosen] < caps[chosen] {
                counts[chosen] += 1;
                remaining -= 1;
                misses = 0;
            } else {
                misses += 1;
            }
        }
        Ok(counts)
    }

    fn company(&mut self, profile: Profile, participation: Participation) -> usize {
        let sector = SECTORS[self.rng.weighted(&SECTORS.map(|sector| sector.weight))];
        let surname = self.rng_pick(&SURNAMES);
        let name = match profile.legal_form {
            LegalForm::SelfEmployedMain | LegalForm::SelfEmployedSecondary => {
                format!("{} {surname}", self.rng_pick(&FIRST_NAMES))
            }
            _ => format!(
                "{} {surname} {}",
                sector.trade,
                self.rng_pick(&COMPANY_FORMS)
            ),
        };
        // Turnover per FTE of EUR 55 000 to 140 000; a self-employed person's own activity.
        let fte_euros = profile.fte.max(Decimal::ONE);
        let turnover_eur =
            (fte_euros * Decimal::from(self.rng.between(55, 140)) * Decimal::from(1_000)).round();
        let balance_sheet_total_eur =
            (turnover_eur * Decimal::from(self.rng.between(40, 90)) / Decimal::from(100)).round();
        let enterprise_number = self.enterprise_number();
        self.plan.companies.push(Company {
            enterprise_number,
            name,
            legal_form: profile.legal_form,
            fte: profile.fte,
            turnover_eur,
            balance_sheet_total_eur,
            secondary_activity_months: profile.secondary_activity_months,
            nace_sector: sector.nace_code,
            favoured_theme: sector.favoured_theme,
            size_class: profile.size_class,
            // Set once the payments are known.
            registered_on: self.first_of_year(),
            participation,
        });
        self.demand.push(BTreeMap::new());
        self.used.push(BTreeMap::new());
        self.plan.companies.len() - 1
    }

    /// A valid, unused BCE/KBO number: eight digits from 0200.000.0 on, then
    /// `97 - (those mod 97)`.
    fn enterprise_number(&mut self) -> String {
        loop {
            let body = 2_000_000 + u32::try_from(self.rng.below(9_000_000)).unwrap_or(0);
            if self.enterprise_bodies.insert(body) {
                return format!("{body:08}{:02}", 97 - body % 97);
            }
        }
    }

    /// A valid, unused national register number of someone born from 1960 to 2005.
    fn national_number(&mut self) -> String {
        loop {
            let born = 1960 + self.rng.between(0, 45);
            let body = u64::from(born % 100) * 10_000_000
                + u64::from(self.rng.between(1, 12)) * 100_000
                + u64::from(self.rng.between(1, 28)) * 1_000
                + u64::from(self.rng.between(1, 997));
            if self.national_bodies.insert(body) {
                let checked = if born >= 2000 {
                    2_000_000_000 + body
                } else {
                    body
                };
                return format!("{body:09}{:02}", 97 - checked % 97);
            }
        }
    }

    /// Hours per worker, then the modules and redemptions that make them up.
    fn trainings(&mut self) -> Result<(), PlanError> {
        let hours = self.allocate_hours()?;
        self.worker_modules = vec![BTreeMap::new(); self.plan.workers.len()];
        for (worker, mut remaining) in hours.into_iter().enumerate() {
            let company = self.plan.workers[worker].company;
            while remaining > 0 {
                // Each course starts in a month of the season; the company's payments follow
                // its courses (see `batches`), so orders spread over the year as trainings do.
                let month = 1 + count_u32(self.rng.weighted(&MONTH_WEIGHTS));
                let (module, room) = self.pick_module(company, worker, month)?;
                let enrollment = remaining.min(room);
                self.enroll(company, worker, module, enrollment, month);
                remaining -= enrollment;
            }
        }
        Ok(())
    }

    /// Exactly the target hours over the workers: at least one each, at most
    /// [`WORKER_HOURS_MAX`] each, and at most the general quota of the company in all (so that
    /// every hour can be paid with general vouchers, whatever else the company uses).
    fn allocate_hours(&mut self) -> Result<Vec<u32>, PlanError> {
        let target = self.plan.targets.hours_trained;
        let company_cap: Vec<u64> = self
            .plan
            .companies
            .iter()
            .map(|company| u64::from(self.policy.quota(company.size_class, VoucherType::General)))
            .collect();
        // Wished hours: a day, a few days, a week, a long course, a language path.
        const BUCKETS: [(u32, u32, u32); 5] = [
            (300, 3, 8),
            (350, 9, 21),
            (200, 22, 40),
            (110, 41, 80),
            (40, 81, 160),
        ];
        let bucket_weights = BUCKETS.map(|(weight, _, _)| weight);
        let wishes: Vec<u64> = (0..self.plan.workers.len())
            .map(|_| {
                let (_, low, high) = BUCKETS[self.rng.weighted(&bucket_weights)];
                u64::from(self.rng.between(low, high))
            })
            .collect();
        let wished: u64 = wishes.iter().sum::<u64>().max(1);
        let mut hours: Vec<u32> = wishes
            .iter()
            .map(|wish| {
                let scaled = u128::from(*wish) * u128::from(target) / u128::from(wished);
                u32::try_from(scaled)
                    .unwrap_or(u32::MAX)
                    .clamp(1, WORKER_HOURS_MAX)
            })
            .collect();
        let mut company_hours = vec![0_u64; self.plan.companies.len()];
        for (worker, value) in self.plan.workers.iter().zip(&hours) {
            company_hours[worker.company] += u64::from(*value);
        }
        // Bring companies over their cap down, largest trainees first.
        let mut by_company: Vec<Vec<usize>> = vec![Vec::new(); self.plan.companies.len()];
        for (index, worker) in self.plan.workers.iter().enumerate() {
            by_company[worker.company].push(index);
        }
        for (company, workers) in by_company.iter().enumerate() {
            while company_hours[company] > company_cap[company] {
                let excess = company_hours[company] - company_cap[company];
                let Some(&largest) = workers.iter().max_by_key(|worker| hours[**worker]) else {
                    break;
                };
                let cut = u64::from(hours[largest] - 1).min(excess.max(1));
                if cut == 0 {
                    return Err(PlanError::Infeasible(
                        "a company has more workers than hours",
                    ));
                }
                hours[largest] -= u32::try_from(cut).unwrap_or(0);
                company_hours[company] -= cut;
            }
        }
        // Then add or take hours, a few at a time, until the total is exact.
        let mut total: u64 = hours.iter().map(|value| u64::from(*value)).sum();
        let mut misses = 0_u32;
        while total != target {
            let worker = if misses < 1_000 {
                self.rng.index(hours.len())
            } else {
                let start = self.rng.index(hours.len());
                let found = (0..hours.len())
                    .map(|offset| (start + offset) % hours.len())
                    .find(|index| {
                        let company = self.plan.workers[*index].company;
                        if total < target {
                            hours[*index] < WORKER_HOURS_MAX
                                && company_hours[company] < company_cap[company]
                        } else {
                            hours[*index] > 1
                        }
                    });
                found.ok_or(PlanError::Infeasible("the hours do not fit the companies"))?
            };
            let company = self.plan.workers[worker].company;
            let step = u64::from(self.rng.between(1, 8));
            let change = if total < target {
                let room = u64::from(WORKER_HOURS_MAX - hours[worker])
                    .min(company_cap[company] - company_hours[company]);
                step.min(room).min(target - total)
            } else {
                step.min(u64::from(hours[worker] - 1)).min(total - target)
            };
            if change == 0 {
                misses += 1;
                continue;
            }
            misses = 0;
            let change_u32 = u32::try_from(change).unwrap_or(0);
            if total < target {
                hours[worker] += change_u32;
                company_hours[company] += change;
                total += change;
            } else {
                hours[worker] -= change_u32;
                company_hours[company] -= change;
                total -= change;
            }
        }
        Ok(hours)
    }

    /// A module for the worker's next course, approved by the first of `month`, and the hours
    /// the worker may still follow in it: a module not followed yet when there is one.
    fn pick_module(
        &mut self,
        company: usize,
        worker: usize,
        month: u32,
    ) -> Result<(usize, u32), PlanError> {
        let day_one = first_of(self.year, month);
        let favoured = self.plan.companies[company].favoured_theme;
        let weights: Vec<u32> = OFFERS
            .iter()
            .map(|offer| offer.weight + if offer.theme == favoured { 20 } else { 0 })
            .collect();
        let taken = &self.worker_modules[worker];
        for _ in 0..8 {
            let theme = OFFERS[self.rng.weighted(&weights)].theme;
            let index = self.rng.index(self.plan.modules.len());
            // Walk from a random module to the next one of the theme.
            let found = (0..self.plan.modules.len())
                .map(|offset| (index + offset) % self.plan.modules.len())
                .find(|candidate| {
                    let module = &self.plan.modules[*candidate];
                    module.themes[0] == theme
                        && module.approved_from <= day_one
                        && !taken.contains_key(candidate)
                });
            if let Some(module) = found {
                return Ok((module, self.plan.modules[module].hours_max));
            }
        }
        // A small catalogue: any module with hours left for this worker.
        let start = self.rng.index(self.plan.modules.len());
        (0..self.plan.modules.len())
            .map(|offset| (start + offset) % self.plan.modules.len())
            .find_map(|candidate| {
                let module = &self.plan.modules[candidate];
                let followed = taken.get(&candidate).copied().unwrap_or(0);
                (module.approved_from <= day_one && followed < module.hours_max)
                    .then_some((candidate, module.hours_max - followed))
            })
            .ok_or(PlanError::Infeasible(
                "a worker has more hours than the catalogue offers",
            ))
    }

    /// The worker follows `hours` of `module` from `month`, in one to three redemptions.
    fn enroll(&mut self, company: usize, worker: usize, module: usize, hours: u32, month: u32) {
        let theme = self.plan.modules[module].themes[0];
        let specific = match theme {
            Theme::Languages => Some(VoucherType::Languages),
            Theme::Green => Some(VoucherType::EcoClimate),
            _ => None,
        };
        let size_class = self.plan.companies[company].size_class;
        let used = &mut self.used[company];
        // The type made for the theme while its quota lasts, then general vouchers.
        let voucher_type = specific
            .filter(|voucher_type| {
                used.get(voucher_type).copied().unwrap_or(0) + hours
                    <= self.policy.quota(size_class, *voucher_type)
            })
            .unwrap_or(VoucherType::General);
        *used.entry(voucher_type).or_default() += hours;
        *self.worker_modules[worker].entry(module).or_default() += hours;

        let parts = if hours <= 8 {
            1
        } else {
            self.rng.between(1, (hours.div_ceil(7)).min(3))
        };
        let gap = self.rng.between(0, 1);
        for part in 0..parts {
            let part_hours = hours / parts + u32::from(part < hours % parts);
            let part_month = (month + part * gap).min(12);
            let training_date = self.weekday_in(part_month, TRAINING_DAY_FIRST, 31);
            *self.demand[company]
                .entry((voucher_type, part_month))
                .or_default() += part_hours;
            self.plan.redemptions.push(Redemption {
                provider: self.plan.modules[module].provider,
                module,
                company,
                worker,
                voucher_type,
                hours: part_hours,
                training_date,
                reversal: None,
            });
        }
    }

    /// A weekday of `month` from day `from` to day `to` (cut at the month's end).
    fn weekday_in(&mut self, month: u32, from: u32, to: u32) -> NaiveDate {
        let last = last_of(self.year, month).day();
        let days: Vec<NaiveDate> = (from..=to.min(last))
            .map(|day| ymd(self.year, month, day))
            .filter(|date| !matches!(date.weekday(), Weekday::Sat | Weekday::Sun))
            .collect();
        days.get(self.rng.index(days.len()))
            .copied()
            .unwrap_or_else(|| ymd(self.year, month, from))
    }

    /// Each company's batches: per voucher type, the months of its trainings cut into one to
    /// three runs; each run is paid early in its first month for exactly its hours.
    fn batches(&mut self) {
        for company in 0..self.plan.companies.len() {
            let demand = self.demand[company].clone();
            for voucher_type in VoucherType::ALL {
                let months: Vec<(u32, u32)> = demand
                    .iter()
                    .filter(|((kind, _), _)| *kind == voucher_type)
                    .map(|((_, month), hours)| (*month, *hours))
                    .collect();
                if months.is_empty() {
                    continue;
                }
                let runs = match self.rng.below(100) {
                    0..=64 => 1,
                    65..=89 => 2,
                    _ => 3,
                }
                .min(months.len());
                let mut cuts: BTreeSet<usize> = BTreeSet::new();
                while cuts.len() + 1 < runs {
                    cuts.insert(1 + self.rng.index(months.len() - 1));
                }
                let mut starts: Vec<usize> = vec![0];
                starts.extend(cuts);
                starts.push(months.len());
                for window in starts.windows(2) {
                    let run = &months[window[0]..window[1]];
                    let quantity = run.iter().map(|(_, hours)| *hours).sum();
                    self.issue(company, voucher_type, quantity, run[0].0);
                }
            }
        }
    }

    fn issue(&mut self, company: usize, voucher_type: VoucherType, quantity: u32, month: u32) {
        // January 1 is a bank holiday and the registration comes first: January 2 at the
        // earliest.
        let payment_date = self.weekday_in(month, 2, PAYMENT_DAY_LAST);
        let communication = 1_000_000_000 + self.rng.below(9_000_000_000);
        let check = match communication % 97 {
            0 => 97,
            rest => rest,
        };
        let digits = format!("{communication:010}{check:02}");
        let payment_reference = format!(
            "+++{}/{}/{}+++",
            &digits[0..3],
            &digits[3..7],
            &digits[7..12]
        );
        self.plan.issuances.push(Issuance {
            company,
            voucher_type,
            quantity,
            payment_date,
            payment_reference,
        });
    }

    /// Vouchers bought and not used in the year, within the budget and the quotas: a few
    /// companies that buy and never train, January batches not used up (they expire at the end
    /// of December), and orders rounded up to tens. Part of the room is left unissued.
    fn slack(&mut self, room: u64) {
        let left_unissued = room * self.rng.below(16).saturating_add(5) / 100;
        let mut slack = room - left_unissued;

        // Companies that buy and never train in the year.
        let holders = u64::from(self.plan.targets.companies_benefiting)
            * u64::from(HOLDS_ONLY_PER_MILLE)
            / 1000;
        for _ in 0..holders {
            let quantity = self.rng.between(10, 40);
            if u64::from(quantity) > slack {
                break;
            }
            let size_class = SIZE_CLASSES[self.rng.weighted(&SIZE_CLASS_WEIGHTS)];
            let profile = self.profile(size_class);
            let company = self.company(profile, Participation::HoldsOnly);
            let quota = self.policy.quota(size_class, VoucherType::General);
            let quantity = quantity.min(quota);
            let month = if self.rng.chance(350) {
                1
            } else {
                self.rng.between(2, 12)
            };
            self.issue(company, VoucherType::General, quantity, month);
            self.used[company].insert(VoucherType::General, quantity);
            slack -= u64::from(quantity);
        }

        // Then, in a random order of the batches: January batches that are a company's only
        // batch of their type get a little more than used (it will expire); the others are
        // rounded up to the next ten.
        let mut order: Vec<usize> = (0..self.plan.issuances.len())
            .filter(|index| {
                let company = self.plan.issuances[*index].company;
                self.plan.companies[company].participation == Participation::Benefiting
            })
            .collect();
        self.rng.shuffle(&mut order);
        let mut batches_of: BTreeMap<(usize, VoucherType), u32> = BTreeMap::new();
        for issuance in &self.plan.issuances {
            *batches_of
                .entry((issuance.company, issuance.voucher_type))
                .or_default() += 1;
        }
        for index in order {
            if slack == 0 {
                break;
            }
            let issuance = &self.plan.issuances[index];
            let company = issuance.company;
            let voucher_type = issuance.voucher_type;
            let only_january = issuance.payment_date.month() == 1
                && batches_of.get(&(company, voucher_type)) == Some(&1);
            let wanted = if only_january {
                if !self.rng.chance(500) {
                    continue;
                }
                self.rng.between(1, 12)
            } else {
                (10 - issuance.quantity % 10) % 10
            };
            let size_class = self.plan.companies[company].size_class;
            let used = self.used[company].entry(voucher_type).or_default();
            let quota_room = self
                .policy
                .quota(size_class, voucher_type)
                .saturating_sub(*used);
            let extra = wanted
                .min(quota_room)
                .min(u32::try_from(slack).unwrap_or(u32::MAX));
            if extra == 0 {
                continue;
            }
            *used += extra;
            self.plan.issuances[index].quantity += extra;
            slack -= u64::from(extra);
        }
    }

    /// Companies that register and never order.
    fn registered_only(&mut self) {
        let count = u64::from(self.plan.targets.companies_benefiting)
            * u64::from(REGISTERED_ONLY_PER_MILLE)
            / 1000;
        for _ in 0..count {
            let size_class = SIZE_CLASSES[self.rng.weighted(&SIZE_CLASS_WEIGHTS)];
            let profile = self.profile(size_class);
            let company = self.company(profile, Participation::RegisteredOnly);
            let month = self.rng.between(1, 12);
            self.plan.companies[company].registered_on = self.weekday_in(month, 2, 28);
        }
    }

    /// Extra redemptions, reversed right after: a worker already trained, in a module the
    /// worker does not follow, for hours the month's regular redemptions leave free.
    fn reversals(&mut self) {
        let regular = self.plan.redemptions.len();
        let wanted = (regular as u64 * u64::from(REVERSED_PER_MILLE) / 1000).max(1);
        let mut extras: Vec<Redemption> = Vec::new();
        let mut taken: HashSet<(usize, usize)> = HashSet::new();
        // Vouchers already drawn by extras, per company and month.
        let mut drawn: BTreeMap<(usize, u32), u32> = BTreeMap::new();
        let mut issuances_of: Vec<Vec<usize>> = vec![Vec::new(); self.plan.companies.len()];
        for (index, issuance) in self.plan.issuances.iter().enumerate() {
            issuances_of[issuance.company].push(index);
        }
        let mut attempts = 0;
        while (extras.len() as u64) < wanted && attempts < wanted * 50 {
            attempts += 1;
            let model = self.plan.redemptions[self.rng.index(regular)].clone();
            let month = model.training_date.month();
            let free = self.free_general(&issuances_of[model.company], model.company, month)
                - i64::from(drawn.get(&(model.company, month)).copied().unwrap_or(0));
            if free < 1 {
                continue;
            }
            let day_one = first_of(self.year, month);
            let module = self.rng.index(self.plan.modules.len());
            let (provider, module_hours_max, approved_from) = {
                let candidate = &self.plan.modules[module];
                (
                    candidate.provider,
                    candidate.hours_max,
                    candidate.approved_from,
                )
            };
            if approved_from > day_one
                || self.worker_modules[model.worker].contains_key(&module)
                || !taken.insert((model.worker, module))
            {
                continue;
            }
            let hours_max = u32::try_from(free)
                .unwrap_or(u32::MAX)
                .min(module_hours_max)
                .min(8);
            let hours = self.rng.between(1, hours_max);
            let training_date = self.weekday_in(month, TRAINING_DAY_FIRST, 31);
            let reversed_on = training_date
                .checked_add_days(Days::new(self.rng.below(4)))
                .unwrap_or(training_date)
                .min(last_of(self.year, month));
            *drawn.entry((model.company, month)).or_default() += hours;
            extras.push(Redemption {
                provider,
                module,
                company: model.company,
                worker: model.worker,
                voucher_type: VoucherType::General,
                hours,
                training_date,
                reversal: Some(Reversal {
                    reversed_on,
                    reason: REVERSAL_REASONS[self.rng.index(REVERSAL_REASONS.len())],
                }),
            });
        }
        self.plan.redemptions.extend(extras);
    }

    /// General vouchers of `company` (whose issuances are `issuances`) paid by `month` and not
    /// drawn by the regular redemptions up to the end of `month`.
    fn free_general(&self, issuances: &[usize], company: usize, month: u32) -> i64 {
        let paid: i64 = issuances
            .iter()
            .map(|index| &self.plan.issuances[*index])
            .filter(|issuance| {
                issuance.voucher_type == VoucherType::General
                    && issuance.payment_date.month() <= month
            })
            .map(|issuance| i64::from(issuance.quantity))
            .sum();
        let drawn: i64 = self.demand[company]
            .range((VoucherType::General, 1)..=(VoucherType::General, month))
            .map(|(_, hours)| i64::from(*hours))
            .sum();
        paid - drawn
    }

    /// One usage code per company, provider, voucher type and month of training (and one more
    /// for the month's extra redemptions), holding the hours of its redemptions. Draws nothing
    /// from the generator, so the rest of the plan is the one it was before codes.
    fn usage_codes(&mut self) {
        type Key = (usize, usize, VoucherType, u32, bool);
        let mut codes: BTreeMap<Key, usize> = BTreeMap::new();
        let mut redemption_codes = Vec::with_capacity(self.plan.redemptions.len());
        for redemption in &self.plan.redemptions {
            let extra = redemption.reversal.is_some();
            let key = (
                redemption.company,
                redemption.provider,
                redemption.voucher_type,
                redemption.training_date.month(),
                extra,
            );
            let index = *codes.entry(key).or_insert_with(|| {
                self.plan.usage_codes.push(UsageCodeOrder {
                    company: redemption.company,
                    provider: redemption.provider,
                    voucher_type: redemption.voucher_type,
                    hours: 0,
                    period_from: redemption.training_date,
                    period_until: redemption.training_date,
                    extra,
                });
                self.plan.usage_codes.len() - 1
            });
            let code = &mut self.plan.usage_codes[index];
            code.hours += redemption.hours;
            code.period_from = code.period_from.min(redemption.training_date);
            code.period_until = code.period_until.max(redemption.training_date);
            redemption_codes.push(index);
        }
        self.plan.redemption_codes = redemption_codes;
    }

    /// At the end of each month, every provider is paid what it is owed.
    fn payouts(&mut self) {
        let mut owed: BTreeMap<(u32, usize), u32> = BTreeMap::new();
        for redemption in &self.plan.redemptions {
            if redemption.reversal.is_none() {
                *owed
                    .entry((redemption.training_date.month(), redemption.provider))
                    .or_default() += redemption.hours;
            }
        }
        for ((month, provider), hours) in owed {
            let payout_date = last_of(self.year, month);
            self.plan.payouts.push(Payout {
                provider,
                amount_eur: self.policy.face_value_eur * Decimal::from(hours),
                payout_date,
                payout_reference: format!(
                    "PAY-{}-{month:02}-{}",
                    self.year, self.plan.providers[provider].id
                ),
            });
        }
    }

    /// Companies that order register some days before their first payment.
    fn registration_dates(&mut self) {
        let mut first_payment: Vec<Option<NaiveDate>> = vec![None; self.plan.companies.len()];
        for issuance in &self.plan.issuances {
            let first = &mut first_payment[issuance.company];
            *first = Some(first.map_or(issuance.payment_date, |date: NaiveDate| {
                date.min(issuance.payment_date)
            }));
        }
        let earliest = ymd(self.year, 1, 2);
        for (company, first) in first_payment.into_iter().enumerate() {
            if let Some(first) = first {
                let registered_on = first
                    .checked_sub_days(Days::new(self.rng.below(45)))
                    .unwrap_or(first)
                    .max(earliest);
                self.plan.companies[company].registered_on = registered_on;
            }
        }
    }
}

const SIZE_CLASSES: [SizeClass; 6] = SizeClass::ALL;
/// Per mille of companies in each size class, in the order of [`SizeClass::ALL`]: mostly very
/// small and small companies, as in the scheme.
const SIZE_CLASS_WEIGHTS: [u32; 6] = [80, 320, 480, 60, 40, 20];

#[derive(Clone, Copy, Debug)]
struct Profile {
    size_class: SizeClass,
    legal_form: LegalForm,
    fte: Decimal,
    secondary_activity_months: u32,
    /// Most workers the company has trained in the year.
    workers_max: u32,
    /// How likely the company is to train one more worker.
    workers_weight: u32,
}

impl Profile {
    fn fte(size_class: SizeClass, fte: u32) -> Profile {
        Profile {
            size_class,
            legal_form: LegalForm::CommercialCompany,
            fte: Decimal::from(fte),
            secondary_activity_months: 0,
            workers_max: (fte / 3 + 2).min(80),
            workers_weight: 3 + fte / 2,
        }
    }
}

fn module(
    offer: &ThemeOffer,
    provider: usize,
    provider_id: &str,
    number: u32,
    approved_from: NaiveDate,
    rng: &mut SplitMix64,
) -> Module {
    let mut accepted_voucher_types = vec![VoucherType::General];
    if offer.voucher_type != VoucherType::General {
        accepted_voucher_types.push(offer.voucher_type);
    }
    let mut themes = vec![offer.theme];
    if offer.theme == Theme::Ai {
        themes.push(Theme::Digital);
    }
    Module {
        id: format!("{provider_id}-M{number:02}"),
        provider,
        title: offer.titles[rng.index(offer.titles.len())].to_owned(),
        hours_max: offer.hours[rng.index(offer.hours.len())],
        accepted_voucher_types,
        themes,
        approved_from,
    }
}

/// Who the company's `index`-th trainee is.
fn trainee_status(legal_form: LegalForm, index: u32, rng: &mut SplitMix64) -> TraineeStatus {
    match (legal_form, index) {
        (LegalForm::SelfEmployedSecondary, _) => TraineeStatus::SecondarySelfEmployed,
        (LegalForm::SelfEmployedMain, 0) => TraineeStatus::SelfEmployedManagerOrPartner,
        (LegalForm::SelfEmployedMain, _) => TraineeStatus::HelpingSpouse,
        _ => match rng.below(100) {
            0..=86 => TraineeStatus::Employee,
            87..=93 => TraineeStatus::TemporaryWorker,
            _ => TraineeStatus::SelfEmployedManagerOrPartner,
        },
    }
}
