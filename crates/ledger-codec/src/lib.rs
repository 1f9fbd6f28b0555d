//! Translation between the domain's [`Event`]s and the stored protobuf messages of
//! `voucherledger.event.v1`, in both directions, and nothing else: no IO, no rules. The stored
//! messages as JSON ([`json`]) and the event types' names are ledger-json's, re-exported here:
//! they need no domain, and voucherctl uses them without it.
//!
//! Encoding is total. Decoding checks everything a protobuf reader cannot (enums in range,
//! decimal strings with two decimals, ISO dates, UUIDs, identifiers) and reports the first
//! field that is wrong, so that a damaged or foreign log is named, never half-read.

pub use ledger_json::{json, payload_field_name, payload_type_name, snake_case, EVENT_TYPE_NAMES};

use chrono::{Datelike, NaiveDate};
use ledger_domain::event::{
    BatchDraw, BudgetAdjusted, BudgetOpened, CompanyRegistered, HoursRedeemed, ModuleApproved,
    ModuleWithdrawn, PayoutRecorded, ProviderApproved, ProviderWithdrawn, RedemptionReversed,
    UsageCodeCancelled, UsageCodeLapsed, UsageCodeOrdered, VouchersExpired, VouchersIssued,
};
use ledger_domain::UsageCode;
use ledger_domain::{
    Account, EnterpriseNumber, Event, Identifier, LegalForm, Posting, Region, Side, SizeClass,
    Theme, TraineeStatus, VoucherType, WorkerPseudonym,
};
use ledger_proto::event::v1 as pb;
use rust_decimal::Decimal;
use uuid::Uuid;

/// A stored event that does not decode into a domain event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored event field {field} is not valid")]
pub struct DecodeError {
    pub field: &'static str,
}

fn bad(field: &'static str) -> DecodeError {
    DecodeError { field }
}

pub fn encode_date(date: NaiveDate) -> String {
    // The writer encodes a date or two per event: writing the digits directly is many times
    // quicker than chrono's format interpreter, and gives the same text for every year chrono
    // writes as four plain digits. Any other year (before 0 or after 9999, which chrono writes
    // with a sign) still goes through chrono, so the text never differs.
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return date.format("%Y-%m-%d").to_string();
    }
    let mut text = String::with_capacity(10);
    push_digits(&mut text, year.unsigned_abs(), 4);
    text.push('-');
    push_digits(&mut text, date.month(), 2);
    text.push('-');
    push_digits(&mut text, date.day(), 2);
    text
}

/// Writes the last `width` decimal digits of `number`, with leading zeros.
fn push_digits(text: &mut String, number: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (number / 10u32.pow(place)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

/// A uuid as its hyphenated lower-case text, as `to_string` writes it, without the formatting
/// machinery.
fn encode_uuid(id: Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// An account as its `Display` writes it (`Account::parse` reads it back), built with one
/// allocation for the accounts a redemption posts to.
fn encode_account(account: &Account) -> String {
    let (prefix, id) = match account {
        Account::ProviderPayable(id) => ("provider_payable/", id),
        Account::ProviderPaid(id) => ("provider_paid/", id),
        other => return other.to_string(),
    };
    let mut text = String::with_capacity(prefix.len() + id.as_str().len());
    text.push_str(prefix);
    text.push_str(id.as_str());
    text
}

pub fn decode_date(field: &'static str, text: &str) -> Result<NaiveDate, DecodeError> {
    // Every date the ledger writes is `YYYY-MM-DD`: read those digits directly, which is many
    // times quicker than chrono's format interpreter and gives the same date (or the same
    // refusal of an impossible one). Anything else still goes through chrono, so what is
    // accepted does not change.
    if let Some(date) = decode_plain_date(text.as_bytes()) {
        return date.ok_or(bad(field));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad(field))
}

/// For text of the exact form `DDDD-DD-DD`: `Some(Some(date))`, or `Some(None)` when those
/// numbers make no date; `None` for text of any other form.
fn decode_plain_date(text: &[u8]) -> Option<Option<NaiveDate>> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *text else {
        return None;
    };
    let mut digits = [y0, y1, y2, y3, m0, m1, d0, d1];
    for digit in &mut digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        *digit -= b'0';
    }
    let [y0, y1, y2, y3, m0, m1, d0, d1] = digits.map(u32::from);
    let year = (y0 * 1000 + y1 * 100 + y2 * 10 + y3) as i32;
    Some(NaiveDate::from_ymd_opt(year, m0 * 10 + m1, d0 * 10 + d1))
}

fn encode_optional_date(date: Option<NaiveDate>) -> String {
    date.map(encode_date).unwrap_or_default()
}

fn decode_optional_date(field: &'static str, text: &str) -> Result<Option<NaiveDate>, DecodeError> {
    if text.is_empty() {
        return Ok(None);
    }
    decode_date(field, text).map(Some)
}

/// An amount as the log writes it: a decimal string with exactly two decimals.
pub fn encode_eur(amount: Decimal) -> String {
    // The rules' amounts have two decimals already: rounding them again is a no-op that costs
    // a `Decimal` rescale per amount (several per event, on the writer's thread).
    let cents = if amount.scale() == CENTS_SCALE {
        amount
    } else {
        ledger_domain::money::to_cents(amount)
    };
    // A positive amount in cents is its whole euros, a point and two digits: written directly,
    // as `Decimal`'s `Display` writes it, without its formatting machinery (the writer encodes
    // several amounts per event). Zero and negative amounts (a sign, a negative zero) keep
    // `Display`, so the text never differs. Amounts up to 2^64 cents (all real ones) take
    // 64-bit divisions, not 128-bit ones.
    if let Ok(mantissa) = u64::try_from(cents.mantissa()) {
        if mantissa > 0 && cents.scale() == CENTS_SCALE {
            return cents_text(mantissa);
        }
    }
    match u128::try_from(cents.mantissa()) {
        Ok(mantissa) if mantissa > 0 && cents.scale() == 2 => {
            let mut text = (mantissa / 100).to_string();
            text.push('.');
            push_digits(&mut text, (mantissa % 100) as u32, 2);
            text
        }
        _ => cents.to_string(),
    }
}

/// Decimals of an amount in cents.
const CENTS_SCALE: u32 = 2;

/// `cents` (more than zero) as whole euros, a point and two digits.
fn cents_text(cents: u64) -> String {
    // u64::MAX / 100 has 18 digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut euros = cents / 100;
    loop {
        start -= 1;
        digits[start] = b'0' + (euros % 10) as u8;
        euros /= 10;
        if euros == 0 {
            break;
        }
    }
    let mut text = String::with_capacity(digits.len() - start + 3);
    text.extend(digits[start..].iter().map(|digit| char::from(*digit)));
    text.push('.');
    push_digits(&mut text, (cents % 100) as u32, 2);
    text
}

fn decode_eur(field: &'static str, text: &str) -> Result<Decimal, DecodeError> {
    ledger_domain::money::parse_eur(text).ok_or(bad(field))
}

fn decode_decimal(field: &'static str, text: &str) -> Result<Decimal, DecodeError> {
    let value: Decimal = text.parse().map_err(|_| bad(field))?;
    if value.is_sign_negative() {
        return Err(bad(field));
    }
    Ok(value)
}

fn decode_uuid(field: &'static str, text: &str) -> Result<Uuid, DecodeError> {
    Uuid::parse_str(text).map_err(|_| bad(field))
}

fn decode_id(field: &'static str, text: &str) -> Result<Identifier, DecodeError> {
    Identifier::parse(text).ok_or(bad(field))
}

fn decode_enterprise(text: &str) -> Result<EnterpriseNumber, DecodeError> {
    EnterpriseNumber::parse(text).ok_or(bad("enterprise_number"))
}

pub fn voucher_type_to_proto(value: VoucherType) -> pb::VoucherType {
    match value {
        VoucherType::General => pb::VoucherType::General,
        VoucherType::Languages => pb::VoucherType::Languages,
        VoucherType::EcoClimate => pb::VoucherType::EcoClimate,
    }
}

pub fn voucher_type_from_proto(value: i32) -> Option<VoucherType> {
    match pb::VoucherType::try_from(value).ok()? {
        pb::VoucherType::General => Some(VoucherType::General),
        pb::VoucherType::Languages => Some(VoucherType::Languages),
        pb::VoucherType::EcoClimate => Some(VoucherType::EcoClimate),
        pb::VoucherType::Unspecified => None,
    }
}

pub fn size_class_to_proto(value: SizeClass) -> pb::SizeClass {
    match value {
        SizeClass::SecondarySelfEmployed => pb::SizeClass::SecondarySelfEmployed,
        SizeClass::Micro => pb::SizeClass::Micro,
        SizeClass::Fte2To50 => pb::SizeClass::Fte2To50,
        SizeClass::Fte51To100 => pb::SizeClass::Fte51To100,
        SizeClass::Fte101To200 => pb::SizeClass::Fte101To200,
        SizeClass::Fte201To250 => pb::SizeClass::Fte201To250,
    }
}

pub fn size_class_from_proto(value: i32) -> Option<SizeClass> {
    match pb::SizeClass::try_from(value).ok()? {
        pb::SizeClass::SecondarySelfEmployed => Some(SizeClass::SecondarySelfEmployed),
        pb::SizeClass::Micro => Some(SizeClass::Micro),
        pb::SizeClass::Fte2To50 => Some(SizeClass::Fte2To50),
        pb::SizeClass::Fte51To100 => Some(SizeClass::Fte51To100),
        pb::SizeClass::Fte101To200 => Some(SizeClass::Fte101To200),
        pb::SizeClass::Fte201To250 => Some(SizeClass::Fte201To250),
        pb::SizeClass::Unspecified => None,
    }
}

pub fn legal_form_to_proto(value: LegalForm) -> pb::LegalForm {
    match value {
        LegalForm::CommercialCompany => pb::LegalForm::CommercialCompany,
        LegalForm::SelfEmployedMain => pb::LegalForm::SelfEmployedMain,
        LegalForm::SelfEmployedSecondary => pb::LegalForm::SelfEmployedSecondary,
        LegalForm::NonProfit => pb::LegalForm::NonProfit,
        LegalForm::PublicBody => pb::LegalForm::PublicBody,
    }
}

pub fn legal_form_from_proto(value: i32) -> Option<LegalForm> {
    match pb::LegalForm::try_from(value).ok()? {
        pb::LegalForm::CommercialCompany => Some(LegalForm::CommercialCompany),
        pb::LegalForm::SelfEmployedMain => Some(LegalForm::SelfEmployedMain),
        pb::LegalForm::SelfEmployedSecondary => Some(LegalForm::SelfEmployedSecondary),
        pb::LegalForm::NonProfit => Some(LegalForm::NonProfit),
        pb::LegalForm::PublicBody => Some(LegalForm::PublicBody),
        pb::LegalForm::Unspecified => None,
    }
}

pub fn region_to_proto(value: Region) -> pb::Region {
    match value {
        Region::WalloniaFrenchSpeaking => pb::Region::WalloniaFrenchSpeaking,
        Region::WalloniaGermanSpeaking => pb::Region::WalloniaGermanSpeaking,
        Region::Brussels => pb::Region::Brussels,
        Region::Flanders => pb::Region::Flanders,
    }
}

pub fn region_from_proto(value: i32) -> Option<Region> {
    match pb::Region::try_from(value).ok()? {
        pb::Region::WalloniaFrenchSpeaking => Some(Region::WalloniaFrenchSpeaking),
        pb::Region::WalloniaGermanSpeaking => Some(Region::WalloniaGermanSpeaking),
        pb::Region::Brussels => Some(Region::Brussels),
        pb::Region::Flanders => Some(Region::Flanders),
        pb::Region::Unspecified => None,
    }
}

pub fn trainee_status_to_proto(value: TraineeStatus) -> pb::TraineeStatus {
    match value {
        TraineeStatus::Employee => pb::TraineeStatus::Employee,
        TraineeStatus::TemporaryWorker => pb::TraineeStatus::TemporaryWorker,
        TraineeStatus::SelfEmployedManagerOrPartner => {
            pb::TraineeStatus::SelfEmployedManagerOrPartner
        }
        TraineeStatus::HelpingSpouse => pb::TraineeStatus::HelpingSpouse,
        TraineeStatus::SecondarySelfEmployed => pb::TraineeStatus::SecondarySelfEmployed,
        TraineeStatus::PfiTrainee => pb::TraineeStatus::PfiTrainee,
        TraineeStatus::Apprentice => pb::TraineeStatus::Apprentice,
        TraineeStatus::Student => pb::TraineeStatus::Student,
        TraineeStatus::Intern => pb::TraineeStatus::Intern,
    }
}

pub fn trainee_status_from_proto(value: i32) -> Option<TraineeStatus> {
    match pb::TraineeStatus::try_from(value).ok()? {
        pb::TraineeStatus::Employee => Some(TraineeStatus::Employee),
        pb::TraineeStatus::TemporaryWorker => Some(TraineeStatus::TemporaryWorker),
        pb::TraineeStatus::SelfEmployedManagerOrPartner => {
            Some(TraineeStatus::SelfEmployedManagerOrPartner)
        }
        pb::TraineeStatus::HelpingSpouse => Some(TraineeStatus::HelpingSpouse),
        pb::TraineeStatus::SecondarySelfEmployed => Some(TraineeStatus::SecondarySelfEmployed),
        pb::TraineeStatus::PfiTrainee => Some(TraineeStatus::PfiTrainee),
        pb::TraineeStatus::Apprentice => Some(TraineeStatus::Apprentice),
        pb::TraineeStatus::Student => Some(TraineeStatus::Student),
        pb::TraineeStatus::Intern => Some(TraineeStatus::Intern),
        pb::TraineeStatus::Unspecified => None,
    }
}

pub fn theme_to_proto(value: Theme) -> pb::Theme {
    match value {
        Theme::Ai => pb::Theme::Ai,
        Theme::Digital => pb::Theme::Digital,
        Theme::Green => pb::Theme::Green,
        Theme::Languages => pb::Theme::Languages,
        Theme::Management => pb::Theme::Management,
        Theme::Technical => pb::Theme::Technical,
        Theme::Safety => pb::Theme::Safety,
        Theme::Other => pb::Theme::Other,
        Theme::Behavioural => pb::Theme::Behavioural,
        Theme::WellBeing => pb::Theme::WellBeing,
        Theme::PersonalDevelopment => pb::Theme::PersonalDevelopment,
    }
}

pub fn theme_from_proto(value: i32) -> Option<Theme> {
    match pb::Theme::try_from(value).ok()? {
        pb::Theme::Ai => Some(Theme::Ai),
        pb::Theme::Digital => Some(Theme::Digital),
        pb::Theme::Green => Some(Theme::Green),
        pb::Theme::Languages => Some(Theme::Languages),
        pb::Theme::Management => Some(Theme::Management),
        pb::Theme::Technical => Some(Theme::Technical),
        pb::Theme::Safety => Some(Theme::Safety),
        pb::Theme::Other => Some(Theme::Other),
        pb::Theme::Behavioural => Some(Theme::Behavioural),
        pb::Theme::WellBeing => Some(Theme::WellBeing),
        pb::Theme::PersonalDevelopment => Some(Theme::PersonalDevelopment),
        pb::Theme::Unspecified => None,
    }
}

fn encode_postings(postings: &[Posting]) -> Vec<pb::Posting> {
    postings
        .iter()
        .map(|posting| pb::Posting {
            account: encode_account(&posting.account),
            side: match posting.side {
                Side::Debit => pb::Side::Debit,
                Side::Credit => pb::Side::Credit,
            } as i32,
            amount_eur: encode_eur(posting.amount_eur),
        })
        .collect()
}

fn decode_postings(postings: &[pb::Posting]) -> Result<Vec<Posting>, DecodeError> {
    postings
        .iter()
        .map(|posting| {
            let account = Account::parse(&posting.account).ok_or(bad("postings.account"))?;
            let side = match pb::Side::try_from(posting.side) {
                Ok(pb::Side::Debit) => Side::Debit,
                Ok(pb::Side::Credit) => Side::Credit,
                _ => return Err(bad("postings.side")),
            };
            let amount_eur = decode_eur("postings.amount_eur", &posting.amount_eur)?;
            Ok(Posting {
                account,
                side,
                amount_eur,
            })
        })
        .collect()
}

fn encode_draws(draws: &[BatchDraw]) -> Vec<pb::BatchDraw> {
    draws
        .iter()
        .map(|draw| pb::BatchDraw {
            batch_id: encode_uuid(draw.batch_id),
            quantity: draw.quantity,
            budget_year: draw.budget_year,
            face_value_eur: encode_eur(draw.face_value_eur),
            region_share_eur: encode_eur(draw.region_share_eur),
            valid_until: encode_date(draw.valid_until),
        })
        .collect()
}

fn decode_draws(draws: &[pb::BatchDraw]) -> Result<Vec<BatchDraw>, DecodeError> {
    draws
        .iter()
        .map(|draw| {
            Ok(BatchDraw {
                batch_id: decode_uuid("draws.batch_id", &draw.batch_id)?,
                quantity: draw.quantity,
                budget_year: draw.budget_year,
                face_value_eur: decode_eur("draws.face_value_eur", &draw.face_value_eur)?,
                region_share_eur: decode_eur("draws.region_share_eur", &draw.region_share_eur)?,
                valid_until: decode_date("draws.valid_until", &draw.valid_until)?,
            })
        })
        .collect()
}

/// The name of a domain event: its stored payload's message name, as in [`EVENT_TYPE_NAMES`].
/// Made from ledger-json's one list of event types, so the compiler checks that list against
/// the domain's `Event` here as ledger-json checks it against the protobuf `Payload`.
macro_rules! domain_event_type_name {
    ($($name:ident),+ $(,)?) => {
        /// The payload message name of a domain event: the same as its stored payload's.
        pub fn event_type_name(event: &Event) -> &'static str {
            match event {
                $(Event::$name(_) => stringify!($name)),+
            }
        }
    };
}

ledger_json::with_event_types!(domain_event_type_name);

fn decode_code(field: &'static str, text: &str) -> Result<UsageCode, DecodeError> {
    UsageCode::parse(text)
        .filter(|code| code.as_str() == text)
        .ok_or(bad(field))
}

/// The protobuf payload of a domain event.
pub fn encode_event(event: &Event) -> pb::event::Payload {
    use pb::event::Payload;
    match event {
        Event::BudgetOpened(e) => Payload::BudgetOpened(pb::BudgetOpened {
            year: e.year,
            allocated_eur: encode_eur(e.allocated_eur),
        }),
        Event::BudgetAdjusted(e) => Payload::BudgetAdjusted(pb::BudgetAdjusted {
            year: e.year,
            allocated_eur: encode_eur(e.allocated_eur),
            previous_allocated_eur: encode_eur(e.previous_allocated_eur),
            reason: e.reason.clone(),
        }),
        Event::ProviderApproved(e) => Payload::ProviderApproved(pb::ProviderApproved {
            provider_id: e.provider_id.to_string(),
            name: e.name.clone(),
            approved_from: encode_date(e.approved_from),
            approved_until: encode_optional_date(e.approved_until),
        }),
        Event::ProviderWithdrawn(e) => Payload::ProviderWithdrawn(pb::ProviderWithdrawn {
            provider_id: e.provider_id.to_string(),
            withdrawn_from: encode_date(e.withdrawn_from),
            reason: e.reason.clone(),
        }),
        Event::ModuleApproved(e) => Payload::ModuleApproved(pb::ModuleApproved {
            module_id: e.module_id.to_string(),
            provider_id: e.provider_id.to_string(),
            title: e.title.clone(),
            hours_max: e.hours_max,
            accepted_voucher_types: e
                .accepted_voucher_types
                .iter()
                .map(|value| voucher_type_to_proto(*value) as i32)
                .collect(),
            themes: e
                .themes
                .iter()
                .map(|value| theme_to_proto(*value) as i32)
                .collect(),
            approved_from: encode_date(e.approved_from),
            approved_until: encode_optional_date(e.approved_until),
        }),
        Event::ModuleWithdrawn(e) => Payload::ModuleWithdrawn(pb::ModuleWithdrawn {
            module_id: e.module_id.to_string(),
            provider_id: e.provider_id.to_string(),
            withdrawn_from: encode_date(e.withdrawn_from),
            reason: e.reason.clone(),
        }),
        Event::CompanyRegistered(e) => Payload::CompanyRegistered(pb::CompanyRegistered {
            enterprise_number: e.enterprise_number.to_string(),
            year: e.year,
            name: e.name.clone(),
            legal_form: legal_form_to_proto(e.legal_form) as i32,
            region: region_to_proto(e.region) as i32,
            fte: e.fte.to_string(),
            turnover_eur: encode_eur(e.turnover_eur),
            balance_sheet_total_eur: encode_eur(e.balance_sheet_total_eur),
            autonomous: e.autonomous,
            secondary_activity_months: e.secondary_activity_months,
            nace_sector: e.nace_sector.clone(),
            size_class: size_class_to_proto(e.size_class) as i32,
            registered_on: encode_date(e.registered_on),
        }),
        Event::VouchersIssued(e) => Payload::VouchersIssued(pb::VouchersIssued {
            enterprise_number: e.enterprise_number.to_string(),
            batch_id: e.batch_id.to_string(),
            voucher_type: voucher_type_to_proto(e.voucher_type) as i32,
            quantity: e.quantity,
            payment_date: encode_date(e.payment_date),
            payment_reference: e.payment_reference.clone(),
            paid_amount_eur: encode_eur(e.paid_amount_eur),
            face_value_eur: encode_eur(e.face_value_eur),
            employer_share_eur: encode_eur(e.employer_share_eur),
            region_share_eur: encode_eur(e.region_share_eur),
            budget_year: e.budget_year,
            valid_until: encode_date(e.valid_until),
            quota: e.quota,
            issued_in_year: e.issued_in_year,
            postings: encode_postings(&e.postings),
        }),
        Event::HoursRedeemed(e) => Payload::HoursRedeemed(pb::HoursRedeemed {
            redemption_id: encode_uuid(e.redemption_id),
            provider_id: e.provider_id.as_str().to_owned(),
            module_id: e.module_id.as_str().to_owned(),
            enterprise_number: e.enterprise_number.as_str().to_owned(),
            worker_pseudonym: e.worker.to_hex(),
            trainee_status: trainee_status_to_proto(e.trainee_status) as i32,
            voucher_type: voucher_type_to_proto(e.voucher_type) as i32,
            hours: e.hours,
            training_date: encode_date(e.training_date),
            draws: encode_draws(&e.draws),
            amount_owed_eur: encode_eur(e.amount_owed_eur),
            postings: encode_postings(&e.postings),
            usage_code: e
                .usage_code
                .as_ref()
                .map(|code| code.as_str().to_owned())
                .unwrap_or_default(),
        }),
        Event::RedemptionReversed(e) => Payload::RedemptionReversed(pb::RedemptionReversed {
            redemption_id: e.redemption_id.to_string(),
            provider_id: e.provider_id.to_string(),
            enterprise_number: e.enterprise_number.to_string(),
            returned: encode_draws(&e.returned),
            amount_eur: encode_eur(e.amount_eur),
            reason: e.reason.clone(),
            postings: encode_postings(&e.postings),
            reversed_on: encode_date(e.reversed_on),
        }),
        Event::VouchersExpired(e) => Payload::VouchersExpired(pb::VouchersExpired {
            enterprise_number: e.enterprise_number.to_string(),
            batch_id: e.batch_id.to_string(),
            voucher_type: voucher_type_to_proto(e.voucher_type) as i32,
            quantity: e.quantity,
            budget_year: e.budget_year,
            valid_until: encode_date(e.valid_until),
            region_share_released_eur: encode_eur(e.region_share_released_eur),
            employer_share_eur: encode_eur(e.employer_share_eur),
            employer_share_refunded: e.employer_share_refunded,
            postings: encode_postings(&e.postings),
            expired_on: encode_date(e.expired_on),
        }),
        Event::PayoutRecorded(e) => Payload::PayoutRecorded(pb::PayoutRecorded {
            provider_id: e.provider_id.to_string(),
            amount_eur: encode_eur(e.amount_eur),
            payout_date: encode_date(e.payout_date),
            payout_reference: e.payout_reference.clone(),
            postings: encode_postings(&e.postings),
        }),
        Event::UsageCodeOrdered(e) => Payload::UsageCodeOrdered(pb::UsageCodeOrdered {
            code: e.code.as_str().to_owned(),
            order_id: e.order_id.to_string(),
            enterprise_number: e.enterprise_number.to_string(),
            provider_id: e.provider_id.to_string(),
            module_id: e
                .module_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            voucher_type: voucher_type_to_proto(e.voucher_type) as i32,
            hours: e.hours,
            period_from: encode_date(e.period_from),
            period_until: encode_date(e.period_until),
            filing_until: encode_date(e.filing_until),
            ordered_on: encode_date(e.ordered_on),
            earmarks: encode_draws(&e.earmarks),
        }),
        Event::UsageCodeCancelled(e) => Payload::UsageCodeCancelled(pb::UsageCodeCancelled {
            code: e.code.as_str().to_owned(),
            enterprise_number: e.enterprise_number.to_string(),
            returned: encode_draws(&e.returned),
            reason: e.reason.clone(),
            cancelled_on: encode_date(e.cancelled_on),
        }),
        Event::UsageCodeLapsed(e) => Payload::UsageCodeLapsed(pb::UsageCodeLapsed {
            code: e.code.as_str().to_owned(),
            enterprise_number: e.enterprise_number.to_string(),
            returned: encode_draws(&e.returned),
            lapsed_on: encode_date(e.lapsed_on),
        }),
    }
}

/// The domain event of a stored payload.
pub fn decode_event(payload: &pb::event::Payload) -> Result<Event, DecodeError> {
    use pb::event::Payload;
    let event = match payload {
        Payload::BudgetOpened(e) => Event::BudgetOpened(BudgetOpened {
            year: e.year,
            allocated_eur: decode_eur("allocated_eur", &e.allocated_eur)?,
        }),
        Payload::BudgetAdjusted(e) => Event::BudgetAdjusted(BudgetAdjusted {
            year: e.year,
            allocated_eur: decode_eur("allocated_eur", &e.allocated_eur)?,
            previous_allocated_eur: decode_eur(
                "previous_allocated_eur",
                &e.previous_allocated_eur,
            )?,
            reason: e.reason.clone(),
        }),
        Payload::ProviderApproved(e) => Event::ProviderApproved(ProviderApproved {
            provider_id: decode_id("provider_id", &e.provider_id)?,
            name: e.name.clone(),
            approved_from: decode_date("approved_from", &e.approved_from)?,
            approved_until: decode_optional_date("approved_until", &e.approved_until)?,
        }),
        Payload::ProviderWithdrawn(e) => Event::ProviderWithdrawn(ProviderWithdrawn {
            provider_id: decode_id("provider_id", &e.provider_id)?,
            withdrawn_from: decode_date("withdrawn_from", &e.withdrawn_from)?,
            reason: e.reason.clone(),
        }),
        Payload::ModuleApproved(e) => Event::ModuleApproved(ModuleApproved {
            module_id: decode_id("module_id", &e.module_id)?,
            provider_id: decode_id("provider_id", &e.provider_id)?,
            title: e.title.clone(),
            hours_max: e.hours_max,
            accepted_voucher_types: e
                .accepted_voucher_types
                .iter()
                .map(|value| voucher_type_from_proto(*value).ok_or(bad("accepted_voucher_types")))
                .collect::<Result<_, _>>()?,
            themes: e
                .themes
                .iter()
                .map(|value| theme_from_proto(*value).ok_or(bad("themes")))
                .collect::<Result<_, _>>()?,
            approved_from: decode_date("approved_from", &e.approved_from)?,
            approved_until: decode_optional_date("approved_until", &e.approved_until)?,
        }),
        Payload::ModuleWithdrawn(e) => Event::ModuleWithdrawn(ModuleWithdrawn {
            module_id: decode_id("module_id", &e.module_id)?,
            provider_id: decode_id("provider_id", &e.provider_id)?,
            withdrawn_from: decode_date("withdrawn_from", &e.withdrawn_from)?,
            reason: e.reason.clone(),
        }),
        Payload::CompanyRegistered(e) => Event::CompanyRegistered(CompanyRegistered {
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            year: e.year,
            name: e.name.clone(),
            legal_form: legal_form_from_proto(e.legal_form).ok_or(bad("legal_form"))?,
            region: region_from_proto(e.region).ok_or(bad("region"))?,
            fte: decode_decimal("fte", &e.fte)?,
            turnover_eur: decode_eur("turnover_eur", &e.turnover_eur)?,
            balance_sheet_total_eur: decode_eur(
                "balance_sheet_total_eur",
                &e.balance_sheet_total_eur,
            )?,
            autonomous: e.autonomous,
            secondary_activity_months: e.secondary_activity_months,
            nace_sector: e.nace_sector.clone(),
            size_class: size_class_from_proto(e.size_class).ok_or(bad("size_class"))?,
            registered_on: decode_date("registered_on", &e.registered_on)?,
        }),
        Payload::VouchersIssued(e) => Event::VouchersIssued(VouchersIssued {
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            batch_id: decode_uuid("batch_id", &e.batch_id)?,
            voucher_type: voucher_type_from_proto(e.voucher_type).ok_or(bad("voucher_type"))?,
            quantity: e.quantity,
            payment_date: decode_date("payment_date", &e.payment_date)?,
            payment_reference: e.payment_reference.clone(),
            paid_amount_eur: decode_eur("paid_amount_eur", &e.paid_amount_eur)?,
            face_value_eur: decode_eur("face_value_eur", &e.face_value_eur)?,
            employer_share_eur: decode_eur("employer_share_eur", &e.employer_share_eur)?,
            region_share_eur: decode_eur("region_share_eur", &e.region_share_eur)?,
            budget_year: e.budget_year,
            valid_until: decode_date("valid_until", &e.valid_until)?,
            quota: e.quota,
            issued_in_year: e.issued_in_year,
            postings: decode_postings(&e.postings)?,
        }),
        Payload::HoursRedeemed(e) => Event::HoursRedeemed(HoursRedeemed {
            redemption_id: decode_uuid("redemption_id", &e.redemption_id)?,
            provider_id: decode_id("provider_id", &e.provider_id)?,
            module_id: decode_id("module_id", &e.module_id)?,
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            worker: WorkerPseudonym::parse_hex(&e.worker_pseudonym)
                .ok_or(bad("worker_pseudonym"))?,
            trainee_status: trainee_status_from_proto(e.trainee_status)
                .ok_or(bad("trainee_status"))?,
            voucher_type: voucher_type_from_proto(e.voucher_type).ok_or(bad("voucher_type"))?,
            hours: e.hours,
            training_date: decode_date("training_date", &e.training_date)?,
            draws: decode_draws(&e.draws)?,
            amount_owed_eur: decode_eur("amount_owed_eur", &e.amount_owed_eur)?,
            postings: decode_postings(&e.postings)?,
            usage_code: if e.usage_code.is_empty() {
                None
            } else {
                Some(decode_code("usage_code", &e.usage_code)?)
            },
        }),
        Payload::RedemptionReversed(e) => Event::RedemptionReversed(RedemptionReversed {
            redemption_id: decode_uuid("redemption_id", &e.redemption_id)?,
            provider_id: decode_id("provider_id", &e.provider_id)?,
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            returned: decode_draws(&e.returned)?,
            amount_eur: decode_eur("amount_eur", &e.amount_eur)?,
            reason: e.reason.clone(),
            reversed_on: decode_date("reversed_on", &e.reversed_on)?,
            postings: decode_postings(&e.postings)?,
        }),
        Payload::VouchersExpired(e) => Event::VouchersExpired(VouchersExpired {
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            batch_id: decode_uuid("batch_id", &e.batch_id)?,
            voucher_type: voucher_type_from_proto(e.voucher_type).ok_or(bad("voucher_type"))?,
            quantity: e.quantity,
            budget_year: e.budget_year,
            valid_until: decode_date("valid_until", &e.valid_until)?,
            region_share_released_eur: decode_eur(
                "region_share_released_eur",
                &e.region_share_released_eur,
            )?,
            employer_share_eur: decode_eur("employer_share_eur", &e.employer_share_eur)?,
            employer_share_refunded: e.employer_share_refunded,
            expired_on: decode_date("expired_on", &e.expired_on)?,
            postings: decode_postings(&e.postings)?,
        }),
        Payload::PayoutRecorded(e) => Event::PayoutRecorded(PayoutRecorded {
            provider_id: decode_id("provider_id", &e.provider_id)?,
            amount_eur: decode_eur("amount_eur", &e.amount_eur)?,
            payout_date: decode_date("payout_date", &e.payout_date)?,
            payout_reference: e.payout_reference.clone(),
            postings: decode_postings(&e.postings)?,
        }),
        Payload::UsageCodeOrdered(e) => Event::UsageCodeOrdered(UsageCodeOrdered {
            code: decode_code("code", &e.code)?,
            order_id: decode_uuid("order_id", &e.order_id)?,
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            provider_id: decode_id("provider_id", &e.provider_id)?,
            module_id: if e.module_id.is_empty() {
                None
            } else {
                Some(decode_id("module_id", &e.module_id)?)
            },
            voucher_type: voucher_type_from_proto(e.voucher_type).ok_or(bad("voucher_type"))?,
            hours: e.hours,
            period_from: decode_date("period_from", &e.period_from)?,
            period_until: decode_date("period_until", &e.period_until)?,
            filing_until: decode_date("filing_until", &e.filing_until)?,
            ordered_on: decode_date("ordered_on", &e.ordered_on)?,
            earmarks: decode_draws(&e.earmarks)?,
        }),
        Payload::UsageCodeCancelled(e) => Event::UsageCodeCancelled(UsageCodeCancelled {
            code: decode_code("code", &e.code)?,
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            returned: decode_draws(&e.returned)?,
            reason: e.reason.clone(),
            cancelled_on: decode_date("cancelled_on", &e.cancelled_on)?,
        }),
        Payload::UsageCodeLapsed(e) => Event::UsageCodeLapsed(UsageCodeLapsed {
            code: decode_code("code", &e.code)?,
            enterprise_number: decode_enterprise(&e.enterprise_number)?,
            returned: decode_draws(&e.returned)?,
            lapsed_on: decode_date("lapsed_on", &e.lapsed_on)?,
        }),
    };
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `decode_date` accepted before its fast path: chrono's reading of `%Y-%m-%d`.
    fn chrono_date(text: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    }

    #[test]
    fn plain_dates_decode_as_chrono_reads_them() {
        for text in [
            "2024-02-29",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-00",
            "2024-12-31",
            "0000-01-01",
            "9999-12-31",
            "2024-1-01",
            "2024-01-1",
            "+2024-01-01",
            "2024/01/01",
            "2024-01-01 ",
            "",
        ] {
            assert_eq!(
                decode_date("date", text).ok(),
                chrono_date(text),
                "{text:?}"
            );
        }
    }

    /// What `encode_date` wrote before its fast path: chrono's `%Y-%m-%d`.
    fn chrono_text(date: NaiveDate) -> String {
        date.format("%Y-%m-%d").to_string()
    }

    #[test]
    fn dates_encode_as_chrono_writes_them_every_day_of_four_centuries_and_the_edges() {
        let mut date = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
        let last = NaiveDate::from_ymd_opt(2300, 12, 31).expect("a date");
        while date <= last {
            assert_eq!(encode_date(date), chrono_text(date));
            date = date.succ_opt().expect("a next day");
        }
        for (year, month, day) in [
            (0, 1, 1),
            (-1, 12, 31),
            (-10_000, 6, 15),
            (9, 9, 9),
            (999, 12, 31),
            (9999, 12, 31),
            (10_000, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(year, month, day).expect("a date");
            assert_eq!(encode_date(date), chrono_text(date), "{year}-{month}-{day}");
        }
        for date in [NaiveDate::MIN, NaiveDate::MAX] {
            assert_eq!(encode_date(date), chrono_text(date));
        }
    }

    #[test]
    fn amounts_encode_as_decimal_displays_them_in_cents() {
        let display = |amount: Decimal| ledger_domain::money::to_cents(amount).to_string();
        for text in [
            "0",
            "-0",
            "0.00",
            "-0.00",
            "0.004",
            "0.005",
            "-0.005",
            "0.01",
            "15",
            "15.5",
            "15.50",
            "-15.50",
            "99.999",
            "1234567.89",
            "-1234567.891",
            "0.10",
            "0.01",
            "0.99",
            "1.00",
            "184467440737095516.15",
            "184467440737095516.16",
            "10000000000000000000.00",
        ] {
            let amount: Decimal = text.parse().expect("an amount");
            assert_eq!(encode_eur(amount), display(amount), "{text}");
        }
        for amount in [
            Decimal::MAX,
            Decimal::MIN,
            Decimal::ONE,
            Decimal::NEGATIVE_ONE,
        ] {
            assert_eq!(encode_eur(amount), display(amount));
        }
    }

    #[test]
    fn accounts_and_uuids_encode_as_their_display_writes_them() {
        let provider = Identifier::parse("AG-0012").expect("an identifier");
        for account in [
            Account::CompanyContributions,
            Account::RegionBudget(2024),
            Account::VouchersOutstanding,
            Account::ProviderPayable(provider.clone()),
            Account::ProviderPaid(provider),
            Account::CompanyExpired,
            Account::CompanyRefunded,
        ] {
            assert_eq!(encode_account(&account), account.to_string());
        }
        for id in [Uuid::nil(), Uuid::max(), Uuid::new_v4()] {
            assert_eq!(encode_uuid(id), id.to_string());
        }
    }

    proptest! {
        #[test]
        fn any_date_encodes_as_chrono_writes_it(
            days in NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce()
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).expect("a date in range");
            prop_assert_eq!(encode_date(date), chrono_text(date));
        }

        #[test]
        fn any_amount_encodes_as_decimal_displays_it(mantissa in any::<i64>(), scale in 0u32..8) {
            let amount = Decimal::new(mantissa, scale);
            prop_assert_eq!(
                encode_eur(amount),
                ledger_domain::money::to_cents(amount).to_string()
            );
        }
    }

    proptest! {
        // A failing case's seed goes to the crate's proptest-regressions/, committed on
        // purpose so that every later run tries it first.
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "proptest-regressions/date-decoding.txt",
                ),
            )),
            ..ProptestConfig::default()
        })]
        #[test]
        fn any_ten_characters_decode_as_chrono_reads_them(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9+ -]{8,11}"
        ) {
            prop_assert_eq!(decode_date("date", &text).ok(), chrono_date(&text));
        }
    }
}
