//! A small world to drive the engine with: the default policy, a clock set by hand, and
//! builders for the commands of a company's year.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ledger_domain::command::{
    ApproveModule, ApproveProvider, IssueVouchers, OpenBudget, RedeemHours, RegisterCompany,
};
use ledger_domain::{
    Command, EnterpriseNumber, Identifier, LegalForm, PolicyTable, Principal, Region, Theme,
    TraineeStatus, VoucherType, WorkerPseudonym,
};
use ledger_engine::{Engine, EngineConfig, ManualClock};
use rust_decimal::Decimal;
use uuid::Uuid;

pub const DEFAULT_POLICY: &str = include_str!("../../../../config/policy.toml");

pub fn policy() -> PolicyTable {
    PolicyTable::from_toml_str(DEFAULT_POLICY).expect("the default policy parses")
}

pub fn date(text: &str) -> NaiveDate {
    text.parse().expect("test dates are valid")
}

pub fn noon(text: &str) -> DateTime<Utc> {
    let day = date(text);
    Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).expect("noon exists"))
}

pub fn clock(today: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(noon(today)))
}

pub fn start(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    let clock: Arc<dyn ledger_engine::Clock> = Arc::clone(clock) as Arc<dyn ledger_engine::Clock>;
    retry_while_locked(|| Engine::start(EngineConfig::new(dir, policy()), Arc::clone(&clock)))
}

/// Opens something on a folder this process closed a moment ago. A restart in the same process
/// can find sled's file lock still held for a moment: sled's I/O threads let go of the closed
/// database's file a little after the last handle drops. (A real restart is a new process,
/// whose exit released everything.) So wait a little for the lock, and only for it.
pub fn retry_while_locked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let mut attempts = 0;
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(error) if attempts < 100 && error.to_string().contains("lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("opens: {error}"),
        }
    }
}

pub fn id(text: &str) -> Identifier {
    Identifier::parse(text).expect("test ids are valid")
}

pub fn eur(text: &str) -> Decimal {
    text.parse().expect("test amounts are valid")
}

/// A valid enterprise number built from eight digits.
pub fn enterprise(body: u64) -> EnterpriseNumber {
    let check = 97 - body % 97;
    EnterpriseNumber::parse(&format!("{body:08}{check:02}")).expect("computed check digits")
}

pub fn worker(n: u8) -> WorkerPseudonym {
    WorkerPseudonym::from_bytes([n; 32])
}

pub const ADMIN: Principal = Principal::Administration;
pub const OPERATOR: Principal = Principal::Operator;

pub fn provider_principal(provider: &str) -> Principal {
    Principal::Provider(id(provider))
}

pub fn open_budget(year: i32, allocated: &str) -> Command {
    Command::OpenBudget(OpenBudget {
        year,
        allocated_eur: eur(allocated),
    })
}

pub fn approve_provider(provider: &str) -> Command {
    Command::ApproveProvider(ApproveProvider {
        provider_id: id(provider),
        name: format!("provider {provider}"),
        approved_from: date("2020-01-01"),
        approved_until: None,
    })
}

pub fn approve_module(module: &str, provider: &str, hours_max: u32) -> Command {
    Command::ApproveModule(ApproveModule {
        module_id: id(module),
        provider_id: id(provider),
        title: format!("module {module}"),
        hours_max,
        accepted_voucher_types: vec![VoucherType::General, VoucherType::Languages],
        themes: vec![Theme::Ai],
        approved_from: date("2020-01-01"),
        approved_until: None,
    })
}

pub fn register(company: &EnterpriseNumber, year: i32, fte: &str) -> Command {
    Command::RegisterCompany(RegisterCompany {
        enterprise_number: company.clone(),
        year,
        name: "Ateliers Test".into(),
        legal_form: LegalForm::CommercialCompany,
        region: Region::WalloniaFrenchSpeaking,
        fte: eur(fte),
        turnover_eur: eur("1000000"),
        balance_sheet_total_eur: eur("500000"),
        autonomous: true,
        secondary_activity_months: 0,
        nace_sector: "62.01".into(),
        registered_on: date(&format!("{}-12-15", year - 1)),
    })
}

pub fn issue(company: &EnterpriseNumber, quantity: u32, payment_date: &str) -> Command {
    Command::IssueVouchers(IssueVouchers {
        batch_id: Uuid::new_v4(),
        enterprise_number: company.clone(),
        voucher_type: VoucherType::General,
        quantity,
        paid_amount_eur: Decimal::from(quantity) * eur("15.00"),
        payment_date: date(payment_date),
        payment_reference: "+++123/4567/89012+++".into(),
    })
}

pub fn redeem(
    company: &EnterpriseNumber,
    provider: &str,
    module: &str,
    who: u8,
    hours: u32,
    training_date: &str,
) -> Command {
    Command::RedeemHours(RedeemHours {
        redemption_id: Uuid::new_v4(),
        provider_id: id(provider),
        module_id: id(module),
        enterprise_number: company.clone(),
        worker: worker(who),
        trainee_status: TraineeStatus::Employee,
        voucher_type: VoucherType::General,
        hours,
        training_date: date(training_date),
        usage_code: None,
    })
}

/// Submits and expects acceptance.
pub async fn accept(
    engine: &Engine,
    principal: Principal,
    command: Command,
) -> ledger_engine::Outcome {
    let action = command.action();
    match engine
        .handle()
        .submit(Uuid::new_v4(), principal, command)
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => panic!("{action} should be accepted: {error}"),
    }
}

/// A budget, an approved provider `AG-1` with module `M-1` (40 hours) and a registered company
/// holding `vouchers` general vouchers paid on 2025-03-10.
pub async fn world(engine: &Engine, company: &EnterpriseNumber, vouchers: u32) {
    accept(engine, ADMIN, open_budget(2025, "1000000.00")).await;
    accept(engine, ADMIN, approve_provider("AG-1")).await;
    accept(engine, ADMIN, approve_module("M-1", "AG-1", 40)).await;
    accept(engine, OPERATOR, register(company, 2025, "10")).await;
    if vouchers > 0 {
        accept(engine, OPERATOR, issue(company, vouchers, "2025-03-10")).await;
    }
}
