//! Batches: many commands in one submission, decided in order, each on its own, in one group.

use std::sync::Arc;

use ledger_domain::{Command, Principal, Refusal, VoucherType};
use ledger_engine::{Engine, EngineConfig, Outcome, SubmitError};
use uuid::Uuid;

use crate::support::*;

fn provider() -> Principal {
    provider_principal("AG-1")
}

async fn balance(engine: &Engine, company: &ledger_domain::EnterpriseNumber) -> u32 {
    let company = company.clone();
    engine
        .handle()
        .read(move |view| view.state.companies[&company].balance(VoucherType::General))
        .await
        .expect("read")
}

fn accepted(answer: &Result<Outcome, SubmitError>) -> &Outcome {
    match answer {
        Ok(outcome) => outcome,
        Err(error) => panic!("expected an acceptance, got {error:?}"),
    }
}

#[tokio::test]
async fn a_batch_is_decided_in_order_in_one_group_and_a_refusal_refuses_no_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 5).await;
    let head_before = engine.handle().head().await.expect("head");
    let stats_before = engine.handle().stats();

    // Eight one-hour redemptions against five vouchers, the third for a module nobody
    // approved: it is refused, the next ones still go through until the wallet is empty.
    let mut batch: Vec<(Uuid, Principal, Command)> = (0..8u8)
        .map(|who| {
            (
                Uuid::new_v4(),
                provider(),
                redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01"),
            )
        })
        .collect();
    batch[2].2 = redeem(&company, "AG-1", "M-404", 2, 1, "2025-06-01");
    let ids: Vec<Uuid> = batch.iter().map(|(id, _, _)| *id).collect();
    let answers = engine
        .handle()
        .submit_batch(batch)
        .await
        .expect("the writer runs");

    assert_eq!(answers.len(), 8, "one answer per command");
    let mut positions = Vec::new();
    for (index, answer) in answers.iter().enumerate() {
        match (index, answer) {
            (2, Err(SubmitError::Refused(Refusal::ModuleNotFound))) => {}
            (0 | 1 | 3 | 4 | 5, Ok(outcome)) => {
                assert_eq!(
                    outcome.request_id, ids[index],
                    "answers keep the batch's order"
                );
                assert!(!outcome.replayed);
                positions.extend(outcome.events.iter().map(|event| event.position));
            }
            (
                6 | 7,
                Err(SubmitError::Refused(Refusal::InsufficientVouchers {
                    available: 0,
                    requested: 1,
                })),
            ) => {}
            (index, answer) => panic!("item {index}: unexpected answer {answer:?}"),
        }
    }
    let first = head_before.position + 1;
    assert_eq!(
        positions,
        (first..first + 5).collect::<Vec<u64>>(),
        "the accepted items' events follow the batch's order without a gap"
    );
    let stats = engine.handle().stats().since(&stats_before);
    assert_eq!(
        (stats.groups, stats.commands),
        (1, 8),
        "the batch is one group"
    );
    assert_eq!(balance(&engine, &company).await, 0);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_batch_sent_again_is_replayed_and_an_id_twice_in_a_batch_is_a_retry_or_a_reuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 10).await;

    let twice = Uuid::new_v4();
    let reused = Uuid::new_v4();
    let command = redeem(&company, "AG-1", "M-1", 1, 2, "2025-06-01");
    let batch = vec![
        (twice, provider(), command.clone()),
        (twice, provider(), command),
        (
            reused,
            provider(),
            redeem(&company, "AG-1", "M-1", 2, 1, "2025-06-01"),
        ),
        (
            reused,
            provider(),
            redeem(&company, "AG-1", "M-1", 3, 1, "2025-06-01"),
        ),
    ];
    let answers = engine
        .handle()
        .submit_batch(batch.clone())
        .await
        .expect("the writer runs");
    let original = accepted(&answers[0]).clone();
    assert!(!original.replayed);
    let retried = accepted(&answers[1]);
    assert!(retried.replayed, "the same id and command again is a retry");
    assert_eq!(retried.first_position, original.first_position);
    assert_eq!(retried.events, original.events);
    assert!(!accepted(&answers[2]).replayed);
    assert!(
        matches!(
            answers[3],
            Err(SubmitError::Refused(Refusal::RequestIdReused))
        ),
        "the same id with another command is refused: {:?}",
        answers[3]
    );
    assert_eq!(balance(&engine, &company).await, 7);

    // The whole batch again, after a restart: every acceptance is answered from the log.
    let head = engine.shutdown().await.expect("a head");
    let engine = start(dir.path(), &clock);
    let again = engine
        .handle()
        .submit_batch(batch)
        .await
        .expect("the writer runs");
    for index in [0, 1] {
        let outcome = accepted(&again[index]);
        assert!(outcome.replayed);
        assert_eq!(outcome.events, original.events);
    }
    assert!(accepted(&again[2]).replayed);
    assert!(matches!(
        again[3],
        Err(SubmitError::Refused(Refusal::RequestIdReused))
    ));
    assert_eq!(engine.handle().head().await.expect("head"), head);
    assert_eq!(balance(&engine, &company).await, 7);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_batch_longer_than_a_group_is_split_and_answered_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let mut config = EngineConfig::new(dir.path(), policy());
    config.group_len_max = 3;
    let engine = Engine::start(config, Arc::clone(&clock) as Arc<dyn ledger_engine::Clock>)
        .expect("engine starts");
    world(&engine, &company, 20).await;
    let stats_before = engine.handle().stats();

    let batch: Vec<(Uuid, Principal, Command)> = (0..10u8)
        .map(|who| {
            (
                Uuid::new_v4(),
                provider(),
                redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01"),
            )
        })
        .collect();
    let ids: Vec<Uuid> = batch.iter().map(|(id, _, _)| *id).collect();
    let answers = engine
        .handle()
        .submit_batch(batch)
        .await
        .expect("the writer runs");
    let answered: Vec<Uuid> = answers
        .iter()
        .map(|answer| accepted(answer).request_id)
        .collect();
    assert_eq!(answered, ids);
    let positions: Vec<u64> = answers
        .iter()
        .map(|answer| accepted(answer).first_position)
        .collect();
    assert!(positions.windows(2).all(|pair| pair[1] == pair[0] + 1));
    let stats = engine.handle().stats().since(&stats_before);
    assert_eq!((stats.groups, stats.commands), (4, 10));
    assert_eq!(balance(&engine, &company).await, 10);
    engine.shutdown().await;
}

#[tokio::test]
async fn an_empty_batch_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    let stats_before = engine.handle().stats();
    let answers = engine
        .handle()
        .submit_batch(Vec::new())
        .await
        .expect("the writer runs");
    assert!(answers.is_empty());
    assert_eq!(engine.handle().stats().since(&stats_before).groups, 0);
    assert_eq!(engine.handle().head().await.expect("head").position, 0);
    engine.shutdown().await;
}
