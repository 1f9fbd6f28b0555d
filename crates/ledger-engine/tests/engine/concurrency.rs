//! The single writer under concurrent callers.

use ledger_domain::Refusal;
use ledger_engine::SubmitError;
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_redemptions_race_for_the_last_ten_vouchers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 10).await;
    let head_before = engine.handle().head().await.expect("head");

    let mut tasks = Vec::new();
    for who in 0..100u8 {
        let handle = engine.handle();
        let company = company.clone();
        tasks.push(tokio::spawn(async move {
            handle
                .submit(
                    Uuid::new_v4(),
                    provider_principal("AG-1"),
                    redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01"),
                )
                .await
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task ran") {
            Ok(_) => accepted += 1,
            Err(SubmitError::Refused(Refusal::InsufficientVouchers {
                available: 0,
                requested: 1,
            })) => refused += 1,
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!((accepted, refused), (10, 90));
    let head_after = engine.handle().head().await.expect("head");
    assert_eq!(head_after.position, head_before.position + 10);
    let balance = engine
        .handle()
        .read(move |view| {
            view.state.companies[&company].balance(ledger_domain::VoucherType::General)
        })
        .await
        .expect("read");
    assert_eq!(balance, 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_gap_free_positions_and_every_event_is_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 200).await;
    let mut tasks = Vec::new();
    for who in 0..200u8 {
        let handle = engine.handle();
        let company = company.clone();
        tasks.push(tokio::spawn(async move {
            handle
                .submit(
                    Uuid::new_v4(),
                    provider_principal("AG-1"),
                    redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01"),
                )
                .await
        }));
    }
    let mut positions = Vec::new();
    for task in tasks {
        let outcome = task.await.expect("task ran").expect("accepted");
        positions.extend(outcome.events.iter().map(|event| event.position));
    }
    positions.sort_unstable();
    assert_eq!(positions, (6..206).collect::<Vec<u64>>());
    let head = engine.shutdown().await.expect("final head");
    let store = ledger_store::Store::open(dir.path()).expect("reopen");
    assert_eq!(store.verify().expect("readable"), Ok(head));
    assert_eq!(head.position, 205);
}

/// The writer decides a group while the one before is being synced; a retry decided while its
/// original is in flight must still be answered from the original, never written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_racing_their_originals_across_pipelined_groups_are_written_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    // One command per group: an original and its retries queued together are decided in
    // consecutive groups, the retry while the original's group is being synced.
    let mut config = ledger_engine::EngineConfig::new(dir.path(), policy());
    config.group_len_max = 1;
    let engine = ledger_engine::Engine::start(
        config,
        std::sync::Arc::clone(&clock) as std::sync::Arc<dyn ledger_engine::Clock>,
    )
    .expect("engine starts");
    world(&engine, &company, 200).await;
    let head_before = engine.handle().head().await.expect("head");

    // Hold the writer in a read while everything queues behind it.
    let handle = engine.handle();
    let held = tokio::spawn(async move {
        handle
            .read(|_| std::thread::sleep(std::time::Duration::from_millis(200)))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut tasks = Vec::new();
    for who in 0..100u8 {
        let request_id = Uuid::new_v4();
        let command = redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01");
        for _copy in 0..3 {
            let handle = engine.handle();
            let command = command.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = handle
                    .submit(request_id, provider_principal("AG-1"), command)
                    .await
                    .expect("accepted");
                (request_id, outcome)
            }));
        }
    }
    held.await.expect("task ran").expect("read");
    let mut first_positions = std::collections::HashMap::new();
    let mut originals = 0;
    for task in tasks {
        let (request_id, outcome) = task.await.expect("task ran");
        if !outcome.replayed {
            originals += 1;
        }
        assert_eq!(outcome.events.len(), 1);
        let position = outcome.events[0].position;
        assert_eq!(outcome.first_position, position);
        let first = *first_positions.entry(request_id).or_insert(position);
        assert_eq!(first, position, "a retry answers its original's position");
    }
    assert_eq!(originals, 100, "each request written exactly once");
    let head = engine.shutdown().await.expect("final head");
    assert_eq!(head.position, head_before.position + 100);
    let store = ledger_store::Store::open(dir.path()).expect("reopen");
    assert_eq!(store.verify().expect("readable"), Ok(head));
}
