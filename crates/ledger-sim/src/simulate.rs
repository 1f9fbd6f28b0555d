//! `voucher-ledger-sim simulate`: a synthetic year of the scheme, driven through the gRPC API of a
//! real server started in this process on 127.0.0.1:0, that reproduces the year's published
//! figures exactly (regional budget, companies benefiting, workers trained, hours of training).
//!
//! Two halves. [`plan`] decides everything first: pure, deterministic for a seed, and checked
//! against the ledger's rules before anything is sent. [`drive`] then sends the plan over
//! loopback, month by month, as the administration, the operator and each provider, and reads
//! the year back. Nothing bypasses the API: every event of the resulting log is a request the
//! server accepted under its rules, so the log can be verified like any other.
//!
//! What it is not: real data (every company and national register number is synthetic), nor a
//! load test (concurrency is bounded and modest).

pub mod catalogue;
mod drive;
pub mod plan;
pub mod rng;
pub mod years;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ledger_domain::{Identifier, Policy, PolicyTable, Principal};
use ledger_engine::ManualClock;
use ledger_server::serve::{bind, serve_with_clock, ServeError};
use ledger_server::settings::Settings;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint};

use crate::client::{
    bearer, Refused, DEMO_ADMINISTRATION_TOKEN, DEMO_AUDITOR_TOKEN, DEMO_OPERATOR_TOKEN,
    DEMO_PROVIDERS,
};
use plan::{Plan, PlanError, Targets, Totals};

/// The years whose published figures the simulation knows.
pub const SIMULATED_YEARS: [i32; 1] = [2024];

/// How long to wait for the in-process server to connect; it is on loopback and already
/// listening, so this only ever waits for a server that failed.
const CONNECT_TIMEOUT_MS: u64 = 5_000;

#[derive(Clone, Debug)]
pub struct Options {
    pub year: i32,
    pub data_dir: PathBuf,
    pub seed: u64,
    /// Divides the year's figures, for a quicker run.
    pub scale: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(
        "only {SIMULATED_YEARS:?} can be simulated, whose published figures are known; not {0}"
    )]
    YearNotSupported(i32),
    #[error("scale must be at least 1")]
    ScaleZero,
    #[error("the years {first}-{last} are reversed; give the earlier year first")]
    RangeReversed { first: i32, last: i32 },
    #[error(
        "{first}-{last} is {len} years; at most {len_max} can be simulated in one run",
        len_max = years::SIMULATE_YEARS_LEN_MAX
    )]
    RangeTooLong { first: i32, last: i32, len: u32 },
    #[error(
        "{0} cannot be simulated: the simulated providers are approved from 2005 on, so the \
         first year is {first_min} or later",
        first_min = years::SIMULATE_YEAR_FIRST_MIN
    )]
    YearTooEarly(i32),
    #[error(
        "{year} is not over (today is {today}); only past years can be simulated, since the \
         ledger refuses training dated after today"
    )]
    YearNotOver { year: i32, today: NaiveDate },
    #[error("data folder {0} is not empty; simulate writes a new ledger and needs an empty or missing folder")]
    DataDirNotEmpty(PathBuf),
    #[error("data folder {path} cannot be read: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no policy is in force on {0}")]
    NoPolicy(NaiveDate),
    #[error("the policy changes during {0}; the simulation needs one policy for the whole year")]
    PolicyChanges(i32),
    #[error("no plan: {0}")]
    Plan(#[from] PlanError),
    #[error("in-process server: {0}")]
    Serve(#[from] ServeError),
    #[error("in-process server stopped before it was ready")]
    ServerGone,
    #[error("cannot connect to the in-process server at {address}: {source}")]
    Connect {
        address: String,
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("a request task failed: {0}")]
    Task(String),
    #[error("the ledger's figures differ from the targets: {0}")]
    Mismatch(String),
    #[error("{year}: {what}")]
    YearMismatch { year: i32, what: String },
}

/// The year as the server reports it at the end, with what the plan expected.
#[derive(Clone, Debug)]
pub struct YearReport {
    pub options: Options,
    pub targets: Targets,
    pub plan: Totals,
    pub providers: usize,
    pub modules: usize,
    pub region_share_eur: Decimal,
    pub companies_registered: u32,
    pub companies_holding_vouchers: u32,
    pub companies_benefiting: u32,
    pub workers_trained: u32,
    pub hours_trained: u64,
    pub vouchers_issued: u64,
    pub allocated_eur: Decimal,
    pub committed_eur: Decimal,
    pub spent_eur: Decimal,
    pub released_eur: Decimal,
    pub available_eur: Decimal,
    pub requests: u64,
    pub head_position: u64,
    pub head_hash: String,
    pub elapsed: Duration,
}

/// Plans the year, runs it on an in-process server on `options.data_dir`, and reports it.
/// `settings` are the demo settings with that data folder and a loopback port.
pub async fn simulate(options: Options, settings: Settings) -> Result<YearReport, SimulateError> {
    let started = Instant::now();
    if !SIMULATED_YEARS.contains(&options.year) {
        return Err(SimulateError::YearNotSupported(options.year));
    }
    if options.scale == 0 {
        return Err(SimulateError::ScaleZero);
    }
    refuse_non_empty(&options.data_dir)?;
    let policy = year_policy(&settings.policy, options.year)?.clone();
    let targets = Targets::PUBLISHED_2024.scaled(options.scale);
    let plan = plan::plan(options.year, options.seed, targets, &policy)?;
    eprintln!(
        "plan of {} (seed {}, scale {}): {} providers, {} modules, {} companies, {} workers, \
         {} issuances, {} redemptions; digest {}",
        options.year,
        options.seed,
        options.scale,
        plan.providers.len(),
        plan.modules.len(),
        plan.companies.len(),
        plan.workers.len(),
        plan.issuances.len(),
        plan.redemptions.len(),
        &plan.digest()[..16],
    );

    let (settings, tokens) = with_provider_tokens(settings, &plan)?;
    let outcome =
        with_in_process_server(settings, |server| run_plan(&plan, server, tokens)).await?;
    year_report(options, &plan, outcome, started.elapsed())
}

/// The in-process server: where it listens, and the clock it reads "today" from.
pub(crate) struct InProcess {
    pub address: std::net::SocketAddr,
    pub clock: Arc<ManualClock>,
}

/// Starts a server in this process on `settings` and a clock the driver sets to each simulated
/// day, runs `run` against its address, then stops the server whatever happened, so that the
/// store is flushed and closed cleanly.
pub(crate) async fn with_in_process_server<T, F, Fut>(
    settings: Settings,
    run: F,
) -> Result<T, SimulateError>
where
    F: FnOnce(InProcess) -> Fut,
    Fut: std::future::Future<Output = Result<T, SimulateError>>,
{
    let listener = bind(settings.listen).await?;
    let (ready_sender, ready) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The driver sets the day before its first write; until then the clock reads now.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let server = tokio::spawn(serve_with_clock(
        settings,
        listener,
        async {
            let _ = stopped.await;
        },
        move |address| {
            let _ = ready_sender.send(address);
        },
        Arc::clone(&clock) as Arc<dyn ledger_engine::Clock>,
    ));
    let outcome = match ready.await {
        Ok(address) => run(InProcess { address, clock }).await,
        Err(_) => Err(SimulateError::ServerGone),
    };
    let _ = stop.send(());
    let served = server
        .await
        .map_err(|error| SimulateError::Task(error.to_string()))?;
    let outcome = outcome?;
    served?;
    Ok(outcome)
}

/// The year as the ledger reported it in `outcome`, next to what `plan` expected.
fn year_report(
    options: Options,
    plan: &Plan,
    outcome: drive::Outcome,
    elapsed: Duration,
) -> Result<YearReport, SimulateError> {
    let summary = outcome.summary;
    let budget = outcome.budget;
    let amount = |field: &str, text: &str| {
        text.parse::<Decimal>().map_err(|_| {
            SimulateError::Mismatch(format!("the budget's {field} {text:?} is not an amount"))
        })
    };
    Ok(YearReport {
        options,
        targets: plan.targets,
        plan: plan.totals(),
        providers: plan.providers.len(),
        modules: plan.modules.len(),
        region_share_eur: plan.region_share_eur,
        companies_registered: summary.companies_registered,
        companies_holding_vouchers: summary.companies_holding_vouchers,
        companies_benefiting: summary.companies_benefiting,
        workers_trained: summary.workers_trained,
        hours_trained: summary.hours_trained,
        vouchers_issued: summary.vouchers_issued,
        allocated_eur: amount("allocated_eur", &budget.allocated_eur)?,
        committed_eur: amount("committed_eur", &budget.committed_eur)?,
        spent_eur: amount("spent_eur", &budget.spent_eur)?,
        released_eur: amount("released_eur", &budget.released_eur)?,
        available_eur: amount("available_eur", &budget.available_eur)?,
        requests: outcome.requests,
        head_position: outcome.head.position,
        head_hash: outcome.head.hash,
        elapsed,
    })
}

async fn run_plan(
    plan: &Plan,
    server: InProcess,
    tokens: drive::Tokens,
) -> Result<drive::Outcome, SimulateError> {
    let channel = connect(server.address).await?;
    drive::drive(plan, channel, tokens, &server.clock, true).await
}

/// A channel to the in-process server.
async fn connect(address: std::net::SocketAddr) -> Result<Channel, SimulateError> {
    let uri = format!("http://{address}");
    let channel = Endpoint::from_shared(uri.clone())
        .map_err(|source| SimulateError::Connect {
            address: uri.clone(),
            source,
        })?
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .connect()
        .await
        .map_err(|source| SimulateError::Connect {
            address: uri.clone(),
            source,
        })?;
    Ok(channel)
}

fn refuse_non_empty(path: &Path) -> Result<(), SimulateError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(SimulateError::DataDirNotEmpty(path.to_owned())),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SimulateError::DataDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The one policy in force all year (the planner reasons with a single set of quotas and
/// amounts).
fn year_policy(table: &PolicyTable, year: i32) -> Result<&Policy, SimulateError> {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or(SimulateError::YearNotSupported(year))?;
    let last =
        NaiveDate::from_ymd_opt(year, 12, 31).ok_or(SimulateError::YearNotSupported(year))?;
    let policy = table
        .in_force(first)
        .ok_or(SimulateError::NoPolicy(first))?;
    let at_end = table.in_force(last).ok_or(SimulateError::NoPolicy(last))?;
    if policy.effective_from != at_end.effective_from {
        return Err(SimulateError::PolicyChanges(year));
    }
    Ok(policy)
}

/// The demo configuration knows two providers. The simulation plays many more: it gives each
/// of the others a random token for this run only, added to the in-process server's settings
/// and never written anywhere, so each provider still redeems only as itself.
fn with_provider_tokens(
    mut settings: Settings,
    plan: &Plan,
) -> Result<(Settings, drive::Tokens), SimulateError> {
    let mut providers = Vec::with_capacity(plan.providers.len());
    for provider in &plan.providers {
        let token = match DEMO_PROVIDERS.iter().find(|(id, _)| *id == provider.id) {
            Some((_, token)) => (*token).to_owned(),
            None => {
                let token = format!("simulation-{}", uuid::Uuid::new_v4().simple());
                let id = Identifier::parse(&provider.id).ok_or_else(|| {
                    SimulateError::Plan(PlanError::Broken(format!(
                        "provider id {} is not an identifier",
                        provider.id
                    )))
                })?;
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                settings.tokens.push((digest, Principal::Provider(id)));
                token
            }
        };
        providers.push(bearer(&token));
    }
    let tokens = drive::Tokens {
        administration: bearer(DEMO_ADMINISTRATION_TOKEN),
        operator: bearer(DEMO_OPERATOR_TOKEN),
        auditor: bearer(DEMO_AUDITOR_TOKEN),
        providers,
    };
    Ok((settings, tokens))
}

impl YearReport {
    /// The Region's share of the hours redeemed.
    pub fn region_spend_eur(&self) -> Decimal {
        self.region_share_eur * Decimal::from(self.hours_trained)
    }

    /// The figures that must equal the targets, and the budget's arithmetic, checked.
    pub fn check(&self) -> Result<(), SimulateError> {
        let targets = self.targets;
        let expected_released = self.region_share_eur * Decimal::from(self.plan.vouchers_expiring);
        let checks = [
            (
                "regional budget",
                self.allocated_eur == targets.budget_eur(),
            ),
            (
                "companies benefiting",
                self.companies_benefiting == targets.companies_benefiting,
            ),
            (
                "workers trained",
                self.workers_trained == targets.workers_trained,
            ),
            (
                "hours of training",
                self.hours_trained == targets.hours_trained,
            ),
            ("region's spend", self.spent_eur == self.region_spend_eur()),
            (
                "vouchers issued",
                self.vouchers_issued == self.plan.vouchers_issued,
            ),
            ("released by expiry", self.released_eur == expected_released),
            (
                "budget not spent",
                self.allocated_eur - self.spent_eur == self.committed_eur + self.available_eur,
            ),
        ];
        let failed: Vec<&str> = checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| *name)
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(SimulateError::Mismatch(failed.join(", ")))
        }
    }
}

/// Groups of three digits separated by spaces, as the scheme publishes its figures.
pub(crate) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// "EUR 7 657 000.00".
fn euros(amount: Decimal) -> String {
    let cents = ledger_domain::money::to_cents(amount);
    let sign = if cents.is_sign_negative() { "-" } else { "" };
    let cents = cents.abs();
    let whole = u64::try_from(cents.trunc()).unwrap_or(0);
    let fraction = ((cents - cents.trunc()) * Decimal::from(100)).round();
    format!("EUR {sign}{}.{:02}", grouped(whole), fraction)
}

impl fmt::Display for YearReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let year = self.options.year;
        let line = |f: &mut fmt::Formatter<'_>, label: &str, value: String| {
            writeln!(f, "  {label:<44}{value:>20}")
        };
        writeln!(
            f,
            "voucher-ledger simulation of {year} (seed {}, scale {})",
            self.options.seed, self.options.scale
        )?;
        let ai_before = u64::from(self.plan.ai_modules_before_year);
        let ai_after = u64::from(self.plan.ai_modules);
        let ai_growth = (ai_after.saturating_sub(ai_before) * 100)
            .checked_div(ai_before)
            .unwrap_or(0);
        writeln!(
            f,
            "  {} providers, {} modules; AI modules: {ai_before} before {year}, {ai_after} at its \
             end (+{ai_growth}%)",
            self.providers, self.modules
        )?;
        writeln!(f)?;
        writeln!(f, "year {year}, as the ledger reports it (GetYearSummary)")?;
        line(f, "regional budget", euros(self.allocated_eur))?;
        line(
            f,
            "companies registered",
            grouped(u64::from(self.companies_registered)),
        )?;
        line(
            f,
            "companies holding vouchers",
            grouped(u64::from(self.companies_holding_vouchers)),
        )?;
        line(
            f,
            "companies benefiting",
            grouped(u64::from(self.companies_benefiting)),
        )?;
        line(
            f,
            "workers trained",
            grouped(u64::from(self.workers_trained)),
        )?;
        line(f, "hours of training", grouped(self.hours_trained))?;
        line(f, "vouchers issued", grouped(self.vouchers_issued))?;
        line(f, "redemptions recorded", grouped(self.plan.redemptions))?;
        line(f, "redemptions reversed", grouped(self.plan.reversals))?;
        line(f, "provider payouts", grouped(self.plan.payouts))?;
        writeln!(f)?;
        writeln!(f, "budget {year} (GetBudget)")?;
        line(
            f,
            &format!("Region's spend ({} per hour)", euros(self.region_share_eur)),
            euros(self.spent_eur),
        )?;
        line(
            f,
            "budget not spent",
            euros(self.allocated_eur - self.spent_eur),
        )?;
        line(
            f,
            "  committed to outstanding vouchers",
            euros(self.committed_eur),
        )?;
        line(f, "  available", euros(self.available_eur))?;
        line(
            f,
            "    of which released by expiry",
            euros(self.released_eur),
        )?;
        line(f, "vouchers expired", grouped(self.plan.vouchers_expiring))?;
        writeln!(f)?;
        writeln!(f, "log (GetHead)")?;
        line(f, "events", grouped(self.head_position))?;
        line(f, "requests sent", grouped(self.requests))?;
        writeln!(f, "  head hash {}", self.head_hash)?;
        line(
            f,
            "wall time",
            format!("{:.1} s", self.elapsed.as_secs_f64()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{euros, grouped};
    use rust_decimal::Decimal;

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(9_539), "9 539");
        assert_eq!(grouped(496_063), "496 063");
        assert_eq!(euros(Decimal::new(765_700_000, 2)), "EUR 7 657 000.00");
        assert_eq!(euros(Decimal::new(21_605_505, 2)), "EUR 216 055.05");
    }
}
