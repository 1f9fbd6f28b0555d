//! The given/when/then harness of the domain tests, and builders for the commands and events that
//! recur in them, so that each test reads like the rule it checks:
//!
//! ```text
//! given(events![world(), vouchers_issued(acme(), batch(1), General, 10, "2025-01-10")])
//!     .today("2025-06-30")
//!     .when(redeem(redemption(1), acme(), General, 11, "2025-03-01"))
//!     .then_refused(Refusal::InsufficientVouchers { available: 10, requested: 11 });
//! ```
//!
//! `given` folds the events with `apply` and insists that each applies; after an accepted
//! command, the harness applies the produced events too and checks that every event's postings
//! balance and that the trial balance is still zero. The builders fill every field a rule does
//! not look at with one fixed, plausible value; a test names only what its rule is about.
//!
//! Nothing here re-implements a rule: amounts and expiries are written out from docs/RULES.md
//! (EUR 15.00 + 15.00 = 30.00, valid until the last day of month M + 11).

#![allow(dead_code)]

use chrono::{Datelike, NaiveDate};
use ledger_domain::command::{
    AdjustBudget, ApproveModule, ApproveProvider, CancelUsageCode, ExpireVouchers, IssueVouchers,
    OpenBudget, OrderUsageCode, RecordPayout, RedeemHours, RegisterCompany, ReverseRedemption,
    WithdrawModule, WithdrawProvider,
};
use ledger_domain::event::{
    postings_balance, BatchDraw, BudgetAdjusted, BudgetOpened, CompanyRegistered, HoursRedeemed,
    ModuleApproved, ModuleWithdrawn, PayoutRecorded, ProviderApproved, ProviderWithdrawn,
    RedemptionReversed, UsageCodeCancelled, UsageCodeLapsed, UsageCodeOrdered, VouchersExpired,
    VouchersIssued,
};
use ledger_domain::{
    decide, Account, Command, Context, EnterpriseNumber, Event, Identifier, LedgerState, LegalForm,
    PolicyTable, Posting, Refusal, Region, SizeClass, Theme, TraineeStatus, VoucherType,
    WorkerPseudonym,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;

/// The default dated policy table of the repository, as the server loads it.
pub const DEFAULT_POLICY: &str = include_str!("../../../../config/policy.toml");

/// The day the tests decide on unless they say otherwise.
pub const DEFAULT_TODAY: &str = "2025-06-30";

/// The amounts of docs/RULES.md §1, written out rather than read from the policy, so that a
/// policy file that drifted from the rules is caught.
pub const FACE_VALUE_EUR: Decimal = dec!(30.00);
pub const EMPLOYER_SHARE_EUR: Decimal = dec!(15.00);
pub const REGION_SHARE_EUR: Decimal = dec!(15.00);

pub const PAYMENT_REFERENCE: &str = "+++090/9337/55493+++";
pub const PAYOUT_REFERENCE: &str = "PAYOUT-2025-0001";
pub const REVERSAL_REASON: &str = "training cancelled";
pub const WITHDRAWAL_REASON: &str = "approval withdrawn after inspection";
pub const ADJUSTMENT_REASON: &str = "regional budget amended";

// ---------------------------------------------------------------------------------------------
// The harness.

/// A state built from past events, about to decide one command.
#[derive(Debug)]
pub struct Given {
    state: LedgerState,
    today: NaiveDate,
    policy: PolicyTable,
}

/// Folds `events` into an empty state; each must apply, and their postings must balance.
pub fn given(events: Vec<Event>) -> Given {
    let mut state = LedgerState::default();
    for (index, event) in events.iter().enumerate() {
        assert!(
            postings_balance(event.postings()),
            "given event {index} ({}) has postings that do not balance: {event:#?}",
            event.type_name()
        );
        if let Err(inconsistency) = state.apply(event) {
            panic!("given event {index} does not apply: {inconsistency}\n{event:#?}");
        }
    }
    assert_eq!(
        state.trial_balance_eur(),
        Decimal::ZERO,
        "the given events leave a trial balance that is not zero"
    );
    Given {
        state,
        today: date(DEFAULT_TODAY),
        policy: default_policy(),
    }
}

impl Given {
    pub fn today(mut self, today: &str) -> Given {
        self.today = date(today);
        self
    }

    pub fn policy(mut self, policy: PolicyTable) -> Given {
        self.policy = policy;
        self
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    pub fn when(self, command: impl IntoCommand) -> When {
        let command = command.into_command();
        let context = Context {
            today: self.today,
            policy: &self.policy,
        };
        let outcome = decide(&self.state, &command, &context);
        When {
            state: self.state,
            command,
            outcome,
        }
    }
}

/// The outcome of one decision, about to be checked.
#[derive(Debug)]
pub struct When {
    state: LedgerState,
    command: Command,
    outcome: Result<Vec<Event>, Refusal>,
}

impl When {
    /// The command is accepted with exactly `expected`; returns the state after them.
    pub fn then(self, expected: Vec<Event>) -> LedgerState {
        self.then_events(|events| {
            assert_eq!(
                events,
                expected.as_slice(),
                "the command caused other events than expected"
            );
        })
    }

    /// The command is refused, for exactly this reason (variant and fields).
    pub fn then_refused(self, expected: Refusal) {
        match self.outcome {
            Err(refusal) => assert_eq!(refusal, expected, "refused for another reason"),
            Ok(events) => panic!(
                "expected the refusal {expected:?}, but {:?} was accepted with {events:#?}",
                self.command
            ),
        }
    }

    /// The command is accepted, and its events pass `check`; returns the state after them.
    pub fn then_events(self, check: impl FnOnce(&[Event])) -> LedgerState {
        let events = match self.outcome {
            Ok(events) => events,
            Err(refusal) => panic!("{:?} was refused: {refusal:?}", self.command),
        };
        check(&events);
        let mut state = self.state;
        for event in &events {
            assert!(
                postings_balance(event.postings()),
                "{} has postings that do not balance: {event:#?}",
                event.type_name()
            );
            if let Err(inconsistency) = state.apply(event) {
                panic!("a decided event does not apply: {inconsistency}\n{event:#?}");
            }
            assert_eq!(
                state.trial_balance_eur(),
                Decimal::ZERO,
                "trial balance not zero after {}",
                event.type_name()
            );
        }
        state
    }

    /// The raw outcome, for the few tests that look at it another way.
    pub fn outcome(&self) -> &Result<Vec<Event>, Refusal> {
        &self.outcome
    }

    /// The state the command was decided against.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }
}

/// The events `events` followed by those of `commands`, each decided in turn on `today` under
/// `policy` and required to be accepted: a history written by the ledger's own rules.
pub fn decided(
    events: Vec<Event>,
    commands: Vec<Command>,
    today: &str,
    policy: &PolicyTable,
) -> Vec<Event> {
    let mut state = LedgerState::default();
    for event in &events {
        state.apply(event).expect("a given event applies");
    }
    let context = Context {
        today: date(today),
        policy,
    };
    let mut history = events;
    for command in commands {
        let produced = match decide(&state, &command, &context) {
            Ok(produced) => produced,
            Err(refusal) => panic!("history command {command:?} was refused: {refusal:?}"),
        };
        for event in produced {
            state.apply(&event).expect("a decided event applies");
            history.push(event);
        }
    }
    history
}

/// Anything that stands for one or more past events in `events![…]`.
pub trait IntoEvents {
    fn push_into(self, events: &mut Vec<Event>);
}

impl IntoEvents for Event {
    fn push_into(self, events: &mut Vec<Event>) {
        events.push(self);
    }
}

impl IntoEvents for Vec<Event> {
    fn push_into(self, events: &mut Vec<Event>) {
        events.extend(self);
    }
}

macro_rules! into_events {
    ($($variant:ident),* $(,)?) => {$(
        impl IntoEvents for $variant {
            fn push_into(self, events: &mut Vec<Event>) {
                events.push(Event::$variant(self));
            }
        }
    )*};
}

into_events!(
    BudgetOpened,
    BudgetAdjusted,
    ProviderApproved,
    ProviderWithdrawn,
    ModuleApproved,
    ModuleWithdrawn,
    CompanyRegistered,
    VouchersIssued,
    HoursRedeemed,
    RedemptionReversed,
    VouchersExpired,
    PayoutRecorded,
    UsageCodeOrdered,
    UsageCodeCancelled,
    UsageCodeLapsed,
);

/// A list of events from event structs, `Event`s and lists of them (such as `world()`).
macro_rules! events {
    ($($event:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut events: Vec<ledger_domain::Event> = Vec::new();
        $( $crate::support::IntoEvents::push_into($event, &mut events); )*
        events
    }};
}
#[allow(unused_imports)]
pub(crate) use events;

/// Anything that stands for a command in `when(…)`.
pub trait IntoCommand {
    fn into_command(self) -> Command;
}

impl IntoCommand for Command {
    fn into_command(self) -> Command {
        self
    }
}

macro_rules! into_command {
    ($($variant:ident),* $(,)?) => {$(
        impl IntoCommand for $variant {
            fn into_command(self) -> Command {
                Command::$variant(self)
            }
        }
    )*};
}

into_command!(
    OpenBudget,
    AdjustBudget,
    ApproveProvider,
    WithdrawProvider,
    ApproveModule,
    WithdrawModule,
    RegisterCompany,
    IssueVouchers,
    RedeemHours,
    ReverseRedemption,
    ExpireVouchers,
    RecordPayout,
    OrderUsageCode,
    CancelUsageCode,
);

// ---------------------------------------------------------------------------------------------
// Values.

pub fn date(text: &str) -> NaiveDate {
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} is not a yyyy-mm-dd date: {error}"))
}

pub fn default_policy() -> PolicyTable {
    PolicyTable::from_toml_str(DEFAULT_POLICY).expect("the default policy table parses")
}

/// The default table with one textual replacement, such as a switch turned on.
pub fn policy_replacing(from: &str, to: &str) -> PolicyTable {
    assert!(DEFAULT_POLICY.contains(from), "the policy has no {from:?}");
    PolicyTable::from_toml_str(&DEFAULT_POLICY.replace(from, to))
        .expect("the modified policy table parses")
}

/// The default table, whose company share of expired vouchers is refunded.
pub fn policy_refunding_on_expiry() -> PolicyTable {
    policy_replacing(
        "refund_employer_share_on_expiry = false",
        "refund_employer_share_on_expiry = true",
    )
}

/// The default table, followed by a second row from `effective_from`: a copy of the first with
/// `replacements` made in its text.
pub fn policy_with_second_row(effective_from: &str, replacements: &[(&str, &str)]) -> PolicyTable {
    // The row starts at the header on a line of its own (the comments mention `[[policy]]` too).
    let start = DEFAULT_POLICY
        .find("\n[[policy]]")
        .expect("the default policy has a row");
    let mut second_row = DEFAULT_POLICY[start..].replace("2004-01-01", effective_from);
    for (from, to) in replacements {
        assert!(second_row.contains(from), "the policy row has no {from:?}");
        second_row = second_row.replace(from, to);
    }
    PolicyTable::from_toml_str(&format!("{DEFAULT_POLICY}\n{second_row}"))
        .expect("the two-row policy table parses")
}

/// The default table, followed by a second row from `effective_from` in which vouchers are
/// valid for `validity_months` only.
pub fn policy_with_validity_from(effective_from: &str, validity_months: u32) -> PolicyTable {
    policy_with_second_row(
        effective_from,
        &[(
            "validity_months = 12",
            &format!("validity_months = {validity_months}"),
        )],
    )
}

/// The quota of the default policy.
pub fn quota(size_class: SizeClass, voucher_type: VoucherType) -> u32 {
    default_policy()
        .in_force(date(DEFAULT_TODAY))
        .expect("a policy is in force")
        .quota(size_class, voucher_type)
}

/// `count` × `unit`, with two decimals.
pub fn times(unit: Decimal, count: u32) -> Decimal {
    let mut amount = unit * Decimal::from(count);
    amount.rescale(2);
    amount
}

/// The last day of month M + 11 for a payment in month M (docs/RULES.md rule 8).
pub fn valid_until(payment_date: &str) -> NaiveDate {
    let paid = date(payment_date);
    // The month after M + 11, counted from year 0; its first day's eve is the answer.
    let month_index = paid.year() * 12 + i32::try_from(paid.month0()).expect("month fits") + 12;
    let year = month_index.div_euclid(12);
    let month = u32::try_from(month_index.rem_euclid(12)).expect("month fits") + 1;
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.pred_opt())
        .expect("a calendar date")
}

/// A valid enterprise number from its first eight digits: `97 - (body mod 97)` appended.
pub fn enterprise_number_text(body: u32) -> String {
    format!("{body:08}{:02}", 97 - body % 97)
}

pub fn enterprise(text: &str) -> EnterpriseNumber {
    EnterpriseNumber::parse(text).unwrap_or_else(|| panic!("{text} is a valid enterprise number"))
}

/// The company most tests are about: 0403.019.261, the valid example of docs/RULES.md rule 1.
pub fn acme() -> EnterpriseNumber {
    enterprise("0403.019.261")
}

/// A second company.
pub fn globex() -> EnterpriseNumber {
    enterprise("0202.239.951")
}

pub fn id(text: &str) -> Identifier {
    Identifier::parse(text).unwrap_or_else(|| panic!("{text} is a valid identifier"))
}

/// The approved provider most tests redeem with.
pub fn formaform() -> Identifier {
    id("AG-0001")
}

/// Another approved provider.
pub fn other_provider() -> Identifier {
    id("AG-0002")
}

/// Formaform's module: 40 hours, general and language vouchers, a digital theme.
pub fn spreadsheet_module() -> Identifier {
    id("MOD-SPREADSHEET")
}

/// The other provider's module.
pub fn welding_module() -> Identifier {
    id("MOD-WELDING")
}

pub const MODULE_HOURS: u32 = 40;

pub fn batch(number: u128) -> Uuid {
    Uuid::from_u128(0xba7c_0000_0000_0000_0000_0000_0000_0000 + number)
}

pub fn redemption(number: u128) -> Uuid {
    Uuid::from_u128(0x2ede_0000_0000_0000_0000_0000_0000_0000 + number)
}

/// The pseudonym of worker `number` (what the server derives from a NISS with its key).
pub fn worker(number: u8) -> WorkerPseudonym {
    WorkerPseudonym::from_bytes([number; 32])
}

// ---------------------------------------------------------------------------------------------
// Events.

pub fn budget_opened(year: i32, allocated_eur: Decimal) -> BudgetOpened {
    BudgetOpened {
        year,
        allocated_eur,
    }
}

pub fn provider_approved(provider_id: Identifier, approved_from: &str) -> ProviderApproved {
    ProviderApproved {
        provider_id,
        name: "Formaform SRL".to_owned(),
        approved_from: date(approved_from),
        approved_until: None,
    }
}

pub fn provider_withdrawn(provider_id: Identifier, withdrawn_from: &str) -> ProviderWithdrawn {
    ProviderWithdrawn {
        provider_id,
        withdrawn_from: date(withdrawn_from),
        reason: WITHDRAWAL_REASON.to_owned(),
    }
}

/// A module of `provider_id`: 40 hours, general and language vouchers, digital theme, approved
/// from 2020-01-01 with no end.
pub fn module_approved(module_id: Identifier, provider_id: Identifier) -> ModuleApproved {
    ModuleApproved {
        module_id,
        provider_id,
        title: "Spreadsheets for accountants".to_owned(),
        hours_max: MODULE_HOURS,
        accepted_voucher_types: vec![VoucherType::General, VoucherType::Languages],
        themes: vec![Theme::Digital],
        approved_from: date("2020-01-01"),
        approved_until: None,
    }
}

pub fn module_withdrawn(
    module_id: Identifier,
    provider_id: Identifier,
    withdrawn_from: &str,
) -> ModuleWithdrawn {
    ModuleWithdrawn {
        module_id,
        provider_id,
        withdrawn_from: date(withdrawn_from),
        reason: WITHDRAWAL_REASON.to_owned(),
    }
}

/// An eligible company of 10 FTE (2 to 50 FTE), registered on 2 January of `year`.
pub fn company_registered(enterprise_number: EnterpriseNumber, year: i32) -> CompanyRegistered {
    let command = registration(enterprise_number, year);
    CompanyRegistered {
        enterprise_number: command.enterprise_number,
        year: command.year,
        name: command.name,
        legal_form: command.legal_form,
        region: command.region,
        fte: command.fte,
        turnover_eur: command.turnover_eur,
        balance_sheet_total_eur: command.balance_sheet_total_eur,
        autonomous: command.autonomous,
        secondary_activity_months: command.secondary_activity_months,
        nace_sector: command.nace_sector,
        size_class: SizeClass::Fte2To50,
        registered_on: command.registered_on,
    }
}

/// An eligible company registered in `size_class`, with a legal form and FTE of that class.
pub fn company_registered_as(
    enterprise_number: EnterpriseNumber,
    year: i32,
    size_class: SizeClass,
) -> CompanyRegistered {
    let command = registration_as(enterprise_number.clone(), year, size_class);
    CompanyRegistered {
        legal_form: command.legal_form,
        fte: command.fte,
        secondary_activity_months: command.secondary_activity_months,
        size_class,
        ..company_registered(enterprise_number, year)
    }
}

/// `quantity` vouchers paid on `payment_date` by a company of 2 to 50 FTE, under the default
/// policy: EUR 15.00 paid per voucher, valid until the last day of month M + 11.
pub fn vouchers_issued(
    enterprise_number: EnterpriseNumber,
    batch_id: Uuid,
    voucher_type: VoucherType,
    quantity: u32,
    payment_date: &str,
) -> VouchersIssued {
    let paid = date(payment_date);
    let budget_year = paid.year();
    VouchersIssued {
        enterprise_number,
        batch_id,
        voucher_type,
        quantity,
        payment_date: paid,
        payment_reference: PAYMENT_REFERENCE.to_owned(),
        paid_amount_eur: times(EMPLOYER_SHARE_EUR, quantity),
        face_value_eur: FACE_VALUE_EUR,
        employer_share_eur: EMPLOYER_SHARE_EUR,
        region_share_eur: REGION_SHARE_EUR,
        budget_year,
        valid_until: valid_until(payment_date),
        quota: quota(SizeClass::Fte2To50, voucher_type),
        issued_in_year: quantity,
        postings: vec![
            Posting::debit(
                Account::VouchersOutstanding,
                times(FACE_VALUE_EUR, quantity),
            ),
            Posting::credit(
                Account::CompanyContributions,
                times(EMPLOYER_SHARE_EUR, quantity),
            ),
            Posting::credit(
                Account::RegionBudget(budget_year),
                times(REGION_SHARE_EUR, quantity),
            ),
        ],
    }
}

/// `quantity` vouchers taken from (or given back to) the batch paid on `payment_date`.
pub fn draw(batch_id: Uuid, quantity: u32, payment_date: &str) -> BatchDraw {
    BatchDraw {
        batch_id,
        quantity,
        budget_year: date(payment_date).year(),
        face_value_eur: FACE_VALUE_EUR,
        region_share_eur: REGION_SHARE_EUR,
        valid_until: valid_until(payment_date),
    }
}

/// `draws` redeemed by Formaform for worker 1, an employee of `enterprise_number`, in the
/// spreadsheet module.
pub fn hours_redeemed(
    redemption_id: Uuid,
    enterprise_number: EnterpriseNumber,
    voucher_type: VoucherType,
    training_date: &str,
    draws: Vec<BatchDraw>,
) -> HoursRedeemed {
    let hours: u32 = draws.iter().map(|draw| draw.quantity).sum();
    let amount_owed_eur = times(FACE_VALUE_EUR, hours);
    HoursRedeemed {
        redemption_id,
        provider_id: formaform(),
        module_id: spreadsheet_module(),
        enterprise_number,
        worker: worker(1),
        trainee_status: TraineeStatus::Employee,
        voucher_type,
        hours,
        training_date: date(training_date),
        draws,
        amount_owed_eur,
        postings: vec![
            Posting::credit(Account::VouchersOutstanding, amount_owed_eur),
            Posting::debit(Account::ProviderPayable(formaform()), amount_owed_eur),
        ],
        usage_code: None,
    }
}

/// The reversal of `redeemed`, as Formaform asks it on `reversed_on`.
pub fn redemption_reversed(redeemed: &HoursRedeemed, reversed_on: &str) -> RedemptionReversed {
    RedemptionReversed {
        redemption_id: redeemed.redemption_id,
        provider_id: redeemed.provider_id.clone(),
        enterprise_number: redeemed.enterprise_number.clone(),
        returned: redeemed.draws.clone(),
        amount_eur: redeemed.amount_owed_eur,
        reason: REVERSAL_REASON.to_owned(),
        reversed_on: date(reversed_on),
        postings: vec![
            Posting::debit(Account::VouchersOutstanding, redeemed.amount_owed_eur),
            Posting::credit(
                Account::ProviderPayable(redeemed.provider_id.clone()),
                redeemed.amount_owed_eur,
            ),
        ],
    }
}

/// `quantity` vouchers of the batch paid on `payment_date` expired on `expired_on`; the
/// company's share is kept by the scheme unless `refunded`.
pub fn vouchers_expired(
    enterprise_number: EnterpriseNumber,
    batch_id: Uuid,
    voucher_type: VoucherType,
    quantity: u32,
    payment_date: &str,
    expired_on: &str,
    refunded: bool,
) -> VouchersExpired {
    let budget_year = date(payment_date).year();
    let company_account = if refunded {
        Account::CompanyRefunded
    } else {
        Account::CompanyExpired
    };
    VouchersExpired {
        enterprise_number,
        batch_id,
        voucher_type,
        quantity,
        budget_year,
        valid_until: valid_until(payment_date),
        region_share_released_eur: times(REGION_SHARE_EUR, quantity),
        employer_share_eur: times(EMPLOYER_SHARE_EUR, quantity),
        employer_share_refunded: refunded,
        expired_on: date(expired_on),
        postings: vec![
            Posting::credit(
                Account::VouchersOutstanding,
                times(FACE_VALUE_EUR, quantity),
            ),
            Posting::debit(
                Account::RegionBudget(budget_year),
                times(REGION_SHARE_EUR, quantity),
            ),
            Posting::debit(company_account, times(EMPLOYER_SHARE_EUR, quantity)),
        ],
    }
}

pub fn payout_recorded(
    provider_id: Identifier,
    amount_eur: Decimal,
    payout_date: &str,
) -> PayoutRecorded {
    PayoutRecorded {
        provider_id: provider_id.clone(),
        amount_eur,
        payout_date: date(payout_date),
        payout_reference: PAYOUT_REFERENCE.to_owned(),
        postings: vec![
            Posting::credit(Account::ProviderPayable(provider_id.clone()), amount_eur),
            Posting::debit(Account::ProviderPaid(provider_id), amount_eur),
        ],
    }
}

/// The scheme as most tests find it: a 2025 budget of EUR 1 000 000, Formaform approved since
/// 2020 with its 40-hour spreadsheet module, and Acme registered for 2025.
pub fn world() -> Vec<Event> {
    events![
        budget_opened(2025, dec!(1000000.00)),
        provider_approved(formaform(), "2020-01-01"),
        module_approved(spreadsheet_module(), formaform()),
        company_registered(acme(), 2025),
    ]
}

/// `world()` with a second provider and its welding module (general and Éco-Climat vouchers).
pub fn world_with_two_providers() -> Vec<Event> {
    events![
        world(),
        ProviderApproved {
            name: "Soudure Wallonne ASBL".to_owned(),
            ..provider_approved(other_provider(), "2020-01-01")
        },
        ModuleApproved {
            title: "Welding, level 1".to_owned(),
            hours_max: 16,
            accepted_voucher_types: vec![VoucherType::General, VoucherType::EcoClimate],
            themes: vec![Theme::Technical],
            ..module_approved(welding_module(), other_provider())
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Commands.

pub fn open_budget(year: i32, allocated_eur: Decimal) -> OpenBudget {
    OpenBudget {
        year,
        allocated_eur,
    }
}

pub fn adjust_budget(year: i32, allocated_eur: Decimal) -> AdjustBudget {
    AdjustBudget {
        year,
        allocated_eur,
        reason: ADJUSTMENT_REASON.to_owned(),
    }
}

pub fn approve_provider(provider_id: Identifier, approved_from: &str) -> ApproveProvider {
    ApproveProvider {
        provider_id,
        name: "Formaform SRL".to_owned(),
        approved_from: date(approved_from),
        approved_until: None,
    }
}

pub fn withdraw_provider(provider_id: Identifier, withdrawn_from: &str) -> WithdrawProvider {
    WithdrawProvider {
        provider_id,
        withdrawn_from: date(withdrawn_from),
        reason: WITHDRAWAL_REASON.to_owned(),
    }
}

/// The same module as `module_approved`, asked for.
pub fn approve_module(module_id: Identifier, provider_id: Identifier) -> ApproveModule {
    let approved = module_approved(module_id, provider_id);
    ApproveModule {
        module_id: approved.module_id,
        provider_id: approved.provider_id,
        title: approved.title,
        hours_max: approved.hours_max,
        accepted_voucher_types: approved.accepted_voucher_types,
        themes: approved.themes,
        approved_from: approved.approved_from,
        approved_until: approved.approved_until,
    }
}

pub fn withdraw_module(module_id: Identifier, withdrawn_from: &str) -> WithdrawModule {
    WithdrawModule {
        module_id,
        withdrawn_from: date(withdrawn_from),
        reason: WITHDRAWAL_REASON.to_owned(),
    }
}

/// An eligible company: a commercial company of 10 FTE with its seat in French-speaking
/// Wallonia, EUR 1 million of turnover and of balance-sheet total, autonomous, registered on
/// 2 January of `year`.
pub fn registration(enterprise_number: EnterpriseNumber, year: i32) -> RegisterCompany {
    RegisterCompany {
        enterprise_number,
        year,
        name: "Acme Liège SA".to_owned(),
        legal_form: LegalForm::CommercialCompany,
        region: Region::WalloniaFrenchSpeaking,
        fte: dec!(10),
        turnover_eur: dec!(1000000.00),
        balance_sheet_total_eur: dec!(1000000.00),
        autonomous: true,
        secondary_activity_months: 0,
        nace_sector: "62.01".to_owned(),
        // Companies register before the year's first order: mid-December of the year before.
        registered_on: NaiveDate::from_ymd_opt(year - 1, 12, 15).expect("15 December exists"),
    }
}

/// An eligible registration whose size class is `size_class`.
pub fn registration_as(
    enterprise_number: EnterpriseNumber,
    year: i32,
    size_class: SizeClass,
) -> RegisterCompany {
    let eligible = registration(enterprise_number, year);
    match size_class {
        SizeClass::SecondarySelfEmployed => RegisterCompany {
            legal_form: LegalForm::SelfEmployedSecondary,
            fte: dec!(0),
            secondary_activity_months: 6,
            ..eligible
        },
        SizeClass::Micro => RegisterCompany {
            fte: dec!(1),
            ..eligible
        },
        SizeClass::Fte2To50 => RegisterCompany {
            fte: dec!(10),
            ..eligible
        },
        SizeClass::Fte51To100 => RegisterCompany {
            fte: dec!(75),
            ..eligible
        },
        SizeClass::Fte101To200 => RegisterCompany {
            fte: dec!(150),
            ..eligible
        },
        SizeClass::Fte201To250 => RegisterCompany {
            fte: dec!(250),
            ..eligible
        },
    }
}

/// `quantity` vouchers paid on `payment_date`, for exactly quantity × EUR 15.00.
pub fn issue(
    enterprise_number: EnterpriseNumber,
    batch_id: Uuid,
    voucher_type: VoucherType,
    quantity: u32,
    payment_date: &str,
) -> IssueVouchers {
    IssueVouchers {
        batch_id,
        enterprise_number,
        voucher_type,
        quantity,
        paid_amount_eur: times(EMPLOYER_SHARE_EUR, quantity),
        payment_date: date(payment_date),
        payment_reference: PAYMENT_REFERENCE.to_owned(),
    }
}

/// `hours` of training in Formaform's spreadsheet module for worker 1, an employee.
pub fn redeem(
    redemption_id: Uuid,
    enterprise_number: EnterpriseNumber,
    voucher_type: VoucherType,
    hours: u32,
    training_date: &str,
) -> RedeemHours {
    RedeemHours {
        redemption_id,
        provider_id: formaform(),
        module_id: spreadsheet_module(),
        enterprise_number,
        worker: worker(1),
        trainee_status: TraineeStatus::Employee,
        voucher_type,
        hours,
        training_date: date(training_date),
        usage_code: None,
    }
}

/// `enterprise_number` consents to `hours` of general training by Formaform, in any module,
/// between `from` and `until`.
pub fn order_code(
    order_id: Uuid,
    enterprise_number: EnterpriseNumber,
    hours: u32,
    from: &str,
    until: &str,
) -> OrderUsageCode {
    OrderUsageCode {
        order_id,
        enterprise_number,
        provider_id: formaform(),
        module_id: None,
        voucher_type: VoucherType::General,
        hours,
        period_from: date(from),
        period_until: date(until),
    }
}

pub fn cancel_code(
    code: &ledger_domain::UsageCode,
    enterprise_number: EnterpriseNumber,
) -> CancelUsageCode {
    CancelUsageCode {
        code: code.clone(),
        enterprise_number,
        reason: "training postponed".to_owned(),
    }
}

/// `redeem`, filed against `code`.
pub fn file_against(
    code: &ledger_domain::UsageCode,
    redemption_id: Uuid,
    enterprise_number: EnterpriseNumber,
    hours: u32,
    training_date: &str,
) -> RedeemHours {
    RedeemHours {
        usage_code: Some(code.clone()),
        ..redeem(
            redemption_id,
            enterprise_number,
            VoucherType::General,
            hours,
            training_date,
        )
    }
}

pub fn the_code_order(events: &[Event]) -> &UsageCodeOrdered {
    match events {
        [Event::UsageCodeOrdered(event)] => event,
        other => panic!("expected one UsageCodeOrdered, got {other:#?}"),
    }
}

pub fn reverse(
    redemption_id: Uuid,
    provider_id: Identifier,
    reversed_on: &str,
) -> ReverseRedemption {
    ReverseRedemption {
        redemption_id,
        provider_id,
        reason: REVERSAL_REASON.to_owned(),
        reversed_on: date(reversed_on),
    }
}

pub fn expire(as_of: &str) -> ExpireVouchers {
    ExpireVouchers { as_of: date(as_of) }
}

pub fn payout(provider_id: Identifier, amount_eur: Decimal, payout_date: &str) -> RecordPayout {
    RecordPayout {
        provider_id,
        amount_eur,
        payout_date: date(payout_date),
        payout_reference: PAYOUT_REFERENCE.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Looking into the events of `then_events`.

pub fn the_registration(events: &[Event]) -> &CompanyRegistered {
    match events {
        [Event::CompanyRegistered(event)] => event,
        other => panic!("expected one CompanyRegistered, got {other:#?}"),
    }
}

pub fn the_issuance(events: &[Event]) -> &VouchersIssued {
    match events {
        [Event::VouchersIssued(event)] => event,
        other => panic!("expected one VouchersIssued, got {other:#?}"),
    }
}

pub fn the_redemption(events: &[Event]) -> &HoursRedeemed {
    match events {
        [Event::HoursRedeemed(event)] => event,
        other => panic!("expected one HoursRedeemed, got {other:#?}"),
    }
}

pub fn the_expiries(events: &[Event]) -> Vec<&VouchersExpired> {
    events
        .iter()
        .map(|event| match event {
            Event::VouchersExpired(event) => event,
            other => panic!("expected only VouchersExpired, got {other:#?}"),
        })
        .collect()
}
