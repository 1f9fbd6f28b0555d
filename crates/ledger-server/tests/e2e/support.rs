//! The harness: the real `voucher-ledger` binary, started with the demo configuration on
//! 127.0.0.1:0 and a data folder of its own, a client per caller, and the assertions every test
//! makes on a refusal (code, `ErrorInfo` reason and domain, `BadRequest` fields).
//!
//! It never reaches into the server's crates: what it knows of the server is the command line,
//! the `voucher-ledger listening on ADDR` line and the gRPC API, as a deployment script would.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitStatus;

use ledger_testkit::requests::{COMPANY_A, COMPANY_B};
use ledger_testkit::{read_log, Process, STOP_WAIT};

use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::query_service_client::QueryServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use ledger_proto::v1::{self as api, GetHeadRequest, Head};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::{FieldViolation, StatusExt};

pub use ledger_testkit::bearer as with_token;
/// The demo configuration's bearer tokens (`config/demo.toml`).
pub use ledger_testkit::tokens::{
    ADMINISTRATION, AUDITOR, OPERATOR, PROVIDER_AG_0012, PROVIDER_AG_0099,
};
/// `company:0403019261` (COMPANY_A) and `company:0431150350` (COMPANY_B).
pub use ledger_testkit::tokens::{
    COMPANY_0403019261 as COMPANY_A_TOKEN, COMPANY_0431150350 as COMPANY_B_TOKEN,
};
/// The starting state of a ledger, written through the API ([`Server::given`]).
pub use ledger_testkit::world::{world, World, MODULE};

/// The `ErrorInfo.domain` of every error of the API.
pub const ERROR_DOMAIN: &str = "voucherledger.v1";

/// A running `voucher-ledger serve --demo` process. Dropping it kills the process if it still
/// runs; [`Server::stop`] stops it the way an operator would, with SIGTERM.
#[derive(Debug)]
pub struct Server {
    // Declared before `home`: the process is killed before its folder is removed.
    process: Process,
    /// Holds `data/` (the store) and `server-N.log` (the stderr of the N-th start). `None` only
    /// once `stop` has handed it back.
    home: Option<TempDir>,
    generation: u32,
    channel: Channel,
}

impl Server {
    /// Starts a server on a fresh, empty data folder.
    pub async fn start() -> Server {
        let home = tempfile::Builder::new()
            .prefix("voucher-ledger-e2e-")
            .tempdir()
            .expect("a temporary folder for the server");
        Server::start_in(home, 1).await
    }

    /// Starts a server on a fresh, empty data folder and writes `world` to it.
    pub async fn given(world: World) -> Server {
        let server = Server::start().await;
        world.write(&server.channel).await;
        server
    }

    /// Starts a server on a fresh data folder with the policy table `policy` instead of the
    /// repository's.
    pub async fn start_with_policy(policy: &str) -> Server {
        let home = tempfile::Builder::new()
            .prefix("voucher-ledger-e2e-")
            .tempdir()
            .expect("a temporary folder for the server");
        std::fs::write(home.path().join("policy.toml"), policy).expect("the policy is written");
        Server::start_in(home, 1).await
    }

    /// Starts a server on `home/data`, which may hold a store (a backup, for one).
    pub async fn start_on(home: TempDir) -> Server {
        Server::start_in(home, 1).await
    }

    /// Starts a server on `home/data`, which may hold the store of an earlier run.
    async fn start_in(home: TempDir, generation: u32) -> Server {
        let log_path = home.path().join(format!("server-{generation}.log"));
        // A test's own policy table (`start_with_policy`), or the repository's.
        let own_policy = home.path().join("policy.toml");
        let policy = if own_policy.exists() {
            own_policy
        } else {
            ledger_testkit::policy_file()
        };
        let mut command = ledger_testkit::command(
            env!("CARGO_BIN_EXE_voucher-ledger"),
            &["serve", "--demo", "--listen", "127.0.0.1:0"],
        );
        command
            .arg("--data")
            .arg(home.path().join("data"))
            .env("VOUCHER_LEDGER__POLICY_FILE", policy)
            .current_dir(home.path());
        let process = Process::started(&mut command, &log_path).await;
        let channel = Channel::from_shared(process.uri())
            .expect("the printed address makes a valid uri")
            .connect()
            .await
            .expect("the server accepts a connection on the address it printed");
        Server {
            process,
            home: Some(home),
            generation,
            channel,
        }
    }

    /// A client that sends `token` as its bearer token.
    pub fn client(&self, token: &str) -> Client {
        Client {
            channel: self.channel.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// A client that sends no `authorization` metadata at all.
    pub fn client_without_token(&self) -> Client {
        Client {
            channel: self.channel.clone(),
            token: None,
        }
    }

    /// A fresh connection, for the standard services (health, reflection), which need no token.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The head of the log, as an auditor sees it.
    pub async fn head(&self) -> Head {
        self.client(AUDITOR)
            .get_head(GetHeadRequest {})
            .await
            .expect("an auditor may read the head")
    }

    /// Sends SIGTERM, as systemd or an operator would.
    pub fn send_sigterm(&self) {
        self.process.send_sigterm();
    }

    /// Waits for the process to exit after [`Server::send_sigterm`].
    pub async fn wait_for_exit(&mut self) -> ExitStatus {
        match self.process.wait_for_exit(STOP_WAIT).await {
            Some(status) => status,
            None => panic!(
                "voucher-ledger still runs {STOP_WAIT:?} after SIGTERM; its stderr:\n{}",
                self.log()
            ),
        }
    }

    /// Stops the server with SIGTERM, checks that it exits with status 0, and hands back its
    /// folder for a restart.
    pub async fn stop(mut self) -> StoppedServer {
        self.send_sigterm();
        let status = self.wait_for_exit().await;
        assert!(
            status.success(),
            "voucher-ledger exited with {status} after SIGTERM; its stderr:\n{}",
            self.log()
        );
        self.into_stopped()
    }

    /// The folder of a server that has exited, for a restart.
    pub fn into_stopped(mut self) -> StoppedServer {
        assert!(self.process.try_wait().is_some(), "the server still runs");
        StoppedServer {
            home: self.home.take().expect("a server owns its folder"),
            generation: self.generation,
        }
    }

    /// Stops the server (status 0 checked) and starts it again on the same data.
    pub async fn restart(self) -> Server {
        self.stop().await.start_again().await
    }

    /// What the server has written to stderr so far, in this start.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// The folder of a server stopped cleanly, ready to be started again.
#[derive(Debug)]
pub struct StoppedServer {
    home: TempDir,
    generation: u32,
}

impl StoppedServer {
    pub async fn start_again(self) -> Server {
        Server::start_in(self.home, self.generation + 1).await
    }

    /// Everything the server wrote to stderr in its last run, up to its exit.
    pub fn log(&self) -> String {
        read_log(
            &self
                .home
                .path()
                .join(format!("server-{}.log", self.generation)),
        )
    }

    /// The folder of the store.
    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }
}

/// One caller of the six services: a connection and the token it sends, if any.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    token: Option<String>,
}

impl Client {
    fn request<T>(&self, message: T) -> Request<T> {
        match &self.token {
            Some(token) => with_token(message, token),
            None => Request::new(message),
        }
    }
}

/// One method per RPC of the API, named as in the generated clients, answering the response
/// message itself.
macro_rules! rpcs {
    ($($client:ident :: $method:ident($request:ty) -> $response:ty;)*) => {
        impl Client {
            $(
                pub async fn $method(&self, message: $request) -> Result<$response, Status> {
                    $client::new(self.channel.clone())
                        .$method(self.request(message))
                        .await
                        .map(tonic::Response::into_inner)
                }
            )*
        }
    };
}

rpcs! {
    AdministrationServiceClient::open_budget(api::OpenBudgetRequest) -> api::WriteResponse;
    AdministrationServiceClient::adjust_budget(api::AdjustBudgetRequest) -> api::WriteResponse;
    AdministrationServiceClient::approve_provider(api::ApproveProviderRequest) -> api::WriteResponse;
    AdministrationServiceClient::withdraw_provider(api::WithdrawProviderRequest) -> api::WriteResponse;
    AdministrationServiceClient::approve_module(api::ApproveModuleRequest) -> api::WriteResponse;
    AdministrationServiceClient::withdraw_module(api::WithdrawModuleRequest) -> api::WriteResponse;
    OperatorServiceClient::register_company(api::RegisterCompanyRequest) -> api::WriteResponse;
    OperatorServiceClient::issue_vouchers(api::IssueVouchersRequest) -> api::WriteResponse;
    OperatorServiceClient::issue_vouchers_batch(api::IssueVouchersBatchRequest) -> api::BatchWriteResponse;
    OperatorServiceClient::expire_vouchers(api::ExpireVouchersRequest) -> api::WriteResponse;
    OperatorServiceClient::record_payout(api::RecordPayoutRequest) -> api::WriteResponse;
    OperatorServiceClient::get_wallet(api::GetWalletRequest) -> api::Wallet;
    ProviderServiceClient::redeem_hours(api::RedeemHoursRequest) -> api::WriteResponse;
    ProviderServiceClient::redeem_hours_batch(api::RedeemHoursBatchRequest) -> api::BatchWriteResponse;
    ProviderServiceClient::reverse_redemption(api::ReverseRedemptionRequest) -> api::WriteResponse;
    ProviderServiceClient::get_statement(api::GetStatementRequest) -> api::Statement;
    ReportServiceClient::get_budget(api::GetBudgetRequest) -> api::Budget;
    ReportServiceClient::get_year_summary(api::GetYearSummaryRequest) -> api::YearSummary;
    ReportServiceClient::get_companies(api::GetCompaniesRequest) -> api::CompaniesReport;
    ReportServiceClient::get_training_hours(api::GetTrainingHoursRequest) -> api::TrainingHours;
    ReportServiceClient::get_trial_balance(api::GetTrialBalanceRequest) -> api::TrialBalance;
    AuditServiceClient::get_head(api::GetHeadRequest) -> api::Head;
    AuditServiceClient::backup(api::BackupRequest) -> api::BackupResponse;
    OperatorServiceClient::register_companies_batch(api::RegisterCompaniesBatchRequest) -> api::BatchWriteResponse;
    OperatorServiceClient::record_payouts_batch(api::RecordPayoutsBatchRequest) -> api::BatchWriteResponse;
    ProviderServiceClient::reverse_redemptions_batch(api::ReverseRedemptionsBatchRequest) -> api::BatchWriteResponse;
    QueryServiceClient::list_providers(api::ListProvidersRequest) -> api::ListProvidersResponse;
    QueryServiceClient::list_modules(api::ListModulesRequest) -> api::ListModulesResponse;
    QueryServiceClient::list_companies(api::ListCompaniesRequest) -> api::ListCompaniesResponse;
    QueryServiceClient::list_wallet_batches(api::ListWalletBatchesRequest) -> api::ListWalletBatchesResponse;
    QueryServiceClient::list_redemptions(api::ListRedemptionsRequest) -> api::ListEventsResponse;
    QueryServiceClient::list_payouts(api::ListPayoutsRequest) -> api::ListEventsResponse;
    CompanyServiceClient::order_usage_code(api::OrderUsageCodeRequest) -> api::OrderUsageCodeResponse;
    CompanyServiceClient::order_usage_codes_batch(api::OrderUsageCodesBatchRequest) -> api::BatchWriteResponse;
    CompanyServiceClient::list_company_redemptions(api::ListCompanyRedemptionsRequest) -> api::ListEventsResponse;
    CompanyServiceClient::cancel_usage_code(api::CancelUsageCodeRequest) -> api::WriteResponse;
    CompanyServiceClient::get_usage_code(api::GetUsageCodeRequest) -> api::UsageCodeView;
    CompanyServiceClient::list_usage_codes(api::ListUsageCodesRequest) -> api::UsageCodeList;
}

impl Client {
    /// `CompanyService/GetWallet` (the operator's `get_wallet` has the name).
    pub async fn company_get_wallet(
        &self,
        message: api::GetWalletRequest,
    ) -> Result<api::Wallet, Status> {
        CompanyServiceClient::new(self.channel.clone())
            .get_wallet(self.request(message))
            .await
            .map(tonic::Response::into_inner)
    }
}

impl Client {
    /// One page of events, read to its end.
    pub async fn read_events(
        &self,
        message: api::ReadEventsRequest,
    ) -> Result<Vec<api::AuditEvent>, Status> {
        let mut page = AuditServiceClient::new(self.channel.clone())
            .read_events(self.request(message))
            .await?
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = page.message().await? {
            events.push(event);
        }
        Ok(events)
    }

    /// A live subscription, open until it is dropped or the server ends it.
    pub async fn subscribe(
        &self,
        message: api::SubscribeRequest,
    ) -> Result<tonic::Streaming<api::SubscribeResponse>, Status> {
        AuditServiceClient::new(self.channel.clone())
            .subscribe(self.request(message))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// The status of a call that must have been refused.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(result: Result<T, Status>) -> Status {
    match result {
        Ok(response) => panic!("expected a refusal, the call was accepted: {response:?}"),
        Err(status) => status,
    }
}

/// Checks that `status` has `code`, an `ErrorInfo` with `reason` in this API's domain, and
/// answers the `BadRequest` field violations it carries (none when it has no `BadRequest`).
#[track_caller]
pub fn assert_status(status: &Status, code: Code, reason: &str) -> Vec<FieldViolation> {
    assert_eq!(
        status.code(),
        code,
        "code of {status:?} (expected {code:?} {reason})"
    );
    let error_info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in {status:?}"));
    assert_eq!(error_info.reason, reason, "ErrorInfo.reason of {status:?}");
    assert_eq!(
        error_info.domain, ERROR_DOMAIN,
        "ErrorInfo.domain of {status:?}"
    );
    status
        .get_details_bad_request()
        .map(|bad_request| bad_request.field_violations)
        .unwrap_or_default()
}

/// Checks that `status` is INVALID_ARGUMENT with `reason`, and that its `BadRequest` names
/// `field`.
#[track_caller]
pub fn assert_invalid_field(status: &Status, reason: &str, field: &str) {
    let violations = assert_status(status, Code::InvalidArgument, reason);
    let fields: Vec<&str> = violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect();
    assert_eq!(fields, [field], "BadRequest field violations of {status:?}");
}

/// `Some(what is wrong)` unless `status` is INVALID_ARGUMENT with `reason` in this API's domain
/// and a BadRequest naming exactly `field` (no BadRequest when `field` is `None`). The
/// non-panicking form of [`assert_invalid_field`], for tables that report every failing row.
pub fn invalid_argument_problem(
    status: &Status,
    reason: &str,
    field: Option<&str>,
) -> Option<String> {
    let info = status.get_details_error_info();
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default();
    let found = (
        status.code(),
        info.as_ref().map(|info| info.reason.as_str()),
        info.as_ref().map(|info| info.domain.as_str()),
        fields.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let expected = (
        Code::InvalidArgument,
        Some(reason),
        Some(ERROR_DOMAIN),
        field.into_iter().collect::<Vec<_>>(),
    );
    (found != expected).then(|| format!("got {found:?}, expected {expected:?} ({status:?})"))
}

/// A call of any RPC, its answer shown as text when it is accepted: so one table can hold
/// calls of different RPCs.
pub type Call<'a> = Pin<Box<dyn Future<Output = Result<String, Status>> + 'a>>;

/// `future` as a [`Call`].
pub fn call<'a, T: Debug + 'a>(future: impl Future<Output = Result<T, Status>> + 'a) -> Call<'a> {
    Box::pin(async move { future.await.map(|response| format!("{response:?}")) })
}

/// `Some(what is wrong)` unless a status is the refusal a row expects.
pub type Check<'a> = Box<dyn Fn(&Status) -> Option<String> + 'a>;

/// One named row of a table of calls that must each be refused and write nothing.
pub struct Refusal<'a> {
    /// Says which row failed.
    pub name: String,
    pub call: Call<'a>,
    pub check: Check<'a>,
}

impl<'a> Refusal<'a> {
    pub fn new<T: Debug + 'a>(
        name: impl Into<String>,
        future: impl Future<Output = Result<T, Status>> + 'a,
        check: impl Fn(&Status) -> Option<String> + 'a,
    ) -> Refusal<'a> {
        Refusal {
            name: name.into(),
            call: call(future),
            check: Box::new(check),
        }
    }
}

/// Runs `rows` one after the other on `server`: each must be refused as its check expects,
/// and leave the head where it was. Answers every failure as `row name: what is wrong`, so a
/// test reports all the rows that fail, not only the first.
pub async fn refusal_failures(server: &Server, rows: Vec<Refusal<'_>>) -> Vec<String> {
    let mut failures = Vec::new();
    for row in rows {
        let head = server.head().await;
        let outcome = row.call.await;
        let head_after = server.head().await;
        let problem = match outcome {
            Ok(response) => Some(format!("accepted: {response}")),
            Err(status) => (row.check)(&status),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", row.name));
        }
        if head_after != head {
            failures.push(format!("{}: the head moved to {head_after:?}", row.name));
        }
    }
    failures
}

/// The requests a table of refusals changed, sent as they are: each is accepted. This shows
/// that every row was refused for the reason it names, not for the shape of the base request.
pub async fn assert_base_requests_accepted(
    server: &Server,
    redemption: api::RedeemHoursRequest,
    issuance: api::IssueVouchersRequest,
    registration: api::RegisterCompanyRequest,
) {
    let provider = server.client(PROVIDER_AG_0012);
    let operator = server.client(OPERATOR);
    provider
        .redeem_hours(redemption)
        .await
        .expect("the base redemption is accepted");
    operator
        .issue_vouchers(issuance)
        .await
        .expect("the base issuance is accepted");
    operator
        .register_company(registration)
        .await
        .expect("the base registration is accepted");
}

/// A batch item's refusal as a `tonic::Status` with the same details (so the checks of a
/// single call's status apply), or `None` for an accepted item.
pub fn item_status(result: &api::BatchItemResult) -> Option<Status> {
    match &result.result {
        Some(api::batch_item_result::Result::Refused(status)) => Some(Status::with_details(
            Code::from_i32(status.code),
            status.message.clone(),
            prost::Message::encode_to_vec(status).into(),
        )),
        _ => None,
    }
}

/// The status of a batch item that must have been refused.
#[track_caller]
pub fn refused_item(result: &api::BatchItemResult) -> Status {
    item_status(result).unwrap_or_else(|| {
        panic!(
            "item {} expected refused, got {:?}",
            result.request_id, result.result
        )
    })
}

/// The answer to a batch item that must have been accepted.
#[track_caller]
pub fn accepted_item(result: &api::BatchItemResult) -> &api::WriteResponse {
    match &result.result {
        Some(api::batch_item_result::Result::Accepted(response)) => response,
        other => panic!(
            "item {} expected accepted, got {other:?}",
            result.request_id
        ),
    }
}

/// A date as the API writes it, `YYYY-MM-DD`.
pub fn iso(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// `date`, or the 2nd of February of its year when earlier: `register_company` registers on the
/// 1st of February, and a payment is never before the registration. For tests whose dates
/// follow the server's clock (usage codes: a filing must fall within a code's grace of today).
pub fn after_registration(date: chrono::NaiveDate) -> chrono::NaiveDate {
    let second_of_february =
        chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&date), 2, 2).expect("a date");
    date.max(second_of_february)
}

/// The world of the usage-code tests whose dates follow the clock: budget of `paid`'s year,
/// AG-0012 approved since 2020 with its module `AG-0012-GEN`, companies A and B registered for
/// `paid`'s year, company A holding 10 vouchers paid on `paid`.
pub fn world_paid_on(paid: chrono::NaiveDate) -> World {
    let year = chrono::Datelike::year(&paid);
    World::default()
        .budget(year, "100000.00")
        .provider("AG-0012", "2020-01-01")
        .module("AG-0012-GEN", "AG-0012", "2020-01-01")
        .company(COMPANY_A, year)
        .company(COMPANY_B, year)
        .vouchers(COMPANY_A, 10, &iso(paid))
}
