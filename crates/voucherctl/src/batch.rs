//! `voucherctl issue-batch` and `redeem-batch`: the items of a CSV or JSON Lines file sent
//! through the batch calls, 1 000 at a time, with one line of report per item.
//!
//! The file's columns are the flags of the single command (`enterprise`, `type`, `quantity`,
//! … in kebab-case; the proto field names such as `payment_date` or `voucher_type` are taken
//! too), values as on the command line (`general`, `employee`). The whole file is read and
//! checked before anything is sent: a line that cannot become a request (a missing column, an
//! unknown one, a type that does not exist, a request id used twice) stops the command with
//! exit status 2, naming the line and the column, and nothing is written. What the server
//! refuses is refused item by item, as the batch calls do. A NISS is sent as written and never
//! shown, in an error or a report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use ledger_proto::event::v1 as event;
use ledger_proto::v1 as api;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use serde_json::{json, Value};
use tonic::transport::Endpoint;
use uuid::Uuid;

use crate::cli::{BearerToken, LegalFormArg, RegionArg, TraineeStatusArg, VoucherTypeArg};
use crate::failure::{ErrorReport, Failure};

/// Items per batch call: the server's limit (`BATCH_TOO_LONG` above it). A redemption item is
/// about 200 bytes, so 1 000 of them stay far under the server's 1 MiB per call.
pub const BATCH_LEN_MAX: usize = 1_000;

/// Largest file read, in bytes: a year of the scheme's redemptions (about 500 000 lines of
/// 120 bytes) fits; anything much larger is not a file meant for this.
pub const BATCH_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct BatchFileArgs {
    /// The items: CSV with a header line, or JSON Lines (one object per line).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The file's format; by default from its extension (.csv; .jsonl, .ndjson or .json).
    #[arg(long, value_enum)]
    pub format: Option<BatchFileFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BatchFileFormat {
    Csv,
    Jsonl,
}

/// Which batch call the file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    Issue,
    Redeem,
    Register,
    Payout,
    Reverse,
    /// Usage codes (`OrderUsageCodesBatch`).
    UsageCode,
}

/// A column of a batch file: its name (the single command's flag) and the other names taken.
struct Column {
    name: &'static str,
    aliases: &'static [&'static str],
    required: bool,
}

const fn column(name: &'static str, aliases: &'static [&'static str], required: bool) -> Column {
    Column {
        name,
        aliases,
        required,
    }
}

const ISSUE_COLUMNS: &[Column] = &[
    column("enterprise", &["enterprise-number"], true),
    column("type", &["voucher-type"], true),
    column("quantity", &[], true),
    column("paid", &["paid-amount-eur"], true),
    column("payment-date", &[], true),
    column("reference", &["payment-reference"], false),
    column("request-id", &[], false),
];

const REDEEM_COLUMNS: &[Column] = &[
    column("provider", &["provider-id"], true),
    column("module", &["module-id"], true),
    column("enterprise", &["enterprise-number"], true),
    column("niss", &["national-number"], true),
    column("status", &["trainee-status"], true),
    column("type", &["voucher-type"], true),
    column("hours", &[], true),
    column("date", &["training-date"], true),
    column("code", &["usage-code"], false),
    column("request-id", &[], false),
];

const REGISTER_COLUMNS: &[Column] = &[
    column("enterprise", &["enterprise-number"], true),
    column("year", &[], true),
    column("name", &[], true),
    column("legal-form", &[], true),
    column("region", &[], true),
    column("fte", &[], true),
    column("turnover", &["turnover-eur"], true),
    column("balance-sheet", &["balance-sheet-total-eur"], true),
    column("not-autonomous", &[], false),
    column("secondary-months", &["secondary-activity-months"], false),
    column("nace", &["nace-sector"], true),
    column("registered-on", &[], true),
    column("request-id", &[], false),
];

const PAYOUT_COLUMNS: &[Column] = &[
    column("provider", &["provider-id"], true),
    column("amount", &["amount-eur"], true),
    column("date", &["payout-date"], true),
    column("reference", &["payout-reference"], false),
    column("request-id", &[], false),
];

const USAGE_CODE_COLUMNS: &[Column] = &[
    column("enterprise", &["enterprise-number"], true),
    column("provider", &["provider-id"], true),
    column("module", &["module-id"], false),
    column("type", &["voucher-type"], true),
    column("hours", &[], true),
    column("from", &["period-from"], true),
    column("until", &["period-until"], true),
    column("request-id", &[], false),
];

const REVERSE_COLUMNS: &[Column] = &[
    column("provider", &["provider-id"], true),
    column("redemption", &["redemption-id"], true),
    column("reason", &[], true),
    column("date", &["reversed-on"], true),
    column("request-id", &[], false),
];

impl BatchKind {
    fn columns(self) -> &'static [Column] {
        match self {
            BatchKind::Issue => ISSUE_COLUMNS,
            BatchKind::Redeem => REDEEM_COLUMNS,
            BatchKind::Register => REGISTER_COLUMNS,
            BatchKind::Payout => PAYOUT_COLUMNS,
            BatchKind::Reverse => REVERSE_COLUMNS,
            BatchKind::UsageCode => USAGE_CODE_COLUMNS,
        }
    }

    fn rpc(self) -> &'static str {
        match self {
            BatchKind::Issue => "IssueVouchersBatch",
            BatchKind::Redeem => "RedeemHoursBatch",
            BatchKind::Register => "RegisterCompaniesBatch",
            BatchKind::Payout => "RecordPayoutsBatch",
            BatchKind::Reverse => "ReverseRedemptionsBatch",
            BatchKind::UsageCode => "OrderUsageCodesBatch",
        }
    }
}

/// A file that cannot be sent, with where: `items.csv:4: column type: "gold" is not one of …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFileError {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for BatchFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// One line of the file: its line number and its values by column name (empty ones left out).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    line: u64,
    values: BTreeMap<&'static str, String>,
}

impl Record {
    fn get(&self, column: &str) -> &str {
        self.values.get(column).map_or("", String::as_str)
    }
}

/// The requests of a file, in its order, with the line and request id of each.
#[derive(Clone)]
pub enum Requests {
    Issue(Vec<api::IssueVouchersRequest>),
    Redeem(Vec<api::RedeemHoursRequest>),
    Register(Vec<api::RegisterCompanyRequest>),
    Payout(Vec<api::RecordPayoutRequest>),
    Reverse(Vec<api::ReverseRedemptionRequest>),
    UsageCode(Vec<api::OrderUsageCodeRequest>),
}

impl std::fmt::Debug for Requests {
    // A redemption holds a NISS: only the counts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requests::Issue(items) => write!(f, "Issue({} items)", items.len()),
            Requests::Redeem(items) => write!(f, "Redeem({} items)", items.len()),
            Requests::Register(items) => write!(f, "Register({} items)", items.len()),
            Requests::Payout(items) => write!(f, "Payout({} items)", items.len()),
            Requests::Reverse(items) => write!(f, "Reverse({} items)", items.len()),
            Requests::UsageCode(items) => write!(f, "UsageCode({} items)", items.len()),
        }
    }
}

/// Where an item came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSource {
    pub line: u64,
    pub request_id: Uuid,
    /// The file had no request id for it: voucherctl made one up (shown in the report).
    pub generated: bool,
}

#[derive(Debug, Clone)]
pub struct BatchFile {
    pub sources: Vec<ItemSource>,
    pub requests: Requests,
}

/// Reads and checks the whole file.
pub fn read(
    path: &Path,
    format: Option<BatchFileFormat>,
    kind: BatchKind,
) -> Result<BatchFile, BatchFileError> {
    let error = |line: Option<u64>, message: String| BatchFileError {
        path: path.to_owned(),
        line,
        message,
    };
    let format = match format {
        Some(format) => format,
        None => match path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => BatchFileFormat::Csv,
            Some("jsonl" | "ndjson" | "json") => BatchFileFormat::Jsonl,
            _ => {
                return Err(error(
                    None,
                    "cannot tell the format from the extension: name it .csv or .jsonl, or pass --format csv|jsonl".to_owned(),
                ))
            }
        },
    };
    let metadata = std::fs::metadata(path).map_err(|source| error(None, source.to_string()))?;
    if metadata.len() > BATCH_FILE_BYTES_MAX {
        return Err(error(
            None,
            format!(
                "the file is {} bytes, over the {BATCH_FILE_BYTES_MAX} bytes voucherctl reads",
                metadata.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|source| error(None, source.to_string()))?;
    parse(&text, format, kind).map_err(|(line, message)| error(line, message))
}

/// [`read`] on text already in memory; errors as (line, message).
fn parse(
    text: &str,
    format: BatchFileFormat,
    kind: BatchKind,
) -> Result<BatchFile, (Option<u64>, String)> {
    let records = match format {
        BatchFileFormat::Csv => csv_records(text, kind)?,
        BatchFileFormat::Jsonl => jsonl_records(text, kind)?,
    };
    if records.is_empty() {
        return Err((None, "the file holds no item".to_owned()));
    }
    let mut sources = Vec::with_capacity(records.len());
    let mut first_line_of: BTreeMap<Uuid, u64> = BTreeMap::new();
    for record in &records {
        for column in kind.columns().iter().filter(|column| column.required) {
            if record.get(column.name).trim().is_empty() {
                return Err((
                    Some(record.line),
                    format!("column {} is missing or empty", column.name),
                ));
            }
        }
        let (request_id, generated) = match record.get("request-id").trim() {
            "" => (Uuid::new_v4(), true),
            text => (
                Uuid::parse_str(text).map_err(|_| {
                    (
                        Some(record.line),
                        format!("column request-id: {text:?} is not a UUID"),
                    )
                })?,
                false,
            ),
        };
        if let Some(first) = first_line_of.insert(request_id, record.line) {
            return Err((
                Some(record.line),
                format!("request id {request_id} is also the one of line {first}: each item needs its own"),
            ));
        }
        sources.push(ItemSource {
            line: record.line,
            request_id,
            generated,
        });
    }
    let requests = match kind {
        BatchKind::Issue => Requests::Issue(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| issue_request(record, source.request_id))
                .collect::<Result<_, _>>()?,
        ),
        BatchKind::Redeem => Requests::Redeem(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| redeem_request(record, source.request_id))
                .collect::<Result<_, _>>()?,
        ),
        BatchKind::Register => Requests::Register(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| register_request(record, source.request_id))
                .collect::<Result<_, _>>()?,
        ),
        BatchKind::Payout => Requests::Payout(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| payout_request(record, source.request_id))
                .collect(),
        ),
        BatchKind::Reverse => Requests::Reverse(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| reverse_request(record, source.request_id))
                .collect(),
        ),
        BatchKind::UsageCode => Requests::UsageCode(
            records
                .iter()
                .zip(&sources)
                .map(|(record, source)| usage_code_request(record, source.request_id))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(BatchFile { sources, requests })
}

/// The column a header names, whatever its case and whether it says `payment_date` or
/// `payment-date`.
fn column_of(kind: BatchKind, header: &str) -> Result<&'static str, String> {
    let wanted = header.trim().to_ascii_lowercase().replace('_', "-");
    kind.columns()
        .iter()
        .find(|column| column.name == wanted || column.aliases.contains(&wanted.as_str()))
        .map(|column| column.name)
        .ok_or_else(|| {
            format!(
                "unknown column {header:?}: the columns of {} are {}",
                kind.rpc(),
                kind.columns()
                    .iter()
                    .map(|column| column.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn csv_records(text: &str, kind: BatchKind) -> Result<Vec<Record>, (Option<u64>, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| (Some(1), format!("the header line cannot be read: {error}")))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    for header in &headers {
        let name = column_of(kind, header).map_err(|message| (Some(1), message))?;
        if columns.contains(&name) {
            return Err((Some(1), format!("column {name} is named twice")));
        }
        columns.push(name);
    }
    let mut records = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|error| {
            let line = error.position().map(csv::Position::line);
            // csv's message may quote the row, and a redemption's row holds a NISS: only what
            // kind of error it is.
            let message = match error.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("{len} fields where the header has {expected_len}")
                }
                csv::ErrorKind::Utf8 { .. } => "a field is not UTF-8".to_owned(),
                _ => "the line is not valid CSV".to_owned(),
            };
            (line, message)
        })?;
        let line = row.position().map_or(0, csv::Position::line);
        let values = columns
            .iter()
            .zip(row.iter())
            .filter(|(_, value)| !value.is_empty())
            .map(|(column, value)| (*column, value.to_owned()))
            .collect();
        records.push(Record { line, values });
    }
    Ok(records)
}

fn jsonl_records(text: &str, kind: BatchKind) -> Result<Vec<Record>, (Option<u64>, String)> {
    let mut records = Vec::new();
    for (index, line_text) in text.lines().enumerate() {
        let line = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        if line_text.trim().is_empty() {
            continue;
        }
        // serde_json's message names a position, never the text: safe with a NISS in the line.
        let value: Value = serde_json::from_str(line_text)
            .map_err(|error| (Some(line), format!("not a JSON object: {error}")))?;
        let Value::Object(object) = value else {
            return Err((Some(line), "not a JSON object".to_owned()));
        };
        let mut values = BTreeMap::new();
        for (key, value) in object {
            let name = column_of(kind, &key).map_err(|message| (Some(line), message))?;
            let text = match value {
                Value::Null => continue,
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err((
                        Some(line),
                        format!("column {name}: a string or a number, not a list or an object"),
                    ))
                }
            };
            if values.insert(name, text).is_some() {
                return Err((Some(line), format!("column {name} is named twice")));
            }
        }
        records.push(Record { line, values });
    }
    Ok(records)
}

/// A value of one of `T`'s command-line names (`general`, `eco-climate`).
fn choice<T: ValueEnum>(record: &Record, column: &str) -> Result<T, (Option<u64>, String)> {
    let value = record.get(column).trim();
    T::from_str(value, true).map_err(|_| {
        let names = T::value_variants()
            .iter()
            .filter_map(ValueEnum::to_possible_value)
            .map(|value| value.get_name().to_owned())
            .collect::<Vec<_>>()
            .join(", ");
        (
            Some(record.line),
            format!("column {column}: {value:?} is not one of {names}"),
        )
    })
}

fn whole_number(record: &Record, column: &str) -> Result<u32, (Option<u64>, String)> {
    let value = record.get(column).trim();
    value.parse().map_err(|_| {
        (
            Some(record.line),
            format!("column {column}: {value:?} is not a whole number"),
        )
    })
}

fn issue_request(
    record: &Record,
    request_id: Uuid,
) -> Result<api::IssueVouchersRequest, (Option<u64>, String)> {
    Ok(api::IssueVouchersRequest {
        request_id: request_id.to_string(),
        enterprise_number: record.get("enterprise").trim().to_owned(),
        voucher_type: event::VoucherType::from(choice::<VoucherTypeArg>(record, "type")?) as i32,
        quantity: whole_number(record, "quantity")?,
        paid_amount_eur: record.get("paid").trim().to_owned(),
        payment_date: record.get("payment-date").trim().to_owned(),
        payment_reference: record.get("reference").to_owned(),
    })
}

fn redeem_request(
    record: &Record,
    request_id: Uuid,
) -> Result<api::RedeemHoursRequest, (Option<u64>, String)> {
    Ok(api::RedeemHoursRequest {
        request_id: request_id.to_string(),
        provider_id: record.get("provider").trim().to_owned(),
        module_id: record.get("module").trim().to_owned(),
        enterprise_number: record.get("enterprise").trim().to_owned(),
        national_number: record.get("niss").trim().to_owned(),
        trainee_status: event::TraineeStatus::from(choice::<TraineeStatusArg>(record, "status")?)
            as i32,
        voucher_type: event::VoucherType::from(choice::<VoucherTypeArg>(record, "type")?) as i32,
        hours: whole_number(record, "hours")?.to_string(),
        training_date: record.get("date").trim().to_owned(),
        usage_code: record.get("code").trim().to_owned(),
    })
}

/// A yes/no column: empty, `false`, `no` or `0` is no; `true`, `yes` or `1` is yes.
fn flag(record: &Record, column: &str) -> Result<bool, (Option<u64>, String)> {
    match record.get(column).trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => Ok(false),
        "true" | "yes" | "1" => Ok(true),
        value => Err((
            Some(record.line),
            format!("column {column}: {value:?} is not true or false"),
        )),
    }
}

fn register_request(
    record: &Record,
    request_id: Uuid,
) -> Result<api::RegisterCompanyRequest, (Option<u64>, String)> {
    let year = record.get("year").trim();
    Ok(api::RegisterCompanyRequest {
        request_id: request_id.to_string(),
        enterprise_number: record.get("enterprise").trim().to_owned(),
        year: year.parse().map_err(|_| {
            (
                Some(record.line),
                format!("column year: {year:?} is not a year"),
            )
        })?,
        name: record.get("name").to_owned(),
        legal_form: event::LegalForm::from(choice::<LegalFormArg>(record, "legal-form")?) as i32,
        region: event::Region::from(choice::<RegionArg>(record, "region")?) as i32,
        fte: record.get("fte").trim().to_owned(),
        turnover_eur: record.get("turnover").trim().to_owned(),
        balance_sheet_total_eur: record.get("balance-sheet").trim().to_owned(),
        autonomous: !flag(record, "not-autonomous")?,
        secondary_activity_months: if record.get("secondary-months").trim().is_empty() {
            0
        } else {
            whole_number(record, "secondary-months")?
        },
        nace_sector: record.get("nace").trim().to_owned(),
        registered_on: record.get("registered-on").trim().to_owned(),
    })
}

fn payout_request(record: &Record, request_id: Uuid) -> api::RecordPayoutRequest {
    api::RecordPayoutRequest {
        request_id: request_id.to_string(),
        provider_id: record.get("provider").trim().to_owned(),
        amount_eur: record.get("amount").trim().to_owned(),
        payout_date: record.get("date").trim().to_owned(),
        payout_reference: record.get("reference").to_owned(),
    }
}

fn reverse_request(record: &Record, request_id: Uuid) -> api::ReverseRedemptionRequest {
    api::ReverseRedemptionRequest {
        request_id: request_id.to_string(),
        provider_id: record.get("provider").trim().to_owned(),
        redemption_id: record.get("redemption").trim().to_owned(),
        reason: record.get("reason").to_owned(),
        reversed_on: record.get("date").trim().to_owned(),
    }
}

fn usage_code_request(
    record: &Record,
    request_id: Uuid,
) -> Result<api::OrderUsageCodeRequest, (Option<u64>, String)> {
    Ok(api::OrderUsageCodeRequest {
        request_id: request_id.to_string(),
        enterprise_number: record.get("enterprise").trim().to_owned(),
        provider_id: record.get("provider").trim().to_owned(),
        module_id: record.get("module").trim().to_owned(),
        voucher_type: event::VoucherType::from(choice::<VoucherTypeArg>(record, "type")?) as i32,
        hours: record.get("hours").trim().to_owned(),
        period_from: record.get("from").trim().to_owned(),
        period_until: record.get("until").trim().to_owned(),
    })
}

/// What the server said of one item.
#[derive(Debug, Clone)]
pub enum ItemOutcome {
    Accepted(api::WriteResponse),
    Refused(ErrorReport),
}

#[derive(Debug, Clone)]
pub struct ItemReport {
    pub source: ItemSource,
    pub outcome: ItemOutcome,
}

/// The answers to a file: one per item sent, and the failure that stopped it, if a whole call
/// failed (the items after it were not sent, or their answer was lost).
#[derive(Debug)]
pub struct BatchReport {
    pub items: Vec<ItemReport>,
    pub unanswered: usize,
    pub failure: Option<Failure>,
}

impl BatchReport {
    pub fn refused(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item.outcome, ItemOutcome::Refused(_)))
            .count()
    }

    fn replayed(&self) -> usize {
        self.items
            .iter()
            .filter(|item| {
                matches!(&item.outcome, ItemOutcome::Accepted(response)
                    if response.receipt.as_ref().is_some_and(|receipt| receipt.replayed))
            })
            .count()
    }
}

/// Sends the file's items, [`BATCH_LEN_MAX`] per call, in order; stops at the first call that
/// fails as a whole.
pub async fn send(
    endpoint: &Endpoint,
    token: Option<&BearerToken>,
    file: BatchFile,
) -> BatchReport {
    let server = endpoint.uri().to_string();
    let mut report = BatchReport {
        items: Vec::with_capacity(file.sources.len()),
        unanswered: 0,
        failure: None,
    };
    let channel = match endpoint
        .clone()
        .connect_timeout(Duration::from_millis(crate::client::CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(crate::client::REQUEST_TIMEOUT_MS))
        .connect()
        .await
    {
        Ok(channel) => channel,
        Err(error) => {
            report.unanswered = file.sources.len();
            report.failure = Some(Failure::unreachable(&server, &error));
            return report;
        }
    };
    let chunks = match file.requests {
        Requests::Issue(items) => {
            send_chunks(&items, |items| {
                let mut client = OperatorServiceClient::new(channel.clone());
                let request = api::IssueVouchersBatchRequest { items };
                async move {
                    client
                        .issue_vouchers_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
        Requests::Redeem(items) => {
            send_chunks(&items, |items| {
                let mut client = ProviderServiceClient::new(channel.clone());
                let request = api::RedeemHoursBatchRequest { items };
                async move {
                    client
                        .redeem_hours_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
        Requests::Register(items) => {
            send_chunks(&items, |items| {
                let mut client = OperatorServiceClient::new(channel.clone());
                let request = api::RegisterCompaniesBatchRequest { items };
                async move {
                    client
                        .register_companies_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
        Requests::Payout(items) => {
            send_chunks(&items, |items| {
                let mut client = OperatorServiceClient::new(channel.clone());
                let request = api::RecordPayoutsBatchRequest { items };
                async move {
                    client
                        .record_payouts_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
        Requests::Reverse(items) => {
            send_chunks(&items, |items| {
                let mut client = ProviderServiceClient::new(channel.clone());
                let request = api::ReverseRedemptionsBatchRequest { items };
                async move {
                    client
                        .reverse_redemptions_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
        Requests::UsageCode(items) => {
            send_chunks(&items, |items| {
                let mut client = CompanyServiceClient::new(channel.clone());
                let request = api::OrderUsageCodesBatchRequest { items };
                async move {
                    client
                        .order_usage_codes_batch(crate::client::authorize(request, token))
                        .await
                }
            })
            .await
        }
    };
    let mut sources = file.sources.into_iter();
    for (len, answer) in chunks {
        let chunk_sources: Vec<ItemSource> = sources.by_ref().take(len).collect();
        match answer {
            Ok(response) => {
                let mut results = response.results.into_iter();
                for source in chunk_sources {
                    let outcome = match results.next().and_then(|result| result.result) {
                        Some(api::batch_item_result::Result::Accepted(accepted)) => {
                            ItemOutcome::Accepted(accepted)
                        }
                        Some(api::batch_item_result::Result::Refused(status)) => {
                            ItemOutcome::Refused(item_error(status))
                        }
                        None => ItemOutcome::Refused(ErrorReport {
                            code: "UNKNOWN",
                            reason: None,
                            message: "the server sent no result for this item".to_owned(),
                            field_violations: Vec::new(),
                        }),
                    };
                    report.items.push(ItemReport { source, outcome });
                }
            }
            Err(status) => {
                report.unanswered = chunk_sources.len() + sources.len();
                report.failure = Some(Failure::from_status(status, &server));
                return report;
            }
        }
    }
    report
}

/// Sends `items` [`BATCH_LEN_MAX`] at a time through `call`, in order, and stops after the
/// first call that fails as a whole: each call's length and its answer.
async fn send_chunks<R, F, Fut>(
    items: &[R],
    mut call: F,
) -> Vec<(usize, Result<api::BatchWriteResponse, tonic::Status>)>
where
    R: Clone,
    F: FnMut(Vec<R>) -> Fut,
    Fut: std::future::Future<
        Output = Result<tonic::Response<api::BatchWriteResponse>, tonic::Status>,
    >,
{
    let mut answers = Vec::new();
    for chunk in items.chunks(BATCH_LEN_MAX) {
        let answer = call(chunk.to_vec()).await.map(tonic::Response::into_inner);
        let failed = answer.is_err();
        answers.push((chunk.len(), answer));
        if failed {
            break;
        }
    }
    answers
}

/// An item's `google.rpc.Status` as voucherctl shows any refusal: its code, the reason of its
/// `ErrorInfo` and the fields of its `BadRequest` (read by the same code as a call's status).
fn item_error(status: tonic_types::pb::Status) -> ErrorReport {
    let details = prost::Message::encode_to_vec(&status);
    let status = tonic::Status::with_details(
        tonic::Code::from(status.code),
        status.message,
        details.into(),
    );
    Failure::Refused(status).report()
}

/// The readable report: a table of one row per item, then a summary line.
pub fn human(report: &BatchReport) -> String {
    use crate::output::one_line;
    let rows = report
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let (outcome, position, detail) = match &item.outcome {
                ItemOutcome::Accepted(response) => {
                    let receipt = response.receipt.clone().unwrap_or_default();
                    let detail = response
                        .events
                        .first()
                        .map(crate::output::event_summary)
                        .unwrap_or_else(|| "no event".to_owned());
                    (
                        if receipt.replayed {
                            "replayed"
                        } else {
                            "accepted"
                        },
                        receipt.first_position.to_string(),
                        detail,
                    )
                }
                ItemOutcome::Refused(error) => {
                    let mut detail = match &error.reason {
                        Some(reason) => format!("{} {reason}: {}", error.code, error.message),
                        None => format!("{}: {}", error.code, error.message),
                    };
                    for violation in &error.field_violations {
                        detail.push_str(&format!(
                            "; field {}: {}",
                            violation.field, violation.description
                        ));
                    }
                    ("refused", String::new(), detail)
                }
            };
            vec![
                (index + 1).to_string(),
                item.source.line.to_string(),
                item.source.request_id.to_string(),
                outcome.to_owned(),
                position,
                one_line(&detail),
            ]
        })
        .collect();
    let mut text = crate::output::table(
        &[
            "item",
            "line",
            "request-id",
            "outcome",
            "position",
            "detail",
        ],
        rows,
        &[0, 1, 4],
    );
    text.push_str(&format!(
        "{} items: {} accepted ({} of them replayed), {} refused{}\n",
        report.items.len() + report.unanswered,
        report.items.len() - report.refused(),
        report.replayed(),
        report.refused(),
        if report.unanswered > 0 {
            format!(", {} not answered", report.unanswered)
        } else {
            String::new()
        }
    ));
    text
}

/// The `--json` report.
pub fn json(report: &BatchReport) -> Value {
    let items = report
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut value = json!({
                "item": index + 1,
                "line": item.source.line,
                "request_id": item.source.request_id.to_string(),
            });
            if let Value::Object(object) = &mut value {
                match &item.outcome {
                    ItemOutcome::Accepted(response) => {
                        let answer =
                            crate::output::json(&crate::output::Answer::Write(response.clone()));
                        let replayed = response.receipt.as_ref().is_some_and(|r| r.replayed);
                        object.insert(
                            "outcome".to_owned(),
                            if replayed { "replayed" } else { "accepted" }.into(),
                        );
                        if let Value::Object(answer) = answer {
                            object.extend(answer);
                        }
                    }
                    ItemOutcome::Refused(error) => {
                        object.insert("outcome".to_owned(), "refused".into());
                        object.insert("error".to_owned(), error.json(None));
                    }
                }
            }
            value
        })
        .collect::<Vec<_>>();
    json!({
        "items": items,
        "accepted": report.items.len() - report.refused(),
        "replayed": report.replayed(),
        "refused": report.refused(),
        "unanswered": report.unanswered,
        "error": report.failure.as_ref().map(|failure| failure.report().json(None)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NISS: &str = "85073003328";

    fn parse_text(
        text: &str,
        format: BatchFileFormat,
        kind: BatchKind,
    ) -> Result<BatchFile, (Option<u64>, String)> {
        parse(text, format, kind)
    }

    #[test]
    fn a_csv_of_issues_maps_each_column_to_the_request() {
        let file = parse_text(
            "enterprise,type,quantity,paid,payment-date,reference,request-id\n\
             0403.019.261,general,10,150.00,2025-03-10,\"VIR, 1\",6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30\n\
             0403019261,eco-climate,2,30.00,2025-03-11,,\n",
            BatchFileFormat::Csv,
            BatchKind::Issue,
        )
        .expect("a valid file");
        let Requests::Issue(requests) = &file.requests else {
            panic!("issues")
        };
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].enterprise_number, "0403.019.261");
        assert_eq!(requests[0].payment_reference, "VIR, 1");
        assert_eq!(
            requests[0].request_id,
            "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30"
        );
        assert_eq!(
            requests[1].voucher_type,
            event::VoucherType::EcoClimate as i32
        );
        assert_eq!(file.sources[0].line, 2);
        assert!(!file.sources[0].generated);
        assert!(file.sources[1].generated);
        assert_eq!(
            file.sources[1].request_id.to_string(),
            requests[1].request_id
        );
    }

    #[test]
    fn json_lines_of_redemptions_take_kebab_or_proto_names_and_numbers() {
        let file = parse_text(
            &format!(
                "{{\"provider\":\"AG-0012\",\"module\":\"M-1\",\"enterprise\":\"0403019261\",\"niss\":\"{NISS}\",\"status\":\"employee\",\"type\":\"general\",\"hours\":3,\"date\":\"2025-06-01\"}}\n\
                 \n\
                 {{\"provider_id\":\"AG-0012\",\"module_id\":\"M-1\",\"enterprise_number\":\"0403019261\",\"national_number\":\"{NISS}\",\"trainee_status\":\"temporary-worker\",\"voucher_type\":\"languages\",\"hours\":\"2\",\"training_date\":\"2025-06-02\"}}\n"
            ),
            BatchFileFormat::Jsonl,
            BatchKind::Redeem,
        )
        .expect("a valid file");
        let Requests::Redeem(requests) = &file.requests else {
            panic!("redemptions")
        };
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].hours, "3");
        assert_eq!(requests[1].national_number, NISS);
        assert_eq!(
            requests[1].trainee_status,
            event::TraineeStatus::TemporaryWorker as i32
        );
        assert_eq!(file.sources[1].line, 3, "the blank line counts");
        assert!(!format!("{file:?}").contains(NISS));
    }

    #[test]
    fn a_file_that_cannot_be_sent_names_the_line_and_the_column() {
        let cases: &[(&str, BatchFileFormat, BatchKind, Option<u64>, &str)] = &[
            (
                "enterprise,type,quantity,paid,payment-date\n0403019261,gold,1,15.00,2025-03-10\n",
                BatchFileFormat::Csv,
                BatchKind::Issue,
                Some(2),
                "column type: \"gold\" is not one of general, languages, eco-climate",
            ),
            (
                "enterprise,type,quantity,paid,payment_date,colour\n",
                BatchFileFormat::Csv,
                BatchKind::Issue,
                Some(1),
                "unknown column \"colour\"",
            ),
            (
                "enterprise,type,quantity,paid\n0403019261,general,1,15.00\n",
                BatchFileFormat::Csv,
                BatchKind::Issue,
                Some(2),
                "column payment-date is missing or empty",
            ),
            (
                "enterprise,type,quantity,paid,payment-date\n0403019261,general,-1,15.00,2025-03-10\n",
                BatchFileFormat::Csv,
                BatchKind::Issue,
                Some(2),
                "column quantity: \"-1\" is not a whole number",
            ),
            (
                "enterprise,type,quantity,paid,payment-date\n",
                BatchFileFormat::Csv,
                BatchKind::Issue,
                None,
                "the file holds no item",
            ),
            (
                "[1, 2]\n",
                BatchFileFormat::Jsonl,
                BatchKind::Issue,
                Some(1),
                "not a JSON object",
            ),
            (
                "{\"enterprise\":\"0403019261\",\"type\":\"general\",\"quantity\":1,\"paid\":\"15.00\",\"payment-date\":\"2025-03-10\",\"request-id\":\"6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30\"}\n\
                 {\"enterprise\":\"0403019261\",\"type\":\"general\",\"quantity\":2,\"paid\":\"30.00\",\"payment-date\":\"2025-03-10\",\"request-id\":\"6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30\"}\n",
                BatchFileFormat::Jsonl,
                BatchKind::Issue,
                Some(2),
                "is also the one of line 1",
            ),
        ];
        for (text, format, kind, line, message) in cases {
            let (found_line, found) = parse_text(text, *format, *kind).expect_err(text);
            assert_eq!(found_line, *line, "{text}: {found}");
            assert!(found.contains(message), "{text}: {found}");
        }
    }

    #[test]
    fn a_bad_redemption_line_never_shows_the_niss() {
        let text = format!(
            "provider,module,enterprise,niss,status,type,hours,date\n\
             AG-0012,M-1,0403019261,{NISS},boss,general,3,2025-06-01\n\
             AG-0012,M-1,0403019261,{NISS},employee,general,3\n"
        );
        let (_, message) =
            parse_text(&text, BatchFileFormat::Csv, BatchKind::Redeem).expect_err("boss");
        assert!(!message.contains(NISS), "{message}");
        let text = format!(
            "provider,module,enterprise,niss,status,type,hours,date\n\
             AG-0012,M-1,0403019261,{NISS},employee,general,3\n"
        );
        let (line, message) =
            parse_text(&text, BatchFileFormat::Csv, BatchKind::Redeem).expect_err("short");
        assert_eq!(line, Some(2));
        assert!(!message.contains(NISS), "{message}");
    }

    #[test]
    fn the_format_comes_from_the_extension_or_the_flag() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let path = folder.path().join("items.txt");
        std::fs::write(
            &path,
            "enterprise,type,quantity,paid,payment-date\n0403019261,general,1,15.00,2025-03-10\n",
        )
        .expect("written");
        let error = read(&path, None, BatchKind::Issue).expect_err("no extension");
        assert!(
            error.to_string().contains("pass --format csv|jsonl"),
            "{error}"
        );
        let file = read(&path, Some(BatchFileFormat::Csv), BatchKind::Issue).expect("csv");
        assert_eq!(file.sources.len(), 1);
    }
}
