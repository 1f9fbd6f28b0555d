//! Every byte from outside gets a precise answer: control characters in free text, dates and
//! amounts that make no sense, the `authorization` header, bodies that do not decode and
//! messages over every size limit, each against the real binary.

use ledger_proto::v1::{
    AdjustBudgetRequest, ApproveModuleRequest, ApproveProviderRequest, BackupRequest,
    IssueVouchersRequest, RecordPayoutRequest, RegisterCompanyRequest, ReverseRedemptionRequest,
    WithdrawModuleRequest, WithdrawProviderRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::malformed_input::{check, given_world, MODULE};
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
    if let Some(problem) = check(status, "TEXT_HAS_CONTROL_CHARACTERS", Some(field)) {
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
