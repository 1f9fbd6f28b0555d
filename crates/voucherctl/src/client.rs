//! Makes one call: connect, attach the bearer token, send the planned request, and sort the
//! outcome into an [`Answer`] or a [`Failure`].

use std::time::Duration;

use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use crate::cli::{BearerToken, Call};
use crate::failure::Failure;
use crate::output::{self, Answer};

/// How long to wait for the connection: the server is on loopback, where a connection takes
/// well under a millisecond, so five seconds only ever waits for a server that is not there.
pub(crate) const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// How long to wait for an answer. A write is acknowledged after one group-committed flush and
/// the largest read is one page of 1 000 events; thirty seconds covers a loaded disk. A write
/// that times out may still have been recorded: retry it with the same `--request-id`. For a
/// stream (`events`, `subscribe`) it bounds the wait for the call to start, not the stream.
pub(crate) const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// How long to wait for a backup: the server copies the whole store, at disk speed, before it
/// answers; an hour covers tens of gigabytes.
const BACKUP_TIMEOUT_MS: u64 = 3_600_000;

/// Sends `call` to the server at `endpoint`, with `token` as the bearer token.
pub async fn execute(
    endpoint: &Endpoint,
    token: Option<&BearerToken>,
    call: Call,
    as_json: bool,
) -> Result<Answer, Failure> {
    let server = endpoint.uri().to_string();
    let timeout_ms = match call {
        Call::Backup(_) => BACKUP_TIMEOUT_MS,
        _ => REQUEST_TIMEOUT_MS,
    };
    let channel = endpoint
        .clone()
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(timeout_ms))
        .connect()
        .await
        .map_err(|error| Failure::unreachable(&server, &error))?;

    let answer = match call {
        Call::OpenBudget(request) => AdministrationServiceClient::new(channel)
            .open_budget(authorize(request, token))
            .await
            .map(write),
        Call::AdjustBudget(request) => AdministrationServiceClient::new(channel)
            .adjust_budget(authorize(request, token))
            .await
            .map(write),
        Call::ApproveProvider(request) => AdministrationServiceClient::new(channel)
            .approve_provider(authorize(request, token))
            .await
            .map(write),
        Call::WithdrawProvider(request) => AdministrationServiceClient::new(channel)
            .withdraw_provider(authorize(request, token))
            .await
            .map(write),
        Call::ApproveModule(request) => AdministrationServiceClient::new(channel)
            .approve_module(authorize(request, token))
            .await
            .map(write),
        Call::WithdrawModule(request) => AdministrationServiceClient::new(channel)
            .withdraw_module(authorize(request, token))
            .await
            .map(write),
        Call::RegisterCompany(request) => OperatorServiceClient::new(channel)
            .register_company(authorize(request, token))
            .await
            .map(write),
        Call::IssueVouchers(request) => OperatorServiceClient::new(channel)
            .issue_vouchers(authorize(request, token))
            .await
            .map(write),
        Call::ExpireVouchers(request) => OperatorServiceClient::new(channel)
            .expire_vouchers(authorize(request, token))
            .await
            .map(write),
        Call::RecordPayout(request) => OperatorServiceClient::new(channel)
            .record_payout(authorize(request, token))
            .await
            .map(write),
        Call::GetWallet(request) => OperatorServiceClient::new(channel)
            .get_wallet(authorize(request, token))
            .await
            .map(|response| Answer::Wallet(response.into_inner())),
        Call::RedeemHours(request) => ProviderServiceClient::new(channel)
            .redeem_hours(authorize(request, token))
            .await
            .map(write),
        Call::ReverseRedemption(request) => ProviderServiceClient::new(channel)
            .reverse_redemption(authorize(request, token))
            .await
            .map(write),
        Call::OrderUsageCode(request) => CompanyServiceClient::new(channel)
            .order_usage_code(authorize(request, token))
            .await
            .map(|response| Answer::UsageCodeOrdered(response.into_inner())),
        Call::CancelUsageCode(request) => CompanyServiceClient::new(channel)
            .cancel_usage_code(authorize(request, token))
            .await
            .map(write),
        Call::GetUsageCode(request) => CompanyServiceClient::new(channel)
            .get_usage_code(authorize(request, token))
            .await
            .map(|response| Answer::UsageCode(response.into_inner())),
        Call::ListUsageCodes(request) => CompanyServiceClient::new(channel)
            .list_usage_codes(authorize(request, token))
            .await
            .map(|response| Answer::UsageCodes(response.into_inner())),
        Call::GetStatement(request) => ProviderServiceClient::new(channel)
            .get_statement(authorize(request, token))
            .await
            .map(|response| Answer::Statement(response.into_inner())),
        Call::GetBudget(request) => ReportServiceClient::new(channel)
            .get_budget(authorize(request, token))
            .await
            .map(|response| Answer::Budget(response.into_inner())),
        Call::GetYearSummary(request) => ReportServiceClient::new(channel)
            .get_year_summary(authorize(request, token))
            .await
            .map(|response| Answer::YearSummary(response.into_inner())),
        Call::GetCompanies(request) => ReportServiceClient::new(channel)
            .get_companies(authorize(request, token))
            .await
            .map(|response| Answer::Companies(response.into_inner())),
        Call::GetTrainingHours(request) => ReportServiceClient::new(channel)
            .get_training_hours(authorize(request, token))
            .await
            .map(|response| Answer::TrainingHours(response.into_inner())),
        Call::GetTrialBalance(request) => ReportServiceClient::new(channel)
            .get_trial_balance(authorize(request, token))
            .await
            .map(|response| Answer::TrialBalance(response.into_inner())),
        Call::ReadEvents(request) => {
            read_page(AuditServiceClient::new(channel), authorize(request, token)).await
        }
        Call::GetHead(request) => AuditServiceClient::new(channel)
            .get_head(authorize(request, token))
            .await
            .map(|response| Answer::Head(response.into_inner())),
        Call::Backup(request) => AuditServiceClient::new(channel)
            .backup(authorize(request, token))
            .await
            .map(|response| Answer::Backup(response.into_inner())),
        Call::List { call, all } => crate::queries::execute(channel, token, call, all)
            .await
            .map(Answer::List),
        Call::Subscribe { request, until } => {
            return subscribe(channel, &server, token, request, until, as_json).await;
        }
    };
    answer.map_err(|status: Status| Failure::from_status(status, &server))
}

/// Every event of one `ReadEvents` page, as the server streams them.
async fn read_page(
    mut client: AuditServiceClient<Channel>,
    request: Request<api::ReadEventsRequest>,
) -> Result<Answer, Status> {
    let mut stream = client.read_events(request).await?.into_inner();
    let mut events = Vec::new();
    while let Some(audit_event) = stream.message().await? {
        events.push(audit_event);
    }
    Ok(Answer::Events(events))
}

/// Follows the log, printing each message as it comes (see `output::subscription_line`), until
/// `until` is passed, the server ends the call, or the process is interrupted. When the server
/// says the subscriber fell behind, subscribes again from where it says to resume.
async fn subscribe(
    channel: Channel,
    server: &str,
    token: Option<&BearerToken>,
    mut request: api::SubscribeRequest,
    until: Option<u64>,
    as_json: bool,
) -> Result<Answer, Failure> {
    use std::io::Write;
    let failure = |status: Status| Failure::from_status(status, server);
    loop {
        let mut stream = AuditServiceClient::new(channel.clone())
            .subscribe(authorize(request.clone(), token))
            .await
            .map_err(failure)?
            .into_inner();
        let ended = loop {
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break None,
                Err(status) => break Some(status),
            };
            let passed = match &message.message {
                Some(api::subscribe_response::Message::Event(audit_event)) => audit_event
                    .event
                    .as_ref()
                    .map_or(0, |event| event.position + 1),
                Some(api::subscribe_response::Message::Heartbeat(heartbeat)) => {
                    if !as_json {
                        let head = heartbeat.head.clone().unwrap_or_default();
                        eprintln!(
                            "heartbeat: head of the log at position {}, followed up to position {}",
                            head.position,
                            heartbeat.next_position.saturating_sub(1)
                        );
                    }
                    heartbeat.next_position
                }
                None => 0,
            };
            if let Some(line) = output::subscription_line(&message, as_json) {
                let mut stdout = std::io::stdout().lock();
                if stdout
                    .write_all(line.as_bytes())
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    // Nobody reads the output any more (a closed pipe): stop quietly.
                    return Ok(Answer::Done);
                }
            }
            request.from_position = request.from_position.max(passed);
            if until.is_some_and(|until| passed > until) {
                return Ok(Answer::Done);
            }
        };
        match ended {
            Some(status) if resume_position(&status).is_some() => {
                let resume_from = resume_position(&status).unwrap_or(request.from_position);
                eprintln!(
                    "the server says this subscriber fell behind; subscribing again from position {resume_from}"
                );
                request.from_position = resume_from;
            }
            Some(status) => return Err(failure(status)),
            None => return Ok(Answer::Done),
        }
    }
}

/// Where to resume after the server ended a subscription as too slow.
fn resume_position(status: &Status) -> Option<u64> {
    let info = status.get_details_error_info()?;
    if info.reason != "SUBSCRIBER_TOO_SLOW" {
        return None;
    }
    info.metadata.get("resume_from_position")?.parse().ok()
}

fn write(response: Response<ledger_proto::v1::WriteResponse>) -> Answer {
    Answer::Write(response.into_inner())
}

/// The request with `authorization: Bearer <token>` when a token was given; without one the
/// server answers UNAUTHENTICATED, which is shown like any refusal.
pub(crate) fn authorize<T>(message: T, token: Option<&BearerToken>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", token.header_value().clone());
    }
    request
}
