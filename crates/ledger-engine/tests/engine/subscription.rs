//! Live subscriptions: a catch-up from the log that turns into following the writer, without a
//! gap or a duplicate, and a subscriber too slow for the broadcast told where to resume.

use std::sync::Arc;
use std::time::Duration;

use ledger_engine::{Engine, EngineConfig, SubscriptionError};
use uuid::Uuid;

use crate::support::*;

/// Approves `count` modules `M-<first>`, `M-<first + 1>`, … of provider AG-1, one event each,
/// from `callers` concurrent callers, so that the writer commits them in groups.
async fn approve_modules(engine: &Engine, first: u32, count: u32, callers: u32) {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let handle = engine.handle();
        tasks.push(tokio::spawn(async move {
            let mut number = first + caller;
            while number < first + count {
                let command = approve_module(&format!("M-{number}"), "AG-1", 40);
                handle
                    .submit(Uuid::new_v4(), ADMIN, command)
                    .await
                    .expect("a new module is approved");
                number += callers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller finished");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_from_position_1_sees_every_position_once_in_order_while_10_000_events_are_appended(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    accept(&engine, ADMIN, approve_provider("AG-1")).await;
    // Some history to catch up on before the subscriber goes live.
    approve_modules(&engine, 0, 2_000, 32).await;
    let target = engine.handle().head().await.expect("head").position + 10_000;

    let handle = engine.handle();
    let subscriber = tokio::spawn(async move {
        let mut positions = Vec::new();
        let mut resumed = 0;
        let mut subscription = handle.subscribe(1);
        while positions.len() < target as usize {
            match subscription.next().await {
                Ok(event) => positions.push(event.position),
                Err(SubscriptionError::Lagged { next_position }) => {
                    resumed += 1;
                    subscription = handle.subscribe(next_position);
                }
                Err(other) => panic!("subscription failed: {other}"),
            }
        }
        (positions, resumed)
    });
    approve_modules(&engine, 2_000, 10_000, 64).await;

    let (positions, resumed) = tokio::time::timeout(Duration::from_secs(60), subscriber)
        .await
        .expect("the subscriber sees the head within a minute")
        .expect("subscriber ran");
    let expected: Vec<u64> = (1..=target).collect();
    assert!(
        positions == expected,
        "positions are 1..={target} once each, in order"
    );
    assert_eq!(
        resumed, 0,
        "the default broadcast capacity keeps up in process"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_so_and_resumes_from_its_last_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let mut config = EngineConfig::new(dir.path(), policy());
    config.broadcast_capacity_groups = 2;
    let engine = Engine::start(config, Arc::clone(&clock) as Arc<dyn ledger_engine::Clock>)
        .expect("engine starts");
    accept(&engine, ADMIN, approve_provider("AG-1")).await;

    let mut subscription = engine.handle().subscribe(1);
    let first = subscription.next().await.expect("position 1 from the log");
    assert_eq!(first.position, 1);
    assert_eq!(
        subscription
            .next_within(Duration::from_millis(50))
            .await
            .expect("live"),
        None,
        "nothing new: a heartbeat's turn"
    );
    assert!(subscription.is_live());
    assert_eq!(subscription.known_head().position, 1);

    // Ten groups, one at a time, while the subscriber reads nothing: more than the broadcast
    // keeps.
    for number in 0..10 {
        accept(
            &engine,
            ADMIN,
            approve_module(&format!("M-{number}"), "AG-1", 40),
        )
        .await;
    }
    let error = subscription.next().await.expect_err("fell behind");
    let SubscriptionError::Lagged { next_position } = error else {
        panic!("expected Lagged, got {error:?}");
    };
    assert_eq!(next_position, 2, "everything before it was handed out");
    assert!(matches!(
        subscription.next().await,
        Err(SubscriptionError::Stopped)
    ));

    let mut resumed = engine.handle().subscribe(next_position);
    let mut positions = Vec::new();
    while positions.len() < 10 {
        positions.push(resumed.next().await.expect("from the log").position);
    }
    assert_eq!(positions, (2..=11).collect::<Vec<u64>>());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscription_ends_when_the_engine_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    let mut subscription = engine.handle().subscribe(1);
    assert_eq!(
        subscription
            .next_within(Duration::from_millis(10))
            .await
            .expect("an empty log is caught up at once"),
        None
    );
    let waiting = tokio::spawn(async move {
        let first = subscription.next().await;
        (first, subscription)
    });
    accept(&engine, ADMIN, approve_provider("AG-1")).await;
    engine.shutdown().await;
    let (first, mut subscription) = waiting.await.expect("task ran");
    assert_eq!(first.expect("the event came first").position, 1);
    assert!(matches!(
        subscription.next().await,
        Err(SubscriptionError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_past_the_head_waits_for_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    accept(&engine, ADMIN, approve_provider("AG-1")).await;
    let mut subscription = engine.handle().subscribe(3);
    let waiting = tokio::spawn(async move {
        let event = subscription.next().await;
        (event, subscription)
    });
    for number in 0..3 {
        accept(
            &engine,
            ADMIN,
            approve_module(&format!("M-{number}"), "AG-1", 40),
        )
        .await;
    }
    let (event, mut subscription) = waiting.await.expect("task ran");
    assert_eq!(event.expect("position 3").position, 3);
    assert_eq!(subscription.next().await.expect("position 4").position, 4);
    engine.shutdown().await;
    assert!(matches!(
        subscription.next().await,
        Err(SubscriptionError::Stopped)
    ));
}
