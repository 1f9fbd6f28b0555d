//! Who may call what: every RPC of the six services with every role's token, without a token and
//! with an unknown one (docs/RULES.md §4.1); a provider acts and reads only as itself.

use std::path::Path;

use ledger_proto::v1::{
    BackupRequest, GetHeadRequest, IssueVouchersBatchRequest, ListCompaniesRequest,
    ListCompanyRedemptionsRequest, ListModulesRequest, ListPayoutsRequest, ListProvidersRequest,
    ListRedemptionsRequest, ListWalletBatchesRequest, OrderUsageCodesBatchRequest,
    ReadEventsRequest, RecordPayoutsBatchRequest, RedeemHoursBatchRequest,
    RegisterCompaniesBatchRequest, ReverseRedemptionsBatchRequest, SubscribeRequest,
};
use prost::Message;
use tonic::{Code, Status};

use crate::requests::*;
use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Administration,
    Operator,
    /// Provider AG-0012, asking as itself.
    Provider,
    Auditor,
    /// Company 0403019261 (COMPANY_A), asking as itself.
    Company,
    /// Company 0431150350, asking about COMPANY_A: another company.
    OtherCompany,
}

const ROLES: [Role; 6] = [
    Role::Administration,
    Role::Operator,
    Role::Provider,
    Role::Auditor,
    Role::Company,
    Role::OtherCompany,
];

impl Role {
    fn token(self) -> &'static str {
        match self {
            Role::Administration => ADMINISTRATION,
            Role::Operator => OPERATOR,
            Role::Provider => PROVIDER_AG_0012,
            Role::Auditor => AUDITOR,
            Role::Company => COMPANY_A_TOKEN,
            Role::OtherCompany => COMPANY_B_TOKEN,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    OpenBudget,
    AdjustBudget,
    ApproveProvider,
    WithdrawProvider,
    ApproveModule,
    WithdrawModule,
    RegisterCompany,
    IssueVouchers,
    IssueVouchersBatch,
    ExpireVouchers,
    RecordPayout,
    GetWallet,
    RedeemHours,
    RedeemHoursBatch,
    ReverseRedemption,
    GetStatement,
    GetBudget,
    GetYearSummary,
    GetCompanies,
    GetTrainingHours,
    GetTrialBalance,
    ReadEvents,
    Subscribe,
    GetHead,
    Backup,
    RegisterCompaniesBatch,
    RecordPayoutsBatch,
    ReverseRedemptionsBatch,
    ListProviders,
    ListModules,
    ListCompanies,
    ListWalletBatches,
    ListRedemptions,
    ListPayouts,
    OrderUsageCode,
    OrderUsageCodesBatch,
    ListCompanyRedemptions,
    CancelUsageCode,
    GetUsageCode,
    ListUsageCodes,
    GetCompanyWallet,
}

use Role::{Administration, Auditor, Company, Operator, OtherCompany, Provider};

/// The roles that may call each RPC: the call-level role check. Every other role is refused
/// the whole call with PERMISSION_DENIED; a role listed here may still be refused by a rule of
/// the scheme, or, in a batch call, item by item ([`ITEM_REFUSED`]).
const MAY_CALL: &[(Rpc, &[Role])] = &[
    (Rpc::OpenBudget, &[Administration]),
    (Rpc::AdjustBudget, &[Administration]),
    (Rpc::ApproveProvider, &[Administration]),
    (Rpc::WithdrawProvider, &[Administration]),
    (Rpc::ApproveModule, &[Administration]),
    (Rpc::WithdrawModule, &[Administration]),
    (Rpc::RegisterCompany, &[Operator]),
    (Rpc::IssueVouchers, &[Operator]),
    (Rpc::IssueVouchersBatch, &[Operator]),
    (Rpc::ExpireVouchers, &[Operator]),
    (Rpc::RecordPayout, &[Operator]),
    (Rpc::GetWallet, &[Administration, Operator, Auditor]),
    (Rpc::RedeemHours, &[Provider]),
    (Rpc::RedeemHoursBatch, &[Provider]),
    (Rpc::ReverseRedemption, &[Provider]),
    (
        Rpc::GetStatement,
        &[Administration, Operator, Provider, Auditor],
    ),
    (Rpc::GetBudget, &[Administration, Operator, Auditor]),
    (Rpc::GetYearSummary, &[Administration, Operator, Auditor]),
    (Rpc::GetCompanies, &[Administration, Operator, Auditor]),
    (Rpc::GetTrainingHours, &[Administration, Operator, Auditor]),
    (Rpc::GetTrialBalance, &[Administration, Operator, Auditor]),
    (Rpc::ReadEvents, &[Auditor]),
    (Rpc::Subscribe, &[Auditor]),
    (Rpc::GetHead, &[Administration, Operator, Auditor]),
    (Rpc::Backup, &[Auditor]),
    (Rpc::RegisterCompaniesBatch, &[Operator]),
    (Rpc::RecordPayoutsBatch, &[Operator]),
    (Rpc::ReverseRedemptionsBatch, &[Provider]),
    // The approved providers and modules are public facts of the scheme: every role, a company
    // too, which chooses a provider and a module before it orders a usage code.
    (
        Rpc::ListProviders,
        &[
            Administration,
            Operator,
            Provider,
            Auditor,
            Company,
            OtherCompany,
        ],
    ),
    (
        Rpc::ListModules,
        &[
            Administration,
            Operator,
            Provider,
            Auditor,
            Company,
            OtherCompany,
        ],
    ),
    (Rpc::ListCompanies, &[Administration, Operator, Auditor]),
    (Rpc::ListWalletBatches, &[Administration, Operator, Auditor]),
    // A provider's redemptions: itself, the operator who pays them, auditors.
    (Rpc::ListRedemptions, &[Operator, Provider, Auditor]),
    (
        Rpc::ListPayouts,
        &[Administration, Operator, Provider, Auditor],
    ),
    // Usage codes: the company as itself or the operator; reads also for the administration and
    // auditors (and a code's provider: GetUsageCode of a code given to AG-0012 is tested in
    // tests/e2e/usage_codes.rs). The other company is refused everywhere: the batch's item
    // by item.
    (Rpc::OrderUsageCode, &[Operator, Company]),
    // A batch may hold items of many companies, so the call is open to every company; which
    // company an item is for is checked item by item ([`ITEM_REFUSED`]).
    (
        Rpc::OrderUsageCodesBatch,
        &[Operator, Company, OtherCompany],
    ),
    (
        Rpc::ListCompanyRedemptions,
        &[Administration, Operator, Auditor, Company],
    ),
    (Rpc::CancelUsageCode, &[Operator, Company]),
    // Whose code it is can only be known once it is found: every role that may read some code
    // may ask, and is answered NOT_FOUND for this unknown one.
    (
        Rpc::GetUsageCode,
        &[
            Administration,
            Operator,
            Provider,
            Auditor,
            Company,
            OtherCompany,
        ],
    ),
    (
        Rpc::ListUsageCodes,
        &[Administration, Operator, Auditor, Company],
    ),
    (
        Rpc::GetCompanyWallet,
        &[Administration, Operator, Auditor, Company],
    ),
];

/// The roles a batch call accepts as callers but refuses in an item, with PERMISSION_DENIED
/// in that item's status: a company acting for another. Every other caller the call accepts
/// gets no item refused PERMISSION_DENIED.
const ITEM_REFUSED: &[(Rpc, &[Role])] = &[(Rpc::OrderUsageCodesBatch, &[OtherCompany])];

/// What an accepted call answered: nothing for a unary call, and for a batch call each item's
/// refusal (`None` for an accepted item), in order.
type Items = Vec<Option<Status>>;

/// A unary call's answer: no items.
fn whole<T>(_answer: T) -> Items {
    Vec::new()
}

/// A batch call's refused items, each as a `Status` with its details.
fn items(answer: ledger_proto::v1::BatchWriteResponse) -> Items {
    answer.results.iter().map(item_status).collect()
}

impl Rpc {
    /// `Service/Method`, as in the proto file.
    fn name(self) -> &'static str {
        match self {
            Rpc::OpenBudget => "AdministrationService/OpenBudget",
            Rpc::AdjustBudget => "AdministrationService/AdjustBudget",
            Rpc::ApproveProvider => "AdministrationService/ApproveProvider",
            Rpc::WithdrawProvider => "AdministrationService/WithdrawProvider",
            Rpc::ApproveModule => "AdministrationService/ApproveModule",
            Rpc::WithdrawModule => "AdministrationService/WithdrawModule",
            Rpc::RegisterCompany => "OperatorService/RegisterCompany",
            Rpc::IssueVouchers => "OperatorService/IssueVouchers",
            Rpc::IssueVouchersBatch => "OperatorService/IssueVouchersBatch",
            Rpc::ExpireVouchers => "OperatorService/ExpireVouchers",
            Rpc::RecordPayout => "OperatorService/RecordPayout",
            Rpc::GetWallet => "OperatorService/GetWallet",
            Rpc::RedeemHours => "ProviderService/RedeemHours",
            Rpc::RedeemHoursBatch => "ProviderService/RedeemHoursBatch",
            Rpc::ReverseRedemption => "ProviderService/ReverseRedemption",
            Rpc::GetStatement => "ProviderService/GetStatement",
            Rpc::GetBudget => "ReportService/GetBudget",
            Rpc::GetYearSummary => "ReportService/GetYearSummary",
            Rpc::GetCompanies => "ReportService/GetCompanies",
            Rpc::GetTrainingHours => "ReportService/GetTrainingHours",
            Rpc::GetTrialBalance => "ReportService/GetTrialBalance",
            Rpc::ReadEvents => "AuditService/ReadEvents",
            Rpc::Subscribe => "AuditService/Subscribe",
            Rpc::GetHead => "AuditService/GetHead",
            Rpc::Backup => "AuditService/Backup",
            Rpc::RegisterCompaniesBatch => "OperatorService/RegisterCompaniesBatch",
            Rpc::RecordPayoutsBatch => "OperatorService/RecordPayoutsBatch",
            Rpc::ReverseRedemptionsBatch => "ProviderService/ReverseRedemptionsBatch",
            Rpc::ListProviders => "QueryService/ListProviders",
            Rpc::ListModules => "QueryService/ListModules",
            Rpc::ListCompanies => "QueryService/ListCompanies",
            Rpc::ListWalletBatches => "QueryService/ListWalletBatches",
            Rpc::ListRedemptions => "QueryService/ListRedemptions",
            Rpc::ListPayouts => "QueryService/ListPayouts",
            Rpc::OrderUsageCode => "CompanyService/OrderUsageCode",
            Rpc::OrderUsageCodesBatch => "CompanyService/OrderUsageCodesBatch",
            Rpc::ListCompanyRedemptions => "CompanyService/ListCompanyRedemptions",
            Rpc::CancelUsageCode => "CompanyService/CancelUsageCode",
            Rpc::GetUsageCode => "CompanyService/GetUsageCode",
            Rpc::ListUsageCodes => "CompanyService/ListUsageCodes",
            Rpc::GetCompanyWallet => "CompanyService/GetWallet",
        }
    }

    /// Calls the RPC with a well-formed request (each time with a fresh request id), so that
    /// only the caller decides between PERMISSION_DENIED and the rules; a batch call with one
    /// item. A backup goes to a new folder under `scratch`.
    async fn call(self, client: &Client, scratch: &Path) -> Result<Items, Status> {
        let module = MODULE;
        match self {
            Rpc::OpenBudget => client
                .open_budget(open_budget(2025, "1000.00"))
                .await
                .map(whole),
            Rpc::AdjustBudget => client
                .adjust_budget(adjust_budget(2025, "2000.00"))
                .await
                .map(whole),
            Rpc::ApproveProvider => client
                .approve_provider(approve_provider("AG-0012", "2025-01-01"))
                .await
                .map(whole),
            Rpc::WithdrawProvider => client
                .withdraw_provider(withdraw_provider("AG-0012", "2026-01-01"))
                .await
                .map(whole),
            Rpc::ApproveModule => client
                .approve_module(approve_module(module, "AG-0012", "2025-01-01"))
                .await
                .map(whole),
            Rpc::WithdrawModule => client
                .withdraw_module(withdraw_module(module, "2026-01-01"))
                .await
                .map(whole),
            Rpc::RegisterCompany => client
                .register_company(register_company(COMPANY_A, 2025))
                .await
                .map(whole),
            Rpc::IssueVouchers => client
                .issue_vouchers(issue_vouchers(COMPANY_A, 10, "2025-03-10"))
                .await
                .map(whole),
            Rpc::IssueVouchersBatch => client
                .issue_vouchers_batch(IssueVouchersBatchRequest {
                    items: vec![issue_vouchers(COMPANY_A, 10, "2025-03-10")],
                })
                .await
                .map(items),
            Rpc::ExpireVouchers => client
                .expire_vouchers(expire_vouchers("2025-01-01"))
                .await
                .map(whole),
            Rpc::RecordPayout => client
                .record_payout(record_payout("AG-0012", "30.00", "2025-06-01"))
                .await
                .map(whole),
            Rpc::GetWallet => client.get_wallet(get_wallet(COMPANY_A)).await.map(whole),
            Rpc::RedeemHours => client
                .redeem_hours(redeem_hours(
                    "AG-0012",
                    module,
                    COMPANY_A,
                    WORKER_1,
                    "1",
                    "2025-04-15",
                ))
                .await
                .map(whole),
            Rpc::RedeemHoursBatch => client
                .redeem_hours_batch(RedeemHoursBatchRequest {
                    items: vec![redeem_hours(
                        "AG-0012",
                        module,
                        COMPANY_A,
                        WORKER_1,
                        "1",
                        "2025-04-15",
                    )],
                })
                .await
                .map(items),
            Rpc::ReverseRedemption => client
                .reverse_redemption(reverse_redemption(
                    "AG-0012",
                    &new_request_id(),
                    "2025-04-20",
                ))
                .await
                .map(whole),
            Rpc::GetStatement => client
                .get_statement(get_statement("AG-0012"))
                .await
                .map(whole),
            Rpc::GetBudget => client.get_budget(get_budget(2025)).await.map(whole),
            Rpc::GetYearSummary => client
                .get_year_summary(get_year_summary(2025))
                .await
                .map(whole),
            Rpc::GetCompanies => client.get_companies(get_companies(2025)).await.map(whole),
            Rpc::GetTrainingHours => client
                .get_training_hours(get_training_hours(2025))
                .await
                .map(whole),
            Rpc::GetTrialBalance => client
                .get_trial_balance(get_trial_balance())
                .await
                .map(whole),
            Rpc::ReadEvents => client
                .read_events(ReadEventsRequest::default())
                .await
                .map(whole),
            Rpc::Subscribe => client
                .subscribe(SubscribeRequest::default())
                .await
                .map(whole),
            Rpc::GetHead => client.get_head(GetHeadRequest {}).await.map(whole),
            Rpc::Backup => client
                .backup(BackupRequest {
                    target_dir: scratch.join(new_request_id()).display().to_string(),
                })
                .await
                .map(whole),
            Rpc::RegisterCompaniesBatch => client
                .register_companies_batch(RegisterCompaniesBatchRequest {
                    items: vec![register_company(COMPANY_B, 2025)],
                })
                .await
                .map(items),
            Rpc::RecordPayoutsBatch => client
                .record_payouts_batch(RecordPayoutsBatchRequest {
                    items: vec![record_payout("AG-0012", "30.00", "2025-06-01")],
                })
                .await
                .map(items),
            Rpc::ReverseRedemptionsBatch => client
                .reverse_redemptions_batch(ReverseRedemptionsBatchRequest {
                    items: vec![reverse_redemption(
                        "AG-0012",
                        &new_request_id(),
                        "2025-04-20",
                    )],
                })
                .await
                .map(items),
            Rpc::ListProviders => client
                .list_providers(ListProvidersRequest::default())
                .await
                .map(whole),
            Rpc::ListModules => client
                .list_modules(ListModulesRequest::default())
                .await
                .map(whole),
            Rpc::ListCompanies => client
                .list_companies(ListCompaniesRequest {
                    year: 2025,
                    ..ListCompaniesRequest::default()
                })
                .await
                .map(whole),
            Rpc::ListWalletBatches => client
                .list_wallet_batches(ListWalletBatchesRequest {
                    enterprise_number: COMPANY_A.to_owned(),
                    ..ListWalletBatchesRequest::default()
                })
                .await
                .map(whole),
            Rpc::ListRedemptions => client
                .list_redemptions(ListRedemptionsRequest {
                    provider_id: "AG-0012".to_owned(),
                    ..ListRedemptionsRequest::default()
                })
                .await
                .map(whole),
            Rpc::ListPayouts => client
                .list_payouts(ListPayoutsRequest {
                    provider_id: "AG-0012".to_owned(),
                    ..ListPayoutsRequest::default()
                })
                .await
                .map(whole),
            Rpc::OrderUsageCode => client
                .order_usage_code(order_usage_code(
                    COMPANY_A,
                    "AG-0012",
                    "1",
                    "2025-04-01",
                    "2025-04-30",
                ))
                .await
                .map(whole),
            Rpc::OrderUsageCodesBatch => client
                .order_usage_codes_batch(OrderUsageCodesBatchRequest {
                    items: vec![order_usage_code(
                        COMPANY_A,
                        "AG-0012",
                        "1",
                        "2025-04-01",
                        "2025-04-30",
                    )],
                })
                .await
                .map(items),
            Rpc::ListCompanyRedemptions => client
                .list_company_redemptions(ListCompanyRedemptionsRequest {
                    enterprise_number: COMPANY_A.to_owned(),
                    ..ListCompanyRedemptionsRequest::default()
                })
                .await
                .map(whole),
            Rpc::CancelUsageCode => client
                .cancel_usage_code(cancel_usage_code(&matrix_code(), COMPANY_A))
                .await
                .map(whole),
            Rpc::GetUsageCode => client
                .get_usage_code(get_usage_code(&matrix_code()))
                .await
                .map(whole),
            Rpc::ListUsageCodes => client
                .list_usage_codes(list_usage_codes(COMPANY_A))
                .await
                .map(whole),
            Rpc::GetCompanyWallet => client
                .company_get_wallet(get_wallet(COMPANY_A))
                .await
                .map(whole),
        }
    }
}

/// A well-formed code that no order gave: its company is unknown to the matrix's callers, so
/// the rules answer NOT_FOUND to those who may ask, after the role check.
fn matrix_code() -> String {
    "222-222-222".to_owned()
}

/// `Some(what went wrong)` unless `status` has `code` and an `ErrorInfo` with `reason` in this
/// API's domain.
fn status_mismatch(status: &Status, code: Code, reason: &str) -> Option<String> {
    let found = tonic_types::StatusExt::get_details_error_info(status)
        .map(|info| (info.reason, info.domain));
    let expected = Some((reason.to_owned(), ERROR_DOMAIN.to_owned()));
    (status.code() != code || found != expected).then(|| {
        format!(
            "got {:?} {found:?}, expected {code:?} {reason}",
            status.code()
        )
    })
}

/// `Some(what went wrong)` unless the whole call was refused with `code` and `reason`.
fn mismatch(result: &Result<Items, Status>, code: Code, reason: &str) -> Option<String> {
    match result {
        Ok(_) => Some(format!("accepted, expected {code:?}")),
        Err(status) => status_mismatch(status, code, reason),
    }
}

/// What is wrong with the answer of a role that passes the call-level check: the call refused
/// for its caller, or an item refused PERMISSION_DENIED unless `item_refused`, or, when
/// `item_refused`, the one item not refused PERMISSION_DENIED.
fn allowed_mismatch(result: &Result<Items, Status>, item_refused: bool) -> Option<String> {
    match result {
        Err(status)
            if matches!(
                status.code(),
                Code::PermissionDenied | Code::Unauthenticated
            ) =>
        {
            Some(format!("(call) may call it, but got {status:?}"))
        }
        // Refused by a rule of the scheme, after the role check.
        Err(_) => None,
        Ok(items) if item_refused => match items.as_slice() {
            [Some(status)] => status_mismatch(status, Code::PermissionDenied, "PERMISSION_DENIED")
                .map(|problem| format!("(item) {problem}")),
            other => Some(format!(
                "(item) expected its one item refused PERMISSION_DENIED, got {other:?}"
            )),
        },
        Ok(items) => items
            .iter()
            .flatten()
            .find(|status| status.code() == Code::PermissionDenied)
            .map(|status| format!("(item) may act for this item, but got {status:?}")),
    }
}

/// Two checks per RPC and role, each failure named `RPC as Role (call|item)`: the call-level
/// role check of [`MAY_CALL`] (a role not listed is refused the whole call), and, for a batch
/// call, the per-item check of [`ITEM_REFUSED`] (a company ordering for another passes the
/// call and is refused in its item). Without a token or with an unknown one, every call is
/// UNAUTHENTICATED.
#[tokio::test]
async fn role_matrix_every_rpc_with_every_role_without_a_token_and_with_an_unknown_token() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().expect("a folder for backups");
    let scratch = scratch.path();
    let mut failures = Vec::new();
    for &(rpc, allowed) in MAY_CALL {
        let item_refused: &[Role] = ITEM_REFUSED
            .iter()
            .find(|(batch, _)| *batch == rpc)
            .map_or(&[], |(_, roles)| roles);
        for role in ROLES {
            let result = rpc.call(&server.client(role.token()), scratch).await;
            let problem = match (allowed.contains(&role), item_refused.contains(&role)) {
                (true, item_refused) => allowed_mismatch(&result, item_refused),
                (false, false) => mismatch(&result, Code::PermissionDenied, "PERMISSION_DENIED")
                    .map(|problem| format!("(call) {problem}")),
                (false, true) => Some("in ITEM_REFUSED but not allowed the call".to_owned()),
            };
            if let Some(problem) = problem {
                failures.push(format!("{} as {role:?} {problem}", rpc.name()));
            }
        }
        let without_token = rpc.call(&server.client_without_token(), scratch).await;
        if let Some(problem) = mismatch(&without_token, Code::Unauthenticated, "UNAUTHENTICATED") {
            failures.push(format!("{} without a token: {problem}", rpc.name()));
        }
        let unknown_token = rpc
            .call(&server.client("not-a-token-of-this-ledger"), scratch)
            .await;
        if let Some(problem) = mismatch(&unknown_token, Code::Unauthenticated, "UNAUTHENTICATED") {
            failures.push(format!("{} with an unknown token: {problem}", rpc.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The matrix lists every RPC of the API's six services: a new RPC fails this test until it
/// is put in the table.
#[test]
fn role_matrix_covers_every_rpc_of_the_api() {
    let descriptors = prost_types::FileDescriptorSet::decode(ledger_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut in_proto: Vec<String> = descriptors
        .file
        .iter()
        .filter(|file| file.package() == "voucherledger.v1")
        .flat_map(|file| &file.service)
        .flat_map(|service| {
            service
                .method
                .iter()
                .map(move |method| format!("{}/{}", service.name(), method.name()))
        })
        .collect();
    in_proto.sort();
    let mut in_table: Vec<String> = MAY_CALL
        .iter()
        .map(|(rpc, _)| rpc.name().to_owned())
        .collect();
    in_table.sort();
    assert_eq!(in_table, in_proto);
}

#[tokio::test]
async fn a_provider_redeems_reverses_and_reads_only_as_itself() {
    let server = Server::given(world().vouchers(COMPANY_A, 10, "2025-03-10")).await;
    let other_provider = server.client(PROVIDER_AG_0099);
    let head = server.head().await;

    // AG-0099 redeeming in AG-0012's name: a redemption AG-0012 itself may make.
    let redemption = redeem_hours("AG-0012", MODULE, COMPANY_A, WORKER_1, "2", "2025-04-15");
    let status = refused(other_provider.redeem_hours(redemption.clone()).await);
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    assert_eq!(server.head().await, head);
    server
        .client(PROVIDER_AG_0012)
        .redeem_hours(redemption.clone())
        .await
        .expect("AG-0012 makes the same redemption itself");

    let administration = server.client(ADMINISTRATION);
    let redemptions_of = |provider_id: &str| ledger_proto::v1::ListRedemptionsRequest {
        provider_id: provider_id.to_owned(),
        ..Default::default()
    };
    let reversal = reverse_redemption("AG-0012", &redemption.request_id, "2025-04-20");
    let permission_denied =
        |status: &Status| status_mismatch(status, Code::PermissionDenied, "PERMISSION_DENIED");
    // What is AG-0012's is not AG-0099's to act on or read; what a provider redeems is the
    // operator's and the auditors' to read, not the administration's, which approves providers.
    let rows = vec![
        Refusal::new(
            "AG-0099 reverses AG-0012's redemption",
            other_provider.reverse_redemption(reversal),
            permission_denied,
        ),
        Refusal::new(
            "AG-0099 reads AG-0012's statement",
            other_provider.get_statement(get_statement("AG-0012")),
            permission_denied,
        ),
        Refusal::new(
            "AG-0099 lists AG-0012's redemptions",
            other_provider.list_redemptions(redemptions_of("AG-0012")),
            permission_denied,
        ),
        Refusal::new(
            "AG-0099 lists AG-0012's payouts",
            other_provider.list_payouts(ledger_proto::v1::ListPayoutsRequest {
                provider_id: "AG-0012".to_owned(),
                ..Default::default()
            }),
            permission_denied,
        ),
        Refusal::new(
            "the administration lists AG-0012's redemptions",
            administration.list_redemptions(redemptions_of("AG-0012")),
            permission_denied,
        ),
    ];
    let failures = refusal_failures(&server, rows).await;
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    let own = other_provider
        .get_statement(get_statement("AG-0099"))
        .await
        .expect("AG-0099 reads its own statement");
    assert_eq!(own.redeemed_hours, 0);
    let own = other_provider
        .list_redemptions(redemptions_of("AG-0099"))
        .await
        .expect("AG-0099 lists its own redemptions");
    assert!(own.events.is_empty());
    let theirs = server
        .client(PROVIDER_AG_0012)
        .list_redemptions(redemptions_of("AG-0012"))
        .await
        .expect("AG-0012 lists its own redemptions");
    assert_eq!(theirs.events.len(), 1);
}

#[tokio::test]
async fn an_authorization_that_is_not_a_bearer_token_is_unauthenticated() {
    use ledger_proto::v1::operator_service_client::OperatorServiceClient;
    let server = Server::start().await;
    let rows = [
        ("another scheme", format!("Basic {OPERATOR}")),
        ("no scheme", OPERATOR.to_owned()),
        ("a scheme without a token", "Bearer ".to_owned()),
        ("a token too long", format!("Bearer {}", "x".repeat(600))),
    ];
    let mut failures = Vec::new();
    for (row, value) in rows {
        let mut request = tonic::Request::new(get_wallet(COMPANY_A));
        request.metadata_mut().insert(
            "authorization",
            value.parse().expect("ascii metadata value"),
        );
        let answer = OperatorServiceClient::new(server.channel())
            .get_wallet(request)
            .await;
        let problem = match answer {
            Ok(wallet) => Some(format!("accepted: {wallet:?}")),
            Err(status) => status_mismatch(&status, Code::Unauthenticated, "UNAUTHENTICATED"),
        };
        if let Some(problem) = problem {
            failures.push(format!("{row}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
