//! Every rule refusal the API can produce, one named case each, through gRPC: the code
//! (`status.rs` `classify`), the `ErrorInfo` reason and domain, and no write.
//!
//! All cases run against one world, built once; each case is refused, so none changes what the
//! next one sees, and the head is checked before and after each.

use std::fmt::Debug;
use std::future::Future;

use ledger_proto::event::v1::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_proto::v1::{
    ApproveModuleRequest, IssueVouchersRequest, OpenBudgetRequest, RedeemHoursRequest,
    RegisterCompanyRequest,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::requests::*;
use crate::support::*;

/// AG-0012's module of at most 8 hours, general vouchers, in force from 2025-01-01.
const MODULE_GENERAL: &str = "AG-0012-GEN";
/// AG-0012's module in force only from 2025-06-01.
const MODULE_FROM_JUNE: &str = "AG-0012-LATE";
/// AG-0012's module withdrawn from 2025-03-01.
const MODULE_WITHDRAWN: &str = "AG-0012-OLD";
/// AG-0099's module.
const MODULE_OF_AG_0099: &str = "AG-0099-GEN";

/// The state every case is refused in.
struct Given {
    server: Server,
    /// The request id of the opening of budget 2025.
    budget_request_id: String,
    /// AG-0012's redemption of 2 hours by worker 1 on company A, not reversed, paid out.
    redemption_id: String,
    /// AG-0012's redemption of 1 hour, reversed.
    reversed_redemption_id: String,
}

/// Budget 2025 of EUR 1 000.00; providers AG-0012 and AG-0099 approved from 2025-01-01, AG-0050
/// approved and withdrawn; four modules; company A (400 general vouchers a year) registered on
/// the 1st of February for 2024 and 2025 and issued 20 vouchers paid 2025-02-10 (valid until
/// 2026-01-31); company B registered for 2025 with no vouchers; AG-0012 redeemed 2 hours and was
/// paid the EUR 60.00 for them. Budget 2025: committed 270.00, spent 30.00, available 700.00.
async fn given_world() -> Given {
    let budget = open_budget(2025, "1000.00");
    let budget_request_id = budget.request_id.clone();
    let module = |module_id, provider_id, approved_from| ApproveModuleRequest {
        hours_max: 8,
        ..approve_module(module_id, provider_id, approved_from)
    };
    let world = World::default()
        .with(budget)
        .provider("AG-0012", "2025-01-01")
        .provider("AG-0099", "2025-01-01")
        .provider("AG-0050", "2025-01-01")
        .with(withdraw_provider("AG-0050", "2025-06-01"))
        .with(module(MODULE_GENERAL, "AG-0012", "2025-01-01"))
        .with(module(MODULE_FROM_JUNE, "AG-0012", "2025-06-01"))
        .with(module(MODULE_WITHDRAWN, "AG-0012", "2025-01-01"))
        .with(module(MODULE_OF_AG_0099, "AG-0099", "2025-01-01"))
        .with(withdraw_module(MODULE_WITHDRAWN, "2025-03-01"))
        .company(COMPANY_A, 2024)
        .company(COMPANY_A, 2025)
        .company(COMPANY_B, 2025)
        .vouchers(COMPANY_A, 20, "2025-02-10");
    let server = Server::given(world).await;
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);

    let redemption = redeem_hours(
        "AG-0012",
        MODULE_GENERAL,
        COMPANY_A,
        WORKER_1,
        "2",
        "2025-02-10",
    );
    let redemption_id = redemption.request_id.clone();
    provider.redeem_hours(redemption).await.expect("redemption");
    let reversed = redeem_hours(
        "AG-0012",
        MODULE_GENERAL,
        COMPANY_A,
        WORKER_2,
        "1",
        "2025-02-11",
    );
    let reversed_redemption_id = reversed.request_id.clone();
    provider.redeem_hours(reversed).await.expect("redemption");
    provider
        .reverse_redemption(reverse_redemption(
            "AG-0012",
            &reversed_redemption_id,
            "2025-02-12",
        ))
        .await
        .expect("reversal");
    operator
        .record_payout(record_payout("AG-0012", "60.00", "2025-03-01"))
        .await
        .expect("payout");

    let budget = server
        .client(AUDITOR)
        .get_budget(get_budget(2025))
        .await
        .expect("budget");
    assert_eq!(
        (
            budget.committed_eur.as_str(),
            budget.spent_eur.as_str(),
            budget.available_eur.as_str()
        ),
        ("270.00", "30.00", "700.00"),
        "the world is as described"
    );
    let statement = server
        .client(AUDITOR)
        .get_statement(get_statement("AG-0012"))
        .await
        .expect("statement");
    assert_eq!(
        (statement.owed_eur.as_str(), statement.paid_eur.as_str()),
        ("0.00", "60.00"),
        "the world is as described"
    );
    Given {
        server,
        budget_request_id,
        redemption_id,
        reversed_redemption_id,
    }
}

/// A row of the refusal table: refused with `code` and `reason`, and no `why` in the ErrorInfo.
fn case<'a, T: Debug + 'a>(
    name: &'static str,
    code: Code,
    reason: &'static str,
    call: impl Future<Output = Result<T, Status>> + 'a,
) -> Refusal<'a> {
    Refusal::new(name, call, move |status| check(status, code, reason, None))
}

/// A row refused COMPANY_NOT_ELIGIBLE, saying `why` in the ErrorInfo metadata.
fn not_eligible<'a, T: Debug + 'a>(
    name: &'static str,
    why: &'static str,
    call: impl Future<Output = Result<T, Status>> + 'a,
) -> Refusal<'a> {
    Refusal::new(name, call, move |status| {
        check(
            status,
            FAILED_PRECONDITION,
            "COMPANY_NOT_ELIGIBLE",
            Some(why),
        )
    })
}

const FAILED_PRECONDITION: Code = Code::FailedPrecondition;
const ALREADY_EXISTS: Code = Code::AlreadyExists;
const NOT_FOUND: Code = Code::NotFound;

/// A registration of the never-registered company for 2025, eligible unless changed.
fn new_company() -> RegisterCompanyRequest {
    register_company(COMPANY_UNKNOWN, 2025)
}

/// A redemption by AG-0012 on its general module, for company A, of 1 hour on 2025-02-15 by
/// worker 3: accepted unless changed.
fn redemption() -> RedeemHoursRequest {
    redeem_hours(
        "AG-0012",
        MODULE_GENERAL,
        COMPANY_A,
        WORKER_3,
        "1",
        "2025-02-15",
    )
}

/// An issuance of 10 vouchers to company A, paid 2025-04-01: accepted unless changed.
fn issuance() -> IssueVouchersRequest {
    issue_vouchers(COMPANY_A, 10, "2025-04-01")
}

#[tokio::test]
async fn every_rule_refusal_has_its_code_and_reason_and_writes_nothing() {
    let world = given_world().await;
    let server = &world.server;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    let other_provider = server.client(PROVIDER_AG_0099);

    let cases = vec![
        // Budgets.
        case(
            "BUDGET_ALREADY_OPENED: budget 2025 opened twice",
            ALREADY_EXISTS,
            "BUDGET_ALREADY_OPENED",
            administration.open_budget(open_budget(2025, "5000.00")),
        ),
        case(
            "BUDGET_NOT_OPENED: issuance paid in 2024, a year without a budget",
            FAILED_PRECONDITION,
            "BUDGET_NOT_OPENED",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 10, "2024-03-01")),
        ),
        case(
            "BUDGET_NOT_OPENED: adjustment of budget 2024",
            FAILED_PRECONDITION,
            "BUDGET_NOT_OPENED",
            administration.adjust_budget(adjust_budget(2024, "5000.00")),
        ),
        case(
            "BUDGET_EXHAUSTED: 50 vouchers need 750.00 of the 700.00 available",
            FAILED_PRECONDITION,
            "BUDGET_EXHAUSTED",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 50, "2025-04-01")),
        ),
        case(
            "BUDGET_BELOW_USED: 299.99 is below the 300.00 committed and spent",
            FAILED_PRECONDITION,
            "BUDGET_BELOW_USED",
            administration.adjust_budget(adjust_budget(2025, "299.99")),
        ),
        // Companies.
        case(
            "COMPANY_ALREADY_REGISTERED: company A registered twice for 2025",
            ALREADY_EXISTS,
            "COMPANY_ALREADY_REGISTERED",
            operator.register_company(register_company(COMPANY_A, 2025)),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: a non-profit association",
            "non_profit",
            operator.register_company(RegisterCompanyRequest {
                legal_form: LegalForm::NonProfit as i32,
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: a public body",
            "public_body",
            operator.register_company(RegisterCompanyRequest {
                legal_form: LegalForm::PublicBody as i32,
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: main seat in Flanders",
            "region_not_covered",
            operator.register_company(RegisterCompanyRequest {
                region: Region::Flanders as i32,
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: main seat in the German-speaking Community",
            "region_not_covered",
            operator.register_company(RegisterCompanyRequest {
                region: Region::WalloniaGermanSpeaking as i32,
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: 250.5 full-time equivalents",
            "too_many_employees",
            operator.register_company(RegisterCompanyRequest {
                fte: "250.5".into(),
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: turnover and balance-sheet total both over the limits",
            "too_large",
            operator.register_company(RegisterCompanyRequest {
                turnover_eur: "50000000.01".into(),
                balance_sheet_total_eur: "43000000.01".into(),
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: linked to a larger group",
            "not_autonomous",
            operator.register_company(RegisterCompanyRequest {
                autonomous: false,
                ..new_company()
            }),
        ),
        not_eligible(
            "COMPANY_NOT_ELIGIBLE: secondary-occupation self-employed for 5 months",
            "secondary_activity_too_short",
            operator.register_company(RegisterCompanyRequest {
                legal_form: LegalForm::SelfEmployedSecondary as i32,
                secondary_activity_months: 5,
                ..new_company()
            }),
        ),
        case(
            "YEAR_NOT_OPEN: registration for 2099",
            FAILED_PRECONDITION,
            "YEAR_NOT_OPEN",
            operator.register_company(RegisterCompanyRequest {
                year: 2099,
                registered_on: "2025-03-01".into(),
                ..new_company()
            }),
        ),
        case(
            "YEAR_NOT_OPEN: registration for 2024 dated in 2025",
            FAILED_PRECONDITION,
            "YEAR_NOT_OPEN",
            operator.register_company(RegisterCompanyRequest {
                year: 2024,
                registered_on: "2025-03-01".into(),
                ..new_company()
            }),
        ),
        case(
            "POLICY_NOT_IN_FORCE: registration dated before the first policy (2004-01-01)",
            FAILED_PRECONDITION,
            "POLICY_NOT_IN_FORCE",
            operator.register_company(RegisterCompanyRequest {
                year: 2004,
                registered_on: "2003-12-01".into(),
                ..new_company()
            }),
        ),
        case(
            "COMPANY_NOT_FOUND: redemption for a company the ledger does not know",
            NOT_FOUND,
            "COMPANY_NOT_FOUND",
            provider.redeem_hours(RedeemHoursRequest {
                enterprise_number: COMPANY_UNKNOWN.into(),
                ..redemption()
            }),
        ),
        case(
            "COMPANY_NOT_FOUND: wallet of a company the ledger does not know (read)",
            NOT_FOUND,
            "COMPANY_NOT_FOUND",
            operator.get_wallet(get_wallet(COMPANY_UNKNOWN)),
        ),
        // Issuance.
        case(
            "COMPANY_NOT_REGISTERED: company A paid in 2026, registered for 2024 and 2025 only",
            FAILED_PRECONDITION,
            "COMPANY_NOT_REGISTERED",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 10, "2026-01-15")),
        ),
        case(
            "COMPANY_NOT_REGISTERED: a company never registered",
            FAILED_PRECONDITION,
            "COMPANY_NOT_REGISTERED",
            operator.issue_vouchers(issue_vouchers(COMPANY_UNKNOWN, 10, "2025-04-01")),
        ),
        case(
            "COMPANY_NOT_REGISTERED: payment dated before the registration day (2025-02-01)",
            FAILED_PRECONDITION,
            "COMPANY_NOT_REGISTERED",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 10, "2025-01-15")),
        ),
        case(
            "PAYMENT_AMOUNT_MISMATCH: 140.00 paid for 10 vouchers (150.00)",
            FAILED_PRECONDITION,
            "PAYMENT_AMOUNT_MISMATCH",
            operator.issue_vouchers(IssueVouchersRequest {
                paid_amount_eur: "140.00".into(),
                ..issuance()
            }),
        ),
        case(
            "QUOTA_EXCEEDED: 381 more general vouchers on top of 20, quota 400",
            FAILED_PRECONDITION,
            "QUOTA_EXCEEDED",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 381, "2025-04-01")),
        ),
        case(
            "DATE_IN_FUTURE: payment received in 2099",
            FAILED_PRECONDITION,
            "DATE_IN_FUTURE",
            operator.issue_vouchers(issue_vouchers(COMPANY_A, 10, "2099-06-01")),
        ),
        case(
            "DATE_IN_FUTURE: training given in 2099",
            FAILED_PRECONDITION,
            "DATE_IN_FUTURE",
            provider.redeem_hours(RedeemHoursRequest {
                training_date: "2099-06-01".into(),
                ..redemption()
            }),
        ),
        // Providers and modules.
        case(
            "PROVIDER_NOT_FOUND: withdrawal of an unknown provider",
            NOT_FOUND,
            "PROVIDER_NOT_FOUND",
            administration.withdraw_provider(withdraw_provider("AG-0077", "2025-06-01")),
        ),
        case(
            "PROVIDER_NOT_FOUND: module of an unknown provider",
            NOT_FOUND,
            "PROVIDER_NOT_FOUND",
            administration.approve_module(approve_module("AG-0077-GEN", "AG-0077", "2025-01-01")),
        ),
        case(
            "PROVIDER_NOT_FOUND: payout to an unknown provider",
            NOT_FOUND,
            "PROVIDER_NOT_FOUND",
            operator.record_payout(record_payout("AG-0077", "30.00", "2025-06-01")),
        ),
        case(
            "PROVIDER_NOT_FOUND: statement of an unknown provider (read)",
            NOT_FOUND,
            "PROVIDER_NOT_FOUND",
            operator.get_statement(get_statement("AG-0077")),
        ),
        case(
            "PROVIDER_ALREADY_APPROVED: a second approval overlapping the first",
            ALREADY_EXISTS,
            "PROVIDER_ALREADY_APPROVED",
            administration.approve_provider(approve_provider("AG-0012", "2025-06-01")),
        ),
        case(
            "PROVIDER_ALREADY_WITHDRAWN: AG-0050 withdrawn twice",
            FAILED_PRECONDITION,
            "PROVIDER_ALREADY_WITHDRAWN",
            administration.withdraw_provider(withdraw_provider("AG-0050", "2025-07-01")),
        ),
        case(
            "PROVIDER_NOT_APPROVED: training before the approval (2024-12-15)",
            FAILED_PRECONDITION,
            "PROVIDER_NOT_APPROVED",
            provider.redeem_hours(RedeemHoursRequest {
                training_date: "2024-12-15".into(),
                ..redemption()
            }),
        ),
        case(
            "PROVIDER_NOT_APPROVED: withdrawal dated before the approval",
            FAILED_PRECONDITION,
            "PROVIDER_NOT_APPROVED",
            administration.withdraw_provider(withdraw_provider("AG-0012", "2024-06-01")),
        ),
        case(
            "MODULE_NOT_FOUND: redemption on an unknown module",
            NOT_FOUND,
            "MODULE_NOT_FOUND",
            provider.redeem_hours(RedeemHoursRequest {
                module_id: "AG-0012-NONE".into(),
                ..redemption()
            }),
        ),
        case(
            "MODULE_NOT_FOUND: withdrawal of an unknown module",
            NOT_FOUND,
            "MODULE_NOT_FOUND",
            administration.withdraw_module(withdraw_module("AG-0012-NONE", "2025-06-01")),
        ),
        case(
            "MODULE_ALREADY_APPROVED: the general module approved twice",
            ALREADY_EXISTS,
            "MODULE_ALREADY_APPROVED",
            administration.approve_module(approve_module(MODULE_GENERAL, "AG-0012", "2025-01-01")),
        ),
        case(
            "MODULE_ALREADY_WITHDRAWN: a module withdrawn twice",
            FAILED_PRECONDITION,
            "MODULE_ALREADY_WITHDRAWN",
            administration.withdraw_module(withdraw_module(MODULE_WITHDRAWN, "2025-04-01")),
        ),
        case(
            "MODULE_NOT_APPROVED: training on 2025-03-01, module in force from 2025-06-01",
            FAILED_PRECONDITION,
            "MODULE_NOT_APPROVED",
            provider.redeem_hours(RedeemHoursRequest {
                module_id: MODULE_FROM_JUNE.into(),
                training_date: "2025-03-01".into(),
                ..redemption()
            }),
        ),
        case(
            "MODULE_NOT_APPROVED: training after the module's withdrawal",
            FAILED_PRECONDITION,
            "MODULE_NOT_APPROVED",
            provider.redeem_hours(RedeemHoursRequest {
                module_id: MODULE_WITHDRAWN.into(),
                training_date: "2025-03-01".into(),
                ..redemption()
            }),
        ),
        case(
            "MODULE_NOT_OF_PROVIDER: AG-0012 redeeming on AG-0099's module",
            FAILED_PRECONDITION,
            "MODULE_NOT_OF_PROVIDER",
            provider.redeem_hours(RedeemHoursRequest {
                module_id: MODULE_OF_AG_0099.into(),
                ..redemption()
            }),
        ),
        case(
            "THEME_NOT_APPROVABLE: a behavioural course",
            FAILED_PRECONDITION,
            "THEME_NOT_APPROVABLE",
            administration.approve_module(ApproveModuleRequest {
                themes: vec![Theme::Digital as i32, Theme::Behavioural as i32],
                ..approve_module("AG-0012-SOFT", "AG-0012", "2025-01-01")
            }),
        ),
        case(
            "THEME_NOT_APPROVABLE: a well-being course",
            FAILED_PRECONDITION,
            "THEME_NOT_APPROVABLE",
            administration.approve_module(ApproveModuleRequest {
                themes: vec![Theme::WellBeing as i32],
                ..approve_module("AG-0012-SOFT", "AG-0012", "2025-01-01")
            }),
        ),
        case(
            "THEME_NOT_APPROVABLE: a personal-development course",
            FAILED_PRECONDITION,
            "THEME_NOT_APPROVABLE",
            administration.approve_module(ApproveModuleRequest {
                themes: vec![Theme::PersonalDevelopment as i32],
                ..approve_module("AG-0012-SOFT", "AG-0012", "2025-01-01")
            }),
        ),
        // Redemptions.
        case(
            "VOUCHER_TYPE_NOT_ACCEPTED: language vouchers on a general module",
            FAILED_PRECONDITION,
            "VOUCHER_TYPE_NOT_ACCEPTED",
            provider.redeem_hours(RedeemHoursRequest {
                voucher_type: VoucherType::Languages as i32,
                ..redemption()
            }),
        ),
        case(
            "TRAINEE_NOT_ELIGIBLE: a student",
            FAILED_PRECONDITION,
            "TRAINEE_NOT_ELIGIBLE",
            provider.redeem_hours(RedeemHoursRequest {
                trainee_status: TraineeStatus::Student as i32,
                ..redemption()
            }),
        ),
        case(
            "TRAINEE_NOT_ELIGIBLE: an apprentice",
            FAILED_PRECONDITION,
            "TRAINEE_NOT_ELIGIBLE",
            provider.redeem_hours(RedeemHoursRequest {
                trainee_status: TraineeStatus::Apprentice as i32,
                ..redemption()
            }),
        ),
        case(
            "HOURS_EXCEED_MODULE_LENGTH: 9 hours on a module of 8",
            FAILED_PRECONDITION,
            "HOURS_EXCEED_MODULE_LENGTH",
            provider.redeem_hours(RedeemHoursRequest {
                hours: "9".into(),
                ..redemption()
            }),
        ),
        case(
            "HOURS_EXCEED_MODULE_LENGTH: worker 1 has 2 hours, 7 more on a module of 8",
            FAILED_PRECONDITION,
            "HOURS_EXCEED_MODULE_LENGTH",
            provider.redeem_hours(RedeemHoursRequest {
                national_number: WORKER_1.into(),
                hours: "7".into(),
                ..redemption()
            }),
        ),
        case(
            "INSUFFICIENT_VOUCHERS: company B holds no vouchers",
            FAILED_PRECONDITION,
            "INSUFFICIENT_VOUCHERS",
            provider.redeem_hours(RedeemHoursRequest {
                enterprise_number: COMPANY_B.into(),
                ..redemption()
            }),
        ),
        case(
            "INSUFFICIENT_VOUCHERS: training before the vouchers were paid",
            FAILED_PRECONDITION,
            "INSUFFICIENT_VOUCHERS",
            provider.redeem_hours(RedeemHoursRequest {
                training_date: "2025-02-05".into(),
                ..redemption()
            }),
        ),
        case(
            "VOUCHERS_EXPIRED: training on 2026-02-15, vouchers valid until 2026-01-31",
            FAILED_PRECONDITION,
            "VOUCHERS_EXPIRED",
            provider.redeem_hours(RedeemHoursRequest {
                training_date: "2026-02-15".into(),
                ..redemption()
            }),
        ),
        case(
            "REDEMPTION_NOT_FOUND: reversal of an unknown redemption",
            NOT_FOUND,
            "REDEMPTION_NOT_FOUND",
            provider.reverse_redemption(reverse_redemption(
                "AG-0012",
                &new_request_id(),
                "2025-03-01",
            )),
        ),
        case(
            "REDEMPTION_NOT_OF_PROVIDER: AG-0099 reversing AG-0012's redemption",
            FAILED_PRECONDITION,
            "REDEMPTION_NOT_OF_PROVIDER",
            other_provider.reverse_redemption(reverse_redemption(
                "AG-0099",
                &world.redemption_id,
                "2025-03-01",
            )),
        ),
        case(
            "REDEMPTION_ALREADY_REVERSED: a redemption reversed twice",
            FAILED_PRECONDITION,
            "REDEMPTION_ALREADY_REVERSED",
            provider.reverse_redemption(reverse_redemption(
                "AG-0012",
                &world.reversed_redemption_id,
                "2025-03-01",
            )),
        ),
        // Payouts.
        case(
            "PROVIDER_BALANCE_TOO_LOW: 0.01 paid to AG-0012, paid in full already",
            FAILED_PRECONDITION,
            "PROVIDER_BALANCE_TOO_LOW",
            operator.record_payout(record_payout("AG-0012", "0.01", "2025-06-01")),
        ),
        case(
            "PROVIDER_BALANCE_TOO_LOW: reversal of training already paid for",
            FAILED_PRECONDITION,
            "PROVIDER_BALANCE_TOO_LOW",
            provider.reverse_redemption(reverse_redemption(
                "AG-0012",
                &world.redemption_id,
                "2025-03-05",
            )),
        ),
        case(
            "PROVIDER_BALANCE_TOO_LOW: payout to a provider owed nothing",
            FAILED_PRECONDITION,
            "PROVIDER_BALANCE_TOO_LOW",
            operator.record_payout(record_payout("AG-0099", "30.00", "2025-06-01")),
        ),
        // Idempotency.
        case(
            "REQUEST_ID_REUSED: the id of the opening of budget 2025 with another allocation",
            ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
            administration.open_budget(OpenBudgetRequest {
                request_id: world.budget_request_id.clone(),
                ..open_budget(2025, "2000.00")
            }),
        ),
        case(
            "REQUEST_ID_REUSED: the id of a budget opening for a redemption",
            ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
            provider.redeem_hours(RedeemHoursRequest {
                request_id: world.budget_request_id.clone(),
                ..redemption()
            }),
        ),
    ];

    let failures = refusal_failures(server, cases).await;
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    assert_base_requests_accepted(server, redemption(), issuance(), new_company()).await;
}

/// `Some(what is wrong)` unless `status` has `code`, `reason` in this API's domain, and the
/// `why` metadata when one is expected.
fn check(status: &Status, code: Code, reason: &str, why: Option<&'static str>) -> Option<String> {
    let Some(info) = status.get_details_error_info() else {
        return Some(format!("no ErrorInfo in {status:?}"));
    };
    let found = (
        status.code(),
        info.reason.as_str(),
        info.domain.as_str(),
        info.metadata.get("why").map(String::as_str),
    );
    let expected = (code, reason, ERROR_DOMAIN, why);
    (found != expected).then(|| format!("got {found:?}, expected {expected:?} ({status:?})"))
}

/// EVENT_TOO_LARGE: a redemption drawing from more batches than one event of the log may hold
/// (4 KiB) is refused as a whole and writes nothing; split in two, it is accepted.
#[tokio::test]
async fn a_redemption_drawing_from_too_many_batches_is_event_too_large_and_can_be_split() {
    /// Batches of one voucher each: a draw takes about 70 bytes of the event, so 80 draws are
    /// well over 4 KiB and 40 well under.
    const BATCHES: u32 = 80;
    let world = World::default()
        .budget(2025, "100000.00")
        .provider("AG-0012", "2025-01-01")
        .with(ApproveModuleRequest {
            hours_max: 200,
            ..approve_module(MODULE_GENERAL, "AG-0012", "2025-01-01")
        })
        .company(COMPANY_A, 2025);
    let server = Server::given(world).await;
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    // Sent at once rather than through the world, one by one: the 80 batches need not wait
    // for 80 syncs.
    let issuances: Vec<_> = (0..BATCHES)
        .map(|_| {
            let operator = operator.clone();
            tokio::spawn(async move {
                operator
                    .issue_vouchers(issue_vouchers(COMPANY_A, 1, "2025-03-10"))
                    .await
            })
        })
        .collect();
    for issuance in issuances {
        issuance
            .await
            .expect("an issuance task does not panic")
            .expect("a batch of one voucher is issued");
    }

    let head = server.head().await;
    let all_hours = redeem_hours(
        "AG-0012",
        MODULE_GENERAL,
        COMPANY_A,
        WORKER_1,
        &BATCHES.to_string(),
        "2025-04-15",
    );
    let status = refused(provider.redeem_hours(all_hours).await);
    let violations = assert_status(&status, Code::InvalidArgument, "EVENT_TOO_LARGE");
    assert!(
        violations.is_empty(),
        "no field is at fault: {violations:?}"
    );
    assert_eq!(server.head().await, head);

    let half = (BATCHES / 2).to_string();
    for training_date in ["2025-04-15", "2025-04-16"] {
        provider
            .redeem_hours(redeem_hours(
                "AG-0012",
                MODULE_GENERAL,
                COMPANY_A,
                WORKER_1,
                &half,
                training_date,
            ))
            .await
            .expect("half of the hours fit in one event");
    }
    let wallet = operator
        .get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("wallet");
    assert!(
        wallet.batches.is_empty(),
        "every voucher is used: {wallet:?}"
    );
}
