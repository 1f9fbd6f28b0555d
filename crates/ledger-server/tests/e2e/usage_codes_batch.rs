//! `OrderUsageCodesBatch` (issue 16 item 2, issue 15): many codes in one call, with the same
//! per-item results and limits as the other batch calls. Dates follow the server's clock.

use chrono::{TimeDelta, Utc};
use ledger_proto::event::v1::event::Payload;
use ledger_proto::v1 as api;
use ledger_proto::v1::company_service_client::CompanyServiceClient;
use tonic::Code;

use crate::requests::*;
use crate::support::*;

/// Company A holds 10 general vouchers paid 40 days ago (not before its registration); AG-0012
/// is approved with a module.
async fn world(server: &Server) -> (String, String) {
    let today = Utc::now().date_naive();
    let paid = after_registration(today - TimeDelta::days(40));
    world_paid_on(paid).write(&server.channel()).await;
    (iso(paid), iso(today - TimeDelta::days(1)))
}

async fn order_batch(
    server: &Server,
    token: &str,
    items: Vec<api::OrderUsageCodeRequest>,
) -> Result<api::BatchWriteResponse, tonic::Status> {
    CompanyServiceClient::new(server.channel())
        .order_usage_codes_batch(with_token(
            api::OrderUsageCodesBatchRequest { items },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn ordered_code(response: &api::WriteResponse) -> String {
    response
        .events
        .iter()
        .find_map(|event| match &event.payload {
            Some(Payload::UsageCodeOrdered(ordered)) => Some(ordered.code.clone()),
            _ => None,
        })
        .expect("an accepted order records a UsageCodeOrdered")
}

#[tokio::test]
async fn a_batch_of_orders_answers_each_item_in_order_and_writes_only_the_accepted_ones() {
    let server = Server::start().await;
    let (from, until) = world(&server).await;
    let first = order_usage_code(COMPANY_A, "AG-0012", "4", &from, &until);
    let items = vec![
        first.clone(),
        order_usage_code(COMPANY_A, "AG-0012", "3", &from, &until),
        // 3 vouchers are left free: 5 is too many.
        order_usage_code(COMPANY_A, "AG-0012", "5", &from, &until),
        api::OrderUsageCodeRequest {
            hours: "four".into(),
            ..order_usage_code(COMPANY_A, "AG-0012", "1", &from, &until)
        },
        // Company A may not order for company B.
        order_usage_code(COMPANY_B, "AG-0012", "1", &from, &until),
        // A retry of the first item, in the same call.
        first,
    ];
    let head = server.head().await;
    let response = order_batch(&server, COMPANY_A_TOKEN, items.clone())
        .await
        .expect("the batch is answered");
    assert_eq!(response.results.len(), items.len());
    for (result, item) in response.results.iter().zip(&items) {
        assert_eq!(result.request_id, item.request_id, "results in item order");
    }
    let (code_1, code_2) = (
        ordered_code(accepted_item(&response.results[0])),
        ordered_code(accepted_item(&response.results[1])),
    );
    assert_ne!(code_1, code_2);
    assert_status(
        &refused_item(&response.results[2]),
        Code::FailedPrecondition,
        "INSUFFICIENT_VOUCHERS",
    );
    assert_eq!(
        refused_item(&response.results[3]).code(),
        Code::InvalidArgument
    );
    assert_status(
        &refused_item(&response.results[4]),
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    let retry = accepted_item(&response.results[5]);
    assert!(retry.receipt.as_ref().is_some_and(|r| r.replayed));
    assert_eq!(ordered_code(retry), code_1, "a retry answers the same code");
    assert_eq!(server.head().await.position, head.position + 2);

    // Each code is the single call's: GetUsageCode finds it with its hours.
    let view = server
        .client(COMPANY_A_TOKEN)
        .get_usage_code(get_usage_code(&code_2))
        .await
        .expect("the batch's code is a code like any other");
    assert_eq!(view.hours, 3);
    let wallet = server
        .client(OPERATOR)
        .get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("wallet");
    let reserved: u32 = wallet.balances.iter().map(|b| b.reserved).sum();
    assert_eq!(reserved, 7);

    // The operator may order on behalf of any company, in a batch too.
    let on_behalf = order_batch(
        &server,
        OPERATOR,
        vec![order_usage_code(COMPANY_A, "AG-0012", "3", &from, &until)],
    )
    .await
    .expect("answered");
    ordered_code(accepted_item(&on_behalf.results[0]));
}

#[tokio::test]
async fn a_batch_of_orders_is_one_to_a_thousand_items_and_only_for_companies_and_the_operator() {
    let server = Server::start().await;
    let (from, until) = world(&server).await;
    let head = server.head().await;
    assert_invalid_field(
        &order_batch(&server, COMPANY_A_TOKEN, Vec::new())
            .await
            .expect_err("an empty batch"),
        "BATCH_EMPTY",
        "items",
    );
    let too_long = (0..1001)
        .map(|_| order_usage_code(COMPANY_A, "AG-0012", "1", &from, &until))
        .collect();
    assert_invalid_field(
        &order_batch(&server, COMPANY_A_TOKEN, too_long)
            .await
            .expect_err("1 001 items"),
        "BATCH_TOO_LONG",
        "items",
    );
    for token in [PROVIDER_AG_0012, AUDITOR, ADMINISTRATION] {
        let status = order_batch(
            &server,
            token,
            vec![order_usage_code(COMPANY_A, "AG-0012", "1", &from, &until)],
        )
        .await
        .expect_err("not a company or the operator");
        assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    assert_eq!(server.head().await.position, head.position);
}
