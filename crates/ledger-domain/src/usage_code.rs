//! Usage codes: the short code a company gives its provider (by phone or e-mail) to consent to
//! one training, and that the provider quotes when it files the hours.
//!
//! A code is nine symbols of a 31-symbol alphabet without the look-alikes (no 0, 1, I, O, and
//! no U), written in three groups (`K7Q-M2P-X9R`): eight derived from the order, the ninth a
//! check symbol. The check is a weighted sum modulo 31 (a prime, so every weight is
//! invertible): it catches every single mistyped symbol and every swap of two neighbours.
//!
//! A code is derived, never drawn at random: SHA-256 of a fixed tag, the order id (the request
//! id, unique in the ledger) and an attempt number. `decide` takes attempt 0 and, in the
//! astronomically rare case that the code is already taken, the next attempt, until a free one
//! (see [`UsageCode::derive`]); the chosen code is recorded in the event, so a replay never
//! derives it again and always finds the same code. Nothing here does IO.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The symbols of a code, in the order of their values: digits 2 to 9 and the letters without
/// I, O and U. 31 symbols, a prime, for the check symbol.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// Symbols derived from the order; 31^8 (about 8.5 * 10^11) codes, so that a code guessed at
/// random hits an open one with a negligible chance.
const PAYLOAD_LEN: usize = 8;
/// Payload and check symbol.
pub const CODE_SYMBOLS_LEN: usize = PAYLOAD_LEN + 1;
/// Longest text accepted where a code is parsed, in bytes, before any other check: nine symbols
/// with separators come to 11.
pub const CODE_TEXT_BYTES_MAX: usize = 32;
/// What the derivation hashes first, so that no other hash of the same order id can be a code.
const DERIVATION_TAG: &[u8] = b"voucher-ledger/usage-code/v1\0";

/// A usage code with a correct check symbol, kept in its plain form (nine symbols, upper case,
/// no separator); `Display` writes the three groups.
// Its nine ASCII symbols inline, not a `String`: the state and the projections hold each code
// ever ordered three times (about 490 000 codes after ten simulated years), and a heap
// allocation each cost ~30 bytes more than the symbols. The symbols order, compare and encode as
// the text did, so checkpoints keep their bytes. `Serialize` by hand, as `EnterpriseNumber`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct UsageCode([u8; CODE_SYMBOLS_LEN]);

fn value_of(symbol: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|candidate| *candidate == symbol)
        .and_then(|index| u32::try_from(index).ok())
}

/// The check symbol's value for `payload`: the one that makes the sum of every symbol's value
/// times its position (1-based) a multiple of 31.
fn check_value(payload: &[u32]) -> u32 {
    let sum: u32 = payload
        .iter()
        .zip(1u32..)
        .map(|(value, weight)| value * weight)
        .sum::<u32>()
        % 31;
    let weight = u32::try_from(payload.len()).unwrap_or(0) + 1;
    // The check symbol c at position `weight` needs sum + c * weight = 0 (mod 31): c is
    // -sum * weight^-1, and weight^-1 = weight^29 (Fermat, 31 is prime).
    let mut inverse = 1u32;
    for _ in 0..29 {
        inverse = inverse * weight % 31;
    }
    (31 - sum) % 31 * inverse % 31
}

impl UsageCode {
    /// Accepts the code in upper or lower case, with or without dashes and spaces; `None`
    /// unless it has nine symbols of the alphabet and its check symbol is right.
    pub fn parse(text: &str) -> Option<UsageCode> {
        if text.len() > CODE_TEXT_BYTES_MAX {
            return None;
        }
        let symbols: Vec<u8> = text
            .bytes()
            .filter(|byte| *byte != b'-' && *byte != b' ')
            .map(|byte| byte.to_ascii_uppercase())
            .collect();
        if symbols.len() != CODE_SYMBOLS_LEN {
            return None;
        }
        let values: Vec<u32> = symbols
            .iter()
            .map(|symbol| value_of(*symbol))
            .collect::<Option<_>>()?;
        let (payload, check) = values.split_at(PAYLOAD_LEN);
        if check.first() != Some(&check_value(payload)) {
            return None;
        }
        let inline: [u8; CODE_SYMBOLS_LEN] = symbols.try_into().ok()?;
        Some(UsageCode(inline))
    }

    /// The code of attempt `attempt` for the order `order_id`; `decide` takes the first attempt
    /// whose code is not yet in the ledger.
    pub fn derive(order_id: uuid::Uuid, attempt: u32) -> UsageCode {
        let mut hasher = Sha256::new();
        hasher.update(DERIVATION_TAG);
        hasher.update(order_id.as_bytes());
        hasher.update(attempt.to_be_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        let mut number = u64::from_be_bytes(bytes);
        let mut payload = [0u32; PAYLOAD_LEN];
        for value in &mut payload {
            // `number % 31` is below 31: the cast cannot truncate.
            *value = (number % 31) as u32;
            number /= 31;
        }
        let check = check_value(&payload);
        let mut symbols = [0u8; CODE_SYMBOLS_LEN];
        for (symbol, value) in symbols
            .iter_mut()
            .zip(payload.iter().chain(std::iter::once(&check)))
        {
            *symbol = ALPHABET[*value as usize];
        }
        UsageCode(symbols)
    }

    /// The plain form: nine symbols, no separator.
    pub fn as_str(&self) -> &str {
        // Only symbols of the ASCII alphabet are ever stored (`parse`, `derive`), so this never
        // falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TryFrom<String> for UsageCode {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        UsageCode::parse(&text).ok_or_else(|| "invalid usage code".to_owned())
    }
}

impl From<UsageCode> for String {
    fn from(code: UsageCode) -> String {
        code.as_str().to_owned()
    }
}

impl Serialize for UsageCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for UsageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.as_str();
        write!(f, "{}-{}-{}", &text[..3], &text[3..6], &text[6..])
    }
}

impl fmt::Debug for UsageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UsageCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_codes_parse_in_every_written_form() {
        for attempt in 0..200 {
            let code = UsageCode::derive(uuid::Uuid::from_u128(7), attempt);
            assert_eq!(UsageCode::parse(code.as_str()), Some(code.clone()));
            assert_eq!(UsageCode::parse(&code.to_string()), Some(code.clone()));
            assert_eq!(
                UsageCode::parse(&code.to_string().to_lowercase()),
                Some(code.clone())
            );
        }
    }

    #[test]
    fn a_code_encodes_and_orders_as_its_text() {
        // Checkpoints written when a code was a `String` keep their bytes and their order.
        let mut codes: Vec<UsageCode> = (0..50)
            .map(|attempt| UsageCode::derive(uuid::Uuid::from_u128(9), attempt))
            .collect();
        for code in &codes {
            let as_code = postcard::to_stdvec(code).ok();
            let as_text = postcard::to_stdvec(code.as_str()).ok();
            assert_eq!(as_code, as_text);
            let decoded = as_code.and_then(|bytes| postcard::from_bytes::<UsageCode>(&bytes).ok());
            assert_eq!(decoded.as_ref(), Some(code));
        }
        let mut texts: Vec<String> = codes.iter().map(|code| code.as_str().to_owned()).collect();
        codes.sort();
        texts.sort();
        let sorted: Vec<&str> = codes.iter().map(UsageCode::as_str).collect();
        assert_eq!(sorted, texts);
        // A text that is not a code does not decode.
        let bad = postcard::to_stdvec("ABCDEFGH").unwrap_or_default();
        assert!(postcard::from_bytes::<UsageCode>(&bad).is_err());
    }

    #[test]
    fn derivation_is_deterministic_and_differs_per_order_and_attempt() {
        let order = uuid::Uuid::from_u128(42);
        assert_eq!(UsageCode::derive(order, 0), UsageCode::derive(order, 0));
        assert_ne!(UsageCode::derive(order, 0), UsageCode::derive(order, 1));
        assert_ne!(
            UsageCode::derive(order, 0),
            UsageCode::derive(uuid::Uuid::from_u128(43), 0)
        );
    }

    #[test]
    fn every_single_substitution_and_neighbour_swap_is_caught() {
        let code = UsageCode::derive(uuid::Uuid::from_u128(1), 0);
        let symbols = code.as_str().as_bytes().to_vec();
        for position in 0..symbols.len() {
            for replacement in ALPHABET.iter() {
                if *replacement == symbols[position] {
                    continue;
                }
                let mut typo = symbols.clone();
                typo[position] = *replacement;
                let text = String::from_utf8(typo).unwrap_or_default();
                assert_eq!(UsageCode::parse(&text), None, "{text}");
            }
        }
        for position in 0..symbols.len() - 1 {
            if symbols[position] == symbols[position + 1] {
                continue;
            }
            let mut swapped = symbols.clone();
            swapped.swap(position, position + 1);
            let text = String::from_utf8(swapped).unwrap_or_default();
            assert_eq!(UsageCode::parse(&text), None, "{text}");
        }
    }

    #[test]
    fn look_alikes_and_wrong_lengths_are_refused() {
        for text in ["", "0OI1U2345", "ABCDEFGH", "ABCDEFGHJK", &"A".repeat(40)] {
            assert_eq!(UsageCode::parse(text), None, "{text}");
        }
    }
}
