//! Who may send which command (docs/RULES.md §4.1), as one table over every principal and every
//! command: the administration opens and adjusts budgets and approves and withdraws providers
//! and modules; the operator registers companies, issues, expires and pays out; a provider
//! redeems and reverses only as itself; the auditor changes nothing.

mod support;

use ledger_domain::{authorize, Command, Principal, Refusal, VoucherType};
use rust_decimal_macros::dec;
use support::*;

/// One command of each kind; the redemption and the reversal are Formaform's.
fn every_command() -> Vec<Command> {
    vec![
        open_budget(2026, dec!(1000.00)).into_command(),
        adjust_budget(2025, dec!(1000.00)).into_command(),
        approve_provider(formaform(), "2025-01-01").into_command(),
        withdraw_provider(formaform(), "2025-05-01").into_command(),
        approve_module(spreadsheet_module(), formaform()).into_command(),
        withdraw_module(spreadsheet_module(), "2025-05-01").into_command(),
        registration(acme(), 2025).into_command(),
        issue(acme(), batch(1), VoucherType::General, 10, "2025-03-10").into_command(),
        redeem(redemption(1), acme(), VoucherType::General, 5, "2025-03-01").into_command(),
        reverse(redemption(1), formaform(), "2025-03-05").into_command(),
        expire("2025-03-01").into_command(),
        payout(formaform(), dec!(10.00), "2025-04-01").into_command(),
        order_code(order(1), acme(), 5, "2025-03-01", "2025-03-31").into_command(),
        cancel_code(&ledger_domain::UsageCode::derive(order(1), 0), acme()).into_command(),
    ]
}

fn order(number: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0c0d_0000 + number)
}

/// Whether `principal` may send `command`, as docs/RULES.md §4.1 says.
fn allowed_by_design(principal: &Principal, command: &Command) -> bool {
    let action = command.action();
    match principal {
        Principal::Administration => matches!(
            action,
            "open_budget"
                | "adjust_budget"
                | "approve_provider"
                | "withdraw_provider"
                | "approve_module"
                | "withdraw_module"
        ),
        Principal::Operator => matches!(
            action,
            "register_company"
                | "issue_vouchers"
                | "expire_vouchers"
                | "record_payout"
                | "order_usage_code"
                | "cancel_usage_code"
        ),
        // The commands' codes are Acme's: Acme orders and cancels them, Globex may not.
        Principal::Company(enterprise_number) => {
            *enterprise_number == acme()
                && matches!(action, "order_usage_code" | "cancel_usage_code")
        }
        Principal::Provider(provider_id) => {
            *provider_id == formaform() && matches!(action, "redeem_hours" | "reverse_redemption")
        }
        Principal::Auditor => false,
    }
}

#[test]
fn authorize_every_principal_and_command_as_the_roles_say() {
    let principals = [
        Principal::Administration,
        Principal::Operator,
        Principal::Provider(formaform()),
        Principal::Provider(other_provider()),
        Principal::Auditor,
        Principal::Company(acme()),
        Principal::Company(globex()),
    ];
    let commands = every_command();
    assert_eq!(commands.len(), 14, "one command of each kind");
    let mut allowed_pairs = 0;
    for principal in &principals {
        for command in &commands {
            let outcome = authorize(principal, command);
            if allowed_by_design(principal, command) {
                allowed_pairs += 1;
                assert_eq!(outcome, Ok(()), "{principal} {}", command.action());
            } else {
                assert_eq!(
                    outcome,
                    Err(Refusal::PermissionDenied {
                        principal: principal.to_string(),
                        action: command.action(),
                    }),
                    "{principal} {}",
                    command.action()
                );
            }
        }
    }
    // 6 for the administration, 6 for the operator, 2 for Formaform acting as itself, 2 for
    // Acme acting as itself.
    assert_eq!(allowed_pairs, 16);
}

#[test]
fn authorize_administration_only_for_budgets_providers_and_modules() {
    for command in every_command() {
        let expected = matches!(
            command,
            Command::OpenBudget(_)
                | Command::AdjustBudget(_)
                | Command::ApproveProvider(_)
                | Command::WithdrawProvider(_)
                | Command::ApproveModule(_)
                | Command::WithdrawModule(_)
        );
        assert_eq!(
            authorize(&Principal::Administration, &command).is_ok(),
            expected,
            "{}",
            command.action()
        );
    }
}

#[test]
fn authorize_operator_only_for_registration_issuance_expiry_payout_and_codes() {
    for command in every_command() {
        let expected = matches!(
            command,
            Command::RegisterCompany(_)
                | Command::IssueVouchers(_)
                | Command::ExpireVouchers(_)
                | Command::RecordPayout(_)
                | Command::OrderUsageCode(_)
                | Command::CancelUsageCode(_)
        );
        assert_eq!(
            authorize(&Principal::Operator, &command).is_ok(),
            expected,
            "{}",
            command.action()
        );
    }
}

#[test]
fn authorize_provider_redeems_and_reverses_only_as_itself() {
    let own = Principal::Provider(formaform());
    let other = Principal::Provider(other_provider());
    let redemption_command =
        redeem(redemption(1), acme(), VoucherType::General, 5, "2025-03-01").into_command();
    let reversal_command = reverse(redemption(1), formaform(), "2025-03-05").into_command();
    assert_eq!(authorize(&own, &redemption_command), Ok(()));
    assert_eq!(authorize(&own, &reversal_command), Ok(()));
    assert_eq!(
        authorize(&other, &redemption_command),
        Err(Refusal::PermissionDenied {
            principal: "provider:AG-0002".to_owned(),
            action: "redeem_hours",
        })
    );
    assert_eq!(
        authorize(&other, &reversal_command),
        Err(Refusal::PermissionDenied {
            principal: "provider:AG-0002".to_owned(),
            action: "reverse_redemption",
        })
    );
    // A provider may not pay itself out either.
    assert_eq!(
        authorize(
            &own,
            &payout(formaform(), dec!(10.00), "2025-04-01").into_command()
        ),
        Err(Refusal::PermissionDenied {
            principal: "provider:AG-0001".to_owned(),
            action: "record_payout",
        })
    );
}

#[test]
fn authorize_company_orders_and_cancels_only_its_own_codes() {
    let own = Principal::Company(acme());
    let other = Principal::Company(globex());
    let order_command = order_code(order(1), acme(), 5, "2025-03-01", "2025-03-31").into_command();
    let cancel_command =
        cancel_code(&ledger_domain::UsageCode::derive(order(1), 0), acme()).into_command();
    assert_eq!(authorize(&own, &order_command), Ok(()));
    assert_eq!(authorize(&own, &cancel_command), Ok(()));
    for command in [&order_command, &cancel_command] {
        assert_eq!(
            authorize(&other, command),
            Err(Refusal::PermissionDenied {
                principal: format!("company:{}", globex()),
                action: command.action(),
            })
        );
    }
    // A company redeems nothing itself: its provider files against its code.
    assert!(authorize(
        &own,
        &redeem(redemption(1), acme(), VoucherType::General, 5, "2025-03-01").into_command()
    )
    .is_err());
}

#[test]
fn authorize_auditor_never() {
    for command in every_command() {
        assert_eq!(
            authorize(&Principal::Auditor, &command),
            Err(Refusal::PermissionDenied {
                principal: "auditor".to_owned(),
                action: command.action(),
            })
        );
    }
}

#[test]
fn authorize_principal_names_round_trip() {
    for text in [
        "administration",
        "operator",
        "auditor",
        "provider:AG-0001",
        "company:0403019261",
    ] {
        let principal = Principal::parse(text).expect("a known principal");
        assert_eq!(principal.to_string(), text);
    }
    for text in [
        "",
        "admin",
        "provider:",
        "provider:a b",
        "Provider:AG-0001",
        "company:",
        "company:0403019262",
    ] {
        assert_eq!(Principal::parse(text), None, "{text:?}");
    }
}
