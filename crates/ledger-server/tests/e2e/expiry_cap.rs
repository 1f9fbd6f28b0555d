//! The cap of an expiry run (`EXPIRY_EVENTS_MAX`, 10 000 batches, docs/RULES.md §11): a run with
//! more due expires 10 000 and says `more_due`; the next run takes the rest and says no more is
//! due; a third has nothing to do.

use ledger_proto::v1 as api;

use crate::requests::*;
use crate::support::*;

/// Batches of one voucher each: one more than a run expires.
const BATCHES: usize = 10_001;
/// General vouchers a year for the 12.5 FTE of `register_company`.
const QUOTA: usize = 400;

/// A valid BCE number whose first eight digits are `04031` and `serial`.
fn company(serial: usize) -> String {
    let body = format!("04031{serial:03}");
    let number: u64 = body.parse().expect("digits");
    format!("{body}{:02}", 97 - number % 97)
}

#[tokio::test]
async fn a_run_expires_at_most_ten_thousand_batches_and_says_more_is_due_until_none_is() {
    let server = Server::start().await;
    server
        .client(ADMINISTRATION)
        .open_budget(open_budget(2025, "10000000.00"))
        .await
        .expect("budget");
    let operator = server.client(OPERATOR);
    let companies: Vec<String> = (0..BATCHES.div_ceil(QUOTA)).map(company).collect();
    let registered = operator
        .register_companies_batch(api::RegisterCompaniesBatchRequest {
            items: companies
                .iter()
                .map(|number| register_company(number, 2025))
                .collect(),
        })
        .await
        .expect("registrations");
    assert!(registered.results.iter().all(|result| matches!(
        result.result,
        Some(api::batch_item_result::Result::Accepted(_))
    )));
    let issuances: Vec<api::IssueVouchersRequest> = (0..BATCHES)
        .map(|index| issue_vouchers(&companies[index / QUOTA], 1, "2025-03-10"))
        .collect();
    for chunk in issuances.chunks(1_000) {
        let answer = operator
            .issue_vouchers_batch(api::IssueVouchersBatchRequest {
                items: chunk.to_vec(),
            })
            .await
            .expect("issuances");
        assert!(answer.results.iter().all(|result| matches!(
            result.result,
            Some(api::batch_item_result::Result::Accepted(_))
        )));
    }

    // All valid until 2026-02-28.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let answer = operator
            .expire_vouchers(expire_vouchers("2026-03-01"))
            .await
            .expect("an expiry run");
        let expiry = answer.expiry.expect("an expiry run says what it did");
        runs.push((expiry.batches_expired, expiry.more_due));
    }
    assert_eq!(runs, [(10_000, true), (1, false), (0, false)]);
}
