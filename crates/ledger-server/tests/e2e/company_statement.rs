//! A company's statement of redemptions (`CompanyService.ListCompanyRedemptions`, issue 15):
//! every redemption against its wallet and every reversal, as stored, in log order, page by
//! page; never another company's. Dates follow the server's clock.

use chrono::{TimeDelta, Utc};
use ledger_proto::event::v1::event::Payload;
use ledger_proto::v1 as api;
use tonic::Code;

use crate::requests::*;
use crate::support::*;

fn list(
    enterprise_number: &str,
    page_size: u32,
    page_token: &str,
) -> api::ListCompanyRedemptionsRequest {
    api::ListCompanyRedemptionsRequest {
        page_size,
        page_token: page_token.to_owned(),
        enterprise_number: enterprise_number.to_owned(),
    }
}

/// Companies A and B with 10 vouchers each paid 40 days ago; AG-0012 files against a code of
/// each: five filings of 1 hour for A (one of them reversed), one for B.
async fn world(server: &Server) {
    let today = Utc::now().date_naive();
    let paid = after_registration(today - TimeDelta::days(40));
    let yesterday = iso(today - TimeDelta::days(1));
    world_paid_on(paid)
        .vouchers(COMPANY_B, 10, &iso(paid))
        .write(&server.channel())
        .await;
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    for (company, filings) in [(COMPANY_A, 5), (COMPANY_B, 1)] {
        let code = operator
            .order_usage_code(order_usage_code(
                company,
                "AG-0012",
                "6",
                &iso(paid),
                &yesterday,
            ))
            .await
            .expect("a code")
            .code;
        let mut redemption_ids = Vec::new();
        for _ in 0..filings {
            let filing = api::RedeemHoursRequest {
                usage_code: code.clone(),
                ..redeem_hours("AG-0012", "AG-0012-GEN", company, WORKER_1, "1", &yesterday)
            };
            redemption_ids.push(filing.request_id.clone());
            provider.redeem_hours(filing).await.expect("a filing");
        }
        if company == COMPANY_A {
            provider
                .reverse_redemption(reverse_redemption(
                    "AG-0012",
                    &redemption_ids[0],
                    &iso(today),
                ))
                .await
                .expect("a reversal");
        }
    }
}

#[tokio::test]
async fn a_company_lists_the_redemptions_against_its_wallet_page_by_page_in_log_order() {
    let server = Server::start().await;
    world(&server).await;
    let company = server.client(COMPANY_A_TOKEN);
    let mut events = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = company
            .list_company_redemptions(list(COMPANY_A, 2, &token))
            .await
            .expect("a page");
        assert!(page.events.len() <= 2);
        pages += 1;
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // Five filings and one reversal, over three pages.
    assert_eq!((events.len(), pages), (6, 3));
    let positions: Vec<u64> = events.iter().map(|event| event.position).collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "log order"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| match &event.payload {
            Some(Payload::HoursRedeemed(redeemed)) => {
                assert_eq!(redeemed.enterprise_number, COMPANY_A);
                "redeemed"
            }
            Some(Payload::RedemptionReversed(reversed)) => {
                assert_eq!(reversed.enterprise_number, COMPANY_A);
                "reversed"
            }
            other => panic!("not a redemption or reversal: {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["redeemed", "redeemed", "redeemed", "redeemed", "redeemed", "reversed"]
    );

    // The operator reads the same list, in one page by default.
    let by_operator = server
        .client(OPERATOR)
        .list_company_redemptions(list(COMPANY_A, 0, ""))
        .await
        .expect("the operator's page");
    assert_eq!(by_operator.events, events);
    assert!(by_operator.next_page_token.is_empty());

    // Company B's list holds its own filing only; company A may not read it.
    let of_b = server
        .client(COMPANY_B_TOKEN)
        .list_company_redemptions(list(COMPANY_B, 0, ""))
        .await
        .expect("company B's page");
    assert_eq!(of_b.events.len(), 1);
    let status = refused(
        company
            .list_company_redemptions(list(COMPANY_B, 0, ""))
            .await,
    );
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    // A token is only good for its own company's list.
    let first = company
        .list_company_redemptions(list(COMPANY_A, 2, ""))
        .await
        .expect("a page");
    let status = refused(
        server
            .client(OPERATOR)
            .list_company_redemptions(list(COMPANY_B, 2, &first.next_page_token))
            .await,
    );
    assert_invalid_field(&status, "PAGE_TOKEN_MISMATCH", "page_token");
    let status = refused(
        server
            .client(OPERATOR)
            .list_company_redemptions(list(COMPANY_UNKNOWN, 0, ""))
            .await,
    );
    assert_status(&status, Code::NotFound, "COMPANY_NOT_FOUND");
}
