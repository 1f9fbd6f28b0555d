//! Year points (issue 12 item 4): a year summary as of any position, from the nearest point
//! and the events after it, equals the full projections replayed from position 1; a closed
//! year is written once, not at every point; a damaged point, one of another log or none at
//! all sends the report down the full projections' path (`None`), never a wrong figure; a
//! rebuild leaves points on a log that had none. The same holds for the budget, companies and
//! training hours reports (`report_as_of`): byte-identical figures, registrations and
//! companies report at every position, through profile changes, new modules and reversals.

use std::path::Path;
use std::sync::Arc;

use ledger_domain::command::ReverseRedemption;
use ledger_domain::{Command, Theme};
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

/// A second company, registered for 2024 only, with vouchers paid in November 2024 and used
/// for training in 2025 (counted under its 2024 profile), then registered for 2025 in another
/// sector and size class: its 2025 hours move to the new sector. Returns its redemption ids.
async fn registered_late(
    engine: &Engine,
    module: &str,
    who: std::ops::Range<u8>,
) -> Vec<uuid::Uuid> {
    let company = enterprise(4_030_193);
    accept(engine, OPERATOR, register(&company, 2024, "10")).await;
    accept(engine, OPERATOR, issue(&company, 20, "2024-11-12")).await;
    let mut redemption_ids = Vec::new();
    for who in who {
        let command = redeem(&company, "AG-1", module, who, 1, "2025-05-02");
        if let Command::RedeemHours(redemption) = &command {
            redemption_ids.push(redemption.redemption_id);
        }
        accept(engine, provider_principal("AG-1"), command).await;
    }
    let mut registration = register(&company, 2025, "60");
    if let Command::RegisterCompany(registering) = &mut registration {
        registering.nace_sector = "10.11".into();
    }
    accept(engine, OPERATOR, registration).await;
    redemption_ids
}

/// [`two_years`], then what moves a year's breakdowns other than a redemption: a second module
/// with other themes, a company whose later registration moves its hours to another sector
/// ([`registered_late`]), a reversal of one of its redemptions after that registration, and a
/// third company known only by a 2025 registration (counted under it in 2024 too).
async fn profiles_move(engine: &Engine) {
    two_years(engine).await;
    let mut module = approve_module("M-2", "AG-1", 40);
    if let Command::ApproveModule(approval) = &mut module {
        approval.themes = vec![Theme::Languages, Theme::Green];
    }
    accept(engine, ADMIN, module).await;
    let redemption_ids = registered_late(engine, "M-2", 10..13).await;
    let reversal = Command::ReverseRedemption(ReverseRedemption {
        redemption_id: redemption_ids[1],
        provider_id: id("AG-1"),
        reason: "training cancelled".into(),
        reversed_on: date("2025-06-21"),
    });
    accept(engine, provider_principal("AG-1"), reversal).await;
    accept(
        engine,
        OPERATOR,
        register(&enterprise(4_030_194), 2025, "3"),
    )
    .await;
    let command = redeem(&enterprise(4_030_193), "AG-1", "M-1", 14, 2, "2025-05-03");
    accept(engine, provider_principal("AG-1"), command).await;
}

/// Every position from `from` on, every year: the year report from the points is the full
/// projections' (budgets, the year's whole figures, every company's profile in the year, the
/// companies report), at the same position.
fn assert_reports_as_replayed(store: &Store, points: &YearPoints, from: u64) {
    let reader = store.reader();
    for position in from..=store.head().position {
        let replayed = replay_to(&reader, position).expect("replay").projections;
        let budgets = points
            .budgets_as_of(&reader, position)
            .expect("budgets")
            .unwrap_or_else(|| panic!("a point at or before {position}"));
        assert_eq!(budgets.position, position);
        assert_eq!(budgets.budgets, replayed.budgets, "budgets at {position}");
        for year in YEARS {
            let report = points
                .report_as_of(&reader, position, year)
                .expect("report")
                .unwrap_or_else(|| panic!("a point at or before {position}"));
            assert_eq!(report.position, position);
            assert_eq!(report.year, year);
            assert_eq!(report.budgets, replayed.budgets, "budgets at {position}");
            let figures = replayed.years.get(&year).cloned().unwrap_or_default();
            assert_eq!(report.figures, figures, "{year} at {position}");
            // Each company's profile in the year, as the projections count it (the fold leaves
            // names out: no report of a year reads them).
            assert_eq!(report.companies_known(), replayed.companies.len());
            for company in replayed.companies.keys() {
                let counted = |profile: &ledger_projections::CompanyProfile| {
                    (profile.size_class, profile.sector.clone())
                };
                assert_eq!(
                    report.profile_of(company).map(counted),
                    replayed.profile_of(company, year).map(counted),
                    "{company} in {year} at {position}"
                );
            }
            assert_eq!(
                report.companies_report(),
                replayed.companies_report(year),
                "companies of {year} at {position}"
            );
        }
    }
}

#[tokio::test]
async fn a_year_report_as_of_any_position_equals_the_full_projections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 3);
    profiles_move(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    assert!(index.len() >= 8, "points along the way: {index:?}");
    let points = points_of(dir.path());
    assert_reports_as_replayed(&store, &points, index[0]);
    assert_summaries_as_replayed(&store, &points, index[0]);
    // The second company's 2025 hours (2 of 3 left after the reversal, then 2 more: 4) moved to
    // its new sector: the case the fold must follow.
    let replayed = replay_to(&store.reader(), store.head().position)
        .expect("replay")
        .projections;
    let by_sector = &replayed.years[&2025].hours.by_sector;
    assert_eq!(by_sector.get("10"), Some(&4), "{by_sector:?}");
    // Registrations and modules are written where they moved, not at every point.
    let registered_2024 = dir_of(dir.path(), "registered-2024")
        .positions()
        .expect("listed");
    let modules = dir_of(dir.path(), "modules").positions().expect("listed");
    assert!(
        registered_2024.len() == 2 && modules.len() < index.len(),
        "2024 {registered_2024:?}, modules {modules:?}, points {index:?}"
    );
}

#[tokio::test]
async fn after_a_restart_and_a_rebuild_year_reports_still_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 4);
    two_years(&engine).await;
    engine.shutdown().await.expect("head");
    let engine = start_with_points(dir.path(), &clock, 4);
    registered_late(&engine, "M-1", 20..26).await;
    engine.shutdown().await.expect("head");
    let index = dir_of(dir.path(), "index").positions().expect("listed");
    assert_reports_as_replayed(&stopped_store(dir.path()), &points_of(dir.path()), index[0]);

    // A rebuild writes every point again, of this version, and they agree as well.
    let rebuilt = tempfile::tempdir().expect("temp dir");
    let engine = start_with_points(rebuilt.path(), &clock, 1_000_000);
    profiles_move(&engine).await;
    engine.shutdown().await.expect("head");
    retry_while_locked(|| rebuild_with_intervals(rebuilt.path(), 100_000, 5));
    let index = dir_of(rebuilt.path(), "index").positions().expect("listed");
    assert!(index.len() >= 3, "{index:?}");
    assert_reports_as_replayed(
        &stopped_store(rebuilt.path()),
        &points_of(rebuilt.path()),
        index[0],
    );
}

#[tokio::test]
async fn a_year_report_without_a_usable_part_is_left_to_the_full_projections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start_with_points(dir.path(), &clock, 3);
    profiles_move(&engine).await;
    engine.shutdown().await.expect("head");
    let store = stopped_store(dir.path());
    let reader = store.reader();
    let points = points_of(dir.path());
    let head = store.head().position;
    assert!(points
        .report_as_of(&reader, head, 2025)
        .expect("read")
        .is_some());
    // The newest registrations of 2025 rewritten as of another version (intact, of this log):
    // every report of that point is left to the full projections (the companies of any year
    // may be counted under them).
    let registered = dir_of(dir.path(), "registered-2025");
    let holder = *registered
        .positions()
        .expect("listed")
        .last()
        .expect("written");
    let hash = reader.read_at(holder).expect("entry").hash;
    let head_of_holder = ledger_store::Head {
        position: holder,
        hash,
    };
    registered
        .save(&head_of_holder, &[1u8, 0])
        .expect("rewritten");
    for year in YEARS {
        assert_eq!(
            points.report_as_of(&reader, head, year).expect("read"),
            None
        );
    }
    // The year summaries and the budgets do not read the registrations: still from the points.
    assert!(points
        .summary_as_of(&reader, head, 2025)
        .expect("read")
        .is_some());
    assert!(points.budgets_as_of(&reader, head).expect("read").is_some());
}
