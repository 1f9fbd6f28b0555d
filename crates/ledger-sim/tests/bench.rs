//! Smoke test of `voucher-ledger-sim bench` as a real process: it runs with small figures, prints
//! every figure line and exits 0. Never asserts on speed: CI machines are shared and noisy.

use std::process::Command;

#[test]
fn bench_runs_and_prints_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_voucher-ledger-sim"))
        .args([
            "bench",
            "--requests",
            "400",
            "--clients",
            "4",
            "--batch-len",
            "50",
        ])
        // The demo settings name config/policy.toml relative to the workspace root.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("voucher-ledger-sim starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for figure in [
        "store ceiling (a)",
        "store ceiling ×50 (a)",
        "unary redemptions (b)",
        "1 client, unary (b)",
        "batched ×50 (b)",
        "writer, batched",
        "rebuild (c)",
        "peak memory",
        "p50",
        "p99",
        "p999",
        "of the store ceiling",
    ] {
        assert!(stdout.contains(figure), "no {figure:?} in:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("(400 in").count(),
        5,
        "each of the five timed phases writes the 400 records or redemptions asked for:\n{stdout}"
    );
}

#[test]
fn bench_with_a_history_prints_the_history_lines() {
    let output = Command::new(env!("CARGO_BIN_EXE_voucher-ledger-sim"))
        .args([
            "bench",
            "--requests",
            "200",
            "--clients",
            "4",
            "--batch-len",
            "50",
            "--history",
            "1",
            // 1/200 of a year of the scheme: a few hundred requests.
            "--history-scale",
            "200",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("voucher-ledger-sim starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --history failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for figure in [
        "unary redemptions (b)",
        "batched ×50 (b)",
        "rebuild (c)",
        "history ",
        "1 years 2016-2016 (scale 200)",
        "data folder ",
        "bytes per event",
        "restart to serving ",
        "in a process of its own",
        "unary redemptions (e)",
        "server alone, peak ",
        "while serving the as_of reports",
        "as_of report ",
        "median",
        "peak memory ",
    ] {
        assert!(stdout.contains(figure), "no {figure:?} in:\n{stdout}");
    }
    // Three reports as_of earlier positions, the first ones inside the simulated year.
    assert!(stdout.contains("2016 as of "), "{stdout}");
    assert_eq!(
        stdout.matches("(200 in").count(),
        6,
        "the timed phases run on top of the history as without it, and the unary phase (e) \
         against the server alone:\n{stdout}"
    );
    // The server alone's memory is read from its own process: a figure, not "unknown".
    let alone = stdout
        .lines()
        .find(|line| line.starts_with("server alone, peak"))
        .expect("the server alone's line");
    assert!(!alone.contains("unknown"), "{alone}");
    assert!(
        stderr.contains("history: year 2016:") && stderr.contains("figures as planned"),
        "{stderr}"
    );
}

#[test]
fn bench_on_postgresql_prints_each_phase_as_a_ratio_to_sled() {
    if ledger_store_pg::cluster::binaries().is_none() {
        eprintln!("SKIPPED bench_on_postgresql_prints_each_phase_as_a_ratio_to_sled: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_voucher-ledger-sim"))
        .args([
            "bench",
            "--requests",
            "200",
            "--clients",
            "4",
            "--batch-len",
            "50",
            "--store",
            "postgres",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("voucher-ledger-sim starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --store postgres failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for figure in [
        "on postgresql (d): a primary and one synchronous standby",
        "unary redemptions (d)",
        "1 client, unary (d)",
        "batched ×50 (d)",
        "writer, batched (d)",
        "of sled's",
    ] {
        assert!(stdout.contains(figure), "no {figure:?} in:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("(200 in").count(),
        8,
        "the five timed phases of sled and the three of postgresql write the 200 asked for:\n{stdout}"
    );
}
