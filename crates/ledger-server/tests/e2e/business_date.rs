//! Reports as of a business date (issue 16 item 4, docs/RULES.md §21): the figures of the
//! events whose business date is on or before a day, whatever order the log recorded them in.

use ledger_proto::v1 as api;
use tonic::Code;

use crate::requests::*;
use crate::support::*;

const PROVIDER: &str = "AG-0012";
const MODULE: &str = "MOD-XL-01";

fn as_of_business_date(date: &str) -> Option<api::AsOf> {
    Some(api::AsOf {
        point: Some(api::as_of::Point::BusinessDate(date.to_owned())),
    })
}

/// A company registered on 2025-02-01 with 10 vouchers paid on 2025-03-10; a training of
/// 2025-09-15 filed first, then a late filing of a training of 2025-05-20, then a payout
/// back-dated to 2025-06-15 and a provider approved from 2026-01-01 (a future date then).
async fn server_with_filings_out_of_order() -> Server {
    // Not the common world: AG-0099 is approved later, as the test's own step.
    let world = World::default()
        .budget(2025, "100000.00")
        .provider(PROVIDER, "2025-01-01")
        .module(MODULE, PROVIDER, "2025-01-01")
        .company(COMPANY_A, 2025)
        .vouchers(COMPANY_A, 10, "2025-03-10");
    let server = Server::given(world).await;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    for (hours, training_date) in [("4", "2025-09-15"), ("3", "2025-05-20")] {
        provider
            .redeem_hours(redeem_hours(
                PROVIDER,
                MODULE,
                COMPANY_A,
                WORKER_1,
                hours,
                training_date,
            ))
            .await
            .expect("redemption");
    }
    operator
        .record_payout(record_payout(PROVIDER, "30.00", "2025-06-15"))
        .await
        .expect("payout");
    administration
        .approve_provider(approve_provider("AG-0099", "2026-01-01"))
        .await
        .expect("a provider approved from a later date");
    server
}

#[tokio::test]
async fn hours_and_companies_as_of_a_business_date_count_the_events_dated_on_or_before_it() {
    let server = server_with_filings_out_of_order().await;
    let auditor = server.client(AUDITOR);
    let hours_on = |date: &'static str| {
        let auditor = auditor.clone();
        async move {
            auditor
                .get_training_hours(api::GetTrainingHoursRequest {
                    as_of: as_of_business_date(date),
                    ..get_training_hours(2025)
                })
                .await
                .expect("hours as of a business date")
        }
    };
    // The May training was filed after the September one: at the end of June only it counts.
    let june = hours_on("2025-06-30").await;
    assert_eq!(june.total, 3);
    let head = auditor
        .get_head(api::GetHeadRequest {})
        .await
        .expect("head");
    assert_eq!(
        june.as_of_position, head.position,
        "a business-date report considers the whole log"
    );
    for (date, total) in [("2025-09-15", 7), ("2025-05-19", 0)] {
        assert_eq!(hours_on(date).await.total, total, "hours as of {date}");
    }
    // The whole log by recorded time (now) agrees with the business date after every event.
    let now = auditor
        .get_training_hours(get_training_hours(2025))
        .await
        .expect("hours now");
    assert_eq!(hours_on("2025-12-31").await, now);

    let companies_on = |date: &'static str| {
        let auditor = auditor.clone();
        async move {
            auditor
                .get_companies(api::GetCompaniesRequest {
                    as_of: as_of_business_date(date),
                    ..get_companies(2025)
                })
                .await
                .expect("companies as of a business date")
                .total
                .expect("total")
        }
    };
    // Registered on 2025-02-01, paid on 2025-03-10, trained from 2025-05-20.
    let counts = |c: api::CompanyCounts| (c.registered, c.holding, c.benefiting);
    // (business date, (registered, holding, benefiting))
    for (date, expected) in [
        ("2025-01-31", (0, 0, 0)),
        ("2025-02-01", (1, 0, 0)),
        ("2025-03-10", (1, 1, 0)),
        ("2025-05-20", (1, 1, 1)),
    ] {
        assert_eq!(
            counts(companies_on(date).await),
            expected,
            "companies as of {date}"
        );
    }
}

#[tokio::test]
async fn year_summary_and_budget_as_of_a_business_date_take_the_budget_from_the_day_it_was_recorded(
) {
    let server = server_with_filings_out_of_order().await;
    let auditor = server.client(AUDITOR);
    let summary = auditor
        .get_year_summary(api::GetYearSummaryRequest {
            as_of: as_of_business_date("2025-06-30"),
            ..get_year_summary(2025)
        })
        .await
        .expect("summary as of a business date");
    assert_eq!(
        (
            summary.companies_registered,
            summary.companies_holding_vouchers,
            summary.companies_benefiting,
            summary.hours_trained,
            summary.vouchers_issued
        ),
        (1, 1, 1, 3, 10)
    );
    // The budget was opened today (a budget event has no date of its own: it counts from the
    // day it was recorded), so at the end of June 2025 nothing was allocated yet, while the
    // vouchers paid in March were committed and the May training spent.
    let june = summary.budget.expect("budget");
    assert_eq!(june.allocated_eur, "0.00");
    assert_ne!(june.committed_eur, "0.00");
    assert_ne!(june.spent_eur, "0.00");
    // Today by the ledger's rule (two hours ahead of UTC), the day the budget event was
    // recorded under: the UTC date is the day before from 22:00 UTC on.
    let today = ledger_engine::business_today(chrono::Utc::now())
        .format("%Y-%m-%d")
        .to_string();
    let budget = auditor
        .get_budget(api::GetBudgetRequest {
            as_of: Some(api::AsOf {
                point: Some(api::as_of::Point::BusinessDate(today)),
            }),
            ..get_budget(2025)
        })
        .await
        .expect("budget as of today's business date");
    assert_eq!(budget.allocated_eur, "100000.00");
    let now = auditor
        .get_budget(get_budget(2025))
        .await
        .expect("budget now");
    assert_eq!(
        budget, now,
        "as of today's business date, every event counts"
    );
}

#[tokio::test]
async fn a_payout_counts_from_its_own_date_and_an_approval_from_the_day_it_takes_effect() {
    let server = server_with_filings_out_of_order().await;
    let auditor = server.client(AUDITOR);
    let trial_balance_on = |date: &str| api::GetTrialBalanceRequest {
        as_of: as_of_business_date(date),
    };
    let before_payout = auditor
        .get_trial_balance(trial_balance_on("2025-06-14"))
        .await
        .expect("trial balance");
    let after_payout = auditor
        .get_trial_balance(trial_balance_on("2025-06-15"))
        .await
        .expect("trial balance");
    let paid = |balance: &api::TrialBalance| {
        balance
            .accounts
            .iter()
            .find(|account| account.account == format!("provider_paid/{PROVIDER}"))
            .map(|account| account.balance_eur.clone())
    };
    assert_eq!(paid(&before_payout), None);
    assert_eq!(paid(&after_payout).as_deref(), Some("30.00"));
    assert_eq!(after_payout.total_eur, "0.00");
    // A provider approved from 2026-01-01 is not known to the ledger before that business
    // date, and is from it.
    let statement_on = |date: &str| api::GetStatementRequest {
        as_of: as_of_business_date(date),
        ..get_statement("AG-0099")
    };
    let before = refused(auditor.get_statement(statement_on("2025-12-31")).await);
    assert_status(&before, Code::NotFound, "PROVIDER_NOT_FOUND");
    let after = auditor
        .get_statement(statement_on("2026-01-01"))
        .await
        .expect("statement");
    assert_eq!(after.name, "Formations AG-0099 SRL");
}

#[tokio::test]
async fn a_malformed_business_date_is_refused_naming_its_field() {
    let server = Server::start().await;
    let auditor = server.client(AUDITOR);
    let rows = [
        ("a month 13", "2025-13-01"),
        ("day first, with slashes", "30/06/2025"),
        ("empty", ""),
        ("a month of one digit", "2025-6-30"),
    ];
    let mut failures = Vec::new();
    for (row, text) in rows {
        let answer = auditor
            .get_year_summary(api::GetYearSummaryRequest {
                as_of: as_of_business_date(text),
                ..get_year_summary(2025)
            })
            .await;
        let problem = match answer {
            Ok(summary) => Some(format!("accepted: {summary:?}")),
            Err(status) => {
                invalid_argument_problem(&status, "INVALID_DATE", Some("as_of.business_date"))
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{row} ({text:?}): {problem}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
