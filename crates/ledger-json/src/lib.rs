//! What a client of the API needs of the stored event schema, on the protobuf types alone: the
//! event types' names ([`EVENT_TYPE_NAMES`], [`payload_type_name`], [`payload_field_name`]) and
//! the stored events as JSON ([`json`]). It never depends on the domain: voucherctl prints
//! events with it, and ledger-codec re-exports it beside the domain's translation.

pub mod json;

use ledger_proto::event::v1 as pb;

/// Calls `$callback!` with the event types of the stored schema, each written once here as an
/// identifier. From this one list come the names an audit filter may give
/// ([`EVENT_TYPE_NAMES`], [`payload_type_name`]), in snake case the JSON export's key
/// ([`payload_field_name`]), the payload's field in the `Event.payload` oneof, and in
/// ledger-codec the domain event's name: each is an exhaustive match, so neither the protobuf
/// `Payload` nor the domain `Event` can gain a type this list lacks.
#[macro_export]
macro_rules! with_event_types {
    ($callback:ident) => {
        $callback!(
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
    };
}

macro_rules! payload_type_names {
    ($($name:ident),+ $(,)?) => {
        /// The payload message names of `voucherledger.event.v1.Event`, in the schema's order.
        pub const EVENT_TYPE_NAMES: &[&str] = &[$(stringify!($name)),+];

        /// The payload message name of a stored event, as in [`EVENT_TYPE_NAMES`].
        pub fn payload_type_name(payload: &pb::event::Payload) -> &'static str {
            match payload {
                $(pb::event::Payload::$name(_) => stringify!($name)),+
            }
        }
    };
}

with_event_types!(payload_type_names);

/// The payload's field name in the `Event.payload` oneof (`vouchers_issued`): the snake case of
/// its message name, as the schema names every field.
pub fn payload_field_name(payload: &pb::event::Payload) -> String {
    snake_case(payload_type_name(payload))
}

/// `VouchersIssued` → `vouchers_issued`.
pub fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for (index, character) in camel.chars().enumerate() {
        if character.is_ascii_uppercase() {
            if index > 0 {
                snake.push('_');
            }
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_name_becomes_its_field_name() {
        assert_eq!(snake_case("VouchersIssued"), "vouchers_issued");
        assert_eq!(snake_case("UsageCodeLapsed"), "usage_code_lapsed");
        assert_eq!(snake_case("Head"), "head");
    }

    #[test]
    fn every_event_type_is_named_once() {
        let mut names = EVENT_TYPE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_TYPE_NAMES.len());
    }
}
