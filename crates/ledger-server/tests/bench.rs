//! Smoke test of `voucher-ledger bench` as a real process: it runs with small figures, prints
//! every figure line and exits 0. Never asserts on speed: CI machines are shared and noisy.

use std::process::Command;

#[test]
fn bench_runs_and_prints_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_voucher-ledger"))
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
        .expect("voucher-ledger starts");
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
