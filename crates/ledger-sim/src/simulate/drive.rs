//! Sends a [`Plan`] to a running server over gRPC, phase by phase, and reads the year back.
//!
//! Within a phase, requests go out concurrently, at most [`IN_FLIGHT_MAX`] at a time; a phase
//! ends when all its requests are answered. The plan is built so that any order within a phase
//! passes the rules, so any refusal is a bug of the planner (or of the server): the simulation
//! stops at once and names the request. Only UNAVAILABLE is retried, with the same request id,
//! which the ledger answers idempotently.

use std::sync::Arc;
use std::time::Duration;

use chrono::Datelike;
use ledger_codec::{
    encode_date, encode_eur, legal_form_to_proto, region_to_proto, theme_to_proto,
    trainee_status_to_proto, voucher_type_to_proto,
};
use ledger_domain::decide::EXPIRY_EVENTS_MAX;
use ledger_domain::Region;
use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

use super::plan::{Issuance, Plan};
use super::SimulateError;
use crate::client::{authorized, refused};

/// Requests in flight at once: enough to fill the writer's groups (one flush for many
/// commands) on a small machine, far below the server's 256 per connection.
pub const IN_FLIGHT_MAX: usize = 64;
/// Attempts of a request answered UNAVAILABLE before the simulation gives up.
const UNAVAILABLE_ATTEMPTS_MAX: u32 = 20;
/// Wait before the first retry; doubled at each retry up to [`RETRY_WAIT_MS_MAX`].
const RETRY_WAIT_MS_FIRST: u64 = 50;
const RETRY_WAIT_MS_MAX: u64 = 2_000;

/// The bearer tokens of the parties the simulation plays.
#[derive(Clone)]
pub struct Tokens {
    pub administration: MetadataValue<Ascii>,
    pub operator: MetadataValue<Ascii>,
    pub auditor: MetadataValue<Ascii>,
    /// One per provider of the plan, in the plan's order.
    pub providers: Vec<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Client {
    channel: Channel,
    tokens: Tokens,
}

/// What the server reports at the end.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub summary: api::YearSummary,
    pub budget: api::Budget,
    pub head: api::Head,
    pub requests: u64,
}

/// One write of the plan.
enum Write {
    OpenBudget(api::OpenBudgetRequest),
    ApproveProvider(api::ApproveProviderRequest),
    ApproveModule(api::ApproveModuleRequest),
    RegisterCompany(api::RegisterCompanyRequest),
    IssueVouchers(api::IssueVouchersRequest),
    RedeemHours {
        provider: usize,
        /// The plan's number of the worker, named in errors instead of the national number.
        worker: usize,
        request: api::RedeemHoursRequest,
    },
    ReverseRedemption {
        provider: usize,
        request: api::ReverseRedemptionRequest,
    },
    RecordPayout(api::RecordPayoutRequest),
    ExpireVouchers(api::ExpireVouchersRequest),
}

impl Write {
    /// Names the request for an operator, never with a national register number.
    fn describe(&self) -> String {
        match self {
            Write::OpenBudget(r) => format!("open_budget {} (request {})", r.year, r.request_id),
            Write::ApproveProvider(r) => {
                format!(
                    "approve_provider {} (request {})",
                    r.provider_id, r.request_id
                )
            }
            Write::ApproveModule(r) => format!(
                "approve_module {} of {} (request {})",
                r.module_id, r.provider_id, r.request_id
            ),
            Write::RegisterCompany(r) => format!(
                "register_company {} for {} on {} (request {})",
                r.enterprise_number, r.year, r.registered_on, r.request_id
            ),
            Write::IssueVouchers(r) => format!(
                "issue_vouchers of {} {} vouchers to {} paid on {} (request {})",
                r.quantity,
                voucher_type_name(r.voucher_type),
                r.enterprise_number,
                r.payment_date,
                r.request_id
            ),
            Write::RedeemHours {
                worker, request: r, ..
            } => format!(
                "redeem_hours of {} h of {} vouchers by {} in {} for worker #{worker} of {} on {} \
                 (request {})",
                r.hours,
                voucher_type_name(r.voucher_type),
                r.provider_id,
                r.module_id,
                r.enterprise_number,
                r.training_date,
                r.request_id
            ),
            Write::ReverseRedemption { request: r, .. } => format!(
                "reverse_redemption {} by {} on {} (request {})",
                r.redemption_id, r.provider_id, r.reversed_on, r.request_id
            ),
            Write::RecordPayout(r) => format!(
                "record_payout of EUR {} to {} on {} (request {})",
                r.amount_eur, r.provider_id, r.payout_date, r.request_id
            ),
            Write::ExpireVouchers(r) => {
                format!(
                    "expire_vouchers as of {} (request {})",
                    r.as_of, r.request_id
                )
            }
        }
    }

    async fn send(&self, client: &Client) -> Result<api::WriteResponse, Status> {
        let channel = client.channel.clone();
        let tokens = &client.tokens;
        let response = match self {
            Write::OpenBudget(r) => {
                AdministrationServiceClient::new(channel)
                    .open_budget(authorized(r.clone(), &tokens.administration))
                    .await
            }
            Write::ApproveProvider(r) => {
                AdministrationServiceClient::new(channel)
                    .approve_provider(authorized(r.clone(), &tokens.administration))
                    .await
            }
            Write::ApproveModule(r) => {
                AdministrationServiceClient::new(channel)
                    .approve_module(authorized(r.clone(), &tokens.administration))
                    .await
            }
            Write::RegisterCompany(r) => {
                OperatorServiceClient::new(channel)
                    .register_company(authorized(r.clone(), &tokens.operator))
                    .await
            }
            Write::IssueVouchers(r) => {
                OperatorServiceClient::new(channel)
                    .issue_vouchers(authorized(r.clone(), &tokens.operator))
                    .await
            }
            Write::RedeemHours {
                provider, request, ..
            } => {
                ProviderServiceClient::new(channel)
                    .redeem_hours(authorized(request.clone(), &tokens.providers[*provider]))
                    .await
            }
            Write::ReverseRedemption { provider, request } => {
                ProviderServiceClient::new(channel)
                    .reverse_redemption(authorized(request.clone(), &tokens.providers[*provider]))
                    .await
            }
            Write::RecordPayout(r) => {
                OperatorServiceClient::new(channel)
                    .record_payout(authorized(r.clone(), &tokens.operator))
                    .await
            }
            Write::ExpireVouchers(r) => {
                OperatorServiceClient::new(channel)
                    .expire_vouchers(authorized(r.clone(), &tokens.operator))
                    .await
            }
        };
        response.map(tonic::Response::into_inner)
    }

    /// Sends the request; on UNAVAILABLE sends it again, with the same request id.
    async fn send_until_answered(
        &self,
        client: &Client,
    ) -> Result<api::WriteResponse, SimulateError> {
        let mut wait_ms = RETRY_WAIT_MS_FIRST;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.send(client).await {
                Ok(response) => return Ok(response),
                Err(status)
                    if status.code() == Code::Unavailable
                        && attempts < UNAVAILABLE_ATTEMPTS_MAX =>
                {
                    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    wait_ms = (wait_ms * 2).min(RETRY_WAIT_MS_MAX);
                }
                Err(status) => return Err(refused(self.describe(), &status).into()),
            }
        }
    }
}

fn voucher_type_name(value: i32) -> &'static str {
    ledger_codec::voucher_type_from_proto(value).map_or("unknown", |kind| kind.name())
}

fn request_id() -> String {
    Uuid::new_v4().to_string()
}

/// Sends `writes` with at most [`IN_FLIGHT_MAX`] in flight; the number of events recorded.
async fn phase(client: &Arc<Client>, writes: Vec<Write>) -> Result<u64, SimulateError> {
    let mut in_flight = JoinSet::new();
    let mut events = 0_u64;
    for write in writes {
        if in_flight.len() >= IN_FLIGHT_MAX {
            events += joined(in_flight.join_next().await)?;
        }
        let client = Arc::clone(client);
        in_flight.spawn(async move { write.send_until_answered(&client).await });
    }
    while let Some(result) = in_flight.join_next().await {
        events += joined(Some(result))?;
    }
    Ok(events)
}

fn joined(
    result: Option<Result<Result<api::WriteResponse, SimulateError>, tokio::task::JoinError>>,
) -> Result<u64, SimulateError> {
    match result {
        Some(Ok(Ok(response))) => Ok(response
            .receipt
            .map_or(0, |receipt| u64::from(receipt.event_count))),
        Some(Ok(Err(error))) => Err(error),
        Some(Err(error)) => Err(SimulateError::Task(error.to_string())),
        None => Ok(0),
    }
}

/// Sends the whole plan, then reads the year's summary, budget and the log's head. With
/// `catalogue` false, the plan's providers and modules are approved on the ledger already (an
/// earlier simulated year did it) and are not sent again.
pub async fn drive(
    plan: &Plan,
    channel: Channel,
    tokens: Tokens,
    catalogue: bool,
) -> Result<Outcome, SimulateError> {
    let mut driver = Driver {
        client: Arc::new(Client { channel, tokens }),
        requests: 0,
    };
    driver
        .run(vec![Write::OpenBudget(api::OpenBudgetRequest {
            request_id: request_id(),
            year: plan.year,
            allocated_eur: encode_eur(plan.targets.budget_eur()),
        })])
        .await?;
    if catalogue {
        driver.run(provider_approvals(plan)).await?;
        driver.run(module_approvals(plan)).await?;
    }
    driver.run(company_registrations(plan)).await?;
    for month in 1..=12 {
        driver.month(plan, month).await?;
    }
    driver.expire(plan).await?;
    driver.read_back(plan.year).await
}

/// Sends the phases of a plan and counts the requests sent.
struct Driver {
    client: Arc<Client>,
    requests: u64,
}

impl Driver {
    /// One phase: `writes` in any order; the number of events recorded.
    async fn run(&mut self, writes: Vec<Write>) -> Result<u64, SimulateError> {
        self.requests += writes.len() as u64;
        phase(&self.client, writes).await
    }

    /// The month's phases, in the order the plan's promises need: issuances, regular
    /// redemptions, the extra redemptions, their reversals, then payouts.
    async fn month(&mut self, plan: &Plan, month: u32) -> Result<(), SimulateError> {
        let in_month = |date: chrono::NaiveDate| date.month() == month;
        let issued = self
            .run(
                plan.issuances
                    .iter()
                    .filter(|issuance| in_month(issuance.payment_date))
                    .map(|issuance| issuance_write(plan, issuance))
                    .collect(),
            )
            .await?;
        let of_month: Vec<usize> = (0..plan.redemptions.len())
            .filter(|index| in_month(plan.redemptions[*index].training_date))
            .collect();
        let regular: Vec<Write> = of_month
            .iter()
            .filter(|index| plan.redemptions[**index].reversal.is_none())
            .map(|index| redemption_write(plan, *index))
            .collect();
        let regular_count = regular.len();
        self.run(regular).await?;
        // The extra redemptions go after the month's regular ones (they use only vouchers
        // those leave free), and are reversed before the month's payouts.
        let extras: Vec<(usize, Write)> = of_month
            .iter()
            .filter(|index| plan.redemptions[**index].reversal.is_some())
            .map(|index| (*index, redemption_write(plan, *index)))
            .collect();
        let reversals: Vec<Write> = extras
            .iter()
            .filter_map(|(index, write)| reversal_write(plan, *index, write))
            .collect();
        let reversal_count = reversals.len();
        self.run(extras.into_iter().map(|(_, write)| write).collect())
            .await?;
        self.run(reversals).await?;
        let payouts = self
            .run(
                plan.payouts
                    .iter()
                    .filter(|payout| in_month(payout.payout_date))
                    .map(|payout| {
                        Write::RecordPayout(api::RecordPayoutRequest {
                            request_id: request_id(),
                            provider_id: plan.providers[payout.provider].id.clone(),
                            amount_eur: encode_eur(payout.amount_eur),
                            payout_date: encode_date(payout.payout_date),
                            payout_reference: payout.payout_reference.clone(),
                        })
                    })
                    .collect(),
            )
            .await?;
        eprintln!(
            "{year}-{month:02}: {issued} issuances, {regular_count} redemptions, \
             {reversal_count} redeemed and reversed, {payouts} payouts",
            year = plan.year
        );
        Ok(())
    }

    /// ExpireVouchers expires at most [`EXPIRY_EVENTS_MAX`] batches a call: calls again while
    /// a call is full.
    async fn expire(&mut self, plan: &Plan) -> Result<(), SimulateError> {
        loop {
            let events = self
                .run(vec![Write::ExpireVouchers(api::ExpireVouchersRequest {
                    request_id: request_id(),
                    as_of: encode_date(plan.expire_as_of),
                })])
                .await?;
            if events < EXPIRY_EVENTS_MAX as u64 {
                return Ok(());
            }
        }
    }

    /// The year's summary and budget and the log's head, as the auditor reads them.
    async fn read_back(self, year: i32) -> Result<Outcome, SimulateError> {
        let auditor = &self.client.tokens.auditor;
        let mut reports = ReportServiceClient::new(self.client.channel.clone());
        let summary = reports
            .get_year_summary(authorized(
                api::GetYearSummaryRequest {
                    year,
                    ..Default::default()
                },
                auditor,
            ))
            .await
            .map_err(|status| refused(format!("get_year_summary {year}"), &status))?
            .into_inner();
        let budget = reports
            .get_budget(authorized(
                api::GetBudgetRequest {
                    year,
                    ..Default::default()
                },
                auditor,
            ))
            .await
            .map_err(|status| refused(format!("get_budget {year}"), &status))?
            .into_inner();
        let head = AuditServiceClient::new(self.client.channel.clone())
            .get_head(authorized(api::GetHeadRequest {}, auditor))
            .await
            .map_err(|status| refused("get_head", &status))?
            .into_inner();
        Ok(Outcome {
            summary,
            budget,
            head,
            requests: self.requests,
        })
    }
}

fn provider_approvals(plan: &Plan) -> Vec<Write> {
    plan.providers
        .iter()
        .map(|provider| {
            Write::ApproveProvider(api::ApproveProviderRequest {
                request_id: request_id(),
                provider_id: provider.id.clone(),
                name: provider.name.clone(),
                approved_from: encode_date(provider.approved_from),
                approved_until: String::new(),
            })
        })
        .collect()
}

fn module_approvals(plan: &Plan) -> Vec<Write> {
    plan.modules
        .iter()
        .map(|module| {
            Write::ApproveModule(api::ApproveModuleRequest {
                request_id: request_id(),
                module_id: module.id.clone(),
                provider_id: plan.providers[module.provider].id.clone(),
                title: module.title.clone(),
                hours_max: module.hours_max,
                accepted_voucher_types: module
                    .accepted_voucher_types
                    .iter()
                    .map(|kind| voucher_type_to_proto(*kind) as i32)
                    .collect(),
                themes: module
                    .themes
                    .iter()
                    .map(|theme| theme_to_proto(*theme) as i32)
                    .collect(),
                approved_from: encode_date(module.approved_from),
                approved_until: String::new(),
            })
        })
        .collect()
}

fn company_registrations(plan: &Plan) -> Vec<Write> {
    plan.companies
        .iter()
        .map(|company| {
            Write::RegisterCompany(api::RegisterCompanyRequest {
                request_id: request_id(),
                enterprise_number: company.enterprise_number.clone(),
                year: plan.year,
                name: company.name.clone(),
                legal_form: legal_form_to_proto(company.legal_form) as i32,
                region: region_to_proto(Region::WalloniaFrenchSpeaking) as i32,
                fte: company.fte.to_string(),
                turnover_eur: encode_eur(company.turnover_eur),
                balance_sheet_total_eur: encode_eur(company.balance_sheet_total_eur),
                autonomous: true,
                secondary_activity_months: company.secondary_activity_months,
                nace_sector: company.nace_sector.to_owned(),
                registered_on: encode_date(company.registered_on),
            })
        })
        .collect()
}

fn issuance_write(plan: &Plan, issuance: &Issuance) -> Write {
    Write::IssueVouchers(api::IssueVouchersRequest {
        request_id: request_id(),
        enterprise_number: plan.companies[issuance.company].enterprise_number.clone(),
        voucher_type: voucher_type_to_proto(issuance.voucher_type) as i32,
        quantity: issuance.quantity,
        paid_amount_eur: encode_eur(
            plan.employer_share_eur * rust_decimal::Decimal::from(issuance.quantity),
        ),
        payment_date: encode_date(issuance.payment_date),
        payment_reference: issuance.payment_reference.clone(),
    })
}

/// The redemption of the plan's number `index`.
fn redemption_write(plan: &Plan, index: usize) -> Write {
    let redemption = &plan.redemptions[index];
    let worker = &plan.workers[redemption.worker];
    Write::RedeemHours {
        provider: redemption.provider,
        worker: redemption.worker,
        request: api::RedeemHoursRequest {
            request_id: request_id(),
            provider_id: plan.providers[redemption.provider].id.clone(),
            module_id: plan.modules[redemption.module].id.clone(),
            enterprise_number: plan.companies[redemption.company].enterprise_number.clone(),
            national_number: worker.national_number.clone(),
            trainee_status: trainee_status_to_proto(worker.trainee_status) as i32,
            voucher_type: voucher_type_to_proto(redemption.voucher_type) as i32,
            hours: redemption.hours.to_string(),
            training_date: encode_date(redemption.training_date),
            // The simulated years are before the policy's `usage_code_required_from`.
            usage_code: String::new(),
        },
    }
}

/// The reversal of the redemption of the plan's number `index`, sent as `write`; none when the
/// plan does not reverse it.
fn reversal_write(plan: &Plan, index: usize, write: &Write) -> Option<Write> {
    let Write::RedeemHours {
        provider, request, ..
    } = write
    else {
        return None;
    };
    let reversal = plan.redemptions[index].reversal?;
    Some(Write::ReverseRedemption {
        provider: *provider,
        request: api::ReverseRedemptionRequest {
            request_id: request_id(),
            provider_id: request.provider_id.clone(),
            redemption_id: request.request_id.clone(),
            reason: reversal.reason.to_owned(),
            reversed_on: encode_date(reversal.reversed_on),
        },
    })
}
