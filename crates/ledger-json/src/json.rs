//! The stored events as JSON, for auditors' tools: proto field names (snake_case), enum
//! values by their proto names (`"VOUCHER_TYPE_GENERAL"`, or the number when this build does
//! not know it), numbers as JSON numbers, amounts and dates as the strings stored. Built by hand
//! from the protobuf messages, so that the same event always gives the same value; serialized
//! with serde_json's sorted maps, the same bytes.

use ledger_proto::event::v1 as pb;
use ledger_proto::event::v1::event::Payload;
use serde_json::{json, Value};

/// An enum value by its proto name, or its number when this build does not know it.
pub fn enum_name<E>(value: i32, name: impl Fn(E) -> &'static str) -> Value
where
    E: TryFrom<i32>,
{
    match E::try_from(value) {
        Ok(known) => Value::from(name(known)),
        Err(_) => Value::from(value),
    }
}

/// A voucher type by its proto name (`"VOUCHER_TYPE_GENERAL"`).
pub fn voucher_type(value: i32) -> Value {
    enum_name(value, |known: pb::VoucherType| known.as_str_name())
}

fn postings(postings: &[pb::Posting]) -> Value {
    Value::from(
        postings
            .iter()
            .map(|posting| {
                json!({
                    "account": posting.account,
                    "side": enum_name(posting.side, |known: pb::Side| known.as_str_name()),
                    "amount_eur": posting.amount_eur,
                })
            })
            .collect::<Vec<_>>(),
    )
}

fn draws(draws: &[pb::BatchDraw]) -> Value {
    Value::from(
        draws
            .iter()
            .map(|draw| {
                json!({
                    "batch_id": draw.batch_id,
                    "quantity": draw.quantity,
                    "budget_year": draw.budget_year,
                    "face_value_eur": draw.face_value_eur,
                    "region_share_eur": draw.region_share_eur,
                    "valid_until": draw.valid_until,
                })
            })
            .collect::<Vec<_>>(),
    )
}

/// An event: its envelope, and its payload under the payload's field name.
/// A stored event: its envelope fields, and one key named after its payload
/// (`"vouchers_issued": {...}`), as in the protobuf JSON mapping of a `oneof`.
pub fn event(recorded: &pb::Event) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("position".to_owned(), recorded.position.into());
    object.insert("stream".to_owned(), recorded.stream.clone().into());
    object.insert("stream_version".to_owned(), recorded.stream_version.into());
    object.insert("event_id".to_owned(), recorded.event_id.clone().into());
    object.insert("request_id".to_owned(), recorded.request_id.clone().into());
    object.insert("principal".to_owned(), recorded.principal.clone().into());
    object.insert(
        "recorded_at".to_owned(),
        recorded.recorded_at.clone().into(),
    );
    object.insert(
        "business_date".to_owned(),
        recorded.business_date.clone().into(),
    );
    if let Some(payload) = &recorded.payload {
        object.insert(crate::payload_field_name(payload), payload_json(payload));
    }
    Value::Object(object)
}

fn payload_json(payload: &Payload) -> Value {
    match payload {
        Payload::BudgetOpened(opened) => {
            json!({ "year": opened.year, "allocated_eur": opened.allocated_eur })
        }
        Payload::BudgetAdjusted(adjusted) => json!({
            "year": adjusted.year,
            "allocated_eur": adjusted.allocated_eur,
            "previous_allocated_eur": adjusted.previous_allocated_eur,
            "reason": adjusted.reason,
        }),
        Payload::ProviderApproved(approved) => json!({
            "provider_id": approved.provider_id,
            "name": approved.name,
            "approved_from": approved.approved_from,
            "approved_until": approved.approved_until,
        }),
        Payload::ProviderWithdrawn(withdrawn) => json!({
            "provider_id": withdrawn.provider_id,
            "withdrawn_from": withdrawn.withdrawn_from,
            "reason": withdrawn.reason,
        }),
        Payload::ModuleApproved(approved) => json!({
            "module_id": approved.module_id,
            "provider_id": approved.provider_id,
            "title": approved.title,
            "hours_max": approved.hours_max,
            "accepted_voucher_types": approved
                .accepted_voucher_types
                .iter()
                .map(|value| voucher_type(*value))
                .collect::<Vec<_>>(),
            "themes": approved
                .themes
                .iter()
                .map(|value| enum_name(*value, |known: pb::Theme| known.as_str_name()))
                .collect::<Vec<_>>(),
            "approved_from": approved.approved_from,
            "approved_until": approved.approved_until,
        }),
        Payload::ModuleWithdrawn(withdrawn) => json!({
            "module_id": withdrawn.module_id,
            "provider_id": withdrawn.provider_id,
            "withdrawn_from": withdrawn.withdrawn_from,
            "reason": withdrawn.reason,
        }),
        Payload::CompanyRegistered(registered) => json!({
            "enterprise_number": registered.enterprise_number,
            "year": registered.year,
            "name": registered.name,
            "legal_form": enum_name(registered.legal_form, |known: pb::LegalForm| known.as_str_name()),
            "region": enum_name(registered.region, |known: pb::Region| known.as_str_name()),
            "fte": registered.fte,
            "turnover_eur": registered.turnover_eur,
            "balance_sheet_total_eur": registered.balance_sheet_total_eur,
            "autonomous": registered.autonomous,
            "secondary_activity_months": registered.secondary_activity_months,
            "nace_sector": registered.nace_sector,
            "size_class": enum_name(registered.size_class, |known: pb::SizeClass| known.as_str_name()),
            "registered_on": registered.registered_on,
        }),
        Payload::VouchersIssued(issued) => json!({
            "enterprise_number": issued.enterprise_number,
            "batch_id": issued.batch_id,
            "voucher_type": voucher_type(issued.voucher_type),
            "quantity": issued.quantity,
            "payment_date": issued.payment_date,
            "payment_reference": issued.payment_reference,
            "paid_amount_eur": issued.paid_amount_eur,
            "face_value_eur": issued.face_value_eur,
            "employer_share_eur": issued.employer_share_eur,
            "region_share_eur": issued.region_share_eur,
            "budget_year": issued.budget_year,
            "valid_until": issued.valid_until,
            "quota": issued.quota,
            "issued_in_year": issued.issued_in_year,
            "postings": postings(&issued.postings),
        }),
        Payload::HoursRedeemed(redeemed) => hours_redeemed_json(redeemed),
        Payload::UsageCodeOrdered(ordered) => json!({
            "code": ordered.code,
            "order_id": ordered.order_id,
            "enterprise_number": ordered.enterprise_number,
            "provider_id": ordered.provider_id,
            "module_id": ordered.module_id,
            "voucher_type": voucher_type(ordered.voucher_type),
            "hours": ordered.hours,
            "period_from": ordered.period_from,
            "period_until": ordered.period_until,
            "filing_until": ordered.filing_until,
            "ordered_on": ordered.ordered_on,
            "earmarks": draws(&ordered.earmarks),
        }),
        Payload::UsageCodeCancelled(cancelled) => json!({
            "code": cancelled.code,
            "enterprise_number": cancelled.enterprise_number,
            "returned": draws(&cancelled.returned),
            "reason": cancelled.reason,
            "cancelled_on": cancelled.cancelled_on,
        }),
        Payload::UsageCodeLapsed(lapsed) => json!({
            "code": lapsed.code,
            "enterprise_number": lapsed.enterprise_number,
            "returned": draws(&lapsed.returned),
            "lapsed_on": lapsed.lapsed_on,
        }),
        Payload::RedemptionReversed(reversed) => json!({
            "redemption_id": reversed.redemption_id,
            "provider_id": reversed.provider_id,
            "enterprise_number": reversed.enterprise_number,
            "returned": draws(&reversed.returned),
            "amount_eur": reversed.amount_eur,
            "reason": reversed.reason,
            "postings": postings(&reversed.postings),
            "reversed_on": reversed.reversed_on,
        }),
        Payload::VouchersExpired(expired) => json!({
            "enterprise_number": expired.enterprise_number,
            "batch_id": expired.batch_id,
            "voucher_type": voucher_type(expired.voucher_type),
            "quantity": expired.quantity,
            "budget_year": expired.budget_year,
            "valid_until": expired.valid_until,
            "region_share_released_eur": expired.region_share_released_eur,
            "employer_share_eur": expired.employer_share_eur,
            "employer_share_refunded": expired.employer_share_refunded,
            "postings": postings(&expired.postings),
            "expired_on": expired.expired_on,
        }),
        Payload::PayoutRecorded(payout) => json!({
            "provider_id": payout.provider_id,
            "amount_eur": payout.amount_eur,
            "payout_date": payout.payout_date,
            "payout_reference": payout.payout_reference,
            "postings": postings(&payout.postings),
        }),
    }
}

/// A redemption as JSON; `usage_code` only when it names one, so that the JSON of the
/// redemptions written before codes existed stays what it was.
fn hours_redeemed_json(redeemed: &pb::HoursRedeemed) -> Value {
    let mut value = json!({
        "redemption_id": redeemed.redemption_id,
        "provider_id": redeemed.provider_id,
        "module_id": redeemed.module_id,
        "enterprise_number": redeemed.enterprise_number,
        "worker_pseudonym": redeemed.worker_pseudonym,
        "trainee_status": enum_name(redeemed.trainee_status, |known: pb::TraineeStatus| known.as_str_name()),
        "voucher_type": voucher_type(redeemed.voucher_type),
        "hours": redeemed.hours,
        "training_date": redeemed.training_date,
        "draws": draws(&redeemed.draws),
        "amount_owed_eur": redeemed.amount_owed_eur,
        "postings": postings(&redeemed.postings),
    });
    if let (false, Value::Object(fields)) = (redeemed.usage_code.is_empty(), &mut value) {
        fields.insert("usage_code".to_owned(), json!(redeemed.usage_code));
    }
    value
}
