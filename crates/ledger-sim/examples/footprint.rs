//! The heap each part of a data folder's checkpoint takes once decoded, as a start decodes it:
//! where the server's memory goes after a long history (issue 12's memory target).
//!
//! ```text
//! cargo run --release -p ledger-sim --example footprint -- DATA_DIR
//! cargo run --release -p ledger-sim --example footprint -- DATA_DIR --started
//! ```
//!
//! With `--started` it starts the engine on the folder instead (sled opened, the checkpoint
//! decoded, the tail replayed, the ids' fingerprints read, the writer running) and prints the
//! heap the opened store alone holds and the heap of the whole started engine: what a serving
//! process holds besides its state and projections.
//!
//! It counts the bytes the allocator hands out (`stats_alloc` around the system allocator, not
//! the server's jemalloc), so the figures are the live heap, without an allocator's own
//! overhead or its retained pages. Each part's figure is what dropping it gave back.

use std::alloc::System;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use ledger_engine::recovery::Recovered;
use ledger_store::{CheckpointFile, CheckpointFound};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MIB: f64 = 1024.0 * 1024.0;

/// Live heap bytes, in MiB.
fn live_mib() -> f64 {
    let stats = GLOBAL.stats();
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated) as f64
        / MIB
}

/// Prints what dropping `part` gives back, and its encoded size.
fn report<T: serde::Serialize + Default>(name: &str, part: &mut T) {
    let encoded = postcard::to_stdvec(&*part).map_or(0, |bytes| bytes.len());
    let before = live_mib();
    drop(std::mem::take(part));
    println!(
        "{name:<28} heap {:8.1} MiB   encoded {:8.1} MiB",
        before - live_mib(),
        encoded as f64 / MIB
    );
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: footprint DATA_DIR [--started]");
        return ExitCode::FAILURE;
    };
    if std::env::args().nth(2).as_deref() == Some("--started") {
        return started(Path::new(&dir));
    }
    let bytes = match CheckpointFile::in_data_dir(Path::new(&dir)).read() {
        Ok(CheckpointFound::Intact(checkpoint)) => checkpoint.bytes,
        Ok(_) => {
            eprintln!("no intact checkpoint in {dir}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("cannot read the checkpoint of {dir}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let checkpoint_mib = bytes.len() as f64 / MIB;
    let Some(mut recovered) = Recovered::from_checkpoint(&bytes) else {
        eprintln!("the checkpoint of {dir} does not decode");
        return ExitCode::FAILURE;
    };
    drop(bytes);
    println!(
        "checkpoint {checkpoint_mib:.1} MiB; decoded state and projections {:.1} MiB of heap",
        live_mib()
    );

    let state = &mut recovered.state;
    let batches: usize = state.companies.values().map(|c| c.batches.len()).sum();
    let batches_empty: usize = state
        .companies
        .values()
        .flat_map(|c| c.batches.values())
        .filter(|batch| batch.remaining == 0)
        .count();
    let mut codes_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for record in state.usage_codes.values() {
        let status = match (record.status, record.hours_left) {
            (ledger_domain::state::UsageCodeStatus::Open, 0) => "used up".to_owned(),
            (status, _) => format!("{status:?}"),
        };
        *codes_by_status.entry(status).or_default() += 1;
    }
    println!(
        "{} companies, {batches} batches ({batches_empty} empty), {} usage codes {codes_by_status:?}",
        state.companies.len(),
        state.usage_codes.len(),
    );
    report("state.companies", &mut state.companies);
    report("state.worker_module_hours", &mut state.worker_module_hours);
    report("state.batch_ids", &mut state.batch_ids);
    report("state.usage_codes", &mut state.usage_codes);
    report("state.usage_code_orders", &mut state.usage_code_orders);
    report("state (the rest)", state);

    let projections = &mut recovered.projections;
    report("projections.years", &mut projections.years);
    report("projections.wallets", &mut projections.wallets);
    report("projections.companies", &mut projections.companies);
    report(
        "projections.provider_records",
        &mut projections.provider_records,
    );
    report("projections.usage_codes", &mut projections.usage_codes);
    report(
        "projections.company_redemptions",
        &mut projections.company_redemptions,
    );
    report("projections (the rest)", projections);
    println!("left: {:.1} MiB of heap", live_mib());
    ExitCode::SUCCESS
}

/// Resident memory of this process, in MiB (`VmRSS`), 0 where `/proc` has none.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The heap of the opened store alone, then of the whole started engine on `dir`.
fn started(dir: &Path) -> ExitCode {
    use ledger_engine::{Engine, EngineConfig, SystemClock};
    let policy = match std::fs::read_to_string(ledger_testkit::policy_file())
        .map_err(|error| error.to_string())
        .and_then(|text| {
            ledger_domain::PolicyTable::from_toml_str(&text).map_err(|error| error.to_string())
        }) {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("the policy file cannot be read: {error}");
            return ExitCode::FAILURE;
        }
    };
    let before = live_mib();
    match ledger_store::Store::open_with_options(dir, Engine::store_options()) {
        Ok(store) => {
            println!(
                "store opened (sled, segments, stream versions): heap {:.1} MiB",
                live_mib() - before
            );
            drop(store);
        }
        Err(error) => {
            eprintln!("the store of {} cannot be opened: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let before = live_mib();
    let engine = match Engine::start(
        EngineConfig::new(dir, policy),
        std::sync::Arc::new(SystemClock),
    ) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("the engine cannot start on {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "engine started: heap {:.1} MiB, resident {:.1} MiB",
        live_mib() - before,
        resident_mib()
    );
    // The fingerprints of the recorded ids are read by a thread of their own after the start.
    std::thread::sleep(std::time::Duration::from_secs(5));
    println!(
        "5 s later (fingerprints read): heap {:.1} MiB, resident {:.1} MiB",
        live_mib() - before,
        resident_mib()
    );
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(engine.shutdown());
    ExitCode::SUCCESS
}
