//! Crash safety of the real `voucher-ledger` binary: an acknowledged issuance or redemption is
//! money, and after any crash it is in the log exactly once.
//!
//! A campaign drives registrations, issuances, redemptions and reversals, and usage codes
//! (orders, several filings against each down to zero, cancels), from several callers at once,
//! each with its own companies and workers, so that a simple model predicts every answer. Each cycle SIGKILLs the server at a moment drawn from a seeded RNG and starts it
//! again on the same folder; in turn, a cycle also kills a graceful stop while it writes its
//! final checkpoint, an offline `rebuild` midway, or the replay at start before the server
//! listens. Each start draws a checkpoint interval, mostly a few events, so that many kills
//! land in a group that carries a checkpoint. After each restart:
//!
//! - the log, read with ReadEvents from where the previous cycle stopped, chains (SHA-256
//!   recomputed here) with no gap, up to the head the server reports;
//! - every acknowledged request is in it exactly once, at its receipt's positions, and a retry
//!   answers that receipt again (`replayed`); a request the crash left unanswered is in it at
//!   most once, and its retry says `replayed` exactly when it is;
//! - each wallet holds what the acknowledged requests (and the unanswered ones that made it)
//!   give it, no batch holds more than it was issued with; the budget, the year's figures and
//!   the provider's statement follow the same model, and the trial balance is zero;
//! - each company's usage codes are the ones ordered, each with the hours filed and left and
//!   its status, and the hours reserved per company (the code list and the wallet) are what the
//!   model's open codes hold; a redemption without a code of one hour more than a company's
//!   free vouchers is refused `INSUFFICIENT_VOUCHERS`: no voucher is both earmarked and spent
//!   elsewhere;
//! - regularly, after a SIGTERM: `voucher-ledger verify` says the folder is sound at the head
//!   computed here (the checkpoint the restarted server wrote equals a rebuild from position
//!   1), and the reports, the usage codes and the hours reserved per company included, are
//!   the same before and after an offline `rebuild`.
//!
//! Two more tests stop the server with a failing disk: a really full filesystem (a small
//! loop-mounted ext4 image, else tmpfs; skipped with a message where mounting is not allowed)
//! and an injected `fdatasync` failure (`FAIL_FDATASYNC_AFTER_VARIABLE`, honoured by builds with
//! debug assertions only). The server must stop, must not have acknowledged the group it could
//! not make durable, and must restart with nothing lost once the disk works again.
//!
//! The campaign (load, model, log audit, checks) lives in `crash_support/`, which
//! `powerloss.rs` runs again with a power cut after every kill.
//!
//! `cargo test -p ledger-server --test crash` runs 20 cycles. The long campaign:
//! `CRASH_CYCLES=500 cargo test --release -p ledger-server --test crash -- --ignored --nocapture`
//! (`CRASH_SEED=N` repeats the choices of a printed seed; timings still differ).

mod crash_support;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crash_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let _serial = SERIAL.lock().await;
    let stats = campaign(
        CI_CYCLES,
        2,
        (Duration::from_millis(200), Duration::from_millis(1000)),
    )
    .await;
    assert_eq!(stats.events_lost, 0);
    assert!(
        stats.events_acknowledged > 0,
        "the load acknowledged nothing"
    );
}

/// The long campaign, by hand or in a nightly job:
/// `CRASH_CYCLES=500 cargo test --release -p ledger-server --test crash -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: 500 crash cycles; run it in release"]
async fn sigkill_under_load_loses_no_acknowledged_event_long() {
    let _serial = SERIAL.lock().await;
    let cycles = std::env::var("CRASH_CYCLES")
        .ok()
        .map_or(LONG_CYCLES, |text| {
            text.trim().parse().expect("CRASH_CYCLES is a number")
        });
    let stats = campaign(
        cycles,
        10,
        (Duration::from_millis(200), Duration::from_millis(1000)),
    )
    .await;
    assert_eq!(stats.events_lost, 0);
}

/// A start replays the events after the last checkpoint. If a start did not count them towards
/// the next checkpoint, a server killed every run before `checkpoint_interval_events` new events
/// would replay a longer tail at every start, without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_crashes_do_not_lengthen_the_replay_at_start() {
    const INTERVAL_EVENTS: u64 = 40;
    const WRITES_PER_RUN: u32 = 30;
    let _serial = SERIAL.lock().await;
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-replay-")
        .tempdir()
        .expect("a temporary folder");
    let mut campaign =
        Campaign::start(&home.path().join("data"), home.path(), seed_from_env()).await;
    campaign.checkpoint_interval_events = Some(INTERVAL_EVENTS);
    campaign.server.take().expect("a server").stop().await;
    campaign.start_server(&[]).await;
    let mut replays = Vec::new();
    for _ in 0..5 {
        let acknowledged = campaign.write_in_turn(WRITES_PER_RUN).await;
        kill_now(campaign.server.take().expect("a server").process()).await;
        campaign.start_server(&[]).await;
        replays.push(
            campaign
                .last_replay_events
                .expect("a start from a checkpoint"),
        );
        campaign.check_after_restart(&acknowledged, &[]).await;
    }
    assert!(
        replays
            .iter()
            .all(|events| *events < INTERVAL_EVENTS + u64::from(WRITES_PER_RUN)),
        "events replayed at each start, with a checkpoint every {INTERVAL_EVENTS} events and \
         {WRITES_PER_RUN} events per run: {replays:?}"
    );
    campaign.finish().await;
}

// ---- a failing disk ----

/// The groups of events after `after`, in order, by the time their group was recorded (one
/// `recorded_at` per group): the request ids of each.
fn groups_after(seen: &[Seen], after: u64) -> Vec<BTreeSet<String>> {
    let mut groups: Vec<(String, BTreeSet<String>)> = Vec::new();
    for event in seen.iter().filter(|event| event.position > after) {
        match groups.last_mut() {
            Some((recorded_at, requests)) if *recorded_at == event.recorded_at => {
                requests.insert(event.request_id.clone());
            }
            _ => groups.push((
                event.recorded_at.clone(),
                BTreeSet::from([event.request_id.clone()]),
            )),
        }
    }
    groups.into_iter().map(|(_, requests)| requests).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_fdatasync_stops_the_server_before_it_acknowledges_the_group() {
    if !cfg!(debug_assertions) {
        println!(
            "skipped: {} is honoured only by builds with debug assertions",
            ledger_store::FAIL_FDATASYNC_AFTER_VARIABLE
        );
        return;
    }
    let _serial = SERIAL.lock().await;
    let seed = seed_from_env();
    println!("injected fdatasync failures, seed {seed}");
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-fsync-")
        .tempdir()
        .expect("a temporary folder");
    let mut campaign = Campaign::start(&home.path().join("data"), home.path(), seed).await;
    for round in 0..3 {
        // The server opened with the variable set syncs `syncs_ok` groups, then fails the next.
        campaign.audit.catch_up(&campaign.channel()).await;
        campaign.server.take().expect("a server").stop().await;
        let syncs_ok = campaign.rng.between(5, 60);
        let head_before = campaign.audit.position;
        campaign
            .start_server(&[(
                ledger_store::FAIL_FDATASYNC_AFTER_VARIABLE.to_owned(),
                syncs_ok.to_string(),
            )])
            .await;
        let log_path = campaign.server.as_ref().expect("a server").log_path.clone();
        let (acknowledged, unanswered, status) = campaign
            .burst(Ending::ServerStops(Duration::from_secs(60)))
            .await;
        assert_eq!(
            status.signal(),
            Some(6),
            "the server aborts on a failed fdatasync (round {round}, {status})"
        );
        let log = read_log(&log_path);
        assert!(
            log.contains("injected fdatasync failure")
                && log.contains("write to the event log failed, stopping the process"),
            "the server names the failed write; its stderr:\n{}",
            log_tail(&log_path)
        );

        campaign.start_server(&[]).await;
        let channel = campaign.channel();
        let seen = campaign.audit.catch_up(&channel).await;
        // The failed group reached sled's file before the failed sync (the page cache survives
        // the process), so it is in the log; the groups before it were synced and answered.
        let groups = groups_after(&seen, head_before);
        assert!(
            groups.len() as u64 == syncs_ok || groups.len() as u64 == syncs_ok + 1,
            "{} groups written by a server that synced {syncs_ok}",
            groups.len()
        );
        let acknowledged_ids: BTreeSet<String> = acknowledged
            .iter()
            .map(|(op, _)| op.request_id.to_string())
            .collect();
        if groups.len() as u64 == syncs_ok + 1 {
            let failed = groups.last().expect("the failed group");
            assert!(
                failed.is_disjoint(&acknowledged_ids),
                "requests of the group whose fdatasync failed were acknowledged: {:?}",
                failed.intersection(&acknowledged_ids).collect::<Vec<_>>()
            );
        }
        campaign
            .check_after_restart(&acknowledged, &unanswered)
            .await;
        println!(
            "round {round}: fdatasync failed after {syncs_ok} syncs; {} acknowledged, {} unanswered, {} groups in the log",
            acknowledged.len(),
            unanswered.len(),
            groups.len()
        );
    }
    let stats = campaign.finish().await;
    assert_eq!(stats.events_lost, 0);
}

/// A small filesystem mounted for the test: a loop-mounted ext4 image (real `fdatasync`), or
/// tmpfs where loop devices are not available. Unmounted on drop.
struct SmallFilesystem {
    mount_point: PathBuf,
    kind: &'static str,
}

impl SmallFilesystem {
    fn mount(scratch: &Path, megabytes: u64) -> Result<SmallFilesystem, String> {
        let mount_point = scratch.join("mnt");
        std::fs::create_dir_all(&mount_point).map_err(|error| error.to_string())?;
        let image = scratch.join("disk.img");
        let ext4 = (|| -> Result<(), String> {
            let file = File::create(&image).map_err(|error| error.to_string())?;
            file.set_len(megabytes * 1024 * 1024)
                .map_err(|error| error.to_string())?;
            run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()])?;
            run(
                "mount",
                &[
                    "-o",
                    "loop",
                    &image.to_string_lossy(),
                    &mount_point.to_string_lossy(),
                ],
            )
        })();
        if ext4.is_ok() {
            return Ok(SmallFilesystem {
                mount_point,
                kind: "loop-mounted ext4",
            });
        }
        let size = format!("size={megabytes}m");
        match run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &size,
                "tmpfs",
                &mount_point.to_string_lossy(),
            ],
        ) {
            Ok(()) => Ok(SmallFilesystem {
                mount_point,
                kind: "tmpfs",
            }),
            Err(tmpfs) => Err(format!("ext4 image: {ext4:?}; tmpfs: {tmpfs}")),
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = run("umount", &[&self.mount_point.to_string_lossy()]);
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Fills the filesystem of `path` with a file until a write fails for lack of space.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).expect("the filler file can be created");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_all()) {
            Ok(()) => written += chunk.len() as u64,
            Err(_) => return written,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stops_the_server_and_a_restart_after_freeing_space_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let scratch = tempfile::Builder::new()
        .prefix("voucher-ledger-disk-full-")
        .tempdir()
        .expect("a temporary folder");
    let filesystem = match SmallFilesystem::mount(scratch.path(), 32) {
        Ok(filesystem) => filesystem,
        Err(why) => {
            println!(
                "skipped: a small filesystem cannot be mounted here (root and loop devices or \
                 tmpfs are needed): {why}"
            );
            return;
        }
    };
    let seed = seed_from_env();
    println!("full disk on {}, seed {seed}", filesystem.kind);
    let logs = scratch.path().join("logs");
    std::fs::create_dir_all(&logs).expect("a folder for the logs");
    let data = filesystem.mount_point.join("data");
    let mut campaign = Campaign::start(&data, &logs, seed).await;
    // Some history first, written with room to spare.
    let (acknowledged, unanswered, _) = campaign
        .burst(Ending::Sigkill(Duration::from_millis(500)))
        .await;
    campaign.start_server(&[]).await;
    campaign
        .check_after_restart(&acknowledged, &unanswered)
        .await;

    let filler = filesystem.mount_point.join("filler");
    let filled = fill(&filler);
    let log_path = campaign.server.as_ref().expect("a server").log_path.clone();
    let (acknowledged, unanswered, status) = campaign
        .burst(Ending::ServerStops(Duration::from_secs(120)))
        .await;
    assert!(
        !status.success(),
        "the server stops on a full disk ({status})"
    );
    let log = read_log(&log_path);
    println!(
        "disk full after {filled} bytes of filler: server stopped with {status} after {} more acknowledged writes; {} unanswered; its last words:\n{}",
        acknowledged.len(),
        unanswered.len(),
        log.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );

    std::fs::remove_file(&filler).expect("the filler is removed");
    campaign.start_server(&[]).await;
    campaign
        .check_after_restart(&acknowledged, &unanswered)
        .await;
    let stats = campaign.finish().await;
    assert_eq!(stats.events_lost, 0);
    drop(filesystem);
}
