//! Usage codes, the company's consent (docs/RULES.md §20, rules 17 to 22), each rule both ways:
//! ordering earmarks vouchers oldest expiry first; the code is derived from the order and
//! unique; a filing must fit its code; a cancellation gives the vouchers back with their
//! expiry; late filing within the grace survives an expiry run, and the run closes codes past
//! it; from `usage_code_required_from` on, a redemption without a code is refused.

mod support;

use ledger_domain::event::{BatchDraw, UsageCodeLapsed};
use ledger_domain::state::UsageCodeStatus;
use ledger_domain::{Command, Event, LedgerState, Refusal, UsageCode, VoucherType};
use rust_decimal_macros::dec;
use support::*;
use uuid::Uuid;
use VoucherType::General;

fn order(number: u128) -> Uuid {
    Uuid::from_u128(0x0c0d_0000_0000_0000_0000_0000_0000_0000 + number)
}

/// Acme holds 10 general vouchers paid 2025-01-10 (valid until 2025-12-31) and 10 paid
/// 2025-03-10 (valid until 2026-02-28).
fn wallet() -> Vec<Event> {
    events![
        world(),
        vouchers_issued(acme(), batch(1), General, 10, "2025-01-10"),
        vouchers_issued(acme(), batch(2), General, 10, "2025-03-10"),
    ]
}

/// A September code of `hours` for Formaform.
fn september(number: u128, hours: u32) -> Command {
    Command::OrderUsageCode(order_code(
        order(number),
        acme(),
        hours,
        "2025-09-01",
        "2025-09-30",
    ))
}

/// `events`, then `commands` decided on `today`; the history and the code of the last order.
fn with_orders(events: Vec<Event>, commands: Vec<Command>, today: &str) -> (Vec<Event>, UsageCode) {
    let history = decided(events, commands, today, &default_policy());
    let code = history
        .iter()
        .rev()
        .find_map(|event| match event {
            Event::UsageCodeOrdered(event) => Some(event.code.clone()),
            _ => None,
        })
        .expect("an order was decided");
    (history, code)
}

fn state_of(events: &[Event]) -> LedgerState {
    let mut state = LedgerState::default();
    for event in events {
        state.apply(event).expect("the history applies");
    }
    state
}

// =============================================================================================
// Rule 17: ordering a code earmarks vouchers, oldest expiry first; moves no money.

#[test]
fn rule_17_order_earmarks_oldest_expiry_first_across_batches_and_moves_no_money() {
    let state = given(wallet())
        .when(september(1, 15))
        .then_events(|events| {
            let ordered = the_code_order(events);
            assert_eq!(
                ordered.earmarks,
                vec![
                    draw(batch(1), 10, "2025-01-10"),
                    draw(batch(2), 5, "2025-03-10")
                ]
            );
            assert_eq!(
                ordered.filing_until,
                date("2026-01-28"),
                "30 September + 120 days"
            );
            assert_eq!(ordered.ordered_on, date(DEFAULT_TODAY));
            assert!(events[0].postings().is_empty());
            assert_eq!(events[0].stream(), "company/0403019261");
        });
    let company = &state.companies[&acme()];
    assert_eq!(company.batches[&batch(1)].earmarked, 10);
    assert_eq!(company.batches[&batch(2)].earmarked, 5);
    assert_eq!(
        company.batches[&batch(2)].remaining,
        10,
        "earmarked, not spent"
    );
}

#[test]
fn rule_17_earmarked_vouchers_are_not_spent_by_a_redemption_without_code() {
    let (history, _) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    given(history.clone())
        .when(redeem(redemption(1), acme(), General, 6, "2025-06-01"))
        .then_refused(Refusal::InsufficientVouchers {
            available: 5,
            requested: 6,
        });
    given(history)
        .when(redeem(redemption(1), acme(), General, 5, "2025-06-01"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![draw(batch(2), 5, "2025-03-10")]
            );
        });
}

#[test]
fn rule_17_order_refused_when_free_vouchers_are_not_enough() {
    given(wallet())
        .when(september(1, 21))
        .then_refused(Refusal::InsufficientVouchers {
            available: 20,
            requested: 21,
        });
    let (history, _) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    given(history)
        .when(september(2, 6))
        .then_refused(Refusal::InsufficientVouchers {
            available: 5,
            requested: 6,
        });
}

#[test]
fn rule_17_order_refused_when_the_period_is_outside_the_vouchers_validity() {
    // Only the second batch is valid in January 2026.
    given(wallet())
        .when(order_code(order(1), acme(), 15, "2026-01-05", "2026-01-31"))
        .then_refused(Refusal::UsageCodePeriodOutsideValidity {
            period_from: date("2026-01-05"),
            period_until: date("2026-01-31"),
            usable: 10,
            requested: 15,
        });
    // Only the first batch was paid by 1 March.
    given(wallet())
        .when(order_code(order(1), acme(), 15, "2025-03-01", "2025-03-31"))
        .then_refused(Refusal::UsageCodePeriodOutsideValidity {
            period_from: date("2025-03-01"),
            period_until: date("2025-03-31"),
            usable: 10,
            requested: 15,
        });
    given(wallet())
        .when(order_code(order(1), acme(), 10, "2026-01-05", "2026-01-31"))
        .then_events(|events| {
            assert_eq!(
                the_code_order(events).earmarks,
                vec![draw(batch(2), 10, "2025-03-10")]
            );
        });
}

#[test]
fn rule_17_order_refused_when_the_provider_or_module_is_not_approved_over_the_period() {
    given(events![
        wallet(),
        provider_withdrawn(formaform(), "2025-09-15")
    ])
    .when(september(1, 5))
    .then_refused(Refusal::ProviderNotApproved {
        date: date("2025-09-30"),
    });
    given(events![
        wallet(),
        module_withdrawn(spreadsheet_module(), formaform(), "2025-09-15")
    ])
    .when(ledger_domain::command::OrderUsageCode {
        module_id: Some(spreadsheet_module()),
        ..order_code(order(1), acme(), 5, "2025-09-01", "2025-09-30")
    })
    .then_refused(Refusal::ModuleNotApproved {
        date: date("2025-09-30"),
    });
    given(wallet())
        .when(ledger_domain::command::OrderUsageCode {
            module_id: Some(spreadsheet_module()),
            ..order_code(order(1), acme(), 5, "2025-09-01", "2025-09-30")
        })
        .then_events(|events| {
            assert_eq!(the_code_order(events).module_id, Some(spreadsheet_module()));
        });
}

#[test]
fn rule_17_order_refused_for_another_providers_module_or_a_type_it_does_not_accept() {
    given(events![wallet(), world_with_two_providers()[4..].to_vec()])
        .when(ledger_domain::command::OrderUsageCode {
            module_id: Some(welding_module()),
            ..order_code(order(1), acme(), 5, "2025-09-01", "2025-09-30")
        })
        .then_refused(Refusal::ModuleNotOfProvider);
    given(wallet())
        .when(ledger_domain::command::OrderUsageCode {
            module_id: Some(spreadsheet_module()),
            voucher_type: VoucherType::EcoClimate,
            ..order_code(order(1), acme(), 5, "2025-09-01", "2025-09-30")
        })
        .then_refused(Refusal::VoucherTypeNotAccepted {
            voucher_type: VoucherType::EcoClimate,
        });
}

#[test]
fn rule_17_order_refused_for_unknown_company_or_provider_and_a_reused_order_id() {
    given(wallet())
        .when(order_code(
            order(1),
            globex(),
            5,
            "2025-09-01",
            "2025-09-30",
        ))
        .then_refused(Refusal::CompanyNotFound);
    given(wallet())
        .when(ledger_domain::command::OrderUsageCode {
            provider_id: id("AG-9999"),
            ..order_code(order(1), acme(), 5, "2025-09-01", "2025-09-30")
        })
        .then_refused(Refusal::ProviderNotFound);
    let (history, _) = with_orders(wallet(), vec![september(1, 5)], DEFAULT_TODAY);
    given(history)
        .when(september(1, 5))
        .then_refused(Refusal::UsageCodeOrderAlreadyExists);
}

#[test]
fn rule_17_order_refused_for_zero_hours_a_reversed_or_too_long_period() {
    given(wallet())
        .when(september(1, 0))
        .then_refused(Refusal::InvalidHours { hours_max: 2_000 });
    given(wallet())
        .when(order_code(order(1), acme(), 5, "2025-09-30", "2025-09-01"))
        .then_refused(Refusal::InvalidPeriod {
            from: date("2025-09-30"),
            until: date("2025-09-01"),
            field: "period_until",
        });
    // 367 days are refused for their length; 366 pass that check (and meet the validity's).
    given(wallet())
        .when(order_code(order(1), acme(), 5, "2025-03-10", "2026-03-11"))
        .then_refused(Refusal::UsageCodePeriodTooLong { days_max: 366 });
    given(wallet())
        .when(order_code(order(1), acme(), 5, "2025-03-10", "2026-03-10"))
        .then_refused(Refusal::UsageCodePeriodOutsideValidity {
            period_from: date("2025-03-10"),
            period_until: date("2026-03-10"),
            usable: 0,
            requested: 5,
        });
}

// =============================================================================================
// Rule 18: the code is derived from the order, has a check symbol, and is unique.

#[test]
fn rule_18_code_is_derived_from_the_order_so_a_decision_gives_it_again() {
    let first = with_orders(wallet(), vec![september(1, 5)], DEFAULT_TODAY).1;
    let again = with_orders(wallet(), vec![september(1, 5)], DEFAULT_TODAY).1;
    let other = with_orders(wallet(), vec![september(2, 5)], DEFAULT_TODAY).1;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(first, UsageCode::derive(order(1), 0));
    assert_eq!(UsageCode::parse(&first.to_string()), Some(first.clone()));
    assert_eq!(
        first.to_string().len(),
        11,
        "three groups of three: {first}"
    );
}

#[test]
fn rule_18_a_code_already_given_is_never_given_again() {
    // A code equal to the one order 2 derives first is already in the ledger.
    let (mut history, _) = with_orders(wallet(), vec![september(1, 5)], DEFAULT_TODAY);
    if let Some(Event::UsageCodeOrdered(ordered)) = history.last_mut() {
        ordered.code = UsageCode::derive(order(2), 0);
    }
    given(history).when(september(2, 5)).then_events(|events| {
        assert_eq!(the_code_order(events).code, UsageCode::derive(order(2), 1));
    });
}

// =============================================================================================
// Rule 19: a filing against a code.

#[test]
fn rule_19_several_filings_use_a_code_down_to_zero_and_the_next_is_refused() {
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    let history = decided(
        history,
        vec![
            file_against(&code, redemption(1), acme(), 10, "2025-09-10").into_command(),
            file_against(&code, redemption(2), acme(), 5, "2025-09-12").into_command(),
        ],
        "2025-10-01",
        &default_policy(),
    );
    let filings: Vec<_> = history
        .iter()
        .filter_map(|event| match event {
            Event::HoursRedeemed(event) => Some(event.draws.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        filings,
        vec![
            vec![draw(batch(1), 10, "2025-01-10")],
            vec![draw(batch(2), 5, "2025-03-10")]
        ]
    );
    let state = state_of(&history);
    assert_eq!(state.usage_codes[&code].hours_left, 0);
    assert_eq!(state.companies[&acme()].batches[&batch(2)].earmarked, 0);
    given(history)
        .today("2025-10-01")
        .when(file_against(&code, redemption(3), acme(), 1, "2025-09-15"))
        .then_refused(Refusal::UsageCodeUsedUp);
}

#[test]
fn a_code_keeps_its_terms_while_it_has_hours_and_drops_them_once_used_up() {
    // The state keeps what the rules read of every code ever ordered, and a filing's terms
    // (module, voucher type, period, earmarks) only while the code has hours left.
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    let filed = |history, seed, hours, training_date| {
        decided(
            history,
            vec![
                file_against(&code, redemption(seed), acme(), hours, training_date).into_command(),
            ],
            "2025-10-01",
            &default_policy(),
        )
    };
    let partly = filed(history.clone(), 1, 10, "2025-09-10");
    let state = state_of(&partly);
    let record = &state.usage_codes[&code];
    assert_eq!(record.hours_left, 5);
    assert_eq!(
        record
            .earmarks()
            .iter()
            .map(|draw| draw.quantity)
            .sum::<u32>(),
        5
    );
    assert!(record.terms.is_some());

    let used = filed(partly, 2, 5, "2025-09-12");
    let state = state_of(&used);
    let record = &state.usage_codes[&code];
    assert_eq!(record.hours_left, 0);
    assert!(record.terms.is_none());
    assert!(record.earmarks().is_empty());
    // Still refused by its own reason.
    given(used)
        .today("2025-10-01")
        .when(file_against(&code, redemption(3), acme(), 1, "2025-09-15"))
        .then_refused(Refusal::UsageCodeUsedUp);
}

#[test]
fn rule_19_filing_records_the_code_and_owes_the_provider() {
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    given(history)
        .today("2025-10-01")
        .when(file_against(&code, redemption(1), acme(), 4, "2025-09-10"))
        .then_events(|events| {
            let filed = the_redemption(events);
            assert_eq!(filed.usage_code, Some(code.clone()));
            assert_eq!(filed.amount_owed_eur, dec!(120.00));
        });
}

#[test]
fn rule_19_filing_refused_when_the_code_does_not_fit() {
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    let at = |command: ledger_domain::command::RedeemHours, refusal: Refusal| {
        given(history.clone())
            .today("2025-10-01")
            .when(command)
            .then_refused(refusal);
    };
    let filing = || file_against(&code, redemption(1), acme(), 4, "2025-09-10");
    at(
        file_against(
            &UsageCode::derive(order(99), 0),
            redemption(1),
            acme(),
            4,
            "2025-09-10",
        ),
        Refusal::UsageCodeNotFound,
    );
    at(
        ledger_domain::command::RedeemHours {
            provider_id: other_provider(),
            ..filing()
        },
        Refusal::UsageCodeNotOfProvider,
    );
    at(
        ledger_domain::command::RedeemHours {
            enterprise_number: globex(),
            ..filing()
        },
        Refusal::UsageCodeNotOfCompany,
    );
    at(
        ledger_domain::command::RedeemHours {
            voucher_type: VoucherType::Languages,
            ..filing()
        },
        Refusal::UsageCodeVoucherTypeMismatch { expected: General },
    );
    at(
        file_against(&code, redemption(1), acme(), 4, "2025-08-31"),
        Refusal::TrainingOutsideUsageCodePeriod {
            training_date: date("2025-08-31"),
            period_from: date("2025-09-01"),
            period_until: date("2025-09-30"),
        },
    );
    at(
        file_against(&code, redemption(1), acme(), 16, "2025-09-10"),
        Refusal::HoursExceedUsageCode {
            hours_left: 15,
            requested: 16,
        },
    );
    // The last day of the period is inside it.
    given(history.clone())
        .today("2025-10-01")
        .when(file_against(&code, redemption(1), acme(), 15, "2025-09-30"))
        .then_events(|events| assert_eq!(the_redemption(events).hours, 15));
}

#[test]
fn rule_19_filing_refused_in_another_module_than_the_codes() {
    let other_module = id("MOD-PIVOT");
    let (history, code) = with_orders(
        events![wallet(), module_approved(other_module.clone(), formaform())],
        vec![Command::OrderUsageCode(
            ledger_domain::command::OrderUsageCode {
                module_id: Some(spreadsheet_module()),
                ..order_code(order(1), acme(), 15, "2025-09-01", "2025-09-30")
            },
        )],
        DEFAULT_TODAY,
    );
    given(history.clone())
        .today("2025-10-01")
        .when(ledger_domain::command::RedeemHours {
            module_id: other_module,
            ..file_against(&code, redemption(1), acme(), 4, "2025-09-10")
        })
        .then_refused(Refusal::UsageCodeModuleMismatch {
            expected: "MOD-SPREADSHEET".to_owned(),
        });
    given(history)
        .today("2025-10-01")
        .when(file_against(&code, redemption(1), acme(), 4, "2025-09-10"))
        .then_events(|events| assert_eq!(the_redemption(events).hours, 4));
}

#[test]
fn rule_19_a_reversed_filing_gives_its_vouchers_back_to_the_wallet_not_the_code() {
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    let history = decided(
        history,
        vec![
            file_against(&code, redemption(1), acme(), 4, "2025-09-10").into_command(),
            reverse(redemption(1), formaform(), "2025-09-20").into_command(),
        ],
        "2025-10-01",
        &default_policy(),
    );
    let state = state_of(&history);
    assert_eq!(state.usage_codes[&code].hours_left, 11);
    let first = &state.companies[&acme()].batches[&batch(1)];
    assert_eq!((first.remaining, first.earmarked), (10, 6));
}

// =============================================================================================
// Rule 20: cancelling a code gives its unused vouchers back, with their expiry.

#[test]
fn rule_20_cancel_returns_the_unused_vouchers_to_their_batches() {
    let (history, code) = with_orders(wallet(), vec![september(1, 15)], DEFAULT_TODAY);
    let history = decided(
        history,
        vec![file_against(&code, redemption(1), acme(), 3, "2025-09-10").into_command()],
        "2025-10-01",
        &default_policy(),
    );
    let state = given(history)
        .today("2025-10-02")
        .when(cancel_code(&code, acme()))
        .then_events(|events| match events {
            [Event::UsageCodeCancelled(cancelled)] => {
                let returned: Vec<BatchDraw> = vec![
                    draw(batch(1), 7, "2025-01-10"),
                    draw(batch(2), 5, "2025-03-10"),
                ];
                assert_eq!(cancelled.returned, returned);
                assert_eq!(cancelled.cancelled_on, date("2025-10-02"));
                assert!(events[0].postings().is_empty());
            }
            other => panic!("expected one UsageCodeCancelled, got {other:#?}"),
        });
    let batches = &state.companies[&acme()].batches;
    assert_eq!(
        (batches[&batch(1)].remaining, batches[&batch(1)].earmarked),
        (7, 0)
    );
    assert_eq!(batches[&batch(1)].valid_until, date("2025-12-31"));
    assert_eq!(
        (batches[&batch(2)].remaining, batches[&batch(2)].earmarked),
        (10, 0)
    );
    assert_eq!(state.usage_codes[&code].status, UsageCodeStatus::Cancelled);
}

#[test]
fn rule_20_cancel_refused_for_an_unknown_another_companys_cancelled_or_used_up_code() {
    let (history, code) = with_orders(wallet(), vec![september(1, 5)], DEFAULT_TODAY);
    given(history.clone())
        .when(cancel_code(&UsageCode::derive(order(99), 0), acme()))
        .then_refused(Refusal::UsageCodeNotFound);
    given(history.clone())
        .when(cancel_code(&code, globex()))
        .then_refused(Refusal::UsageCodeNotOfCompany);
    let cancelled = decided(
        history.clone(),
        vec![cancel_code(&code, acme()).into_command()],
        DEFAULT_TODAY,
        &default_policy(),
    );
    given(cancelled.clone())
        .when(cancel_code(&code, acme()))
        .then_refused(Refusal::UsageCodeCancelled);
    given(cancelled)
        .today("2025-10-01")
        .when(file_against(&code, redemption(1), acme(), 1, "2025-09-10"))
        .then_refused(Refusal::UsageCodeCancelled);
    let used = decided(
        history,
        vec![file_against(&code, redemption(1), acme(), 5, "2025-09-10").into_command()],
        "2025-10-01",
        &default_policy(),
    );
    given(used)
        .today("2025-10-01")
        .when(cancel_code(&code, acme()))
        .then_refused(Refusal::UsageCodeUsedUp);
}

// =============================================================================================
// Rule 21: late filing within the grace, across an expiry run; the run closes lapsed codes.

/// Acme's September code holds the first batch whole (valid until 2025-12-31); the New Year's
/// expiry run has passed.
fn after_new_year() -> (Vec<Event>, UsageCode) {
    let (history, code) = with_orders(wallet(), vec![september(1, 10)], DEFAULT_TODAY);
    let history = decided(
        history,
        vec![expire("2026-01-01").into_command()],
        "2026-01-01",
        &default_policy(),
    );
    (history, code)
}

#[test]
fn rule_21_the_expiry_run_leaves_vouchers_earmarked_by_a_code_in_its_grace() {
    let (history, code) = with_orders(
        events![
            world(),
            vouchers_issued(acme(), batch(1), General, 15, "2025-01-10")
        ],
        vec![september(1, 10)],
        DEFAULT_TODAY,
    );
    given(history)
        .today("2026-01-01")
        .when(expire("2026-01-01"))
        .then_events(|events| {
            let expired = the_expiries(events);
            assert_eq!(expired.len(), 1);
            assert_eq!(
                expired[0].quantity, 5,
                "the 5 free vouchers, not the 10 of {code}"
            );
        });
}

#[test]
fn rule_21_late_filing_allowed_after_the_expiry_run_up_to_the_last_day_of_the_grace() {
    let (history, code) = after_new_year();
    let state = state_of(&history);
    assert_eq!(state.companies[&acme()].batches[&batch(1)].remaining, 10);
    given(history.clone())
        .today("2026-01-28")
        .when(file_against(&code, redemption(1), acme(), 10, "2025-09-15"))
        .then_events(|events| {
            assert_eq!(
                the_redemption(events).draws,
                vec![draw(batch(1), 10, "2025-01-10")]
            );
        });
}

#[test]
fn rule_21_late_filing_refused_one_day_past_the_grace() {
    let (history, code) = after_new_year();
    given(history)
        .today("2026-01-29")
        .when(file_against(&code, redemption(1), acme(), 10, "2025-09-15"))
        .then_refused(Refusal::UsageCodeLapsed {
            filing_until: date("2026-01-28"),
        });
}

#[test]
fn rule_21_without_a_code_the_same_late_filing_is_refused_as_before() {
    // The defect the grace fixes: the vouchers held on the training date expired meanwhile.
    let history = decided(
        wallet(),
        vec![expire("2026-01-01").into_command()],
        "2026-01-01",
        &default_policy(),
    );
    given(history)
        .today("2026-01-20")
        .when(redeem(redemption(1), acme(), General, 15, "2025-09-15"))
        .then_refused(Refusal::InsufficientVouchers {
            available: 10,
            requested: 15,
        });
}

#[test]
fn rule_21_the_expiry_run_after_the_grace_closes_the_code_and_expires_its_vouchers() {
    let (history, code) = after_new_year();
    given(history.clone())
        .today("2026-01-28")
        .when(expire("2026-01-28"))
        .then(vec![]);
    let state = given(history)
        .today("2026-01-29")
        .when(expire("2026-01-29"))
        .then_events(|events| {
            assert_eq!(
                events[0],
                Event::UsageCodeLapsed(UsageCodeLapsed {
                    code: code.clone(),
                    enterprise_number: acme(),
                    returned: vec![draw(batch(1), 10, "2025-01-10")],
                    lapsed_on: date("2026-01-29"),
                })
            );
            let expired = the_expiries(&events[1..]);
            assert_eq!(expired.len(), 1);
            assert_eq!((expired[0].batch_id, expired[0].quantity), (batch(1), 10));
        });
    assert_eq!(state.usage_codes[&code].status, UsageCodeStatus::Lapsed);
    given(state_events_after_lapse())
        .today("2026-01-30")
        .when(file_against(&code, redemption(1), acme(), 1, "2025-09-15"))
        .then_refused(Refusal::UsageCodeLapsed {
            filing_until: date("2026-01-28"),
        });
}

fn state_events_after_lapse() -> Vec<Event> {
    let (history, _) = after_new_year();
    decided(
        history,
        vec![expire("2026-01-29").into_command()],
        "2026-01-29",
        &default_policy(),
    )
}

#[test]
fn rule_21_a_lapsed_code_cannot_be_cancelled() {
    let (_, code) = after_new_year();
    given(state_events_after_lapse())
        .today("2026-01-30")
        .when(cancel_code(&code, acme()))
        .then_refused(Refusal::UsageCodeLapsed {
            filing_until: date("2026-01-28"),
        });
}

// =============================================================================================
// Rule 22: from usage_code_required_from on, a redemption names a code.

/// Acme registered for 2026 with 20 vouchers paid 2026-06-10 (valid until 2027-05-31).
fn wallet_2026() -> Vec<Event> {
    events![
        world(),
        budget_opened(2026, dec!(1000000.00)),
        company_registered(acme(), 2026),
        vouchers_issued(acme(), batch(3), General, 20, "2026-06-10"),
    ]
}

#[test]
fn rule_22_redemption_without_a_code_refused_from_the_switch_date() {
    given(wallet_2026())
        .today("2027-01-10")
        .when(redeem(redemption(1), acme(), General, 2, "2027-01-01"))
        .then_refused(Refusal::UsageCodeRequired {
            required_from: date("2027-01-01"),
        });
}

#[test]
fn rule_22_redemption_without_a_code_allowed_the_day_before_the_switch() {
    given(wallet_2026())
        .today("2027-01-10")
        .when(redeem(redemption(1), acme(), General, 2, "2026-12-31"))
        .then_events(|events| assert_eq!(the_redemption(events).usage_code, None));
}

#[test]
fn rule_22_redemption_with_a_code_allowed_after_the_switch() {
    let (history, code) = with_orders(
        wallet_2026(),
        vec![Command::OrderUsageCode(order_code(
            order(1),
            acme(),
            5,
            "2027-01-04",
            "2027-01-08",
        ))],
        "2026-12-20",
    );
    given(history)
        .today("2027-01-10")
        .when(file_against(&code, redemption(1), acme(), 2, "2027-01-05"))
        .then_events(|events| assert_eq!(the_redemption(events).hours, 2));
}

#[test]
fn rule_22_a_policy_without_the_switch_never_requires_a_code() {
    let policy = policy_replacing("usage_code_required_from = \"2027-01-01\"\n", "");
    given(wallet_2026())
        .today("2027-01-10")
        .policy(policy)
        .when(redeem(redemption(1), acme(), General, 2, "2027-01-05"))
        .then_events(|events| assert_eq!(the_redemption(events).hours, 2));
}
