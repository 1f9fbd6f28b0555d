//! Builders of commands and logs shared by the tests.

use std::path::Path;

use ledger_proto::event::v1::{event::Payload, BudgetOpened};
use ledger_store::{NewCommand, NewEvent, RecordedEvent, Store};
use uuid::Uuid;

/// A deterministic UUID, so that failures name the same ids on every run.
pub fn uuid(seed: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | seed)
}

/// An event of `stream` for the command `request_id`; `seed` makes its payload distinct.
pub fn event(request_id: Uuid, stream: &str, seed: u128) -> NewEvent {
    NewEvent {
        stream: stream.to_owned(),
        event_id: uuid(0x1_0000 + seed),
        request_id,
        principal: "administration".to_owned(),
        recorded_at: "2025-09-30T10:15:00Z".to_owned(),
        business_date: "2025-09-30".to_owned(),
        payload: Payload::BudgetOpened(BudgetOpened {
            year: 2025,
            allocated_eur: format!("{seed}.00"),
        }),
        names: None,
    }
}

/// A command `request_seed` whose events belong to `streams`, one event per name.
pub fn command(request_seed: u128, streams: &[&str]) -> NewCommand {
    let request_id = uuid(request_seed);
    NewCommand {
        request_id,
        request_digest: [request_seed as u8; 32],
        recorded_at: "2025-09-30T10:15:00Z".to_owned(),
        events: streams
            .iter()
            .enumerate()
            .map(|(index, stream)| event(request_id, stream, request_seed * 100 + index as u128))
            .collect(),
    }
}

/// Appends `event_count` events, one command of one event per group, alternating two streams,
/// and closes the store.
pub fn write_log(dir: &Path, event_count: u64) -> Vec<RecordedEvent> {
    let mut store = Store::open(dir).expect("open a new log");
    let mut recorded = Vec::new();
    for index in 0..event_count {
        let stream = if index % 2 == 0 {
            "budget/2025"
        } else {
            "provider/AG-0012"
        };
        let group = store
            .append(vec![command(u128::from(index) + 1, &[stream])])
            .expect("append");
        recorded.extend(group.into_iter().flatten());
    }
    recorded
}

/// Opens the folder as a plain sled database, as the tests that edit a log behind the store's
/// back do. A store closed a moment ago in this process may still hold sled's file lock (sled's
/// threads, and the store's own, let go of it shortly after the drop), so a lock error is
/// waited out, bounded, as `Store::open` does.
pub fn open_sled_retrying(dir: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(error)
                if error.to_string().contains("lock")
                    && started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("sled opens {}: {error}", dir.display()),
        }
    }
}
