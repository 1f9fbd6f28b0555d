//! `voucher-ledger simulate` as a real process: a scaled-down 2024 on a fresh data folder,
//! whose printed figures must equal the scaled published figures exactly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The scale of the end-to-end run: 1/40 of 2024 is about 2 300 requests, a few seconds in a
/// debug build.
const SCALE: u64 = 40;
const SEED: u64 = 7;
/// Longest the scaled run may take, far above its usual few seconds, so that only a hang or a
/// dramatic slowdown fails the test.
const RUN_TIME_MAX: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// `voucher-ledger simulate ARGS` with only the policy file taken from the environment.
fn simulate(args: &[&str], data: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_voucher-ledger"));
    command
        .arg("simulate")
        .args(args)
        .arg("--data")
        .arg(data)
        .env(
            "VOUCHER_LEDGER__POLICY_FILE",
            workspace_root().join("config/policy.toml"),
        )
        .env_remove("VOUCHER_LEDGER_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VOUCHER_LEDGER__")
            && name != "VOUCHER_LEDGER__POLICY_FILE"
        {
            command.env_remove(name);
        }
    }
    command.output().expect("voucher-ledger can be started")
}

/// The value printed after `label` on its line of the report, without "EUR" and without the
/// spaces that group thousands.
fn figure(report: &str, label: &str) -> String {
    let line = report
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("the report has a line {label:?}:\n{report}"));
    line.trim_start()[label.len()..]
        .replace("EUR", "")
        .split_whitespace()
        .collect()
}

fn cents(text: &str) -> u64 {
    let (euros, cents) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("{text:?} is an amount with cents"));
    assert_eq!(cents.len(), 2, "{text:?} has two decimals");
    euros.parse::<u64>().expect("whole euros") * 100 + cents.parse::<u64>().expect("cents")
}

fn count(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is a whole number"))
}

#[test]
fn a_scaled_year_prints_the_scaled_published_figures_exactly() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    let started = Instant::now();
    let output = simulate(
        &[
            "--year",
            "2024",
            "--seed",
            &SEED.to_string(),
            "--scale",
            &SCALE.to_string(),
        ],
        &data,
    );
    let elapsed = started.elapsed();
    let report = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "simulate failed ({}):\n{report}\n{log}",
        output.status
    );
    eprintln!("simulate --scale {SCALE} took {elapsed:?}");
    assert!(elapsed < RUN_TIME_MAX, "simulate took {elapsed:?}");

    // 7 657 000.00 / 40, 9 539 / 40, 27 860 / 40, 496 063 / 40.
    let budget_cents = 765_700_000 / SCALE;
    let hours = 496_063 / SCALE;
    assert_eq!(cents(&figure(&report, "regional budget")), budget_cents);
    assert_eq!(
        count(&figure(&report, "companies benefiting")),
        9_539 / SCALE
    );
    assert_eq!(count(&figure(&report, "workers trained")), 27_860 / SCALE);
    assert_eq!(count(&figure(&report, "hours of training")), hours);
    let spent = cents(&figure(&report, "Region's spend (EUR 15.00 per hour)"));
    assert_eq!(spent, hours * 1_500);
    let not_spent = cents(&figure(&report, "budget not spent"));
    assert_eq!(not_spent, budget_cents - hours * 1_500);
    let committed = cents(&figure(&report, "committed to outstanding vouchers"));
    let available = cents(&figure(&report, "available"));
    let released = cents(&figure(&report, "of which released by expiry"));
    assert_eq!(committed + available, not_spent);
    assert!(released > 0, "some vouchers expired:\n{report}");
    assert!(released <= available);
    assert!(count(&figure(&report, "redemptions reversed")) > 0);
    assert!(count(&figure(&report, "events")) > count(&figure(&report, "redemptions recorded")));
    // The data folder holds the new ledger.
    assert!(std::fs::read_dir(&data)
        .expect("the data folder exists")
        .next()
        .is_some());
    // The national register numbers of the synthetic workers never show.
    assert!(!log.contains("national_number"));
}

#[test]
fn a_data_folder_in_use_is_refused() {
    let home = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(home.path().join("something"), b"kept").expect("a file can be written");
    let output = simulate(&["--year", "2024", "--scale", "9000"], home.path());
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("is not empty"), "{log}");
    assert_eq!(
        std::fs::read(home.path().join("something")).expect("the file is still there"),
        b"kept"
    );
}

#[test]
fn only_2024_can_be_simulated() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let output = simulate(&["--year", "2023"], &home.path().join("data"));
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("2024"), "{log}");
    assert!(!home.path().join("data").exists());
}
