//! Durability, idempotency and replay through the engine.

use ledger_domain::command::{ExpireVouchers, RecordPayout, ReverseRedemption};
use ledger_domain::{Command, Refusal};
use ledger_engine::SubmitError;
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn accepted_commands_survive_a_restart_with_the_same_state_and_head() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 20).await;
    let redeemed = accept(
        &engine,
        provider_principal("AG-1"),
        redeem(&company, "AG-1", "M-1", 1, 5, "2025-06-01"),
    )
    .await;
    assert_eq!(redeemed.events.len(), 1);
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.store.head()))
        .await
        .expect("read");
    engine.shutdown().await;

    let engine = start(dir.path(), &clock);
    let after = engine
        .handle()
        .read(|view| (view.state.clone(), view.store.head()))
        .await
        .expect("read");
    assert_eq!(
        before, after,
        "replaying the log rebuilds the same state and head"
    );
    let wallet = after.0.companies.get(&company).expect("company known");
    assert_eq!(wallet.balance(ledger_domain::VoucherType::General), 15);
    assert_eq!(after.1.position, 6);
    assert_eq!(after.0.trial_balance_eur(), eur("0"));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_retry_returns_the_original_outcome_and_writes_nothing_even_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 0).await;
    let request_id = Uuid::new_v4();
    let command = issue(&company, 10, "2025-03-10");
    let first = engine
        .handle()
        .submit(request_id, OPERATOR, command.clone())
        .await
        .expect("issued");
    assert!(!first.replayed);
    let retry = engine
        .handle()
        .submit(request_id, OPERATOR, command.clone())
        .await
        .expect("retried");
    assert!(retry.replayed);
    assert_eq!(retry.first_position, first.first_position);
    assert_eq!(
        retry.events.iter().map(|e| e.hash).collect::<Vec<_>>(),
        first.events.iter().map(|e| e.hash).collect::<Vec<_>>()
    );
    let head = engine.handle().head().await.expect("head");
    engine.shutdown().await;

    let engine = start(dir.path(), &clock);
    let after_restart = engine
        .handle()
        .submit(request_id, OPERATOR, command)
        .await
        .expect("retried after restart");
    assert!(after_restart.replayed);
    assert_eq!(after_restart.first_position, first.first_position);
    assert_eq!(
        engine.handle().head().await.expect("head"),
        head,
        "a retry writes nothing"
    );
    let balance = engine
        .handle()
        .read(move |view| {
            view.state
                .companies
                .get(&company)
                .map(|c| c.balance(ledger_domain::VoucherType::General))
        })
        .await
        .expect("read");
    assert_eq!(balance, Some(10), "the vouchers were issued once");
    engine.shutdown().await;
}

#[tokio::test]
async fn the_same_request_id_with_other_content_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 0).await;
    let request_id = Uuid::new_v4();
    engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 10, "2025-03-10"))
        .await
        .expect("issued");
    let head = engine.handle().head().await.expect("head");
    let other = engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 11, "2025-03-10"))
        .await;
    assert!(
        matches!(other, Err(SubmitError::Refused(Refusal::RequestIdReused))),
        "{other:?}"
    );
    assert_eq!(engine.handle().head().await.expect("head"), head);
    engine.shutdown().await;

    let engine = start(dir.path(), &clock);
    let other = engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 12, "2025-03-10"))
        .await;
    assert!(
        matches!(other, Err(SubmitError::Refused(Refusal::RequestIdReused))),
        "{other:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_refused_command_writes_nothing_and_its_request_id_stays_free() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 0).await;
    let head = engine.handle().head().await.expect("head");
    let request_id = Uuid::new_v4();
    let too_many = engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 401, "2025-03-10"))
        .await;
    assert!(
        matches!(
            too_many,
            Err(SubmitError::Refused(Refusal::QuotaExceeded {
                quota: 400,
                ..
            }))
        ),
        "{too_many:?}"
    );
    assert_eq!(engine.handle().head().await.expect("head"), head);
    let corrected = engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 400, "2025-03-10"))
        .await;
    assert!(corrected.is_ok(), "{corrected:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn permission_is_checked_before_the_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 10).await;
    let as_other_provider = engine
        .handle()
        .submit(
            Uuid::new_v4(),
            provider_principal("AG-2"),
            redeem(&company, "AG-1", "M-1", 1, 1, "2025-06-01"),
        )
        .await;
    assert!(
        matches!(
            as_other_provider,
            Err(SubmitError::Refused(Refusal::PermissionDenied { .. }))
        ),
        "{as_other_provider:?}"
    );
    let as_auditor = engine
        .handle()
        .submit(
            Uuid::new_v4(),
            ledger_domain::Principal::Auditor,
            open_budget(2026, "1.00"),
        )
        .await;
    assert!(
        matches!(
            as_auditor,
            Err(SubmitError::Refused(Refusal::PermissionDenied { .. }))
        ),
        "{as_auditor:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_whole_year_balances_and_replays_identically() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2026-09-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 30).await;
    let redeemed = accept(
        &engine,
        provider_principal("AG-1"),
        redeem(&company, "AG-1", "M-1", 1, 8, "2025-05-01"),
    )
    .await;
    let ledger_domain::Event::HoursRedeemed(redemption) =
        ledger_engine::decode(&redeemed.events[0]).expect("decodes")
    else {
        panic!("a redemption records HoursRedeemed")
    };
    accept(
        &engine,
        provider_principal("AG-1"),
        redeem(&company, "AG-1", "M-1", 2, 4, "2025-05-02"),
    )
    .await;
    accept(
        &engine,
        provider_principal("AG-1"),
        Command::ReverseRedemption(ReverseRedemption {
            redemption_id: redemption.redemption_id,
            provider_id: id("AG-1"),
            reason: "training cancelled".into(),
            reversed_on: date("2025-05-03"),
        }),
    )
    .await;
    accept(
        &engine,
        OPERATOR,
        Command::RecordPayout(RecordPayout {
            provider_id: id("AG-1"),
            amount_eur: eur("120.00"),
            payout_date: date("2025-06-01"),
            payout_reference: "payout 1".into(),
        }),
    )
    .await;
    // Paid 2025-03-10, valid until 2026-02-28: expired on 2026-03-01.
    let expired = accept(
        &engine,
        OPERATOR,
        Command::ExpireVouchers(ExpireVouchers {
            as_of: date("2026-03-01"),
        }),
    )
    .await;
    assert_eq!(expired.events.len(), 1);
    let nothing_due = accept(
        &engine,
        OPERATOR,
        Command::ExpireVouchers(ExpireVouchers {
            as_of: date("2026-03-01"),
        }),
    )
    .await;
    assert!(
        nothing_due.events.is_empty(),
        "an expiry run with nothing due records no event"
    );

    let (state, head) = engine
        .handle()
        .read(|view| (view.state.clone(), view.store.head()))
        .await
        .expect("read");
    assert_eq!(state.trial_balance_eur(), eur("0"));
    let budget = &state.budgets[&2025];
    assert_eq!(budget.committed_eur, eur("0.00"));
    assert_eq!(
        budget.spent_eur,
        eur("60.00"),
        "4 hours redeemed at EUR 15.00 region share"
    );
    assert_eq!(budget.released_eur, eur("390.00"), "26 vouchers expired");
    assert_eq!(state.providers[&id("AG-1")].owed_eur, eur("0.00"));
    engine.shutdown().await;

    let store = ledger_store::Store::open(dir.path()).expect("reopen");
    assert_eq!(store.verify().expect("readable"), Ok(head));
    assert_eq!(ledger_engine::replay(&store).expect("replays"), state);
}
