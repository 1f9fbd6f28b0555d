//! The planner's promises, each checked on the plan alone, independently of
//! [`Plan::check`]; and one run of a whole plan through the domain's own rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use ledger_domain::command::{
    ApproveModule, ApproveProvider, ExpireVouchers, IssueVouchers, OpenBudget, OrderUsageCode,
    RecordPayout, RedeemHours, RegisterCompany, ReverseRedemption,
};
use ledger_domain::event::Event;
use ledger_domain::{
    decide, Command, Context, EnterpriseNumber, Identifier, LedgerState, NationalNumber, Policy,
    PolicyTable, PseudonymKey, Region, UsageCode, VoucherType,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{plan, Plan, PlanError, Targets};

const POLICY_TOML: &str = include_str!("../../../../../config/policy.toml");

fn policy_table() -> PolicyTable {
    PolicyTable::from_toml_str(POLICY_TOML).expect("config/policy.toml is valid")
}

fn policy_2024(table: &PolicyTable) -> Policy {
    table
        .in_force(date(2024, 1, 1))
        .expect("a policy is in force in 2024")
        .clone()
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

fn plan_of(seed: u64, scale: u32) -> Plan {
    let policy = policy_2024(&policy_table());
    plan(2024, seed, Targets::PUBLISHED_2024.scaled(scale), &policy)
        .unwrap_or_else(|error| panic!("seed {seed}, scale {scale}: {error}"))
}

/// The seeds and scales every promise is checked on, planned once for all the tests.
fn plans() -> &'static [(u64, u32, Plan)] {
    static PLANS: OnceLock<Vec<(u64, u32, Plan)>> = OnceLock::new();
    PLANS.get_or_init(|| {
        [(1, 1), (7, 40), (2024, 40), (3, 250), (11, 9_539)]
            .into_iter()
            .map(|(seed, scale)| (seed, scale, plan_of(seed, scale)))
            .collect()
    })
}

#[test]
fn targets_divide_by_the_scale() {
    let published = Targets::PUBLISHED_2024;
    assert_eq!(published.scaled(1), published);
    assert_eq!(
        published.scaled(40),
        Targets {
            budget_cents: 19_142_500,
            companies_benefiting: 238,
            workers_trained: 696,
            hours_trained: 12_401,
        }
    );
    // 7 657 000 / 64 = 119 640.625: half a cent goes up.
    assert_eq!(published.scaled(64).budget_cents, 11_964_063);
    // 7 657 000 / 3 = 2 552 333.333...
    assert_eq!(published.scaled(3).budget_cents, 255_233_333);
    assert_eq!(published.budget_eur(), Decimal::new(765_700_000, 2));
}

#[test]
fn a_scale_that_leaves_no_company_is_refused() {
    let policy = policy_2024(&policy_table());
    let targets = Targets::PUBLISHED_2024.scaled(9_540);
    assert!(matches!(
        plan(2024, 1, targets, &policy),
        Err(PlanError::NoCompany)
    ));
}

#[test]
fn plans_meet_their_targets_exactly() {
    for &(seed, scale, ref plan) in plans() {
        let targets = Targets::PUBLISHED_2024.scaled(scale);
        let trained: Vec<_> = plan
            .redemptions
            .iter()
            .filter(|r| r.reversal.is_none() && r.training_date.year() == 2024)
            .collect();
        let companies: BTreeSet<usize> = trained.iter().map(|r| r.company).collect();
        let workers: BTreeSet<&str> = trained
            .iter()
            .map(|r| plan.workers[r.worker].national_number.as_str())
            .collect();
        let hours: u64 = trained.iter().map(|r| u64::from(r.hours)).sum();
        let context = format!("seed {seed}, scale {scale}");
        assert_eq!(
            companies.len() as u32,
            targets.companies_benefiting,
            "{context}"
        );
        assert_eq!(workers.len() as u32, targets.workers_trained, "{context}");
        assert_eq!(hours, targets.hours_trained, "{context}");
        assert_eq!(
            plan.check(&policy_2024(&policy_table())),
            Ok(()),
            "{context}"
        );
    }
}

#[test]
fn every_company_stays_within_its_quotas() {
    let policy = policy_2024(&policy_table());
    for &(seed, scale, ref plan) in plans() {
        let mut issued: BTreeMap<(usize, VoucherType), u32> = BTreeMap::new();
        for issuance in &plan.issuances {
            *issued
                .entry((issuance.company, issuance.voucher_type))
                .or_default() += issuance.quantity;
        }
        for ((company, voucher_type), quantity) in issued {
            let quota = policy.quota(plan.companies[company].size_class, voucher_type);
            assert!(
                quantity <= quota,
                "seed {seed}, scale {scale}: company {company} has {quantity} \
                 {voucher_type:?} vouchers, quota {quota}"
            );
        }
    }
}

#[test]
fn vouchers_issued_cover_the_hours_redeemed_per_company_and_type() {
    for &(seed, scale, ref plan) in plans() {
        let mut balance: BTreeMap<(usize, VoucherType), i64> = BTreeMap::new();
        for issuance in &plan.issuances {
            *balance
                .entry((issuance.company, issuance.voucher_type))
                .or_default() += i64::from(issuance.quantity);
        }
        for redemption in plan.redemptions.iter().filter(|r| r.reversal.is_none()) {
            *balance
                .entry((redemption.company, redemption.voucher_type))
                .or_default() -= i64::from(redemption.hours);
        }
        assert!(
            balance.values().all(|left| *left >= 0),
            "seed {seed}, scale {scale}: a company redeems more than it bought"
        );
    }
}

#[test]
fn the_vouchers_issued_fit_the_budget() {
    for &(seed, scale, ref plan) in plans() {
        let issued: u64 = plan.issuances.iter().map(|i| u64::from(i.quantity)).sum();
        assert!(
            Decimal::from(issued) * plan.region_share_eur <= plan.targets.budget_eur(),
            "seed {seed}, scale {scale}: {issued} vouchers are over the budget"
        );
    }
}

#[test]
fn payments_precede_the_trainings_they_pay_for() {
    for &(seed, scale, ref plan) in plans() {
        let mut payments: BTreeMap<(usize, VoucherType), Vec<(NaiveDate, u32)>> = BTreeMap::new();
        for issuance in &plan.issuances {
            assert!(plan.companies[issuance.company].registered_on <= issuance.payment_date);
            payments
                .entry((issuance.company, issuance.voucher_type))
                .or_default()
                .push((issuance.payment_date, issuance.quantity));
        }
        // Every redemption finds enough vouchers paid strictly before its training day
        // (the cumulative version of this is in `Plan::check`).
        for redemption in &plan.redemptions {
            let paid_before: u32 = payments
                .get(&(redemption.company, redemption.voucher_type))
                .map_or(0, |payments| {
                    payments
                        .iter()
                        .filter(|(paid_on, _)| *paid_on < redemption.training_date)
                        .map(|(_, quantity)| *quantity)
                        .sum()
                });
            assert!(
                paid_before >= redemption.hours,
                "seed {seed}, scale {scale}: training on {} before its payment",
                redemption.training_date
            );
        }
    }
}

#[test]
fn no_redemption_is_longer_than_its_module() {
    for &(seed, scale, ref plan) in plans() {
        let mut followed: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        for redemption in &plan.redemptions {
            let hours_max = plan.modules[redemption.module].hours_max;
            assert!(
                (1..=hours_max).contains(&redemption.hours),
                "seed {seed}, scale {scale}"
            );
            *followed
                .entry((redemption.worker, redemption.module))
                .or_default() += redemption.hours;
        }
        for ((_, module), hours) in followed {
            assert!(
                hours <= plan.modules[module].hours_max,
                "seed {seed}, scale {scale}: a worker follows {hours} h of a module of {} h",
                plan.modules[module].hours_max
            );
        }
    }
}

#[test]
fn years_have_reversals_expiries_and_every_voucher_type() {
    for &(seed, scale, ref plan) in plans().iter().filter(|(_, scale, _)| *scale <= 40) {
        let totals = plan.totals();
        let context = format!("seed {seed}, scale {scale}");
        assert!(totals.reversals > 0, "{context}");
        assert!(totals.vouchers_expiring > 0, "{context}");
        assert!(totals.ai_modules > 0, "{context}");
        assert!(totals.companies_registered > totals.companies_holding_vouchers);
        assert!(totals.companies_holding_vouchers > totals.companies_benefiting);
        let types: BTreeSet<VoucherType> =
            plan.redemptions.iter().map(|r| r.voucher_type).collect();
        assert_eq!(types.len(), 3, "{context}");
        let months: BTreeSet<u32> = plan
            .issuances
            .iter()
            .map(|issuance| issuance.payment_date.month())
            .collect();
        assert_eq!(months.len(), 12, "{context}: orders in every month");
    }
}

#[test]
fn the_ai_offer_grows_85_percent_in_the_year() {
    let totals = plans()[0].2.totals();
    let before = f64::from(totals.ai_modules_before_year);
    let growth = (f64::from(totals.ai_modules) - before) / before;
    assert!((0.80..=0.90).contains(&growth), "{totals:?}");
}

#[test]
fn the_same_seed_gives_the_same_plan() {
    assert_eq!(plan_of(7, 40).digest(), plan_of(7, 40).digest());
    assert_eq!(plan_of(1, 1).digest(), plan_of(1, 1).digest());
    assert_ne!(plan_of(7, 40).digest(), plan_of(8, 40).digest());
}

/// The plan, sent phase by phase through the domain's `decide` and `apply` (no server), each
/// phase in reverse order and on the day the driver sends it (the 4th of the month for the
/// payments and the usage codes, the month's last day for the trainings): the plan's requests
/// pass the rules in any order, every redemption against its code within the code's grace, and
/// the budget's figures are the plan's, as they were before codes.
#[test]
fn a_plan_passes_the_ledger_rules_in_reverse_order_within_each_phase() {
    let table = policy_table();
    let plan = plan_of(7, 40);
    let mut ledger = Ledger {
        state: LedgerState::default(),
        context: Context {
            today: date(2024, 12, 31),
            policy: &table,
        },
        key: PseudonymKey::new(vec![7; 32]).expect("a key of 32 bytes"),
    };
    let mut codes: Vec<Option<UsageCode>> = vec![None; plan.usage_codes.len()];
    ledger.run(vec![Command::OpenBudget(OpenBudget {
        year: 2024,
        allocated_eur: plan.targets.budget_eur(),
    })]);
    ledger.run(
        plan.providers
            .iter()
            .map(|p| {
                Command::ApproveProvider(ApproveProvider {
                    provider_id: id(&p.id),
                    name: p.name.clone(),
                    approved_from: p.approved_from,
                    approved_until: None,
                })
            })
            .collect(),
    );
    ledger.run(
        plan.modules
            .iter()
            .map(|m| {
                Command::ApproveModule(ApproveModule {
                    module_id: id(&m.id),
                    provider_id: id(&plan.providers[m.provider].id),
                    title: m.title.clone(),
                    hours_max: m.hours_max,
                    accepted_voucher_types: m.accepted_voucher_types.clone(),
                    themes: m.themes.clone(),
                    approved_from: m.approved_from,
                    approved_until: None,
                })
            })
            .collect(),
    );
    ledger.run(
        plan.companies
            .iter()
            .map(|c| {
                Command::RegisterCompany(RegisterCompany {
                    enterprise_number: number(&c.enterprise_number),
                    year: 2024,
                    name: c.name.clone(),
                    legal_form: c.legal_form,
                    region: Region::WalloniaFrenchSpeaking,
                    fte: c.fte,
                    turnover_eur: c.turnover_eur,
                    balance_sheet_total_eur: c.balance_sheet_total_eur,
                    autonomous: true,
                    secondary_activity_months: c.secondary_activity_months,
                    nace_sector: c.nace_sector.to_owned(),
                    registered_on: c.registered_on,
                })
            })
            .collect(),
    );
    for month in 1..=12 {
        ledger.context.today = date(2024, month, 4);
        ledger.run(
            plan.issuances
                .iter()
                .filter(|i| i.payment_date.month() == month)
                .map(|i| {
                    Command::IssueVouchers(IssueVouchers {
                        batch_id: Uuid::new_v4(),
                        enterprise_number: number(&plan.companies[i.company].enterprise_number),
                        voucher_type: i.voucher_type,
                        quantity: i.quantity,
                        paid_amount_eur: plan.employer_share_eur * Decimal::from(i.quantity),
                        payment_date: i.payment_date,
                        payment_reference: i.payment_reference.clone(),
                    })
                })
                .collect(),
        );
        for extra in [false, true] {
            let indexes: Vec<usize> = (0..plan.usage_codes.len())
                .filter(|index| {
                    let code = &plan.usage_codes[*index];
                    code.period_from.month() == month && code.extra == extra
                })
                .collect();
            let events = ledger.run(
                indexes
                    .iter()
                    .map(|index| {
                        let code = &plan.usage_codes[*index];
                        Command::OrderUsageCode(OrderUsageCode {
                            order_id: Uuid::new_v4(),
                            enterprise_number: number(
                                &plan.companies[code.company].enterprise_number,
                            ),
                            provider_id: id(&plan.providers[code.provider].id),
                            module_id: None,
                            voucher_type: code.voucher_type,
                            hours: code.hours,
                            period_from: code.period_from,
                            period_until: code.period_until,
                        })
                    })
                    .collect(),
            );
            // `run` decides in reverse order: the last index's event comes first.
            for (index, event) in indexes.iter().rev().zip(events) {
                let Event::UsageCodeOrdered(ordered) = event else {
                    panic!("an order records its code");
                };
                codes[*index] = Some(ordered.code);
            }
        }
        ledger.context.today = last_of_month(2024, month);
        let codes = &codes;
        let of_month = |extra: bool| {
            plan.redemptions
                .iter()
                .zip(&plan.redemption_codes)
                .filter(move |(r, _)| {
                    r.training_date.month() == month && r.reversal.is_some() == extra
                })
                .map(|(r, code)| {
                    let worker = &plan.workers[r.worker];
                    RedeemHours {
                        redemption_id: Uuid::new_v4(),
                        provider_id: id(&plan.providers[r.provider].id),
                        module_id: id(&plan.modules[r.module].id),
                        enterprise_number: number(&plan.companies[r.company].enterprise_number),
                        worker: NationalNumber::parse(&worker.national_number)
                            .expect("a valid national number")
                            .pseudonymize(&ledger.key),
                        trainee_status: worker.trainee_status,
                        voucher_type: r.voucher_type,
                        hours: r.hours,
                        training_date: r.training_date,
                        usage_code: Some(codes[*code].clone().expect("the code was ordered")),
                    }
                })
                .collect::<Vec<_>>()
        };
        let regular = of_month(false);
        let extras = of_month(true);
        ledger.run(regular.into_iter().map(Command::RedeemHours).collect());
        ledger.run(extras.iter().cloned().map(Command::RedeemHours).collect());
        ledger.run(
            extras
                .iter()
                .map(|extra| {
                    Command::ReverseRedemption(ReverseRedemption {
                        redemption_id: extra.redemption_id,
                        provider_id: extra.provider_id.clone(),
                        reason: "training cancelled".to_owned(),
                        reversed_on: extra.training_date,
                    })
                })
                .collect(),
        );
        ledger.run(
            plan.payouts
                .iter()
                .filter(|p| p.payout_date.month() == month)
                .map(|p| {
                    Command::RecordPayout(RecordPayout {
                        provider_id: id(&plan.providers[p.provider].id),
                        amount_eur: p.amount_eur,
                        payout_date: p.payout_date,
                        payout_reference: p.payout_reference.clone(),
                    })
                })
                .collect(),
        );
    }
    ledger.context.today = plan.expire_as_of;
    ledger.run(vec![Command::ExpireVouchers(ExpireVouchers {
        as_of: plan.expire_as_of,
    })]);

    let totals = plan.totals();
    let budget = &ledger.state.budgets[&2024];
    let spent = plan.region_share_eur * Decimal::from(plan.targets.hours_trained);
    assert_eq!(budget.spent_eur, spent);
    assert_eq!(
        budget.released_eur,
        plan.region_share_eur * Decimal::from(totals.vouchers_expiring)
    );
    let outstanding =
        totals.vouchers_issued - plan.targets.hours_trained - totals.vouchers_expiring;
    assert_eq!(
        budget.committed_eur,
        plan.region_share_eur * Decimal::from(outstanding)
    );
}

struct Ledger<'a> {
    state: LedgerState,
    context: Context<'a>,
    key: PseudonymKey,
}

impl Ledger<'_> {
    /// Decides and applies `commands` in reverse order; their events, in that order.
    fn run(&mut self, mut commands: Vec<Command>) -> Vec<Event> {
        commands.reverse();
        let mut recorded = Vec::new();
        for command in commands {
            let events = decide(&self.state, &command, &self.context)
                .unwrap_or_else(|refusal| panic!("{} refused: {refusal:?}", command.action()));
            for event in &events {
                self.state.apply(event).expect("a decided event applies");
            }
            recorded.extend(events);
        }
        recorded
    }
}

fn last_of_month(year: i32, month: u32) -> NaiveDate {
    ledger_domain::policy::last_day_of_month_after(date(year, month, 1), 0)
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).expect("a valid identifier")
}

fn number(text: &str) -> EnterpriseNumber {
    EnterpriseNumber::parse(text).expect("a valid enterprise number")
}

#[test]
fn later_years_reuse_the_catalogue_and_never_an_earlier_company_or_worker() {
    let table = policy_table();
    let policy = policy_2024(&table);
    let targets = Targets::PUBLISHED_2024.scaled(40);
    let mut history = super::History::default();
    assert!(!history.has_catalogue());
    let mut companies = BTreeSet::new();
    let mut workers = BTreeSet::new();
    let mut catalogue = None;
    for (year, seed) in [(2016, 5), (2017, 6), (2018, 7)] {
        let plan = super::plan_after(year, seed, targets, &policy, &history)
            .unwrap_or_else(|error| panic!("{year}: {error}"));
        assert_eq!(plan.year, year);
        let totals = plan.totals();
        assert_eq!(totals.hours_trained, targets.hours_trained);
        assert_eq!(totals.workers_trained, targets.workers_trained);
        // The dates of the year, its own budget year.
        assert!(plan
            .issuances
            .iter()
            .all(|issuance| issuance.payment_date.year() == year));
        assert!(plan
            .redemptions
            .iter()
            .all(|redemption| redemption.training_date.year() == year));
        let ids: Vec<(String, NaiveDate)> = plan
            .modules
            .iter()
            .map(|module| (module.id.clone(), module.approved_from))
            .collect();
        match &catalogue {
            None => catalogue = Some(ids),
            Some(first) => assert_eq!(first, &ids, "{year} reuses the first year's catalogue"),
        }
        for company in &plan.companies {
            assert!(
                companies.insert(company.enterprise_number.clone()),
                "{} comes back in {year}",
                company.enterprise_number
            );
        }
        for worker in &plan.workers {
            assert!(
                workers.insert(worker.national_number.clone()),
                "a worker comes back in {year}"
            );
        }
        history.record(&plan);
        assert!(history.has_catalogue());
    }
}

#[test]
fn an_empty_history_gives_the_plan_of_one_year() {
    let policy = policy_2024(&policy_table());
    let targets = Targets::PUBLISHED_2024.scaled(40);
    let alone = plan(2024, 7, targets, &policy).expect("a plan");
    let after =
        super::plan_after(2024, 7, targets, &policy, &super::History::default()).expect("a plan");
    assert_eq!(alone.digest(), after.digest());
}
