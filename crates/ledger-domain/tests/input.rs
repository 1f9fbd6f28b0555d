//! Malformed commands: each is refused with the variant that names what is wrong, whatever the
//! state, before any rule of docs/RULES.md is looked at. Each limit is tried at its last allowed
//! value and one past it.

mod support;

use ledger_domain::command::{
    AdjustBudget, ApproveModule, ApproveProvider, IssueVouchers, RecordPayout, RegisterCompany,
    ReverseRedemption, WithdrawModule, WithdrawProvider,
};
use ledger_domain::decide::{
    ISSUE_QUANTITY_MAX, MODULE_HOURS_MAX, NAME_BYTES_MAX, REASON_BYTES_MAX, REFERENCE_BYTES_MAX,
    YEAR_MAX, YEAR_MIN,
};
use ledger_domain::{Refusal, VoucherType};
use rust_decimal_macros::dec;
use support::*;
use VoucherType::General;

// Years.

#[test]
fn input_budget_year_allowed_from_2004_to_2100() {
    for year in [YEAR_MIN, YEAR_MAX] {
        given(events![])
            .when(open_budget(year, dec!(1000.00)))
            .then(events![budget_opened(year, dec!(1000.00))]);
    }
}

#[test]
fn input_budget_year_refused_outside_2004_to_2100() {
    for year in [YEAR_MIN - 1, YEAR_MAX + 1, 0, -1] {
        given(events![])
            .when(open_budget(year, dec!(1000.00)))
            .then_refused(Refusal::InvalidYear { year });
        given(world())
            .when(adjust_budget(year, dec!(1000.00)))
            .then_refused(Refusal::InvalidYear { year });
    }
}

#[test]
fn input_registration_year_refused_outside_2004_to_2100() {
    given(events![])
        .when(registration(acme(), YEAR_MAX + 1))
        .then_refused(Refusal::InvalidYear { year: 2101 });
}

#[test]
fn input_payment_year_refused_before_2004() {
    given(world())
        .when(issue(acme(), batch(1), General, 1, "2003-12-31"))
        .then_refused(Refusal::InvalidYear { year: 2003 });
}

// Amounts.

#[test]
fn input_budget_amount_refused_when_negative_or_with_three_decimals_or_too_large() {
    for allocated_eur in [dec!(-0.01), dec!(1000.001), dec!(10000000000.01)] {
        given(events![])
            .when(open_budget(2025, allocated_eur))
            .then_refused(Refusal::InvalidAmount {
                field: "allocated_eur",
            });
        given(world())
            .when(adjust_budget(2025, allocated_eur))
            .then_refused(Refusal::InvalidAmount {
                field: "allocated_eur",
            });
    }
}

#[test]
fn input_budget_amount_allowed_from_zero_to_ten_billion() {
    for allocated_eur in [dec!(0), dec!(10000000000.00), dec!(1000.10)] {
        given(events![])
            .when(open_budget(2025, allocated_eur))
            .then(events![budget_opened(2025, allocated_eur)]);
    }
}

#[test]
fn input_paid_amount_refused_when_negative_or_with_three_decimals() {
    for paid_amount_eur in [dec!(-150.00), dec!(150.001)] {
        given(world())
            .when(IssueVouchers {
                paid_amount_eur,
                ..issue(acme(), batch(1), General, 10, "2025-03-10")
            })
            .then_refused(Refusal::InvalidAmount {
                field: "paid_amount_eur",
            });
    }
}

#[test]
fn input_registration_figures_refused_when_not_amounts() {
    given(events![])
        .when(RegisterCompany {
            fte: dec!(-1),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::InvalidAmount { field: "fte" });
    given(events![])
        .when(RegisterCompany {
            fte: dec!(10.001),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::InvalidAmount { field: "fte" });
    given(events![])
        .when(RegisterCompany {
            turnover_eur: dec!(-1.00),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::InvalidAmount {
            field: "turnover_eur",
        });
    given(events![])
        .when(RegisterCompany {
            balance_sheet_total_eur: dec!(1.005),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::InvalidAmount {
            field: "balance_sheet_total_eur",
        });
}

#[test]
fn input_payout_amount_refused_when_negative_or_with_three_decimals() {
    for amount_eur in [dec!(-1.00), dec!(1.001)] {
        given(world())
            .when(payout(formaform(), amount_eur, "2025-04-01"))
            .then_refused(Refusal::InvalidAmount {
                field: "amount_eur",
            });
    }
}

// Quantities and hours.

#[test]
fn input_issue_quantity_refused_at_zero_and_above_the_maximum() {
    for quantity in [0, ISSUE_QUANTITY_MAX + 1, u32::MAX] {
        given(world())
            .when(issue(acme(), batch(1), General, quantity, "2025-03-10"))
            .then_refused(Refusal::InvalidQuantity {
                quantity_max: ISSUE_QUANTITY_MAX,
            });
    }
}

#[test]
fn input_issue_quantity_at_the_maximum_reaches_the_quota() {
    given(world())
        .when(issue(
            acme(),
            batch(1),
            General,
            ISSUE_QUANTITY_MAX,
            "2025-03-10",
        ))
        .then_refused(Refusal::QuotaExceeded {
            voucher_type: General,
            year: 2025,
            quota: 400,
            issued: 0,
            requested: ISSUE_QUANTITY_MAX,
        });
}

#[test]
fn input_module_length_allowed_from_1_to_the_maximum() {
    for hours_max in [1, MODULE_HOURS_MAX] {
        given(events![provider_approved(formaform(), "2020-01-01")])
            .when(ApproveModule {
                hours_max,
                ..approve_module(spreadsheet_module(), formaform())
            })
            .then_events(|_| {});
    }
}

#[test]
fn input_module_length_refused_at_zero_and_above_the_maximum() {
    for hours_max in [0, MODULE_HOURS_MAX + 1] {
        given(events![provider_approved(formaform(), "2020-01-01")])
            .when(ApproveModule {
                hours_max,
                ..approve_module(spreadsheet_module(), formaform())
            })
            .then_refused(Refusal::InvalidHours {
                hours_max: MODULE_HOURS_MAX,
            });
    }
}

// Lists and periods.

#[test]
fn input_module_refused_without_voucher_types_or_themes() {
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            accepted_voucher_types: vec![],
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then_refused(Refusal::EmptyList {
            field: "accepted_voucher_types",
        });
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            themes: vec![],
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then_refused(Refusal::EmptyList { field: "themes" });
}

#[test]
fn input_approval_period_refused_when_it_ends_before_it_starts() {
    given(events![])
        .when(ApproveProvider {
            approved_until: Some(date("2024-12-31")),
            ..approve_provider(formaform(), "2025-01-01")
        })
        .then_refused(Refusal::InvalidPeriod {
            from: date("2025-01-01"),
            until: date("2024-12-31"),
            field: "approved_until",
        });
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            approved_from: date("2025-01-01"),
            approved_until: Some(date("2024-12-31")),
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then_refused(Refusal::InvalidPeriod {
            from: date("2025-01-01"),
            until: date("2024-12-31"),
            field: "approved_until",
        });
}

#[test]
fn input_approval_period_of_a_single_day_allowed() {
    given(events![])
        .when(ApproveProvider {
            approved_until: Some(date("2025-01-01")),
            ..approve_provider(formaform(), "2025-01-01")
        })
        .then_events(|_| {});
}

// Identifiers.

#[test]
fn input_nace_sector_refused_when_not_a_nace_code() {
    for nace_sector in ["", "6", "62.", "62,01", "62.0101", "sixty-two"] {
        given(events![])
            .when(RegisterCompany {
                nace_sector: nace_sector.to_owned(),
                ..registration(acme(), 2025)
            })
            .then_refused(Refusal::InvalidIdentifier {
                field: "nace_sector",
            });
    }
}

#[test]
fn input_nace_sector_allowed_from_division_to_subclass() {
    for nace_sector in ["62", "62.0", "62.01", "62.010"] {
        given(events![])
            .when(RegisterCompany {
                nace_sector: nace_sector.to_owned(),
                ..registration(acme(), 2025)
            })
            .then_events(|events| {
                assert_eq!(the_registration(events).nace_sector, nace_sector);
            });
    }
}

// Text lengths.

#[test]
fn input_names_allowed_up_to_the_maximum_and_refused_beyond() {
    let longest = "n".repeat(NAME_BYTES_MAX);
    let too_long = "n".repeat(NAME_BYTES_MAX + 1);
    given(events![])
        .when(ApproveProvider {
            name: longest.clone(),
            ..approve_provider(formaform(), "2020-01-01")
        })
        .then_events(|_| {});
    given(events![])
        .when(ApproveProvider {
            name: too_long.clone(),
            ..approve_provider(formaform(), "2020-01-01")
        })
        .then_refused(Refusal::TextTooLong {
            field: "name",
            bytes_max: NAME_BYTES_MAX,
        });
    given(events![])
        .when(RegisterCompany {
            name: longest.clone(),
            ..registration(acme(), 2025)
        })
        .then_events(|_| {});
    given(events![])
        .when(RegisterCompany {
            name: too_long.clone(),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::TextTooLong {
            field: "name",
            bytes_max: NAME_BYTES_MAX,
        });
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            title: longest,
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then_events(|_| {});
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            title: too_long,
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then_refused(Refusal::TextTooLong {
            field: "title",
            bytes_max: NAME_BYTES_MAX,
        });
}

#[test]
fn input_text_with_a_control_character_is_refused_naming_its_field() {
    for text in [
        "A\0B",
        "clear \u{1b}[2J",
        "one\rtwo",
        "tab\there",
        "del\u{7f}",
        "c1\u{85}",
    ] {
        given(events![])
            .when(ApproveProvider {
                name: text.to_owned(),
                ..approve_provider(formaform(), "2020-01-01")
            })
            .then_refused(Refusal::TextHasControlCharacters { field: "name" });
        given(world())
            .when(AdjustBudget {
                reason: text.to_owned(),
                ..adjust_budget(2025, dec!(2000000.00))
            })
            .then_refused(Refusal::TextHasControlCharacters { field: "reason" });
    }
    // Accents, symbols and spaces are text, not controls.
    given(events![])
        .when(ApproveProvider {
            name: "Formations Liège – «IA» €".to_owned(),
            ..approve_provider(formaform(), "2020-01-01")
        })
        .then_events(|_| {});
}

#[test]
fn input_names_counted_in_bytes_not_characters() {
    // "é" is two bytes in UTF-8: 101 of them are 202 bytes.
    given(events![])
        .when(ApproveProvider {
            name: "é".repeat(NAME_BYTES_MAX / 2 + 1),
            ..approve_provider(formaform(), "2020-01-01")
        })
        .then_refused(Refusal::TextTooLong {
            field: "name",
            bytes_max: NAME_BYTES_MAX,
        });
}

#[test]
fn input_reasons_refused_beyond_the_maximum() {
    let too_long = "r".repeat(REASON_BYTES_MAX + 1);
    let refused = Refusal::TextTooLong {
        field: "reason",
        bytes_max: REASON_BYTES_MAX,
    };
    given(world())
        .when(AdjustBudget {
            reason: too_long.clone(),
            ..adjust_budget(2025, dec!(2000000.00))
        })
        .then_refused(refused.clone());
    given(world())
        .when(WithdrawProvider {
            reason: too_long.clone(),
            ..withdraw_provider(formaform(), "2025-05-01")
        })
        .then_refused(refused.clone());
    given(world())
        .when(WithdrawModule {
            reason: too_long.clone(),
            ..withdraw_module(spreadsheet_module(), "2025-05-01")
        })
        .then_refused(refused.clone());
    given(world())
        .when(ReverseRedemption {
            reason: too_long,
            ..reverse(redemption(1), formaform(), "2025-05-01")
        })
        .then_refused(refused);
}

#[test]
fn input_reasons_allowed_up_to_the_maximum() {
    given(world())
        .when(WithdrawProvider {
            reason: "r".repeat(REASON_BYTES_MAX),
            ..withdraw_provider(formaform(), "2025-05-01")
        })
        .then_events(|_| {});
}

#[test]
fn input_references_allowed_up_to_the_maximum_and_refused_beyond() {
    given(world())
        .when(IssueVouchers {
            payment_reference: "p".repeat(REFERENCE_BYTES_MAX),
            ..issue(acme(), batch(1), General, 10, "2025-03-10")
        })
        .then_events(|_| {});
    given(world())
        .when(IssueVouchers {
            payment_reference: "p".repeat(REFERENCE_BYTES_MAX + 1),
            ..issue(acme(), batch(1), General, 10, "2025-03-10")
        })
        .then_refused(Refusal::TextTooLong {
            field: "payment_reference",
            bytes_max: REFERENCE_BYTES_MAX,
        });
    given(world())
        .when(RecordPayout {
            payout_reference: "p".repeat(REFERENCE_BYTES_MAX + 1),
            ..payout(formaform(), dec!(10.00), "2025-04-01")
        })
        .then_refused(Refusal::TextTooLong {
            field: "payout_reference",
            bytes_max: REFERENCE_BYTES_MAX,
        });
}

// The dated policy table.

#[test]
fn input_registration_refused_on_a_day_no_policy_is_in_force() {
    given(events![])
        .when(RegisterCompany {
            registered_on: date("2003-12-31"),
            ..registration(acme(), 2004)
        })
        .then_refused(Refusal::PolicyNotInForce {
            date: date("2003-12-31"),
        });
}

#[test]
fn input_expiry_refused_on_a_day_no_policy_is_in_force() {
    given(world())
        .when(expire("2003-12-31"))
        .then_refused(Refusal::PolicyNotInForce {
            date: date("2003-12-31"),
        });
}

#[test]
fn input_issuance_refused_on_a_day_no_policy_is_in_force() {
    // A table that starts in 2010: a payment of 2009 has no policy.
    let table_from_2010 = policy_replacing("2004-01-01", "2010-01-01");
    given(events![
        budget_opened(2009, dec!(1000.00)),
        company_registered(acme(), 2009)
    ])
    .policy(table_from_2010)
    .when(issue(acme(), batch(1), General, 1, "2009-06-01"))
    .then_refused(Refusal::PolicyNotInForce {
        date: date("2009-06-01"),
    });
}
