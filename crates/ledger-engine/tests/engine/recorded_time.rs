//! Recorded times never go backwards along the log, even when the clock does, so that "the
//! ledger as of the end of a day" is found by a binary search that agrees with a scan.

use ledger_engine::recovery::last_position_on;
use ledger_store::Store;

use crate::support::*;

fn recorded_times(dir: &std::path::Path) -> Vec<String> {
    let store = retry_while_locked(|| Store::open(dir));
    store
        .reader()
        .iter(1, store.head().position)
        .map(|recorded| recorded.expect("readable").event.recorded_at)
        .collect()
}

#[tokio::test]
async fn a_clock_set_back_records_the_previous_time_again_also_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let engine = start(dir.path(), &clock);
    accept(&engine, ADMIN, open_budget(2025, "1000000.00")).await;
    clock.set(noon("2025-06-29"));
    accept(&engine, ADMIN, approve_provider("AG-1")).await;
    engine.shutdown().await.expect("head");
    let engine = start(dir.path(), &clock);
    accept(&engine, ADMIN, approve_module("M-1", "AG-1", 40)).await;
    clock.set(noon("2025-07-01"));
    accept(
        &engine,
        OPERATOR,
        register(&enterprise(4_030_192), 2025, "10"),
    )
    .await;
    engine.shutdown().await.expect("head");
    let times = recorded_times(dir.path());
    assert_eq!(
        times,
        vec![
            "2025-06-30T12:00:00.000000Z",
            "2025-06-30T12:00:00.000000Z",
            "2025-06-30T12:00:00.000000Z",
            "2025-07-01T12:00:00.000000Z",
        ]
    );
}

#[tokio::test]
async fn the_last_position_on_a_date_is_what_a_scan_of_the_log_finds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-01");
    let engine = start(dir.path(), &clock);
    let company = enterprise(4_030_192);
    world(&engine, &company, 100).await;
    // Days with several events, days with one, and days with none.
    for (day, redemptions) in [(3, 2), (4, 1), (7, 3), (8, 1), (12, 2)] {
        clock.set(noon(&format!("2025-06-{day:02}")));
        for who in 0..redemptions {
            accept(
                &engine,
                provider_principal("AG-1"),
                redeem(&company, "AG-1", "M-1", who, 1, "2025-06-01"),
            )
            .await;
        }
    }
    engine.shutdown().await.expect("head");
    let times = recorded_times(dir.path());
    let store = retry_while_locked(|| Store::open(dir.path()));
    let reader = store.reader();
    let head = store.head().position;
    for day in 1..=14 {
        let date = date(&format!("2025-06-{day:02}"));
        let end_of_day = format!("{date}T23:59:59.999999Z");
        let scanned = times
            .iter()
            .take_while(|time| time.as_str() <= end_of_day.as_str())
            .count() as u64;
        assert_eq!(
            last_position_on(&reader, date, head).expect("searched"),
            scanned,
            "as of the end of {date}"
        );
    }
    let before = date("2025-05-31");
    assert_eq!(
        last_position_on(&reader, before, head).expect("searched"),
        0
    );
}
