//! Projections as of a business date (docs/RULES.md §21): the whole log folded in position
//! order, an event applied only when its business date is on or before the day and what it
//! builds on was applied too.

use ledger_domain::command::{OrderUsageCode, ReverseRedemption};
use ledger_domain::{Command, Event, Principal, UsageCode, VoucherType};
use ledger_engine::business_date::projections_as_of_business_date;
use ledger_projections::Projections;
use uuid::Uuid;

use crate::support::*;

fn code_of(outcome: &ledger_engine::Outcome) -> UsageCode {
    let event = outcome
        .events
        .first()
        .and_then(|recorded| recorded.event.payload.as_ref())
        .map(|payload| ledger_codec::decode_event(payload).expect("decodes"));
    match event {
        Some(Event::UsageCodeOrdered(ordered)) => ordered.code,
        other => panic!("expected a UsageCodeOrdered, got {other:?}"),
    }
}

fn redemption_id_of(command: &Command) -> Uuid {
    match command {
        Command::RedeemHours(redeem) => redeem.redemption_id,
        other => panic!("not a redemption: {other:?}"),
    }
}

fn hours_2025(projections: &Projections) -> u64 {
    projections
        .years
        .get(&2025)
        .map(|year| year.hours.total)
        .unwrap_or_default()
}

/// On 2025-07-15 (the day the budget is opened and a code for June is ordered): a filing of a
/// training of 2025-06-10 against the code (5 hours), a redemption without a code of
/// 2025-06-20 (3 hours); on 2025-07-20, the filing reversed as of 2025-07-01.
#[tokio::test]
async fn a_filing_counts_once_its_code_counts_and_a_reversal_once_its_redemption_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-07-15");
    let engine = start(dir.path(), &clock);
    let company = enterprise(4_030_192);
    world(&engine, &company, 20).await;
    let code = code_of(
        &accept(
            &engine,
            Principal::Company(company.clone()),
            Command::OrderUsageCode(OrderUsageCode {
                order_id: Uuid::new_v4(),
                enterprise_number: company.clone(),
                provider_id: id("AG-1"),
                module_id: None,
                voucher_type: VoucherType::General,
                hours: 8,
                period_from: date("2025-06-01"),
                period_until: date("2025-06-30"),
            }),
        )
        .await,
    );
    let mut filing = redeem(&company, "AG-1", "M-1", 1, 5, "2025-06-10");
    if let Command::RedeemHours(command) = &mut filing {
        command.usage_code = Some(code.clone());
    }
    let filing_id = redemption_id_of(&filing);
    accept(&engine, provider_principal("AG-1"), filing).await;
    accept(
        &engine,
        provider_principal("AG-1"),
        redeem(&company, "AG-1", "M-1", 2, 3, "2025-06-20"),
    )
    .await;
    clock.set(noon("2025-07-20"));
    accept(
        &engine,
        provider_principal("AG-1"),
        Command::ReverseRedemption(ReverseRedemption {
            redemption_id: filing_id,
            provider_id: id("AG-1"),
            reason: "trainee absent".to_owned(),
            reversed_on: date("2025-07-01"),
        }),
    )
    .await;

    let handle = engine.handle();
    let live = handle
        .read(|view| view.projections.clone())
        .await
        .expect("read");
    let reader = handle.reader();
    let head = live.position;
    let on = |day: &str| projections_as_of_business_date(reader, date(day), head).expect("fold");

    // End of June: the redemption without a code counts; the filing does not, its code being
    // ordered on 2025-07-15; the budget, recorded on 2025-07-15, is not allocated yet.
    let june = on("2025-06-30");
    assert_eq!(june.position, head);
    assert_eq!(hours_2025(&june), 3);
    assert!(june
        .budgets
        .get(&2025)
        .is_none_or(|b| b.allocated_eur.is_zero()));
    assert!(june.trial_balance_total_eur().is_zero());
    // Early July: the reversal is dated, but its redemption does not count yet, so neither does
    // it (the projections would otherwise take back hours they never counted).
    assert_eq!(hours_2025(&on("2025-07-05")), 3);
    // From the order's day, the filing and its reversal both count: 5 - 5 + 3.
    let ordered = on("2025-07-15");
    assert_eq!(hours_2025(&ordered), 3);
    assert!(ordered
        .budgets
        .get(&2025)
        .is_some_and(|b| !b.allocated_eur.is_zero()));
    // After every event's date, the fold is the live projections, byte for byte.
    assert_eq!(on("2025-12-31").to_bytes(), live.to_bytes());
    engine.shutdown().await;
}

/// The reversal dated on the filing's own day (both counting from the code's order): between
/// the training day and the order, neither counts; a day before the training, nothing does.
#[tokio::test]
async fn nothing_dated_after_the_day_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-07-15");
    let engine = start(dir.path(), &clock);
    let company = enterprise(4_030_192);
    world(&engine, &company, 20).await;
    accept(
        &engine,
        provider_principal("AG-1"),
        redeem(&company, "AG-1", "M-1", 1, 4, "2025-05-02"),
    )
    .await;
    let handle = engine.handle();
    let head = handle.head().await.expect("head").position;
    let reader = handle.reader();
    let before_payment =
        projections_as_of_business_date(reader, date("2025-03-09"), head).expect("fold");
    assert!(!before_payment.wallets.contains_key(&company));
    assert_eq!(hours_2025(&before_payment), 0);
    let paid = projections_as_of_business_date(reader, date("2025-03-10"), head).expect("fold");
    assert_eq!(
        paid.wallets
            .get(&company)
            .map(|w| w.balance(VoucherType::General)),
        Some(20)
    );
    let trained = projections_as_of_business_date(reader, date("2025-05-02"), head).expect("fold");
    assert_eq!(
        (
            hours_2025(&trained),
            trained
                .wallets
                .get(&company)
                .map(|w| w.balance(VoucherType::General))
        ),
        (4, Some(16))
    );
    engine.shutdown().await;
}
