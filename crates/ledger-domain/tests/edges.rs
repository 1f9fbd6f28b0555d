//! The boundaries of the rules, case by case: every quota of the policy, the last euro of a
//! budget, the last day of validity, the order in which batches are drawn, what the wallet holds,
//! and the check digits of enterprise and national register numbers.

mod support;

use chrono::{Datelike, NaiveDate};
use ledger_domain::command::RedeemHours;
use ledger_domain::event::{BatchDraw, VouchersIssued};
use ledger_domain::{EnterpriseNumber, Event, NationalNumber, Refusal, SizeClass, VoucherType};
use rust_decimal_macros::dec;
use support::*;
use VoucherType::{EcoClimate, General, Languages};

// =============================================================================================
// Quotas (docs/RULES.md rule 6 and its table).

/// The quota table of docs/RULES.md rule 6, written out to check the policy file against it.
const DESIGN_QUOTAS: [(SizeClass, [u32; 3]); 6] = [
    (SizeClass::SecondarySelfEmployed, [80, 20, 200]),
    (SizeClass::Micro, [100, 25, 200]),
    (SizeClass::Fte2To50, [400, 100, 200]),
    (SizeClass::Fte51To100, [600, 150, 200]),
    (SizeClass::Fte101To200, [700, 175, 200]),
    (SizeClass::Fte201To250, [800, 200, 200]),
];

#[test]
fn quota_of_the_policy_is_the_table_of_the_design() {
    for (size_class, quotas) in DESIGN_QUOTAS {
        for (voucher_type, design_quota) in VoucherType::ALL.into_iter().zip(quotas) {
            assert_eq!(
                quota(size_class, voucher_type),
                design_quota,
                "{size_class:?} {voucher_type:?}"
            );
        }
    }
}

/// A 2025 budget and `size_class` registered for 2025 through the registration rules, with
/// `already_issued` vouchers of `voucher_type` paid on 2025-01-10.
fn company_of_class_holding(
    size_class: SizeClass,
    voucher_type: VoucherType,
    already_issued: u32,
) -> Vec<Event> {
    decided(
        events![budget_opened(2025, dec!(1000000.00))],
        vec![
            registration_as(acme(), 2025, size_class).into_command(),
            issue(acme(), batch(1), voucher_type, already_issued, "2025-01-10").into_command(),
        ],
        DEFAULT_TODAY,
        &default_policy(),
    )
}

#[test]
fn quota_last_voucher_allowed_and_next_refused_for_every_size_class_and_voucher_type() {
    let policy = default_policy();
    let in_force = policy
        .in_force(date("2025-03-10"))
        .expect("a policy is in force in 2025");
    let mut cases = 0;
    for size_class in SizeClass::ALL {
        for voucher_type in VoucherType::ALL {
            let quota = in_force.quota(size_class, voucher_type);
            println!("case: {size_class:?} {voucher_type:?}, quota {quota}");
            let one_left = company_of_class_holding(size_class, voucher_type, quota - 1);

            // The last voucher of the quota.
            given(one_left.clone())
                .when(issue(acme(), batch(2), voucher_type, 1, "2025-03-10"))
                .then(events![VouchersIssued {
                    quota,
                    issued_in_year: quota,
                    ..vouchers_issued(acme(), batch(2), voucher_type, 1, "2025-03-10")
                }]);

            // Two when one is left.
            given(one_left.clone())
                .when(issue(acme(), batch(2), voucher_type, 2, "2025-03-10"))
                .then_refused(Refusal::QuotaExceeded {
                    voucher_type,
                    year: 2025,
                    quota,
                    issued: quota - 1,
                    requested: 2,
                });

            // The next one, once the quota is used up.
            let used_up = decided(
                one_left,
                vec![issue(acme(), batch(2), voucher_type, 1, "2025-03-10").into_command()],
                DEFAULT_TODAY,
                &policy,
            );
            given(used_up)
                .when(issue(acme(), batch(3), voucher_type, 1, "2025-04-10"))
                .then_refused(Refusal::QuotaExceeded {
                    voucher_type,
                    year: 2025,
                    quota,
                    issued: quota,
                    requested: 1,
                });
            cases += 1;
        }
    }
    assert_eq!(cases, 18, "6 size classes × 3 voucher types");
}

#[test]
fn quota_whole_at_once_allowed_and_one_more_refused_for_every_size_class() {
    for size_class in SizeClass::ALL {
        for voucher_type in VoucherType::ALL {
            let quota = quota(size_class, voucher_type);
            println!("case: {size_class:?} {voucher_type:?}, quota {quota}");
            let registered = decided(
                events![budget_opened(2025, dec!(1000000.00))],
                vec![registration_as(acme(), 2025, size_class).into_command()],
                DEFAULT_TODAY,
                &default_policy(),
            );
            given(registered.clone())
                .when(issue(acme(), batch(1), voucher_type, quota, "2025-03-10"))
                .then_events(|events| {
                    assert_eq!(the_issuance(events).issued_in_year, quota);
                });
            given(registered)
                .when(issue(
                    acme(),
                    batch(1),
                    voucher_type,
                    quota + 1,
                    "2025-03-10",
                ))
                .then_refused(Refusal::QuotaExceeded {
                    voucher_type,
                    year: 2025,
                    quota,
                    issued: 0,
                    requested: quota + 1,
                });
        }
    }
}

/// Budgets and registrations for 2025 and 2026; the whole 2025 general quota paid on
/// 31 December 2025.
fn general_quota_used_on_new_years_eve() -> Vec<Event> {
    events![
        world(),
        budget_opened(2026, dec!(1000000.00)),
        company_registered(acme(), 2026),
        VouchersIssued {
            issued_in_year: 400,
            ..vouchers_issued(acme(), batch(1), General, 400, "2025-12-31")
        },
    ]
}

#[test]
fn quota_counts_a_january_payment_in_the_new_year() {
    let state = given(general_quota_used_on_new_years_eve())
        .today("2026-01-31")
        .when(issue(acme(), batch(2), General, 400, "2026-01-01"))
        .then_events(|events| {
            let issued = the_issuance(events);
            assert_eq!(
                (issued.budget_year, issued.quota, issued.issued_in_year),
                (2026, 400, 400)
            );
        });
    let company = &state.companies[&acme()];
    assert_eq!(company.issued[&(2025, General)], 400);
    assert_eq!(company.issued[&(2026, General)], 400);
}

#[test]
fn quota_counts_a_december_payment_in_its_year_even_when_issued_in_january() {
    given(general_quota_used_on_new_years_eve())
        .today("2026-01-05")
        .when(issue(acme(), batch(2), General, 1, "2025-12-30"))
        .then_refused(Refusal::QuotaExceeded {
            voucher_type: General,
            year: 2025,
            quota: 400,
            issued: 400,
            requested: 1,
        });
}

#[test]
fn quota_counts_per_company() {
    given(events![
        general_quota_used_on_new_years_eve(),
        company_registered(globex(), 2025),
    ])
    .today("2026-01-05")
    .when(issue(globex(), batch(2), General, 400, "2025-12-30"))
    .then_events(|events| {
        assert_eq!(the_issuance(events).issued_in_year, 400);
    });
}

#[test]
fn quota_is_not_given_back_by_redemption_or_expiry() {
    let history = events![
        world(),
        vouchers_issued(acme(), batch(1), Languages, 100, "2025-01-10"),
        hours_redeemed(
            redemption(1),
            acme(),
            Languages,
            "2025-02-01",
            vec![draw(batch(1), 40, "2025-01-10")]
        ),
    ];
    given(history)
        .when(issue(acme(), batch(2), Languages, 1, "2025-03-10"))
        .then_refused(Refusal::QuotaExceeded {
            voucher_type: Languages,
            year: 2025,
            quota: 100,
            issued: 100,
            requested: 1,
        });
}

// =============================================================================================
// The budget's last euro (rule 7).

/// A 2025 budget of EUR 150.00, room for the region share of 10 vouchers; 7 already issued.
fn budget_with_three_vouchers_left() -> Vec<Event> {
    events![
        budget_opened(2025, dec!(150.00)),
        provider_approved(formaform(), "2020-01-01"),
        company_registered(acme(), 2025),
        vouchers_issued(acme(), batch(1), General, 7, "2025-01-10"),
    ]
}

#[test]
fn budget_exactly_the_amount_left_allowed() {
    let state = given(budget_with_three_vouchers_left())
        .when(issue(acme(), batch(2), General, 3, "2025-03-10"))
        .then_events(|_| {});
    let budget = &state.budgets[&2025];
    assert_eq!(budget.committed_eur, dec!(150.00));
    assert_eq!(budget.available_eur(), dec!(0));
}

#[test]
fn budget_one_voucher_more_than_left_refused() {
    given(budget_with_three_vouchers_left())
        .when(issue(acme(), batch(2), General, 4, "2025-03-10"))
        .then_refused(Refusal::BudgetExhausted {
            year: 2025,
            available_eur: dec!(45.00),
            needed_eur: dec!(60.00),
        });
}

#[test]
fn budget_one_cent_short_of_a_voucher_refused() {
    given(events![
        budget_opened(2025, dec!(14.99)),
        company_registered(acme(), 2025),
    ])
    .when(issue(acme(), batch(1), General, 1, "2025-03-10"))
    .then_refused(Refusal::BudgetExhausted {
        year: 2025,
        available_eur: dec!(14.99),
        needed_eur: dec!(15.00),
    });
}

#[test]
fn budget_is_shared_by_every_company() {
    given(events![
        budget_with_three_vouchers_left(),
        company_registered(globex(), 2025),
    ])
    .when(issue(globex(), batch(2), General, 4, "2025-03-10"))
    .then_refused(Refusal::BudgetExhausted {
        year: 2025,
        available_eur: dec!(45.00),
        needed_eur: dec!(60.00),
    });
}

#[test]
fn budget_spent_on_redemptions_is_not_available_again() {
    let history = events![
        budget_with_three_vouchers_left(),
        module_approved(spreadsheet_module(), formaform()),
        hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-02-01",
            vec![draw(batch(1), 7, "2025-01-10")]
        ),
    ];
    given(history)
        .when(issue(acme(), batch(2), General, 4, "2025-03-10"))
        .then_refused(Refusal::BudgetExhausted {
            year: 2025,
            available_eur: dec!(45.00),
            needed_eur: dec!(60.00),
        });
}

#[test]
fn budget_of_another_year_does_not_help() {
    given(events![
        budget_with_three_vouchers_left(),
        budget_opened(2026, dec!(1000000.00)),
    ])
    .when(issue(acme(), batch(2), General, 4, "2025-03-10"))
    .then_refused(Refusal::BudgetExhausted {
        year: 2025,
        available_eur: dec!(45.00),
        needed_eur: dec!(60.00),
    });
}

// =============================================================================================
// Validity (rule 8) and the training date (rule 12).

#[test]
fn validity_runs_to_the_last_day_of_month_m_plus_11() {
    let cases = [
        ("2025-09-10", "2026-08-31"),
        ("2025-09-01", "2026-08-31"),
        ("2025-09-30", "2026-08-31"),
        ("2025-01-01", "2025-12-31"),
        ("2025-01-31", "2025-12-31"),
        ("2025-12-31", "2026-11-30"),
        ("2024-03-31", "2025-02-28"),
        ("2023-03-01", "2024-02-29"),
        ("2024-02-29", "2025-01-31"),
    ];
    for (payment_date, expected) in cases {
        let year = date(payment_date).year();
        given(events![
            budget_opened(year, dec!(1000000.00)),
            company_registered(acme(), year),
        ])
        .today("2026-06-30")
        .when(issue(acme(), batch(1), General, 1, payment_date))
        .then_events(|events| {
            assert_eq!(
                the_issuance(events).valid_until,
                date(expected),
                "paid on {payment_date}"
            );
        });
        assert_eq!(
            valid_until(payment_date),
            date(expected),
            "the test's own formula"
        );
    }
}

fn ten_vouchers_paid_on_10_september_2025() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2025-09-10")
    ]
}

#[test]
fn validity_redemption_on_31_august_2026_allowed() {
    given(ten_vouchers_paid_on_10_september_2025())
        .today("2026-09-30")
        .when(redeem(redemption(1), acme(), General, 10, "2026-08-31"))
        .then(events![hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2026-08-31",
            vec![BatchDraw {
                valid_until: date("2026-08-31"),
                ..draw(batch(1), 10, "2025-09-10")
            }]
        )]);
}

#[test]
fn validity_redemption_on_1_september_2026_refused() {
    given(ten_vouchers_paid_on_10_september_2025())
        .today("2026-09-30")
        .when(redeem(redemption(1), acme(), General, 1, "2026-09-01"))
        .then_refused(Refusal::VouchersExpired {
            unexpired: 0,
            requested: 1,
        });
}

#[test]
fn validity_vouchers_paid_after_the_training_date_not_usable_for_it() {
    let history = events![
        ten_vouchers_paid_on_10_september_2025(),
        vouchers_issued(acme(), batch(2), General, 10, "2025-10-05"),
    ];
    given(history.clone())
        .today("2025-12-31")
        .when(redeem(redemption(1), acme(), General, 11, "2025-10-01"))
        .then_refused(Refusal::InsufficientVouchers {
            available: 10,
            requested: 11,
        });
    given(history.clone())
        .today("2025-12-31")
        .when(redeem(redemption(1), acme(), General, 11, "2025-10-05"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![
                    draw(batch(1), 10, "2025-09-10"),
                    draw(batch(2), 1, "2025-10-05")
                ]
            );
        });
}

#[test]
fn validity_vouchers_paid_after_the_training_date_not_drawn_even_when_expiring_first() {
    // From 2025-03-01 vouchers are valid for 3 months only: the batch paid on 2025-03-05
    // expires first, but was not yet paid on the training date of 2025-03-04.
    let policy = policy_with_validity_from("2025-03-01", 3);
    let history = decided(
        world(),
        vec![
            issue(acme(), batch(1), General, 10, "2025-01-10").into_command(),
            issue(acme(), batch(2), General, 10, "2025-03-05").into_command(),
        ],
        DEFAULT_TODAY,
        &policy,
    );
    given(history)
        .policy(policy)
        .when(redeem(redemption(1), acme(), General, 5, "2025-03-04"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![draw(batch(1), 5, "2025-01-10")]
            );
        });
}

// =============================================================================================
// Oldest expiry first, across batches (rule 12).

/// Three batches of 10 general vouchers, issued in this order but expiring in another: under a
/// policy whose vouchers are valid 3 months from 2025-03-01, batch 1 (paid 2025-01-10) is
/// valid until 2025-12-31, batch 2 (paid 2025-03-05) until 2025-05-31 and batch 3 (paid
/// 2025-04-02) until 2025-06-30.
fn three_batches_issued_out_of_expiry_order() -> (Vec<Event>, ledger_domain::PolicyTable) {
    let policy = policy_with_validity_from("2025-03-01", 3);
    let history = decided(
        world(),
        vec![
            issue(acme(), batch(1), General, 10, "2025-01-10").into_command(),
            issue(acme(), batch(2), General, 10, "2025-03-05").into_command(),
            issue(acme(), batch(3), General, 10, "2025-04-02").into_command(),
        ],
        DEFAULT_TODAY,
        &policy,
    );
    (history, policy)
}

fn draw_valid_until(batch_id: uuid::Uuid, quantity: u32, payment: &str, until: &str) -> BatchDraw {
    BatchDraw {
        valid_until: date(until),
        ..draw(batch_id, quantity, payment)
    }
}

#[test]
fn fifo_batches_issued_under_the_two_row_policy_have_the_expected_expiries() {
    let (history, _) = three_batches_issued_out_of_expiry_order();
    let expiries: Vec<(uuid::Uuid, NaiveDate)> = history
        .iter()
        .filter_map(|event| match event {
            Event::VouchersIssued(issued) => Some((issued.batch_id, issued.valid_until)),
            _ => None,
        })
        .collect();
    assert_eq!(
        expiries,
        vec![
            (batch(1), date("2025-12-31")),
            (batch(2), date("2025-05-31")),
            (batch(3), date("2025-06-30")),
        ]
    );
}

#[test]
fn fifo_redemption_draws_the_oldest_expiry_first_and_spills_into_the_next() {
    let (history, policy) = three_batches_issued_out_of_expiry_order();
    given(history)
        .policy(policy)
        .when(redeem(redemption(1), acme(), General, 25, "2025-04-20"))
        .then(events![hours_redeemed(
            redemption(1),
            acme(),
            General,
            "2025-04-20",
            vec![
                draw_valid_until(batch(2), 10, "2025-03-05", "2025-05-31"),
                draw_valid_until(batch(3), 10, "2025-04-02", "2025-06-30"),
                draw_valid_until(batch(1), 5, "2025-01-10", "2025-12-31"),
            ]
        )]);
}

#[test]
fn fifo_redemption_within_the_oldest_batch_touches_no_other() {
    let (history, policy) = three_batches_issued_out_of_expiry_order();
    given(history)
        .policy(policy)
        .when(redeem(redemption(1), acme(), General, 4, "2025-04-20"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![draw_valid_until(batch(2), 4, "2025-03-05", "2025-05-31")]
            );
        });
}

#[test]
fn fifo_redemption_continues_where_the_previous_one_stopped() {
    let (history, policy) = three_batches_issued_out_of_expiry_order();
    let history = decided(
        history,
        vec![redeem(redemption(1), acme(), General, 14, "2025-04-20").into_command()],
        DEFAULT_TODAY,
        &policy,
    );
    given(history)
        .policy(policy)
        .when(RedeemHours {
            worker: worker(2),
            ..redeem(redemption(2), acme(), General, 12, "2025-04-21")
        })
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![
                    draw_valid_until(batch(3), 6, "2025-04-02", "2025-06-30"),
                    draw_valid_until(batch(1), 6, "2025-01-10", "2025-12-31"),
                ]
            );
        });
}

#[test]
fn fifo_skips_the_batch_expired_on_the_training_date() {
    let (history, policy) = three_batches_issued_out_of_expiry_order();
    given(history.clone())
        .policy(policy.clone())
        .when(redeem(redemption(1), acme(), General, 15, "2025-06-15"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![
                    draw_valid_until(batch(3), 10, "2025-04-02", "2025-06-30"),
                    draw_valid_until(batch(1), 5, "2025-01-10", "2025-12-31"),
                ]
            );
        });
    given(history)
        .policy(policy)
        .when(redeem(redemption(1), acme(), General, 25, "2025-06-15"))
        .then_refused(Refusal::VouchersExpired {
            unexpired: 20,
            requested: 25,
        });
}

#[test]
fn fifo_equal_expiries_drawn_in_the_order_of_issuance() {
    // Batch 7 is issued before batch 3; both are valid until 2025-12-31.
    given(events![
        world(),
        vouchers_issued(acme(), batch(7), General, 2, "2025-01-20"),
        vouchers_issued(acme(), batch(3), General, 2, "2025-01-10"),
    ])
    .when(redeem(redemption(1), acme(), General, 3, "2025-03-01"))
    .then_events(|events| {
        assert_eq!(
            the_redemption(events).draws,
            vec![
                draw(batch(7), 2, "2025-01-20"),
                draw(batch(3), 1, "2025-01-10")
            ]
        );
    });
}

#[test]
fn fifo_reversed_vouchers_are_drawn_again_by_their_original_expiry() {
    let (history, policy) = three_batches_issued_out_of_expiry_order();
    let history = decided(
        history,
        vec![
            redeem(redemption(1), acme(), General, 25, "2025-04-20").into_command(),
            reverse(redemption(1), formaform(), "2025-04-21").into_command(),
        ],
        DEFAULT_TODAY,
        &policy,
    );
    given(history)
        .policy(policy)
        .when(redeem(redemption(2), acme(), General, 12, "2025-04-22"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![
                    draw_valid_until(batch(2), 10, "2025-03-05", "2025-05-31"),
                    draw_valid_until(batch(3), 2, "2025-04-02", "2025-06-30"),
                ]
            );
        });
}

// =============================================================================================
// Never more than the wallet holds (rule 12).

fn batches_of_3_and_4_general_and_20_languages() -> Vec<Event> {
    events![
        world_with_two_providers(),
        vouchers_issued(acme(), batch(1), General, 3, "2025-01-10"),
        vouchers_issued(acme(), batch(2), General, 4, "2025-02-10"),
        vouchers_issued(acme(), batch(3), Languages, 20, "2025-01-10"),
    ]
}

#[test]
fn wallet_everything_it_holds_across_batches_allowed() {
    let state = given(batches_of_3_and_4_general_and_20_languages())
        .when(redeem(redemption(1), acme(), General, 7, "2025-03-01"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![
                    draw(batch(1), 3, "2025-01-10"),
                    draw(batch(2), 4, "2025-02-10")
                ]
            );
        });
    assert_eq!(state.companies[&acme()].balance(General), 0);
    assert_eq!(state.companies[&acme()].balance(Languages), 20);
}

#[test]
fn wallet_one_more_than_it_holds_refused() {
    given(batches_of_3_and_4_general_and_20_languages())
        .when(redeem(redemption(1), acme(), General, 8, "2025-03-01"))
        .then_refused(Refusal::InsufficientVouchers {
            available: 7,
            requested: 8,
        });
}

#[test]
fn wallet_without_vouchers_of_the_type_refused() {
    given(batches_of_3_and_4_general_and_20_languages())
        .when(RedeemHours {
            provider_id: other_provider(),
            module_id: welding_module(),
            ..redeem(redemption(1), acme(), EcoClimate, 1, "2025-03-01")
        })
        .then_refused(Refusal::InsufficientVouchers {
            available: 0,
            requested: 1,
        });
}

#[test]
fn wallet_refusal_leaves_the_batches_untouched() {
    let given = given(batches_of_3_and_4_general_and_20_languages());
    let before = given.state().clone();
    let when = given.when(redeem(redemption(1), acme(), General, 8, "2025-03-01"));
    assert!(when.outcome().is_err());
    assert_eq!(when.state(), &before);
}

// =============================================================================================
// Enterprise numbers (rule 1).

fn dotted(plain: &str) -> String {
    format!("{}.{}.{}", &plain[..4], &plain[4..7], &plain[7..])
}

#[test]
fn enterprise_number_vectors_valid() {
    let mut valid: Vec<String> = vec![
        "0403.019.261".into(),
        "0403019261".into(),
        "0403 019 261".into(),
        "0202.239.951".into(),
    ];
    for body in [0, 1, 96, 97, 4_030_192, 12_345_678, 10_000_000, 19_999_999] {
        let plain = enterprise_number_text(body);
        valid.push(dotted(&plain));
        valid.push(plain);
    }
    for text in &valid {
        let number = EnterpriseNumber::parse(text)
            .unwrap_or_else(|| panic!("{text} should be a valid enterprise number"));
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(number.as_str(), digits, "stored plain");
    }
    // A body divisible by 97 has check digits 97.
    assert_eq!(enterprise_number_text(97), "0000009797");
}

#[test]
fn enterprise_number_vectors_invalid() {
    let mut invalid: Vec<String> = vec![
        "0431.150.351".into(),
        "0403019260".into(),
        "0403019262".into(),
        "0403019200".into(),
        "040301926".into(),
        "04030192611".into(),
        "0403O19261".into(),
        "0403-019-261".into(),
        "0403/019/261".into(),
        "".into(),
        "..........".into(),
        " 0403019261x".into(),
    ];
    // Correct check digits, but a first digit other than 0 or 1.
    for body in [20_000_000, 40_301_926, 99_999_999] {
        invalid.push(enterprise_number_text(body));
    }
    // Check digits off by one either way.
    for body in [1, 4_030_192, 12_345_678, 19_999_999] {
        let check = 97 - body % 97;
        for wrong in [check - 1, (check + 1) % 100] {
            invalid.push(format!("{body:08}{wrong:02}"));
        }
    }
    for text in &invalid {
        assert_eq!(
            EnterpriseNumber::parse(text),
            None,
            "{text:?} should be refused"
        );
    }
}

// =============================================================================================
// National register numbers (rule 16).

/// A NISS from its birth date and serial, with the check digits of docs/RULES.md rule 16: over the
/// nine digits, prefixed by 2 for people born from 2000 on.
fn niss(year: u32, month: u32, day: u32, serial: u32, born_from_2000: bool) -> String {
    let body = u64::from(year % 100) * 10_000_000
        + u64::from(month) * 100_000
        + u64::from(day) * 1_000
        + u64::from(serial);
    let checked = if born_from_2000 {
        2_000_000_000 + body
    } else {
        body
    };
    format!("{body:09}{:02}", 97 - checked % 97)
}

fn niss_dotted(plain: &str) -> String {
    format!(
        "{}.{}.{}-{}.{}",
        &plain[..2],
        &plain[2..4],
        &plain[4..6],
        &plain[6..9],
        &plain[9..]
    )
}

const NISS_PEOPLE: [(u32, u32, u32, u32, bool); 10] = [
    (1985, 7, 30, 33, false),
    (1999, 12, 31, 1, false),
    (1950, 1, 1, 997, false),
    (1901, 2, 3, 1, false),
    (2000, 1, 1, 2, true),
    (2001, 2, 3, 1, true),
    (2010, 6, 15, 123, true),
    (2024, 2, 29, 998, true),
    (2099, 12, 31, 500, true),
    // Birth date unknown to the register: month and day are zero.
    (1940, 0, 0, 17, false),
];

#[test]
fn national_number_formula_matches_the_documented_examples() {
    assert_eq!(niss(1985, 7, 30, 33, false), "85073003328");
    assert_eq!(niss(2001, 2, 3, 1, true), "01020300170");
}

#[test]
fn national_number_vectors_valid_for_both_centuries() {
    for (year, month, day, serial, born_from_2000) in NISS_PEOPLE {
        let plain = niss(year, month, day, serial, born_from_2000);
        for text in [plain.clone(), niss_dotted(&plain)] {
            assert!(
                NationalNumber::parse(&text).is_some(),
                "{text} (born {year}) should be valid"
            );
        }
    }
}

#[test]
fn national_number_vectors_invalid() {
    for (year, month, day, serial, born_from_2000) in NISS_PEOPLE {
        let plain = niss(year, month, day, serial, born_from_2000);
        let body = &plain[..9];
        let pre_2000 = niss(year, month, day, serial, false);
        let from_2000 = niss(year, month, day, serial, true);
        // Check digits matching neither century.
        let wrong = (0..100)
            .map(|check| format!("{body}{check:02}"))
            .find(|text| *text != pre_2000 && *text != from_2000)
            .expect("some check digits are wrong");
        for text in [
            wrong.clone(),
            niss_dotted(&wrong),
            plain[..10].to_owned(),
            format!("{plain}0"),
            format!("{}A{}", &plain[..5], &plain[6..]),
            plain.replace('0', "O"),
            format!("{}/{}", &plain[..6], &plain[6..]),
        ] {
            if text == plain {
                continue;
            }
            assert!(
                NationalNumber::parse(&text).is_none(),
                "{text:?} should be refused"
            );
        }
    }
    for text in ["", "-", "...........", "85.07.30-033.2", "850730033289999"] {
        assert!(
            NationalNumber::parse(text).is_none(),
            "{text:?} should be refused"
        );
    }
}

#[test]
fn national_number_born_from_2000_refused_with_the_digits_of_another_body() {
    // 2010-06-15, serial 123, with the check digits of serial 124.
    let other = niss(2010, 6, 15, 124, true);
    let text = format!("{}{}", &niss(2010, 6, 15, 123, true)[..9], &other[9..]);
    let pre_2000 = niss(2010, 6, 15, 123, false);
    if text != pre_2000 {
        assert!(NationalNumber::parse(&text).is_none(), "{text}");
    }
}

#[test]
fn national_number_written_with_separators_is_the_same_person() {
    let key = ledger_domain::PseudonymKey::new(vec![42; 32]).expect("long enough");
    for (year, month, day, serial, born_from_2000) in NISS_PEOPLE {
        let plain = niss(year, month, day, serial, born_from_2000);
        let from_plain = NationalNumber::parse(&plain).expect("valid");
        let from_dotted = NationalNumber::parse(&niss_dotted(&plain)).expect("valid");
        assert_eq!(
            from_plain.pseudonymize(&key),
            from_dotted.pseudonymize(&key)
        );
    }
}
