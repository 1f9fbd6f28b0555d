//! Usage codes through the engine: the new events are stored, hashed and replayed like the
//! others; a restart from the checkpoint and a replay from position 1 give the same state and
//! projections; a checkpoint of the format before codes is refused cleanly and the state is
//! rebuilt from the log.

use ledger_domain::command::{CancelUsageCode, OrderUsageCode};
use ledger_domain::{Command, Event, Principal, Refusal, UsageCode, VoucherType};
use ledger_engine::{Recovered, SubmitError};
use ledger_projections::CodeStatus;
use uuid::Uuid;

use crate::support::*;

fn order(company: &ledger_domain::EnterpriseNumber, hours: u32) -> Command {
    Command::OrderUsageCode(OrderUsageCode {
        order_id: Uuid::new_v4(),
        enterprise_number: company.clone(),
        provider_id: id("AG-1"),
        module_id: None,
        voucher_type: VoucherType::General,
        hours,
        period_from: date("2025-06-01"),
        period_until: date("2025-06-30"),
    })
}

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

fn file(company: &ledger_domain::EnterpriseNumber, code: &UsageCode, hours: u32) -> Command {
    let Command::RedeemHours(mut command) = redeem(company, "AG-1", "M-1", 1, hours, "2025-06-10")
    else {
        unreachable!("redeem builds a RedeemHours")
    };
    command.usage_code = Some(code.clone());
    Command::RedeemHours(command)
}

/// A world with 20 vouchers; a code of 8 hours filed twice (5 + 3), a code of 4 cancelled.
async fn history_with_codes(engine: &ledger_engine::Engine) -> (UsageCode, UsageCode) {
    let company = enterprise(4_030_192);
    world(engine, &company, 20).await;
    let as_company = Principal::Company(company.clone());
    let used = code_of(&accept(engine, as_company.clone(), order(&company, 8)).await);
    let cancelled = code_of(&accept(engine, OPERATOR, order(&company, 4)).await);
    accept(engine, provider_principal("AG-1"), file(&company, &used, 5)).await;
    accept(engine, provider_principal("AG-1"), file(&company, &used, 3)).await;
    accept(
        engine,
        as_company,
        Command::CancelUsageCode(CancelUsageCode {
            code: cancelled.clone(),
            enterprise_number: company.clone(),
            reason: "postponed".to_owned(),
        }),
    )
    .await;
    (used, cancelled)
}

#[tokio::test]
async fn codes_survive_a_restart_and_a_rebuild_with_the_same_state_and_projections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-07-15");
    let engine = start(dir.path(), &clock);
    let (used, cancelled) = history_with_codes(&engine).await;
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    let codes = &before.1.usage_codes.codes;
    assert_eq!(codes[&used].status, CodeStatus::Used);
    assert_eq!(codes[&used].hours_filed, 8);
    assert_eq!(codes[&cancelled].status, CodeStatus::Cancelled);
    assert!(before.1.usage_codes.reserved_hours.is_empty());
    let head = engine.shutdown().await.expect("head");

    let engine = start(dir.path(), &clock);
    let after = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    assert_eq!(
        before, after,
        "the checkpoint and the tail give the same state"
    );
    engine.shutdown().await;
    let report = ledger_engine::rebuild(dir.path()).expect("rebuilds");
    assert_eq!(report.head, head);
    assert_eq!(report.matches_checkpoint, Some(true));
}

#[tokio::test]
async fn a_refused_filing_writes_nothing_and_a_used_up_code_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-07-15");
    let engine = start(dir.path(), &clock);
    let (used, _) = history_with_codes(&engine).await;
    let company = enterprise(4_030_192);
    let head = engine.handle().head().await.expect("head");
    let refused = engine
        .handle()
        .submit(
            Uuid::new_v4(),
            provider_principal("AG-1"),
            file(&company, &used, 1),
        )
        .await;
    assert!(
        matches!(refused, Err(SubmitError::Refused(Refusal::UsageCodeUsedUp))),
        "{refused:?}"
    );
    assert_eq!(engine.handle().head().await.expect("head"), head);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_of_the_format_before_codes_is_refused_and_the_state_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-07-15");
    let engine = start(dir.path(), &clock);
    history_with_codes(&engine).await;
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    engine.shutdown().await;

    // The same body under the previous format's number, with a sound digest.
    {
        let store = retry_while_locked(|| ledger_store::Store::open(dir.path()));
        let checkpoint = store
            .load_checkpoint()
            .expect("reads")
            .expect("a checkpoint at shutdown");
        let mut bytes = checkpoint.bytes.clone();
        assert!(Recovered::from_checkpoint(&bytes).is_some());
        bytes[0] -= 1;
        assert!(Recovered::from_checkpoint(&bytes).is_none());
        store
            .checkpoint_file()
            .save(&checkpoint.head, &bytes)
            .expect("saves");
    }
    let engine = start(dir.path(), &clock);
    let after = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    assert_eq!(before, after, "rebuilt from the log, not misread");
    engine.shutdown().await;
}
