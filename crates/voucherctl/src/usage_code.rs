//! `voucherctl usage-code order|show|cancel|list` (issue 15): a company's consent to training.
//! The arguments of each command and the readable and `--json` forms of their answers; the
//! calls themselves are planned in `cli` and sent in `client` like every other.

use clap::{Args, Subcommand, ValueEnum};
use ledger_proto::v1 as api;
use serde_json::{json, Value};

use crate::cli::{AsOfArgs, RequestIdArg, VoucherTypeArg};
use crate::output::{one_line, table};

#[derive(Debug, Subcommand)]
pub enum UsageCodeCommand {
    /// Earmark vouchers for one provider's training between two dates and get the code to give
    /// it (the company as itself, or the operator).
    Order(OrderArgs),
    /// Show one code: what it allows, what was filed, where it stands (its company, its
    /// provider, the operator, the administration, auditors).
    Show(ShowArgs),
    /// Cancel a code: its unused hours go back to the wallet (the company, or the operator).
    Cancel(CancelArgs),
    /// List a company's codes, optionally of one status (the company, the operator, the
    /// administration, auditors).
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// BCE/KBO enterprise number of the consenting company.
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// The provider the code is for.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    /// Only this module of the provider; without it, any of its modules.
    #[arg(long, alias = "module-id", value_name = "ID")]
    pub module: Option<String>,
    /// Voucher type.
    #[arg(long = "type", alias = "voucher-type", value_enum, value_name = "TYPE")]
    pub voucher_type: VoucherTypeArg,
    /// Whole hours to earmark, for one or several workers.
    #[arg(long)]
    pub hours: u32,
    /// First day of the training period (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// Last day of the training period (YYYY-MM-DD), at most 366 days after the first.
    #[arg(long, value_name = "DATE")]
    pub until: String,
    /// Also the order id the code is derived from: a retry answers the same code.
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The code, as written (K7Q-M2P-X9R; case and dashes do not matter).
    pub code: String,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The code, as written.
    pub code: String,
    /// BCE/KBO enterprise number of the company whose code it is.
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// Why it is cancelled.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub request_id: RequestIdArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// BCE/KBO enterprise number of the company.
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// Only the codes in this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Open,
    Used,
    Cancelled,
    Lapsed,
}

impl From<StatusArg> for api::UsageCodeStatus {
    fn from(value: StatusArg) -> Self {
        match value {
            StatusArg::Open => api::UsageCodeStatus::Open,
            StatusArg::Used => api::UsageCodeStatus::Used,
            StatusArg::Cancelled => api::UsageCodeStatus::Cancelled,
            StatusArg::Lapsed => api::UsageCodeStatus::Lapsed,
        }
    }
}

fn status_name(value: i32) -> String {
    match api::UsageCodeStatus::try_from(value) {
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("USAGE_CODE_STATUS_")
            .to_lowercase(),
        Err(_) => format!("status-{value}"),
    }
}

fn voucher_type(value: i32) -> String {
    match ledger_proto::event::v1::VoucherType::try_from(value) {
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("VOUCHER_TYPE_")
            .to_lowercase()
            .replace('_', "-"),
        Err(_) => format!("voucher-type-{value}"),
    }
}

pub fn human_ordered(answer: &api::OrderUsageCodeResponse, write: String) -> String {
    format!(
        "{write}usage code {} (give it to the provider); filing accepted until {}\n",
        one_line(&answer.code),
        answer.filing_until
    )
}

pub fn human_view(view: &api::UsageCodeView) -> String {
    let module = if view.module_id.is_empty() {
        "any module".to_owned()
    } else {
        format!("module {}", one_line(&view.module_id))
    };
    let closed = if view.closed_on.is_empty() {
        String::new()
    } else {
        format!(" on {}", view.closed_on)
    };
    format!(
        "usage code {} of {} for provider {}, {}: {} {} hours from {} to {}\n\
         status {}{closed}: {} filed, {} left; filing until {}; ordered on {}\n\
         as of position {}\n",
        one_line(&view.code),
        view.enterprise_number,
        one_line(&view.provider_id),
        module,
        view.hours,
        voucher_type(view.voucher_type),
        view.period_from,
        view.period_until,
        status_name(view.status),
        view.hours_filed,
        view.hours_left,
        view.filing_until,
        view.ordered_on,
        view.as_of_position,
    )
}

pub fn human_list(list: &api::UsageCodeList) -> String {
    let rows = list
        .codes
        .iter()
        .map(|view| {
            vec![
                one_line(&view.code),
                status_name(view.status),
                one_line(&view.provider_id),
                voucher_type(view.voucher_type),
                view.hours.to_string(),
                view.hours_filed.to_string(),
                view.hours_left.to_string(),
                format!("{} to {}", view.period_from, view.period_until),
                view.filing_until.clone(),
            ]
        })
        .collect();
    format!(
        "usage codes of {}: {} hours reserved in open codes\n{}as of position {}\n",
        list.enterprise_number,
        list.reserved_hours,
        table(
            &[
                "code",
                "status",
                "provider",
                "type",
                "hours",
                "filed",
                "left",
                "period",
                "filing until",
            ],
            rows,
            &[4, 5, 6],
        ),
        list.as_of_position
    )
}

pub fn json_view(view: &api::UsageCodeView) -> Value {
    json!({
        "code": view.code,
        "enterprise_number": view.enterprise_number,
        "provider_id": view.provider_id,
        "module_id": view.module_id,
        "voucher_type": ledger_json::json::voucher_type(view.voucher_type),
        "hours": view.hours,
        "hours_filed": view.hours_filed,
        "hours_left": view.hours_left,
        "period_from": view.period_from,
        "period_until": view.period_until,
        "filing_until": view.filing_until,
        "ordered_on": view.ordered_on,
        "closed_on": view.closed_on,
        "status": api::UsageCodeStatus::try_from(view.status)
            .map_or_else(|_| json!(view.status), |known| json!(known.as_str_name())),
        "as_of_position": view.as_of_position,
    })
}

pub fn json_list(list: &api::UsageCodeList) -> Value {
    json!({
        "enterprise_number": list.enterprise_number,
        "codes": list.codes.iter().map(json_view).collect::<Vec<_>>(),
        "reserved_hours": list.reserved_hours,
        "as_of_position": list.as_of_position,
    })
}
