//! Checkpoints: a restart from a checkpoint gives the same state and projections as a replay
//! from position 1, a rebuild matches the checkpoint byte for byte, and a damaged checkpoint is
//! ignored rather than trusted.

use std::sync::Arc;

use ledger_engine::{Engine, EngineConfig, ManualClock};

use crate::support::*;

fn start_checkpointing(dir: &std::path::Path, clock: &Arc<ManualClock>, interval: u64) -> Engine {
    let mut config = EngineConfig::new(dir, policy());
    config.checkpoint_interval_events = interval;
    // Each checkpoint written before the next is taken, as the tests below count on.
    config.checkpoint_lag_intervals_max = 1;
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

/// The head position and the checkpoint snapshots the writer took since it started.
async fn head_and_checkpoint_copies(engine: &Engine) -> (u64, u64) {
    let head = engine.handle().head().await.expect("head").position;
    (head, engine.handle().stats().checkpoint_copies)
}

#[tokio::test]
async fn a_restart_stretches_the_checkpoint_interval_with_the_checkpoint_it_started_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start_checkpointing(dir.path(), &clock, 1_000);
    some_history(&engine).await;
    // More workers, for a body of a few kilobytes.
    for who in 12..48u8 {
        accept(
            &engine,
            provider_principal("AG-1"),
            redeem(&company, "AG-1", "M-1", who, 1, "2025-06-02"),
        )
        .await;
    }
    let stopped_at = engine.shutdown().await.expect("head").position;
    let body_bytes = match ledger_store::CheckpointFile::in_data_dir(dir.path()).read() {
        Ok(ledger_store::CheckpointFound::Intact(checkpoint)) => {
            u64::try_from(checkpoint.bytes.len()).expect("fits")
        }
        other => panic!("the stop writes a checkpoint: {other:?}"),
    };
    let stretched = ledger_engine::checkpoint_interval_events(1, body_bytes);
    assert!(
        stretched >= 2,
        "a body of {body_bytes} bytes must stretch an interval of 1"
    );

    // Configured for a checkpoint after every event, the restarted writer takes none until
    // the stretched interval has passed since the checkpoint it started from, and then one.
    let engine = start_checkpointing(dir.path(), &clock, 1);
    loop {
        let (head, copies) = head_and_checkpoint_copies(&engine).await;
        if head - stopped_at >= stretched {
            break;
        }
        assert_eq!(copies, 0, "{} events after the restart", head - stopped_at);
        accept(&engine, OPERATOR, issue(&company, 1, "2025-04-10")).await;
    }
    accept(&engine, OPERATOR, issue(&company, 1, "2025-04-10")).await;
    assert_eq!(head_and_checkpoint_copies(&engine).await.1, 1);
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
        // A byte of the checkpoint's stored body flipped (after its 88-byte header: kind,
        // position, chain hash, digest, length).
        let path = dir.path().join(ledger_store::CHECKPOINT_FILE_NAME);
        let mut file = std::fs::read(&path).expect("the checkpoint file");
        file[88 + 3] ^= 0x55;
        std::fs::write(&path, file).expect("write");
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

/// The pipelined replay (reader, state and projections on three threads) gives exactly the
/// sequential fold's state and projections, from position 1 or from a later position, and
/// reports a broken chain with the same error at the same position.
#[tokio::test]
async fn a_pipelined_replay_equals_the_sequential_fold_and_breaks_at_the_same_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    some_history(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let middle = head.position / 2;
    {
        let store = ledger_store::Store::open(dir.path()).expect("reopen");
        let reader = store.reader();
        for last in [1, middle, head.position] {
            let mut sequential = ledger_engine::Recovered::default();
            sequential
                .fold(&reader, reader.iter(1, last))
                .expect("the sequential fold");
            let mut pipelined = ledger_engine::Recovered::default();
            pipelined
                .fold_range_pipelined(&reader, 1, last)
                .expect("the pipelined fold");
            assert_eq!(pipelined, sequential, "up to {last}");
            assert_eq!(pipelined.to_checkpoint(), sequential.to_checkpoint());
            // From a later position, on top of the state before it, as after a checkpoint.
            let mut resumed = ledger_engine::Recovered::default();
            resumed
                .fold(&reader, reader.iter(1, middle))
                .expect("the first half");
            resumed
                .fold_range_pipelined(&reader, middle + 1, last.max(middle))
                .expect("the second half");
            if last >= middle {
                assert_eq!(resumed, sequential, "resumed up to {last}");
            }
        }
    }
    // One byte of the entry in the middle changed: its hash no longer matches.
    {
        let db = sled::Config::new()
            .path(dir.path())
            .flush_every_ms(None)
            .open()
            .expect("sled");
        let mut key = vec![b'e'];
        key.extend_from_slice(&middle.to_be_bytes());
        let mut entry = db.get(&key).expect("read").expect("the entry").to_vec();
        let last_byte = entry.len() - 1;
        entry[last_byte] ^= 0x01;
        db.insert(&key, entry).expect("tamper");
        db.flush().expect("flush");
    }
    let store = ledger_store::Store::open(dir.path()).expect("reopen");
    let reader = store.reader();
    let sequential = ledger_engine::Recovered::default()
        .fold(&reader, reader.iter(1, head.position))
        .expect_err("the sequential fold stops at the damage");
    let pipelined = ledger_engine::Recovered::default()
        .fold_range_pipelined(&reader, 1, head.position)
        .expect_err("the pipelined fold stops at the damage");
    assert_eq!(pipelined.to_string(), sequential.to_string());
    assert!(
        sequential
            .to_string()
            .contains(&format!("position {middle}")),
        "{sequential}"
    );
}

/// Waits until the store behind `engine` has read the ids of its open, and says from where.
async fn fingerprints_source(engine: &Engine) -> ledger_store::IdSource {
    let waited = std::time::Instant::now();
    loop {
        let source = engine
            .handle()
            .read(|view| view.store.indexes_source())
            .await
            .expect("read");
        if let Some(source) = source {
            return source;
        }
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "the recorded ids are never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A restart reads the recorded ids from the fingerprints saved with the checkpoints and the
/// groups after them, not from the whole log; a retry of a command recorded before a
/// checkpoint or at shutdown is still answered from its record, and a new id is accepted.
#[tokio::test]
async fn a_restart_reads_the_saved_fingerprints_and_every_retry_is_still_recognised() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start_checkpointing(dir.path(), &clock, 7);
    // The first start of a new log reads its (empty) ids from the whole log.
    assert_eq!(
        fingerprints_source(&engine).await,
        ledger_store::IdSource::WholeLog
    );
    some_history(&engine).await;
    let mut recorded = Vec::new();
    for quantity in [3, 4, 5] {
        let request_id = uuid::Uuid::new_v4();
        let command = issue(&company, quantity, "2025-04-10");
        let outcome = engine
            .handle()
            .submit(request_id, OPERATOR, command.clone())
            .await
            .expect("accepted");
        recorded.push((request_id, command, outcome.first_position));
    }
    engine.shutdown().await.expect("head");

    let engine = start_checkpointing(dir.path(), &clock, 7);
    assert_eq!(
        fingerprints_source(&engine).await,
        ledger_store::IdSource::Saved
    );
    let head = engine
        .handle()
        .read(|view| view.store.head())
        .await
        .expect("read");
    for (request_id, command, first_position) in recorded {
        let retry = engine
            .handle()
            .submit(request_id, OPERATOR, command)
            .await
            .expect("answered");
        assert!(retry.replayed, "{request_id} is recognised as a retry");
        assert_eq!(retry.first_position, first_position);
    }
    let after_retries = engine
        .handle()
        .read(|view| view.store.head())
        .await
        .expect("read");
    assert_eq!(after_retries, head, "a retry writes nothing");
    accept(&engine, OPERATOR, issue(&company, 6, "2025-04-10")).await;
    engine.shutdown().await;
}

/// A checkpoint gives the length of the state's encoding before it (so that the two parts
/// decode in parallel): one whose length runs past its bytes, or is cut short, is refused.
#[test]
fn a_checkpoint_whose_state_length_does_not_fit_its_bytes_is_refused() {
    let bytes = ledger_engine::Recovered::default().to_checkpoint();
    assert_eq!(
        ledger_engine::Recovered::from_checkpoint(&bytes),
        Some(ledger_engine::Recovered::default())
    );
    let mut too_long = bytes.clone();
    too_long[1..9].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    assert_eq!(ledger_engine::Recovered::from_checkpoint(&too_long), None);
    assert_eq!(ledger_engine::Recovered::from_checkpoint(&bytes[..5]), None);
    assert_eq!(
        ledger_engine::Recovered::from_checkpoint(&bytes[..bytes.len() - 1]),
        None
    );
}
