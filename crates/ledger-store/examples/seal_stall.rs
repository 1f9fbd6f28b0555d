//! How long the writer's appends take while a seal of a default segment (200 000 entries) runs
//! beside them, as on the server: one thread appends groups of 100 commands (each append is
//! apply, flush and `fdatasync`, as the committer's), another saves the fingerprints, which
//! seals the range. Prints each phase's appends: count, mean and longest.
//!
//! `cargo run --release -p ledger-store --example seal_stall` (in a temporary folder).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_proto::event::v1::{event::Payload, HoursRedeemed};
use ledger_store::{NewCommand, NewEvent, Store, StoreOptions};
use uuid::Uuid;

const SEGMENT_LEN_EVENTS: u64 = 200_000;
const GROUP_LEN: u64 = 100;

fn command(seed: u64) -> NewCommand {
    let request_id = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | u128::from(seed));
    NewCommand {
        request_id,
        request_digest: [seed as u8; 32],
        recorded_at: "2025-09-30T10:15:00Z".to_owned(),
        events: vec![NewEvent {
            stream: format!("wallet/{}", seed % 5_000),
            event_id: Uuid::from_u128(u128::from(seed) << 64 | 0xe),
            request_id,
            principal: "provider:AG-0012".to_owned(),
            recorded_at: "2025-09-30T10:15:00Z".to_owned(),
            business_date: "2025-09-30".to_owned(),
            // About the size of a redemption (the bench's is 469 bytes encoded).
            payload: Payload::HoursRedeemed(HoursRedeemed {
                redemption_id: Uuid::from_u128(u128::from(seed)).to_string(),
                provider_id: "AG-0012".to_owned(),
                module_id: "MOD-2025-0007".to_owned(),
                enterprise_number: format!("0{:09}", seed % 700),
                worker_pseudonym: format!("{:064x}", u128::from(seed) * 0x9e37_79b9_7f4a_7c15),
                hours: 4,
                training_date: "2025-09-30".to_owned(),
                ..HoursRedeemed::default()
            }),
            names: None,
        }],
    }
}

/// Appends groups until `until` says stop; each append's duration.
fn append_until(store: &mut Store, seed: &mut u64, until: impl Fn() -> bool) -> Vec<Duration> {
    let mut took = Vec::new();
    while !until() {
        let group: Vec<NewCommand> = (0..GROUP_LEN)
            .map(|_| {
                *seed += 1;
                command(*seed)
            })
            .collect();
        let started = Instant::now();
        store.append(group).expect("seal_stall: append");
        took.push(started.elapsed());
    }
    took
}

fn line(phase: &str, took: &[Duration]) {
    let total: Duration = took.iter().sum();
    let longest = took.iter().max().copied().unwrap_or_default();
    println!(
        "{phase:<28} {:>6} appends of {GROUP_LEN}, mean {:>8.2} ms, max {:>9.2} ms",
        took.len(),
        total.as_secs_f64() * 1000.0 / took.len().max(1) as f64,
        longest.as_secs_f64() * 1000.0
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("seal-stall-{}", std::process::id()));
    let options = StoreOptions {
        segment_len_events: SEGMENT_LEN_EVENTS,
        ..StoreOptions::default()
    };
    let mut store = Store::open_with_options(&dir, options).expect("seal_stall: open");
    let mut seed = 0u64;
    let preloaded = Instant::now();
    while seed < SEGMENT_LEN_EVENTS + 1_000 {
        let group: Vec<NewCommand> = (0..1_000)
            .map(|_| {
                seed += 1;
                command(seed)
            })
            .collect();
        store.append(group).expect("seal_stall: preload");
    }
    println!(
        "preloaded {seed} events in {:.1} s",
        preloaded.elapsed().as_secs_f64()
    );

    let quiet_until = Instant::now() + Duration::from_secs(5);
    let quiet = append_until(&mut store, &mut seed, || Instant::now() >= quiet_until);
    line("without a seal (5 s)", &quiet);

    let snapshot = store
        .fingerprint_snapshot()
        .expect("seal_stall: a sled log");
    let file = store.fingerprint_file().expect("seal_stall: a sled log");
    let done = Arc::new(AtomicBool::new(false));
    let sealing = {
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            file.save(&snapshot).expect("seal_stall: seal");
            done.store(true, Ordering::SeqCst);
            started.elapsed()
        })
    };
    let during = append_until(&mut store, &mut seed, || done.load(Ordering::SeqCst));
    let sealed_in = sealing.join().expect("seal_stall: the sealing thread");
    line("during the seal", &during);
    println!(
        "seal of {SEGMENT_LEN_EVENTS} entries took {:.2} s",
        sealed_in.as_secs_f64()
    );
    let after_until = Instant::now() + Duration::from_secs(5);
    let after = append_until(&mut store, &mut seed, || Instant::now() >= after_until);
    line("after the seal (5 s)", &after);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
