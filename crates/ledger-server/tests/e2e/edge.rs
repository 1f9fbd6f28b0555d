//! Every byte from outside gets a precise answer: control characters in free text, dates and
//! amounts that make no sense, the `authorization` header, bodies that do not decode and
//! messages over every size limit, each against the real binary.

use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::GetHeadRequest;
use ledger_proto::v1::{
    AdjustBudgetRequest, ApproveModuleRequest, ApproveProviderRequest, BackupRequest,
    IssueVouchersRequest, RecordPayoutRequest, RegisterCompanyRequest, ReverseRedemptionRequest,
    WithdrawModuleRequest, WithdrawProviderRequest,
};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::malformed_input::given_world;
use crate::requests::*;
use crate::support::*;

/// Control characters a hostile or careless client may send: NUL, the start of "clear the
/// screen" (ESC [ 2 J), CR, DEL and a C1 control (NEXT LINE, U+0085).
const CONTROL_TEXTS: [&str; 5] = [
    "Formations\0Meuse",
    "cancelled \u{1b}[2J",
    "line one\rline two",
    "delete\u{7f}",
    "next\u{85}line",
];

/// Checks that `status` is INVALID_ARGUMENT / TEXT_HAS_CONTROL_CHARACTERS naming `field` in its
/// `BadRequest` and in `ErrorInfo.metadata.field`.
fn control_refusal_problem(status: &tonic::Status, field: &str) -> Option<String> {
    if let Some(problem) =
        invalid_argument_problem(status, "TEXT_HAS_CONTROL_CHARACTERS", Some(field))
    {
        return Some(problem);
    }
    let named = status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("field").cloned());
    (named.as_deref() != Some(field)).then(|| format!("ErrorInfo.metadata.field is {named:?}"))
}

#[tokio::test]
async fn control_characters_are_refused_in_every_free_text_field_naming_it() {
    let server = given_world().await;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    let auditor = server.client(AUDITOR);
    let head = server.head().await;
    let mut failures = Vec::new();
    for text in CONTROL_TEXTS {
        let owned = text.to_owned();
        let answers = [
            (
                "reason",
                administration
                    .adjust_budget(AdjustBudgetRequest {
                        reason: owned.clone(),
                        ..adjust_budget(2025, "200000.00")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "name",
                administration
                    .approve_provider(ApproveProviderRequest {
                        name: owned.clone(),
                        ..approve_provider("AG-0013", "2025-01-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "reason",
                administration
                    .withdraw_provider(WithdrawProviderRequest {
                        reason: owned.clone(),
                        ..withdraw_provider("AG-0012", "2025-09-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "title",
                administration
                    .approve_module(ApproveModuleRequest {
                        title: owned.clone(),
                        ..approve_module("AG-0012-NEW", "AG-0012", "2025-01-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "reason",
                administration
                    .withdraw_module(WithdrawModuleRequest {
                        reason: owned.clone(),
                        ..withdraw_module(MODULE, "2025-09-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "name",
                operator
                    .register_company(RegisterCompanyRequest {
                        name: owned.clone(),
                        ..register_company(COMPANY_B, 2025)
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "payment_reference",
                operator
                    .issue_vouchers(IssueVouchersRequest {
                        payment_reference: owned.clone(),
                        ..issue_vouchers(COMPANY_A, 1, "2025-04-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "payout_reference",
                operator
                    .record_payout(RecordPayoutRequest {
                        payout_reference: owned.clone(),
                        ..record_payout("AG-0012", "0.00", "2025-05-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "reason",
                provider
                    .reverse_redemption(ReverseRedemptionRequest {
                        reason: owned.clone(),
                        ..reverse_redemption("AG-0012", &new_request_id(), "2025-05-01")
                    })
                    .await
                    .map(|_| ()),
            ),
            (
                "target_dir",
                auditor
                    .backup(BackupRequest {
                        target_dir: format!("/tmp/backup-{owned}"),
                    })
                    .await
                    .map(|_| ()),
            ),
        ];
        for (index, (field, answer)) in answers.into_iter().enumerate() {
            let problem = match answer {
                Ok(()) => Some("accepted".to_owned()),
                Err(status) => control_refusal_problem(&status, field),
            };
            if let Some(problem) = problem {
                failures.push(format!("{text:?} in field {index} ({field}): {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(server.head().await, head, "nothing is written");

    // Tabs are control characters too; ordinary accents and symbols are not.
    administration
        .approve_provider(ApproveProviderRequest {
            name: "Formations Liège – Namur € «IA»".into(),
            ..approve_provider("AG-0013", "2025-01-01")
        })
        .await
        .expect("text without control characters is accepted");
    let status = refused(
        administration
            .approve_provider(ApproveProviderRequest {
                name: "Formations\tLiège".into(),
                ..approve_provider("AG-0014", "2025-01-01")
            })
            .await,
    );
    assert_eq!(control_refusal_problem(&status, "name"), None, "{status:?}");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn dates_before_the_scheme_and_amounts_with_more_than_two_decimals_are_refused() {
    let server = given_world().await;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    let head = server.head().await;
    let mut failures = Vec::new();
    let mut expect = |name: String, answer: Result<(), tonic::Status>, reason, field| {
        let problem = match answer {
            Ok(()) => Some("accepted".to_owned()),
            Err(status) => invalid_argument_problem(&status, reason, Some(field)),
        };
        if let Some(problem) = problem {
            failures.push(format!("{name}: {problem}"));
        }
    };
    for day in ["0000-01-01", "1999-06-01", "2003-12-31", "2101-01-01"] {
        let owned = day.to_owned();
        expect(
            format!("provider approved from {day}"),
            administration
                .approve_provider(approve_provider("AG-0013", day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "approved_from",
        );
        expect(
            format!("provider approved until {day}"),
            administration
                .approve_provider(ApproveProviderRequest {
                    approved_until: owned.clone(),
                    ..approve_provider("AG-0013", "2025-01-01")
                })
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "approved_until",
        );
        expect(
            format!("module approved from {day}"),
            administration
                .approve_module(approve_module("AG-0012-NEW", "AG-0012", day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "approved_from",
        );
        expect(
            format!("provider withdrawn from {day}"),
            administration
                .withdraw_provider(withdraw_provider("AG-0012", day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "withdrawn_from",
        );
        expect(
            format!("module withdrawn from {day}"),
            administration
                .withdraw_module(withdraw_module(MODULE, day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "withdrawn_from",
        );
        expect(
            format!("payout on {day}"),
            operator
                .record_payout(record_payout("AG-0012", "0.00", day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "payout_date",
        );
        expect(
            format!("reversal on {day}"),
            provider
                .reverse_redemption(reverse_redemption("AG-0012", &new_request_id(), day))
                .await
                .map(|_| ()),
            "DATE_OUT_OF_RANGE",
            "reversed_on",
        );
    }
    for amount in ["15.", "15.000", "15.100", ".5", "1.2.3", "15.00 "] {
        expect(
            format!("paid amount {amount:?}"),
            operator
                .issue_vouchers(IssueVouchersRequest {
                    paid_amount_eur: amount.into(),
                    ..issue_vouchers(COMPANY_A, 1, "2025-04-01")
                })
                .await
                .map(|_| ()),
            "INVALID_AMOUNT",
            "paid_amount_eur",
        );
    }
    for fte in ["12.", "12.500", ".5"] {
        expect(
            format!("fte {fte:?}"),
            operator
                .register_company(RegisterCompanyRequest {
                    fte: fte.into(),
                    ..register_company(COMPANY_B, 2025)
                })
                .await
                .map(|_| ()),
            "INVALID_NUMBER",
            "fte",
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(server.head().await, head, "nothing is written");

    // One decimal and none are amounts too.
    operator
        .issue_vouchers(IssueVouchersRequest {
            paid_amount_eur: "15".into(),
            ..issue_vouchers(COMPANY_A, 1, "2025-04-01")
        })
        .await
        .expect("\"15\" is an amount");
}

#[tokio::test]
async fn a_reversal_dated_before_its_training_is_refused() {
    let server = given_world().await;
    let provider = server.client(PROVIDER_AG_0012);
    let redemption = redeem_hours("AG-0012", MODULE, COMPANY_A, WORKER_1, "2", "2025-04-15");
    let redemption_id = redemption.request_id.clone();
    provider
        .redeem_hours(redemption)
        .await
        .expect("the redemption is accepted");
    let head = server.head().await;
    let status = refused(
        provider
            .reverse_redemption(reverse_redemption("AG-0012", &redemption_id, "2025-04-14"))
            .await,
    );
    assert_status(
        &status,
        Code::FailedPrecondition,
        "REVERSAL_BEFORE_TRAINING",
    );
    assert!(
        status.message().contains("2025-04-14") && status.message().contains("2025-04-15"),
        "{status:?}"
    );
    assert_eq!(server.head().await, head, "nothing is written");
    provider
        .reverse_redemption(reverse_redemption("AG-0012", &redemption_id, "2025-04-15"))
        .await
        .expect("a reversal on the day of the training is accepted");
}

/// `GetHead` with exactly the given `authorization` values, one header each.
async fn get_head_with(server: &Server, values: &[&str]) -> Result<u64, tonic::Status> {
    let mut request = Request::new(GetHeadRequest {});
    for value in values {
        let value = MetadataValue::try_from(*value).expect("the value is valid metadata");
        request.metadata_mut().append("authorization", value);
    }
    AuditServiceClient::new(server.channel())
        .get_head(request)
        .await
        .map(|head| head.into_inner().position)
}

#[tokio::test]
async fn only_one_authorization_header_of_exactly_bearer_and_the_token_is_accepted() {
    let server = Server::start().await;
    let exact = format!("Bearer {AUDITOR}");
    get_head_with(&server, &[&exact])
        .await
        .expect("`Bearer <token>` is accepted");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("the same header twice", vec![exact.clone(), exact.clone()]),
        (
            "a second, unknown token",
            vec![exact.clone(), "Bearer unknown".into()],
        ),
        ("a trailing space", vec![format!("{exact} ")]),
        ("two spaces", vec![format!("Bearer  {AUDITOR}")]),
        ("a tab", vec![format!("Bearer\t{AUDITOR}")]),
        ("a tab inside the token", vec![format!("{exact}\tx")]),
        ("lowercase scheme", vec![format!("bearer {AUDITOR}")]),
        ("no token", vec!["Bearer ".into()]),
        ("no space", vec!["Bearer".into()]),
        ("another scheme", vec![format!("Basic {AUDITOR}")]),
        ("the token alone", vec![AUDITOR.into()]),
    ];
    let mut failures = Vec::new();
    for (name, values) in cases {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        match get_head_with(&server, &values).await {
            Ok(position) => failures.push(format!("{name}: answered head {position}")),
            Err(status) => {
                if status.code() != Code::Unauthenticated
                    || status
                        .get_details_error_info()
                        .is_none_or(|info| info.reason != "UNAUTHENTICATED")
                {
                    failures.push(format!("{name}: {status:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
