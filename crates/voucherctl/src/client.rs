//! Makes one call: connect, attach the bearer token, send the planned request, and sort the
//! outcome into an [`Answer`] or a [`Failure`].

use std::time::Duration;

use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

use crate::cli::{BearerToken, Call};
use crate::failure::Failure;
use crate::output::Answer;

/// How long to wait for the connection: the server is on loopback, where a connection takes
/// well under a millisecond, so five seconds only ever waits for a server that is not there.
const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// How long to wait for an answer. A write is acknowledged after one group-committed flush and
/// the largest read is one page of 1 000 events; thirty seconds covers a loaded disk. A write
/// that times out may still have been recorded: retry it with the same `--request-id`.
const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Sends `call` to the server at `endpoint`, with `token` as the bearer token.
pub async fn execute(
    endpoint: &Endpoint,
    token: Option<&BearerToken>,
    call: Call,
) -> Result<Answer, Failure> {
    let server = endpoint.uri().to_string();
    let channel = endpoint
        .clone()
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
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
        Call::ReadEvents(request) => AuditServiceClient::new(channel)
            .read_events(authorize(request, token))
            .await
            .map(|response| Answer::Events(response.into_inner())),
        Call::GetHead(request) => AuditServiceClient::new(channel)
            .get_head(authorize(request, token))
            .await
            .map(|response| Answer::Head(response.into_inner())),
    };
    answer.map_err(|status: Status| Failure::from_status(status, &server))
}

fn write(response: Response<ledger_proto::v1::WriteResponse>) -> Answer {
    Answer::Write(response.into_inner())
}

/// The request with `authorization: Bearer <token>` when a token was given; without one the
/// server answers UNAUTHENTICATED, which is shown like any refusal.
fn authorize<T>(message: T, token: Option<&BearerToken>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", token.header_value().clone());
    }
    request
}
