//! `voucher-ledger-sim simulate` as a real process: a scaled-down 2024 on a fresh data folder,
//! whose printed figures must equal the scaled published figures exactly.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

/// The scale of the end-to-end run: 1/40 of 2024 is about 2 300 requests, a few seconds in a
/// debug build.
const SCALE: u64 = 40;
const SEED: u64 = 7;

/// `voucher-ledger-sim ARGS` with a clean environment and the repository's policy table.
fn voucher_ledger(args: &[&str]) -> Command {
    ledger_testkit::command(env!("CARGO_BIN_EXE_voucher-ledger-sim"), args)
}

/// `voucher-ledger-sim simulate ARGS --data DATA`, not yet started.
fn simulate_command(args: &[&str], data: &Path) -> Command {
    let mut command = voucher_ledger(&["simulate"]);
    command.args(args).arg("--data").arg(data);
    command
}

/// `voucher-ledger-sim simulate ARGS --data DATA`.
fn simulate(args: &[&str], data: &Path) -> Output {
    simulate_command(args, data)
        .output()
        .expect("voucher-ledger-sim can be started")
}

/// Runs `command`, a simulation that must succeed, and answers its report (stdout) and its log
/// (stderr); both are shown when it fails.
fn simulated(mut command: Command) -> (String, String) {
    let output = command.output().expect("voucher-ledger-sim can be started");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "simulate failed ({}):\n{report}\n{log}",
        output.status
    );
    (report, log)
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
    let (report, log) = simulated(simulate_command(
        &[
            "--year",
            "2024",
            "--seed",
            &SEED.to_string(),
            "--scale",
            &SCALE.to_string(),
        ],
        &data,
    ));
    eprintln!("simulate --scale {SCALE} took {:?}", started.elapsed());

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

/// The scale of the multi-year run: 1/200 of the volume of a year is about 900 events, so two
/// years take a few seconds in a debug build.
const YEARS_SCALE: u64 = 200;

#[test]
fn two_scaled_years_match_their_plans_and_the_log_verifies() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    let started = Instant::now();
    let (report, log) = simulated(simulate_command(
        &[
            "--years",
            "2016-2017",
            "--seed",
            &SEED.to_string(),
            "--scale",
            &YEARS_SCALE.to_string(),
        ],
        &data,
    ));
    eprintln!("simulate --years took {:?}", started.elapsed());

    // One line per year, each checked against its plan, in order, with the head after it.
    let years: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("year "))
        .collect();
    assert_eq!(years.len(), 2, "{report}");
    let mut previous_head = 0;
    let mut year_events = 0;
    for (line, year) in years.iter().zip(["2016", "2017"]) {
        assert!(line.starts_with(&format!("year {year}: ")), "{line}");
        assert!(line.ends_with("figures as planned"), "{line}");
        let events = count(
            &line
                .split_once(": ")
                .and_then(|(_, rest)| rest.split_once(" events"))
                .expect("the year's events")
                .0
                .split_whitespace()
                .collect::<String>(),
        );
        let head = count(
            line.split_once("head ")
                .and_then(|(_, rest)| rest.split_once(':'))
                .expect("the head's position")
                .0,
        );
        assert!(events > 0);
        assert_eq!(head, previous_head + events, "{line}");
        previous_head = head;
        year_events += events;
    }
    // The total, the data folder and the peak memory.
    assert_eq!(count(&figure(&report, "events")), year_events);
    let bytes = count(&figure(&report, "data folder bytes"));
    assert!(bytes > 0, "{report}");
    assert!(count(&figure(&report, "data folder bytes per event")) > 0);
    assert!(report.contains("peak memory (VmHWM)"), "{report}");
    let head = report
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("head "))
        .expect("the final head")
        .to_owned();
    assert!(head.starts_with(&format!("{year_events}:")), "{head}");
    assert!(!log.contains("national_number"));

    // The log verifies offline, up to the head printed: the server's own `verify`, as a
    // library (this package's tests have only the simulator's binary).
    let expected: ledger_server::offline::ExpectedHead =
        head.parse().expect("the printed head is POSITION:HASH");
    let verified = ledger_server::offline::open_log(&data, None)
        .and_then(|log| ledger_server::offline::verify_log(&log, &data, Some(expected)))
        .expect("the simulated folder holds a ledger");
    assert!(
        verified.failure.is_none(),
        "verify failed: {}",
        verified.summary()
    );
}

#[test]
fn ranges_that_cannot_be_simulated_are_refused_before_anything_is_written() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    for (years, why) in [
        ("2017-2016", "reversed"),
        ("2000-2025", "at most 20"),
        ("2004-2005", "2006 or later"),
        ("2016-2999", "at most 20"),
        ("2024-2099", "at most 20"),
        ("2090-2095", "is not over"),
    ] {
        let output = simulate(&["--years", years, "--scale", "9000"], &data);
        assert_eq!(output.status.code(), Some(2), "{years}");
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(log.contains(why), "{years}: {log}");
        assert!(!data.exists(), "{years}");
    }
}

#[test]
fn years_before_the_policy_table_are_refused() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    // The same policy, in force from 2010 only.
    let policy = std::fs::read_to_string(ledger_testkit::policy_file())
        .expect("the policy file can be read")
        .replace(
            "effective_from = \"2004-01-01\"",
            "effective_from = \"2010-01-01\"",
        );
    assert!(policy.contains("2010-01-01"));
    let policy_file = home.path().join("policy.toml");
    std::fs::write(&policy_file, policy).expect("the policy can be written");
    let output = voucher_ledger(&[])
        .args([
            "simulate",
            "--years",
            "2008-2011",
            "--scale",
            "9000",
            "--data",
        ])
        .arg(&data)
        .env("VOUCHER_LEDGER__POLICY_FILE", &policy_file)
        .output()
        .expect("voucher-ledger-sim can be started");
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("no policy is in force on 2008-01-01"), "{log}");
    assert!(!data.exists());
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

/// Reports agree (issue 16): over two simulated years, every breakdown of the companies and
/// hours reports sums to its total for every year, and every sector with hours has companies
/// benefiting under it, whichever registration a company is counted under.
#[test]
fn every_breakdown_of_every_report_sums_to_its_total_for_every_simulated_year() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    simulated(simulate_command(
        &[
            "--years",
            "2016-2017",
            "--seed",
            &SEED.to_string(),
            "--scale",
            &YEARS_SCALE.to_string(),
        ],
        &data,
    ));
    let store = ledger_store::Store::open(&data).expect("the stopped ledger opens");
    let head = store.head().position;
    let projections = ledger_engine::recovery::replay_to(&store.reader(), head)
        .expect("the log replays")
        .projections;
    let mut checked = 0;
    for (year, figures) in &projections.years {
        let report = projections.companies_report(*year);
        let total = &report.total;
        for (name, breakdown) in [
            (
                "size class",
                report.by_size_class.values().collect::<Vec<_>>(),
            ),
            ("sector", report.by_sector.values().collect::<Vec<_>>()),
        ] {
            let sum = |count: fn(&ledger_projections::CompanyCounts) -> u32| {
                breakdown.iter().map(|counts| count(counts)).sum::<u32>()
            };
            assert_eq!(sum(|c| c.registered), total.registered, "{year} {name}");
            assert_eq!(sum(|c| c.holding), total.holding, "{year} {name}");
            assert_eq!(sum(|c| c.benefiting), total.benefiting, "{year} {name}");
        }
        let hours = &figures.hours;
        assert_eq!(
            hours.by_voucher_type.values().sum::<u64>(),
            hours.total,
            "{year}"
        );
        assert_eq!(
            hours.by_provider.values().sum::<u64>(),
            hours.total,
            "{year}"
        );
        assert_eq!(hours.by_sector.values().sum::<u64>(), hours.total, "{year}");
        // The hours of a sector come from companies counted under that sector.
        for sector in hours.by_sector.keys() {
            assert!(
                report
                    .by_sector
                    .get(sector)
                    .is_some_and(|counts| counts.benefiting > 0),
                "{year}: hours under sector {sector} but no company benefiting under it"
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "both years have figures");
}

/// The day the test's policy table requires a usage code from: the middle of 2017, so that the
/// range below has a year wholly before it (2016), one across it (2017) and one after (2018).
const CODES_REQUIRED_FROM: &str = "2017-06-16";

/// Every simulated redemption files against a usage code its company ordered, so the years
/// after the policy's `usage_code_required_from` are simulated like the ones before, with the
/// same figures; the server runs on the simulated days, so each filing falls within its code's
/// grace and each event is recorded on the day it was sent.
#[test]
fn a_range_across_usage_code_required_from_files_every_training_against_a_code() {
    use ledger_proto::event::v1::event::Payload;

    let home = tempfile::tempdir().expect("a temporary folder");
    let data = home.path().join("data");
    let policy = std::fs::read_to_string(ledger_testkit::policy_file())
        .expect("the policy file can be read");
    let required_line = policy
        .lines()
        .find(|line| line.starts_with("usage_code_required_from"))
        .expect("config/policy.toml sets usage_code_required_from");
    let policy = policy.replace(
        required_line,
        &format!("usage_code_required_from = \"{CODES_REQUIRED_FROM}\""),
    );
    let policy_file = home.path().join("policy.toml");
    std::fs::write(&policy_file, policy).expect("the policy can be written");
    let mut command = simulate_command(
        &[
            "--years",
            "2016-2018",
            "--seed",
            &SEED.to_string(),
            "--scale",
            &YEARS_SCALE.to_string(),
        ],
        &data,
    );
    command.env("VOUCHER_LEDGER__POLICY_FILE", &policy_file);
    let (report, _) = simulated(command);
    let planned = report
        .lines()
        .filter(|line| line.starts_with("year ") && line.ends_with("figures as planned"))
        .count();
    assert_eq!(planned, 3, "{report}");

    let log = ledger_server::offline::open_log(&data, None).expect("the simulated ledger");
    let head = log.stored_head().expect("a head").expect("a non-empty log");
    let (mut orders, mut filings, mut after_required) = (0, 0, 0);
    for recorded in log.reader().iter(1, head.position) {
        let event = recorded.expect("an event of a sound log").event;
        match event.payload {
            Some(Payload::UsageCodeOrdered(_)) => orders += 1,
            Some(Payload::HoursRedeemed(redeemed)) => {
                assert!(
                    !redeemed.usage_code.is_empty(),
                    "a training on {} redeemed without a code",
                    redeemed.training_date
                );
                // Recorded on the simulated month's last day, never before the training.
                assert!(
                    event.recorded_at.as_str() >= redeemed.training_date.as_str()
                        && event.recorded_at[..7] == redeemed.training_date[..7],
                    "training on {} recorded at {}",
                    redeemed.training_date,
                    event.recorded_at
                );
                filings += 1;
                if redeemed.training_date.as_str() >= CODES_REQUIRED_FROM {
                    after_required += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        orders > 0 && filings >= orders,
        "{orders} codes, {filings} filings"
    );
    assert!(
        after_required > 0,
        "no training after {CODES_REQUIRED_FROM}"
    );
}
