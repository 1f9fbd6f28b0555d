//! The command line of `voucherctl`: the clap definitions, and the mapping of each subcommand to
//! the one protobuf request it sends ([`Cli::plan`]). Nothing here touches the network or
//! prints, so the mapping is tested from a command line alone.
//!
//! Dates, amounts and full-time equivalents are passed to the server as typed: the server is the
//! one place that validates them, and it names the field it refuses. The command line checks
//! only what it must type to build a request (numbers, enum names, UUIDs).

use clap::{Args, Parser, Subcommand, ValueEnum};
use ledger_proto::event::v1 as event;
use ledger_proto::v1 as api;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Endpoint;
use uuid::Uuid;

/// Where `voucher-ledger serve` listens by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

#[derive(Debug, Parser)]
#[command(
    name = "voucherctl",
    version,
    about = "Command-line client of voucher-ledger, the system of record of Wallonia's training vouchers",
    after_help = "Exit status: 0 on success, 1 when the server refuses or fails, 2 for a bad command line, \
                  3 when the server cannot be reached."
)]
pub struct Cli {
    /// URL of the voucher-ledger gRPC server.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VOUCHERCTL_SERVER",
        default_value = DEFAULT_SERVER,
        value_name = "URL",
        value_parser = parse_server
    )]
    pub server: Endpoint,

    /// Bearer token of the caller, sent as `authorization: Bearer <token>` on every call.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VOUCHERCTL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = parse_token
    )]
    pub token: Option<BearerToken>,

    /// CA certificate (PEM) that signed the server's certificate; needed for an https:// server.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VOUCHERCTL_CA",
        value_name = "FILE"
    )]
    pub ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) for mutual TLS; its SAN URI voucherledger:<principal> says who
    /// the caller is. Goes with --key.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VOUCHERCTL_CERT",
        value_name = "FILE"
    )]
    pub cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VOUCHERCTL_KEY",
        value_name = "FILE"
    )]
    pub key: Option<std::path::PathBuf>,

    /// Print one JSON object on stdout instead of a readable summary.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The `authorization` header value built from `--token`, checked to be valid metadata.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    pub fn header_value(&self) -> &MetadataValue<Ascii> {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    // A token is a credential: never in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

fn parse_token(token: &str) -> Result<BearerToken, String> {
    let token = token.trim();
    if token.is_empty() {
        return Err("the token is empty".to_owned());
    }
    MetadataValue::try_from(format!("Bearer {token}"))
        .map(BearerToken)
        .map_err(|_| "the token must be printable ascii without line breaks".to_owned())
}

fn parse_server(url: &str) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|_| format!("{url:?} is not a url such as {DEFAULT_SERVER}"))?;
    match endpoint.uri().scheme_str() {
        // https: TLS is configured from --ca, --cert and --key (see `tls`).
        Some("http" | "https") if endpoint.uri().host().is_some() => Ok(endpoint),
        _ => Err(format!("{url:?} is not a url such as {DEFAULT_SERVER}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Regional budgets of a year (administration).
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// Training-provider approvals (administration).
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Training-module approvals (administration).
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Register an eligible company for one calendar year (operator).
    Register(RegisterArgs),
    /// Issue vouchers into a company's wallet for a payment received (operator).
    Issue(IssueArgs),
    /// Expire every voucher whose validity ended before a date (operator).
    Expire(ExpireArgs),
    /// Record a payment made to a provider (operator).
    Payout(PayoutArgs),
    /// Show a company's wallet: balances, batches and expiries (operator, administration, auditor).
    Wallet(WalletArgs),
    /// Redeem hours of training given to a worker of a company (provider, as itself).
    Redeem(RedeemArgs),
    /// Reverse one of the provider's own redemptions (provider, as itself).
    Reverse(ReverseArgs),
    /// Show a provider's statement: hours redeemed, owed and paid.
    Statement(StatementArgs),
    /// Yearly figures (operator, administration, auditor).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Read the event log in position order, with its chain hashes (auditor).
    Events(EventsArgs),
    /// Follow the event log: the events from a position on, then each new one as it is recorded,
    /// until interrupted (auditor). Resumes by itself when the server says it fell behind.
    Subscribe(SubscribeArgs),
    /// Show the head of the event log: its last position and chain hash.
    Head,
    /// Copy the whole store, consistently, into a new folder on the server's machine (auditor).
    Backup(BackupArgs),
    /// Wait until the server answers the standard gRPC health check with SERVING (exit status
    /// 0), polling until the timeout (then exit status 3). For scripts that start a server.
    Wait(crate::wait::WaitArgs),
    /// Issue vouchers for every item of a CSV or JSON Lines file, 1 000 items per
    /// IssueVouchersBatch call (operator). Columns as the flags of `issue`: enterprise, type,
    /// quantity, paid, payment-date, reference, request-id. One line of report per item; exit
    /// status 1 if any item was refused.
    IssueBatch(crate::batch::BatchFileArgs),
    /// Redeem hours for every item of a CSV or JSON Lines file, 1 000 items per
    /// RedeemHoursBatch call (provider, as itself). Columns as the flags of `redeem`: provider,
    /// module, enterprise, niss, status, type, hours, date, request-id. One line of report per
    /// item (never the NISS); exit status 1 if any item was refused.
    RedeemBatch(crate::batch::BatchFileArgs),
    /// Register a company for every item of a CSV or JSON Lines file, 1 000 items per
    /// RegisterCompaniesBatch call (operator). Columns as the flags of `register`: enterprise,
    /// year, name, legal-form, region, fte, turnover, balance-sheet, not-autonomous,
    /// secondary-months, nace, registered-on, request-id.
    RegisterBatch(crate::batch::BatchFileArgs),
    /// Record a payout for every item of a CSV or JSON Lines file, 1 000 items per
    /// RecordPayoutsBatch call (operator). Columns as the flags of `payout`: provider, amount,
    /// date, reference, request-id.
    PayoutBatch(crate::batch::BatchFileArgs),
    /// Reverse a redemption for every item of a CSV or JSON Lines file, 1 000 items per
    /// ReverseRedemptionsBatch call (provider, as itself). Columns as the flags of `reverse`:
    /// provider, redemption, reason, date, request-id.
    ReverseBatch(crate::batch::BatchFileArgs),
    /// Order a usage code for every item of a CSV or JSON Lines file, 1 000 items per
    /// OrderUsageCodesBatch call (a company for itself, or the operator). Columns as the flags
    /// of `usage-code order`: enterprise, provider, module, type, hours, from, until,
    /// request-id (the order id each code is derived from). The report line of an accepted
    /// item names its code.
    UsageCodeBatch(crate::batch::BatchFileArgs),
    /// Lists of what the ledger holds, page by page (QueryService).
    #[command(subcommand)]
    List(crate::queries::ListCommand),
    /// Usage codes, a company's consent to one training: order, show, cancel, list.
    #[command(subcommand)]
    UsageCode(crate::usage_code::UsageCodeCommand),
    /// Print the completion script of a shell on stdout, such as
    /// `voucherctl completions bash > /etc/bash_completion.d/voucherctl`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Open the regional budget of a year with its allocation.
    Open(BudgetOpenArgs),
    /// Set a new allocation for a year (the new total, not a difference).
    Adjust(BudgetAdjustArgs),
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Approve a training provider from a date, optionally until a date.
    Approve(ProviderApproveArgs),
    /// Withdraw a provider's current approval from a date.
    Withdraw(ProviderWithdrawArgs),
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Approve a training module of a provider: its length, voucher types and themes.
    Approve(ModuleApproveArgs),
    /// Withdraw a module's approval from a date.
    Withdraw(ModuleWithdrawArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The regional budget of a year: allocated, committed, spent, released, available.
    Budget(ReportYearArgs),
    /// The summary of a year: companies, workers, hours, vouchers and the budget.
    Year(ReportYearArgs),
    /// Companies of a year (registered, holding vouchers, benefiting) by size class and sector.
    Companies(ReportYearArgs),
    /// Training hours of a year by voucher type, provider, module theme and company sector.
    Hours(ReportYearArgs),
    /// The balance of every double-entry account; the total is always zero.
    TrialBalance(AsOfArgs),
}

/// A point in the ledger's history for a read; without either flag, now.
#[derive(Clone, Debug, Default, Args)]
pub struct AsOfArgs {
    /// Answer as the ledger stood once the event at this position was recorded.
    #[arg(
        long = "as-of-position",
        value_name = "POSITION",
        conflicts_with_all = ["as_of_date", "as_of_business_date"]
    )]
    pub as_of_position: Option<u64>,
    /// Answer as the ledger stood at the end of this day (UTC, by recorded time).
    #[arg(
        long = "as-of-date",
        value_name = "DATE",
        conflicts_with = "as_of_business_date"
    )]
    pub as_of_date: Option<String>,
    /// Answer with the figures of the events whose business date (training, payment,
    /// payout, expiry date…) is on or before this day, whenever they were recorded.
    #[arg(long = "as-of-business-date", value_name = "DATE")]
    pub as_of_business_date: Option<String>,
}

impl AsOfArgs {
    fn to_proto(&self) -> Option<api::AsOf> {
        let point = match (
            &self.as_of_position,
            &self.as_of_date,
            &self.as_of_business_date,
        ) {
            (Some(position), _, _) => api::as_of::Point::Position(*position),
            (None, Some(date), _) => api::as_of::Point::Date(date.clone()),
            (None, None, Some(date)) => api::as_of::Point::BusinessDate(date.clone()),
            (None, None, None) => return None,
        };
        Some(api::AsOf { point: Some(point) })
    }
}

/// The request id every write carries.
#[derive(Clone, Debug, Args)]
pub struct RequestIdArg {
    /// UUID of this write. Without it a new one is generated and printed; pass it again to retry
    /// safely (the server answers a retry with the original outcome and writes nothing).
    #[arg(long = "request-id", value_name = "UUID")]
    pub request_id: Option<Uuid>,
}

impl RequestIdArg {
    fn resolve(&self) -> RequestId {
        match self.request_id {
            Some(id) => RequestId {
                id,
                generated: false,
            },
            None => RequestId {
                id: Uuid::new_v4(),
                generated: true,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct BudgetOpenArgs {
    /// Calendar year.
    #[arg(long)]
    pub year: i32,
    /// Allocation in euros, such as 7657000.00.
    #[arg(long, alias = "allocated-eur", value_name = "EUR")]
    pub allocated: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct BudgetAdjustArgs {
    /// Calendar year.
    #[arg(long)]
    pub year: i32,
    /// The new allocation in euros (not a difference).
    #[arg(long, alias = "allocated-eur", value_name = "EUR")]
    pub allocated: String,
    /// Why, in a few words; recorded in the event.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ProviderApproveArgs {
    /// SPW approval id, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// Name, as recorded.
    #[arg(long)]
    pub name: String,
    /// First day of the approval (YYYY-MM-DD).
    #[arg(long, alias = "approved-from", value_name = "DATE")]
    pub from: String,
    /// Last day of the approval (YYYY-MM-DD); open-ended without it.
    #[arg(long, alias = "approved-until", value_name = "DATE")]
    pub until: Option<String>,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ProviderWithdrawArgs {
    /// SPW approval id of the provider, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// First day on which the approval is no longer in force (YYYY-MM-DD).
    #[arg(long, alias = "withdrawn-from", value_name = "DATE")]
    pub from: String,
    /// Why, in a few words; recorded in the event.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ModuleApproveArgs {
    /// Module id, such as M-1.
    #[arg(long, alias = "module-id", value_name = "ID")]
    pub module: String,
    /// The provider giving the module, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// Title of the module.
    #[arg(long)]
    pub title: String,
    /// Approved length for one worker, in whole hours.
    #[arg(long, value_name = "HOURS")]
    pub hours_max: u32,
    /// Voucher types the module accepts, comma-separated.
    #[arg(
        long,
        alias = "accepted-voucher-types",
        value_name = "TYPES",
        value_delimiter = ',',
        required = true
    )]
    pub voucher_types: Vec<VoucherTypeArg>,
    /// Themes of the module, comma-separated.
    #[arg(long, value_name = "THEMES", value_delimiter = ',', required = true)]
    pub themes: Vec<ThemeArg>,
    /// First day of the approval (YYYY-MM-DD).
    #[arg(long, alias = "approved-from", value_name = "DATE")]
    pub from: String,
    /// Last day of the approval (YYYY-MM-DD); open-ended without it.
    #[arg(long, alias = "approved-until", value_name = "DATE")]
    pub until: Option<String>,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ModuleWithdrawArgs {
    /// Module id, such as M-1.
    #[arg(long, alias = "module-id", value_name = "ID")]
    pub module: String,
    /// First day on which the approval is no longer in force (YYYY-MM-DD).
    #[arg(long, alias = "withdrawn-from", value_name = "DATE")]
    pub from: String,
    /// Why, in a few words; recorded in the event.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// The calendar year of the registration.
    #[arg(long)]
    pub year: i32,
    /// Name, as recorded.
    #[arg(long)]
    pub name: String,
    /// Legal form of the company.
    #[arg(long, value_enum)]
    pub legal_form: LegalFormArg,
    /// Region of the main seat of activity.
    #[arg(long, value_enum)]
    pub region: RegionArg,
    /// Full-time equivalents, such as 12 or 12.5.
    #[arg(long)]
    pub fte: String,
    /// Turnover in euros.
    #[arg(long, alias = "turnover-eur", value_name = "EUR")]
    pub turnover: String,
    /// Balance-sheet total in euros.
    #[arg(long, alias = "balance-sheet-total-eur", value_name = "EUR")]
    pub balance_sheet: String,
    /// The company is linked to a larger group.
    #[arg(long)]
    pub not_autonomous: bool,
    /// For a secondary-occupation self-employed person: months of activity so far.
    #[arg(
        long,
        alias = "secondary-activity-months",
        value_name = "MONTHS",
        default_value_t = 0
    )]
    pub secondary_months: u32,
    /// NACE-BEL code of the main activity, such as 62.01.
    #[arg(long, alias = "nace-sector", value_name = "CODE")]
    pub nace: String,
    /// Day of the registration (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub registered_on: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// Voucher type.
    #[arg(long = "type", alias = "voucher-type", value_enum, value_name = "TYPE")]
    pub voucher_type: VoucherTypeArg,
    /// Number of vouchers.
    #[arg(long)]
    pub quantity: u32,
    /// Amount paid by the company in euros: quantity times the employer share (150.00 for 10).
    #[arg(long, alias = "paid-amount-eur", value_name = "EUR")]
    pub paid: String,
    /// Day the payment was received (YYYY-MM-DD); its year is the quota and budget year.
    #[arg(long, value_name = "DATE")]
    pub payment_date: String,
    /// Reference of the payment, such as a bank transfer reference.
    #[arg(long, alias = "payment-reference", default_value = "")]
    pub reference: String,
    /// Also the id of the new batch.
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// Vouchers valid until a day before this date expire (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub as_of: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct PayoutArgs {
    /// SPW approval id of the provider, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// Amount paid in euros, such as 90.00.
    #[arg(long, alias = "amount-eur", value_name = "EUR")]
    pub amount: String,
    /// Day of the payment (YYYY-MM-DD).
    #[arg(long, alias = "payout-date", value_name = "DATE")]
    pub date: String,
    /// Reference of the payment, such as a bank transfer reference.
    #[arg(long, alias = "payout-reference", default_value = "")]
    pub reference: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

#[derive(Args)]
pub struct RedeemArgs {
    /// The redeeming provider; must be the caller.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// Module id, such as M-1.
    #[arg(long, alias = "module-id", value_name = "ID")]
    pub module: String,
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// The worker's national register number. Sent to the server, which keeps only a keyed
    /// pseudonym; voucherctl never prints it.
    #[arg(long, alias = "national-number", value_name = "NISS")]
    pub niss: String,
    /// Status of the trainee at the company.
    #[arg(long, alias = "trainee-status", value_enum)]
    pub status: TraineeStatusArg,
    /// Voucher type.
    #[arg(long = "type", alias = "voucher-type", value_enum, value_name = "TYPE")]
    pub voucher_type: VoucherTypeArg,
    /// Whole hours of training, at least 1, at most the module's length.
    #[arg(long)]
    pub hours: u32,
    /// Day of the training (YYYY-MM-DD).
    #[arg(long, alias = "training-date", value_name = "DATE")]
    pub date: String,
    /// The usage code the company gave for this training (required for training from the
    /// policy's `usage_code_required_from` on).
    #[arg(long = "code", alias = "usage-code", value_name = "CODE")]
    pub usage_code: Option<String>,
    /// Also the id of the new redemption, used to reverse it.
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

impl std::fmt::Debug for RedeemArgs {
    // The national register number is personal data: never in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedeemArgs")
            .field("provider", &self.provider)
            .field("module", &self.module)
            .field("enterprise", &self.enterprise)
            .field("niss", &"<redacted>")
            .field("status", &self.status)
            .field("voucher_type", &self.voucher_type)
            .field("hours", &self.hours)
            .field("date", &self.date)
            .field("request_id", &self.request_id)
            .finish()
    }
}

#[derive(Debug, Args)]
pub struct ReverseArgs {
    /// The provider that made the redemption; must be the caller.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// The request id of the redemption to reverse.
    #[arg(long, alias = "redemption-id", value_name = "UUID")]
    pub redemption: Uuid,
    /// Why, in a few words; recorded in the event.
    #[arg(long)]
    pub reason: String,
    /// Day of the reversal (YYYY-MM-DD).
    #[arg(long, alias = "reversed-on", value_name = "DATE")]
    pub date: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    /// SPW approval id of the provider, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

#[derive(Debug, Args)]
pub struct ReportYearArgs {
    /// Calendar year.
    #[arg(long)]
    pub year: i32,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// First position to read.
    #[arg(
        long,
        alias = "from-position",
        value_name = "POSITION",
        default_value_t = 1
    )]
    pub from: u64,
    /// At most this many events (a page of the server is at most 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// First position to send (to resume: the last position received + 1).
    #[arg(
        long,
        alias = "from-position",
        value_name = "POSITION",
        default_value_t = 1
    )]
    pub from: u64,
    /// Only events of streams starting with this prefix, such as company/0403019261 or
    /// provider/ (repeat for several).
    #[arg(long = "stream", value_name = "PREFIX")]
    pub stream_prefixes: Vec<String>,
    /// Only events of this type, such as HoursRedeemed (repeat for several).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_types: Vec<String>,
    /// Stop once the log has been followed up to this position (default: never).
    #[arg(long, value_name = "POSITION")]
    pub until: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// New or empty folder on the server's machine; a relative path is taken from the current
    /// folder, which only makes sense with a server on this machine.
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VoucherTypeArg {
    /// Chèque-formation (CF).
    General,
    /// Chèque-formation langues (CFL).
    Languages,
    /// Chèque Éco-Climat.
    EcoClimate,
}

impl From<VoucherTypeArg> for event::VoucherType {
    fn from(value: VoucherTypeArg) -> Self {
        match value {
            VoucherTypeArg::General => event::VoucherType::General,
            VoucherTypeArg::Languages => event::VoucherType::Languages,
            VoucherTypeArg::EcoClimate => event::VoucherType::EcoClimate,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ThemeArg {
    Ai,
    Digital,
    Green,
    Languages,
    Management,
    Technical,
    Safety,
    Other,
    /// Never approved; accepted here so that the server can name the refusal.
    Behavioural,
    /// Never approved; accepted here so that the server can name the refusal.
    WellBeing,
    /// Never approved; accepted here so that the server can name the refusal.
    PersonalDevelopment,
}

impl From<ThemeArg> for event::Theme {
    fn from(value: ThemeArg) -> Self {
        match value {
            ThemeArg::Ai => event::Theme::Ai,
            ThemeArg::Digital => event::Theme::Digital,
            ThemeArg::Green => event::Theme::Green,
            ThemeArg::Languages => event::Theme::Languages,
            ThemeArg::Management => event::Theme::Management,
            ThemeArg::Technical => event::Theme::Technical,
            ThemeArg::Safety => event::Theme::Safety,
            ThemeArg::Other => event::Theme::Other,
            ThemeArg::Behavioural => event::Theme::Behavioural,
            ThemeArg::WellBeing => event::Theme::WellBeing,
            ThemeArg::PersonalDevelopment => event::Theme::PersonalDevelopment,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LegalFormArg {
    CommercialCompany,
    SelfEmployedMain,
    SelfEmployedSecondary,
    /// ASBL: never eligible.
    NonProfit,
    /// Never eligible.
    PublicBody,
}

impl From<LegalFormArg> for event::LegalForm {
    fn from(value: LegalFormArg) -> Self {
        match value {
            LegalFormArg::CommercialCompany => event::LegalForm::CommercialCompany,
            LegalFormArg::SelfEmployedMain => event::LegalForm::SelfEmployedMain,
            LegalFormArg::SelfEmployedSecondary => event::LegalForm::SelfEmployedSecondary,
            LegalFormArg::NonProfit => event::LegalForm::NonProfit,
            LegalFormArg::PublicBody => event::LegalForm::PublicBody,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RegionArg {
    WalloniaFrenchSpeaking,
    WalloniaGermanSpeaking,
    Brussels,
    Flanders,
}

impl From<RegionArg> for event::Region {
    fn from(value: RegionArg) -> Self {
        match value {
            RegionArg::WalloniaFrenchSpeaking => event::Region::WalloniaFrenchSpeaking,
            RegionArg::WalloniaGermanSpeaking => event::Region::WalloniaGermanSpeaking,
            RegionArg::Brussels => event::Region::Brussels,
            RegionArg::Flanders => event::Region::Flanders,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraineeStatusArg {
    Employee,
    TemporaryWorker,
    SelfEmployedManagerOrPartner,
    HelpingSpouse,
    SecondarySelfEmployed,
    /// Never eligible.
    PfiTrainee,
    /// Never eligible.
    Apprentice,
    /// Never eligible.
    Student,
    /// Never eligible.
    Intern,
}

impl From<TraineeStatusArg> for event::TraineeStatus {
    fn from(value: TraineeStatusArg) -> Self {
        match value {
            TraineeStatusArg::Employee => event::TraineeStatus::Employee,
            TraineeStatusArg::TemporaryWorker => event::TraineeStatus::TemporaryWorker,
            TraineeStatusArg::SelfEmployedManagerOrPartner => {
                event::TraineeStatus::SelfEmployedManagerOrPartner
            }
            TraineeStatusArg::HelpingSpouse => event::TraineeStatus::HelpingSpouse,
            TraineeStatusArg::SecondarySelfEmployed => event::TraineeStatus::SecondarySelfEmployed,
            TraineeStatusArg::PfiTrainee => event::TraineeStatus::PfiTrainee,
            TraineeStatusArg::Apprentice => event::TraineeStatus::Apprentice,
            TraineeStatusArg::Student => event::TraineeStatus::Student,
            TraineeStatusArg::Intern => event::TraineeStatus::Intern,
        }
    }
}

/// The request id of a write, and whether voucherctl made it up (then it is printed, so that a
/// retry can reuse it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    pub id: Uuid,
    pub generated: bool,
}

/// One gRPC call, with its request built.
pub enum Call {
    OpenBudget(api::OpenBudgetRequest),
    AdjustBudget(api::AdjustBudgetRequest),
    ApproveProvider(api::ApproveProviderRequest),
    WithdrawProvider(api::WithdrawProviderRequest),
    ApproveModule(api::ApproveModuleRequest),
    WithdrawModule(api::WithdrawModuleRequest),
    RegisterCompany(api::RegisterCompanyRequest),
    IssueVouchers(api::IssueVouchersRequest),
    ExpireVouchers(api::ExpireVouchersRequest),
    RecordPayout(api::RecordPayoutRequest),
    GetWallet(api::GetWalletRequest),
    RedeemHours(api::RedeemHoursRequest),
    ReverseRedemption(api::ReverseRedemptionRequest),
    GetStatement(api::GetStatementRequest),
    GetBudget(api::GetBudgetRequest),
    GetYearSummary(api::GetYearSummaryRequest),
    GetCompanies(api::GetCompaniesRequest),
    GetTrainingHours(api::GetTrainingHoursRequest),
    GetTrialBalance(api::GetTrialBalanceRequest),
    ReadEvents(api::ReadEventsRequest),
    Subscribe {
        request: api::SubscribeRequest,
        until: Option<u64>,
    },
    GetHead(api::GetHeadRequest),
    Backup(api::BackupRequest),
    /// A query of `QueryService`, and whether to read every page.
    List {
        call: crate::queries::ListCall,
        all: bool,
    },
    OrderUsageCode(api::OrderUsageCodeRequest),
    CancelUsageCode(api::CancelUsageCodeRequest),
    GetUsageCode(api::GetUsageCodeRequest),
    ListUsageCodes(api::ListUsageCodesRequest),
}

impl Call {
    /// The gRPC method name, as in the proto.
    pub fn rpc(&self) -> &'static str {
        match self {
            Call::OpenBudget(_) => "OpenBudget",
            Call::AdjustBudget(_) => "AdjustBudget",
            Call::ApproveProvider(_) => "ApproveProvider",
            Call::WithdrawProvider(_) => "WithdrawProvider",
            Call::ApproveModule(_) => "ApproveModule",
            Call::WithdrawModule(_) => "WithdrawModule",
            Call::RegisterCompany(_) => "RegisterCompany",
            Call::IssueVouchers(_) => "IssueVouchers",
            Call::ExpireVouchers(_) => "ExpireVouchers",
            Call::RecordPayout(_) => "RecordPayout",
            Call::GetWallet(_) => "GetWallet",
            Call::RedeemHours(_) => "RedeemHours",
            Call::ReverseRedemption(_) => "ReverseRedemption",
            Call::GetStatement(_) => "GetStatement",
            Call::GetBudget(_) => "GetBudget",
            Call::GetYearSummary(_) => "GetYearSummary",
            Call::GetCompanies(_) => "GetCompanies",
            Call::GetTrainingHours(_) => "GetTrainingHours",
            Call::GetTrialBalance(_) => "GetTrialBalance",
            Call::ReadEvents(_) => "ReadEvents",
            Call::Subscribe { .. } => "Subscribe",
            Call::GetHead(_) => "GetHead",
            Call::Backup(_) => "Backup",
            Call::List { call, .. } => call.rpc(),
            Call::OrderUsageCode(_) => "OrderUsageCode",
            Call::CancelUsageCode(_) => "CancelUsageCode",
            Call::GetUsageCode(_) => "GetUsageCode",
            Call::ListUsageCodes(_) => "ListUsageCodes",
        }
    }
}

impl std::fmt::Debug for Call {
    // Only the method: a redemption request holds a national register number, which must never
    // reach a debug print or a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call({})", self.rpc())
    }
}

/// What a command line asks for: the call, and the request id when it is a write.
#[derive(Debug)]
pub struct Plan {
    pub call: Call,
    pub request_id: Option<RequestId>,
}

impl Cli {
    /// The call this command line makes, `None` for the commands that are not one call
    /// (`wait`, the batch files, `completions`). A write without `--request-id` gets a new
    /// UUID v4.
    pub fn plan(&self) -> Option<Plan> {
        self.command.plan()
    }
}

impl Command {
    fn plan(&self) -> Option<Plan> {
        let plan = match self {
            Command::Wait(_)
            | Command::IssueBatch(_)
            | Command::RedeemBatch(_)
            | Command::RegisterBatch(_)
            | Command::PayoutBatch(_)
            | Command::ReverseBatch(_)
            | Command::UsageCodeBatch(_)
            | Command::Completions(_) => return None,
            Command::Budget(command) => command.plan(),
            Command::Provider(command) => command.plan(),
            Command::Module(command) => command.plan(),
            Command::Register(args) => write(&args.request_id, |request_id| {
                Call::RegisterCompany(api::RegisterCompanyRequest {
                    request_id,
                    enterprise_number: args.enterprise.clone(),
                    year: args.year,
                    name: args.name.clone(),
                    legal_form: event::LegalForm::from(args.legal_form) as i32,
                    region: event::Region::from(args.region) as i32,
                    fte: args.fte.clone(),
                    turnover_eur: args.turnover.clone(),
                    balance_sheet_total_eur: args.balance_sheet.clone(),
                    autonomous: !args.not_autonomous,
                    secondary_activity_months: args.secondary_months,
                    nace_sector: args.nace.clone(),
                    registered_on: args.registered_on.clone(),
                })
            }),
            Command::Issue(args) => write(&args.request_id, |request_id| {
                Call::IssueVouchers(api::IssueVouchersRequest {
                    request_id,
                    enterprise_number: args.enterprise.clone(),
                    voucher_type: event::VoucherType::from(args.voucher_type) as i32,
                    quantity: args.quantity,
                    paid_amount_eur: args.paid.clone(),
                    payment_date: args.payment_date.clone(),
                    payment_reference: args.reference.clone(),
                })
            }),
            Command::Expire(args) => write(&args.request_id, |request_id| {
                Call::ExpireVouchers(api::ExpireVouchersRequest {
                    request_id,
                    as_of: args.as_of.clone(),
                })
            }),
            Command::Payout(args) => write(&args.request_id, |request_id| {
                Call::RecordPayout(api::RecordPayoutRequest {
                    request_id,
                    provider_id: args.provider.clone(),
                    amount_eur: args.amount.clone(),
                    payout_date: args.date.clone(),
                    payout_reference: args.reference.clone(),
                })
            }),
            Command::Wallet(args) => read(Call::GetWallet(api::GetWalletRequest {
                enterprise_number: args.enterprise.clone(),
                as_of: args.as_of.to_proto(),
            })),
            Command::Redeem(args) => write(&args.request_id, |request_id| {
                Call::RedeemHours(api::RedeemHoursRequest {
                    request_id,
                    provider_id: args.provider.clone(),
                    module_id: args.module.clone(),
                    enterprise_number: args.enterprise.clone(),
                    national_number: args.niss.clone(),
                    trainee_status: event::TraineeStatus::from(args.status) as i32,
                    voucher_type: event::VoucherType::from(args.voucher_type) as i32,
                    hours: args.hours.to_string(),
                    training_date: args.date.clone(),
                    usage_code: args.usage_code.clone().unwrap_or_default(),
                })
            }),
            Command::UsageCode(command) => usage_code_plan(command),
            Command::Reverse(args) => write(&args.request_id, |request_id| {
                Call::ReverseRedemption(api::ReverseRedemptionRequest {
                    request_id,
                    provider_id: args.provider.clone(),
                    redemption_id: args.redemption.to_string(),
                    reason: args.reason.clone(),
                    reversed_on: args.date.clone(),
                })
            }),
            Command::Statement(args) => read(Call::GetStatement(api::GetStatementRequest {
                provider_id: args.provider.clone(),
                as_of: args.as_of.to_proto(),
            })),
            Command::Report(command) => command.plan(),
            Command::Events(args) => read(Call::ReadEvents(api::ReadEventsRequest {
                from_position: args.from,
                limit: args.limit,
            })),
            Command::Subscribe(args) => read(Call::Subscribe {
                request: api::SubscribeRequest {
                    from_position: args.from,
                    filter: (!args.stream_prefixes.is_empty() || !args.event_types.is_empty())
                        .then(|| api::SubscribeFilter {
                            stream_prefixes: args.stream_prefixes.clone(),
                            event_types: args.event_types.clone(),
                        }),
                },
                until: args.until,
            }),
            Command::Head => read(Call::GetHead(api::GetHeadRequest {})),
            Command::List(command) => {
                let (call, all) = crate::queries::plan(command);
                read(Call::List { call, all })
            }
            Command::Backup(args) => {
                let dir = if args.dir.is_absolute() {
                    args.dir.clone()
                } else {
                    // The server refuses a relative path; for a server on this machine, the
                    // folder the user means is relative to here.
                    std::env::current_dir()
                        .map(|here| here.join(&args.dir))
                        .unwrap_or_else(|_| args.dir.clone())
                };
                read(Call::Backup(api::BackupRequest {
                    target_dir: dir.display().to_string(),
                }))
            }
        };
        Some(plan)
    }
}

impl BudgetCommand {
    fn plan(&self) -> Plan {
        match self {
            BudgetCommand::Open(args) => write(&args.request_id, |request_id| {
                Call::OpenBudget(api::OpenBudgetRequest {
                    request_id,
                    year: args.year,
                    allocated_eur: args.allocated.clone(),
                })
            }),
            BudgetCommand::Adjust(args) => write(&args.request_id, |request_id| {
                Call::AdjustBudget(api::AdjustBudgetRequest {
                    request_id,
                    year: args.year,
                    allocated_eur: args.allocated.clone(),
                    reason: args.reason.clone(),
                })
            }),
        }
    }
}

impl ProviderCommand {
    fn plan(&self) -> Plan {
        match self {
            ProviderCommand::Approve(args) => write(&args.request_id, |request_id| {
                Call::ApproveProvider(api::ApproveProviderRequest {
                    request_id,
                    provider_id: args.provider.clone(),
                    name: args.name.clone(),
                    approved_from: args.from.clone(),
                    approved_until: args.until.clone().unwrap_or_default(),
                })
            }),
            ProviderCommand::Withdraw(args) => write(&args.request_id, |request_id| {
                Call::WithdrawProvider(api::WithdrawProviderRequest {
                    request_id,
                    provider_id: args.provider.clone(),
                    withdrawn_from: args.from.clone(),
                    reason: args.reason.clone(),
                })
            }),
        }
    }
}

impl ModuleCommand {
    fn plan(&self) -> Plan {
        match self {
            ModuleCommand::Approve(args) => write(&args.request_id, |request_id| {
                Call::ApproveModule(api::ApproveModuleRequest {
                    request_id,
                    module_id: args.module.clone(),
                    provider_id: args.provider.clone(),
                    title: args.title.clone(),
                    hours_max: args.hours_max,
                    accepted_voucher_types: args
                        .voucher_types
                        .iter()
                        .map(|value| event::VoucherType::from(*value) as i32)
                        .collect(),
                    themes: args
                        .themes
                        .iter()
                        .map(|value| event::Theme::from(*value) as i32)
                        .collect(),
                    approved_from: args.from.clone(),
                    approved_until: args.until.clone().unwrap_or_default(),
                })
            }),
            ModuleCommand::Withdraw(args) => write(&args.request_id, |request_id| {
                Call::WithdrawModule(api::WithdrawModuleRequest {
                    request_id,
                    module_id: args.module.clone(),
                    withdrawn_from: args.from.clone(),
                    reason: args.reason.clone(),
                })
            }),
        }
    }
}

impl ReportCommand {
    fn plan(&self) -> Plan {
        match self {
            ReportCommand::Budget(args) => read(Call::GetBudget(api::GetBudgetRequest {
                year: args.year,
                as_of: args.as_of.to_proto(),
            })),
            ReportCommand::Year(args) => read(Call::GetYearSummary(api::GetYearSummaryRequest {
                year: args.year,
                as_of: args.as_of.to_proto(),
            })),
            ReportCommand::Companies(args) => read(Call::GetCompanies(api::GetCompaniesRequest {
                year: args.year,
                as_of: args.as_of.to_proto(),
            })),
            ReportCommand::Hours(args) => {
                read(Call::GetTrainingHours(api::GetTrainingHoursRequest {
                    year: args.year,
                    as_of: args.as_of.to_proto(),
                }))
            }
            ReportCommand::TrialBalance(args) => {
                read(Call::GetTrialBalance(api::GetTrialBalanceRequest {
                    as_of: args.to_proto(),
                }))
            }
        }
    }
}

/// The call of a `usage-code` command (its arguments live in `usage_code.rs`).
fn usage_code_plan(command: &crate::usage_code::UsageCodeCommand) -> Plan {
    use crate::usage_code::UsageCodeCommand;
    match command {
        UsageCodeCommand::Order(args) => write(&args.request_id, |request_id| {
            Call::OrderUsageCode(api::OrderUsageCodeRequest {
                request_id,
                enterprise_number: args.enterprise.clone(),
                provider_id: args.provider.clone(),
                module_id: args.module.clone().unwrap_or_default(),
                voucher_type: event::VoucherType::from(args.voucher_type) as i32,
                hours: args.hours.to_string(),
                period_from: args.from.clone(),
                period_until: args.until.clone(),
            })
        }),
        UsageCodeCommand::Cancel(args) => write(&args.request_id, |request_id| {
            Call::CancelUsageCode(api::CancelUsageCodeRequest {
                request_id,
                usage_code: args.code.clone(),
                enterprise_number: args.enterprise.clone(),
                reason: args.reason.clone(),
            })
        }),
        UsageCodeCommand::Show(args) => read(Call::GetUsageCode(api::GetUsageCodeRequest {
            usage_code: args.code.clone(),
            as_of: args.as_of.to_proto(),
        })),
        UsageCodeCommand::List(args) => read(Call::ListUsageCodes(api::ListUsageCodesRequest {
            enterprise_number: args.enterprise.clone(),
            status: args
                .status
                .map_or(0, |status| api::UsageCodeStatus::from(status) as i32),
            as_of: args.as_of.to_proto(),
        })),
    }
}

fn write(request_id: &RequestIdArg, build: impl FnOnce(String) -> Call) -> Plan {
    let request_id = request_id.resolve();
    Plan {
        call: build(request_id.id.to_string()),
        request_id: Some(request_id),
    }
}

fn read(call: Call) -> Plan {
    Plan {
        call,
        request_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST_ID: &str = "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30";

    fn plan(arguments: &[&str]) -> Plan {
        let mut command_line = vec!["voucherctl"];
        command_line.extend_from_slice(arguments);
        match Cli::try_parse_from(command_line) {
            Ok(cli) => cli.plan().expect("a command that is one call"),
            Err(error) => panic!("command line refused: {error}"),
        }
    }

    fn usage_error(arguments: &[&str]) -> clap::Error {
        let mut command_line = vec!["voucherctl"];
        command_line.extend_from_slice(arguments);
        match Cli::try_parse_from(command_line) {
            Ok(cli) => panic!("command line accepted: {:?}", cli.command),
            Err(error) => error,
        }
    }

    fn given_request_id() -> Option<RequestId> {
        Some(RequestId {
            id: Uuid::parse_str(REQUEST_ID).expect("test uuid"),
            generated: false,
        })
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn budget_open_maps_year_and_allocation() {
        let plan = plan(&[
            "budget",
            "open",
            "--year",
            "2025",
            "--allocated",
            "7657000.00",
            "--request-id",
            REQUEST_ID,
        ]);
        assert_eq!(plan.request_id, given_request_id());
        let Call::OpenBudget(request) = plan.call else {
            panic!("not OpenBudget: {:?}", plan.call)
        };
        assert_eq!(
            request,
            api::OpenBudgetRequest {
                request_id: REQUEST_ID.to_owned(),
                year: 2025,
                allocated_eur: "7657000.00".to_owned(),
            }
        );
    }

    #[test]
    fn budget_adjust_maps_reason() {
        let plan = plan(&[
            "budget",
            "adjust",
            "--year",
            "2025",
            "--allocated",
            "8000000.00",
            "--reason",
            "mid-year top-up",
        ]);
        let Call::AdjustBudget(request) = plan.call else {
            panic!("not AdjustBudget: {:?}", plan.call)
        };
        assert_eq!(request.allocated_eur, "8000000.00");
        assert_eq!(request.reason, "mid-year top-up");
    }

    #[test]
    fn a_write_without_request_id_gets_a_new_v4_uuid() {
        let plan = plan(&["expire", "--as-of", "2026-03-01"]);
        let request_id = plan.request_id.expect("a write has a request id");
        assert!(request_id.generated);
        assert_eq!(request_id.id.get_version_num(), 4);
        let Call::ExpireVouchers(request) = plan.call else {
            panic!("not ExpireVouchers: {:?}", plan.call)
        };
        assert_eq!(request.request_id, request_id.id.to_string());
        assert_eq!(request.as_of, "2026-03-01");
    }

    #[test]
    fn a_read_has_no_request_id() {
        let plan = plan(&["head"]);
        assert_eq!(plan.request_id, None);
        assert!(matches!(plan.call, Call::GetHead(_)));
    }

    #[test]
    fn provider_approve_until_is_empty_when_open_ended() {
        let plan = plan(&[
            "provider",
            "approve",
            "--provider",
            "AG-0012",
            "--name",
            "Formations Meuse",
            "--from",
            "2025-01-01",
        ]);
        let Call::ApproveProvider(request) = plan.call else {
            panic!("not ApproveProvider: {:?}", plan.call)
        };
        assert_eq!(request.provider_id, "AG-0012");
        assert_eq!(request.name, "Formations Meuse");
        assert_eq!(request.approved_from, "2025-01-01");
        assert_eq!(request.approved_until, "");

        let plan = plan_with_until();
        let Call::ApproveProvider(request) = plan.call else {
            panic!("not ApproveProvider: {:?}", plan.call)
        };
        assert_eq!(request.approved_until, "2027-12-31");
    }

    fn plan_with_until() -> Plan {
        plan(&[
            "provider",
            "approve",
            "--provider-id",
            "AG-0012",
            "--name",
            "Formations Meuse",
            "--approved-from",
            "2025-01-01",
            "--approved-until",
            "2027-12-31",
        ])
    }

    #[test]
    fn provider_and_module_withdraw_map_dates_and_reasons() {
        let plan_provider = plan(&[
            "provider",
            "withdraw",
            "--provider",
            "AG-0012",
            "--from",
            "2025-09-01",
            "--reason",
            "approval lapsed",
        ]);
        let Call::WithdrawProvider(request) = plan_provider.call else {
            panic!("not WithdrawProvider: {:?}", plan_provider.call)
        };
        assert_eq!(request.withdrawn_from, "2025-09-01");
        assert_eq!(request.reason, "approval lapsed");

        let plan_module = plan(&[
            "module",
            "withdraw",
            "--module",
            "M-1",
            "--from",
            "2025-09-01",
            "--reason",
            "content outdated",
        ]);
        let Call::WithdrawModule(request) = plan_module.call else {
            panic!("not WithdrawModule: {:?}", plan_module.call)
        };
        assert_eq!(request.module_id, "M-1");
        assert_eq!(request.withdrawn_from, "2025-09-01");
        assert_eq!(request.reason, "content outdated");
    }

    #[test]
    fn module_approve_maps_comma_separated_enums() {
        let plan = plan(&[
            "module",
            "approve",
            "--module",
            "M-1",
            "--provider",
            "AG-0012",
            "--title",
            "AI for small businesses",
            "--hours-max",
            "40",
            "--voucher-types",
            "general,languages,eco-climate",
            "--themes",
            "ai,digital,well-being",
            "--from",
            "2025-01-01",
        ]);
        let Call::ApproveModule(request) = plan.call else {
            panic!("not ApproveModule: {:?}", plan.call)
        };
        assert_eq!(request.hours_max, 40);
        assert_eq!(
            request.accepted_voucher_types().collect::<Vec<_>>(),
            [
                event::VoucherType::General,
                event::VoucherType::Languages,
                event::VoucherType::EcoClimate
            ]
        );
        assert_eq!(
            request.themes().collect::<Vec<_>>(),
            [
                event::Theme::Ai,
                event::Theme::Digital,
                event::Theme::WellBeing
            ]
        );
        assert_eq!(request.approved_until, "");
    }

    #[test]
    fn module_approve_needs_voucher_types_and_themes() {
        let error = usage_error(&[
            "module",
            "approve",
            "--module",
            "M-1",
            "--provider",
            "AG-0012",
            "--title",
            "AI",
            "--hours-max",
            "40",
            "--from",
            "2025-01-01",
        ]);
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn register_maps_every_field() {
        let plan = plan(&[
            "register",
            "--enterprise",
            "0403.019.261",
            "--year",
            "2025",
            "--name",
            "Meuse Numérique SRL",
            "--legal-form",
            "commercial-company",
            "--region",
            "wallonia-french-speaking",
            "--fte",
            "12",
            "--turnover",
            "1000000",
            "--balance-sheet",
            "500000",
            "--nace",
            "62.01",
            "--registered-on",
            "2025-01-05",
            "--request-id",
            REQUEST_ID,
        ]);
        let Call::RegisterCompany(request) = plan.call else {
            panic!("not RegisterCompany: {:?}", plan.call)
        };
        assert_eq!(
            request,
            api::RegisterCompanyRequest {
                request_id: REQUEST_ID.to_owned(),
                enterprise_number: "0403.019.261".to_owned(),
                year: 2025,
                name: "Meuse Numérique SRL".to_owned(),
                legal_form: event::LegalForm::CommercialCompany as i32,
                region: event::Region::WalloniaFrenchSpeaking as i32,
                fte: "12".to_owned(),
                turnover_eur: "1000000".to_owned(),
                balance_sheet_total_eur: "500000".to_owned(),
                autonomous: true,
                secondary_activity_months: 0,
                nace_sector: "62.01".to_owned(),
                registered_on: "2025-01-05".to_owned(),
            }
        );
    }

    #[test]
    fn register_not_autonomous_and_secondary_months() {
        let plan = plan(&[
            "register",
            "--enterprise",
            "0403019261",
            "--year",
            "2025",
            "--name",
            "Jean Dupont",
            "--legal-form",
            "self-employed-secondary",
            "--region",
            "wallonia-german-speaking",
            "--fte",
            "0",
            "--turnover",
            "20000",
            "--balance-sheet",
            "5000",
            "--not-autonomous",
            "--secondary-months",
            "7",
            "--nace",
            "85.59",
            "--registered-on",
            "2025-02-01",
        ]);
        let Call::RegisterCompany(request) = plan.call else {
            panic!("not RegisterCompany: {:?}", plan.call)
        };
        assert!(!request.autonomous);
        assert_eq!(request.secondary_activity_months, 7);
        assert_eq!(
            request.legal_form(),
            event::LegalForm::SelfEmployedSecondary
        );
        assert_eq!(request.region(), event::Region::WalloniaGermanSpeaking);
    }

    #[test]
    fn issue_maps_type_quantity_and_payment() {
        let plan = plan(&[
            "issue",
            "--enterprise",
            "0403.019.261",
            "--type",
            "general",
            "--quantity",
            "10",
            "--paid",
            "150.00",
            "--payment-date",
            "2025-03-10",
            "--reference",
            "VIR-2025-0042",
            "--request-id",
            REQUEST_ID,
        ]);
        let Call::IssueVouchers(request) = plan.call else {
            panic!("not IssueVouchers: {:?}", plan.call)
        };
        assert_eq!(
            request,
            api::IssueVouchersRequest {
                request_id: REQUEST_ID.to_owned(),
                enterprise_number: "0403.019.261".to_owned(),
                voucher_type: event::VoucherType::General as i32,
                quantity: 10,
                paid_amount_eur: "150.00".to_owned(),
                payment_date: "2025-03-10".to_owned(),
                payment_reference: "VIR-2025-0042".to_owned(),
            }
        );
    }

    #[test]
    fn payout_reference_is_optional() {
        let plan = plan(&[
            "payout",
            "--provider",
            "AG-0012",
            "--amount",
            "90.00",
            "--date",
            "2025-07-01",
        ]);
        let Call::RecordPayout(request) = plan.call else {
            panic!("not RecordPayout: {:?}", plan.call)
        };
        assert_eq!(request.provider_id, "AG-0012");
        assert_eq!(request.amount_eur, "90.00");
        assert_eq!(request.payout_date, "2025-07-01");
        assert_eq!(request.payout_reference, "");
    }

    #[test]
    fn redeem_maps_hours_to_a_decimal_string_and_the_niss_verbatim() {
        let plan = plan(&[
            "redeem",
            "--provider",
            "AG-0012",
            "--module",
            "M-1",
            "--enterprise",
            "0403.019.261",
            "--niss",
            "85.07.30-033.28",
            "--status",
            "self-employed-manager-or-partner",
            "--type",
            "languages",
            "--hours",
            "3",
            "--date",
            "2025-06-01",
            "--request-id",
            REQUEST_ID,
        ]);
        let Call::RedeemHours(request) = plan.call else {
            panic!("not RedeemHours: {:?}", plan.call)
        };
        assert_eq!(request.request_id, REQUEST_ID);
        assert_eq!(request.provider_id, "AG-0012");
        assert_eq!(request.module_id, "M-1");
        assert_eq!(request.enterprise_number, "0403.019.261");
        assert_eq!(request.national_number, "85.07.30-033.28");
        assert_eq!(
            request.trainee_status(),
            event::TraineeStatus::SelfEmployedManagerOrPartner
        );
        assert_eq!(request.voucher_type(), event::VoucherType::Languages);
        assert_eq!(request.hours, "3");
        assert_eq!(request.training_date, "2025-06-01");
    }

    #[test]
    fn debug_prints_never_show_the_niss() {
        let cli = Cli::try_parse_from([
            "voucherctl",
            "redeem",
            "--provider",
            "AG-0012",
            "--module",
            "M-1",
            "--enterprise",
            "0403019261",
            "--niss",
            "85073003328",
            "--status",
            "employee",
            "--type",
            "general",
            "--hours",
            "3",
            "--date",
            "2025-06-01",
        ])
        .expect("valid command line");
        let plan = cli.plan().expect("one call");
        for printed in [format!("{cli:?}"), format!("{plan:?}")] {
            assert!(!printed.contains("85073003328"), "{printed}");
        }
    }

    #[test]
    fn reverse_takes_the_redemption_uuid() {
        let plan = plan(&[
            "reverse",
            "--provider",
            "AG-0012",
            "--redemption",
            REQUEST_ID,
            "--reason",
            "training cancelled",
            "--date",
            "2025-06-20",
        ]);
        let Call::ReverseRedemption(request) = plan.call else {
            panic!("not ReverseRedemption: {:?}", plan.call)
        };
        assert_eq!(request.redemption_id, REQUEST_ID);
        assert_eq!(request.reason, "training cancelled");
        assert_eq!(request.reversed_on, "2025-06-20");
        assert_ne!(request.request_id, REQUEST_ID);
    }

    #[test]
    fn reads_map_their_keys() {
        let Call::GetWallet(request) = plan(&["wallet", "--enterprise", "0403019261"]).call else {
            panic!("not GetWallet")
        };
        assert_eq!(request.enterprise_number, "0403019261");
        let Call::GetStatement(request) = plan(&["statement", "--provider", "AG-0012"]).call else {
            panic!("not GetStatement")
        };
        assert_eq!(request.provider_id, "AG-0012");
        let Call::GetCompanies(request) = plan(&[
            "report",
            "companies",
            "--year",
            "2024",
            "--as-of-position",
            "42",
        ])
        .call
        else {
            panic!("report companies calls GetCompanies");
        };
        assert_eq!(request.year, 2024);
        assert_eq!(
            request.as_of.and_then(|as_of| as_of.point),
            Some(api::as_of::Point::Position(42))
        );
        let Call::GetTrialBalance(request) =
            plan(&["report", "trial-balance", "--as-of-date", "2025-06-30"]).call
        else {
            panic!("report trial-balance calls GetTrialBalance");
        };
        assert_eq!(
            request.as_of.and_then(|as_of| as_of.point),
            Some(api::as_of::Point::Date("2025-06-30".into()))
        );
        let Call::GetTrainingHours(request) = plan(&["report", "hours", "--year", "2024"]).call
        else {
            panic!("report hours calls GetTrainingHours");
        };
        assert_eq!(request.as_of, None, "without a flag a report is about now");
        let Call::GetBudget(request) = plan(&["report", "budget", "--year", "2025"]).call else {
            panic!("not GetBudget")
        };
        assert_eq!(request.year, 2025);
        let Call::GetYearSummary(request) = plan(&["report", "year", "--year", "2024"]).call else {
            panic!("not GetYearSummary")
        };
        assert_eq!(request.year, 2024);
    }

    #[test]
    fn as_of_business_date_maps_to_its_point_and_excludes_the_others() {
        let Call::GetCompanies(request) = plan(&[
            "report",
            "companies",
            "--year",
            "2024",
            "--as-of-business-date",
            "2024-06-30",
        ])
        .call
        else {
            panic!("report companies calls GetCompanies");
        };
        assert_eq!(
            request.as_of.and_then(|as_of| as_of.point),
            Some(api::as_of::Point::BusinessDate("2024-06-30".into()))
        );
        for other in [["--as-of-date", "2024-06-30"], ["--as-of-position", "7"]] {
            let error = usage_error(&[
                "report",
                "year",
                "--year",
                "2024",
                "--as-of-business-date",
                "2024-06-30",
                other[0],
                other[1],
            ]);
            assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        }
    }

    #[test]
    fn events_default_to_the_first_hundred() {
        let Call::ReadEvents(request) = plan(&["events"]).call else {
            panic!("not ReadEvents")
        };
        assert_eq!((request.from_position, request.limit), (1, 100));
        let Call::ReadEvents(request) = plan(&["events", "--from", "7", "--limit", "2"]).call
        else {
            panic!("not ReadEvents")
        };
        assert_eq!((request.from_position, request.limit), (7, 2));
    }

    #[test]
    fn subscribe_maps_its_filter_and_stops_only_when_asked() {
        let Call::Subscribe { request, until } = plan(&["subscribe"]).call else {
            panic!("not Subscribe")
        };
        assert_eq!(
            (request.from_position, request.filter, until),
            (1, None, None)
        );
        let Call::Subscribe { request, until } = plan(&[
            "subscribe",
            "--from",
            "42",
            "--stream",
            "company/0403019261",
            "--stream",
            "provider/",
            "--type",
            "HoursRedeemed",
            "--until",
            "100",
        ])
        .call
        else {
            panic!("not Subscribe")
        };
        assert_eq!(request.from_position, 42);
        let filter = request.filter.expect("a filter");
        assert_eq!(
            filter.stream_prefixes,
            vec!["company/0403019261", "provider/"]
        );
        assert_eq!(filter.event_types, vec!["HoursRedeemed"]);
        assert_eq!(until, Some(100));
    }

    #[test]
    fn backup_sends_an_absolute_folder() {
        let Call::Backup(request) = plan(&["backup", "/var/backups/ledger"]).call else {
            panic!("not Backup")
        };
        assert_eq!(request.target_dir, "/var/backups/ledger");
        let Call::Backup(request) = plan(&["backup", "ledger-copy"]).call else {
            panic!("not Backup")
        };
        assert!(std::path::Path::new(&request.target_dir).is_absolute());
        assert!(request.target_dir.ends_with("ledger-copy"));
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "voucherctl",
            "head",
            "--json",
            "--server",
            "http://127.0.0.1:6000",
            "--token",
            "demo-auditor-token",
        ])
        .expect("valid command line");
        assert!(cli.json);
        assert_eq!(cli.server.uri().to_string(), "http://127.0.0.1:6000/");
        let token = cli.token.expect("a token");
        assert_eq!(
            token.header_value().to_str().expect("ascii"),
            "Bearer demo-auditor-token"
        );
    }

    #[test]
    fn the_server_defaults_to_the_local_default_port() {
        let cli = Cli::try_parse_from(["voucherctl", "head"]).expect("valid command line");
        assert_eq!(cli.server.uri().to_string(), "http://127.0.0.1:50051/");
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        use clap::error::ErrorKind;
        let cases: &[(&[&str], ErrorKind)] = &[
            (
                &[
                    "issue",
                    "--enterprise",
                    "0403019261",
                    "--type",
                    "gold",
                    "--quantity",
                    "1",
                    "--paid",
                    "15.00",
                    "--payment-date",
                    "2025-03-10",
                ],
                ErrorKind::InvalidValue,
            ),
            (
                &[
                    "issue",
                    "--enterprise",
                    "0403019261",
                    "--type",
                    "general",
                    "--quantity",
                    "-1",
                    "--paid",
                    "15.00",
                    "--payment-date",
                    "2025-03-10",
                ],
                ErrorKind::UnknownArgument,
            ),
            (
                &[
                    "expire",
                    "--as-of",
                    "2026-03-01",
                    "--request-id",
                    "not-a-uuid",
                ],
                ErrorKind::ValueValidation,
            ),
            (
                &["head", "--server", "127.0.0.1:50051"],
                ErrorKind::ValueValidation,
            ),
            (
                &["head", "--server", "ftp://ledger.example"],
                ErrorKind::ValueValidation,
            ),
            (
                &["head", "--token", "line\nbreak"],
                ErrorKind::ValueValidation,
            ),
            (
                &["budget", "open", "--year", "2025"],
                ErrorKind::MissingRequiredArgument,
            ),
        ];
        for (arguments, kind) in cases {
            assert_eq!(usage_error(arguments).kind(), *kind, "{arguments:?}");
        }
    }

    #[test]
    fn the_token_never_shows_in_a_debug_print() {
        let cli = Cli::try_parse_from(["voucherctl", "head", "--token", "secret-token-value"])
            .expect("valid command line");
        assert!(!format!("{cli:?}").contains("secret-token-value"));
    }
}
