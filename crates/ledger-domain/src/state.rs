//! The in-memory state the single writer decides against, folded from the events by
//! [`LedgerState::apply`]. Ordered maps everywhere, so that two replays of the same log give
//! states that compare (and print) identically.
//!
//! The maps that grow with the history are persistent B-trees ([`OrdMap`], [`OrdSet`]): a
//! clone shares every node, and a node is copied only when written after that. The writer
//! clones the state for each checkpoint, which another thread encodes; with `std`'s maps that
//! clone copied the whole state (0.6–1.0 s after ten simulated years, in which no group was
//! decided) and held twice the state's memory until the checkpoint was written. They encode
//! exactly as `std`'s `BTreeMap` and `BTreeSet` did (a length, then the entries in key order),
//! so checkpoints keep their bytes and their format version.

use imbl::{OrdMap, OrdSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Account, BatchDraw, Event, HoursRedeemed};
use crate::identity::{EnterpriseNumber, Identifier, WorkerPseudonym};
use crate::small_map::SmallMap;
use crate::types::{LegalForm, Region, SizeClass, Theme, TraineeStatus, VoucherType};
use crate::usage_code::UsageCode;
pub use crate::worker_hours::WorkerModuleHours;

/// The Region's budget of one year.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub allocated_eur: Decimal,
    /// The Region's share of issued vouchers neither redeemed nor expired.
    pub committed_eur: Decimal,
    /// The Region's share of redeemed vouchers.
    pub spent_eur: Decimal,
    /// The Region's share of expired vouchers, given back to the budget.
    pub released_eur: Decimal,
}

/// How each event moves a budget's figures: the one place that computes them, for the rules
/// (an issuance must fit what is available) and for the reports alike.
impl Budget {
    pub fn available_eur(&self) -> Decimal {
        self.allocated_eur - self.committed_eur - self.spent_eur
    }

    /// Vouchers issued: the Region's share of them is committed.
    pub fn commit(&mut self, region_eur: Decimal) {
        self.committed_eur += region_eur;
    }

    /// Vouchers redeemed: their Region's share goes from committed to spent.
    pub fn spend(&mut self, region_eur: Decimal) {
        self.committed_eur -= region_eur;
        self.spent_eur += region_eur;
    }

    /// A redemption reversed: its vouchers' Region's share goes back from spent to committed.
    pub fn unspend(&mut self, region_eur: Decimal) {
        self.spent_eur -= region_eur;
        self.committed_eur += region_eur;
    }

    /// Vouchers expired: their Region's share goes from committed back to the budget.
    pub fn release(&mut self, region_eur: Decimal) {
        self.committed_eur -= region_eur;
        self.released_eur += region_eur;
    }
}

/// A dated approval: in force from `from`, through `until` when set, and before `withdrawn_from`
/// when set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
    pub withdrawn_from: Option<NaiveDate>,
}

impl Approval {
    pub fn in_force_on(&self, date: NaiveDate) -> bool {
        self.from <= date
            && self.until.is_none_or(|until| date <= until)
            && self
                .withdrawn_from
                .is_none_or(|withdrawn_from| date < withdrawn_from)
    }

    /// The last day the approval is in force; `None` when open-ended.
    pub fn last_day(&self) -> Option<NaiveDate> {
        let withdrawn_last = self.withdrawn_from.and_then(|date| date.pred_opt());
        match (self.until, withdrawn_last) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether two approvals share at least one day.
    pub fn overlaps(&self, other: &Approval) -> bool {
        let starts_before_other_ends = other.last_day().is_none_or(|last| self.from <= last);
        let other_starts_before_self_ends = self.last_day().is_none_or(|last| other.from <= last);
        starts_before_other_ends && other_starts_before_self_ends
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub name: String,
    pub approvals: Vec<Approval>,
    pub redeemed_hours: u64,
    /// Face value of redeemed vouchers not reversed and not yet paid.
    pub owed_eur: Decimal,
    pub paid_eur: Decimal,
}

impl Provider {
    pub fn approved_on(&self, date: NaiveDate) -> bool {
        self.approvals
            .iter()
            .any(|approval| approval.in_force_on(date))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub provider_id: Identifier,
    pub title: String,
    pub hours_max: u32,
    pub accepted_voucher_types: Vec<VoucherType>,
    pub themes: Vec<Theme>,
    pub approval: Approval,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub name: String,
    pub legal_form: LegalForm,
    pub region: Region,
    pub size_class: SizeClass,
    pub nace_sector: String,
    pub registered_on: NaiveDate,
}

/// Vouchers of one type issued together for one payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub batch_id: Uuid,
    /// Order of issuance across the whole ledger; breaks ties between equal expiries.
    pub sequence: u64,
    pub voucher_type: VoucherType,
    pub quantity: u32,
    /// Vouchers neither redeemed nor expired.
    pub remaining: u32,
    /// Of `remaining`, the vouchers earmarked for open usage codes: only a filing against
    /// their code may spend them, and the expiry run leaves them until the code's grace passed.
    pub earmarked: u32,
    pub payment_date: NaiveDate,
    pub valid_until: NaiveDate,
    pub budget_year: i32,
    pub face_value_eur: Decimal,
    pub employer_share_eur: Decimal,
    pub region_share_eur: Decimal,
}

/// A company's maps hold a handful of entries each, for ~100 000 companies after ten years:
/// [`SmallMap`]s, not `BTreeMap`s, whose first node alone is room for eleven (see
/// `small_map.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub registrations: SmallMap<i32, Registration>,
    pub batches: SmallMap<Uuid, Batch>,
    /// Vouchers issued per (calendar year of payment, type): what the quotas count.
    pub issued: SmallMap<(i32, VoucherType), u32>,
}

impl Batch {
    /// Vouchers left that no usage code holds: what a redemption without a code, or a new
    /// code, may draw on.
    pub fn free(&self) -> u32 {
        self.remaining.saturating_sub(self.earmarked)
    }
}

impl Company {
    /// Vouchers of `voucher_type` left in the wallet, whatever their expiry.
    pub fn balance(&self, voucher_type: VoucherType) -> u32 {
        self.batches
            .values()
            .filter(|batch| batch.voucher_type == voucher_type)
            .map(|batch| batch.remaining)
            .sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub provider_id: Identifier,
    pub module_id: Identifier,
    pub enterprise_number: EnterpriseNumber,
    pub worker: WorkerPseudonym,
    pub trainee_status: TraineeStatus,
    pub voucher_type: VoucherType,
    pub hours: u32,
    pub training_date: NaiveDate,
    pub draws: Vec<BatchDraw>,
    pub amount_eur: Decimal,
    pub reversed: bool,
}

/// Where a usage code stands. A code with no hours left is still `Open` (used up); the
/// projections tell it apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsageCodeStatus {
    Open,
    Cancelled,
    Lapsed,
}

/// A usage code: a company's consent to one training, and the vouchers it still holds.
///
/// Only what the rules read: whose it is and until when it may be filed against, for every code
/// ever ordered (a filing against a used, cancelled or lapsed code is refused by its own
/// reason), and the terms a filing must match only while the code has hours left. Why: after
/// ten simulated years the state held ~490 000 codes, all used up, each with its terms, its
/// order id and its dates (62 MB); with the terms boxed and dropped when the last hour goes,
/// they take half of that. The reports' view of every code is the projections'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCodeRecord {
    pub enterprise_number: EnterpriseNumber,
    pub provider_id: Identifier,
    pub filing_until: NaiveDate,
    /// Hours not yet filed: the sum of the terms' earmarks while the code is open, 0 once used
    /// up or closed.
    pub hours_left: u32,
    pub status: UsageCodeStatus,
    /// What a filing must match and draws on; `None` once no hour is left.
    pub terms: Option<Box<UsageCodeTerms>>,
}

/// The terms of a code with hours left (see [`UsageCodeRecord`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCodeTerms {
    pub module_id: Option<Identifier>,
    pub voucher_type: VoucherType,
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
    /// The vouchers still earmarked, per batch, oldest expiry first: a filing draws them in
    /// this order.
    pub earmarks: Vec<BatchDraw>,
}

impl UsageCodeRecord {
    /// The vouchers the code still earmarks; none once no hour is left.
    pub fn earmarks(&self) -> &[BatchDraw] {
        self.terms
            .as_ref()
            .map_or(&[], |terms| terms.earmarks.as_slice())
    }
}

/// An event that does not fit the state it is applied to. Only a log that was not written by
/// this ledger's `decide` can cause it; the engine refuses to start on such a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event_type} does not fit the state: {what}")]
pub struct Inconsistency {
    pub event_type: &'static str,
    pub what: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub budgets: OrdMap<i32, Budget>,
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub providers: OrdMap<Identifier, Provider>,
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub modules: OrdMap<Identifier, Module>,
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub companies: OrdMap<EnterpriseNumber, Company>,
    /// The redemptions the rules can see. Redemptions are as many as the log's events, so the
    /// engine does not keep them all: it loads one from the log ([`LedgerState::load_redemption`])
    /// before deciding a command that names it or applying its reversal, and forgets it
    /// ([`LedgerState::forget_redemption`]) once that is durable. A state folded on its own (the
    /// domain's tests) keeps them all, and the rules read the same either way.
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub redemptions: OrdMap<Uuid, Redemption>,
    /// Hours redeemed and not reversed per (module, worker): a module's length caps them.
    pub worker_module_hours: WorkerModuleHours,
    /// The trial balance: each account's debits minus its credits. Always sums to zero.
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub balances: OrdMap<Account, Decimal>,
    /// Batches issued so far; the next batch's sequence.
    pub batches_issued: u64,
    /// Every batch id ever issued, whatever the company: batch ids are unique in the ledger.
    #[serde(deserialize_with = "crate::dense::ord_set")]
    pub batch_ids: OrdSet<Uuid>,
    /// Every usage code ever ordered, open or closed: a filing against a cancelled or lapsed
    /// code is refused by its own reason, and a code is never given twice.
    #[serde(deserialize_with = "crate::dense::ord_map")]
    pub usage_codes: OrdMap<UsageCode, UsageCodeRecord>,
    /// Every usage code order id, so that an order id is used once.
    #[serde(deserialize_with = "crate::dense::ord_set")]
    pub usage_code_orders: OrdSet<Uuid>,
}

impl Redemption {
    /// The redemption an `HoursRedeemed` event recorded; `reversed` when a reversal of it
    /// followed.
    pub fn of_event(event: &HoursRedeemed, reversed: bool) -> Redemption {
        Redemption {
            provider_id: event.provider_id.clone(),
            module_id: event.module_id.clone(),
            enterprise_number: event.enterprise_number.clone(),
            worker: event.worker,
            trainee_status: event.trainee_status,
            voucher_type: event.voucher_type,
            hours: event.hours,
            training_date: event.training_date,
            draws: event.draws.clone(),
            amount_eur: event.amount_owed_eur,
            reversed,
        }
    }
}

impl LedgerState {
    /// Makes a redemption read back from the log visible to the rules again (see
    /// [`LedgerState::redemptions`]).
    pub fn load_redemption(&mut self, event: &HoursRedeemed, reversed: bool) {
        self.redemptions
            .insert(event.redemption_id, Redemption::of_event(event, reversed));
    }

    /// Drops a redemption that the log holds durably; nothing else of the state changes.
    pub fn forget_redemption(&mut self, redemption_id: Uuid) {
        self.redemptions.remove(&redemption_id);
    }

    /// Sum of every account's balance; zero in every state reachable through `apply`.
    pub fn trial_balance_eur(&self) -> Decimal {
        self.balances.values().copied().sum()
    }

    /// Folds one event into the state. Checks what `decide` guarantees, so that a foreign or
    /// damaged log is reported instead of silently producing a wrong state. After an error the
    /// state may be partly changed and must be thrown away.
    pub fn apply(&mut self, event: &Event) -> Result<(), Inconsistency> {
        let event_type = event.type_name();
        let fail = |what: &'static str| Inconsistency { event_type, what };
        if !crate::event::postings_balance(event.postings()) {
            return Err(fail("postings do not balance"));
        }
        match event {
            Event::BudgetOpened(e) => {
                if self.budgets.contains_key(&e.year) {
                    return Err(fail("budget already open"));
                }
                self.budgets.insert(
                    e.year,
                    Budget {
                        allocated_eur: e.allocated_eur,
                        ..Budget::default()
                    },
                );
            }
            Event::BudgetAdjusted(e) => {
                let budget = self
                    .budgets
                    .get_mut(&e.year)
                    .ok_or(fail("budget not open"))?;
                budget.allocated_eur = e.allocated_eur;
            }
            Event::ProviderApproved(e) => {
                let approval = Approval {
                    from: e.approved_from,
                    until: e.approved_until,
                    withdrawn_from: None,
                };
                let provider = self
                    .providers
                    .entry(e.provider_id.clone())
                    .or_insert_with(|| Provider {
                        name: e.name.clone(),
                        approvals: Vec::new(),
                        redeemed_hours: 0,
                        owed_eur: Decimal::ZERO,
                        paid_eur: Decimal::ZERO,
                    });
                provider.name = e.name.clone();
                provider.approvals.push(approval);
            }
            Event::ProviderWithdrawn(e) => {
                let provider = self
                    .providers
                    .get_mut(&e.provider_id)
                    .ok_or(fail("unknown provider"))?;
                let approval = provider
                    .approvals
                    .iter_mut()
                    .find(|approval| approval.in_force_on(e.withdrawn_from))
                    .ok_or(fail("no approval in force on the withdrawal date"))?;
                approval.withdrawn_from = Some(e.withdrawn_from);
            }
            Event::ModuleApproved(e) => {
                if self.modules.contains_key(&e.module_id) {
                    return Err(fail("module already approved"));
                }
                self.modules.insert(
                    e.module_id.clone(),
                    Module {
                        provider_id: e.provider_id.clone(),
                        title: e.title.clone(),
                        hours_max: e.hours_max,
                        accepted_voucher_types: e.accepted_voucher_types.clone(),
                        themes: e.themes.clone(),
                        approval: Approval {
                            from: e.approved_from,
                            until: e.approved_until,
                            withdrawn_from: None,
                        },
                    },
                );
            }
            Event::ModuleWithdrawn(e) => {
                let module = self
                    .modules
                    .get_mut(&e.module_id)
                    .ok_or(fail("unknown module"))?;
                module.approval.withdrawn_from = Some(e.withdrawn_from);
            }
            Event::CompanyRegistered(e) => {
                let company = self
                    .companies
                    .entry(e.enterprise_number.clone())
                    .or_default();
                company.registrations.insert(
                    e.year,
                    Registration {
                        name: e.name.clone(),
                        legal_form: e.legal_form,
                        region: e.region,
                        size_class: e.size_class,
                        nace_sector: e.nace_sector.clone(),
                        registered_on: e.registered_on,
                    },
                );
            }
            Event::VouchersIssued(e) => {
                let company = self
                    .companies
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown company"))?;
                if self.batch_ids.insert(e.batch_id).is_some() {
                    return Err(fail("batch id already used"));
                }
                let sequence = self.batches_issued;
                self.batches_issued += 1;
                company.batches.insert(
                    e.batch_id,
                    Batch {
                        batch_id: e.batch_id,
                        sequence,
                        voucher_type: e.voucher_type,
                        quantity: e.quantity,
                        remaining: e.quantity,
                        earmarked: 0,
                        payment_date: e.payment_date,
                        valid_until: e.valid_until,
                        budget_year: e.budget_year,
                        face_value_eur: e.face_value_eur,
                        employer_share_eur: e.employer_share_eur,
                        region_share_eur: e.region_share_eur,
                    },
                );
                *company
                    .issued
                    .entry_or_default((e.budget_year, e.voucher_type)) += e.quantity;
                let budget = self
                    .budgets
                    .get_mut(&e.budget_year)
                    .ok_or(fail("budget not open"))?;
                budget.commit(e.region_share_eur * Decimal::from(e.quantity));
            }
            Event::HoursRedeemed(e) => {
                let company = self
                    .companies
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown company"))?;
                let mut code = match &e.usage_code {
                    Some(code) => Some(
                        self.usage_codes
                            .get_mut(code)
                            .filter(|code| code.status == UsageCodeStatus::Open)
                            .ok_or(fail("no open usage code"))?,
                    ),
                    None => None,
                };
                if let Some(code) = code.as_deref() {
                    if code.terms.is_none() {
                        return Err(fail("usage code used up"));
                    }
                }
                for draw in &e.draws {
                    let batch = company
                        .batches
                        .get_mut(&draw.batch_id)
                        .ok_or(fail("unknown batch"))?;
                    match code.as_deref_mut() {
                        Some(code) => {
                            let earmarks = code
                                .terms
                                .as_mut()
                                .map(|terms| &mut terms.earmarks)
                                .ok_or(fail("usage code used up"))?;
                            take_earmark(earmarks, draw)
                                .ok_or(fail("draw not earmarked by its code"))?;
                            code.hours_left = code
                                .hours_left
                                .checked_sub(draw.quantity)
                                .ok_or(fail("usage code overdrawn"))?;
                            batch.earmarked = batch
                                .earmarked
                                .checked_sub(draw.quantity)
                                .ok_or(fail("batch earmark overdrawn"))?;
                        }
                        None if batch.free() < draw.quantity => {
                            return Err(fail("draw from earmarked vouchers without their code"))
                        }
                        None => {}
                    }
                    batch.remaining = batch
                        .remaining
                        .checked_sub(draw.quantity)
                        .ok_or(fail("batch overdrawn"))?;
                    let budget = self
                        .budgets
                        .get_mut(&draw.budget_year)
                        .ok_or(fail("budget not open"))?;
                    budget.spend(draw.region_eur());
                }
                if let Some(code) = code {
                    if code.hours_left == 0 {
                        // Used up: the terms are never read again (see `UsageCodeRecord`).
                        code.terms = None;
                    }
                }
                let provider = self
                    .providers
                    .get_mut(&e.provider_id)
                    .ok_or(fail("unknown provider"))?;
                provider.redeemed_hours += u64::from(e.hours);
                provider.owed_eur += e.amount_owed_eur;
                self.worker_module_hours
                    .add(&e.module_id, e.worker, e.hours);
                self.redemptions
                    .insert(e.redemption_id, Redemption::of_event(e, false));
            }
            Event::RedemptionReversed(e) => {
                let redemption = self
                    .redemptions
                    .get_mut(&e.redemption_id)
                    .ok_or(fail("unknown redemption"))?;
                if redemption.reversed {
                    return Err(fail("redemption already reversed"));
                }
                redemption.reversed = true;
                let (module_id, worker) = (redemption.module_id.clone(), redemption.worker);
                let hours = redemption.hours;
                let company = self
                    .companies
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown company"))?;
                for draw in &e.returned {
                    let batch = company
                        .batches
                        .get_mut(&draw.batch_id)
                        .ok_or(fail("unknown batch"))?;
                    batch.remaining += draw.quantity;
                    if batch.remaining > batch.quantity {
                        return Err(fail("batch over-returned"));
                    }
                    let budget = self
                        .budgets
                        .get_mut(&draw.budget_year)
                        .ok_or(fail("budget not open"))?;
                    budget.unspend(draw.region_eur());
                }
                let worker_hours = self
                    .worker_module_hours
                    .get_mut(&module_id, &worker)
                    .ok_or(fail("unknown worker hours"))?;
                *worker_hours = worker_hours
                    .checked_sub(hours)
                    .ok_or(fail("worker hours negative"))?;
                let provider = self
                    .providers
                    .get_mut(&e.provider_id)
                    .ok_or(fail("unknown provider"))?;
                provider.redeemed_hours = provider.redeemed_hours.saturating_sub(u64::from(hours));
                provider.owed_eur -= e.amount_eur;
            }
            Event::VouchersExpired(e) => {
                let company = self
                    .companies
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown company"))?;
                let batch = company
                    .batches
                    .get_mut(&e.batch_id)
                    .ok_or(fail("unknown batch"))?;
                if batch.free() < e.quantity {
                    return Err(fail("expiry of earmarked vouchers"));
                }
                batch.remaining = batch
                    .remaining
                    .checked_sub(e.quantity)
                    .ok_or(fail("batch overdrawn"))?;
                let budget = self
                    .budgets
                    .get_mut(&e.budget_year)
                    .ok_or(fail("budget not open"))?;
                budget.release(e.region_share_released_eur);
            }
            Event::PayoutRecorded(e) => {
                let provider = self
                    .providers
                    .get_mut(&e.provider_id)
                    .ok_or(fail("unknown provider"))?;
                provider.owed_eur -= e.amount_eur;
                provider.paid_eur += e.amount_eur;
            }
            Event::UsageCodeOrdered(e) => {
                if self.usage_code_orders.insert(e.order_id).is_some() {
                    return Err(fail("usage code order id already used"));
                }
                if self.usage_codes.contains_key(&e.code) {
                    return Err(fail("usage code already given"));
                }
                let company = self
                    .companies
                    .get_mut(&e.enterprise_number)
                    .ok_or(fail("unknown company"))?;
                let mut earmarked_total = 0u32;
                for draw in &e.earmarks {
                    let batch = company
                        .batches
                        .get_mut(&draw.batch_id)
                        .ok_or(fail("unknown batch"))?;
                    if batch.free() < draw.quantity {
                        return Err(fail("earmark beyond the batch's free vouchers"));
                    }
                    batch.earmarked += draw.quantity;
                    earmarked_total += draw.quantity;
                }
                if earmarked_total != e.hours {
                    return Err(fail("earmarks do not add up to the hours"));
                }
                self.usage_codes.insert(
                    e.code.clone(),
                    UsageCodeRecord {
                        enterprise_number: e.enterprise_number.clone(),
                        provider_id: e.provider_id.clone(),
                        filing_until: e.filing_until,
                        hours_left: e.hours,
                        status: UsageCodeStatus::Open,
                        terms: (e.hours > 0).then(|| {
                            Box::new(UsageCodeTerms {
                                module_id: e.module_id.clone(),
                                voucher_type: e.voucher_type,
                                period_from: e.period_from,
                                period_until: e.period_until,
                                earmarks: e.earmarks.clone(),
                            })
                        }),
                    },
                );
            }
            Event::UsageCodeCancelled(e) => {
                self.close_usage_code(
                    &e.code,
                    &e.enterprise_number,
                    &e.returned,
                    UsageCodeStatus::Cancelled,
                )
                .map_err(fail)?;
            }
            Event::UsageCodeLapsed(e) => {
                self.close_usage_code(
                    &e.code,
                    &e.enterprise_number,
                    &e.returned,
                    UsageCodeStatus::Lapsed,
                )
                .map_err(fail)?;
            }
        }
        for posting in event.postings() {
            let amount = posting.signed_amount_eur();
            // Looked up before copying the account: accounts are almost always there already,
            // and copying a provider's account (a `String`) per posting slowed every replay.
            match self.balances.get_mut(&posting.account) {
                Some(balance) => *balance += amount,
                None => *self.balances.entry(posting.account.clone()).or_default() += amount,
            }
        }
        Ok(())
    }
}

/// Takes `draw` out of `earmarks` (same batch, at least as many vouchers); `None` when the
/// earmarks do not hold it.
fn take_earmark(earmarks: &mut Vec<BatchDraw>, draw: &BatchDraw) -> Option<()> {
    let index = earmarks
        .iter()
        .position(|earmark| earmark.batch_id == draw.batch_id)?;
    let earmark = &mut earmarks[index];
    earmark.quantity = earmark.quantity.checked_sub(draw.quantity)?;
    if earmark.quantity == 0 {
        earmarks.remove(index);
    }
    Some(())
}

impl LedgerState {
    /// Closes an open code, giving back exactly the vouchers it still earmarks.
    fn close_usage_code(
        &mut self,
        code: &UsageCode,
        enterprise_number: &EnterpriseNumber,
        returned: &[BatchDraw],
        status: UsageCodeStatus,
    ) -> Result<(), &'static str> {
        let record = self.usage_codes.get_mut(code).ok_or("unknown usage code")?;
        if record.status != UsageCodeStatus::Open || &record.enterprise_number != enterprise_number
        {
            return Err("no open usage code of the company");
        }
        if record.earmarks() != returned {
            return Err("returned vouchers differ from the code's earmarks");
        }
        let company = self
            .companies
            .get_mut(enterprise_number)
            .ok_or("unknown company")?;
        for draw in returned {
            let batch = company
                .batches
                .get_mut(&draw.batch_id)
                .ok_or("unknown batch")?;
            batch.earmarked = batch
                .earmarked
                .checked_sub(draw.quantity)
                .ok_or("batch earmark overdrawn")?;
        }
        record.terms = None;
        record.hours_left = 0;
        record.status = status;
        Ok(())
    }
}

impl crate::Command {
    /// The redemption the command names, which must be loaded into the state before it is
    /// decided (see [`LedgerState::redemptions`]): the new one a `RedeemHours` would create
    /// (its id must be unused), or the one a `ReverseRedemption` takes back.
    pub fn redemption_named(&self) -> Option<Uuid> {
        match self {
            crate::Command::RedeemHours(command) => Some(command.redemption_id),
            crate::Command::ReverseRedemption(command) => Some(command.redemption_id),
            _ => None,
        }
    }
}

impl Event {
    /// The redemption the event records or takes back, by which the log is indexed so that a
    /// redemption can be read back when it is needed again.
    pub fn redemption_named(&self) -> Option<Uuid> {
        match self {
            Event::HoursRedeemed(event) => Some(event.redemption_id),
            Event::RedemptionReversed(event) => Some(event.redemption_id),
            _ => None,
        }
    }
}
