//! The crash campaign shared by `crash.rs` (SIGKILL) and `powerloss.rs` (SIGKILL and a power
//! cut): the real server, eight callers whose every answer a model predicts, the audit of the
//! log read back over gRPC, and the checks after each restart (see `crash.rs` for what they are).
//! Each test file includes it with `mod crash_support;` and uses the part it needs.

#![allow(
    dead_code,
    reason = "each test file that includes this module uses a different part of it"
)]
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, TimeDelta, Utc};
use ledger_domain::UsageCode;
use ledger_proto::event::v1::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use ledger_proto::v1::{self as api};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

pub const ADMINISTRATION: &str = "demo-administration-token";
pub const OPERATOR: &str = "demo-operator-token";
pub const PROVIDER: &str = "demo-provider-AG-0012-token";
pub const AUDITOR: &str = "demo-auditor-token";
pub const PROVIDER_ID: &str = "AG-0012";
pub const MODULES: [&str; 4] = ["M-1", "M-2", "M-3", "M-4"];
/// A module's approved length for one worker: the most the scheme allows, so that a worker
/// takes many redemptions to use it up.
pub const MODULE_HOURS_MAX: u32 = 2000;
/// The general-voucher quota of a company of 12 FTE (`config/policy.toml`, fte_2_to_50).
pub const QUOTA_GENERAL: u32 = 400;
pub const EMPLOYER_SHARE_EUR: u64 = 15;
pub const REGION_SHARE_EUR: u64 = 15;
pub const FACE_VALUE_EUR: u64 = 30;
pub const BUDGET_ALLOCATED_EUR: u64 = 1_000_000_000;

/// Concurrent callers during a load burst: enough for groups of several commands, few enough
/// for a 2-core machine that also runs the server.
pub const CALLERS: u32 = 8;
/// Cycles of the test CI runs, and of the long campaign when `CRASH_CYCLES` is not set.
pub const CI_CYCLES: u32 = 20;
pub const LONG_CYCLES: u32 = 500;
/// Longest wait for a start (the replay included), a stop, or one call; generous, for a 2-core
/// machine busy with other builds.
pub const START_WAIT: Duration = Duration::from_secs(120);
pub const STOP_WAIT: Duration = Duration::from_secs(120);
pub const CALL_WAIT: Duration = Duration::from_secs(60);
/// How often a process's exit is polled.
pub const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Checkpoint intervals a start draws from: mostly small, so that checkpoints are written (and
/// killed) all the time; sometimes the default, so that a start replays a long tail.
pub const CHECKPOINT_INTERVALS_EVENTS: [u64; 5] = [3, 10, 40, 200, 50_000];
/// Most acknowledged requests of a cycle retried after the restart, beyond the last of each
/// caller (which are always retried: they are the likeliest to sit in the last group).
pub const RETRIES_PER_CYCLE_MAX: usize = 32;
/// Kills of an offline rebuild, or of a start, in the cycles that make them.
pub const KILL_ATTEMPTS: u32 = 3;
/// Most wallets compared before and after an offline rebuild, beyond those a cycle touched.
pub const WALLETS_COMPARED_MAX: usize = 16;

/// Most hours of one usage code the load orders: enough for several filings of one to three
/// hours each before it is used up.
pub const CODE_HOURS_MAX: u32 = 12;
/// Most open codes a caller keeps for its company: a few at once, so that filings, cancels and
/// orders interleave on one wallet.
pub const OPEN_CODES_MAX: usize = 3;
/// The worker of the redemption that checks, after each restart, that earmarked vouchers stay
/// out of a redemption without a code: born in 1959, which no caller's workers are (1960 on).
pub const PROBE_WORKER_BIRTH_YEAR: u64 = 59;

/// Crash tests share one machine's disk and CPUs; running two at once only makes both slower.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---- a seeded random number generator (splitmix64), so that no dependency is needed ----

#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    pub fn duration_between(&mut self, low: Duration, high: Duration) -> Duration {
        let micros = self.between(low.as_micros() as u64, high.as_micros() as u64);
        Duration::from_micros(micros)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

pub fn seed_from_env() -> u64 {
    match std::env::var("CRASH_SEED") {
        Ok(text) => text.trim().parse().expect("CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos() as u64,
    }
}

// ---- the binary ----

/// The campaign's policy table: the repository's, without `usage_code_required_from`. The
/// load's dates follow today (a filing against a code must fall within the code's grace of
/// today), and it files hours both with and without a code; with the repository's table, the
/// redemptions without a code would be refused from 2027-01-01 on. Whether a code is required
/// is a rule of its own, tested in `ledger-domain` and `e2e/usage_codes.rs`; here it would only
/// make the load's meaning depend on the day the test runs.
pub fn campaign_policy_file() -> &'static Path {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let table = std::fs::read_to_string(ledger_testkit::policy_file())
            .expect("the repository's policy table is readable");
        let without_requirement: String = table
            .lines()
            .filter(|line| !line.trim_start().starts_with("usage_code_required_from"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_ne!(
            without_requirement.len(),
            table.len() + usize::from(!table.ends_with('\n')),
            "config/policy.toml sets usage_code_required_from, which the campaign leaves out"
        );
        // One file per test binary, written whole then renamed: the crash, power-loss and
        // PostgreSQL test binaries may run at once.
        let directory = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let binary = std::env::current_exe()
            .ok()
            .and_then(|path| {
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "crash".to_owned());
        let path = directory.join(format!("campaign-policy-{binary}.toml"));
        let partial = directory.join(format!(
            "campaign-policy-{binary}.{}.partial",
            std::process::id()
        ));
        std::fs::write(&partial, without_requirement).expect("the campaign's policy is written");
        std::fs::rename(&partial, &path).expect("the campaign's policy is put in place");
        path
    })
}

/// `voucher-ledger ARGS` with a clean environment ([`ledger_testkit::command`]), the campaign's
/// policy table ([`campaign_policy_file`]), and no `fdatasync` failure injected unless a cycle
/// asks for it.
pub fn voucher_ledger(args: &[&str]) -> Command {
    let mut command = ledger_testkit::command(env!("CARGO_BIN_EXE_voucher-ledger"), args);
    command.env_remove(ledger_store::FAIL_FDATASYNC_AFTER_VARIABLE);
    command.env("VOUCHER_LEDGER__POLICY_FILE", campaign_policy_file());
    // Small segments, so that kills and power cuts land around seals of the sealed past.
    command.env(
        "VOUCHER_LEDGER__SEGMENT_LEN_EVENTS",
        CAMPAIGN_SEGMENT_LEN_EVENTS.to_string(),
    );
    // Every graceful stop after a seal rewrites sled's database, so that kills during a stop
    // and power cuts land in the middle of a rewrite and of its switch.
    command.env("VOUCHER_LEDGER__DB_REWRITE_BYTES_MIN", "0");
    command
}

/// Entries per segment file in the campaigns (see `ledger_store::StoreOptions`): a few dozen,
/// so that most cycles seal one and many kills land in or next to a seal.
pub const CAMPAIGN_SEGMENT_LEN_EVENTS: u64 = 25;

/// Sends `signal` (`-KILL`, `-TERM`) with the `kill` command: the workspace forbids unsafe code
/// and has no signal crate, and `kill` is on every Unix.
pub fn send_signal(process: &Child, signal: &str) {
    // The process may have exited already; then there is nothing to signal.
    let _ = Command::new("kill")
        .arg(signal)
        .arg(process.id().to_string())
        .stderr(Stdio::null())
        .status();
}

/// Waits for `process` to exit, at most `within`.
pub async fn wait_for_exit(process: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = process.try_wait().expect("an exit status can be read") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(EXIT_POLL_INTERVAL).await;
    }
}

/// SIGKILL, then the exit status.
pub async fn kill_now(process: &mut Child) -> ExitStatus {
    send_signal(process, "-KILL");
    wait_for_exit(process, STOP_WAIT)
        .await
        .expect("a process stops on SIGKILL")
}

/// `text` without the terminal colour sequences of the human log format.
pub fn without_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence ends with its first letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The number logged as `name=N` (the last one in `log`).
pub fn field_number(log: &str, name: &str) -> Option<u64> {
    let pattern = format!("{name}=");
    let start = log.rfind(&pattern)? + pattern.len();
    let digits: String = log[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub use ledger_testkit::read_log;

/// The last lines of a server's log, for a failure message.
pub fn log_tail(path: &Path) -> String {
    let log = read_log(path);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A `voucher-ledger serve` that has been spawned and may not listen yet.
pub struct Launch {
    pub process: Child,
    pub address: std::sync::mpsc::Receiver<ledger_testkit::Announcement>,
    pub log_path: PathBuf,
    pub spawned: Instant,
}

impl Launch {
    /// Starts the server without waiting for it (testkit's `launch`): the campaign kills some
    /// starts before they print their address.
    pub fn spawn(data_dir: &Path, log_path: &Path, env: &[(String, String)]) -> Launch {
        let mut command = voucher_ledger(&["serve", "--demo", "--listen", "127.0.0.1:0"]);
        command.arg("--data").arg(data_dir);
        for (name, value) in env {
            command.env(name, value);
        }
        let spawned = Instant::now();
        let (process, address) = ledger_testkit::launch(&mut command, log_path);
        Launch {
            process,
            address,
            log_path: log_path.to_path_buf(),
            spawned,
        }
    }

    /// Whether the server has printed its address already.
    pub fn listening(&mut self) -> Option<String> {
        self.address.try_recv().ok().map(|(address, _)| address)
    }

    /// Waits for the address and connects.
    pub async fn ready(mut self) -> Server {
        let receiver = std::mem::replace(&mut self.address, std::sync::mpsc::channel().1);
        let address = tokio::task::spawn_blocking(move || receiver.recv_timeout(START_WAIT))
            .await
            .expect("the wait for the address does not panic");
        let Ok((address, _)) = address else {
            let status = self.process.try_wait();
            panic!(
                "voucher-ledger printed no address (exit: {status:?}); its stderr:\n{}",
                log_tail(&self.log_path)
            );
        };
        let startup = self.spawned.elapsed();
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("a valid uri")
            .connect()
            .await
            .expect("the server accepts a connection on the address it printed");
        Server {
            log_path: self.log_path.clone(),
            launch: self,
            channel,
            startup,
        }
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
        }
        let _ = self.process.wait();
    }
}

/// A running server; dropping it kills the process if it still runs.
pub struct Server {
    pub launch: Launch,
    pub channel: Channel,
    pub log_path: PathBuf,
    /// From spawn to the address printed.
    pub startup: Duration,
}

impl Server {
    pub fn process(&mut self) -> &mut Child {
        &mut self.launch.process
    }

    /// SIGTERM and a clean exit.
    pub async fn stop(mut self) {
        let log_path = self.log_path.clone();
        let process = self.process();
        send_signal(process, "-TERM");
        let status = wait_for_exit(process, STOP_WAIT).await;
        assert!(
            status.is_some_and(|status| status.success()),
            "voucher-ledger did not exit cleanly after SIGTERM ({status:?}); its stderr:\n{}",
            log_tail(&log_path)
        );
    }
}

/// An offline command's status and output.
pub fn offline(args: &[&str]) -> (ExitStatus, String, String) {
    let output = voucher_ledger(args)
        .stdin(Stdio::null())
        .output()
        .expect("voucher-ledger runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// ---- requests ----

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("an ascii token");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A write, exactly as sent, so that a retry sends the same content.
#[derive(Clone, Debug)]
pub enum Write {
    Register(api::RegisterCompanyRequest),
    Issue(api::IssueVouchersRequest),
    Redeem(api::RedeemHoursRequest),
    Reverse(api::ReverseRedemptionRequest),
    /// Ordered by the operator on the company's behalf (the demo has no token for the load's
    /// companies).
    Order(api::OrderUsageCodeRequest),
    Cancel(api::CancelUsageCodeRequest),
}

/// What an accepted write does to its company's wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Register,
    Issue {
        quantity: u32,
    },
    Redeem {
        hours: u32,
        module: String,
        worker: u64,
    },
    Reverse {
        redemption_id: Uuid,
        hours: u32,
    },
    /// A usage code of `hours` earmarked; `code` is the one derived from the order id (the
    /// ledger takes the first derivation not taken, and two codes collide about once in 10^12).
    Order {
        code: String,
        hours: u32,
    },
    /// A redemption against a code: it spends the code's earmarked vouchers.
    File {
        code: String,
        hours: u32,
        module: String,
        worker: u64,
    },
    /// A code cancelled with `hours` left, which go back to the wallet's free vouchers.
    Cancel {
        code: String,
        hours: u32,
    },
}

#[derive(Clone, Debug)]
pub struct Op {
    pub request_id: Uuid,
    pub caller: u32,
    pub company: String,
    pub effect: Effect,
    pub write: Write,
}

/// The answer to a write, sorted the way a client must sort it.
#[derive(Debug)]
pub enum Answer {
    Accepted(api::Receipt),
    /// Refused by the rules: decided, durable as a refusal (nothing written).
    Refused(Status),
    /// No answer, or "the writer is not running": the write may or may not be in the log.
    Unknown(#[expect(dead_code, reason = "shown by Debug in failure messages")] Status),
}

pub fn is_refusal(status: &Status) -> bool {
    let unknown_outcome = matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::DataLoss
            | Code::Aborted
    );
    !unknown_outcome
        && status
            .get_details_error_info()
            .is_some_and(|info| info.domain == "voucherledger.v1")
}

/// A write's raw answer: the receipt, or the status as the server (or the transport) gave it.
pub async fn call(channel: &Channel, write: &Write) -> Result<api::Receipt, Status> {
    let answer = match write {
        Write::Register(message) => {
            OperatorServiceClient::new(channel.clone())
                .register_company(with_token(message.clone(), OPERATOR))
                .await
        }
        Write::Issue(message) => {
            OperatorServiceClient::new(channel.clone())
                .issue_vouchers(with_token(message.clone(), OPERATOR))
                .await
        }
        Write::Redeem(message) => {
            ProviderServiceClient::new(channel.clone())
                .redeem_hours(with_token(message.clone(), PROVIDER))
                .await
        }
        Write::Reverse(message) => {
            ProviderServiceClient::new(channel.clone())
                .reverse_redemption(with_token(message.clone(), PROVIDER))
                .await
        }
        Write::Order(message) => {
            let answer = CompanyServiceClient::new(channel.clone())
                .order_usage_code(with_token(message.clone(), OPERATOR))
                .await?
                .into_inner();
            assert_eq!(
                answer.code,
                derived_code(&message.request_id),
                "the code answered is the one derived from the order id"
            );
            return Ok(answer
                .write
                .and_then(|write| write.receipt)
                .expect("an accepted order has a receipt"));
        }
        Write::Cancel(message) => {
            CompanyServiceClient::new(channel.clone())
                .cancel_usage_code(with_token(message.clone(), OPERATOR))
                .await
        }
    }?;
    Ok(answer
        .into_inner()
        .receipt
        .expect("an accepted write has a receipt"))
}

/// The written form (`K7Q-M2P-X9R`) of the code an order of `order_id` gets: its first
/// derivation, unless that one is taken, which does not happen in a campaign.
pub fn derived_code(order_id: &str) -> String {
    let order_id = Uuid::parse_str(order_id).expect("an order id is a UUID");
    UsageCode::derive(order_id, 0).to_string()
}

/// A write's answer sorted for the campaign: accepted, refused (a decision), or unknown (no
/// answer in time, or a status that does not say whether the write was made).
pub async fn send(channel: &Channel, write: &Write) -> Answer {
    match tokio::time::timeout(CALL_WAIT, call(channel, write)).await {
        Ok(Ok(receipt)) => Answer::Accepted(receipt),
        Ok(Err(status)) if is_refusal(&status) => Answer::Refused(status),
        Ok(Err(status)) => Answer::Unknown(status),
        Err(_) => Answer::Unknown(Status::deadline_exceeded("no answer in time")),
    }
}

/// The dates every write uses, fixed for the whole campaign when it starts, from today's date
/// (UTC, the server's): a filing against a usage code must fall within the code's filing grace
/// of today, so fixed calendar days would lapse. Training 10 days ago, a payment 40 days ago
/// (or on 1 January of the training's year, when that is later: the payment's year is the quota
/// and budget year, and the reports read one year), registration on 1 January of that year.
/// The codes' period runs from the payment to the training day, inside the batches' validity;
/// their filing grace (120 days) outlasts any campaign. Redemptions without a code stay
/// accepted whatever today is: the campaign's policy table requires no code
/// ([`campaign_policy_file`]).
#[derive(Clone, Debug)]
pub struct Dates {
    pub year: i32,
    pub registered_on: NaiveDate,
    pub payment: NaiveDate,
    pub training: NaiveDate,
    pub code_period_from: NaiveDate,
    pub code_period_until: NaiveDate,
}

impl Dates {
    /// The campaign's dates, from today (see [`Dates`]).
    pub fn fixed() -> Dates {
        Dates::from_today(Utc::now().date_naive())
    }

    pub fn from_today(today: NaiveDate) -> Dates {
        let training = today - TimeDelta::days(10);
        let new_year = NaiveDate::from_ymd_opt(training.year(), 1, 1).expect("a 1 January");
        let payment = (today - TimeDelta::days(40)).max(new_year);
        Dates {
            year: training.year(),
            registered_on: new_year,
            payment,
            training,
            code_period_from: payment,
            code_period_until: training,
        }
    }
}

pub fn iso(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub fn eur(euros: u64) -> String {
    format!("{euros}.00")
}

/// A valid enterprise number: ten digits, starting with 1, check digits 97 - (body mod 97).
pub fn enterprise_number(body: u64) -> String {
    assert!((10_000_000..20_000_000).contains(&body));
    format!("{body:08}{:02}", 97 - body % 97)
}

/// A valid national register number of someone born in 19`year`, distinct for each `index`
/// below 335 000.
pub fn national_number(year: u64, index: u64) -> String {
    let serial = index % 997 + 1;
    let day = (index / 997) % 28 + 1;
    let month = (index / (997 * 28)) % 12 + 1;
    let body = year * 10_000_000 + month * 100_000 + day * 1_000 + serial;
    format!("{body:09}{:02}", 97 - body % 97)
}

// ---- a caller: its own companies and workers, so that it knows every answer in advance ----

#[derive(Clone, Debug)]
pub struct CompanyCursor {
    pub enterprise_number: String,
    pub issued: u32,
    /// Vouchers in the wallet, earmarked ones included.
    pub balance: u32,
    /// Of `balance`, those earmarked for open codes.
    pub reserved: u32,
}

impl CompanyCursor {
    /// What a redemption without a code may spend.
    pub fn free(&self) -> u32 {
        self.balance - self.reserved
    }
}

/// An open usage code of a caller's company, and the hours it still holds.
#[derive(Clone, Debug)]
pub struct OpenCode {
    pub code: String,
    pub hours_left: u32,
}

#[derive(Clone, Debug)]
pub struct Caller {
    pub index: u32,
    pub rng: Rng,
    pub company: Option<CompanyCursor>,
    pub companies_opened: u64,
    /// The current worker and their hours on each module.
    pub worker: u64,
    pub worker_hours: BTreeMap<String, u32>,
    /// Acknowledged redemptions of the current company not reversed: (id, hours).
    pub reversible: Vec<(Uuid, u32)>,
    /// The current company's open codes holding hours.
    pub codes: Vec<OpenCode>,
}

impl Caller {
    pub fn new(index: u32, seed: u64) -> Caller {
        Caller {
            index,
            rng: Rng(seed ^ (u64::from(index) << 32)),
            company: None,
            companies_opened: 0,
            worker: 0,
            worker_hours: BTreeMap::new(),
            reversible: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// The next write, chosen so that the ledger must accept it.
    pub fn next_op(&mut self, dates: &Dates) -> Op {
        let request_id = Uuid::new_v4();
        let Some(company) = self.company.clone() else {
            return self.register(request_id, dates);
        };
        let quota_left = QUOTA_GENERAL - company.issued;
        let roll = self.rng.between(0, 99);
        if let Some(op) = self.usage_code_op(request_id, &company, roll, quota_left, dates) {
            return op;
        }
        if roll < 8 && !self.reversible.is_empty() {
            let (redemption_id, hours) = *self.rng.pick(&self.reversible);
            return Op {
                request_id,
                caller: self.index,
                company: company.enterprise_number,
                effect: Effect::Reverse {
                    redemption_id,
                    hours,
                },
                write: Write::Reverse(api::ReverseRedemptionRequest {
                    request_id: request_id.to_string(),
                    provider_id: PROVIDER_ID.into(),
                    redemption_id: redemption_id.to_string(),
                    reason: "training cancelled".into(),
                    reversed_on: iso(dates.training),
                }),
            };
        }
        if (roll < 60 && company.free() >= 3) || (quota_left == 0 && company.free() >= 1) {
            let hours = self.rng.between(1, u64::from(company.free().min(3))) as u32;
            return self.redeem(request_id, &company, hours, dates);
        }
        if quota_left > 0 {
            let quantity = self.rng.between(1, u64::from(quota_left.min(20))) as u32;
            return Op {
                request_id,
                caller: self.index,
                company: company.enterprise_number.clone(),
                effect: Effect::Issue { quantity },
                write: Write::Issue(api::IssueVouchersRequest {
                    request_id: request_id.to_string(),
                    enterprise_number: company.enterprise_number,
                    voucher_type: VoucherType::General as i32,
                    quantity,
                    paid_amount_eur: eur(u64::from(quantity) * EMPLOYER_SHARE_EUR),
                    payment_date: iso(dates.payment),
                    payment_reference: format!("VIR-{request_id}"),
                }),
            };
        }
        self.register(request_id, dates)
    }

    /// A write about usage codes, when the roll (or a wallet with nothing else to spend) picks
    /// one: rolls 8 to 13 order a code from the free vouchers, 14 to 33 file against an open
    /// one (one to three hours, so a code takes several filings down to zero), 34 to 36 cancel
    /// one; a wallet whose vouchers are all earmarked, and no quota left, files.
    pub fn usage_code_op(
        &mut self,
        request_id: Uuid,
        company: &CompanyCursor,
        roll: u64,
        quota_left: u32,
        dates: &Dates,
    ) -> Option<Op> {
        let enterprise_number = company.enterprise_number.clone();
        if (8..14).contains(&roll) && company.free() >= 1 && self.codes.len() < OPEN_CODES_MAX {
            let hours = self
                .rng
                .between(1, u64::from(company.free().min(CODE_HOURS_MAX)))
                as u32;
            return Some(Op {
                request_id,
                caller: self.index,
                company: enterprise_number.clone(),
                effect: Effect::Order {
                    code: derived_code(&request_id.to_string()),
                    hours,
                },
                write: Write::Order(api::OrderUsageCodeRequest {
                    request_id: request_id.to_string(),
                    enterprise_number,
                    provider_id: PROVIDER_ID.into(),
                    module_id: String::new(),
                    voucher_type: VoucherType::General as i32,
                    hours: hours.to_string(),
                    period_from: iso(dates.code_period_from),
                    period_until: iso(dates.code_period_until),
                }),
            });
        }
        if self.codes.is_empty() {
            return None;
        }
        let all_earmarked = quota_left == 0 && company.free() == 0;
        if (14..34).contains(&roll) || all_earmarked {
            let open = self.rng.pick(&self.codes).clone();
            let hours = self.rng.between(1, u64::from(open.hours_left.min(3))) as u32;
            let mut op = self.redeem(request_id, company, hours, dates);
            let Write::Redeem(request) = &mut op.write else {
                unreachable!("redeem makes a redemption")
            };
            request.usage_code = open.code.clone();
            let Effect::Redeem { module, worker, .. } = op.effect else {
                unreachable!("redeem makes a redemption")
            };
            op.effect = Effect::File {
                code: open.code,
                hours,
                module,
                worker,
            };
            return Some(op);
        }
        if (34..37).contains(&roll) {
            let open = self.rng.pick(&self.codes).clone();
            return Some(Op {
                request_id,
                caller: self.index,
                company: enterprise_number.clone(),
                effect: Effect::Cancel {
                    code: open.code.clone(),
                    hours: open.hours_left,
                },
                write: Write::Cancel(api::CancelUsageCodeRequest {
                    request_id: request_id.to_string(),
                    usage_code: open.code,
                    enterprise_number,
                    reason: "training postponed".into(),
                }),
            });
        }
        None
    }

    pub fn register(&mut self, request_id: Uuid, dates: &Dates) -> Op {
        let body = 10_000_000 + u64::from(self.index) * 1_000_000 + self.companies_opened;
        self.companies_opened += 1;
        let enterprise_number = enterprise_number(body);
        Op {
            request_id,
            caller: self.index,
            company: enterprise_number.clone(),
            effect: Effect::Register,
            write: Write::Register(api::RegisterCompanyRequest {
                request_id: request_id.to_string(),
                enterprise_number,
                year: dates.year,
                name: format!("Crash Test {body} SRL"),
                legal_form: LegalForm::CommercialCompany as i32,
                region: Region::WalloniaFrenchSpeaking as i32,
                fte: "12".into(),
                turnover_eur: "1000000".into(),
                balance_sheet_total_eur: "500000".into(),
                autonomous: true,
                secondary_activity_months: 0,
                nace_sector: "62.01".into(),
                registered_on: iso(dates.registered_on),
            }),
        }
    }

    pub fn redeem(
        &mut self,
        request_id: Uuid,
        company: &CompanyCursor,
        hours: u32,
        dates: &Dates,
    ) -> Op {
        let module = (*self.rng.pick(&MODULES)).to_owned();
        let used = self.worker_hours.get(&module).copied().unwrap_or(0);
        if used + hours > MODULE_HOURS_MAX {
            self.worker += 1;
            self.worker_hours.clear();
        }
        let worker = self.worker;
        Op {
            request_id,
            caller: self.index,
            company: company.enterprise_number.clone(),
            effect: Effect::Redeem {
                hours,
                module: module.clone(),
                worker,
            },
            write: Write::Redeem(api::RedeemHoursRequest {
                request_id: request_id.to_string(),
                provider_id: PROVIDER_ID.into(),
                module_id: module,
                enterprise_number: company.enterprise_number.clone(),
                national_number: national_number(60 + u64::from(self.index), worker),
                trainee_status: TraineeStatus::Employee as i32,
                voucher_type: VoucherType::General as i32,
                hours: hours.to_string(),
                training_date: iso(dates.training),
                usage_code: String::new(),
            }),
        }
    }

    /// Follows an accepted write of this caller.
    pub fn apply(&mut self, op: &Op) {
        match &op.effect {
            Effect::Register => {
                self.company = Some(CompanyCursor {
                    enterprise_number: op.company.clone(),
                    issued: 0,
                    balance: 0,
                    reserved: 0,
                });
                self.reversible.clear();
                self.codes.clear();
            }
            Effect::Issue { quantity } => {
                let company = self.company.as_mut().expect("a company");
                company.issued += quantity;
                company.balance += quantity;
            }
            Effect::Redeem {
                hours,
                module,
                worker,
            } => {
                let company = self.company.as_mut().expect("a company");
                company.balance -= hours;
                if *worker == self.worker {
                    *self.worker_hours.entry(module.clone()).or_default() += hours;
                }
                self.reversible.push((op.request_id, *hours));
            }
            Effect::Reverse {
                redemption_id,
                hours,
            } => {
                let company = self.company.as_mut().expect("a company");
                company.balance += hours;
                self.reversible.retain(|(id, _)| id != redemption_id);
            }
            Effect::Order { code, hours } => {
                let company = self.company.as_mut().expect("a company");
                company.reserved += hours;
                self.codes.push(OpenCode {
                    code: code.clone(),
                    hours_left: *hours,
                });
            }
            Effect::File {
                code,
                hours,
                module,
                worker,
            } => {
                let company = self.company.as_mut().expect("a company");
                company.balance -= hours;
                company.reserved -= hours;
                if *worker == self.worker {
                    *self.worker_hours.entry(module.clone()).or_default() += hours;
                }
                // A filing is a redemption: its reversal gives free vouchers back, not the code.
                self.reversible.push((op.request_id, *hours));
                let open = self
                    .codes
                    .iter_mut()
                    .find(|open| &open.code == code)
                    .expect("a filing against an open code");
                open.hours_left -= hours;
                self.codes.retain(|open| open.hours_left > 0);
            }
            Effect::Cancel { code, hours } => {
                let company = self.company.as_mut().expect("a company");
                company.reserved -= hours;
                self.codes.retain(|open| &open.code != code);
            }
        }
    }
}

/// What one caller did in a burst: its acknowledged writes, and the one left without an answer.
pub struct Burst {
    pub caller: Caller,
    pub acknowledged: Vec<(Op, api::Receipt)>,
    pub unanswered: Option<Op>,
}

/// Writes until a write goes unanswered (the server is gone) or `stop` is set.
pub async fn drive(
    mut caller: Caller,
    channel: Channel,
    dates: Dates,
    stop: Arc<AtomicBool>,
) -> Burst {
    let mut acknowledged = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let op = caller.next_op(&dates);
        match send(&channel, &op.write).await {
            Answer::Accepted(receipt) => {
                assert!(
                    !receipt.replayed,
                    "a new request answered as a replay: {op:?}"
                );
                caller.apply(&op);
                acknowledged.push((op, receipt));
            }
            Answer::Refused(status) => {
                panic!(
                    "the ledger refused a write the model expects it to accept: {op:?}: {status:?}"
                )
            }
            Answer::Unknown(_) => {
                return Burst {
                    caller,
                    acknowledged,
                    unanswered: Some(op),
                }
            }
        }
    }
    Burst {
        caller,
        acknowledged,
        unanswered: None,
    }
}

// ---- the model: what the acknowledged writes make of the ledger ----

#[derive(Clone, Copy, Debug, Default)]
pub struct CompanyTotals {
    pub issued: u32,
    /// Hours redeemed, with or without a code.
    pub redeemed: u32,
    pub reversed: u32,
    /// Hours earmarked by orders, filed against codes, and given back by cancels.
    pub ordered: u32,
    pub filed: u32,
    pub returned: u32,
}

impl CompanyTotals {
    pub fn balance(&self) -> u32 {
        self.issued + self.reversed - self.redeemed
    }

    /// Of the balance, the vouchers earmarked for open codes.
    pub fn reserved(&self) -> u32 {
        self.ordered - self.filed - self.returned
    }

    pub fn with(mut self, effect: &Effect) -> CompanyTotals {
        match effect {
            Effect::Register => {}
            Effect::Issue { quantity } => self.issued += quantity,
            Effect::Redeem { hours, .. } => self.redeemed += hours,
            Effect::Reverse { hours, .. } => self.reversed += hours,
            Effect::Order { hours, .. } => self.ordered += hours,
            Effect::File { hours, .. } => {
                self.redeemed += hours;
                self.filed += hours;
            }
            Effect::Cancel { hours, .. } => self.returned += hours,
        }
        self
    }
}

/// What the accepted writes made of one usage code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeTotals {
    pub enterprise_number: String,
    pub hours: u32,
    pub filed: u32,
    pub cancelled: bool,
}

impl CodeTotals {
    pub fn hours_left(&self) -> u32 {
        if self.cancelled {
            0
        } else {
            self.hours - self.filed
        }
    }

    pub fn status(&self) -> api::UsageCodeStatus {
        if self.cancelled {
            api::UsageCodeStatus::Cancelled
        } else if self.filed == self.hours {
            api::UsageCodeStatus::Used
        } else {
            api::UsageCodeStatus::Open
        }
    }
}

/// The receipt of an accepted request: where its events are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub first_position: u64,
    pub event_count: u32,
}

impl Placed {
    pub fn of(receipt: &api::Receipt) -> Placed {
        Placed {
            first_position: receipt.first_position,
            event_count: receipt.event_count,
        }
    }
}

#[derive(Debug, Default)]
pub struct Model {
    pub companies: BTreeMap<String, CompanyTotals>,
    /// Every usage code ordered, by its written form.
    pub codes: BTreeMap<String, CodeTotals>,
    /// Every accepted request (setup, acknowledged, and unanswered ones found or retried).
    pub accepted: HashMap<String, Placed>,
}

impl Model {
    pub fn accept(&mut self, op: &Op, placed: Placed) {
        let totals = self.companies.entry(op.company.clone()).or_default();
        *totals = totals.with(&op.effect);
        match &op.effect {
            Effect::Order { code, hours } => {
                let previous = self.codes.insert(
                    code.clone(),
                    CodeTotals {
                        enterprise_number: op.company.clone(),
                        hours: *hours,
                        filed: 0,
                        cancelled: false,
                    },
                );
                assert!(previous.is_none(), "code {code} ordered twice");
            }
            Effect::File { code, hours, .. } => {
                let totals = self
                    .codes
                    .get_mut(code)
                    .expect("a filing against a known code");
                assert!(
                    !totals.cancelled && totals.filed + hours <= totals.hours,
                    "the model filed {hours} hours against {code} ({totals:?})"
                );
                totals.filed += hours;
            }
            Effect::Cancel { code, .. } => {
                self.codes.get_mut(code).expect("a known code").cancelled = true;
            }
            _ => {}
        }
        let previous = self.accepted.insert(op.request_id.to_string(), placed);
        assert!(
            previous.is_none(),
            "request {} accepted twice",
            op.request_id
        );
    }

    pub fn total(&self) -> CompanyTotals {
        self.companies
            .values()
            .fold(CompanyTotals::default(), |sum, totals| CompanyTotals {
                issued: sum.issued + totals.issued,
                redeemed: sum.redeemed + totals.redeemed,
                reversed: sum.reversed + totals.reversed,
                ordered: sum.ordered + totals.ordered,
                filed: sum.filed + totals.filed,
                returned: sum.returned + totals.returned,
            })
    }
}

// ---- the log, as an auditor reads it ----

/// One event, as the audit keeps it for the checks that follow a read.
#[derive(Clone, Debug)]
pub struct Seen {
    pub position: u64,
    pub request_id: String,
    pub recorded_at: String,
}

/// The log read so far, its chain recomputed here. Since each hash covers the one before, the
/// head hash verified at the end of a read vouches for every event before it; the next read
/// starts after it.
#[derive(Debug)]
pub struct LogAudit {
    pub position: u64,
    pub hash: [u8; 32],
    pub requests: HashMap<String, Placed>,
}

impl LogAudit {
    pub fn new() -> LogAudit {
        LogAudit {
            position: 0,
            hash: [0; 32],
            requests: HashMap::new(),
        }
    }

    pub fn head(&self) -> String {
        format!("{}:{}", self.position, hex::encode(self.hash))
    }

    /// Reads the events after the last one read, up to the server's head, and checks the chain.
    pub async fn catch_up(&mut self, channel: &Channel) -> Vec<Seen> {
        let head = get_head(channel).await;
        assert!(
            head.position >= self.position,
            "the head went back from {} to {}: events were lost",
            self.position,
            head.position
        );
        let mut seen = Vec::new();
        while self.position < head.position {
            let mut page = AuditServiceClient::new(channel.clone())
                .read_events(with_token(
                    api::ReadEventsRequest {
                        from_position: self.position + 1,
                        limit: 0,
                    },
                    AUDITOR,
                ))
                .await
                .expect("an auditor reads the log")
                .into_inner();
            let mut read = 0;
            while let Some(audit_event) = page.message().await.expect("a page of events") {
                seen.push(self.follow(audit_event));
                read += 1;
            }
            assert!(read > 0, "no event after position {}", self.position);
        }
        assert_eq!(
            (self.position, hex::encode(self.hash)),
            (head.position, head.hash.clone()),
            "the head the server reports is not the end of the chain recomputed here"
        );
        seen
    }

    pub fn follow(&mut self, audit_event: api::AuditEvent) -> Seen {
        let event = audit_event.event.expect("an audit event has its event");
        let position = self.position + 1;
        assert_eq!(event.position, position, "a gap in the log");
        assert_eq!(
            audit_event.prev_hash,
            hex::encode(self.hash),
            "prev_hash at position {position}"
        );
        let hash: [u8; 32] = Sha256::new()
            .chain_update(self.hash)
            .chain_update(position.to_be_bytes())
            .chain_update(event.encode_to_vec())
            .finalize()
            .into();
        assert_eq!(
            audit_event.hash,
            hex::encode(hash),
            "the chain breaks at position {position}"
        );
        self.position = position;
        self.hash = hash;
        let placed = self
            .requests
            .entry(event.request_id.clone())
            .or_insert(Placed {
                first_position: position,
                event_count: 0,
            });
        assert_eq!(
            placed.first_position + u64::from(placed.event_count),
            position,
            "request {} has events at {} and again at {position}: written twice",
            event.request_id,
            placed.first_position
        );
        placed.event_count += 1;
        Seen {
            position,
            request_id: event.request_id,
            recorded_at: event.recorded_at,
        }
    }

    /// Asserts that an acknowledged request is in the log exactly where its receipt says.
    #[track_caller]
    pub fn assert_placed(&self, request_id: &str, placed: Placed) {
        match self.requests.get(request_id) {
            Some(found) => assert_eq!(
                *found, placed,
                "request {request_id} is in the log elsewhere than its receipt says"
            ),
            None => {
                panic!("acknowledged request {request_id} ({placed:?}) is not in the log: LOST")
            }
        }
    }
}

pub async fn get_head(channel: &Channel) -> api::Head {
    AuditServiceClient::new(channel.clone())
        .get_head(with_token(api::GetHeadRequest {}, AUDITOR))
        .await
        .expect("an auditor reads the head")
        .into_inner()
}

// ---- reports ----

/// What the server reports, compared before and after an offline rebuild.
#[derive(Debug, PartialEq)]
pub struct Reports {
    pub year: api::YearSummary,
    pub budget: api::Budget,
    pub companies: api::CompaniesReport,
    pub hours: api::TrainingHours,
    pub trial_balance: api::TrialBalance,
    pub statement: api::Statement,
    pub wallets: Vec<api::Wallet>,
    /// The usage codes of the same companies, with the hours each holds reserved.
    pub usage_codes: Vec<api::UsageCodeList>,
}

pub async fn reports(channel: &Channel, dates: &Dates, wallets: &[String]) -> Reports {
    let mut report = ReportServiceClient::new(channel.clone());
    let year = dates.year;
    let mut wallet_answers = Vec::new();
    let mut usage_codes = Vec::new();
    for enterprise_number in wallets {
        wallet_answers.push(get_wallet(channel, enterprise_number).await);
        usage_codes.push(list_usage_codes(channel, enterprise_number).await);
    }
    Reports {
        year: report
            .get_year_summary(with_token(
                api::GetYearSummaryRequest { year, as_of: None },
                AUDITOR,
            ))
            .await
            .expect("the year's summary")
            .into_inner(),
        budget: report
            .get_budget(with_token(
                api::GetBudgetRequest { year, as_of: None },
                AUDITOR,
            ))
            .await
            .expect("the budget")
            .into_inner(),
        companies: report
            .get_companies(with_token(
                api::GetCompaniesRequest { year, as_of: None },
                AUDITOR,
            ))
            .await
            .expect("the companies report")
            .into_inner(),
        hours: report
            .get_training_hours(with_token(
                api::GetTrainingHoursRequest {
                    year: dates.training.year(),
                    as_of: None,
                },
                AUDITOR,
            ))
            .await
            .expect("the training hours")
            .into_inner(),
        trial_balance: report
            .get_trial_balance(with_token(
                api::GetTrialBalanceRequest { as_of: None },
                AUDITOR,
            ))
            .await
            .expect("the trial balance")
            .into_inner(),
        statement: ProviderServiceClient::new(channel.clone())
            .get_statement(with_token(
                api::GetStatementRequest {
                    provider_id: PROVIDER_ID.into(),
                    as_of: None,
                },
                AUDITOR,
            ))
            .await
            .expect("the provider's statement")
            .into_inner(),
        wallets: wallet_answers,
        usage_codes,
    }
}

pub async fn list_usage_codes(channel: &Channel, enterprise_number: &str) -> api::UsageCodeList {
    CompanyServiceClient::new(channel.clone())
        .list_usage_codes(with_token(
            api::ListUsageCodesRequest {
                enterprise_number: enterprise_number.to_owned(),
                status: api::UsageCodeStatus::Unspecified as i32,
                as_of: None,
            },
            AUDITOR,
        ))
        .await
        .unwrap_or_else(|status| panic!("the usage codes of {enterprise_number}: {status:?}"))
        .into_inner()
}

pub async fn get_wallet(channel: &Channel, enterprise_number: &str) -> api::Wallet {
    OperatorServiceClient::new(channel.clone())
        .get_wallet(with_token(
            api::GetWalletRequest {
                enterprise_number: enterprise_number.to_owned(),
                as_of: None,
            },
            AUDITOR,
        ))
        .await
        .unwrap_or_else(|status| panic!("the wallet of {enterprise_number}: {status:?}"))
        .into_inner()
}

/// Checks a wallet against the model: its general balance and the vouchers of it earmarked for
/// codes, the batches adding up to it, and no batch holding more than it was issued with.
pub fn check_wallet(wallet: &api::Wallet, expected: CompanyTotals) {
    let (balance, reserved) = wallet
        .balances
        .iter()
        .find(|balance| balance.voucher_type == VoucherType::General as i32)
        .map_or((0, 0), |balance| (balance.vouchers, balance.reserved));
    assert_eq!(
        reserved,
        expected.reserved(),
        "vouchers of {} earmarked for usage codes against the model",
        wallet.enterprise_number
    );
    assert!(
        reserved <= balance,
        "{} has {reserved} vouchers earmarked of {balance}",
        wallet.enterprise_number
    );
    let expected_balance = expected.balance();
    let in_batches: u32 = wallet
        .batches
        .iter()
        .filter(|batch| batch.voucher_type == VoucherType::General as i32)
        .map(|batch| batch.remaining)
        .sum();
    for batch in &wallet.batches {
        assert!(
            batch.remaining <= batch.quantity,
            "batch {} of {} holds {} of {}",
            batch.batch_id,
            wallet.enterprise_number,
            batch.remaining,
            batch.quantity
        );
    }
    assert_eq!(
        (balance, in_batches),
        (expected_balance, expected_balance),
        "wallet of {}: balance and sum of its batches against the model",
        wallet.enterprise_number
    );
}

/// Checks a company's usage codes against the model: the same codes, each with its hours, hours
/// filed, hours left and status, and the hours reserved the sum of what the open ones hold.
pub fn check_usage_codes(list: &api::UsageCodeList, model: &Model) {
    let company = &list.enterprise_number;
    let expected: BTreeMap<&String, &CodeTotals> = model
        .codes
        .iter()
        .filter(|(_, totals)| &totals.enterprise_number == company)
        .collect();
    let found: BTreeMap<&String, &api::UsageCodeView> =
        list.codes.iter().map(|view| (&view.code, view)).collect();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the usage codes of {company} against the model"
    );
    for (code, totals) in &expected {
        let view = found[code];
        assert_eq!(
            (view.hours, view.hours_filed, view.hours_left, view.status),
            (
                totals.hours,
                totals.filed,
                totals.hours_left(),
                totals.status() as i32
            ),
            "usage code {code} of {company} against the model"
        );
    }
    let reserved: u64 = expected
        .values()
        .map(|totals| u64::from(totals.hours_left()))
        .sum();
    assert_eq!(
        list.reserved_hours, reserved,
        "hours reserved by {company}'s open codes against the model"
    );
    assert_eq!(
        reserved,
        u64::from(
            model
                .companies
                .get(company)
                .map_or(0, CompanyTotals::reserved)
        ),
        "the model's codes and its wallet of {company} agree"
    );
}

/// Checks the reports against the model of every accepted write.
pub fn check_reports(reports: &Reports, model: &Model) {
    let total = model.total();
    let outstanding = u64::from(total.balance());
    let net_redeemed = u64::from(total.redeemed - total.reversed);
    assert_eq!(reports.trial_balance.total_eur, "0.00", "the trial balance");
    assert_eq!(
        (
            reports.budget.allocated_eur.as_str(),
            reports.budget.committed_eur.as_str(),
            reports.budget.spent_eur.as_str(),
            reports.budget.released_eur.as_str(),
        ),
        (
            eur(BUDGET_ALLOCATED_EUR).as_str(),
            eur(outstanding * REGION_SHARE_EUR).as_str(),
            eur(net_redeemed * REGION_SHARE_EUR).as_str(),
            "0.00",
        ),
        "the budget against the model"
    );
    let registered = model.companies.len() as u32;
    let holding = model
        .companies
        .values()
        .filter(|totals| totals.issued > 0)
        .count() as u32;
    assert_eq!(
        (
            reports.year.companies_registered,
            reports.year.companies_holding_vouchers,
            reports.year.vouchers_issued,
        ),
        (registered, holding, u64::from(total.issued)),
        "the year's summary against the model"
    );
    assert_eq!(reports.hours.total, net_redeemed, "training hours");
    for list in &reports.usage_codes {
        check_usage_codes(list, model);
    }
    assert_eq!(
        (
            reports.statement.redeemed_hours,
            reports.statement.owed_eur.as_str(),
            reports.statement.paid_eur.as_str(),
        ),
        (
            net_redeemed,
            eur(net_redeemed * FACE_VALUE_EUR).as_str(),
            "0.00"
        ),
        "the provider's statement against the model"
    );
}

// ---- the campaign ----

#[derive(Debug, Default)]
pub struct Stats {
    pub cycles: u32,
    pub requests_acknowledged: u64,
    pub events_acknowledged: u64,
    pub events_lost: u64,
    pub unanswered_found_in_log: u64,
    pub unanswered_not_in_log: u64,
    pub retries_replayed: u64,
    pub sigkills_under_load: u32,
    /// Of which with a server checkpointing every 10 events or fewer: nearly every group it
    /// writes carries a checkpoint, so the kill lands in or next to a checkpoint write.
    pub sigkills_with_checkpoints_in_most_groups: u32,
    pub sigkills_during_graceful_stop: u32,
    pub graceful_stops_finished_before_sigkill: u32,
    pub rebuilds_killed_before_opening_the_log: u32,
    pub rebuilds_killed_after_opening_the_log: u32,
    pub rebuilds_finished_before_kill: u32,
    pub starts_killed_before_opening_the_log: u32,
    pub starts_killed_during_the_replay: u32,
    pub starts_killed_after_the_replay: u32,
    pub starts_killed_after_listening: u32,
    pub starts_from_checkpoint: u32,
    pub longest_replay_events: u64,
    pub starts_from_position_1: u32,
    pub checkpoints_ignored: u32,
    /// The most segment files of the sealed past a start found (`CAMPAIGN_SEGMENT_LEN_EVENTS`).
    pub segments_at_a_start_max: u32,
    pub full_checks: u32,
    /// Acknowledged writes about usage codes, and refused redemptions of earmarked vouchers.
    pub codes_ordered: u64,
    pub filings_against_codes: u64,
    pub codes_cancelled: u64,
    pub earmark_probes: u32,
}

impl Stats {
    pub fn count_codes(&mut self, effect: &Effect) {
        match effect {
            Effect::Order { .. } => self.codes_ordered += 1,
            Effect::File { .. } => self.filings_against_codes += 1,
            Effect::Cancel { .. } => self.codes_cancelled += 1,
            _ => {}
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "cycles                                  {}", self.cycles)?;
        writeln!(
            f,
            "requests acknowledged                   {}",
            self.requests_acknowledged
        )?;
        writeln!(
            f,
            "events acknowledged                     {}",
            self.events_acknowledged
        )?;
        writeln!(
            f,
            "events lost                             {}",
            self.events_lost
        )?;
        writeln!(
            f,
            "unanswered at a crash, found in the log {}",
            self.unanswered_found_in_log
        )?;
        writeln!(
            f,
            "unanswered at a crash, not in the log   {}",
            self.unanswered_not_in_log
        )?;
        writeln!(
            f,
            "retries answered as replays             {}",
            self.retries_replayed
        )?;
        writeln!(
            f,
            "SIGKILL under load                      {} ({} with a checkpoint in most groups)",
            self.sigkills_under_load, self.sigkills_with_checkpoints_in_most_groups
        )?;
        writeln!(
            f,
            "SIGKILL during a graceful stop          {} (stop finished first: {})",
            self.sigkills_during_graceful_stop, self.graceful_stops_finished_before_sigkill
        )?;
        writeln!(
            f,
            "SIGKILL during an offline rebuild       {} before opening the log, {} after, {} finished first",
            self.rebuilds_killed_before_opening_the_log,
            self.rebuilds_killed_after_opening_the_log,
            self.rebuilds_finished_before_kill
        )?;
        writeln!(
            f,
            "SIGKILL during a start                  {} before opening the log, {} during the replay, {} after it, {} once listening",
            self.starts_killed_before_opening_the_log,
            self.starts_killed_during_the_replay,
            self.starts_killed_after_the_replay,
            self.starts_killed_after_listening
        )?;
        writeln!(
            f,
            "starts from a checkpoint / position 1   {} / {}",
            self.starts_from_checkpoint, self.starts_from_position_1
        )?;
        writeln!(
            f,
            "longest replay after a checkpoint       {} events",
            self.longest_replay_events
        )?;
        writeln!(
            f,
            "checkpoints ignored at a start          {}",
            self.checkpoints_ignored
        )?;
        writeln!(
            f,
            "segment files at a start, at most       {}",
            self.segments_at_a_start_max
        )?;
        writeln!(
            f,
            "verify + rebuild checks                 {}",
            self.full_checks
        )?;
        write!(
            f,
            "usage codes                             {} ordered, {} filings against them, {} cancelled; {} redemptions of earmarked vouchers refused",
            self.codes_ordered,
            self.filings_against_codes,
            self.codes_cancelled,
            self.earmark_probes
        )
    }
}

/// How a burst ends.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// SIGKILL after the delay.
    Sigkill(Duration),
    /// SIGTERM after the delay, then SIGKILL after the second delay: a kill while the server
    /// finishes its queue and writes its final checkpoint.
    SigtermThenSigkill(Duration, Duration),
    /// The server stops by itself (a failing disk), within the duration.
    ServerStops(Duration),
}

/// What happens to the data folder after a process that wrote it was killed, for instance a
/// power cut of the filesystem it is on (`powerloss.rs`); it draws its choices from the
/// campaign's generator. Without one, the page cache keeps what the process wrote.
pub type AfterKill = Box<dyn FnMut(&mut Rng) + Send>;

pub struct Campaign {
    pub rng: Rng,
    pub data_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub dates: Dates,
    pub model: Model,
    pub audit: LogAudit,
    pub callers: Vec<Caller>,
    pub server: Option<Server>,
    pub starts: u32,
    pub stats: Stats,
    pub startup_estimate: Duration,
    pub rebuild_estimate: Duration,
    /// Companies whose wallets the last burst changed.
    pub touched: BTreeSet<String>,
    /// The checkpoint interval of every start; drawn at each start when `None`.
    pub checkpoint_interval_events: Option<u64>,
    /// Events the last start replayed after its checkpoint.
    pub last_replay_events: Option<u64>,
    /// The checkpoint interval of the server started last.
    pub server_interval_events: u64,
    /// Run after every kill of a process that had the data folder open.
    pub after_kill: Option<AfterKill>,
}

impl Campaign {
    /// Starts a server on `data_dir` (empty or missing) and sets up the budget, the provider
    /// and its modules.
    pub async fn start(data_dir: &Path, logs_dir: &Path, seed: u64) -> Campaign {
        let mut campaign = Campaign {
            rng: Rng(seed),
            data_dir: data_dir.to_path_buf(),
            logs_dir: logs_dir.to_path_buf(),
            dates: Dates::fixed(),
            model: Model::default(),
            audit: LogAudit::new(),
            callers: (0..CALLERS).map(|index| Caller::new(index, seed)).collect(),
            server: None,
            starts: 0,
            stats: Stats::default(),
            startup_estimate: Duration::from_millis(100),
            rebuild_estimate: Duration::from_millis(100),
            touched: BTreeSet::new(),
            checkpoint_interval_events: None,
            last_replay_events: None,
            server_interval_events: 0,
            after_kill: None,
        };
        campaign.start_server(&[]).await;
        campaign.set_up().await;
        campaign
    }

    /// The process that had the data folder open is dead: what happens to the disk now.
    fn after_kill(&mut self) {
        if let Some(after_kill) = &mut self.after_kill {
            after_kill(&mut self.rng);
        }
    }

    pub fn channel(&self) -> Channel {
        self.server
            .as_ref()
            .expect("a running server")
            .channel
            .clone()
    }

    pub fn next_log_path(&mut self) -> PathBuf {
        self.starts += 1;
        self.logs_dir.join(format!("server-{}.log", self.starts))
    }

    /// The settings of a start: a checkpoint interval drawn at random, and `extra`.
    pub fn start_env(&mut self, extra: &[(String, String)]) -> Vec<(String, String)> {
        let interval = match self.checkpoint_interval_events {
            Some(interval) => interval,
            None => *self.rng.pick(&CHECKPOINT_INTERVALS_EVENTS),
        };
        let mut env = vec![(
            "VOUCHER_LEDGER__CHECKPOINT_INTERVAL_EVENTS".to_owned(),
            interval.to_string(),
        )];
        env.extend_from_slice(extra);
        // A later setting of the same variable wins, as it does for the process.
        self.server_interval_events = env
            .iter()
            .rev()
            .find(|(name, _)| name == "VOUCHER_LEDGER__CHECKPOINT_INTERVAL_EVENTS")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(interval);
        env
    }

    pub async fn start_server(&mut self, extra_env: &[(String, String)]) {
        assert!(self.server.is_none(), "a server runs already");
        let env = self.start_env(extra_env);
        let log_path = self.next_log_path();
        let segments = std::fs::read_dir(self.data_dir.join(ledger_store::SEGMENTS_DIR_NAME))
            .map(|entries| entries.count() as u32)
            .unwrap_or(0);
        self.stats.segments_at_a_start_max = self.stats.segments_at_a_start_max.max(segments);
        let server = Launch::spawn(&self.data_dir, &log_path, &env).ready().await;
        self.startup_estimate = server.startup;
        let log = without_ansi(&read_log(&log_path));
        self.last_replay_events = field_number(&log, "tail_events");
        if let Some(events) = self.last_replay_events {
            self.stats.longest_replay_events = self.stats.longest_replay_events.max(events);
        }
        if log.contains("replaying the log after the checkpoint") {
            self.stats.starts_from_checkpoint += 1;
        } else {
            self.stats.starts_from_position_1 += 1;
        }
        self.stats.checkpoints_ignored += log.matches("checkpoint ignored").count() as u32
            + log.matches("checkpoint cannot be decoded").count() as u32;
        self.server = Some(server);
    }

    pub async fn set_up(&mut self) {
        let channel = self.channel();
        let mut administration = AdministrationServiceClient::new(channel.clone());
        let mut placed = Vec::new();
        let request_id = Uuid::new_v4().to_string();
        let response = administration
            .open_budget(with_token(
                api::OpenBudgetRequest {
                    request_id: request_id.clone(),
                    year: self.dates.year,
                    allocated_eur: eur(BUDGET_ALLOCATED_EUR),
                },
                ADMINISTRATION,
            ))
            .await
            .expect("the budget opens");
        placed.push((request_id, response.into_inner().receipt));
        let request_id = Uuid::new_v4().to_string();
        let response = administration
            .approve_provider(with_token(
                api::ApproveProviderRequest {
                    request_id: request_id.clone(),
                    provider_id: PROVIDER_ID.into(),
                    name: "Formations Meuse".into(),
                    approved_from: "2004-01-01".into(),
                    approved_until: String::new(),
                },
                ADMINISTRATION,
            ))
            .await
            .expect("the provider is approved");
        placed.push((request_id, response.into_inner().receipt));
        for module in MODULES {
            let request_id = Uuid::new_v4().to_string();
            let response = administration
                .approve_module(with_token(
                    api::ApproveModuleRequest {
                        request_id: request_id.clone(),
                        module_id: module.into(),
                        provider_id: PROVIDER_ID.into(),
                        title: format!("Digital skills {module}"),
                        hours_max: MODULE_HOURS_MAX,
                        accepted_voucher_types: vec![VoucherType::General as i32],
                        themes: vec![Theme::Digital as i32],
                        approved_from: "2004-01-01".into(),
                        approved_until: String::new(),
                    },
                    ADMINISTRATION,
                ))
                .await
                .expect("the module is approved");
            placed.push((request_id, response.into_inner().receipt));
        }
        for (request_id, receipt) in placed {
            let receipt = receipt.expect("a receipt");
            self.model.accepted.insert(request_id, Placed::of(&receipt));
        }
        self.audit.catch_up(&channel).await;
    }

    /// Runs the callers until the ending; answers their acknowledged writes and the writes left
    /// unanswered, and how the server ended.
    pub async fn burst(
        &mut self,
        ending: Ending,
    ) -> (Vec<(Op, api::Receipt)>, Vec<Op>, ExitStatus) {
        let channel = self.channel();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = std::mem::take(&mut self.callers)
            .into_iter()
            .map(|caller| {
                tokio::spawn(drive(
                    caller,
                    channel.clone(),
                    self.dates.clone(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let mut server = self.server.take().expect("a running server");
        let log_path = server.log_path.clone();
        let status = match ending {
            Ending::Sigkill(delay) => {
                tokio::time::sleep(delay).await;
                self.stats.sigkills_under_load += 1;
                if self.server_interval_events <= 10 {
                    self.stats.sigkills_with_checkpoints_in_most_groups += 1;
                }
                kill_now(server.process()).await
            }
            Ending::SigtermThenSigkill(delay, grace) => {
                tokio::time::sleep(delay).await;
                send_signal(server.process(), "-TERM");
                tokio::time::sleep(grace).await;
                let status = kill_now(server.process()).await;
                if status.success() {
                    self.stats.graceful_stops_finished_before_sigkill += 1;
                } else {
                    self.stats.sigkills_during_graceful_stop += 1;
                }
                status
            }
            Ending::ServerStops(within) => {
                let status = wait_for_exit(server.process(), within).await;
                stop.store(true, Ordering::Relaxed);
                status.unwrap_or_else(|| {
                    panic!(
                        "the server kept running {within:?} into the burst; its stderr:\n{}",
                        log_tail(&log_path)
                    )
                })
            }
        };
        drop(server);
        self.after_kill();
        let mut acknowledged = Vec::new();
        let mut unanswered = Vec::new();
        for task in tasks {
            let burst = tokio::time::timeout(CALL_WAIT * 2, task)
                .await
                .expect("a caller ends once the server is gone")
                .expect("a caller does not panic");
            acknowledged.extend(burst.acknowledged);
            unanswered.extend(burst.unanswered);
            self.callers.push(burst.caller);
        }
        self.callers.sort_by_key(|caller| caller.index);
        self.touched.clear();
        for (op, receipt) in &acknowledged {
            self.model.accept(op, Placed::of(receipt));
            self.touched.insert(op.company.clone());
            self.stats.requests_acknowledged += 1;
            self.stats.events_acknowledged += u64::from(receipt.event_count);
            self.stats.count_codes(&op.effect);
        }
        for op in &unanswered {
            self.touched.insert(op.company.clone());
        }
        (acknowledged, unanswered, status)
    }

    /// Kills an offline rebuild of the folder at a random moment of it.
    pub async fn kill_a_rebuild(&mut self) {
        let delay = self
            .rng
            .duration_between(Duration::ZERO, self.rebuild_estimate.mul_f64(1.2));
        let data = self.data_dir.to_string_lossy().into_owned();
        let log_path = self.next_log_path().with_extension("rebuild.log");
        let log = File::create(&log_path).expect("a log file for the rebuild");
        let mut process = voucher_ledger(&["rebuild", "--data", &data])
            .env("VOUCHER_LEDGER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("voucher-ledger rebuild starts");
        tokio::time::sleep(delay).await;
        let status = kill_now(&mut process).await;
        self.after_kill();
        if status.success() {
            self.stats.rebuilds_finished_before_kill += 1;
        } else if read_log(&log_path).contains("event log opened") {
            self.stats.rebuilds_killed_after_opening_the_log += 1;
        } else {
            self.stats.rebuilds_killed_before_opening_the_log += 1;
        }
    }

    /// Starts a server and kills it at a random moment of its start, most often while it
    /// replays the log, before it listens.
    pub async fn kill_a_start(&mut self) {
        let env = self.start_env(&[]);
        let log_path = self.next_log_path();
        let delay = self
            .rng
            .duration_between(Duration::ZERO, self.startup_estimate.mul_f64(1.2));
        let mut launch = Launch::spawn(&self.data_dir, &log_path, &env);
        tokio::time::sleep(delay).await;
        let listening = launch.listening().is_some();
        kill_now(&mut launch.process).await;
        self.after_kill();
        let log = read_log(&log_path);
        if listening {
            self.stats.starts_killed_after_listening += 1;
        } else if log.contains("ledger state rebuilt from the log") {
            self.stats.starts_killed_after_the_replay += 1;
        } else if log.contains("event log opened") {
            self.stats.starts_killed_during_the_replay += 1;
        } else {
            self.stats.starts_killed_before_opening_the_log += 1;
        }
    }

    /// Writes `count` times, one write after the other, from the first caller.
    pub async fn write_in_turn(&mut self, count: u32) -> Vec<(Op, api::Receipt)> {
        let channel = self.channel();
        let mut acknowledged = Vec::new();
        self.touched.clear();
        for _ in 0..count {
            let op = self.callers[0].next_op(&self.dates);
            let receipt = match send(&channel, &op.write).await {
                Answer::Accepted(receipt) => receipt,
                other => panic!("{op:?} was not accepted: {other:?}"),
            };
            self.callers[0].apply(&op);
            self.model.accept(&op, Placed::of(&receipt));
            self.touched.insert(op.company.clone());
            acknowledged.push((op, receipt));
        }
        acknowledged
    }

    /// After a restart: the log, the acknowledged writes, the unanswered ones, the wallets and
    /// the reports, as the module documentation lists them.
    pub async fn check_after_restart(
        &mut self,
        acknowledged: &[(Op, api::Receipt)],
        unanswered: &[Op],
    ) {
        let channel = self.channel();
        self.audit.catch_up(&channel).await;

        for (op, receipt) in acknowledged {
            self.audit
                .assert_placed(&op.request_id.to_string(), Placed::of(receipt));
        }

        // The wallets hold what the acknowledged writes gave them, and what the unanswered ones
        // that made it into the log did: nothing else.
        let found: Vec<Option<Placed>> = unanswered
            .iter()
            .map(|op| self.audit.requests.get(&op.request_id.to_string()).copied())
            .collect();
        let mut expected: BTreeMap<String, Option<CompanyTotals>> = self
            .touched
            .iter()
            .map(|company| (company.clone(), self.model.companies.get(company).copied()))
            .collect();
        for (op, found) in unanswered.iter().zip(&found) {
            if found.is_some() {
                let totals = expected.entry(op.company.clone()).or_default();
                *totals = Some(totals.unwrap_or_default().with(&op.effect));
            }
        }
        for (company, totals) in &expected {
            if let Some(totals) = totals {
                check_wallet(&get_wallet(&channel, company).await, *totals);
            }
        }

        // A client retries what went unanswered: the retry is a replay exactly when the write
        // made it, and then it answers the positions the log has.
        for (op, found) in unanswered.iter().zip(found) {
            let receipt = match send(&channel, &op.write).await {
                Answer::Accepted(receipt) => receipt,
                other => panic!("the retry of unanswered {op:?} was not accepted: {other:?}"),
            };
            assert_eq!(
                receipt.replayed,
                found.is_some(),
                "retry of {} (in the log: {found:?})",
                op.request_id
            );
            match found {
                Some(placed) => {
                    assert_eq!(Placed::of(&receipt), placed, "retry of {}", op.request_id);
                    self.stats.unanswered_found_in_log += 1;
                }
                None => self.stats.unanswered_not_in_log += 1,
            }
            self.model.accept(op, Placed::of(&receipt));
            self.stats.count_codes(&op.effect);
            let caller = &mut self.callers[op.caller as usize];
            caller.apply(op);
        }

        // Retries of acknowledged writes answer the original receipt: the last of each caller,
        // likeliest to sit in the group the crash interrupted, and a random sample.
        let mut retried: BTreeSet<usize> = BTreeSet::new();
        for caller in 0..CALLERS {
            if let Some(last) = acknowledged.iter().rposition(|(op, _)| op.caller == caller) {
                retried.insert(last);
            }
        }
        for _ in 0..RETRIES_PER_CYCLE_MAX.min(acknowledged.len()) {
            retried.insert(self.rng.between(0, acknowledged.len() as u64 - 1) as usize);
        }
        for index in retried {
            let (op, original) = &acknowledged[index];
            let receipt = match send(&channel, &op.write).await {
                Answer::Accepted(receipt) => receipt,
                other => panic!("the retry of acknowledged {op:?} was not accepted: {other:?}"),
            };
            assert_eq!(
                receipt,
                api::Receipt {
                    replayed: true,
                    ..original.clone()
                },
                "the retry of an acknowledged request answers its original receipt"
            );
            self.stats.retries_replayed += 1;
        }

        let wallets: Vec<String> = self.touched.iter().cloned().collect();
        let reports = reports(&channel, &self.dates, &wallets).await;
        check_reports(&reports, &self.model);
        for wallet in &reports.wallets {
            let totals = self.model.companies.get(&wallet.enterprise_number);
            check_wallet(wallet, totals.copied().unwrap_or_default());
        }
        self.check_earmarks_are_spent_only_by_their_codes(&channel)
            .await;
    }

    /// No voucher is both earmarked and spent elsewhere: for a company of the last burst with
    /// vouchers earmarked, a redemption without a code of one hour more than its free vouchers
    /// is refused `INSUFFICIENT_VOUCHERS`, naming only the free ones as available, and writes
    /// nothing; the restarted server knows the earmarks as the one that wrote them did.
    pub async fn check_earmarks_are_spent_only_by_their_codes(&mut self, channel: &Channel) {
        let Some((company, totals)) = self
            .touched
            .iter()
            .filter_map(|company| Some((company, *self.model.companies.get(company)?)))
            .find(|(_, totals)| totals.reserved() > 0)
        else {
            return;
        };
        let free = totals.balance() - totals.reserved();
        let hours = free + 1;
        self.stats.earmark_probes += 1;
        let request_id = Uuid::new_v4();
        let probe = Write::Redeem(api::RedeemHoursRequest {
            request_id: request_id.to_string(),
            provider_id: PROVIDER_ID.into(),
            module_id: MODULES[0].into(),
            enterprise_number: company.clone(),
            national_number: national_number(
                PROBE_WORKER_BIRTH_YEAR,
                u64::from(self.stats.earmark_probes),
            ),
            trainee_status: TraineeStatus::Employee as i32,
            voucher_type: VoucherType::General as i32,
            hours: hours.to_string(),
            training_date: iso(self.dates.training),
            usage_code: String::new(),
        });
        let head = get_head(channel).await;
        let status = match send(channel, &probe).await {
            Answer::Refused(status) => status,
            other => panic!(
                "a redemption without a code of {hours} hours from {company}, which has {free} \
                 free and {} earmarked vouchers, was not refused: {other:?}",
                totals.reserved()
            ),
        };
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default();
        assert_eq!(
            (status.code(), reason.as_str()),
            (Code::FailedPrecondition, "INSUFFICIENT_VOUCHERS"),
            "earmarked vouchers spent without their code: {status:?}"
        );
        assert!(
            status
                .message()
                .contains(&format!("holds {free} usable vouchers")),
            "only the free vouchers are available: {status:?}"
        );
        assert_eq!(get_head(channel).await, head, "a refusal writes nothing");
    }

    /// Stops the server with SIGTERM, runs `verify` (sound, at the head read here) and
    /// `rebuild` (identical to the checkpoint) on the folder, starts the server again, and
    /// compares the reports before and after.
    pub async fn verify_and_rebuild(&mut self) {
        let channel = self.channel();
        self.audit.catch_up(&channel).await;
        let mut wallets: Vec<String> = self
            .model
            .companies
            .keys()
            .take(WALLETS_COMPARED_MAX)
            .cloned()
            .collect();
        wallets.extend(self.touched.iter().cloned());
        let before = reports(&channel, &self.dates, &wallets).await;
        check_reports(&before, &self.model);
        self.server.take().expect("a running server").stop().await;

        let data = self.data_dir.to_string_lossy().into_owned();
        let head = self.audit.head();
        let (status, stdout, stderr) =
            offline(&["verify", "--data", &data, "--expect-head", &head]);
        assert!(
            status.success() && stdout.contains("sound"),
            "verify after a restart ({status}):\n{stdout}\n{stderr}"
        );
        let rebuild_started = Instant::now();
        let (status, stdout, stderr) = offline(&["rebuild", "--data", &data]);
        self.rebuild_estimate = rebuild_started.elapsed();
        assert!(
            status.success() && stdout.contains("identical to the rebuild"),
            "rebuild after a restart ({status}):\n{stdout}\n{stderr}"
        );

        self.start_server(&[]).await;
        let after = reports(&self.channel(), &self.dates, &wallets).await;
        assert_eq!(
            before, after,
            "the reports before and after a rebuild from position 1"
        );
        self.stats.full_checks += 1;
    }

    /// At the end: every accepted request is in the log where its receipt says and nothing
    /// else is; then a last verify and rebuild.
    pub async fn finish(mut self) -> Stats {
        let channel = self.channel();
        self.audit.catch_up(&channel).await;
        let mut lost = Vec::new();
        for (request_id, placed) in &self.model.accepted {
            match self.audit.requests.get(request_id) {
                Some(found) => assert_eq!(found, placed, "request {request_id}"),
                None => lost.push(request_id.clone()),
            }
        }
        self.stats.events_lost = lost
            .iter()
            .map(|request_id| u64::from(self.model.accepted[request_id].event_count))
            .sum();
        assert!(lost.is_empty(), "acknowledged requests LOST: {lost:?}");
        let unknown: Vec<&String> = self
            .audit
            .requests
            .keys()
            .filter(|request_id| !self.model.accepted.contains_key(*request_id))
            .collect();
        assert!(
            unknown.is_empty(),
            "the log holds requests nobody sent: {unknown:?}"
        );
        let events: u64 = self
            .model
            .accepted
            .values()
            .map(|placed| u64::from(placed.event_count))
            .sum();
        assert_eq!(events, self.audit.position, "events in the log");
        self.verify_and_rebuild().await;
        self.server.take().expect("a running server").stop().await;
        self.stats
    }
}

/// `cycles` cycles of load and crash on a fresh folder; `full_check_every` cycles, a verify and
/// a rebuild. Burst lengths are drawn in `burst`.
pub async fn campaign(cycles: u32, full_check_every: u32, burst: (Duration, Duration)) -> Stats {
    campaign_on(cycles, full_check_every, burst, None, None).await
}

/// [`campaign`] with the data in `data_dir` (by default a fresh folder in a temporary one) and
/// `after_kill` run after every kill.
pub async fn campaign_on(
    cycles: u32,
    full_check_every: u32,
    burst: (Duration, Duration),
    data_dir: Option<&Path>,
    after_kill: Option<AfterKill>,
) -> Stats {
    let seed = seed_from_env();
    println!(
        "crash campaign: {cycles} cycles, seed {seed} (CRASH_SEED={seed} repeats the choices)"
    );
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-crash-")
        .tempdir()
        .expect("a temporary folder");
    let started = Instant::now();
    let data_dir = data_dir.map_or_else(|| home.path().join("data"), Path::to_path_buf);
    let mut campaign = Campaign::start(&data_dir, home.path(), seed).await;
    campaign.after_kill = after_kill;
    for cycle in 1..=cycles {
        let delay = campaign.rng.duration_between(burst.0, burst.1);
        let ending = if cycle % 4 == 3 {
            let grace = campaign
                .rng
                .duration_between(Duration::ZERO, Duration::from_millis(30));
            Ending::SigtermThenSigkill(delay, grace)
        } else {
            Ending::Sigkill(delay)
        };
        let (acknowledged, unanswered, _status) = campaign.burst(ending).await;
        // A few attempts: each kill lands at another moment, and none changes the log.
        match cycle % 4 {
            1 => {
                for _ in 0..KILL_ATTEMPTS {
                    campaign.kill_a_rebuild().await;
                }
            }
            2 => {
                for _ in 0..KILL_ATTEMPTS {
                    campaign.kill_a_start().await;
                }
            }
            _ => {}
        }
        // The server before a cycle that kills starts writes no checkpoint, so that those
        // starts have the whole burst to replay.
        let long_tail = [(
            "VOUCHER_LEDGER__CHECKPOINT_INTERVAL_EVENTS".to_owned(),
            "50000".to_owned(),
        )];
        campaign
            .start_server(if cycle % 4 == 1 { &long_tail } else { &[] })
            .await;
        campaign
            .check_after_restart(&acknowledged, &unanswered)
            .await;
        campaign.stats.cycles += 1;
        if cycle % full_check_every == 0 && cycle != cycles {
            campaign.verify_and_rebuild().await;
        }
        if cycle % 10 == 0 || cycle == cycles {
            println!(
                "cycle {cycle}: {} requests and {} events acknowledged, head {}, {:.0?} elapsed",
                campaign.stats.requests_acknowledged,
                campaign.stats.events_acknowledged,
                campaign.audit.position,
                started.elapsed()
            );
        }
    }
    let stats = campaign.finish().await;
    println!("{stats}\nelapsed {:.1?}", started.elapsed());
    stats
}
