//! The batch calls, `IssueVouchersBatch` and `RedeemHoursBatch`: one result per item, in order;
//! a refused or malformed item refuses none of the others and writes nothing; a batch sent
//! again is answered from the log; limits on the batch's length and size.

use ledger_proto::v1::{self as api, batch_item_result};
use tonic::Code;

use crate::requests::*;
use crate::support::*;

/// A valid national register number of a man born on `day` July 1985, with `counter`.
fn worker(day: u32, counter: u32) -> String {
    let body = format!("8507{day:02}{counter:03}");
    let number: u64 = body.parse().expect("digits");
    format!("{body}{:02}", 97 - number % 97)
}

/// The common world (a budget, AG-0012 with its module, company A registered for 2025), company
/// A holding `vouchers`.
async fn given_world(vouchers: u32) -> Server {
    Server::given(world().vouchers(COMPANY_A, vouchers, "2025-03-10")).await
}

fn redemption(day: u32, counter: u32) -> api::RedeemHoursRequest {
    redeem_hours(
        "AG-0012",
        MODULE,
        COMPANY_A,
        &worker(day, counter),
        "1",
        "2025-04-15",
    )
}

/// The receipt of an accepted item.
#[track_caller]
fn accepted(result: &api::BatchItemResult) -> &api::Receipt {
    accepted_item(result).receipt.as_ref().expect("a receipt")
}

async fn general_vouchers(server: &Server) -> u32 {
    let wallet = server
        .client(OPERATOR)
        .get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("wallet");
    wallet.balances.iter().map(|balance| balance.vouchers).sum()
}

#[tokio::test]
async fn a_redemption_batch_answers_every_item_in_order_and_a_refusal_refuses_no_other() {
    let server = given_world(5).await;
    let head = server.head().await;

    let mut items: Vec<api::RedeemHoursRequest> =
        (1..=7).map(|counter| redemption(1, counter)).collect();
    // Malformed: a national register number with wrong check digits.
    items[1].national_number = "85073003329".to_owned();
    // Another provider's redemption: AG-0012 may not redeem as AG-0099.
    items[3].provider_id = "AG-0099".to_owned();
    let response = server
        .client(PROVIDER_AG_0012)
        .redeem_hours_batch(api::RedeemHoursBatchRequest {
            items: items.clone(),
        })
        .await
        .expect("the batch is answered");

    let ids: Vec<&str> = response
        .results
        .iter()
        .map(|result| result.request_id.as_str())
        .collect();
    let sent: Vec<&str> = items.iter().map(|item| item.request_id.as_str()).collect();
    assert_eq!(ids, sent, "one result per item, in the items' order");

    let status = refused_item(&response.results[1]);
    assert_invalid_field(&status, "INVALID_NATIONAL_NUMBER", "national_number");
    assert!(
        !status.message().contains("85073003329"),
        "a national number is never echoed: {status:?}"
    );
    assert_status(
        &refused_item(&response.results[3]),
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    // Five vouchers: items 0, 2, 4, 5 and 6 would need them all; the fifth one is the last.
    let positions: Vec<u64> = [0, 2, 4, 5, 6]
        .iter()
        .map(|&index| {
            let receipt = accepted(&response.results[index]);
            assert!(!receipt.replayed);
            assert_eq!(receipt.event_count, 1);
            receipt.first_position
        })
        .collect();
    let first = head.position + 1;
    assert_eq!(positions, (first..first + 5).collect::<Vec<u64>>());
    assert_eq!(server.head().await.position, head.position + 5);
    assert_eq!(general_vouchers(&server).await, 0);

    // A later batch finds the wallet empty.
    let late = server
        .client(PROVIDER_AG_0012)
        .redeem_hours_batch(api::RedeemHoursBatchRequest {
            items: vec![redemption(2, 1)],
        })
        .await
        .expect("the batch is answered");
    assert_status(
        &refused_item(&late.results[0]),
        Code::FailedPrecondition,
        "INSUFFICIENT_VOUCHERS",
    );
    assert_eq!(server.head().await.position, head.position + 5);
}

#[tokio::test]
async fn a_batch_sent_again_is_answered_from_the_log_and_writes_nothing() {
    let server = given_world(3).await;
    let batch = api::RedeemHoursBatchRequest {
        items: (1..=4).map(|counter| redemption(3, counter)).collect(),
    };
    let provider = server.client(PROVIDER_AG_0012);
    let first = provider
        .redeem_hours_batch(batch.clone())
        .await
        .expect("the batch is answered");
    assert_status(
        &refused_item(&first.results[3]),
        Code::FailedPrecondition,
        "INSUFFICIENT_VOUCHERS",
    );
    let head = server.head().await;

    let server = server.restart().await;
    let again = server
        .client(PROVIDER_AG_0012)
        .redeem_hours_batch(batch)
        .await
        .expect("the batch is answered");
    for index in 0..3 {
        let original = accepted(&first.results[index]);
        let replayed = accepted(&again.results[index]);
        assert!(replayed.replayed, "item {index} is answered from the log");
        assert_eq!(replayed.first_position, original.first_position);
        assert_eq!(replayed.recorded_at, original.recorded_at);
    }
    // A refused item was never recorded: it is decided again, and refused again.
    assert_status(
        &refused_item(&again.results[3]),
        Code::FailedPrecondition,
        "INSUFFICIENT_VOUCHERS",
    );
    assert_eq!(server.head().await, head, "nothing written the second time");
}

#[tokio::test]
async fn an_issuance_batch_issues_every_valid_item_and_refuses_the_others() {
    let server = given_world(0).await;
    let head = server.head().await;
    let mut items: Vec<api::IssueVouchersRequest> = (0..4)
        .map(|_| issue_vouchers(COMPANY_A, 5, "2025-03-10"))
        .collect();
    items[1].paid_amount_eur = "74.99".to_owned();
    items[2].enterprise_number = COMPANY_UNKNOWN.to_owned();
    // The same request id twice with the same content: the second is a retry of the first.
    items.push(items[0].clone());
    let response = server
        .client(OPERATOR)
        .issue_vouchers_batch(api::IssueVouchersBatchRequest { items })
        .await
        .expect("the batch is answered");

    assert_eq!(response.results.len(), 5);
    let original = accepted(&response.results[0]).clone();
    assert_status(
        &refused_item(&response.results[1]),
        Code::FailedPrecondition,
        "PAYMENT_AMOUNT_MISMATCH",
    );
    assert_status(
        &refused_item(&response.results[2]),
        Code::FailedPrecondition,
        "COMPANY_NOT_REGISTERED",
    );
    assert!(!accepted(&response.results[3]).replayed);
    let retry = accepted(&response.results[4]);
    assert!(retry.replayed);
    assert_eq!(retry.first_position, original.first_position);
    assert_eq!(server.head().await.position, head.position + 2);
    assert_eq!(general_vouchers(&server).await, 10);
}

#[tokio::test]
async fn a_batch_is_one_to_a_thousand_items_and_at_most_a_megabyte() {
    let server = given_world(10).await;
    let provider = server.client(PROVIDER_AG_0012);
    let head = server.head().await;

    let status = refused(
        provider
            .redeem_hours_batch(api::RedeemHoursBatchRequest { items: Vec::new() })
            .await,
    );
    assert_invalid_field(&status, "BATCH_EMPTY", "items");

    let thousand: Vec<api::RedeemHoursRequest> = (0..1000)
        .map(|n| redemption(1 + n / 40, 1 + n % 40))
        .collect();
    let mut too_long = thousand.clone();
    too_long.push(redemption(28, 41));
    let status = refused(
        provider
            .redeem_hours_batch(api::RedeemHoursBatchRequest { items: too_long })
            .await,
    );
    assert_invalid_field(&status, "BATCH_TOO_LONG", "items");
    assert_eq!(server.head().await, head, "a refused batch writes nothing");

    // A thousand items are answered: ten vouchers for ten of them, the rest refused.
    let response = provider
        .redeem_hours_batch(api::RedeemHoursBatchRequest { items: thousand })
        .await
        .expect("a thousand items are answered");
    assert_eq!(response.results.len(), 1000);
    let accepted_count = response
        .results
        .iter()
        .filter(|result| matches!(result.result, Some(batch_item_result::Result::Accepted(_))))
        .count();
    assert_eq!(accepted_count, 10);
    for result in &response.results[10..] {
        assert_status(
            &refused_item(result),
            Code::FailedPrecondition,
            "INSUFFICIENT_VOUCHERS",
        );
    }
    let head = server.head().await;

    // One item larger than request_bytes_max (64 KiB) is refused alone.
    let mut oversized = redemption(20, 1);
    oversized.module_id = "M".repeat(70 * 1024);
    let response = provider
        .redeem_hours_batch(api::RedeemHoursBatchRequest {
            items: vec![redemption(20, 2), oversized],
        })
        .await
        .expect("the batch is answered");
    assert_status(
        &refused_item(&response.results[0]),
        Code::FailedPrecondition,
        "INSUFFICIENT_VOUCHERS",
    );
    assert_status(
        &refused_item(&response.results[1]),
        Code::InvalidArgument,
        "REQUEST_TOO_LARGE",
    );

    // Over a megabyte in all: the whole call is refused.
    let big: Vec<api::RedeemHoursRequest> = (0..20)
        .map(|counter| {
            let mut item = redemption(21, counter + 1);
            item.module_id = "M".repeat(60 * 1024);
            item
        })
        .collect();
    let status = refused(
        provider
            .redeem_hours_batch(api::RedeemHoursBatchRequest { items: big })
            .await,
    );
    assert_status(&status, Code::InvalidArgument, "REQUEST_TOO_LARGE");
    assert_eq!(server.head().await, head);
}
