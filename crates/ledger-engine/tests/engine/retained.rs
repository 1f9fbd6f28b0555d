//! Retained snapshots of the projections: a report as of any position, answered from the
//! nearest snapshot and the events after it, equals a replay from position 1; the snapshots
//! stay sparse; a damaged snapshot or one of another log is passed over, never trusted.

use std::path::Path;
use std::sync::Arc;

use ledger_domain::command::ReverseRedemption;
use ledger_domain::Command;
use ledger_engine::recovery::{forget_retained_beyond, projections_as_of, retain_projections};
use ledger_engine::{replay_to, Engine, EngineConfig, ManualClock};
use ledger_projections::Projections;
use ledger_store::{Head, RetainedSnapshots, Store, CHECKPOINT_FILE_NAME};

use crate::support::*;

fn start_retaining(dir: &Path, clock: &Arc<ManualClock>, checkpoint: u64, retained: u64) -> Engine {
    let mut config = EngineConfig::new(dir, policy());
    config.checkpoint_interval_events = checkpoint;
    // Each checkpoint (and its retained snapshot) written before the next is taken: the gaps
    // between snapshots below count on it.
    config.checkpoint_lag_intervals_max = 1;
    config.retained_interval_events = retained;
    let clock: Arc<dyn ledger_engine::Clock> = Arc::clone(clock) as Arc<dyn ledger_engine::Clock>;
    retry_while_locked(|| Engine::start(config.clone(), Arc::clone(&clock)))
}

/// A world, redemptions, one of them reversed (a reversal reads its redemption back from the
/// log, also when replayed from a snapshot), and a late issuance.
async fn history_with_a_reversal(engine: &Engine) {
    let company = enterprise(4_030_192);
    world(engine, &company, 100).await;
    let mut redemption_ids = Vec::new();
    for who in 0..16u8 {
        let command = redeem(&company, "AG-1", "M-1", who, 2, "2025-06-01");
        if let Command::RedeemHours(redemption) = &command {
            redemption_ids.push(redemption.redemption_id);
        }
        accept(engine, provider_principal("AG-1"), command).await;
    }
    let reversal = Command::ReverseRedemption(ReverseRedemption {
        redemption_id: redemption_ids[3],
        provider_id: id("AG-1"),
        reason: "training cancelled".into(),
        reversed_on: date("2025-06-20"),
    });
    accept(engine, provider_principal("AG-1"), reversal).await;
    accept(engine, OPERATOR, issue(&company, 5, "2025-04-10")).await;
}

fn stopped_store(dir: &Path) -> Store {
    retry_while_locked(|| Store::open(dir))
}

fn assert_every_position_as_replayed(store: &Store, retained: &RetainedSnapshots) {
    let reader = store.reader();
    for position in 0..=store.head().position {
        let from_snapshot = projections_as_of(&reader, retained, position).expect("as of");
        let replayed = replay_to(&reader, position).expect("replay").projections;
        assert_eq!(from_snapshot.position, position);
        assert!(
            from_snapshot == replayed,
            "the projections as of position {position} differ from a replay from position 1"
        );
    }
}

#[tokio::test]
async fn a_report_as_of_any_position_equals_a_replay_from_position_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 3, 6);
    history_with_a_reversal(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    let positions = retained.positions().expect("listed");
    assert!(
        positions.len() >= 2,
        "snapshots were retained along the way: {positions:?}"
    );
    assert_every_position_as_replayed(&store, &retained);
}

#[tokio::test]
async fn without_retained_snapshots_a_report_as_of_a_position_replays_from_position_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 1_000_000, 6);
    history_with_a_reversal(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    assert_eq!(retained.positions().expect("listed"), Vec::<u64>::new());
    assert_every_position_as_replayed(&store, &retained);
}

#[tokio::test]
async fn retained_snapshots_are_one_per_interval_and_the_newest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 2, 7);
    history_with_a_reversal(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let positions = RetainedSnapshots::in_data_dir(dir.path())
        .positions()
        .expect("listed");
    let stretch = |position: u64| (position - 1) / 7;
    let (newest, kept) = positions.split_last().expect("snapshots");
    for pair in kept.windows(2) {
        assert_ne!(
            stretch(pair[0]),
            stretch(pair[1]),
            "two snapshots of one stretch of 7 positions were kept: {positions:?}"
        );
    }
    for pair in positions.windows(2) {
        assert!(
            pair[1] - pair[0] <= 7 + 2 * 2,
            "a gap longer than an interval and a checkpoint interval or two: {positions:?}"
        );
    }
    assert!(*newest <= head.position);
    assert!(
        positions.len() as u64 <= head.position / 7 + 2,
        "{} snapshots for {} events: {positions:?}",
        positions.len(),
        head.position
    );
}

#[tokio::test]
async fn a_damaged_snapshot_or_one_of_another_log_is_passed_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 3, 6);
    history_with_a_reversal(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    let positions = retained.positions().expect("listed");
    let newest = *positions.last().expect("a snapshot");
    // A flipped byte in the newest snapshot's body.
    let newest_path = std::fs::read_dir(retained.dir())
        .expect("listed")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.to_string_lossy().contains(&format!("{newest:020}")))
        .expect("the newest snapshot's file");
    let mut bytes = std::fs::read(&newest_path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&newest_path, bytes).expect("written");
    // A snapshot that claims a position of this log with another log's hash, whose projections
    // would be wrong here: an empty ledger's.
    let foreign_position = positions[0] + 1;
    let foreign = Head {
        position: foreign_position,
        hash: [7; 32],
    };
    let mut empty = Projections::default();
    empty.position = foreign_position;
    retained
        .save(&foreign, &ledger_engine::recovery::retained_bytes(&empty))
        .expect("saved");
    assert_every_position_as_replayed(&store, &retained);
}

#[test]
fn retention_keeps_the_first_snapshot_of_each_stretch_and_the_newest_and_a_start_none_beyond_the_head(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    let at = |position: u64| Head {
        position,
        hash: [position as u8; 32],
    };
    let projections = Projections::default();
    let mut kept = Vec::new();
    for position in [5, 10, 15, 20, 25] {
        retain_projections(&retained, &at(position), &projections, 10).expect("retained");
        kept.push(retained.positions().expect("listed"));
    }
    // Stretches of 10 positions: 1-10, 11-20, 21-30. 10 goes once 15 is saved (5 is the first
    // of 1-10), 20 once 25 is (15 is the first of 11-20); the newest always stays.
    assert_eq!(
        kept,
        vec![
            vec![5],
            vec![5, 10],
            vec![5, 15],
            vec![5, 15, 20],
            vec![5, 15, 25],
        ]
    );
    // Saved out of order, as a rebuild does beside the writer's: only the snapshots up to the
    // one saved are looked at.
    retain_projections(&retained, &at(12), &projections, 10).expect("retained");
    assert_eq!(retained.positions().expect("listed"), vec![5, 12, 15, 25]);
    forget_retained_beyond(&retained, 20).expect("forgotten");
    assert_eq!(retained.positions().expect("listed"), vec![5, 12, 15]);
}

#[tokio::test]
async fn a_rebuild_leaves_retained_snapshots_for_a_log_that_had_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 1_000_000, 5);
    history_with_a_reversal(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    assert_eq!(retained.positions().expect("listed"), Vec::<u64>::new());
    let report = retry_while_locked(|| ledger_engine::recovery::rebuild_retaining(dir.path(), 5));
    let positions = retained.positions().expect("listed");
    assert_eq!(report.retained_snapshots as u64, head.position / 5 + 1);
    assert_eq!(positions.last(), Some(&head.position));
    assert!(positions
        .iter()
        .all(|saved| saved % 5 == 0 || *saved == head.position));
    let store = stopped_store(dir.path());
    assert_every_position_as_replayed(&store, &retained);
}

/// A rebuild leaves the snapshots a clean stop would keep, no more: every multiple of the
/// interval near the head, the first of each stretch before, and the head. Allowed and refused
/// both: every multiple written is one the thinning keeps, and every one passed over is one it
/// would remove.
#[tokio::test]
async fn a_rebuild_writes_only_the_retained_snapshots_a_clean_stop_keeps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_retaining(dir.path(), &clock, 1_000_000, 5);
    history_with_a_reversal(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let spacing = ledger_engine::recovery::RetainedSpacing {
        interval_events: 2,
        recent_events: 4,
        past_interval_events: 8,
    };
    let report = retry_while_locked(|| {
        ledger_engine::recovery::rebuild_spaced(dir.path(), spacing, 1_000_000)
    });
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    let positions = retained.positions().expect("listed");
    assert_eq!(report.retained_snapshots, positions.len());
    // What a rebuild keeping every multiple writes, thinned as a clean stop thins.
    let mut every: Vec<u64> = (1..=head.position).filter(|p| p % 2 == 0).collect();
    if head.position % 2 != 0 {
        every.push(head.position);
    }
    let first_of_stretch = |p: u64| p == 2 || (p - 2 - 1) / 8 != (p - 1) / 8;
    let expected: Vec<u64> = every
        .iter()
        .copied()
        .filter(|p| *p >= head.position - 4 || first_of_stretch(*p))
        .collect();
    assert!(head.position > 16, "several stretches: {}", head.position);
    assert!(expected.len() < every.len());
    assert_eq!(positions, expected);
    assert_eq!(retained.thin(4, 8).expect("thinned"), Vec::<u64>::new());
    let store = stopped_store(dir.path());
    assert_every_position_as_replayed(&store, &retained);
}

/// A rebuild whose stored checkpoint is behind the head (as after a crash) replays in two
/// pipelines, compares at the checkpoint's position, and leaves its snapshots on both sides of
/// it, at every multiple of the interval and at the head.
#[tokio::test]
async fn a_rebuild_from_a_checkpoint_behind_the_head_compares_there_and_retains_on_both_sides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start_retaining(dir.path(), &clock, 1_000_000, 5);
    world(&engine, &company, 100).await;
    let behind = engine.shutdown().await.expect("head");
    let checkpoint_path = dir.path().join(CHECKPOINT_FILE_NAME);
    let checkpoint = std::fs::read(&checkpoint_path).expect("checkpoint read");
    let engine = start_retaining(dir.path(), &clock, 1_000_000, 5);
    for who in 0..9u8 {
        let command = redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01");
        accept(&engine, provider_principal("AG-1"), command).await;
    }
    let head = engine.shutdown().await.expect("head");
    assert!(behind.position + 9 <= head.position);
    // The first checkpoint put back: behind the head, and of this log.
    std::fs::write(&checkpoint_path, checkpoint).expect("checkpoint written");

    let report = retry_while_locked(|| ledger_engine::recovery::rebuild_retaining(dir.path(), 5));
    assert_eq!(report.checkpoint_position, Some(behind.position));
    assert_eq!(report.matches_checkpoint, Some(true));
    let retained = RetainedSnapshots::in_data_dir(dir.path());
    let mut expected: Vec<u64> = (1..=head.position).filter(|p| p % 5 == 0).collect();
    if head.position % 5 != 0 {
        expected.push(head.position);
    }
    assert_eq!(retained.positions().expect("listed"), expected);
    assert_eq!(report.retained_snapshots, expected.len());
    let store = stopped_store(dir.path());
    assert_every_position_as_replayed(&store, &retained);
    // The new checkpoint is at the head, and a start from it equals a replay.
    let ledger_engine::recovery::Recovery {
        recovered: rebuilt,
        replayed_events: replayed,
        checkpoint_body_bytes,
    } = ledger_engine::recovery::recover(&store).expect("recovered");
    assert_eq!(replayed, 0);
    // The writer's checkpoint interval stretches with the body it started from.
    assert_eq!(
        checkpoint_body_bytes,
        u64::try_from(report.checkpoint_bytes).expect("fits")
    );
    assert_eq!(rebuilt.projections.position, head.position);
    assert_eq!(
        rebuilt,
        replay_to(&store.reader(), head.position).expect("replayed")
    );
}
