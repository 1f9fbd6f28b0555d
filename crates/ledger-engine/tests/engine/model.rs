//! Model-based property test: random sequences of commands, with retries under the same
//! request id, reuse of an id for other content, reversals, expiries, payouts and restarts,
//! run through the real engine and store and compared with a small reference model.
//!
//! The world is chosen so that the model stays small: payments fall in January to March 2025,
//! trainings in April to June 2025 (every voucher is valid on every training date), and an
//! expiry run is dated 2026-04-01, after every batch's validity, so it empties every wallet.

use std::sync::Arc;

use ledger_domain::command::{ExpireVouchers, RecordPayout, ReverseRedemption};
use ledger_domain::{Command, Event, Principal, Refusal, VoucherType};
use ledger_engine::{Engine, ManualClock, Outcome, SubmitError};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::support::*;

/// Budget of the model's year: room for 700 vouchers, less than the two quotas together, so
/// that sequences reach both the quota and the budget edge.
const BUDGET_VOUCHERS: u32 = 700;
/// The companies' quota (2 to 50 FTE, general vouchers).
const QUOTA: u32 = 400;

#[derive(Clone, Debug)]
enum Step {
    Issue {
        company: usize,
        quantity: u32,
        month: u32,
    },
    Redeem {
        company: usize,
        worker: u8,
        hours: u32,
        day: u32,
    },
    /// Redemptions sent in one `submit_batch`: decided in order, each as if alone.
    RedeemBatch {
        items: Vec<(usize, u8, u32, u32)>,
    },
    Reverse {
        pick: usize,
    },
    Expire,
    Payout {
        cents: u32,
    },
    RetryLast,
    ReuseLastIdForOtherContent,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize, 1..200u32, 1..=3u32).prop_map(|(company, quantity, month)| Step::Issue { company, quantity, month }),
        6 => (0..2usize, 0..6u8, 1..40u32, 1..=28u32).prop_map(|(company, worker, hours, day)| Step::Redeem { company, worker, hours, day }),
        2 => prop::collection::vec((0..2usize, 0..6u8, 1..40u32, 1..=28u32), 1..12)
            .prop_map(|items| Step::RedeemBatch { items }),
        2 => any::<usize>().prop_map(|pick| Step::Reverse { pick }),
        1 => Just(Step::Expire),
        2 => (1..200_000u32).prop_map(|cents| Step::Payout { cents }),
        2 => Just(Step::RetryLast),
        1 => Just(Step::ReuseLastIdForOtherContent),
        1 => Just(Step::Restart),
    ]
}

#[derive(Clone, Debug)]
struct ModelRedemption {
    id: Uuid,
    company: usize,
    hours: u32,
    reversed: bool,
}

/// What the model expects, kept in whole vouchers and cents.
#[derive(Debug, Default)]
struct Model {
    issued: [u32; 2],
    usable: [u32; 2],
    expired_total: u32,
    redemptions: Vec<ModelRedemption>,
    owed_cents: u64,
}

impl Model {
    fn redeemed_net(&self) -> u32 {
        self.redemptions
            .iter()
            .filter(|r| !r.reversed)
            .map(|r| r.hours)
            .sum()
    }

    /// Vouchers whose Region share is committed or spent: issued and not expired.
    fn budget_used(&self) -> u32 {
        self.issued.iter().sum::<u32>() - self.expired_total
    }
}

struct Run {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    engine: Option<Engine>,
    companies: [ledger_domain::EnterpriseNumber; 2],
    last: Option<(Uuid, Principal, Command)>,
}

impl Run {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine running")
    }

    async fn submit(
        &mut self,
        principal: Principal,
        command: Command,
    ) -> Result<Outcome, SubmitError> {
        let request_id = Uuid::new_v4();
        self.last = Some((request_id, principal.clone(), command.clone()));
        self.engine()
            .handle()
            .submit(request_id, principal, command)
            .await
    }
}

/// Checks a redemption's answer against the model, and follows it in the model when accepted.
fn model_redemption(
    model: &mut Model,
    company: usize,
    hours: u32,
    answer: &Result<Outcome, SubmitError>,
) -> Result<(), TestCaseError> {
    let expected = (model.usable[company] < hours).then_some("INSUFFICIENT_VOUCHERS");
    check_answer(answer, expected)?;
    if let Ok(outcome) = answer {
        let Ok(Event::HoursRedeemed(event)) = ledger_engine::decode(&outcome.events[0]) else {
            return Err(TestCaseError::fail("a redemption records HoursRedeemed"));
        };
        prop_assert_eq!(event.draws.iter().map(|d| d.quantity).sum::<u32>(), hours);
        model.usable[company] -= hours;
        model.owed_cents += u64::from(hours) * 3000;
        model.redemptions.push(ModelRedemption {
            id: event.redemption_id,
            company,
            hours,
            reversed: false,
        });
    }
    Ok(())
}

fn month_date(month: u32, day: u32) -> String {
    format!("2025-{month:02}-{day:02}")
}

async fn run_case(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2026-06-30");
    let engine = start(dir.path(), &clock);
    let companies = [enterprise(4_030_192), enterprise(12_345_678)];
    accept(
        &engine,
        ADMIN,
        open_budget(2025, &format!("{}.00", 15 * BUDGET_VOUCHERS)),
    )
    .await;
    accept(&engine, ADMIN, approve_provider("AG-1")).await;
    accept(&engine, ADMIN, approve_module("M-1", "AG-1", 2000)).await;
    for company in &companies {
        accept(&engine, OPERATOR, register(company, 2025, "10")).await;
    }
    let mut run = Run {
        dir,
        clock,
        engine: Some(engine),
        companies,
        last: None,
    };
    let mut model = Model::default();
    // The projections' bytes after each step, by position, to check point-in-time replays.
    let mut history: Vec<(u64, Vec<u8>)> = Vec::new();
    let provider = provider_principal("AG-1");

    for step in steps {
        let head_before = run.engine().handle().head().await.expect("head");
        match step {
            Step::Issue {
                company,
                quantity,
                month,
            } => {
                let command = issue(&run.companies[company], quantity, &month_date(month, 10));
                let answer = run.submit(OPERATOR, command).await;
                let expected = if model.issued[company] + quantity > QUOTA {
                    Some("QUOTA_EXCEEDED")
                } else if model.budget_used() + quantity > BUDGET_VOUCHERS {
                    Some("BUDGET_EXHAUSTED")
                } else {
                    None
                };
                check_answer(&answer, expected)?;
                if answer.is_ok() {
                    model.issued[company] += quantity;
                    model.usable[company] += quantity;
                }
            }
            Step::Redeem {
                company,
                worker: who,
                hours,
                day,
            } => {
                let command = redeem(
                    &run.companies[company],
                    "AG-1",
                    "M-1",
                    who,
                    hours,
                    &month_date(4 + day % 3, day),
                );
                let answer = run.submit(provider.clone(), command).await;
                model_redemption(&mut model, company, hours, &answer)?;
            }
            Step::RedeemBatch { items } => {
                let batch: Vec<(Uuid, Principal, Command)> = items
                    .iter()
                    .map(|&(company, who, hours, day)| {
                        let command = redeem(
                            &run.companies[company],
                            "AG-1",
                            "M-1",
                            who,
                            hours,
                            &month_date(4 + day % 3, day),
                        );
                        (Uuid::new_v4(), provider.clone(), command)
                    })
                    .collect();
                run.last = batch.last().cloned();
                let before = run.engine().handle().stats();
                let answers = run
                    .engine()
                    .handle()
                    .submit_batch(batch)
                    .await
                    .map_err(|error| TestCaseError::fail(format!("batch: {error}")))?;
                prop_assert_eq!(answers.len(), items.len());
                prop_assert_eq!(
                    run.engine().handle().stats().since(&before).groups,
                    1,
                    "a batch is one group"
                );
                for (&(company, _, hours, _), answer) in items.iter().zip(&answers) {
                    model_redemption(&mut model, company, hours, answer)?;
                }
            }
            Step::Reverse { pick } => {
                if model.redemptions.is_empty() {
                    continue;
                }
                let index = pick % model.redemptions.len();
                let target = model.redemptions[index].clone();
                let command = Command::ReverseRedemption(ReverseRedemption {
                    redemption_id: target.id,
                    provider_id: id("AG-1"),
                    reason: "training cancelled".into(),
                    reversed_on: date("2026-06-01"),
                });
                let answer = run.submit(provider.clone(), command).await;
                let amount_cents = u64::from(target.hours) * 3000;
                let expected = if target.reversed {
                    Some("REDEMPTION_ALREADY_REVERSED")
                } else if model.owed_cents < amount_cents {
                    Some("PROVIDER_BALANCE_TOO_LOW")
                } else {
                    None
                };
                check_answer(&answer, expected)?;
                if answer.is_ok() {
                    model.redemptions[index].reversed = true;
                    model.usable[target.company] += target.hours;
                    model.owed_cents -= amount_cents;
                }
            }
            Step::Expire => {
                let command = Command::ExpireVouchers(ExpireVouchers {
                    as_of: date("2026-04-01"),
                });
                let answer = run.submit(OPERATOR, command).await;
                check_answer(&answer, None)?;
                model.expired_total += model.usable.iter().sum::<u32>();
                model.usable = [0, 0];
            }
            Step::Payout { cents } => {
                let command = Command::RecordPayout(RecordPayout {
                    provider_id: id("AG-1"),
                    amount_eur: Decimal::new(i64::from(cents), 2),
                    payout_date: date("2026-05-01"),
                    payout_reference: "payout".into(),
                });
                let answer = run.submit(OPERATOR, command).await;
                let expected =
                    (u64::from(cents) > model.owed_cents).then_some("PROVIDER_BALANCE_TOO_LOW");
                check_answer(&answer, expected)?;
                if answer.is_ok() {
                    model.owed_cents -= u64::from(cents);
                }
            }
            Step::RetryLast => {
                let Some((request_id, principal, command)) = run.last.clone() else {
                    continue;
                };
                let recorded = run
                    .engine()
                    .handle()
                    .read(move |view| view.store.request(request_id))
                    .await
                    .expect("read");
                let answer = run
                    .engine()
                    .handle()
                    .submit(request_id, principal, command)
                    .await;
                match recorded.expect("request records readable") {
                    // Accepted the first time: the same outcome, nothing written.
                    Some(stored) => {
                        let outcome = answer
                            .map_err(|e| TestCaseError::fail(format!("retry refused: {e}")))?;
                        prop_assert!(outcome.replayed);
                        prop_assert_eq!(outcome.first_position, stored.first_position);
                        prop_assert_eq!(
                            run.engine().handle().head().await.expect("head"),
                            head_before
                        );
                    }
                    // Refused the first time: nothing was recorded, so the retry is decided anew;
                    // the model's answer is not predicted here, only that it stays consistent.
                    None => {
                        if answer.is_ok() {
                            return Err(TestCaseError::reject(
                                "a refused command accepted on retry changes the model",
                            ));
                        }
                    }
                }
            }
            Step::ReuseLastIdForOtherContent => {
                let Some((request_id, principal, _)) = run.last.clone() else {
                    continue;
                };
                let recorded = run
                    .engine()
                    .handle()
                    .read(move |view| view.store.request(request_id))
                    .await
                    .expect("read");
                if recorded.expect("request records readable").is_none() {
                    continue;
                }
                // Other content that the same principal may send, so that the refusal comes
                // from the request id and not from a permission check.
                let other = match &principal {
                    Principal::Provider(provider_id) => {
                        Command::ReverseRedemption(ReverseRedemption {
                            redemption_id: Uuid::new_v4(),
                            provider_id: provider_id.clone(),
                            reason: "other content".into(),
                            reversed_on: date("2026-06-01"),
                        })
                    }
                    _ => Command::ExpireVouchers(ExpireVouchers {
                        as_of: date("2026-01-01"),
                    }),
                };
                let answer = run
                    .engine()
                    .handle()
                    .submit(request_id, principal, other)
                    .await;
                prop_assert!(
                    matches!(answer, Err(SubmitError::Refused(Refusal::RequestIdReused))),
                    "{:?}",
                    answer
                );
                prop_assert_eq!(
                    run.engine().handle().head().await.expect("head"),
                    head_before
                );
            }
            Step::Restart => {
                let before = run
                    .engine()
                    .handle()
                    .read(|view| {
                        (
                            view.state.clone(),
                            view.projections.to_bytes(),
                            view.store.head(),
                        )
                    })
                    .await
                    .expect("read");
                let engine = run.engine.take().expect("engine running");
                engine.shutdown().await;
                let engine = start(run.dir.path(), &run.clock);
                let after = engine
                    .handle()
                    .read(|view| {
                        (
                            view.state.clone(),
                            view.projections.to_bytes(),
                            view.store.head(),
                        )
                    })
                    .await
                    .expect("read");
                prop_assert_eq!(&before, &after, "a restart rebuilds the same state");
                run.engine = Some(engine);
            }
        }
        check_invariants(&run, &model).await?;
        history.push(
            run.engine()
                .handle()
                .read(|view| (view.projections.position, view.projections.to_bytes()))
                .await
                .expect("read"),
        );
    }
    // As the ledger stood at several earlier positions: a replay to each gives the projections
    // the writer had then, byte for byte.
    let reader = run.engine().handle().reader().clone();
    for (position, bytes) in history.iter().step_by(5) {
        let replayed = ledger_engine::replay_to(&reader, *position)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            &replayed.projections.to_bytes(),
            bytes,
            "as of position {}",
            position
        );
    }
    if let Some(engine) = run.engine.take() {
        engine.shutdown().await;
    }
    Ok(())
}

fn check_answer(
    answer: &Result<Outcome, SubmitError>,
    expected_refusal: Option<&str>,
) -> Result<(), TestCaseError> {
    match (answer, expected_refusal) {
        (Ok(_), None) => Ok(()),
        (Err(SubmitError::Refused(refusal)), Some(reason)) if refusal.reason() == reason => Ok(()),
        (answer, expected) => Err(TestCaseError::fail(format!(
            "expected {expected:?}, got {answer:?}"
        ))),
    }
}

async fn check_invariants(run: &Run, model: &Model) -> Result<(), TestCaseError> {
    let companies = run.companies.clone();
    let (state, projections, rebuilt) = run
        .engine()
        .handle()
        .read(|view| {
            let rebuilt =
                ledger_engine::replay_to(&view.store.reader(), view.store.head().position)
                    .map_err(|e| e.to_string());
            (view.state.clone(), view.projections.clone(), rebuilt)
        })
        .await
        .expect("read");
    let rebuilt = rebuilt.map_err(TestCaseError::fail)?;
    prop_assert_eq!(
        &rebuilt.state,
        &state,
        "a replay from position 1 gives the same state"
    );
    prop_assert_eq!(
        rebuilt.projections.to_bytes(),
        projections.to_bytes(),
        "a rebuild from position 1 gives byte-identical projections"
    );
    prop_assert_eq!(
        projections.trial_balance_total_eur(),
        Decimal::ZERO,
        "the projected trial balance is zero"
    );

    prop_assert_eq!(
        state.trial_balance_eur(),
        Decimal::ZERO,
        "the trial balance is zero"
    );
    for (index, company) in companies.iter().enumerate() {
        let wallet = &state.companies[company];
        prop_assert_eq!(
            wallet.balance(VoucherType::General),
            model.usable[index],
            "wallet of company {}",
            index
        );
        for batch in wallet.batches.values() {
            prop_assert!(
                batch.remaining <= batch.quantity,
                "a batch never holds more than it was issued"
            );
        }
    }
    // Every voucher that left a wallet left it once: redeemed (not reversed) or expired.
    let left: u32 = state
        .companies
        .values()
        .flat_map(|company| company.batches.values())
        .map(|batch| batch.quantity - batch.remaining)
        .sum();
    prop_assert_eq!(
        left,
        model.redeemed_net() + model.expired_total,
        "no voucher is spent twice"
    );
    let budget = &state.budgets[&2025];
    prop_assert!(
        budget.committed_eur + budget.spent_eur <= budget.allocated_eur,
        "the budget is never exceeded"
    );
    prop_assert!(budget.committed_eur >= Decimal::ZERO && budget.spent_eur >= Decimal::ZERO);
    prop_assert_eq!(
        budget.committed_eur + budget.spent_eur,
        Decimal::from(model.budget_used() * 15)
    );
    let owed = state.providers[&id("AG-1")].owed_eur;
    prop_assert_eq!(
        owed,
        Decimal::new(model.owed_cents as i64, 2),
        "provider owed"
    );
    prop_assert!(owed >= Decimal::ZERO);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_invariant(steps in proptest::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(run_case(steps))?;
    }
}
