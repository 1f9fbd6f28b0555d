//! Usage codes through the real binary (docs/RULES.md §20): a company orders a code as itself,
//! its provider files against it, and every refusal a code can meet is answered with its code
//! and reason and writes nothing.
//!
//! Dates follow the server's real clock (a filing must fall within the code's grace of today):
//! vouchers paid 40 and 200 days ago, codes for the last 30 days and for a period long past.

use chrono::{Datelike, NaiveDate, TimeDelta, Utc};
use ledger_proto::event::v1::VoucherType;
use ledger_proto::v1::{
    ApproveModuleRequest, OrderUsageCodeRequest, RedeemHoursRequest, UsageCodeStatus,
};
use tonic::Code;

use crate::requests::*;
use crate::support::*;

const MODULE: &str = "AG-0012-GEN";
const MODULE_OTHER: &str = "AG-0012-ALT";
const MODULE_OF_AG_0099: &str = "AG-0099-GEN";

struct Dates {
    today: NaiveDate,
    recent_payment: NaiveDate,
    old_payment: NaiveDate,
}

impl Dates {
    fn now() -> Dates {
        let today = Utc::now().date_naive();
        Dates {
            today,
            recent_payment: after_registration(today - TimeDelta::days(40)),
            old_payment: after_registration(today - TimeDelta::days(200)),
        }
    }

    fn training(&self) -> String {
        iso(self.today - TimeDelta::days(1))
    }
}

/// Budgets, registrations and AG-0012's two modules and AG-0099's; company A holds 10 vouchers
/// paid `old_payment` and 20 paid `recent_payment`.
async fn given_world(server: &Server, dates: &Dates) {
    let mut years = vec![dates.old_payment.year(), dates.recent_payment.year()];
    years.dedup();
    let mut world = World::default();
    for year in years {
        world = world.budget(year, "100000.00").company(COMPANY_A, year);
    }
    let world = world
        .provider("AG-0012", "2020-01-01")
        .provider("AG-0099", "2020-01-01");
    let world = [
        (MODULE, "AG-0012"),
        (MODULE_OTHER, "AG-0012"),
        (MODULE_OF_AG_0099, "AG-0099"),
    ]
    .into_iter()
    .fold(world, |world, (module, provider)| {
        world.with(ApproveModuleRequest {
            accepted_voucher_types: vec![
                VoucherType::General as i32,
                VoucherType::Languages as i32,
            ],
            ..approve_module(module, provider, "2020-01-01")
        })
    });
    world
        .vouchers(COMPANY_A, 10, &iso(dates.old_payment))
        .vouchers(COMPANY_A, 20, &iso(dates.recent_payment))
        .write(&server.channel())
        .await;
}

/// A code of `hours` for AG-0012 over the last days, ordered by company A itself.
async fn order(server: &Server, dates: &Dates, hours: &str, module: &str) -> String {
    let mut request: OrderUsageCodeRequest = order_usage_code(
        COMPANY_A,
        "AG-0012",
        hours,
        &iso(dates.recent_payment),
        &iso(dates.today - TimeDelta::days(1)),
    );
    request.module_id = module.to_owned();
    let answer = server
        .client(COMPANY_A_TOKEN)
        .order_usage_code(request)
        .await
        .expect("the company orders a code");
    answer.code
}

fn filing(code: &str, hours: &str, training_date: &str) -> RedeemHoursRequest {
    RedeemHoursRequest {
        usage_code: code.to_owned(),
        ..redeem_hours("AG-0012", MODULE, COMPANY_A, WORKER_1, hours, training_date)
    }
}

/// `call` is refused with `code` and `reason`, and the head does not move.
async fn refused_without_write<T: std::fmt::Debug>(
    server: &Server,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    code: Code,
    reason: &str,
) {
    let head = server.head().await;
    let status = refused(call.await);
    assert_status(&status, code, reason);
    assert_eq!(server.head().await, head, "{reason} wrote nothing");
}

#[tokio::test]
async fn a_company_orders_a_code_its_provider_files_against_it_and_every_refusal_writes_nothing() {
    let server = Server::start().await;
    let dates = Dates::now();
    given_world(&server, &dates).await;
    let provider = server.client(PROVIDER_AG_0012);
    let company = server.client(COMPANY_A_TOKEN);

    // A code whose grace has long passed: training 200 to 180 days ago.
    let mut past = order_usage_code(
        COMPANY_A,
        "AG-0012",
        "5",
        &iso(dates.old_payment),
        &iso(dates.old_payment + TimeDelta::days(20)),
    );
    past.module_id = String::new();
    let lapsed = company
        .order_usage_code(past)
        .await
        .expect("a code for a past period")
        .code;
    let code = order(&server, &dates, "10", "").await;
    assert_eq!(code.len(), 11, "three groups of three: {code}");
    let view = company
        .get_usage_code(get_usage_code(&code))
        .await
        .expect("the company reads its code");
    assert_eq!(view.hours_left, 10);
    assert_eq!(view.status, UsageCodeStatus::Open as i32);
    let wallet = company
        .company_get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("the company reads its wallet");
    let reserved: u32 = wallet.balances.iter().map(|balance| balance.reserved).sum();
    assert_eq!(reserved, 15);

    // Filed in two sessions, typed in lower case without dashes.
    let typed = code.replace('-', "").to_lowercase();
    provider
        .redeem_hours(filing(&typed, "4", &dates.training()))
        .await
        .expect("a first filing");
    provider
        .redeem_hours(filing(&code, "6", &dates.training()))
        .await
        .expect("a second filing, down to zero");
    refused_without_write(
        &server,
        provider.redeem_hours(filing(&code, "1", &dates.training())),
        Code::FailedPrecondition,
        "USAGE_CODE_USED_UP",
    )
    .await;
    let used = company
        .get_usage_code(get_usage_code(&code))
        .await
        .expect("read");
    assert_eq!(
        (used.hours_filed, used.status),
        (10, UsageCodeStatus::Used as i32)
    );

    // Each way a filing may not fit a code.
    let open = order(&server, &dates, "3", MODULE).await;
    refused_without_write(
        &server,
        provider.redeem_hours(filing("ABC", "1", &dates.training())),
        Code::InvalidArgument,
        "INVALID_USAGE_CODE",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(filing("222-222-222", "1", &dates.training())),
        Code::NotFound,
        "USAGE_CODE_NOT_FOUND",
    )
    .await;
    refused_without_write(
        &server,
        server
            .client(PROVIDER_AG_0099)
            .redeem_hours(RedeemHoursRequest {
                usage_code: open.clone(),
                ..redeem_hours(
                    "AG-0099",
                    MODULE_OF_AG_0099,
                    COMPANY_A,
                    WORKER_1,
                    "1",
                    &dates.training(),
                )
            }),
        Code::FailedPrecondition,
        "USAGE_CODE_NOT_OF_PROVIDER",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(RedeemHoursRequest {
            enterprise_number: COMPANY_B.to_owned(),
            ..filing(&open, "1", &dates.training())
        }),
        Code::FailedPrecondition,
        "USAGE_CODE_NOT_OF_COMPANY",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(RedeemHoursRequest {
            module_id: MODULE_OTHER.to_owned(),
            ..filing(&open, "1", &dates.training())
        }),
        Code::FailedPrecondition,
        "USAGE_CODE_MODULE_MISMATCH",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(RedeemHoursRequest {
            voucher_type: VoucherType::Languages as i32,
            ..filing(&open, "1", &dates.training())
        }),
        Code::FailedPrecondition,
        "USAGE_CODE_VOUCHER_TYPE_MISMATCH",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(filing(
            &open,
            "1",
            &iso(dates.recent_payment - TimeDelta::days(1)),
        )),
        Code::FailedPrecondition,
        "TRAINING_OUTSIDE_USAGE_CODE_PERIOD",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(filing(&open, "4", &dates.training())),
        Code::FailedPrecondition,
        "HOURS_EXCEED_USAGE_CODE",
    )
    .await;
    refused_without_write(
        &server,
        provider.redeem_hours(filing(
            &lapsed,
            "1",
            &iso(dates.old_payment + TimeDelta::days(1)),
        )),
        Code::FailedPrecondition,
        "USAGE_CODE_LAPSED",
    )
    .await;

    // Cancelled: hours back to the wallet; no filing, no second cancellation.
    let cancelled = order(&server, &dates, "2", "").await;
    company
        .cancel_usage_code(cancel_usage_code(&cancelled, COMPANY_A))
        .await
        .expect("the company cancels its code");
    refused_without_write(
        &server,
        provider.redeem_hours(filing(&cancelled, "1", &dates.training())),
        Code::FailedPrecondition,
        "USAGE_CODE_CANCELLED",
    )
    .await;
    refused_without_write(
        &server,
        company.cancel_usage_code(cancel_usage_code(&cancelled, COMPANY_A)),
        Code::FailedPrecondition,
        "USAGE_CODE_CANCELLED",
    )
    .await;

    // Orders that cannot be made.
    let too_long = order_usage_code(
        COMPANY_A,
        "AG-0012",
        "1",
        &iso(dates.recent_payment),
        &iso(dates.recent_payment + TimeDelta::days(366)),
    );
    refused_without_write(
        &server,
        company.order_usage_code(too_long),
        Code::InvalidArgument,
        "USAGE_CODE_PERIOD_TOO_LONG",
    )
    .await;
    let beyond_validity = order_usage_code(
        COMPANY_A,
        "AG-0012",
        "1",
        &iso(dates.recent_payment),
        &iso(dates.recent_payment + TimeDelta::days(365)),
    );
    refused_without_write(
        &server,
        company.order_usage_code(beyond_validity),
        Code::FailedPrecondition,
        "USAGE_CODE_PERIOD_OUTSIDE_VALIDITY",
    )
    .await;

    // A company acting as another.
    let for_a = order_usage_code(
        COMPANY_A,
        "AG-0012",
        "1",
        &iso(dates.recent_payment),
        &dates.training(),
    );
    let other = server.client(COMPANY_B_TOKEN);
    refused_without_write(
        &server,
        other.order_usage_code(for_a),
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    )
    .await;
    refused_without_write(
        &server,
        other.cancel_usage_code(cancel_usage_code(&open, COMPANY_A)),
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    )
    .await;
    let status = refused(other.get_usage_code(get_usage_code(&open)).await);
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let status = refused(other.list_usage_codes(list_usage_codes(COMPANY_A)).await);
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let status = refused(other.company_get_wallet(get_wallet(COMPANY_A)).await);
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    // Another provider may not read a code given to AG-0012; AG-0012 may.
    let status = refused(
        server
            .client(PROVIDER_AG_0099)
            .get_usage_code(get_usage_code(&open))
            .await,
    );
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    provider
        .get_usage_code(get_usage_code(&open))
        .await
        .expect("the code's provider reads it");

    let list = server
        .client(OPERATOR)
        .list_usage_codes(list_usage_codes(COMPANY_A))
        .await
        .expect("the operator lists the company's codes");
    assert_eq!(list.codes.len(), 4);
    assert_eq!(
        list.reserved_hours,
        5 + 3,
        "the lapsed-to-be and the open code"
    );
}

#[tokio::test]
async fn from_the_policy_switch_a_redemption_without_a_code_is_refused_and_with_one_accepted() {
    let policy = std::fs::read_to_string(ledger_testkit::policy_file()).expect("the policy table");
    let switched = policy.replace(
        "usage_code_required_from = \"2027-01-01\"",
        "usage_code_required_from = \"2025-01-01\"",
    );
    assert_ne!(switched, policy, "the policy names the switch");
    let server = Server::start_with_policy(&switched).await;
    let dates = Dates::now();
    given_world(&server, &dates).await;
    let provider = server.client(PROVIDER_AG_0012);
    refused_without_write(
        &server,
        provider.redeem_hours(redeem_hours(
            "AG-0012",
            MODULE,
            COMPANY_A,
            WORKER_1,
            "1",
            &dates.training(),
        )),
        Code::FailedPrecondition,
        "USAGE_CODE_REQUIRED",
    )
    .await;
    let code = order(&server, &dates, "1", "").await;
    provider
        .redeem_hours(filing(&code, "1", &dates.training()))
        .await
        .expect("with the company's code");
}

#[tokio::test]
async fn an_order_whose_period_ends_before_it_starts_is_refused_naming_period_until() {
    let server = Server::start().await;
    let dates = Dates::now();
    given_world(&server, &dates).await;
    let head = server.head().await;
    let status = refused(
        server
            .client(COMPANY_A_TOKEN)
            .order_usage_code(order_usage_code(
                COMPANY_A,
                "AG-0012",
                "2",
                &dates.training(),
                &iso(dates.recent_payment),
            ))
            .await,
    );
    assert_invalid_field(&status, "INVALID_PERIOD", "period_until");
    assert_eq!(server.head().await.position, head.position);
}
