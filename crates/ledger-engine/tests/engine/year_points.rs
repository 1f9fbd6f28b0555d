//! Year points (issue 12 item 4): a year summary as of any position, from the nearest point
//! and the events after it, equals the full projections replayed from position 1; a closed
//! year is written once, not at every point; a damaged point, one of another log or none at
//! all sends the report down the full projections' path (`None`), never a wrong figure; a
//! rebuild leaves points on a log that had none.

use std::path::Path;
use std::sync::Arc;

use ledger_domain::command::ReverseRedemption;
use ledger_domain::Command;
use ledger_engine::recovery::rebuild_with_intervals;
use ledger_engine::year_points::YearPoints;
use ledger_engine::{replay_to, Engine, EngineConfig, ManualClock};
use ledger_projections::YearFigures;
use ledger_store::{RetainedSnapshots, Store};

use crate::support::*;

const YEARS: [i32; 3] = [2024, 2025, 2026];

fn start_with_points(dir: &Path, clock: &Arc<ManualClock>, interval_events: u64) -> Engine {
    let mut config = EngineConfig::new(dir, policy());
    config.year_point_interval_events = interval_events;
    let clock: Arc<dyn ledger_engine::Clock> = Arc::clone(clock) as Arc<dyn ledger_engine::Clock>;
    retry_while_locked(|| Engine::start(config.clone(), Arc::clone(&clock)))
}

/// Two budget years: 2024's vouchers, paid in November 2024, used for training in 2025 and
/// late in 2024; 2025's issued and used; a 2025 redemption reversed, another of 2024 too.
async fn two_years(engine: &Engine) {
    let company = enterprise(4_030_192);
    accept(engine, ADMIN, open_budget(2024, "500000.00")).await;
    world(engine, &company, 0).await;
    accept(engine, OPERATOR, register(&company, 2024, "10")).await;
    accept(engine, OPERATOR, issue(&company, 40, "2024-11-10")).await;
    let mut redemption_ids = Vec::new();
    for (who, training) in [
        (0, "2025-02-01"),
        (1, "2024-12-01"),
        (2, "2025-02-02"),
        (3, "2024-12-02"),
        (0, "2025-02-03"),
        (4, "2025-02-04"),
    ] {
        let command = redeem(&company, "AG-1", "M-1", who, 2, training);
        if let Command::RedeemHours(redemption) = &command {
            redemption_ids.push(redemption.redemption_id);
        }
        accept(engine, provider_principal("AG-1"), command).await;
    }
    accept(engine, OPERATOR, issue(&company, 30, "2025-03-10")).await;
    for who in 5..9 {
        let command = redeem(&company, "AG-1", "M-1", who, 3, "2025-05-01");
        accept(engine, provider_principal("AG-1"), command).await;
    }
    for index in [1, 4] {
        let reversal = Command::ReverseRedemption(ReverseRedemption {
            redemption_id: redemption_ids[index],
            provider_id: id("AG-1"),
            reason: "training cancelled".into(),
            reversed_on: date("2025-06-20"),
        });
        accept(engine, provider_principal("AG-1"), reversal).await;
    }
    accept(engine, OPERATOR, issue(&company, 5, "2025-04-10")).await;
}

fn stopped_store(dir: &Path) -> Store {
    retry_while_locked(|| Store::open(dir))
}

fn points_of(dir: &Path) -> YearPoints {
    YearPoints::beside(&RetainedSnapshots::in_data_dir(dir))
}

/// Every position from `from` on, every year: the summary from the points is the full
/// projections' (budgets, and the summary's figures of the year), at the same position.
fn assert_summaries_as_replayed(store: &Store, points: &YearPoints, from: u64) {
    let reader = store.reader();
    for position in from..=store.head().position {
        let replayed = replay_to(&reader, position).expect("replay").projections;
        for year in YEARS {
            let summary = points
                .summary_as_of(&reader, position, year)
                .expect("summary")
                .unwrap_or_else(|| panic!("a point at or before {position}"));
            assert_eq!(summary.position, position);
            assert_eq!(summary.year, year);
            assert_eq!(summary.budgets, replayed.budgets, "budgets at {position}");
            let figures = replayed
                .years
                .get(&year)
                .map(YearFigures::summary_only)
                .unwrap_or_default();
            assert_eq!(summary.figures, figures, "{year} at {position}");
        }
    }
}

fn dir_of(dir: &Path, part: &str) -> RetainedSnapshots {
    RetainedSnapshots::in_dir(
        RetainedSnapshots::in_data_dir(dir)
            .dir()
            .join("years")
            .join(part),
    )
}

#[tokio::test]
async fn a_year_summary_as_of_any_position_equals_the_full_projections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 3);
    two_years(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    assert!(index.len() >= 5, "points along the way: {index:?}");
    assert_summaries_as_replayed(&store, &points_of(dir.path()), index[0]);
    // Years are written at the points where they moved, not at every point.
    let written_2024 = dir_of(dir.path(), "2024").positions().expect("listed");
    let written_2025 = dir_of(dir.path(), "2025").positions().expect("listed");
    assert!(
        written_2024.len() < index.len() && written_2025.len() < index.len(),
        "2024 {written_2024:?}, 2025 {written_2025:?}, points {index:?}"
    );
}

#[tokio::test]
async fn after_a_restart_the_first_point_writes_every_year_and_summaries_still_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 4);
    let company = enterprise(4_030_192);
    accept(&engine, ADMIN, open_budget(2024, "500000.00")).await;
    world(&engine, &company, 20).await;
    engine.shutdown().await.expect("head");
    let engine = start_with_points(dir.path(), &clock, 4);
    for who in 0..10 {
        let command = redeem(&company, "AG-1", "M-1", who, 1, "2025-05-01");
        accept(&engine, provider_principal("AG-1"), command).await;
    }
    let head = engine.shutdown().await.expect("head");
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    let first_after_restart = index
        .iter()
        .copied()
        .find(|position| *position > 6)
        .expect("a point after the restart");
    assert!(
        dir_of(dir.path(), "2025")
            .positions()
            .expect("listed")
            .contains(&first_after_restart),
        "every year is written at the first point after a start: {index:?}"
    );
    assert!(head.position > first_after_restart);
    assert_summaries_as_replayed(&stopped_store(dir.path()), &points_of(dir.path()), index[0]);
}

#[tokio::test]
async fn without_a_usable_point_a_summary_is_left_to_the_full_projections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 1_000_000);
    two_years(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let reader = store.reader();
    let points = points_of(dir.path());
    for position in [0, 5, store.head().position] {
        assert_eq!(
            points.summary_as_of(&reader, position, 2025).expect("read"),
            None,
            "no point written: {position}"
        );
    }
    drop(store);

    // Points every 3 positions, then the year file of 2025 at the newest point damaged: that
    // summary is left to the full projections, the other years still come from the points.
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = start_with_points(dir.path(), &clock, 3);
    two_years(&engine).await;
    engine.shutdown().await.expect("head");
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    let newest = *index.last().expect("points");
    let year_2025 = dir_of(dir.path(), "2025");
    let holder = *year_2025
        .positions()
        .expect("listed")
        .last()
        .expect("2025 written");
    let file = year_2025.dir().join(format!("p-{holder:020}.snap"));
    let mut bytes = std::fs::read(&file).expect("year file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&file, bytes).expect("damaged");
    let store = stopped_store(dir.path());
    let reader = store.reader();
    let points = points_of(dir.path());
    assert_eq!(
        points.summary_as_of(&reader, newest, 2025).expect("read"),
        None
    );
    assert!(points
        .summary_as_of(&reader, newest, 2024)
        .expect("read")
        .is_some());
}

#[tokio::test]
async fn points_beyond_the_head_are_removed_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 3);
    two_years(&engine).await;
    let head = engine.shutdown().await.expect("head");
    let index = dir_of(dir.path(), "index");
    let beyond = head.position + 10;
    std::fs::copy(
        index.dir().join(format!(
            "p-{:020}.snap",
            index.positions().expect("listed")[0]
        )),
        index.dir().join(format!("p-{beyond:020}.snap")),
    )
    .expect("copied");
    let engine = start_with_points(dir.path(), &clock, 3);
    engine.shutdown().await.expect("head");
    assert!(!index.positions().expect("listed").contains(&beyond));
}

#[tokio::test]
async fn a_rebuild_leaves_year_points_on_a_log_that_had_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 1_000_000);
    two_years(&engine).await;
    engine.shutdown().await.expect("head");
    assert_eq!(
        dir_of(dir.path(), "index").positions().expect("listed"),
        Vec::<u64>::new()
    );
    retry_while_locked(|| rebuild_with_intervals(dir.path(), 100_000, 4));
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    assert!(
        index.len() >= 3 && index.iter().all(|position| position % 4 == 0),
        "{index:?}"
    );
    assert_summaries_as_replayed(&stopped_store(dir.path()), &points_of(dir.path()), index[0]);
}
