//! `voucher-ledger-sim simulate --years FIRST-LAST`: several years of the scheme in one ledger, each
//! with the volume of 2024, so that what grows with the history (memory, the data folder, a
//! restart, a report `as_of` an earlier position) can be measured.
//!
//! Each year is planned by the yearly planner ([`plan::plan_after`]) with the 2024 targets, with
//! the year's own dates, budget, payments and trainings and a seed of its own, and driven through
//! the same in-process server, one year after the other. The catalogue is approved in the first
//! year only; companies and workers are new each year (see [`History`] for why). Each year's
//! figures are checked against its plan right after it, as the one-year run checks 2024.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use ledger_domain::{Policy, PolicyTable};

use super::plan::{self, History, Plan, Targets};
use super::rng::SplitMix64;
use super::{
    connect, drive, grouped, refuse_non_empty, with_provider_tokens, year_policy, year_report,
    Options, SimulateError, YearReport,
};
use ledger_server::settings::Settings;

/// Most years one run simulates: twenty years is the life the ledger is built for (issue 12: a
/// system of record must cost the same in its twentieth year as in its first), about three
/// million events at full volume.
pub const SIMULATE_YEARS_LEN_MAX: u32 = 20;
/// The earliest year that can be simulated: the planner approves its providers from 2005 on,
/// and up to June of the year before the one simulated.
pub const SIMULATE_YEAR_FIRST_MIN: i32 = 2006;

/// A range of years, both included: "2016-2025", or "2024" for one year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YearRange {
    pub first: i32,
    pub last: i32,
}

impl YearRange {
    /// The number of years, 0 when reversed.
    pub fn len(&self) -> u32 {
        u32::try_from(i64::from(self.last) - i64::from(self.first) + 1).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn years(&self) -> std::ops::RangeInclusive<i32> {
        self.first..=self.last
    }
}

impl FromStr for YearRange {
    type Err = String;

    fn from_str(text: &str) -> Result<YearRange, String> {
        let year = |part: &str| {
            part.trim()
                .parse::<i32>()
                .map_err(|_| format!("{part:?} is not a year; give FIRST-LAST, such as 2016-2025"))
        };
        match text.split_once('-') {
            Some((first, last)) => Ok(YearRange {
                first: year(first)?,
                last: year(last)?,
            }),
            None => {
                let only = year(text)?;
                Ok(YearRange {
                    first: only,
                    last: only,
                })
            }
        }
    }
}

impl fmt::Display for YearRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[derive(Clone, Debug)]
pub struct RangeOptions {
    pub years: YearRange,
    pub data_dir: PathBuf,
    /// The run's seed; each year's plan has a seed of its own made from it ([`year_seed`]).
    pub seed: u64,
    /// Divides each year's figures, for a quicker run.
    pub scale: u32,
}

/// The run, year by year, and the ledger it left.
#[derive(Clone, Debug)]
pub struct RangeReport {
    pub options: RangeOptions,
    /// Each year's figures, checked against its plan.
    pub years: Vec<YearReport>,
    /// The log's head at the end.
    pub head_position: u64,
    pub head_hash: String,
    /// Bytes of every file of the data folder once the server has stopped.
    pub data_bytes: u64,
    /// The process's peak resident memory (VmHWM) at the end: planner, server and clients.
    pub peak_resident_kib: Option<u64>,
    pub elapsed: Duration,
}

impl RangeReport {
    /// The events the year `index` added to the log.
    pub fn events_of(&self, index: usize) -> u64 {
        let before = index
            .checked_sub(1)
            .and_then(|previous| self.years.get(previous))
            .map_or(0, |report| report.head_position);
        self.years
            .get(index)
            .map_or(0, |report| report.head_position.saturating_sub(before))
    }

    /// The simulated year whose events include position `position`, if any.
    pub fn year_at(&self, position: u64) -> Option<i32> {
        self.years
            .iter()
            .find(|report| position <= report.head_position)
            .map(|report| report.options.year)
    }
}

/// The seed of `year`'s plan in a run of seed `seed`: years of one run differ, and the same
/// run seed gives the same years.
pub fn year_seed(seed: u64, year: i32) -> u64 {
    let mut rng = SplitMix64::new(seed ^ u64::from(year.unsigned_abs()).rotate_left(32));
    rng.next_u64()
}

/// Refuses a range the simulation cannot run, before anything is written: reversed, too long,
/// before [`SIMULATE_YEAR_FIRST_MIN`], not over on `today` (the ledger refuses training dated
/// after today), or a year without one policy in force all year. The policy of each year.
pub fn check_range(
    years: YearRange,
    table: &PolicyTable,
    today: NaiveDate,
) -> Result<Vec<Policy>, SimulateError> {
    let YearRange { first, last } = years;
    if first > last {
        return Err(SimulateError::RangeReversed { first, last });
    }
    if years.len() > SIMULATE_YEARS_LEN_MAX {
        return Err(SimulateError::RangeTooLong {
            first,
            last,
            len: years.len(),
        });
    }
    if first < SIMULATE_YEAR_FIRST_MIN {
        return Err(SimulateError::YearTooEarly(first));
    }
    if last >= today.year() {
        return Err(SimulateError::YearNotOver { year: last, today });
    }
    years
        .years()
        .map(|year| year_policy(table, year).cloned())
        .collect()
}

/// Plans and drives every year of `options.years` on a new ledger in `options.data_dir`, through
/// an in-process server on `settings` (the demo settings with that folder and a loopback port).
/// `on_year` is told each year as soon as it is checked, with the events it added.
pub async fn simulate_years(
    options: RangeOptions,
    settings: Settings,
    mut on_year: impl FnMut(&YearReport, u64),
) -> Result<RangeReport, SimulateError> {
    let started = Instant::now();
    if options.scale == 0 {
        return Err(SimulateError::ScaleZero);
    }
    let today = ledger_engine::business_today(chrono::Utc::now());
    let policies = check_range(options.years, &settings.policy, today)?;
    refuse_non_empty(&options.data_dir)?;
    let targets = Targets::PUBLISHED_2024.scaled(options.scale);

    // The first year is planned before the server starts: the tokens of its providers (the
    // catalogue of every year) go into the server's settings.
    let first_policy = policies.first().ok_or(SimulateError::RangeReversed {
        first: options.years.first,
        last: options.years.last,
    })?;
    let first = plan_year(
        options.years.first,
        &options,
        targets,
        first_policy,
        &History::default(),
    )?;
    let (settings, tokens) = with_provider_tokens(settings, &first)?;
    let years = super::with_in_process_server(settings, |server| {
        run_years(
            server,
            tokens,
            first,
            &options,
            targets,
            &policies,
            &mut on_year,
        )
    })
    .await?;

    let data_bytes = folder_bytes(&options.data_dir).map_err(|source| SimulateError::DataDir {
        path: options.data_dir.clone(),
        source,
    })?;
    let (head_position, head_hash) = years.last().map_or((0, String::new()), |report| {
        (report.head_position, report.head_hash.clone())
    });
    Ok(RangeReport {
        options,
        years,
        head_position,
        head_hash,
        data_bytes,
        peak_resident_kib: crate::bench::peak_resident_kib(),
        elapsed: started.elapsed(),
    })
}

fn plan_year(
    year: i32,
    options: &RangeOptions,
    targets: Targets,
    policy: &Policy,
    history: &History,
) -> Result<Plan, SimulateError> {
    let seed = year_seed(options.seed, year);
    let plan = plan::plan_after(year, seed, targets, policy, history)?;
    eprintln!(
        "plan of {year} (seed {seed}, scale {}): {} companies, {} workers, {} issuances, \
         {} redemptions; digest {}",
        options.scale,
        plan.companies.len(),
        plan.workers.len(),
        plan.issuances.len(),
        plan.redemptions.len(),
        &plan.digest()[..16],
    );
    Ok(plan)
}

/// Drives the years in turn on one connection; each year is planned once the previous one is
/// on the ledger, so that only one plan is held at a time.
async fn run_years(
    server: super::InProcess,
    tokens: drive::Tokens,
    first: Plan,
    options: &RangeOptions,
    targets: Targets,
    policies: &[Policy],
    on_year: &mut impl FnMut(&YearReport, u64),
) -> Result<Vec<YearReport>, SimulateError> {
    let channel = connect(server.address).await?;
    let mut history = History::default();
    let mut reports: Vec<YearReport> = Vec::with_capacity(policies.len());
    let mut first = Some(first);
    for (year, policy) in options.years.years().zip(policies) {
        let year_started = Instant::now();
        let plan = match first.take() {
            Some(plan) => plan,
            None => plan_year(year, options, targets, policy, &history)?,
        };
        let catalogue = !history.has_catalogue();
        let outcome = drive::drive(
            &plan,
            channel.clone(),
            tokens.clone(),
            &server.clock,
            catalogue,
        )
        .await?;
        history.record(&plan);
        let report = year_report(
            Options {
                year,
                data_dir: options.data_dir.clone(),
                seed: plan.seed,
                scale: options.scale,
            },
            &plan,
            outcome,
            year_started.elapsed(),
        )?;
        report
            .check()
            .map_err(|error| SimulateError::YearMismatch {
                year,
                what: error.to_string(),
            })?;
        let before = reports.last().map_or(0, |previous| previous.head_position);
        on_year(&report, report.head_position.saturating_sub(before));
        reports.push(report);
    }
    Ok(reports)
}

/// Bytes of the files under `path`, recursively (sled keeps a few files and a folder of
/// snapshots).
pub fn folder_bytes(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += folder_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// One line of a year of the run.
pub fn year_line(report: &YearReport, events: u64) -> String {
    format!(
        "year {}: {:>9} events, {:>9} requests, {:>7.1} s, head {}:{}; figures as planned",
        report.options.year,
        grouped(events),
        grouped(report.requests),
        report.elapsed.as_secs_f64(),
        report.head_position,
        report.head_hash,
    )
}

impl fmt::Display for RangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = self.head_position;
        let requests: u64 = self.years.iter().map(|report| report.requests).sum();
        // The year lines were printed as each year ended ([`year_line`]); this is the total.
        writeln!(
            f,
            "voucher-ledger simulation of {} ({} years, seed {}, scale {}): every year's \
             figures match its plan",
            self.options.years,
            self.years.len(),
            self.options.seed,
            self.options.scale
        )?;
        let line = |f: &mut fmt::Formatter<'_>, label: &str, value: String| {
            writeln!(f, "  {label:<44}{value:>20}")
        };
        line(f, "events", grouped(events))?;
        line(f, "requests sent", grouped(requests))?;
        line(f, "data folder bytes", grouped(self.data_bytes))?;
        line(
            f,
            "data folder bytes per event",
            format!("{:.0}", self.data_bytes as f64 / (events.max(1) as f64)),
        )?;
        line(
            f,
            "peak memory (VmHWM)",
            self.peak_resident_kib.map_or("unknown".to_owned(), |kib| {
                format!("{:.1} MiB", kib as f64 / 1024.0)
            }),
        )?;
        writeln!(f, "  head {}:{}", self.head_position, self.head_hash)?;
        line(
            f,
            "wall time",
            format!("{:.1} s", self.elapsed.as_secs_f64()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_count_their_years() {
        let range: YearRange = "2016-2025".parse().expect("a range");
        assert_eq!(
            range,
            YearRange {
                first: 2016,
                last: 2025
            }
        );
        assert_eq!(range.len(), 10);
        assert_eq!("2024".parse::<YearRange>().expect("one year").len(), 1);
        assert_eq!("2025-2016".parse::<YearRange>().expect("parsed").len(), 0);
        assert!("2016-".parse::<YearRange>().is_err());
        assert!("twenty".parse::<YearRange>().is_err());
    }

    #[test]
    fn years_of_one_run_have_seeds_of_their_own() {
        assert_ne!(year_seed(1, 2016), year_seed(1, 2017));
        assert_ne!(year_seed(1, 2016), year_seed(2, 2016));
        assert_eq!(year_seed(7, 2020), year_seed(7, 2020));
    }

    fn policy_table() -> PolicyTable {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/policy.toml");
        let text = std::fs::read_to_string(path).expect("config/policy.toml can be read");
        PolicyTable::from_toml_str(&text).expect("config/policy.toml is valid")
    }

    #[test]
    fn ranges_outside_what_can_be_simulated_are_refused() {
        let table = policy_table();
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("a date");
        let range = |first, last| YearRange { first, last };
        assert_eq!(
            check_range(range(2016, 2025), &table, today)
                .expect("ten past years")
                .len(),
            10
        );
        assert!(matches!(
            check_range(range(2025, 2016), &table, today),
            Err(SimulateError::RangeReversed { .. })
        ));
        assert!(matches!(
            check_range(range(2006, 2025), &table, today),
            Ok(policies) if policies.len() == 20
        ));
        assert!(matches!(
            check_range(range(2006, 2026), &table, today),
            Err(SimulateError::RangeTooLong { len: 21, .. })
        ));
        assert!(matches!(
            check_range(range(2003, 2010), &table, today),
            Err(SimulateError::YearTooEarly(2003))
        ));
        assert!(matches!(
            check_range(range(2020, 2026), &table, today),
            Err(SimulateError::YearNotOver { year: 2026, .. })
        ));
    }
}
