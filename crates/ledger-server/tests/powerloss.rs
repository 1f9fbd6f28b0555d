//! Power loss under the real `voucher-ledger` binary: its data folder is on `ledger-powerfs`, a
//! FUSE filesystem that keeps what was not `fsync`ed/`fdatasync`ed (file contents, and the
//! names in a directory not synced since they changed) in a volatile layer, as a disk's write
//! cache would. A SIGKILL alone leaves the kernel's page cache, so `crash.rs` cannot tell
//! whether the store syncs everything it relies on; here, after every kill of a process that
//! had the folder open (the server under load, during a graceful stop, an offline `rebuild`, a
//! start), the power is cut: the filesystem is unmounted, everything not synced is put back as
//! the last sync left it, except, at most cuts, a seeded part of it: the unsynced blocks the
//! disk had written back in the order they were written, the last one torn (its first
//! sectors only), and a prefix of the unsynced name changes; then it is mounted
//! again and the server restarted. After each restart, the checks of `crash.rs` (in
//! `crash_support`): every acknowledged request in the log exactly once at its receipt's
//! positions, the chain recomputed, retries answered `replayed` exactly for what the log holds,
//! wallets and reports equal to the model, the trial balance zero; regularly `verify
//! --expect-head` and `rebuild` (the projections equal a rebuild from position 1).
//!
//! `cargo test -p ledger-server --test powerloss` runs 20 cycles. The long campaign:
//! `POWERLOSS_CYCLES=200 cargo test --release -p ledger-server --test powerloss -- --ignored --nocapture`
//! (`CRASH_SEED=N` repeats the choices of a printed seed; `POWERLOSS_REORDERED=1` lets the
//! unsynced blocks reach the disk in any order instead of the order they were written). Where
//! FUSE cannot be mounted (no `/dev/fuse`, not root) the tests say so and pass without checking
//! anything.

mod crash_support;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ledger_powerfs::{CutReport, PowerCut, PowerFs};

use crash_support::*;

/// Cycles of the long campaign when `POWERLOSS_CYCLES` does not say.
const LONG_POWERLOSS_CYCLES: u32 = 200;

/// What the power cuts of a campaign put back, summed.
#[derive(Debug, Default)]
struct CutTotals {
    cuts: u64,
    cuts_losing_everything_unsynced: u64,
    blocks_lost: u64,
    blocks_kept: u64,
    blocks_torn: u64,
    names_lost: u64,
    names_kept: u64,
}

impl CutTotals {
    fn add(&mut self, cut: PowerCut, report: CutReport) {
        self.cuts += 1;
        if cut == PowerCut::DiscardAll {
            self.cuts_losing_everything_unsynced += 1;
        }
        self.blocks_lost += report.blocks_lost;
        self.blocks_kept += report.blocks_kept;
        self.blocks_torn += report.blocks_torn;
        self.names_lost += report.names_lost;
        self.names_kept += report.names_kept;
    }
}

impl std::fmt::Display for CutTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "power cuts                              {} ({} losing everything unsynced)\n\
             unsynced 4 KiB blocks at the cuts       {} lost, {} kept whole, {} torn\n\
             unsynced name changes at the cuts       {} lost, {} kept",
            self.cuts,
            self.cuts_losing_everything_unsynced,
            self.blocks_lost,
            self.blocks_kept,
            self.blocks_torn,
            self.names_lost,
            self.names_kept
        )
    }
}

/// The crash campaign of `crash.rs`, with the data folder on a power-loss filesystem and a
/// power cut after every kill. `None` when FUSE cannot be mounted here.
async fn power_loss_campaign(cycles: u32, full_check_every: u32) -> Option<(Stats, CutTotals)> {
    let folders = tempfile::Builder::new()
        .prefix("voucher-ledger-powerloss-")
        .tempdir()
        .expect("a temporary folder");
    let disk = folders.path().join("disk");
    let mountpoint = folders.path().join("mnt");
    std::fs::create_dir_all(&disk).expect("the disk folder");
    std::fs::create_dir_all(&mountpoint).expect("the mountpoint");
    let power = match PowerFs::mount(&disk, &mountpoint) {
        Ok(power) => Arc::new(Mutex::new(power)),
        Err(error) => {
            println!(
                "skipped: the power-loss filesystem cannot be mounted here (FUSE needs \
                 /dev/fuse and root): {error}"
            );
            return None;
        }
    };
    let totals = Arc::new(Mutex::new(CutTotals::default()));
    let reordered = std::env::var_os("POWERLOSS_REORDERED").is_some();
    let after_kill: AfterKill = {
        let power = Arc::clone(&power);
        let totals = Arc::clone(&totals);
        Box::new(move |rng: &mut Rng| {
            // The first cut, and one in four after it, loses everything unsynced (the first
            // one finds the data folder as new as it gets); at the others the disk had written
            // back part of it, in the order it was written, and the power went off in the
            // middle of a block (a torn write). `POWERLOSS_REORDERED` draws the part in any
            // order instead, which sled 0.34 does not always survive (README, Durability).
            let first = totals.lock().unwrap_or_else(PoisonError::into_inner).cuts == 0;
            let seed = rng.next_u64();
            let cut = if first || rng.between(0, 3) == 0 {
                PowerCut::DiscardAll
            } else if reordered {
                PowerCut::Reordered { seed }
            } else {
                PowerCut::InOrder { seed }
            };
            let report = tokio::task::block_in_place(|| {
                power
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .cut_power(cut)
            })
            .expect("the power is cut and the filesystem mounted again");
            totals
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(cut, report);
        })
    };
    let stats = campaign_on(
        cycles,
        full_check_every,
        (Duration::from_millis(200), Duration::from_millis(1000)),
        Some(&mountpoint.join("data")),
        Some(after_kill),
    )
    .await;
    let power = Arc::try_unwrap(power).expect("the campaign let go of the filesystem");
    power
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .unmount()
        .expect("a clean unmount");
    let totals = Arc::try_unwrap(totals)
        .expect("the campaign let go of the totals")
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    println!("{totals}");
    Some((stats, totals))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn power_cut_under_load_loses_no_acknowledged_event() {
    let _serial = SERIAL.lock().await;
    let Some((stats, totals)) = power_loss_campaign(CI_CYCLES, 2).await else {
        return;
    };
    assert_eq!(stats.events_lost, 0);
    assert!(
        stats.events_acknowledged > 0,
        "the load acknowledged nothing"
    );
    assert!(totals.cuts >= u64::from(CI_CYCLES), "{totals}");
    assert!(
        totals.blocks_lost > 0,
        "the cuts never found an unsynced block to lose: {totals}"
    );
}

/// The long campaign, by hand or in a nightly job:
/// `POWERLOSS_CYCLES=200 cargo test --release -p ledger-server --test powerloss -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: 200 power-loss cycles; run it in release"]
async fn power_cut_under_load_loses_no_acknowledged_event_long() {
    let _serial = SERIAL.lock().await;
    let cycles = std::env::var("POWERLOSS_CYCLES")
        .ok()
        .map_or(LONG_POWERLOSS_CYCLES, |text| {
            text.trim().parse().expect("POWERLOSS_CYCLES is a number")
        });
    let Some((stats, _totals)) = power_loss_campaign(cycles, 10).await else {
        return;
    };
    assert_eq!(stats.events_lost, 0);
}
