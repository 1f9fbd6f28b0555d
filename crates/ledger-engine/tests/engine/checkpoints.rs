//! Checkpoints: a restart from a checkpoint gives the same state and projections as a replay
//! from position 1, a rebuild matches the checkpoint byte for byte, and a damaged checkpoint is
//! ignored rather than trusted.

use std::sync::Arc;

use ledger_engine::{Engine, EngineConfig, ManualClock};

use crate::support::*;

fn start_checkpointing(dir: &std::path::Path, clock: &Arc<ManualClock>, interval: u64) -> Engine {
    let mut config = EngineConfig::new(dir, policy());
    config.checkpoint_interval_events = interval;
    let clock: Arc<dyn ledger_engine::Clock> = Arc::clone(clock) as Arc<dyn ledger_engine::Clock>;
    Engine::start(config, clock).expect("engine starts")
}

/// A few dozen events: a world, issuances and redemptions.
async fn some_history(engine: &Engine) {
    let company = enterprise(4_030_192);
    world(engine, &company, 100).await;
    for who in 0..12u8 {
        accept(
            engine,
            provider_principal("AG-1"),
            redeem(&company, "AG-1", "M-1", who, 2, "2025-06-01"),
        )
        .await;
    }
    accept(engine, OPERATOR, issue(&company, 5, "2025-04-10")).await;
}

#[tokio::test]
async fn checkpoints_are_written_along_the_way_and_at_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_checkpointing(dir.path(), &clock, 4);
    some_history(&engine).await;
    let (along_the_way, head) = engine
        .handle()
        .read(|view| {
            (
                view.store
                    .load_checkpoint()
                    .expect("readable")
                    .map(|c| c.head.position),
                view.store.head(),
            )
        })
        .await
        .expect("read");
    let along_the_way = along_the_way.expect("a checkpoint was written while appending");
    assert!(
        along_the_way > 0 && along_the_way < head.position,
        "{along_the_way} of {}",
        head.position
    );
    let final_head = engine.shutdown().await.expect("head");
    let store = ledger_store::Store::open(dir.path()).expect("reopen");
    let checkpoint = store
        .load_checkpoint()
        .expect("readable")
        .expect("a final checkpoint");
    assert_eq!(
        checkpoint.head, final_head,
        "the final checkpoint is at the head"
    );
}

#[tokio::test]
async fn a_restart_from_the_checkpoint_equals_a_replay_from_position_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_checkpointing(dir.path(), &clock, 7);
    some_history(&engine).await;
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.to_bytes()))
        .await
        .expect("read");
    engine.shutdown().await;

    let engine = start_checkpointing(dir.path(), &clock, 7);
    let (state, projections, rebuilt) = engine
        .handle()
        .read(|view| {
            let rebuilt =
                ledger_engine::replay_to(&view.store.reader(), view.store.head().position)
                    .expect("replays");
            (view.state.clone(), view.projections.to_bytes(), rebuilt)
        })
        .await
        .expect("read");
    assert_eq!((state.clone(), projections.clone()), before);
    assert_eq!(rebuilt.state, state);
    assert_eq!(rebuilt.projections.to_bytes(), projections);
    engine.shutdown().await;
}

#[tokio::test]
async fn rebuild_from_position_one_matches_the_checkpoint_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_checkpointing(dir.path(), &clock, 10);
    some_history(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let report = ledger_engine::rebuild(dir.path()).expect("rebuilds");
    assert_eq!(report.head, head);
    assert_eq!(report.events, head.position);
    assert_eq!(report.checkpoint_position, Some(head.position));
    assert_eq!(report.matches_checkpoint, Some(true));
    // A second rebuild checks the checkpoint the first one wrote.
    assert_eq!(
        ledger_engine::rebuild(dir.path())
            .expect("rebuilds")
            .matches_checkpoint,
        Some(true)
    );
}

#[tokio::test]
async fn a_damaged_checkpoint_is_ignored_and_the_state_comes_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_checkpointing(dir.path(), &clock, 10);
    some_history(&engine).await;
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.to_bytes()))
        .await
        .expect("read");
    engine.shutdown().await;
    {
        let db = sled::Config::new()
            .path(dir.path())
            .flush_every_ms(None)
            .open()
            .expect("sled");
        let key = [b'c', 0, 0, 0, 0];
        let mut chunk = db.get(key).expect("read").expect("first chunk").to_vec();
        chunk[3] ^= 0x55;
        db.insert(key, chunk).expect("write");
        db.flush().expect("flush");
    }
    let engine = start_checkpointing(dir.path(), &clock, 10);
    let after = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.to_bytes()))
        .await
        .expect("read");
    assert_eq!(after, before);
    let head = engine.shutdown().await.expect("head");
    // The start replayed the whole log, which no checkpoint held: the shutdown wrote a sound
    // checkpoint over the damaged one.
    let report = ledger_engine::rebuild(dir.path()).expect("rebuilds");
    assert_eq!(
        (report.checkpoint_position, report.matches_checkpoint),
        (Some(head.position), Some(true)),
        "the damaged checkpoint is replaced at the next shutdown"
    );
}
