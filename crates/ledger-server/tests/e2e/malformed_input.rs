//! Malformed input: INVALID_ARGUMENT with a reason and a `google.rpc.BadRequest` naming the field,
//! and nothing written. Each case changes one field of a request that is otherwise accepted
//! (shown at the end of the test).

use std::fmt::Debug;
use std::future::Future;

use ledger_proto::event::v1::VoucherType;
use ledger_proto::v1::{
    as_of, AdjustBudgetRequest, ApproveModuleRequest, ApproveProviderRequest, AsOf, BackupRequest,
    GetBudgetRequest, IssueVouchersBatchRequest, IssueVouchersRequest, RedeemHoursRequest,
    RegisterCompanyRequest, ReverseRedemptionRequest, SubscribeFilter, SubscribeRequest,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::requests::*;
use crate::support::*;

/// A national register number whose check digits are wrong (valid: 85073003328).
const BAD_NATIONAL_NUMBER: &str = "85073003399";
/// The request size limit of the demo configuration (`request_bytes_max`), in bytes.
const REQUEST_BYTES_MAX: usize = 64 * 1024;

/// The common world (budget 2025, AG-0012 with its module [`MODULE`], company A), company A
/// holding 20 vouchers paid 2025-03-10.
pub(crate) async fn given_world() -> Server {
    Server::given(world().vouchers(COMPANY_A, 20, "2025-03-10")).await
}

/// Accepted as is: 1 voucher to company A, paid 2025-04-01.
fn issuance() -> IssueVouchersRequest {
    issue_vouchers(COMPANY_A, 1, "2025-04-01")
}

/// Accepted as is: 2 hours by worker 1 on 2025-04-15.
fn redemption() -> RedeemHoursRequest {
    redeem_hours("AG-0012", MODULE, COMPANY_A, WORKER_1, "2", "2025-04-15")
}

/// Accepted as is: company B for 2025.
fn registration() -> RegisterCompanyRequest {
    register_company(COMPANY_B, 2025)
}

/// A row of the malformed-input table: refused INVALID_ARGUMENT with `reason`, naming `field`
/// (`None` for a refusal of the whole request).
fn case<'a, T: Debug + 'a>(
    name: impl Into<String>,
    reason: &'static str,
    field: Option<&'static str>,
    call: impl Future<Output = Result<T, Status>> + 'a,
) -> Refusal<'a> {
    Refusal::new(name, call, move |status| {
        invalid_argument_problem(status, reason, field)
    })
}

#[tokio::test]
async fn malformed_input_is_invalid_argument_naming_the_field_and_writes_nothing() {
    let server = given_world().await;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);

    let mut cases = vec![
        case(
            "enterprise number with wrong check digits (0431.150.351)",
            "INVALID_ENTERPRISE_NUMBER",
            Some("enterprise_number"),
            operator.register_company(RegisterCompanyRequest {
                enterprise_number: "0431.150.351".into(),
                ..registration()
            }),
        ),
        case(
            "enterprise number starting with 2",
            "INVALID_ENTERPRISE_NUMBER",
            Some("enterprise_number"),
            operator.issue_vouchers(IssueVouchersRequest {
                enterprise_number: "2000000042".into(),
                ..issuance()
            }),
        ),
        case(
            "empty request id",
            "INVALID_REQUEST_ID",
            Some("request_id"),
            operator.issue_vouchers(IssueVouchersRequest {
                request_id: String::new(),
                ..issuance()
            }),
        ),
        case(
            "request id that is not a uuid",
            "INVALID_REQUEST_ID",
            Some("request_id"),
            operator.issue_vouchers(IssueVouchersRequest {
                request_id: "payment-2025-04-01".into(),
                ..issuance()
            }),
        ),
        case(
            "nil uuid as request id",
            "INVALID_REQUEST_ID",
            Some("request_id"),
            operator.issue_vouchers(IssueVouchersRequest {
                request_id: "00000000-0000-0000-0000-000000000000".into(),
                ..issuance()
            }),
        ),
        case(
            "voucher type 0 (UNSPECIFIED)",
            "UNKNOWN_ENUM_VALUE",
            Some("voucher_type"),
            operator.issue_vouchers(IssueVouchersRequest {
                voucher_type: VoucherType::Unspecified as i32,
                ..issuance()
            }),
        ),
        case(
            "voucher type 99",
            "UNKNOWN_ENUM_VALUE",
            Some("voucher_type"),
            operator.issue_vouchers(IssueVouchersRequest {
                voucher_type: 99,
                ..issuance()
            }),
        ),
        case(
            "redemption with voucher type 99",
            "UNKNOWN_ENUM_VALUE",
            Some("voucher_type"),
            provider.redeem_hours(RedeemHoursRequest {
                voucher_type: 99,
                ..redemption()
            }),
        ),
        case(
            "trainee status 0 (UNSPECIFIED)",
            "UNKNOWN_ENUM_VALUE",
            Some("trainee_status"),
            provider.redeem_hours(RedeemHoursRequest {
                trainee_status: 0,
                ..redemption()
            }),
        ),
        case(
            "legal form 0 (UNSPECIFIED)",
            "UNKNOWN_ENUM_VALUE",
            Some("legal_form"),
            operator.register_company(RegisterCompanyRequest {
                legal_form: 0,
                ..registration()
            }),
        ),
        case(
            "region 99",
            "UNKNOWN_ENUM_VALUE",
            Some("region"),
            operator.register_company(RegisterCompanyRequest {
                region: 99,
                ..registration()
            }),
        ),
        case(
            "theme 99",
            "UNKNOWN_ENUM_VALUE",
            Some("themes"),
            administration.approve_module(ApproveModuleRequest {
                themes: vec![99],
                ..approve_module("AG-0012-NEW", "AG-0012", "2025-01-01")
            }),
        ),
        case(
            "module without a theme",
            "EMPTY_LIST",
            Some("themes"),
            administration.approve_module(ApproveModuleRequest {
                themes: vec![],
                ..approve_module("AG-0012-NEW", "AG-0012", "2025-01-01")
            }),
        ),
        case(
            "approval ending before it starts",
            "INVALID_PERIOD",
            Some("approved_until"),
            administration.approve_provider(ApproveProviderRequest {
                approved_until: "2024-12-31".into(),
                ..approve_provider("AG-0013", "2025-01-01")
            }),
        ),
        case(
            "provider id with a space",
            "INVALID_IDENTIFIER",
            Some("provider_id"),
            administration.approve_provider(approve_provider("AG 0013", "2025-01-01")),
        ),
        case(
            "redemption id that is not a uuid",
            "INVALID_IDENTIFIER",
            Some("redemption_id"),
            provider.reverse_redemption(ReverseRedemptionRequest {
                redemption_id: "R-1".into(),
                ..reverse_redemption("AG-0012", "", "2025-04-20")
            }),
        ),
        case(
            "year 1999",
            "INVALID_YEAR",
            Some("year"),
            administration.open_budget(open_budget(1999, "1000.00")),
        ),
        case(
            "quantity 0",
            "INVALID_QUANTITY",
            Some("quantity"),
            operator.issue_vouchers(IssueVouchersRequest {
                quantity: 0,
                paid_amount_eur: "0.00".into(),
                ..issuance()
            }),
        ),
        case(
            "fte \"abc\"",
            "INVALID_NUMBER",
            Some("fte"),
            operator.register_company(RegisterCompanyRequest {
                fte: "abc".into(),
                ..registration()
            }),
        ),
        case(
            "a 300-byte company name",
            "TEXT_TOO_LONG",
            Some("name"),
            operator.register_company(RegisterCompanyRequest {
                name: "n".repeat(300),
                ..registration()
            }),
        ),
        case(
            "a 100 KB company name",
            "REQUEST_TOO_LARGE",
            None,
            operator.register_company(RegisterCompanyRequest {
                name: "n".repeat(100 * 1000),
                ..registration()
            }),
        ),
        case(
            "a 100 KB budget adjustment reason",
            "REQUEST_TOO_LARGE",
            None,
            administration.adjust_budget(AdjustBudgetRequest {
                reason: "r".repeat(100 * 1000),
                ..adjust_budget(2025, "200000.00")
            }),
        ),
        case(
            "a name one byte over the request size limit",
            "REQUEST_TOO_LARGE",
            None,
            administration.approve_provider(ApproveProviderRequest {
                name: "n".repeat(REQUEST_BYTES_MAX + 1),
                ..approve_provider("AG-0013", "2025-01-01")
            }),
        ),
    ];
    cases.push(case(
        "a report as of \"2025-13-01\"",
        "INVALID_DATE",
        Some("as_of.date"),
        operator.get_budget(GetBudgetRequest {
            as_of: Some(AsOf {
                point: Some(as_of::Point::Date("2025-13-01".into())),
            }),
            ..get_budget(2025)
        }),
    ));
    for hours in ["0", "-1", "1.5", "abc", "", "+2", "2e1", "2001"] {
        cases.push(case(
            format!("hours {hours:?}"),
            "INVALID_HOURS",
            Some("hours"),
            provider.redeem_hours(RedeemHoursRequest {
                hours: hours.into(),
                ..redemption()
            }),
        ));
    }
    for amount in ["15.001", "abc", "-5.00", "", "1e1", "15,00"] {
        cases.push(case(
            format!("paid amount {amount:?}"),
            "INVALID_AMOUNT",
            Some("paid_amount_eur"),
            operator.issue_vouchers(IssueVouchersRequest {
                paid_amount_eur: amount.into(),
                ..issuance()
            }),
        ));
    }
    for date in ["2025-13-01", "10/03/2025", "2025-02-29", "2025-3-10", ""] {
        cases.push(case(
            format!("payment date {date:?}"),
            "INVALID_DATE",
            Some("payment_date"),
            operator.issue_vouchers(IssueVouchersRequest {
                payment_date: date.into(),
                ..issuance()
            }),
        ));
    }

    let failures = refusal_failures(&server, cases).await;
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    assert_base_requests_accepted(&server, redemption(), issuance(), registration()).await;
}

#[tokio::test]
async fn a_bad_national_number_is_refused_without_being_echoed() {
    let server = given_world().await;
    let provider = server.client(PROVIDER_AG_0012);
    let head = server.head().await;
    for national_number in [BAD_NATIONAL_NUMBER, "85.07.30-033.99", "8507300332", "abc"] {
        let status = refused(
            provider
                .redeem_hours(RedeemHoursRequest {
                    national_number: national_number.into(),
                    ..redemption()
                })
                .await,
        );
        assert_invalid_field(&status, "INVALID_NATIONAL_NUMBER", "national_number");
        let message = status.message();
        let details = String::from_utf8_lossy(status.details());
        let metadata = format!("{:?}", status.metadata());
        for shown in [message, &details, &metadata] {
            assert!(
                !shown.contains(national_number) && !shown.contains("850730033"),
                "the number is echoed: {shown:?}"
            );
        }
    }
    assert_eq!(server.head().await, head);
    let log = server.log();
    assert!(
        log.contains("INVALID_NATIONAL_NUMBER"),
        "refusals are logged: {log}"
    );
    assert!(
        !log.contains("850730033"),
        "the number reached the log: {log}"
    );
}

/// Whether the API refuses a request above `request_bytes_max` after decoding it, or tonic
/// refuses it before (beyond 4 × request_bytes_max, 2 MiB for the services that take batch
/// calls), the answer is the same: INVALID_ARGUMENT / REQUEST_TOO_LARGE with the limit in
/// `ErrorInfo.metadata.bytes_max`. Nothing is written and the server keeps serving.
#[tokio::test]
async fn a_request_beyond_the_transport_limit_is_refused_before_decoding() {
    let server = given_world().await;
    let head = server.head().await;
    let bytes_max = |status: &Status| {
        status
            .get_details_error_info()
            .and_then(|info| info.metadata.get("bytes_max").cloned())
    };
    for name_bytes in [REQUEST_BYTES_MAX + 1, 4 * REQUEST_BYTES_MAX + 1] {
        let status = refused(
            server
                .client(ADMINISTRATION)
                .approve_provider(ApproveProviderRequest {
                    name: "n".repeat(name_bytes),
                    ..approve_provider("AG-0077", "2025-01-01")
                })
                .await,
        );
        assert_status(&status, Code::InvalidArgument, "REQUEST_TOO_LARGE");
        assert_eq!(
            bytes_max(&status),
            Some(REQUEST_BYTES_MAX.to_string()),
            "{status:?}"
        );
    }

    let status = refused(
        server
            .client(OPERATOR)
            .register_company(RegisterCompanyRequest {
                name: "n".repeat(4 * REQUEST_BYTES_MAX + 1),
                ..registration()
            })
            .await,
    );
    assert_status(&status, Code::InvalidArgument, "REQUEST_TOO_LARGE");
    let status = refused(
        server
            .client(OPERATOR)
            .register_company(RegisterCompanyRequest {
                name: "n".repeat(2 * 1024 * 1024 + 1),
                ..registration()
            })
            .await,
    );
    assert_status(&status, Code::InvalidArgument, "REQUEST_TOO_LARGE");
    assert_eq!(
        bytes_max(&status),
        Some(REQUEST_BYTES_MAX.to_string()),
        "{status:?}"
    );
    // A batch call over the 2 MiB cap: the limit named is the batch's, 1 MiB.
    let items = (0..40)
        .map(|_| IssueVouchersRequest {
            payment_reference: "r".repeat(60 * 1000),
            ..issuance()
        })
        .collect();
    let status = refused(
        server
            .client(OPERATOR)
            .issue_vouchers_batch(IssueVouchersBatchRequest { items })
            .await,
    );
    assert_status(&status, Code::InvalidArgument, "REQUEST_TOO_LARGE");
    assert_eq!(
        bytes_max(&status),
        Some((1024 * 1024).to_string()),
        "{status:?}"
    );
    assert_eq!(server.head().await, head);
    server
        .client(OPERATOR)
        .register_company(registration())
        .await
        .expect("the server still serves");
}

/// A subscription filter naming an unknown event type, and a backup folder that is not an
/// absolute path.
fn audit_input_errors(server: &Server) -> [(Call<'static>, &'static str, &'static str); 2] {
    let auditor = server.client(AUDITOR);
    let subscription = SubscribeRequest {
        from_position: 0,
        filter: Some(SubscribeFilter {
            stream_prefixes: vec![],
            event_types: vec!["VoucherPrinted".into()],
        }),
    };
    let auditor_again = auditor.clone();
    [
        (
            Box::pin(async move {
                auditor
                    .subscribe(subscription)
                    .await
                    .map(|_| "an open subscription".to_owned())
            }),
            "UNKNOWN_EVENT_TYPE",
            "filter.event_types",
        ),
        (
            Box::pin(async move {
                auditor_again
                    .backup(BackupRequest {
                        target_dir: "backups/today".into(),
                    })
                    .await
                    .map(|response| format!("{response:?}"))
            }),
            "INVALID_BACKUP_DIR",
            "target_dir",
        ),
    ]
}

#[tokio::test]
async fn audit_input_errors_are_invalid_argument_with_their_reason() {
    let server = Server::start().await;
    for (call, reason, _) in audit_input_errors(&server) {
        let status = refused(call.await);
        assert_status(&status, Code::InvalidArgument, reason);
    }
}

#[tokio::test]
async fn audit_input_errors_name_their_field() {
    let server = Server::start().await;
    for (call, reason, field) in audit_input_errors(&server) {
        let status = refused(call.await);
        assert_invalid_field(&status, reason, field);
    }
}
