//! Sends a [`Plan`] to a running server over gRPC, phase by phase, and reads the year back.
//!
//! Within a phase, requests go out concurrently, at most [`IN_FLIGHT_MAX`] at a time; a phase
//! ends when all its requests are answered. The server runs on a clock the driver sets before
//! each phase to the simulated day (`serve_with_clock`): the ledger refuses dates after today
//! and filings past a code's grace, so the simulated year is driven as it would have been
//! lived. The plan is built so that any order within a phase passes the rules, so any refusal
//! is a bug of the planner (or of the server): the simulation stops at once and names the
//! request. Only UNAVAILABLE is retried, with the same request id,
//! which the ledger answers idempotently.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use ledger_codec::{
    encode_date, encode_eur, legal_form_to_proto, region_to_proto, theme_to_proto,
    trainee_status_to_proto, voucher_type_to_proto,
};
use ledger_domain::decide::EXPIRY_EVENTS_MAX;
use ledger_domain::Region;
use ledger_engine::ManualClock;
use ledger_proto::event::v1::event::Payload;
use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

use super::plan::{Issuance, Plan, UsageCodeOrder, PAYMENT_DAY_LAST};
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
/// The hour (UTC) the simulated clock reads on a simulated day: the ledger's business day is
/// the date two hours east of UTC, so any hour below 22 is that day.
const SIMULATED_HOUR_UTC: u32 = 10;

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
    /// Ordered by the operator on the company's behalf (the simulation holds no company
    /// tokens; a company principal would send the same request).
    OrderUsageCode(api::OrderUsageCodeRequest),
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
            Write::OrderUsageCode(r) => format!(
                "order_usage_code of {} h of {} vouchers of {} for {} from {} to {} (request {})",
                r.hours,
                voucher_type_name(r.voucher_type),
                r.enterprise_number,
                r.provider_id,
                r.period_from,
                r.period_until,
                r.request_id
            ),
            Write::RedeemHours {
                worker, request: r, ..
            } => format!(
                "redeem_hours of {} h of {} vouchers by {} in {} for worker #{worker} of {} on {} \
                 against code {} (request {})",
                r.hours,
                voucher_type_name(r.voucher_type),
                r.provider_id,
                r.module_id,
                r.enterprise_number,
                r.training_date,
                r.usage_code,
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
            Write::OrderUsageCode(r) => CompanyServiceClient::new(channel)
                .order_usage_code(authorized(r.clone(), &tokens.operator))
                .await
                .map(|response| response.map(|answer| answer.write.unwrap_or_default())),
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

/// Sends `writes` with at most [`IN_FLIGHT_MAX`] in flight; their answers, in their order.
async fn phase(
    client: &Arc<Client>,
    writes: Vec<Write>,
) -> Result<Vec<api::WriteResponse>, SimulateError> {
    let mut in_flight = JoinSet::new();
    let mut answers: Vec<Option<api::WriteResponse>> = Vec::with_capacity(writes.len());
    answers.resize_with(writes.len(), || None);
    for (index, write) in writes.into_iter().enumerate() {
        if in_flight.len() >= IN_FLIGHT_MAX {
            joined(in_flight.join_next().await, &mut answers)?;
        }
        let client = Arc::clone(client);
        in_flight.spawn(async move { (index, write.send_until_answered(&client).await) });
    }
    while let Some(result) = in_flight.join_next().await {
        joined(Some(result), &mut answers)?;
    }
    Ok(answers.into_iter().map(Option::unwrap_or_default).collect())
}

type Answered = (usize, Result<api::WriteResponse, SimulateError>);

fn joined(
    result: Option<Result<Answered, tokio::task::JoinError>>,
    answers: &mut [Option<api::WriteResponse>],
) -> Result<(), SimulateError> {
    match result {
        Some(Ok((index, Ok(response)))) => {
            if let Some(answer) = answers.get_mut(index) {
                *answer = Some(response);
            }
            Ok(())
        }
        Some(Ok((_, Err(error)))) => Err(error),
        Some(Err(error)) => Err(SimulateError::Task(error.to_string())),
        None => Ok(()),
    }
}

fn events_recorded(answers: &[api::WriteResponse]) -> u64 {
    answers
        .iter()
        .filter_map(|answer| answer.receipt.as_ref())
        .map(|receipt| u64::from(receipt.event_count))
        .sum()
}

/// The code an accepted order recorded, in its stored form (what a filing may name).
fn ordered_code(answer: &api::WriteResponse) -> Option<String> {
    answer.events.iter().find_map(|event| match &event.payload {
        Some(Payload::UsageCodeOrdered(ordered)) => Some(ordered.code.clone()),
        _ => None,
    })
}

/// `day` at [`SIMULATED_HOUR_UTC`], as the simulated clock reads it.
fn simulated_now(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_hms_opt(SIMULATED_HOUR_UTC, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

/// Sends the whole plan, then reads the year's summary, budget and the log's head. With
/// `catalogue` false, the plan's providers and modules are approved on the ledger already (an
/// earlier simulated year did it) and are not sent again.
pub async fn drive(
    plan: &Plan,
    channel: Channel,
    tokens: Tokens,
    clock: &ManualClock,
    catalogue: bool,
) -> Result<Outcome, SimulateError> {
    let mut driver = Driver {
        client: Arc::new(Client { channel, tokens }),
        clock,
        requests: 0,
        codes: vec![None; plan.usage_codes.len()],
    };
    // The year opens on 1 January: the budget and the catalogue (approvals may take effect
    // later; they are not refused for it). Registrations go out in the month of their date.
    driver.today(ymd_of(plan.year, 1, 1));
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
    for month in 1..=12 {
        driver.month(plan, month).await?;
    }
    driver.today(plan.expire_as_of);
    driver.expire(plan).await?;
    driver.read_back(plan.year).await
}

fn ymd_of(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// Sends the phases of a plan and counts the requests sent.
struct Driver<'a> {
    client: Arc<Client>,
    clock: &'a ManualClock,
    requests: u64,
    /// The code each of the plan's usage codes got, once ordered.
    codes: Vec<Option<String>>,
}

impl Driver<'_> {
    /// Sets the server's clock to `day`: what follows is sent on that day.
    fn today(&self, day: NaiveDate) {
        self.clock.set(simulated_now(day));
    }

    /// One phase: `writes` in any order; the number of events recorded.
    async fn run(&mut self, writes: Vec<Write>) -> Result<u64, SimulateError> {
        Ok(events_recorded(&self.answers(writes).await?))
    }

    /// One phase: `writes` in any order; their answers, in their order.
    async fn answers(
        &mut self,
        writes: Vec<Write>,
    ) -> Result<Vec<api::WriteResponse>, SimulateError> {
        self.requests += writes.len() as u64;
        phase(&self.client, writes).await
    }

    /// Orders the codes of `indexes` (in the plan's `usage_codes`) and keeps what each got.
    async fn order(&mut self, plan: &Plan, indexes: Vec<usize>) -> Result<(), SimulateError> {
        let writes = indexes
            .iter()
            .map(|index| usage_code_write(plan, &plan.usage_codes[*index]))
            .collect();
        let answers = self.answers(writes).await?;
        for (index, answer) in indexes.into_iter().zip(&answers) {
            let code = ordered_code(answer).ok_or_else(|| {
                SimulateError::Task(format!("the order of usage code #{index} recorded no code"))
            })?;
            self.codes[index] = Some(code);
        }
        Ok(())
    }

    /// The month's phases, in the order the plan's promises need. On the 4th: the
    /// registrations dated by then, the issuances (paid on the 2nd to the 4th), the usage codes
    /// of the month's regular redemptions, then those of its extra ones (so that, as without
    /// codes, the regular trainings hold the oldest vouchers and the extra ones the next). On
    /// the month's last day: the regular redemptions, the extra ones, their reversals, the
    /// payouts, and the registrations dated after the 4th (none pays before next month).
    async fn month(&mut self, plan: &Plan, month: u32) -> Result<(), SimulateError> {
        let in_month = |date: chrono::NaiveDate| date.month() == month;
        let fourth = ymd_of(plan.year, month, PAYMENT_DAY_LAST);
        self.today(fourth);
        self.run(company_registrations(plan, |day| {
            in_month(day) && day <= fourth
        }))
        .await?;
        let issued = self
            .run(
                plan.issuances
                    .iter()
                    .filter(|issuance| in_month(issuance.payment_date))
                    .map(|issuance| issuance_write(plan, issuance))
                    .collect(),
            )
            .await?;
        let codes_of_month = |extra: bool| -> Vec<usize> {
            (0..plan.usage_codes.len())
                .filter(|index| {
                    let code = &plan.usage_codes[*index];
                    in_month(code.period_from) && code.extra == extra
                })
                .collect()
        };
        let regular_codes = codes_of_month(false);
        let extra_codes = codes_of_month(true);
        let codes_count = regular_codes.len() + extra_codes.len();
        self.order(plan, regular_codes).await?;
        self.order(plan, extra_codes).await?;
        self.today(last_day_of(fourth));
        let of_month: Vec<usize> = (0..plan.redemptions.len())
            .filter(|index| in_month(plan.redemptions[*index].training_date))
            .collect();
        let regular: Vec<Write> = of_month
            .iter()
            .filter(|index| plan.redemptions[**index].reversal.is_none())
            .map(|index| redemption_write(plan, *index, &self.codes))
            .collect::<Result<_, _>>()?;
        let regular_count = regular.len();
        self.run(regular).await?;
        // The extra redemptions go after the month's regular ones (they use only vouchers
        // those leave free), and are reversed before the month's payouts.
        let extras: Vec<(usize, Write)> = of_month
            .iter()
            .filter(|index| plan.redemptions[**index].reversal.is_some())
            .map(|index| Ok((*index, redemption_write(plan, *index, &self.codes)?)))
            .collect::<Result<_, SimulateError>>()?;
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
        self.run(company_registrations(plan, |day| {
            in_month(day) && day > fourth
        }))
        .await?;
        eprintln!(
            "{year}-{month:02}: {issued} issuances, {codes_count} usage codes, {regular_count} \
             redemptions, {reversal_count} redeemed and reversed, {payouts} payouts",
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

/// The last day of `day`'s month.
fn last_day_of(day: NaiveDate) -> NaiveDate {
    ledger_domain::policy::last_day_of_month_after(day, 0)
}

/// The registrations dated on a day `sent_on` accepts.
fn company_registrations(plan: &Plan, sent_on: impl Fn(NaiveDate) -> bool) -> Vec<Write> {
    plan.companies
        .iter()
        .filter(|company| sent_on(company.registered_on))
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

fn usage_code_write(plan: &Plan, code: &UsageCodeOrder) -> Write {
    Write::OrderUsageCode(api::OrderUsageCodeRequest {
        request_id: request_id(),
        enterprise_number: plan.companies[code.company].enterprise_number.clone(),
        provider_id: plan.providers[code.provider].id.clone(),
        module_id: String::new(),
        voucher_type: voucher_type_to_proto(code.voucher_type) as i32,
        hours: code.hours.to_string(),
        period_from: encode_date(code.period_from),
        period_until: encode_date(code.period_until),
    })
}

/// The redemption of the plan's number `index`, against the code ordered for it.
fn redemption_write(
    plan: &Plan,
    index: usize,
    codes: &[Option<String>],
) -> Result<Write, SimulateError> {
    let redemption = &plan.redemptions[index];
    let worker = &plan.workers[redemption.worker];
    let usage_code = plan
        .redemption_codes
        .get(index)
        .and_then(|code| codes.get(*code)?.clone())
        .ok_or_else(|| {
            SimulateError::Task(format!(
                "redemption #{index} is sent before its usage code was ordered"
            ))
        })?;
    Ok(Write::RedeemHours {
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
            usage_code,
        },
    })
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
