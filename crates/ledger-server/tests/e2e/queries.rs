//! The query calls of `QueryService`, the batch calls for registrations, payouts and reversals,
//! and expiry runs that say whether more is due (issue 16): each listing read over more than
//! one page, in a stable order, without an entry twice or missed; page tokens that were not
//! written by the ledger, belong to other filters or point past the log are refused.

use std::collections::BTreeSet;

use ledger_proto::event::v1::event::Payload;
use ledger_proto::event::v1::{Theme, VoucherType};
use ledger_proto::v1::{self as api, batch_item_result};
use tonic::Code;
use tonic_types::StatusExt;

use crate::requests::*;
use crate::support::*;

/// A valid BCE number whose first eight digits are `04030` and `serial`.
fn company(serial: u32) -> String {
    let body = format!("04030{serial:03}");
    let number: u64 = body.parse().expect("digits");
    format!("{body}{:02}", 97 - number % 97)
}

/// A valid national register number of a man born on `day` July 1985, with `counter`.
fn worker(day: u32, counter: u32) -> String {
    let body = format!("8507{day:02}{counter:03}");
    let number: u64 = body.parse().expect("digits");
    format!("{body}{:02}", 97 - number % 97)
}

fn module(module_id: &str, provider_id: &str, theme: Theme) -> api::ApproveModuleRequest {
    api::ApproveModuleRequest {
        themes: vec![theme as i32],
        ..approve_module(module_id, provider_id, "2025-01-01")
    }
}

/// Every page of a listing: `call` with each page token in turn, until the last page. Checks
/// that every page but the last is full and answers the pages.
async fn every_page<T, F, Fut>(page_size: usize, mut call: F) -> Vec<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let (entries, next) = call(token).await;
        let last = next.is_empty();
        if !last {
            assert_eq!(entries.len(), page_size, "a page before the last is full");
        }
        pages.push(entries);
        if last {
            return pages;
        }
        assert!(pages.len() < 100, "the listing does not end");
        token = next;
    }
}

#[tokio::test]
async fn providers_and_modules_are_listed_page_by_page_in_order_and_filtered() {
    let server = Server::start().await;
    let administration = server.client(ADMINISTRATION);
    let providers = ["AG-0005", "AG-0001", "AG-0004", "AG-0002", "AG-0003"];
    for provider_id in providers {
        administration
            .approve_provider(approve_provider(provider_id, "2025-01-01"))
            .await
            .expect("provider");
    }
    administration
        .withdraw_provider(withdraw_provider("AG-0003", "2025-07-01"))
        .await
        .expect("withdrawal");
    for (module_id, provider_id, theme) in [
        ("M-01", "AG-0001", Theme::Digital),
        ("M-02", "AG-0001", Theme::Languages),
        ("M-03", "AG-0001", Theme::Digital),
        ("M-04", "AG-0002", Theme::Digital),
    ] {
        administration
            .approve_module(module(module_id, provider_id, theme))
            .await
            .expect("module");
    }
    administration
        .withdraw_module(withdraw_module("M-03", "2025-06-01"))
        .await
        .expect("module withdrawal");
    let head = server.head().await.position;

    let provider = server.client(PROVIDER_AG_0012);
    let pages = every_page(2, |page_token| {
        let provider = provider.clone();
        async move {
            let page = provider
                .list_providers(api::ListProvidersRequest {
                    page_size: 2,
                    page_token,
                })
                .await
                .expect("providers");
            assert_eq!(page.as_of_position, head);
            (page.providers, page.next_page_token)
        }
    })
    .await;
    assert_eq!(pages.len(), 3);
    let listed: Vec<_> = pages.concat();
    let ids: Vec<&str> = listed.iter().map(|p| p.provider_id.as_str()).collect();
    assert_eq!(ids, ["AG-0001", "AG-0002", "AG-0003", "AG-0004", "AG-0005"]);
    let withdrawn = &listed[2].approvals[0];
    assert_eq!(withdrawn.approved_from, "2025-01-01");
    assert_eq!(withdrawn.withdrawn_from, "2025-07-01");

    let operator = server.client(OPERATOR);
    let modules = |provider_id: &str, theme: Theme, in_force_on: &str, page_token: String| {
        api::ListModulesRequest {
            page_size: 1,
            page_token,
            provider_id: provider_id.to_owned(),
            theme: theme as i32,
            in_force_on: in_force_on.to_owned(),
        }
    };
    let listed = |filters: (&'static str, Theme, &'static str)| {
        let operator = operator.clone();
        async move {
            every_page(1, |token| {
                let operator = operator.clone();
                async move {
                    let page = operator
                        .list_modules(modules(filters.0, filters.1, filters.2, token))
                        .await
                        .expect("modules");
                    (page.modules, page.next_page_token)
                }
            })
            .await
            .concat()
            .into_iter()
            .map(|m| m.module_id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(("", Theme::Unspecified, "")).await,
        ["M-01", "M-02", "M-03", "M-04"]
    );
    assert_eq!(
        listed(("AG-0001", Theme::Unspecified, "")).await,
        ["M-01", "M-02", "M-03"]
    );
    assert_eq!(
        listed(("", Theme::Digital, "")).await,
        ["M-01", "M-03", "M-04"]
    );
    assert_eq!(
        listed(("AG-0001", Theme::Digital, "2025-09-01")).await,
        ["M-01"]
    );
    let page = operator
        .list_modules(modules("AG-0002", Theme::Unspecified, "", String::new()))
        .await
        .expect("one module");
    let entry = &page.modules[0];
    assert_eq!(entry.provider_id, "AG-0002");
    assert_eq!(entry.accepted_voucher_types, [VoucherType::General as i32]);
    assert_eq!(entry.themes, [Theme::Digital as i32]);
    assert_eq!(
        entry.approval.as_ref().map(|a| a.approved_from.as_str()),
        Some("2025-01-01")
    );
}

#[tokio::test]
async fn companies_of_a_year_are_listed_with_their_profile_and_quota_used_and_left() {
    // No company of the common world: the listing is of this test's five.
    let server = Server::given(World::default().budget(2025, "100000.00")).await;
    let operator = server.client(OPERATOR);
    let numbers: Vec<String> = (1..=5).map(company).collect();
    let answer = operator
        .register_companies_batch(api::RegisterCompaniesBatchRequest {
            items: numbers.iter().map(|n| register_company(n, 2025)).collect(),
        })
        .await
        .expect("registrations");
    assert!(answer
        .results
        .iter()
        .all(|r| matches!(r.result, Some(batch_item_result::Result::Accepted(_)))));
    operator
        .register_company(register_company(&company(9), 2026))
        .await
        .expect("a registration of another year");
    operator
        .issue_vouchers(issue_vouchers(&numbers[2], 10, "2025-03-10"))
        .await
        .expect("issuance");

    let auditor = server.client(AUDITOR);
    let pages = every_page(2, |page_token| {
        let auditor = auditor.clone();
        async move {
            let page = auditor
                .list_companies(api::ListCompaniesRequest {
                    page_size: 2,
                    page_token,
                    year: 2025,
                })
                .await
                .expect("companies");
            (page.companies, page.next_page_token)
        }
    })
    .await;
    assert_eq!(pages.len(), 3);
    let listed = pages.concat();
    let listed_numbers: Vec<&str> = listed
        .iter()
        .map(|c| c.enterprise_number.as_str())
        .collect();
    assert_eq!(listed_numbers, numbers);
    for entry in &listed {
        assert_eq!(entry.year, 2025);
        assert_eq!(entry.size_class, "fte_2_to_50");
        assert_eq!(entry.nace_sector, "16.23");
        assert_eq!(entry.registered_on, "2025-02-01");
        let general = entry
            .quotas
            .iter()
            .find(|q| q.voucher_type == VoucherType::General as i32)
            .expect("a general quota");
        let used = if entry.enterprise_number == numbers[2] {
            10
        } else {
            0
        };
        assert_eq!(
            (general.quota, general.used, general.left),
            (400, used, 400 - used)
        );
    }
}

#[tokio::test]
async fn a_wallet_lists_its_batches_oldest_expiry_first_and_those_expiring_before_a_date() {
    // Paid in March, April and May (twice): valid until the end of February, March and April.
    let world = ["2025-05-20", "2025-03-10", "2025-04-02", "2025-05-02"]
        .into_iter()
        .fold(world(), |world, payment_date| {
            world.vouchers(COMPANY_A, 5, payment_date)
        });
    let server = Server::given(world).await;
    let operator = server.client(OPERATOR);
    let list = |expiring_before: &'static str| {
        let operator = operator.clone();
        async move {
            every_page(3, |page_token| {
                let operator = operator.clone();
                async move {
                    let page = operator
                        .list_wallet_batches(api::ListWalletBatchesRequest {
                            page_size: 3,
                            page_token,
                            enterprise_number: COMPANY_A.to_owned(),
                            expiring_before: expiring_before.to_owned(),
                        })
                        .await
                        .expect("batches");
                    (page.batches, page.next_page_token)
                }
            })
            .await
        }
    };
    let pages = list("").await;
    assert_eq!(pages.len(), 2);
    let batches = pages.concat();
    let order: Vec<(&str, &str)> = batches
        .iter()
        .map(|b| (b.valid_until.as_str(), b.payment_date.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("2026-02-28", "2025-03-10"),
            ("2026-03-31", "2025-04-02"),
            ("2026-04-30", "2025-05-02"),
            ("2026-04-30", "2025-05-20"),
        ]
    );
    let wallet = operator
        .get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("wallet");
    assert_eq!(
        wallet.batches, batches,
        "the same batches as GetWallet, in its order"
    );

    let expiring = list("2026-04-01").await.concat();
    let valid_until: Vec<&str> = expiring.iter().map(|b| b.valid_until.as_str()).collect();
    assert_eq!(valid_until, ["2026-02-28", "2026-03-31"]);

    let status = refused(
        operator
            .list_wallet_batches(api::ListWalletBatchesRequest {
                enterprise_number: COMPANY_UNKNOWN.to_owned(),
                ..Default::default()
            })
            .await,
    );
    assert_status(&status, Code::NotFound, "COMPANY_NOT_FOUND");
}

fn redemption(counter: u32) -> api::RedeemHoursRequest {
    redeem_hours(
        "AG-0012",
        MODULE,
        COMPANY_A,
        &worker(1, counter),
        "1",
        "2025-04-15",
    )
}

#[tokio::test]
async fn a_providers_redemptions_reversals_and_payouts_are_listed_in_log_order() {
    let server = Server::given(world().vouchers(COMPANY_A, 100, "2025-03-10")).await;
    let provider = server.client(PROVIDER_AG_0012);
    let redemptions: Vec<_> = (1..=5).map(redemption).collect();
    provider
        .redeem_hours_batch(api::RedeemHoursBatchRequest {
            items: redemptions.clone(),
        })
        .await
        .expect("redemptions");
    let reversals = provider
        .reverse_redemptions_batch(api::ReverseRedemptionsBatchRequest {
            items: vec![
                reverse_redemption("AG-0012", &redemptions[1].request_id, "2025-04-20"),
                reverse_redemption("AG-0012", &redemptions[3].request_id, "2025-04-20"),
                // Not a redemption of this ledger: refused, and refuses none of the others.
                reverse_redemption("AG-0012", &new_request_id(), "2025-04-20"),
            ],
        })
        .await
        .expect("reversals");
    let outcomes: Vec<bool> = reversals
        .results
        .iter()
        .map(|r| matches!(r.result, Some(batch_item_result::Result::Accepted(_))))
        .collect();
    assert_eq!(outcomes, [true, true, false]);
    let operator = server.client(OPERATOR);
    operator
        .record_payouts_batch(api::RecordPayoutsBatchRequest {
            items: vec![
                record_payout("AG-0012", "30.00", "2025-06-01"),
                record_payout("AG-0012", "30.00", "2025-07-01"),
                record_payout("AG-0012", "30.00", "2025-08-01"),
            ],
        })
        .await
        .expect("payouts");

    for reader in [PROVIDER_AG_0012, OPERATOR, AUDITOR] {
        let client = server.client(reader);
        let pages = every_page(3, |page_token| {
            let client = client.clone();
            async move {
                let page = client
                    .list_redemptions(api::ListRedemptionsRequest {
                        page_size: 3,
                        page_token,
                        provider_id: "AG-0012".to_owned(),
                    })
                    .await
                    .expect("redemptions");
                (page.events, page.next_page_token)
            }
        })
        .await;
        assert_eq!(pages.len(), 3, "7 events, 3 a page");
        let events = pages.concat();
        let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(positions, sorted, "log order, each once");
        let redeemed: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::HoursRedeemed(r)) => Some(r.redemption_id.as_str()),
                _ => None,
            })
            .collect();
        let expected: Vec<&str> = redemptions.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(redeemed, expected);
        let reversed: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::RedemptionReversed(r)) => Some(r.redemption_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            reversed,
            BTreeSet::from([
                redemptions[1].request_id.as_str(),
                redemptions[3].request_id.as_str()
            ])
        );

        let pages = every_page(2, |page_token| {
            let client = client.clone();
            async move {
                let page = client
                    .list_payouts(api::ListPayoutsRequest {
                        page_size: 2,
                        page_token,
                        provider_id: "AG-0012".to_owned(),
                    })
                    .await
                    .expect("payouts");
                (page.events, page.next_page_token)
            }
        })
        .await;
        assert_eq!(pages.len(), 2);
        let dates: Vec<String> = pages
            .concat()
            .iter()
            .filter_map(|e| match &e.payload {
                Some(Payload::PayoutRecorded(p)) => Some(p.payout_date.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(dates, ["2025-06-01", "2025-07-01", "2025-08-01"]);
    }
    let status = refused(
        operator
            .list_payouts(api::ListPayoutsRequest {
                provider_id: "AG-0777".to_owned(),
                ..Default::default()
            })
            .await,
    );
    assert_status(&status, Code::NotFound, "PROVIDER_NOT_FOUND");
}

#[tokio::test]
async fn page_tokens_not_written_by_the_ledger_of_other_filters_or_past_the_log_are_refused() {
    let server = Server::given(world().vouchers(COMPANY_A, 100, "2025-03-10")).await;
    let provider = server.client(PROVIDER_AG_0012);
    for counter in 1..=3 {
        provider
            .redeem_hours(redemption(counter))
            .await
            .expect("redemption");
    }
    let first = provider
        .list_redemptions(api::ListRedemptionsRequest {
            page_size: 1,
            page_token: String::new(),
            provider_id: "AG-0012".to_owned(),
        })
        .await
        .expect("first page");
    let token = first.next_page_token.clone();
    assert!(!token.is_empty());
    let operator = server.client(OPERATOR);
    let redemptions_of = |provider_id: &str, page_token: &str| api::ListRedemptionsRequest {
        page_size: 1,
        page_token: page_token.to_owned(),
        provider_id: provider_id.to_owned(),
    };
    let mut altered = token.clone().into_bytes();
    altered[5] = if altered[5] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).expect("hex");
    let truncated = &token[..token.len() - 4];
    let too_long = "ab".repeat(1000);
    // The same token, given to a ledger whose log ends before its cursor.
    let other = Server::start().await;
    let other_operator = other.client(OPERATOR);

    // (row, reason, call): each refused INVALID_ARGUMENT naming `page_token`.
    let rows: Vec<(&str, &str, Call)> = vec![
        (
            "forged",
            "PAGE_TOKEN_INVALID",
            call(operator.list_redemptions(redemptions_of("AG-0012", "not-a-token"))),
        ),
        (
            "truncated",
            "PAGE_TOKEN_INVALID",
            call(operator.list_redemptions(redemptions_of("AG-0012", truncated))),
        ),
        (
            "altered",
            "PAGE_TOKEN_INVALID",
            call(operator.list_redemptions(redemptions_of("AG-0012", &altered))),
        ),
        (
            "too long",
            "PAGE_TOKEN_INVALID",
            call(operator.list_redemptions(redemptions_of("AG-0012", &too_long))),
        ),
        (
            "another list",
            "PAGE_TOKEN_MISMATCH",
            call(operator.list_payouts(api::ListPayoutsRequest {
                page_size: 1,
                page_token: token.clone(),
                provider_id: "AG-0012".to_owned(),
            })),
        ),
        (
            "the same list with another filter",
            "PAGE_TOKEN_MISMATCH",
            call(operator.list_redemptions(redemptions_of("AG-0099", &token))),
        ),
        (
            "past the log of another ledger",
            "PAGE_TOKEN_STALE",
            call(other_operator.list_redemptions(redemptions_of("AG-0012", &token))),
        ),
    ];
    let mut failures = Vec::new();
    for (row, reason, call) in rows {
        let problem = match call.await {
            Ok(page) => Some(format!("accepted: {page}")),
            Err(status) => invalid_argument_problem(&status, reason, Some("page_token")),
        };
        if let Some(problem) = problem {
            failures.push(format!("{row}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // And the token itself still reads the next page.
    let second = operator
        .list_redemptions(redemptions_of("AG-0012", &token))
        .await
        .expect("second page");
    assert_eq!(second.events.len(), 1);
    assert!(second.events[0].position > first.events[0].position);
}

#[tokio::test]
async fn registrations_and_payouts_in_batches_answer_item_by_item_and_a_retry_is_replayed() {
    let server = Server::given(World::default().provider("AG-0012", "2025-01-01")).await;
    let operator = server.client(OPERATOR);
    let mut malformed = register_company(&company(2), 2025);
    malformed.fte = "twelve".to_owned();
    let registrations = api::RegisterCompaniesBatchRequest {
        items: vec![
            register_company(&company(1), 2025),
            malformed,
            register_company(&company(3), 2025),
        ],
    };
    let answer = operator
        .register_companies_batch(registrations.clone())
        .await
        .expect("registrations");
    assert_eq!(answer.results.len(), 3);
    for (index, result) in answer.results.iter().enumerate() {
        assert_eq!(result.request_id, registrations.items[index].request_id);
    }
    assert!(matches!(
        answer.results[0].result,
        Some(batch_item_result::Result::Accepted(_))
    ));
    match &answer.results[1].result {
        Some(batch_item_result::Result::Refused(status)) => {
            assert_eq!(status.code, Code::InvalidArgument as i32)
        }
        other => panic!("the malformed item is refused, got {other:?}"),
    }
    let head = server.head().await;
    let again = operator
        .register_companies_batch(registrations)
        .await
        .expect("the same batch again");
    match &again.results[2].result {
        Some(batch_item_result::Result::Accepted(accepted)) => {
            assert!(accepted.receipt.as_ref().is_some_and(|r| r.replayed))
        }
        other => panic!("a retry is replayed, got {other:?}"),
    }
    assert_eq!(server.head().await, head, "a retry writes nothing");

    // Payouts accepted item by item are in the provider events test; here, refused ones each
    // with the single call's reason.
    let payouts = operator
        .record_payouts_batch(api::RecordPayoutsBatchRequest {
            items: vec![
                record_payout("AG-0777", "30.00", "2025-06-01"),
                record_payout("AG-0012", "thirty", "2025-06-01"),
            ],
        })
        .await
        .expect("payouts");
    let reasons: Vec<String> = payouts
        .results
        .iter()
        .map(|result| {
            refused_item(result)
                .get_details_error_info()
                .map(|info| info.reason)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(reasons, ["PROVIDER_NOT_FOUND", "INVALID_AMOUNT"]);

    let status = refused(
        operator
            .record_payouts_batch(api::RecordPayoutsBatchRequest { items: vec![] })
            .await,
    );
    assert_invalid_field(&status, "BATCH_EMPTY", "items");
    let status = refused(
        operator
            .register_companies_batch(api::RegisterCompaniesBatchRequest {
                items: (0..1001)
                    .map(|_| register_company(COMPANY_A, 2025))
                    .collect(),
            })
            .await,
    );
    assert_invalid_field(&status, "BATCH_TOO_LONG", "items");
}

#[tokio::test]
async fn an_expiry_run_says_how_many_batches_it_expired_and_whether_more_are_due() {
    let world = world()
        .vouchers(COMPANY_A, 5, "2025-03-10")
        .vouchers(COMPANY_A, 5, "2025-03-11");
    let server = Server::given(world).await;
    let operator = server.client(OPERATOR);
    // Both valid until 2026-02-28.
    let run = expire_vouchers("2026-03-01");
    let answer = operator.expire_vouchers(run.clone()).await.expect("run");
    let expiry = answer.expiry.expect("an expiry run says what it did");
    assert_eq!((expiry.batches_expired, expiry.more_due), (2, false));

    // A batch paid on an earlier day, recorded after the run, is due as of the same date: the
    // run's retry answers what it expired then, and that more is due now.
    operator
        .issue_vouchers(issue_vouchers(COMPANY_A, 5, "2025-03-12"))
        .await
        .expect("a late issuance");
    let retry = operator.expire_vouchers(run).await.expect("retry");
    assert!(retry.receipt.as_ref().is_some_and(|r| r.replayed));
    let expiry = retry.expiry.expect("expiry");
    assert_eq!((expiry.batches_expired, expiry.more_due), (2, true));

    let next = operator
        .expire_vouchers(expire_vouchers("2026-03-01"))
        .await
        .expect("the next run");
    let expiry = next.expiry.expect("expiry");
    assert_eq!((expiry.batches_expired, expiry.more_due), (1, false));
}

#[tokio::test]
async fn a_year_whose_budget_is_not_open_reports_a_budget_of_zeros_and_an_open_one_its_figures() {
    let server = Server::given(World::default().budget(2025, "5000.00")).await;
    let auditor = server.client(AUDITOR);
    let unopened = auditor
        .get_budget(get_budget(2017))
        .await
        .expect("a year without a budget answers");
    assert_eq!(
        (
            unopened.allocated_eur.as_str(),
            unopened.committed_eur.as_str(),
            unopened.available_eur.as_str()
        ),
        ("0.00", "0.00", "0.00")
    );
    let summary = auditor
        .get_year_summary(get_year_summary(2017))
        .await
        .expect("its summary answers too");
    assert_eq!(summary.companies_registered, 0);
    assert_eq!(
        summary.budget.map(|budget| budget.allocated_eur),
        Some("0.00".to_owned())
    );
    let opened = auditor
        .get_budget(get_budget(2025))
        .await
        .expect("an open budget");
    assert_eq!(opened.allocated_eur, "5000.00");
}
