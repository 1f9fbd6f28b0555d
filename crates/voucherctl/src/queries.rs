//! `voucherctl list …`: the query calls (`QueryService`), one page at a time or, with `--all`,
//! every page in turn, and how their answers print.
//!
//! A page is printed with the token of the next one (`next page: --page-token …`); `--json`
//! gives the entries in proto field names, with `next_page_token` and `as_of_position`.

use clap::{Args, Subcommand};
use ledger_json::json as event_json;
use ledger_proto::v1 as api;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::query_service_client::QueryServiceClient;
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::Status;

use crate::cli::{BearerToken, ThemeArg};
use crate::output::{one_line, table};

/// Pages read by one `--all` listing at most: 1 000 pages of the largest size (1 000 entries)
/// is a million entries, far above the scheme's year (13 000 companies, 110 000 redemptions);
/// a listing that does not end by then is a server bug, not a list to keep reading.
pub const LIST_PAGES_MAX: usize = 1_000;

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Providers by approval id, with every approval (every role).
    Providers(PageArgs),
    /// Modules by id with their approval, themes and voucher types (every role).
    Modules(ListModulesArgs),
    /// Companies registered for a year, with their profile and quota used and left
    /// (operator, administration, auditor).
    Companies(ListCompaniesArgs),
    /// A company's batches still holding vouchers, oldest expiry first (operator,
    /// administration, auditor).
    Batches(ListBatchesArgs),
    /// A provider's redemptions and reversals, in log order (the provider itself, operator,
    /// auditor).
    Redemptions(ListProviderArgs),
    /// The payouts of a provider, in log order (the provider itself, operator,
    /// administration, auditor).
    Payouts(ListProviderArgs),
    /// A company's statement of redemptions: every redemption against its wallet and every
    /// reversal, in log order (the company itself, operator, administration, auditor).
    CompanyRedemptions(ListCompanyRedemptionsArgs),
}

#[derive(Debug, Args)]
pub struct ListCompanyRedemptionsArgs {
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    #[command(flatten)]
    pub page: PageArgs,
}

/// Which page to read.
#[derive(Clone, Debug, Default, Args)]
pub struct PageArgs {
    /// Entries per page; the server reads 0 as 100 and caps it at 1 000.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub page_size: u32,
    /// The `next page` token of the page before, with the same filters.
    #[arg(long, default_value = "", value_name = "TOKEN", conflicts_with = "all")]
    pub page_token: String,
    /// Read every page in turn and print them as one list.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ListModulesArgs {
    /// Only this provider's modules.
    #[arg(long, alias = "provider-id", value_name = "ID", default_value = "")]
    pub provider: String,
    /// Only modules with this theme.
    #[arg(long, value_enum)]
    pub theme: Option<ThemeArg>,
    /// Only modules whose approval is in force on this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", default_value = "")]
    pub in_force_on: String,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct ListCompaniesArgs {
    /// The calendar year of the registrations.
    #[arg(long)]
    pub year: i32,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct ListBatchesArgs {
    /// BCE/KBO enterprise number, dotted (0403.019.261) or plain (0403019261).
    #[arg(long, alias = "enterprise-number", value_name = "NUMBER")]
    pub enterprise: String,
    /// Only batches valid until a day before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", default_value = "")]
    pub expiring_before: String,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct ListProviderArgs {
    /// SPW approval id of the provider, such as AG-0012.
    #[arg(long, alias = "provider-id", value_name = "ID")]
    pub provider: String,
    #[command(flatten)]
    pub page: PageArgs,
}

/// One listing call, with its request built and whether to follow every page.
#[derive(Clone, Debug)]
pub enum ListCall {
    Providers(api::ListProvidersRequest),
    Modules(api::ListModulesRequest),
    Companies(api::ListCompaniesRequest),
    Batches(api::ListWalletBatchesRequest),
    Redemptions(api::ListRedemptionsRequest),
    Payouts(api::ListPayoutsRequest),
    CompanyRedemptions(api::ListCompanyRedemptionsRequest),
}

/// The request a `list` command line sends, and whether it reads every page.
pub fn plan(command: &ListCommand) -> (ListCall, bool) {
    let page = match command {
        ListCommand::Providers(page) => page,
        ListCommand::Modules(args) => &args.page,
        ListCommand::Companies(args) => &args.page,
        ListCommand::Batches(args) => &args.page,
        ListCommand::Redemptions(args) | ListCommand::Payouts(args) => &args.page,
        ListCommand::CompanyRedemptions(args) => &args.page,
    };
    let (page_size, page_token) = (page.page_size, page.page_token.clone());
    let call = match command {
        ListCommand::Providers(_) => ListCall::Providers(api::ListProvidersRequest {
            page_size,
            page_token,
        }),
        ListCommand::Modules(args) => ListCall::Modules(api::ListModulesRequest {
            page_size,
            page_token,
            provider_id: args.provider.clone(),
            theme: args.theme.map_or(0, |theme| {
                ledger_proto::event::v1::Theme::from(theme) as i32
            }),
            in_force_on: args.in_force_on.clone(),
        }),
        ListCommand::Companies(args) => ListCall::Companies(api::ListCompaniesRequest {
            page_size,
            page_token,
            year: args.year,
        }),
        ListCommand::Batches(args) => ListCall::Batches(api::ListWalletBatchesRequest {
            page_size,
            page_token,
            enterprise_number: args.enterprise.clone(),
            expiring_before: args.expiring_before.clone(),
        }),
        ListCommand::Redemptions(args) => ListCall::Redemptions(api::ListRedemptionsRequest {
            page_size,
            page_token,
            provider_id: args.provider.clone(),
        }),
        ListCommand::Payouts(args) => ListCall::Payouts(api::ListPayoutsRequest {
            page_size,
            page_token,
            provider_id: args.provider.clone(),
        }),
        ListCommand::CompanyRedemptions(args) => {
            ListCall::CompanyRedemptions(api::ListCompanyRedemptionsRequest {
                page_size,
                page_token,
                enterprise_number: args.enterprise.clone(),
            })
        }
    };
    (call, page.all)
}

impl ListCall {
    pub fn rpc(&self) -> &'static str {
        match self {
            ListCall::Providers(_) => "ListProviders",
            ListCall::Modules(_) => "ListModules",
            ListCall::Companies(_) => "ListCompanies",
            ListCall::Batches(_) => "ListWalletBatches",
            ListCall::Redemptions(_) => "ListRedemptions",
            ListCall::Payouts(_) => "ListPayouts",
            ListCall::CompanyRedemptions(_) => "ListCompanyRedemptions",
        }
    }

    fn set_page_token(&mut self, token: String) {
        match self {
            ListCall::Providers(r) => r.page_token = token,
            ListCall::Modules(r) => r.page_token = token,
            ListCall::Companies(r) => r.page_token = token,
            ListCall::Batches(r) => r.page_token = token,
            ListCall::Redemptions(r) => r.page_token = token,
            ListCall::Payouts(r) => r.page_token = token,
            ListCall::CompanyRedemptions(r) => r.page_token = token,
        }
    }
}

/// The entries of one page, or of every page with `--all`.
#[derive(Debug, Default)]
pub struct ListAnswer {
    pub rpc: &'static str,
    pub providers: Vec<api::ProviderEntry>,
    pub modules: Vec<api::ModuleEntry>,
    pub companies: Vec<api::CompanyEntry>,
    pub batches: Vec<api::WalletBatch>,
    pub events: Vec<ledger_proto::event::v1::Event>,
    /// Empty after the last page.
    pub next_page_token: String,
    /// The position of the last page read.
    pub as_of_position: u64,
    pub pages: usize,
}

/// Sends `call`, and with `all` every next page, gathering the entries.
pub async fn execute(
    channel: Channel,
    token: Option<&BearerToken>,
    mut call: ListCall,
    all: bool,
) -> Result<ListAnswer, Status> {
    let mut client = QueryServiceClient::new(channel.clone());
    let mut answer = ListAnswer {
        rpc: call.rpc(),
        ..ListAnswer::default()
    };
    loop {
        let (next, position) = match call.clone() {
            ListCall::Providers(r) => {
                let page = client
                    .list_providers(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.providers.extend(page.providers);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::Modules(r) => {
                let page = client
                    .list_modules(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.modules.extend(page.modules);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::Companies(r) => {
                let page = client
                    .list_companies(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.companies.extend(page.companies);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::Batches(r) => {
                let page = client
                    .list_wallet_batches(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.batches.extend(page.batches);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::Redemptions(r) => {
                let page = client
                    .list_redemptions(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.events.extend(page.events);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::Payouts(r) => {
                let page = client
                    .list_payouts(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.events.extend(page.events);
                (page.next_page_token, page.as_of_position)
            }
            ListCall::CompanyRedemptions(r) => {
                let page = CompanyServiceClient::new(channel.clone())
                    .list_company_redemptions(crate::client::authorize(r, token))
                    .await?
                    .into_inner();
                answer.events.extend(page.events);
                (page.next_page_token, page.as_of_position)
            }
        };
        answer.pages += 1;
        answer.as_of_position = position;
        answer.next_page_token = next.clone();
        if !all || next.is_empty() || answer.pages >= LIST_PAGES_MAX {
            return Ok(answer);
        }
        call.set_page_token(next);
    }
}

fn json_approval(approval: &api::ApprovalPeriod) -> Value {
    json!({
        "approved_from": approval.approved_from,
        "approved_until": approval.approved_until,
        "withdrawn_from": approval.withdrawn_from,
    })
}

fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> Value {
    E::try_from(value).map_or(json!(value), |known| json!(name(known)))
}

fn voucher_type_json(value: i32) -> Value {
    enum_name(value, |t: ledger_proto::event::v1::VoucherType| {
        t.as_str_name()
    })
}

/// The `--json` form of a listing.
pub fn json(answer: &ListAnswer) -> Value {
    let entries = match answer.rpc {
        "ListProviders" => json!({ "providers": answer.providers.iter().map(|p| json!({
            "provider_id": p.provider_id,
            "name": p.name,
            "approvals": p.approvals.iter().map(json_approval).collect::<Vec<_>>(),
        })).collect::<Vec<_>>() }),
        "ListModules" => json!({ "modules": answer.modules.iter().map(|m| json!({
            "module_id": m.module_id,
            "provider_id": m.provider_id,
            "title": m.title,
            "hours_max": m.hours_max,
            "accepted_voucher_types": m.accepted_voucher_types.iter().map(|t| voucher_type_json(*t)).collect::<Vec<_>>(),
            "themes": m.themes.iter().map(|t| enum_name(*t, |t: ledger_proto::event::v1::Theme| t.as_str_name())).collect::<Vec<_>>(),
            "approval": m.approval.as_ref().map(json_approval),
        })).collect::<Vec<_>>() }),
        "ListCompanies" => json!({ "companies": answer.companies.iter().map(|c| json!({
            "enterprise_number": c.enterprise_number,
            "year": c.year,
            "name": c.name,
            "legal_form": enum_name(c.legal_form, |f: ledger_proto::event::v1::LegalForm| f.as_str_name()),
            "size_class": c.size_class,
            "nace_sector": c.nace_sector,
            "registered_on": c.registered_on,
            "quotas": c.quotas.iter().map(|q| json!({
                "voucher_type": voucher_type_json(q.voucher_type),
                "quota": q.quota,
                "used": q.used,
                "left": q.left,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>() }),
        "ListWalletBatches" => json!({ "batches": answer.batches.iter().map(|b| json!({
            "batch_id": b.batch_id,
            "voucher_type": voucher_type_json(b.voucher_type),
            "quantity": b.quantity,
            "remaining": b.remaining,
            "payment_date": b.payment_date,
            "valid_until": b.valid_until,
            "budget_year": b.budget_year,
        })).collect::<Vec<_>>() }),
        _ => json!({ "events": answer.events.iter().map(event_json::event).collect::<Vec<_>>() }),
    };
    let mut value = entries;
    if let Some(object) = value.as_object_mut() {
        object.insert("next_page_token".to_owned(), json!(answer.next_page_token));
        object.insert("as_of_position".to_owned(), json!(answer.as_of_position));
    }
    value
}

fn kebab(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn voucher_type_text(value: i32) -> String {
    ledger_proto::event::v1::VoucherType::try_from(value).map_or(value.to_string(), |t| {
        kebab(t.as_str_name(), "VOUCHER_TYPE_")
    })
}

fn approval_text(approval: &api::ApprovalPeriod) -> String {
    let mut text = format!(
        "from {} until {}",
        approval.approved_from,
        if approval.approved_until.is_empty() {
            "open-ended"
        } else {
            &approval.approved_until
        }
    );
    if !approval.withdrawn_from.is_empty() {
        text.push_str(&format!(", withdrawn from {}", approval.withdrawn_from));
    }
    text
}

/// The readable form of a listing: a table, then where it stands and how to read on.
pub fn human(answer: &ListAnswer) -> String {
    let mut text = match answer.rpc {
        "ListProviders" => table(
            &["provider", "name", "approvals"],
            answer
                .providers
                .iter()
                .map(|p| {
                    vec![
                        one_line(&p.provider_id),
                        one_line(&p.name),
                        p.approvals
                            .iter()
                            .map(approval_text)
                            .collect::<Vec<_>>()
                            .join("; "),
                    ]
                })
                .collect(),
            &[],
        ),
        "ListModules" => table(
            &[
                "module",
                "provider",
                "hours-max",
                "types",
                "approval",
                "title",
            ],
            answer
                .modules
                .iter()
                .map(|m| {
                    vec![
                        one_line(&m.module_id),
                        one_line(&m.provider_id),
                        m.hours_max.to_string(),
                        m.accepted_voucher_types
                            .iter()
                            .map(|t| voucher_type_text(*t))
                            .collect::<Vec<_>>()
                            .join(","),
                        m.approval.as_ref().map(approval_text).unwrap_or_default(),
                        one_line(&m.title),
                    ]
                })
                .collect(),
            &[2],
        ),
        "ListCompanies" => table(
            &[
                "enterprise",
                "size-class",
                "sector",
                "registered-on",
                "quota used/left",
                "name",
            ],
            answer
                .companies
                .iter()
                .map(|c| {
                    vec![
                        c.enterprise_number.clone(),
                        kebab(&c.size_class, ""),
                        one_line(&c.nace_sector),
                        c.registered_on.clone(),
                        c.quotas
                            .iter()
                            .map(|q| {
                                format!(
                                    "{} {}/{}",
                                    voucher_type_text(q.voucher_type),
                                    q.used,
                                    q.left
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        one_line(&c.name),
                    ]
                })
                .collect(),
            &[],
        ),
        "ListWalletBatches" => table(
            &[
                "batch",
                "type",
                "remaining",
                "quantity",
                "paid-on",
                "valid-until",
            ],
            answer
                .batches
                .iter()
                .map(|b| {
                    vec![
                        b.batch_id.clone(),
                        voucher_type_text(b.voucher_type),
                        b.remaining.to_string(),
                        b.quantity.to_string(),
                        b.payment_date.clone(),
                        b.valid_until.clone(),
                    ]
                })
                .collect(),
            &[2, 3],
        ),
        _ => answer
            .events
            .iter()
            .map(|event| {
                format!(
                    "{} at position {}\n",
                    crate::output::event_summary(event),
                    event.position
                )
            })
            .collect(),
    };
    let count = answer.providers.len()
        + answer.modules.len()
        + answer.companies.len()
        + answer.batches.len()
        + answer.events.len();
    text.push_str(&format!(
        "{count} entries in {} page(s), as of position {}\n",
        answer.pages, answer.as_of_position
    ));
    if !answer.next_page_token.is_empty() {
        text.push_str(&format!(
            "next page: --page-token {}\n",
            answer.next_page_token
        ));
    }
    text
}
