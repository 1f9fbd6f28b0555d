//! The rules of docs/RULES.md, one by one: for each, the cases it allows and the cases it
//! refuses, with the exact refusal. Tests are named `rule_NN_…` after the rule's number there.
//!
//! Boundaries that need tables (every quota, every expiry edge, FIFO across batches, identifier
//! vectors) live in `edges.rs`; malformed input in `input.rs`; who may do what in
//! `authorization.rs`; random histories in `properties.rs`.

mod support;

use hmac::{Hmac, Mac};
use ledger_domain::command::{
    ApproveModule, ApproveProvider, IssueVouchers, RedeemHours, RegisterCompany,
};
use ledger_domain::decide::MODULE_HOURS_MAX;
use ledger_domain::event::{
    BudgetAdjusted, CompanyRegistered, ModuleApproved, ProviderApproved, VouchersIssued,
};
use ledger_domain::{
    Account, EnterpriseNumber, Event, Ineligibility, LegalForm, NationalNumber, Posting,
    PseudonymKey, Refusal, Region, SizeClass, Theme, TraineeStatus, VoucherType,
};
use rust_decimal_macros::dec;
use sha2::Sha256;
use support::*;
use VoucherType::{EcoClimate, General, Languages};

// =============================================================================================
// Rule 1: companies are identified by their BCE/KBO number, dotted or plain, stored plain.

#[test]
fn rule_01_enterprise_number_accepted_dotted_and_plain_and_kept_plain() {
    for text in ["0403.019.261", "0403019261"] {
        let number = EnterpriseNumber::parse(text).expect("0403.019.261 is the valid example");
        assert_eq!(number.as_str(), "0403019261", "{text}");
    }
}

#[test]
fn rule_01_enterprise_number_refused_when_check_digits_differ() {
    assert_eq!(EnterpriseNumber::parse("0431.150.351"), None);
    assert_eq!(EnterpriseNumber::parse("0431150351"), None);
}

#[test]
fn rule_01_registration_records_the_plain_enterprise_number() {
    given(events![])
        .when(registration(enterprise("0403.019.261"), 2025))
        .then_events(|events| {
            let registered = the_registration(events);
            assert_eq!(registered.enterprise_number.as_str(), "0403019261");
            assert_eq!(
                events[0].stream(),
                "company/0403019261",
                "the stream is named by the plain number"
            );
        });
}

// =============================================================================================
// Rule 2: eligibility (seat in French-speaking Wallonia, at most 250 FTE, turnover at most
// EUR 50 million or balance-sheet total at most EUR 43 million, autonomous; self-employed too).

#[test]
fn rule_02_company_in_french_speaking_wallonia_allowed() {
    given(events![])
        .when(registration(acme(), 2025))
        .then(events![company_registered(acme(), 2025)]);
}

#[test]
fn rule_02_company_of_250_fte_allowed() {
    given(events![])
        .when(RegisterCompany {
            fte: dec!(250),
            ..registration(acme(), 2025)
        })
        .then(events![CompanyRegistered {
            fte: dec!(250),
            size_class: SizeClass::Fte201To250,
            ..company_registered(acme(), 2025)
        }]);
}

#[test]
fn rule_02_company_of_250_01_fte_refused() {
    given(events![])
        .when(RegisterCompany {
            fte: dec!(250.01),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::TooManyEmployees,
        });
}

#[test]
fn rule_02_turnover_over_50_million_allowed_when_balance_sheet_total_at_most_43_million() {
    given(events![])
        .when(RegisterCompany {
            turnover_eur: dec!(50000000.01),
            balance_sheet_total_eur: dec!(43000000.00),
            ..registration(acme(), 2025)
        })
        .then(events![CompanyRegistered {
            turnover_eur: dec!(50000000.01),
            balance_sheet_total_eur: dec!(43000000.00),
            ..company_registered(acme(), 2025)
        }]);
}

#[test]
fn rule_02_balance_sheet_total_over_43_million_allowed_when_turnover_at_most_50_million() {
    given(events![])
        .when(RegisterCompany {
            turnover_eur: dec!(50000000.00),
            balance_sheet_total_eur: dec!(43000000.01),
            ..registration(acme(), 2025)
        })
        .then(events![CompanyRegistered {
            turnover_eur: dec!(50000000.00),
            balance_sheet_total_eur: dec!(43000000.01),
            ..company_registered(acme(), 2025)
        }]);
}

#[test]
fn rule_02_turnover_and_balance_sheet_total_both_over_their_limits_refused() {
    given(events![])
        .when(RegisterCompany {
            turnover_eur: dec!(50000000.01),
            balance_sheet_total_eur: dec!(43000000.01),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::TooLarge,
        });
}

#[test]
fn rule_02_company_linked_to_a_larger_group_refused() {
    given(events![])
        .when(RegisterCompany {
            autonomous: false,
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::NotAutonomous,
        });
}

#[test]
fn rule_02_seat_in_german_speaking_community_brussels_or_flanders_refused() {
    for region in [
        Region::WalloniaGermanSpeaking,
        Region::Brussels,
        Region::Flanders,
    ] {
        given(events![])
            .when(RegisterCompany {
                region,
                ..registration(acme(), 2025)
            })
            .then_refused(Refusal::CompanyNotEligible {
                why: Ineligibility::RegionNotCovered,
            });
    }
}

#[test]
fn rule_02_secondary_self_employed_for_6_months_allowed() {
    given(events![])
        .when(RegisterCompany {
            legal_form: LegalForm::SelfEmployedSecondary,
            fte: dec!(0),
            secondary_activity_months: 6,
            ..registration(acme(), 2025)
        })
        .then(events![CompanyRegistered {
            legal_form: LegalForm::SelfEmployedSecondary,
            fte: dec!(0),
            secondary_activity_months: 6,
            size_class: SizeClass::SecondarySelfEmployed,
            ..company_registered(acme(), 2025)
        }]);
}

#[test]
fn rule_02_secondary_self_employed_for_5_months_refused() {
    given(events![])
        .when(RegisterCompany {
            legal_form: LegalForm::SelfEmployedSecondary,
            fte: dec!(0),
            secondary_activity_months: 5,
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::SecondaryActivityTooShort,
        });
}

#[test]
fn rule_02_main_occupation_self_employed_allowed_in_the_micro_class() {
    given(events![])
        .when(RegisterCompany {
            legal_form: LegalForm::SelfEmployedMain,
            fte: dec!(0),
            ..registration(acme(), 2025)
        })
        .then_events(|events| {
            assert_eq!(the_registration(events).size_class, SizeClass::Micro);
        });
}

#[test]
fn rule_02_size_class_follows_the_fte_rows_of_the_quota_table() {
    let cases = [
        (dec!(0), SizeClass::Micro),
        (dec!(1.9), SizeClass::Micro),
        (dec!(2), SizeClass::Fte2To50),
        (dec!(50), SizeClass::Fte2To50),
        (dec!(51), SizeClass::Fte51To100),
        (dec!(100), SizeClass::Fte51To100),
        (dec!(101), SizeClass::Fte101To200),
        (dec!(200), SizeClass::Fte101To200),
        (dec!(201), SizeClass::Fte201To250),
        (dec!(250), SizeClass::Fte201To250),
    ];
    for (fte, size_class) in cases {
        given(events![])
            .when(RegisterCompany {
                fte,
                ..registration(acme(), 2025)
            })
            .then_events(|events| {
                assert_eq!(the_registration(events).size_class, size_class, "{fte} FTE");
            });
    }
}

// =============================================================================================
// Rule 3: non-profit associations (ASBL) and every public body are excluded.

#[test]
fn rule_03_non_profit_association_refused() {
    given(events![])
        .when(RegisterCompany {
            legal_form: LegalForm::NonProfit,
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::NonProfit,
        });
}

#[test]
fn rule_03_public_body_refused() {
    given(events![])
        .when(RegisterCompany {
            legal_form: LegalForm::PublicBody,
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::CompanyNotEligible {
            why: Ineligibility::PublicBody,
        });
}

#[test]
fn rule_03_commercial_companies_and_self_employed_not_excluded() {
    for legal_form in [
        LegalForm::CommercialCompany,
        LegalForm::SelfEmployedMain,
        LegalForm::SelfEmployedSecondary,
    ] {
        given(events![])
            .when(RegisterCompany {
                legal_form,
                secondary_activity_months: 12,
                ..registration(acme(), 2025)
            })
            .then_events(|events| {
                assert_eq!(the_registration(events).legal_form, legal_form);
            });
    }
}

// =============================================================================================
// Rule 4: a registration is valid for one calendar year; ordering in a year needs that year's.

#[test]
fn rule_04_second_registration_for_the_same_year_refused() {
    given(events![company_registered(acme(), 2025)])
        .when(registration(acme(), 2025))
        .then_refused(Refusal::CompanyAlreadyRegistered { year: 2025 });
}

#[test]
fn rule_04_registration_for_next_year_allowed_in_december() {
    given(events![company_registered(acme(), 2025)])
        .today("2025-12-15")
        .when(RegisterCompany {
            registered_on: date("2025-12-15"),
            ..registration(acme(), 2026)
        })
        .then(events![CompanyRegistered {
            registered_on: date("2025-12-15"),
            ..company_registered(acme(), 2026)
        }]);
}

#[test]
fn rule_04_registration_for_the_year_after_next_refused() {
    given(events![])
        .today("2025-12-15")
        .when(RegisterCompany {
            registered_on: date("2025-12-15"),
            ..registration(acme(), 2027)
        })
        .then_refused(Refusal::YearNotOpen { year: 2027 });
}

#[test]
fn rule_04_registration_dated_after_its_year_refused() {
    given(events![])
        .when(RegisterCompany {
            registered_on: date("2025-01-05"),
            ..registration(acme(), 2024)
        })
        .then_refused(Refusal::YearNotOpen { year: 2024 });
}

#[test]
fn rule_04_registration_dated_after_today_refused() {
    given(events![])
        .today("2025-06-30")
        .when(RegisterCompany {
            registered_on: date("2025-07-01"),
            ..registration(acme(), 2025)
        })
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

#[test]
fn rule_04_ordering_in_2026_refused_with_only_a_2025_registration() {
    given(events![world(), budget_opened(2026, dec!(1000000.00))])
        .today("2026-02-01")
        .when(issue(acme(), batch(1), General, 10, "2026-01-15"))
        .then_refused(Refusal::CompanyNotRegistered { year: 2026 });
}

#[test]
fn rule_04_ordering_in_2026_allowed_with_a_2026_registration() {
    given(events![
        world(),
        budget_opened(2026, dec!(1000000.00)),
        company_registered(acme(), 2026),
    ])
    .today("2026-02-01")
    .when(issue(acme(), batch(1), General, 10, "2026-01-15"))
    .then(events![vouchers_issued(
        acme(),
        batch(1),
        General,
        10,
        "2026-01-15"
    )]);
}

#[test]
fn rule_04_ordering_refused_for_a_company_never_registered() {
    given(world())
        .when(issue(globex(), batch(1), General, 10, "2025-03-10"))
        .then_refused(Refusal::CompanyNotRegistered { year: 2025 });
}

// =============================================================================================
// Rule 5: the company pays EUR 15.00 per voucher; vouchers are issued when the payment is
// received, never before; the paid amount is exactly quantity × employer share.

#[test]
fn rule_05_issuance_allowed_when_paid_amount_is_quantity_times_employer_share() {
    let state = given(world())
        .when(issue(acme(), batch(1), General, 10, "2025-03-10"))
        .then(events![VouchersIssued {
            paid_amount_eur: dec!(150.00),
            postings: vec![
                Posting::debit(Account::VouchersOutstanding, dec!(300.00)),
                Posting::credit(Account::CompanyContributions, dec!(150.00)),
                Posting::credit(Account::RegionBudget(2025), dec!(150.00)),
            ],
            ..vouchers_issued(acme(), batch(1), General, 10, "2025-03-10")
        }]);
    assert_eq!(state.companies[&acme()].balance(General), 10);
}

#[test]
fn rule_05_issuance_refused_when_paid_amount_differs() {
    for paid in [dec!(149.99), dec!(150.01), dec!(0), dec!(300.00)] {
        given(world())
            .when(IssueVouchers {
                paid_amount_eur: paid,
                ..issue(acme(), batch(1), General, 10, "2025-03-10")
            })
            .then_refused(Refusal::PaymentAmountMismatch {
                expected_eur: dec!(150.00),
                paid_eur: paid,
            });
    }
}

#[test]
fn rule_05_issuance_allowed_when_payment_received_today() {
    given(world())
        .today("2025-06-30")
        .when(issue(acme(), batch(1), General, 10, "2025-06-30"))
        .then(events![vouchers_issued(
            acme(),
            batch(1),
            General,
            10,
            "2025-06-30"
        )]);
}

#[test]
fn rule_05_issuance_refused_before_the_payment_is_received() {
    given(world())
        .today("2025-06-30")
        .when(issue(acme(), batch(1), General, 10, "2025-07-01"))
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

#[test]
fn rule_05_issuance_records_the_shares_in_force_on_the_payment_date() {
    let dearer_from_march = policy_with_second_row(
        "2025-03-01",
        &[("\"15.00\"", "\"20.00\""), ("\"30.00\"", "\"40.00\"")],
    );
    given(world())
        .policy(dearer_from_march.clone())
        .when(issue(acme(), batch(1), General, 10, "2025-02-28"))
        .then(events![vouchers_issued(
            acme(),
            batch(1),
            General,
            10,
            "2025-02-28"
        )]);
    given(world())
        .policy(dearer_from_march.clone())
        .when(IssueVouchers {
            paid_amount_eur: dec!(150.00),
            ..issue(acme(), batch(1), General, 10, "2025-03-01")
        })
        .then_refused(Refusal::PaymentAmountMismatch {
            expected_eur: dec!(200.00),
            paid_eur: dec!(150.00),
        });
    given(world())
        .policy(dearer_from_march)
        .when(IssueVouchers {
            paid_amount_eur: dec!(200.00),
            ..issue(acme(), batch(1), General, 10, "2025-03-01")
        })
        .then_events(|events| {
            let issued = the_issuance(events);
            assert_eq!(issued.face_value_eur, dec!(40.00));
            assert_eq!(issued.employer_share_eur, dec!(20.00));
            assert_eq!(issued.region_share_eur, dec!(20.00));
            assert_eq!(issued.paid_amount_eur, dec!(200.00));
        });
}

// =============================================================================================
// Rule 6: the quota counts against the calendar year of the payment date (every size class and
// type in `edges.rs`).

#[test]
fn rule_06_issuance_allowed_up_to_the_yearly_quota() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 390, "2025-01-10")
    ])
    .when(issue(acme(), batch(2), General, 10, "2025-03-10"))
    .then(events![VouchersIssued {
        quota: 400,
        issued_in_year: 400,
        ..vouchers_issued(acme(), batch(2), General, 10, "2025-03-10")
    }]);
}

#[test]
fn rule_06_issuance_refused_beyond_the_yearly_quota() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 395, "2025-01-10")
    ])
    .when(issue(acme(), batch(2), General, 10, "2025-03-10"))
    .then_refused(Refusal::QuotaExceeded {
        voucher_type: General,
        year: 2025,
        quota: 400,
        issued: 395,
        requested: 10,
    });
}

#[test]
fn rule_06_quota_of_one_type_leaves_the_others_untouched() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 400, "2025-01-10")
    ])
    .when(issue(acme(), batch(2), Languages, 100, "2025-03-10"))
    .then_events(|events| {
        let issued = the_issuance(events);
        assert_eq!((issued.quota, issued.issued_in_year), (100, 100));
    });
}

#[test]
fn rule_06_quota_of_the_previous_year_does_not_count() {
    given(events![
        budget_opened(2024, dec!(1000000.00)),
        company_registered(acme(), 2024),
        vouchers_issued(acme(), batch(1), General, 400, "2024-12-31"),
        world(),
    ])
    .when(issue(acme(), batch(2), General, 400, "2025-01-01"))
    .then_events(|events| {
        assert_eq!(the_issuance(events).issued_in_year, 400);
    });
}

// =============================================================================================
// Rule 7: the Region's share is committed against the regional budget of the payment year;
// issuance beyond what is still available is refused. Budgets are opened and adjusted by the
// administration.

#[test]
fn rule_07_budget_opened_for_a_year() {
    let state = given(events![])
        .when(open_budget(2026, dec!(7657000)))
        .then(events![budget_opened(2026, dec!(7657000.00))]);
    assert_eq!(state.budgets[&2026].available_eur(), dec!(7657000.00));
}

#[test]
fn rule_07_budget_refused_when_already_open() {
    given(world())
        .when(open_budget(2025, dec!(1000.00)))
        .then_refused(Refusal::BudgetAlreadyOpened { year: 2025 });
}

#[test]
fn rule_07_issuance_commits_the_region_share_to_the_budget_of_the_payment_year() {
    let state = given(events![world(), budget_opened(2026, dec!(1000000.00))])
        .when(issue(acme(), batch(1), General, 10, "2025-03-10"))
        .then_events(|_| {});
    let budget = &state.budgets[&2025];
    assert_eq!(budget.committed_eur, dec!(150.00));
    assert_eq!(budget.spent_eur, dec!(0));
    assert_eq!(budget.available_eur(), dec!(999850.00));
    assert_eq!(state.budgets[&2026].committed_eur, dec!(0));
}

#[test]
fn rule_07_issuance_refused_when_the_budget_still_available_is_too_low() {
    given(events![
        budget_opened(2025, dec!(100.00)),
        company_registered(acme(), 2025),
    ])
    .when(issue(acme(), batch(1), General, 10, "2025-03-10"))
    .then_refused(Refusal::BudgetExhausted {
        year: 2025,
        available_eur: dec!(100.00),
        needed_eur: dec!(150.00),
    });
}

#[test]
fn rule_07_issuance_refused_when_no_budget_is_open_for_the_payment_year() {
    given(events![world(), company_registered(acme(), 2024)])
        .when(issue(acme(), batch(1), General, 10, "2024-05-01"))
        .then_refused(Refusal::BudgetNotOpened { year: 2024 });
}

#[test]
fn rule_07_budget_adjusted_to_a_new_allocation() {
    let state = given(world())
        .when(adjust_budget(2025, dec!(7657000.00)))
        .then(events![BudgetAdjusted {
            year: 2025,
            allocated_eur: dec!(7657000.00),
            previous_allocated_eur: dec!(1000000.00),
            reason: ADJUSTMENT_REASON.to_owned(),
        }]);
    assert_eq!(state.budgets[&2025].allocated_eur, dec!(7657000.00));
}

/// 10 vouchers issued (EUR 150 of region share), 4 of them redeemed: EUR 90 committed and
/// EUR 60 spent.
fn budget_partly_committed_and_spent() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2025-01-10"),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-02-01",
            vec![draw(batch(1), 4, "2025-01-10")]
        ),
    ]
}

#[test]
fn rule_07_budget_adjustment_allowed_down_to_what_is_committed_and_spent() {
    let state = given(budget_partly_committed_and_spent())
        .when(adjust_budget(2025, dec!(150.00)))
        .then_events(|_| {});
    assert_eq!(state.budgets[&2025].available_eur(), dec!(0));
}

#[test]
fn rule_07_budget_adjustment_below_what_is_committed_and_spent_refused() {
    given(budget_partly_committed_and_spent())
        .when(adjust_budget(2025, dec!(149.99)))
        .then_refused(Refusal::BudgetBelowUsed {
            year: 2025,
            used_eur: dec!(150.00),
        });
}

#[test]
fn rule_07_budget_adjustment_refused_when_the_budget_is_not_open() {
    given(world())
        .when(adjust_budget(2026, dec!(1000.00)))
        .then_refused(Refusal::BudgetNotOpened { year: 2026 });
}

// =============================================================================================
// Rule 8: a batch paid in month M is valid until the last day of month M + 11.

#[test]
fn rule_08_batch_paid_in_september_2025_valid_until_31_august_2026() {
    given(world())
        .today("2025-09-30")
        .when(issue(acme(), batch(1), General, 10, "2025-09-10"))
        .then_events(|events| {
            assert_eq!(the_issuance(events).valid_until, date("2026-08-31"));
        });
}

fn vouchers_paid_in_september_2025() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2025-09-10")
    ]
}

#[test]
fn rule_08_redemption_allowed_on_the_last_day_of_validity() {
    given(vouchers_paid_in_september_2025())
        .today("2026-09-30")
        .when(redeem(redemption(1), acme(), General, 5, "2026-08-31"))
        .then(events![hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2026-08-31",
            vec![draw(batch(1), 5, "2025-09-10")]
        )]);
}

#[test]
fn rule_08_redemption_refused_the_day_after_validity_ends() {
    given(vouchers_paid_in_september_2025())
        .today("2026-09-30")
        .when(redeem(redemption(1), acme(), General, 5, "2026-09-01"))
        .then_refused(Refusal::VouchersExpired {
            unexpired: 0,
            requested: 5,
        });
}

// =============================================================================================
// Rule 9: the provider's and the module's approvals are in force on the training date, and the
// module accepts the voucher type. Approvals are given and withdrawn by the administration;
// behavioural, well-being and personal-development modules are never approved.

fn vouchers_of_every_type() -> Vec<Event> {
    events![
        world_with_two_providers(),
        vouchers_issued(acme(), batch(1), General, 50, "2025-01-10"),
        vouchers_issued(acme(), batch(2), Languages, 50, "2025-01-10"),
        vouchers_issued(acme(), batch(3), EcoClimate, 50, "2025-01-10"),
    ]
}

#[test]
fn rule_09_redemption_allowed_with_an_approved_provider_and_module() {
    let state = given(vouchers_of_every_type())
        .when(redeem(redemption(1), acme(), General, 5, "2025-03-01"))
        .then(events![hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 5, "2025-01-10")]
        )]);
    assert_eq!(state.companies[&acme()].balance(General), 45);
}

#[test]
fn rule_09_redemption_refused_when_training_date_is_after_today() {
    given(vouchers_of_every_type())
        .today("2025-06-30")
        .when(redeem(redemption(1), acme(), General, 5, "2025-07-01"))
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

#[test]
fn rule_09_redemption_allowed_the_day_before_the_provider_withdrawal() {
    given(events![
        vouchers_of_every_type(),
        provider_withdrawn(formaform(), "2025-05-01")
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-04-30"))
    .then_events(|events| {
        assert_eq!(the_redemption(events).training_date, date("2025-04-30"));
    });
}

#[test]
fn rule_09_redemption_refused_on_the_provider_withdrawal_day() {
    given(events![
        vouchers_of_every_type(),
        provider_withdrawn(formaform(), "2025-05-01")
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-05-01"))
    .then_refused(Refusal::ProviderNotApproved {
        date: date("2025-05-01"),
    });
}

fn provider_approved_for_march_and_april_2025() -> Vec<Event> {
    events![
        budget_opened(2025, dec!(1000000.00)),
        ProviderApproved {
            approved_until: Some(date("2025-04-30")),
            ..provider_approved(formaform(), "2025-03-01")
        },
        module_approved(spreadsheet_module(), formaform()),
        company_registered(acme(), 2025),
        vouchers_issued(acme(), batch(1), General, 50, "2025-01-10"),
    ]
}

#[test]
fn rule_09_redemption_allowed_on_the_first_and_last_day_of_the_provider_approval() {
    for training_date in ["2025-03-01", "2025-04-30"] {
        given(provider_approved_for_march_and_april_2025())
            .when(redeem(redemption(1), acme(), General, 5, training_date))
            .then_events(|events| {
                assert_eq!(the_redemption(events).hours, 5);
            });
    }
}

#[test]
fn rule_09_redemption_refused_before_or_after_the_provider_approval_period() {
    for training_date in ["2025-02-28", "2025-05-01"] {
        given(provider_approved_for_march_and_april_2025())
            .when(redeem(redemption(1), acme(), General, 5, training_date))
            .then_refused(Refusal::ProviderNotApproved {
                date: date(training_date),
            });
    }
}

#[test]
fn rule_09_redemption_allowed_the_day_before_the_module_withdrawal() {
    given(events![
        vouchers_of_every_type(),
        module_withdrawn(spreadsheet_module(), formaform(), "2025-05-01")
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-04-30"))
    .then_events(|events| {
        assert_eq!(the_redemption(events).module_id, spreadsheet_module());
    });
}

#[test]
fn rule_09_redemption_refused_on_the_module_withdrawal_day() {
    given(events![
        vouchers_of_every_type(),
        module_withdrawn(spreadsheet_module(), formaform(), "2025-05-01")
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-05-01"))
    .then_refused(Refusal::ModuleNotApproved {
        date: date("2025-05-01"),
    });
}

#[test]
fn rule_09_redemption_refused_outside_the_module_approval_period() {
    let module_for_march_and_april = ModuleApproved {
        approved_from: date("2025-03-01"),
        approved_until: Some(date("2025-04-30")),
        ..module_approved(spreadsheet_module(), formaform())
    };
    let history = events![
        budget_opened(2025, dec!(1000000.00)),
        provider_approved(formaform(), "2020-01-01"),
        module_for_march_and_april,
        company_registered(acme(), 2025),
        vouchers_issued(acme(), batch(1), General, 50, "2025-01-10"),
    ];
    for training_date in ["2025-02-28", "2025-05-01"] {
        given(history.clone())
            .when(redeem(redemption(1), acme(), General, 5, training_date))
            .then_refused(Refusal::ModuleNotApproved {
                date: date(training_date),
            });
    }
    for training_date in ["2025-03-01", "2025-04-30"] {
        given(history.clone())
            .when(redeem(redemption(1), acme(), General, 5, training_date))
            .then_events(|events| {
                assert_eq!(the_redemption(events).training_date, date(training_date));
            });
    }
}

#[test]
fn rule_09_redemption_allowed_with_every_voucher_type_the_module_accepts() {
    for voucher_type in [General, Languages] {
        given(vouchers_of_every_type())
            .when(redeem(redemption(1), acme(), voucher_type, 5, "2025-03-01"))
            .then_events(|events| {
                assert_eq!(the_redemption(events).voucher_type, voucher_type);
            });
    }
}

#[test]
fn rule_09_redemption_refused_with_a_voucher_type_the_module_does_not_accept() {
    given(vouchers_of_every_type())
        .when(redeem(redemption(1), acme(), EcoClimate, 5, "2025-03-01"))
        .then_refused(Refusal::VoucherTypeNotAccepted {
            voucher_type: EcoClimate,
        });
}

#[test]
fn rule_09_redemption_refused_in_a_module_of_another_provider() {
    given(vouchers_of_every_type())
        .when(RedeemHours {
            module_id: welding_module(),
            ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
        })
        .then_refused(Refusal::ModuleNotOfProvider);
}

#[test]
fn rule_09_redemption_allowed_by_the_other_provider_in_its_own_module() {
    given(vouchers_of_every_type())
        .when(RedeemHours {
            provider_id: other_provider(),
            module_id: welding_module(),
            ..redeem(redemption(1), acme(), EcoClimate, 5, "2025-03-01")
        })
        .then_events(|events| {
            let redeemed = the_redemption(events);
            assert_eq!(redeemed.provider_id, other_provider());
            assert_eq!(redeemed.draws, vec![draw(batch(3), 5, "2025-01-10")]);
        });
}

#[test]
fn rule_09_redemption_refused_for_an_unknown_provider() {
    given(vouchers_of_every_type())
        .when(RedeemHours {
            provider_id: id("AG-9999"),
            ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
        })
        .then_refused(Refusal::ProviderNotFound);
}

#[test]
fn rule_09_redemption_refused_for_an_unknown_module() {
    given(vouchers_of_every_type())
        .when(RedeemHours {
            module_id: id("MOD-UNKNOWN"),
            ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
        })
        .then_refused(Refusal::ModuleNotFound);
}

#[test]
fn rule_09_provider_approved() {
    given(events![])
        .when(approve_provider(formaform(), "2025-01-01"))
        .then(events![provider_approved(formaform(), "2025-01-01")]);
}

#[test]
fn rule_09_provider_approval_refused_while_another_is_in_force_over_the_period() {
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(approve_provider(formaform(), "2025-01-01"))
        .then_refused(Refusal::ProviderAlreadyApproved);
    given(events![ProviderApproved {
        approved_until: Some(date("2024-12-31")),
        ..provider_approved(formaform(), "2020-01-01")
    }])
    .when(ApproveProvider {
        approved_until: Some(date("2025-12-31")),
        ..approve_provider(formaform(), "2019-01-01")
    })
    .then_refused(Refusal::ProviderAlreadyApproved);
}

#[test]
fn rule_09_provider_approved_again_after_its_approval_period() {
    given(events![ProviderApproved {
        approved_until: Some(date("2024-12-31")),
        ..provider_approved(formaform(), "2020-01-01")
    }])
    .when(approve_provider(formaform(), "2025-01-01"))
    .then(events![provider_approved(formaform(), "2025-01-01")]);
}

#[test]
fn rule_09_provider_approved_again_from_its_withdrawal_day() {
    let state = given(events![
        provider_approved(formaform(), "2020-01-01"),
        provider_withdrawn(formaform(), "2025-05-01"),
    ])
    .when(approve_provider(formaform(), "2025-05-01"))
    .then(events![provider_approved(formaform(), "2025-05-01")]);
    let provider = &state.providers[&formaform()];
    assert!(provider.approved_on(date("2025-04-30")));
    assert!(provider.approved_on(date("2025-05-01")));
}

#[test]
fn rule_09_provider_approval_refused_from_the_day_before_its_withdrawal_day() {
    given(events![
        provider_approved(formaform(), "2020-01-01"),
        provider_withdrawn(formaform(), "2025-05-01"),
    ])
    .when(approve_provider(formaform(), "2025-04-30"))
    .then_refused(Refusal::ProviderAlreadyApproved);
}

#[test]
fn rule_09_provider_withdrawn() {
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(withdraw_provider(formaform(), "2025-05-01"))
        .then(events![provider_withdrawn(formaform(), "2025-05-01")]);
}

#[test]
fn rule_09_provider_withdrawal_refused_when_already_withdrawn() {
    given(events![
        provider_approved(formaform(), "2020-01-01"),
        provider_withdrawn(formaform(), "2025-05-01"),
    ])
    .when(withdraw_provider(formaform(), "2025-06-01"))
    .then_refused(Refusal::ProviderAlreadyWithdrawn);
}

#[test]
fn rule_09_provider_withdrawal_refused_for_an_unknown_provider() {
    given(events![])
        .when(withdraw_provider(formaform(), "2025-05-01"))
        .then_refused(Refusal::ProviderNotFound);
}

#[test]
fn rule_09_module_approved_with_its_voucher_types_and_themes_in_order() {
    given(events![provider_approved(formaform(), "2020-01-01")])
        .when(ApproveModule {
            accepted_voucher_types: vec![Languages, General, Languages],
            themes: vec![Theme::Digital, Theme::Ai, Theme::Digital],
            ..approve_module(spreadsheet_module(), formaform())
        })
        .then(events![ModuleApproved {
            accepted_voucher_types: vec![General, Languages],
            themes: vec![Theme::Ai, Theme::Digital],
            ..module_approved(spreadsheet_module(), formaform())
        }]);
}

#[test]
fn rule_09_module_approval_refused_for_an_unknown_provider() {
    given(events![])
        .when(approve_module(spreadsheet_module(), formaform()))
        .then_refused(Refusal::ProviderNotFound);
}

#[test]
fn rule_09_module_approval_refused_when_the_module_is_already_approved() {
    given(world_with_two_providers())
        .when(approve_module(spreadsheet_module(), other_provider()))
        .then_refused(Refusal::ModuleAlreadyApproved);
}

#[test]
fn rule_09_behavioural_well_being_and_personal_development_modules_never_approved() {
    for theme in [
        Theme::Behavioural,
        Theme::WellBeing,
        Theme::PersonalDevelopment,
    ] {
        for themes in [vec![theme], vec![Theme::Management, theme]] {
            given(events![provider_approved(formaform(), "2020-01-01")])
                .when(ApproveModule {
                    themes,
                    ..approve_module(spreadsheet_module(), formaform())
                })
                .then_refused(Refusal::ThemeNotApprovable { theme });
        }
    }
}

#[test]
fn rule_09_modules_of_every_other_theme_approved() {
    for theme in [
        Theme::Ai,
        Theme::Digital,
        Theme::Green,
        Theme::Languages,
        Theme::Management,
        Theme::Technical,
        Theme::Safety,
        Theme::Other,
    ] {
        given(events![provider_approved(formaform(), "2020-01-01")])
            .when(ApproveModule {
                themes: vec![theme],
                ..approve_module(spreadsheet_module(), formaform())
            })
            .then(events![ModuleApproved {
                themes: vec![theme],
                ..module_approved(spreadsheet_module(), formaform())
            }]);
    }
}

#[test]
fn rule_09_module_withdrawn() {
    given(world())
        .when(withdraw_module(spreadsheet_module(), "2025-05-01"))
        .then(events![module_withdrawn(
            spreadsheet_module(),
            formaform(),
            "2025-05-01"
        )]);
}

#[test]
fn rule_09_module_withdrawal_refused_when_already_withdrawn() {
    given(events![
        world(),
        module_withdrawn(spreadsheet_module(), formaform(), "2025-05-01")
    ])
    .when(withdraw_module(spreadsheet_module(), "2025-06-01"))
    .then_refused(Refusal::ModuleAlreadyWithdrawn);
}

#[test]
fn rule_09_module_withdrawal_refused_for_an_unknown_module() {
    given(world())
        .when(withdraw_module(id("MOD-UNKNOWN"), "2025-05-01"))
        .then_refused(Refusal::ModuleNotFound);
}

// =============================================================================================
// Rule 10: who may be trained with vouchers.

#[test]
fn rule_10_employees_temporary_workers_managers_helping_spouses_and_secondary_self_employed_allowed(
) {
    for trainee_status in [
        TraineeStatus::Employee,
        TraineeStatus::TemporaryWorker,
        TraineeStatus::SelfEmployedManagerOrPartner,
        TraineeStatus::HelpingSpouse,
        TraineeStatus::SecondarySelfEmployed,
    ] {
        given(vouchers_of_every_type())
            .when(RedeemHours {
                trainee_status,
                ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
            })
            .then_events(|events| {
                assert_eq!(the_redemption(events).trainee_status, trainee_status);
            });
    }
}

#[test]
fn rule_10_pfi_trainees_apprentices_students_and_interns_refused() {
    for status in [
        TraineeStatus::PfiTrainee,
        TraineeStatus::Apprentice,
        TraineeStatus::Student,
        TraineeStatus::Intern,
    ] {
        given(vouchers_of_every_type())
            .when(RedeemHours {
                trainee_status: status,
                ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
            })
            .then_refused(Refusal::TraineeNotEligible { status });
    }
}

// =============================================================================================
// Rule 11: whole hours, at least 1, at most the module's approved length for one worker.

#[test]
fn rule_11_redemption_of_zero_hours_refused() {
    given(vouchers_of_every_type())
        .when(redeem(redemption(1), acme(), General, 0, "2025-03-01"))
        .then_refused(Refusal::InvalidHours {
            hours_max: MODULE_HOURS_MAX,
        });
}

#[test]
fn rule_11_redemption_of_one_hour_allowed() {
    given(vouchers_of_every_type())
        .when(redeem(redemption(1), acme(), General, 1, "2025-03-01"))
        .then(events![hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 1, "2025-01-10")]
        )]);
}

#[test]
fn rule_11_redemption_of_the_module_length_allowed() {
    given(vouchers_of_every_type())
        .when(redeem(
            redemption(1),
            acme(),
            General,
            MODULE_HOURS,
            "2025-03-01",
        ))
        .then_events(|events| {
            assert_eq!(the_redemption(events).hours, 40);
        });
}

#[test]
fn rule_11_redemption_of_the_module_length_plus_one_refused() {
    given(vouchers_of_every_type())
        .when(redeem(
            redemption(1),
            acme(),
            General,
            MODULE_HOURS + 1,
            "2025-03-01",
        ))
        .then_refused(Refusal::HoursExceedModuleLength {
            hours_max: 40,
            already: 0,
            requested: 41,
        });
}

#[test]
fn rule_11_redemption_above_the_longest_module_the_ledger_accepts_refused() {
    given(vouchers_of_every_type())
        .when(redeem(
            redemption(1),
            acme(),
            General,
            MODULE_HOURS_MAX + 1,
            "2025-03-01",
        ))
        .then_refused(Refusal::InvalidHours {
            hours_max: MODULE_HOURS_MAX,
        });
}

fn worker_1_trained_30_hours() -> Vec<Event> {
    events![
        vouchers_of_every_type(),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 30, "2025-01-10")]
        ),
    ]
}

#[test]
fn rule_11_cumulative_hours_of_one_worker_in_one_module_allowed_up_to_its_length() {
    given(worker_1_trained_30_hours())
        .when(redeem(redemption(2), acme(), Languages, 10, "2025-03-08"))
        .then_events(|events| {
            assert_eq!(the_redemption(events).hours, 10);
        });
}

#[test]
fn rule_11_cumulative_hours_of_one_worker_in_one_module_refused_beyond_its_length() {
    given(worker_1_trained_30_hours())
        .when(redeem(redemption(2), acme(), Languages, 11, "2025-03-08"))
        .then_refused(Refusal::HoursExceedModuleLength {
            hours_max: 40,
            already: 30,
            requested: 11,
        });
}

#[test]
fn rule_11_hours_of_another_worker_do_not_count() {
    given(worker_1_trained_30_hours())
        .when(RedeemHours {
            worker: worker(2),
            ..redeem(redemption(2), acme(), General, 20, "2025-03-08")
        })
        .then_events(|events| {
            assert_eq!(the_redemption(events).worker, worker(2));
        });
}

#[test]
fn rule_11_reversed_hours_no_longer_count() {
    let history = events![
        worker_1_trained_30_hours(),
        redemption_reversed(
            &hours_redeemed(
                redemption(1),
                acme(),
                General,
                "2025-03-01",
                vec![draw(batch(1), 30, "2025-01-10")]
            ),
            "2025-03-02"
        ),
    ];
    given(history)
        .when(redeem(
            redemption(2),
            acme(),
            General,
            MODULE_HOURS,
            "2025-03-08",
        ))
        .then_events(|events| {
            assert_eq!(the_redemption(events).hours, 40);
        });
}

// =============================================================================================
// Rule 12: the wallet holds enough unexpired vouchers of the type on the training date; oldest
// expiry first; a voucher is spent at most once. (FIFO across many batches in `edges.rs`.)

fn five_general_vouchers() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 5, "2025-01-10")
    ]
}

#[test]
fn rule_12_redemption_of_exactly_what_the_wallet_holds_allowed() {
    let state = given(five_general_vouchers())
        .when(redeem(redemption(1), acme(), General, 5, "2025-03-01"))
        .then_events(|_| {});
    assert_eq!(state.companies[&acme()].balance(General), 0);
}

#[test]
fn rule_12_redemption_of_more_than_the_wallet_holds_refused() {
    given(five_general_vouchers())
        .when(redeem(redemption(1), acme(), General, 6, "2025-03-01"))
        .then_refused(Refusal::InsufficientVouchers {
            available: 5,
            requested: 6,
        });
}

#[test]
fn rule_12_a_voucher_is_spent_at_most_once() {
    given(events![
        five_general_vouchers(),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 5, "2025-01-10")]
        ),
    ])
    .when(RedeemHours {
        worker: worker(2),
        ..redeem(redemption(2), acme(), General, 1, "2025-03-01")
    })
    .then_refused(Refusal::InsufficientVouchers {
        available: 0,
        requested: 1,
    });
}

#[test]
fn rule_12_vouchers_of_another_type_do_not_count() {
    given(events![
        five_general_vouchers(),
        vouchers_issued(acme(), batch(2), Languages, 20, "2025-01-10")
    ])
    .when(redeem(redemption(1), acme(), General, 6, "2025-03-01"))
    .then_refused(Refusal::InsufficientVouchers {
        available: 5,
        requested: 6,
    });
}

#[test]
fn rule_12_vouchers_of_another_company_do_not_count() {
    given(events![
        five_general_vouchers(),
        company_registered(globex(), 2025),
        vouchers_issued(globex(), batch(2), General, 20, "2025-01-10")
    ])
    .when(redeem(redemption(1), acme(), General, 6, "2025-03-01"))
    .then_refused(Refusal::InsufficientVouchers {
        available: 5,
        requested: 6,
    });
}

#[test]
fn rule_12_vouchers_paid_after_the_training_date_do_not_count() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 5, "2025-03-10")
    ])
    .when(redeem(redemption(1), acme(), General, 1, "2025-03-09"))
    .then_refused(Refusal::InsufficientVouchers {
        available: 0,
        requested: 1,
    });
}

#[test]
fn rule_12_vouchers_paid_on_the_training_date_count() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 5, "2025-03-10")
    ])
    .when(redeem(redemption(1), acme(), General, 1, "2025-03-10"))
    .then_events(|events| {
        assert_eq!(
            the_redemption(events).draws,
            vec![draw(batch(1), 1, "2025-03-10")]
        );
    });
}

#[test]
fn rule_12_redemption_refused_when_only_expired_vouchers_would_make_up_the_hours() {
    given(events![
        budget_opened(2024, dec!(1000000.00)),
        company_registered(acme(), 2024),
        vouchers_issued(acme(), batch(1), General, 10, "2024-01-10"),
        world(),
        vouchers_issued(acme(), batch(2), General, 3, "2025-01-10"),
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-03-01"))
    .then_refused(Refusal::VouchersExpired {
        unexpired: 3,
        requested: 5,
    });
}

#[test]
fn rule_12_redemption_draws_the_oldest_expiry_first_and_spills_into_the_next() {
    given(events![
        world(),
        vouchers_issued(acme(), batch(2), General, 10, "2025-02-10"),
        vouchers_issued(acme(), batch(1), General, 3, "2025-01-10"),
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-03-01"))
    .then(events![hours_redeemed(
        redemption(1),
        acme(),
        General,
        "2025-03-01",
        vec![
            draw(batch(1), 3, "2025-01-10"),
            draw(batch(2), 2, "2025-02-10")
        ]
    )]);
}

#[test]
fn rule_12_redemption_refused_for_a_company_unknown_to_the_ledger() {
    given(world())
        .when(redeem(redemption(1), globex(), General, 1, "2025-03-01"))
        .then_refused(Refusal::CompanyNotFound);
}

// =============================================================================================
// Rule 13: the provider is owed EUR 30.00 per voucher redeemed; the operator records payouts.

#[test]
fn rule_13_provider_owed_30_euros_per_voucher_redeemed() {
    let state = given(five_general_vouchers())
        .when(redeem(redemption(1), acme(), General, 5, "2025-03-01"))
        .then_events(|events| {
            assert_eq!(the_redemption(events).amount_owed_eur, dec!(150.00));
        });
    let provider = &state.providers[&formaform()];
    assert_eq!(provider.owed_eur, dec!(150.00));
    assert_eq!(provider.redeemed_hours, 5);
    assert_eq!(
        state.balances[&Account::ProviderPayable(formaform())],
        dec!(150.00)
    );
    let budget = &state.budgets[&2025];
    assert_eq!(budget.committed_eur, dec!(0));
    assert_eq!(budget.spent_eur, dec!(75.00));
}

fn formaform_owed_150_euros() -> Vec<Event> {
    events![
        five_general_vouchers(),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 5, "2025-01-10")]
        ),
    ]
}

#[test]
fn rule_13_payout_of_everything_owed_allowed() {
    let state = given(formaform_owed_150_euros())
        .when(payout(formaform(), dec!(150.00), "2025-04-01"))
        .then(events![payout_recorded(
            formaform(),
            dec!(150.00),
            "2025-04-01"
        )]);
    let provider = &state.providers[&formaform()];
    assert_eq!(provider.owed_eur, dec!(0));
    assert_eq!(provider.paid_eur, dec!(150.00));
}

#[test]
fn rule_13_payout_of_more_than_owed_refused() {
    given(formaform_owed_150_euros())
        .when(payout(formaform(), dec!(150.01), "2025-04-01"))
        .then_refused(Refusal::ProviderBalanceTooLow {
            owed_eur: dec!(150.00),
            amount_eur: dec!(150.01),
        });
}

#[test]
fn rule_13_payout_of_zero_refused() {
    given(formaform_owed_150_euros())
        .when(payout(formaform(), dec!(0), "2025-04-01"))
        .then_refused(Refusal::InvalidAmount {
            field: "amount_eur",
        });
}

#[test]
fn rule_13_payout_to_an_unknown_provider_refused() {
    given(formaform_owed_150_euros())
        .when(payout(other_provider(), dec!(10.00), "2025-04-01"))
        .then_refused(Refusal::ProviderNotFound);
}

#[test]
fn rule_13_payout_dated_after_today_refused() {
    given(formaform_owed_150_euros())
        .today("2025-06-30")
        .when(payout(formaform(), dec!(150.00), "2025-07-01"))
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

// =============================================================================================
// Rule 14: a redemption can be reversed; the vouchers go back to the batches they came from,
// keeping their original expiry.

fn redeemed_from_two_batches() -> ledger_domain::event::HoursRedeemed {
    hours_redeemed(
        redemption(1),
        acme(),
        General,
        "2025-03-01",
        vec![
            draw(batch(1), 3, "2025-01-10"),
            draw(batch(2), 2, "2025-02-10"),
        ],
    )
}

fn history_redeemed_from_two_batches() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 3, "2025-01-10"),
        vouchers_issued(acme(), batch(2), General, 10, "2025-02-10"),
        redeemed_from_two_batches(),
    ]
}

#[test]
fn rule_14_reversal_returns_the_vouchers_to_the_batches_they_came_from() {
    let state = given(history_redeemed_from_two_batches())
        .when(reverse(redemption(1), formaform(), "2025-03-05"))
        .then(events![redemption_reversed(
            &redeemed_from_two_batches(),
            "2025-03-05"
        )]);
    let batches = &state.companies[&acme()].batches;
    assert_eq!(
        (batches[&batch(1)].remaining, batches[&batch(1)].valid_until),
        (3, date("2025-12-31"))
    );
    assert_eq!(
        (batches[&batch(2)].remaining, batches[&batch(2)].valid_until),
        (10, date("2026-01-31"))
    );
    assert_eq!(state.providers[&formaform()].owed_eur, dec!(0));
    let budget = &state.budgets[&2025];
    assert_eq!(
        (budget.committed_eur, budget.spent_eur),
        (dec!(195.00), dec!(0))
    );
    assert!(state.redemptions[&redemption(1)].reversed);
}

#[test]
fn rule_14_reversal_refused_when_already_reversed() {
    given(events![
        history_redeemed_from_two_batches(),
        redemption_reversed(&redeemed_from_two_batches(), "2025-03-05"),
    ])
    .when(reverse(redemption(1), formaform(), "2025-03-06"))
    .then_refused(Refusal::RedemptionAlreadyReversed);
}

#[test]
fn rule_14_reversal_refused_for_another_providers_redemption() {
    given(events![
        history_redeemed_from_two_batches(),
        provider_approved(other_provider(), "2020-01-01"),
    ])
    .when(reverse(redemption(1), other_provider(), "2025-03-05"))
    .then_refused(Refusal::RedemptionNotOfProvider);
}

#[test]
fn rule_14_reversal_refused_for_an_unknown_redemption() {
    given(history_redeemed_from_two_batches())
        .when(reverse(redemption(2), formaform(), "2025-03-05"))
        .then_refused(Refusal::RedemptionNotFound);
}

#[test]
fn rule_14_reversal_dated_before_its_training_refused() {
    given(history_redeemed_from_two_batches())
        .when(reverse(redemption(1), formaform(), "2025-02-28"))
        .then_refused(Refusal::ReversalBeforeTraining {
            reversed_on: date("2025-02-28"),
            training_date: date("2025-03-01"),
        });
    // The day of the training itself is allowed: a session cancelled on the day.
    given(history_redeemed_from_two_batches())
        .when(reverse(redemption(1), formaform(), "2025-03-01"))
        .then_events(|_| {});
}

#[test]
fn rule_14_reversal_dated_after_today_refused() {
    given(history_redeemed_from_two_batches())
        .today("2025-06-30")
        .when(reverse(redemption(1), formaform(), "2025-07-01"))
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

#[test]
fn rule_14_reversal_after_a_payout_that_leaves_too_little_owed_refused() {
    given(events![
        history_redeemed_from_two_batches(),
        payout_recorded(formaform(), dec!(100.00), "2025-04-01"),
    ])
    .when(reverse(redemption(1), formaform(), "2025-04-05"))
    .then_refused(Refusal::ProviderBalanceTooLow {
        owed_eur: dec!(50.00),
        amount_eur: dec!(150.00),
    });
}

#[test]
fn rule_14_reversal_after_a_payout_that_leaves_enough_owed_allowed() {
    let state = given(events![
        history_redeemed_from_two_batches(),
        hours_redeemed(
            redemption(2),
            acme(),
            General,
            "2025-03-02",
            vec![draw(batch(2), 5, "2025-02-10")]
        ),
        payout_recorded(formaform(), dec!(100.00), "2025-04-01"),
    ])
    .when(reverse(redemption(1), formaform(), "2025-04-05"))
    .then_events(|_| {});
    assert_eq!(state.providers[&formaform()].owed_eur, dec!(50.00));
}

#[test]
fn rule_14_reversal_after_expiry_returns_vouchers_with_their_original_expiry() {
    let history = events![
        history_redeemed_from_two_batches(),
        vouchers_expired(
            acme(),
            batch(2),
            General,
            8,
            "2025-02-10",
            "2026-02-01",
            false
        ),
    ];
    let state = given(history)
        .today("2026-03-01")
        .when(reverse(redemption(1), formaform(), "2026-03-01"))
        .then_events(|_| {});
    let batch_2 = &state.companies[&acme()].batches[&batch(2)];
    assert_eq!(
        (batch_2.remaining, batch_2.valid_until),
        (2, date("2026-01-31"))
    );
    // The next expiry run takes the returned vouchers of the expired batch.
    given(events![
        history_redeemed_from_two_batches(),
        vouchers_expired(
            acme(),
            batch(2),
            General,
            8,
            "2025-02-10",
            "2026-02-01",
            false
        ),
        redemption_reversed(&redeemed_from_two_batches(), "2026-03-01"),
    ])
    .today("2026-03-01")
    .when(expire("2026-03-01"))
    .then(events![
        vouchers_expired(
            acme(),
            batch(1),
            General,
            3,
            "2025-01-10",
            "2026-03-01",
            false
        ),
        vouchers_expired(
            acme(),
            batch(2),
            General,
            2,
            "2025-02-10",
            "2026-03-01",
            false
        ),
    ]);
}

// =============================================================================================
// Rule 15: vouchers past their validity expire; the Region's share goes back to the budget of
// the year they were issued in; the company's share is refunded only under the policy switch.

/// 10 vouchers paid on 2024-03-10 (valid until 2025-02-28), 4 of them redeemed.
fn vouchers_of_2024_partly_used() -> Vec<Event> {
    events![
        budget_opened(2024, dec!(3000.00)),
        company_registered(acme(), 2024),
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2024-03-10"),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2024-06-01",
            vec![draw(batch(1), 4, "2024-03-10")]
        ),
    ]
}

#[test]
fn rule_15_vouchers_not_expired_on_their_last_valid_day() {
    given(vouchers_of_2024_partly_used())
        .when(expire("2025-02-28"))
        .then(events![]);
}

#[test]
fn rule_15_vouchers_expire_the_day_after_their_last_valid_day() {
    given(vouchers_of_2024_partly_used())
        .when(expire("2025-03-01"))
        .then(events![vouchers_expired(
            acme(),
            batch(1),
            General,
            6,
            "2024-03-10",
            "2025-03-01",
            false
        )]);
}

#[test]
fn rule_15_region_share_released_to_the_budget_of_the_year_of_issue() {
    let state = given(vouchers_of_2024_partly_used())
        .when(expire("2025-03-01"))
        .then_events(|_| {});
    let budget_2024 = &state.budgets[&2024];
    assert_eq!(budget_2024.allocated_eur, dec!(3000.00));
    assert_eq!(budget_2024.committed_eur, dec!(0));
    assert_eq!(budget_2024.spent_eur, dec!(60.00));
    assert_eq!(budget_2024.released_eur, dec!(90.00));
    assert_eq!(budget_2024.available_eur(), dec!(2940.00));
    let budget_2025 = &state.budgets[&2025];
    assert_eq!(
        (budget_2025.committed_eur, budget_2025.released_eur),
        (dec!(0), dec!(0))
    );
    assert_eq!(state.companies[&acme()].batches[&batch(1)].remaining, 0);
}

#[test]
fn rule_15_company_share_of_expired_vouchers_not_refunded_by_default() {
    let state = given(vouchers_of_2024_partly_used())
        .when(expire("2025-03-01"))
        .then_events(|events| {
            let expired = the_expiries(events);
            assert!(!expired[0].employer_share_refunded);
            assert_eq!(expired[0].employer_share_eur, dec!(90.00));
        });
    assert_eq!(state.balances[&Account::CompanyExpired], dec!(90.00));
    assert!(!state.balances.contains_key(&Account::CompanyRefunded));
    assert_eq!(state.balances[&Account::RegionBudget(2024)], dec!(-60.00));
}

#[test]
fn rule_15_company_share_of_expired_vouchers_refunded_when_the_policy_switch_is_on() {
    let state = given(vouchers_of_2024_partly_used())
        .policy(policy_refunding_on_expiry())
        .when(expire("2025-03-01"))
        .then(events![vouchers_expired(
            acme(),
            batch(1),
            General,
            6,
            "2024-03-10",
            "2025-03-01",
            true
        )]);
    assert_eq!(state.balances[&Account::CompanyRefunded], dec!(90.00));
    assert!(!state.balances.contains_key(&Account::CompanyExpired));
}

#[test]
fn rule_15_released_region_share_can_be_committed_again() {
    let history = events![
        budget_opened(2025, dec!(150.00)),
        company_registered(acme(), 2025),
        vouchers_issued(acme(), batch(1), General, 10, "2025-01-10"),
    ];
    given(history.clone())
        .today("2025-12-31")
        .when(issue(acme(), batch(2), General, 1, "2025-12-31"))
        .then_refused(Refusal::BudgetExhausted {
            year: 2025,
            available_eur: dec!(0.00),
            needed_eur: dec!(15.00),
        });
    let expired = vouchers_expired(
        acme(),
        batch(1),
        General,
        10,
        "2025-01-10",
        "2026-01-01",
        false,
    );
    given(events![history, expired])
        .today("2026-01-02")
        .when(issue(acme(), batch(2), General, 10, "2025-12-31"))
        .then_events(|events| {
            assert_eq!(the_issuance(events).budget_year, 2025);
        });
}

#[test]
fn rule_15_expired_vouchers_cannot_be_redeemed() {
    given(events![
        vouchers_of_2024_partly_used(),
        vouchers_expired(
            acme(),
            batch(1),
            General,
            6,
            "2024-03-10",
            "2025-03-01",
            false
        ),
    ])
    .when(redeem(redemption(2), acme(), General, 1, "2025-02-01"))
    .then_refused(Refusal::InsufficientVouchers {
        available: 0,
        requested: 1,
    });
}

#[test]
fn rule_15_expiry_dated_after_today_refused() {
    given(vouchers_of_2024_partly_used())
        .today("2025-06-30")
        .when(expire("2025-07-01"))
        .then_refused(Refusal::DateInFuture {
            date: date("2025-07-01"),
            today: date("2025-06-30"),
        });
}

#[test]
fn rule_15_expiry_takes_every_company_oldest_expiry_first() {
    given(events![
        world(),
        company_registered(globex(), 2025),
        vouchers_issued(globex(), batch(1), Languages, 4, "2025-02-10"),
        vouchers_issued(acme(), batch(2), General, 5, "2025-01-10"),
        vouchers_issued(acme(), batch(3), General, 6, "2025-03-10"),
    ])
    .today("2026-03-01")
    .when(expire("2026-02-15"))
    .then(events![
        vouchers_expired(
            acme(),
            batch(2),
            General,
            5,
            "2025-01-10",
            "2026-02-15",
            false
        ),
        vouchers_expired(
            globex(),
            batch(1),
            Languages,
            4,
            "2025-02-10",
            "2026-02-15",
            false
        ),
    ]);
}

// =============================================================================================
// Rule 16: workers are identified by their NISS, validated, and kept only as a keyed
// HMAC-SHA-256 pseudonym.

fn pseudonym_key(byte: u8) -> PseudonymKey {
    PseudonymKey::new(vec![byte; 32]).expect("a 32-byte key is long enough")
}

#[test]
fn rule_16_national_number_accepted_for_people_born_before_and_from_2000() {
    // 1985-07-30, serial 033: 97 - (850730033 mod 97) = 28.
    assert!(NationalNumber::parse("85.07.30-033.28").is_some());
    // 2001-02-03, serial 001: 97 - (2010203001 mod 97) = 70.
    assert!(NationalNumber::parse("01.02.03-001.70").is_some());
}

#[test]
fn rule_16_national_number_refused_when_check_digits_differ() {
    assert!(NationalNumber::parse("85.07.30-033.29").is_none());
    assert!(NationalNumber::parse("01.02.03-001.71").is_none());
}

#[test]
fn rule_16_pseudonym_is_hmac_sha256_of_the_number_under_the_configured_key() {
    let number = NationalNumber::parse("85.07.30-033.28").expect("valid NISS");
    let mut mac = Hmac::<Sha256>::new_from_slice(&[7; 32]).expect("hmac takes any key");
    mac.update(b"85073003328");
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(number.pseudonymize(&pseudonym_key(7)).to_hex(), expected);
}

#[test]
fn rule_16_pseudonym_changes_with_the_key() {
    let number = NationalNumber::parse("85073003328").expect("valid NISS");
    assert_ne!(
        number.pseudonymize(&pseudonym_key(7)),
        number.pseudonymize(&pseudonym_key(8))
    );
}

#[test]
fn rule_16_pseudonym_key_shorter_than_32_bytes_refused() {
    assert!(PseudonymKey::new(vec![7; 31]).is_none());
    assert!(PseudonymKey::new(vec![7; 32]).is_some());
}

#[test]
fn rule_16_raw_national_number_never_printed() {
    let number = NationalNumber::parse("85.07.30-033.28").expect("valid NISS");
    let pseudonym = number.pseudonymize(&pseudonym_key(7));
    let command = RedeemHours {
        worker: pseudonym,
        ..redeem(redemption(1), acme(), General, 5, "2025-03-01")
    };
    for printed in [
        format!("{number:?}"),
        format!("{pseudonym:?}"),
        pseudonym.to_hex(),
        format!("{command:?}"),
        String::from_utf8_lossy(
            &ledger_domain::Command::RedeemHours(command.clone()).canonical_bytes(),
        )
        .into_owned(),
        Refusal::InvalidNationalNumber.to_string(),
    ] {
        assert!(
            !printed.contains("85073003328") && !printed.contains("033.28"),
            "{printed}"
        );
    }
}

#[test]
fn rule_16_one_person_written_two_ways_is_one_worker_for_the_module_cap() {
    let key = pseudonym_key(7);
    let dotted = NationalNumber::parse("85.07.30-033.28")
        .expect("valid NISS")
        .pseudonymize(&key);
    let plain = NationalNumber::parse("85073003328")
        .expect("valid NISS")
        .pseudonymize(&key);
    let history = decided(
        vouchers_of_every_type(),
        vec![ledger_domain::Command::RedeemHours(RedeemHours {
            worker: dotted,
            ..redeem(redemption(1), acme(), General, 30, "2025-03-01")
        })],
        DEFAULT_TODAY,
        &default_policy(),
    );
    given(history)
        .when(RedeemHours {
            worker: plain,
            ..redeem(redemption(2), acme(), General, 11, "2025-03-08")
        })
        .then_refused(Refusal::HoursExceedModuleLength {
            hours_max: 40,
            already: 30,
            requested: 11,
        });
}

// =============================================================================================
// Bugs found while writing these tests, now fixed in src/: each shows what the rules do.

#[test]
fn rule_05_issuance_with_a_batch_id_already_used_is_refused_before_apply() {
    let when = given(events![
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2025-01-10")
    ])
    .when(issue(acme(), batch(1), General, 10, "2025-03-10"));
    if let Ok(events) = when.outcome() {
        let mut state = when.state().clone();
        for event in events {
            assert_eq!(
                state.apply(event),
                Ok(()),
                "decide produced an event that apply refuses"
            );
        }
    }
}

#[test]

fn rule_14_redemption_with_an_id_already_used_is_refused() {
    let when = given(events![
        five_general_vouchers(),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-03-01",
            vec![draw(batch(1), 3, "2025-01-10")]
        ),
    ])
    .when(RedeemHours {
        worker: worker(2),
        ..redeem(redemption(1), acme(), General, 2, "2025-03-02")
    });
    assert!(
        when.outcome().is_err(),
        "a second redemption under the id of the first was accepted: {:#?}",
        when.outcome()
    );
}

#[test]

fn rule_09_provider_withdrawal_ends_the_approval_in_force() {
    let approvals = decided(
        events![],
        vec![
            approve_provider(formaform(), "2025-01-01").into_command(),
            // An earlier period, recorded afterwards (a late entry of the approval history).
            ApproveProvider {
                approved_until: Some(date("2024-12-31")),
                ..approve_provider(formaform(), "2020-01-01")
            }
            .into_command(),
            withdraw_provider(formaform(), "2025-05-01").into_command(),
        ],
        DEFAULT_TODAY,
        &default_policy(),
    );
    given(events![
        budget_opened(2025, dec!(1000000.00)),
        approvals,
        module_approved(spreadsheet_module(), formaform()),
        company_registered(acme(), 2025),
        vouchers_issued(acme(), batch(1), General, 10, "2025-01-10"),
    ])
    .when(redeem(redemption(1), acme(), General, 5, "2025-05-01"))
    .then_refused(Refusal::ProviderNotApproved {
        date: date("2025-05-01"),
    });
}

#[test]
fn rule_04_ordering_refused_when_paid_before_the_registration_day() {
    given(events![
        budget_opened(2025, dec!(1000000.00)),
        CompanyRegistered {
            registered_on: date("2025-05-01"),
            ..company_registered(acme(), 2025)
        },
    ])
    .when(issue(acme(), batch(1), General, 10, "2025-03-10"))
    .then_refused(Refusal::CompanyNotRegistered { year: 2025 });
}
