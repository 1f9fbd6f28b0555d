//! Identifiers from outside: enterprise numbers (BCE/KBO), national register numbers (NISS) and
//! the pseudonyms that replace them, and the short ids of providers and modules.
//!
//! A raw NISS lives only inside [`NationalNumber`], whose `Debug` never prints it; the ledger
//! keeps nothing of it but the keyed [`WorkerPseudonym`].

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest text accepted where an identifier is parsed, in bytes, before any other check: no
/// enterprise or national number with separators comes near it.
const IDENTIFIER_TEXT_BYTES_MAX: usize = 32;

/// A Belgian enterprise number (BCE/KBO) in its plain ten-digit form, check digits verified.
// `Serialize` by hand (below): the same string as `into = "String"` would write, without
// cloning it first, which was a tenth of the time of a checkpoint's encoding.
// Its ten ASCII digits inline, not a `String`: the state and the projections hold about a
// million of them after ten years (wallets, registrations, every year's sets of companies), and
// a heap allocation each cost ~45 bytes more than the digits. The digits order and compare as
// the text did.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct EnterpriseNumber([u8; ENTERPRISE_NUMBER_DIGITS]);

/// Digits of an enterprise number in its plain form.
const ENTERPRISE_NUMBER_DIGITS: usize = 10;

impl EnterpriseNumber {
    /// Accepts the plain ("0403019261") and the dotted ("0403.019.261") form, with or without
    /// spaces; `None` unless it has ten digits, starts with 0 or 1, and
    /// `97 - (first eight digits mod 97)` equals the last two.
    pub fn parse(text: &str) -> Option<EnterpriseNumber> {
        if text.len() > IDENTIFIER_TEXT_BYTES_MAX {
            return None;
        }
        let digits: String = text.chars().filter(|c| *c != '.' && *c != ' ').collect();
        if digits.len() != ENTERPRISE_NUMBER_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !digits.starts_with('0') && !digits.starts_with('1') {
            return None;
        }
        let body: u64 = digits[..8].parse().ok()?;
        let check: u64 = digits[8..].parse().ok()?;
        let inline: [u8; ENTERPRISE_NUMBER_DIGITS] = digits.as_bytes().try_into().ok()?;
        (97 - body % 97 == check).then_some(EnterpriseNumber(inline))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored (`parse`), so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl TryFrom<String> for EnterpriseNumber {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        EnterpriseNumber::parse(&text).ok_or_else(|| "invalid enterprise number".to_owned())
    }
}

impl From<EnterpriseNumber> for String {
    fn from(number: EnterpriseNumber) -> String {
        number.as_str().to_owned()
    }
}

impl Serialize for EnterpriseNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for EnterpriseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EnterpriseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnterpriseNumber({})", self.as_str())
    }
}

/// A valid Belgian national register number (NISS). Deliberately not `Display`, not
/// `Serialize`, and redacted in `Debug`: the only thing to do with one is to pseudonymize it.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalNumber([u8; 11]);

impl NationalNumber {
    /// Accepts eleven digits, with the usual separators (`85.07.30-033.28`); `None` unless the
    /// check digits equal `97 - (first nine digits mod 97)`, or, for people born from 2000 on,
    /// `97 - ((2 followed by the first nine digits) mod 97)`.
    pub fn parse(text: &str) -> Option<NationalNumber> {
        if text.len() > IDENTIFIER_TEXT_BYTES_MAX {
            return None;
        }
        let mut digits = [0u8; 11];
        let mut count = 0;
        for byte in text.bytes() {
            match byte {
                b'0'..=b'9' => {
                    *digits.get_mut(count)? = byte;
                    count += 1;
                }
                b'.' | b'-' | b' ' => {}
                _ => return None,
            }
        }
        if count != 11 {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> u64 {
            digits[range]
                .iter()
                .fold(0, |acc, d| acc * 10 + u64::from(d - b'0'))
        };
        let body = number(0..9);
        let check = number(9..11);
        let born_before_2000 = 97 - body % 97 == check;
        let born_from_2000 = 97 - (2_000_000_000 + body) % 97 == check;
        (born_before_2000 || born_from_2000).then_some(NationalNumber(digits))
    }

    /// The keyed pseudonym that stands for this person everywhere in the ledger.
    pub fn pseudonymize(&self, key: &PseudonymKey) -> WorkerPseudonym {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC-SHA-256.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&key.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("hmac accepts keys of every length"),
        };
        mac.update(&self.0);
        WorkerPseudonym(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for NationalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NationalNumber(<redacted>)")
    }
}

/// The secret key of the worker pseudonyms. Rotating it changes every pseudonym, so distinct
/// worker counts across a rotation count a person twice.
#[derive(Clone)]
pub struct PseudonymKey(Vec<u8>);

/// Shortest pseudonym key accepted, in bytes: the HMAC-SHA-256 block of security needs 32.
pub const PSEUDONYM_KEY_BYTES_MIN: usize = 32;

impl PseudonymKey {
    /// `None` when the key is shorter than [`PSEUDONYM_KEY_BYTES_MIN`].
    pub fn new(bytes: Vec<u8>) -> Option<PseudonymKey> {
        (bytes.len() >= PSEUDONYM_KEY_BYTES_MIN).then_some(PseudonymKey(bytes))
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

/// HMAC-SHA-256 of a national register number; lowercase hex on the wire and in the log.
// `Serialize` and `Deserialize` by hand (below): in human-readable formats (JSON) the same
// lowercase hex string as `into`/`try_from = "String"` would give, encoded on the stack; in
// binary formats (postcard: checkpoints and retained snapshots) its 32 bytes as they are, half
// the size and no hex to parse (decoding a ten-year checkpoint spent ~4 % of a start parsing
// pseudonyms back from hex).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerPseudonym([u8; 32]);

impl WorkerPseudonym {
    pub fn from_bytes(bytes: [u8; 32]) -> WorkerPseudonym {
        WorkerPseudonym(bytes)
    }

    pub fn parse_hex(text: &str) -> Option<WorkerPseudonym> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        (text.bytes().all(|b| !b.is_ascii_uppercase())).then_some(WorkerPseudonym(bytes))
    }

    /// The 64 lower-case hex digits, as `hex::encode` writes them, into one allocation of the
    /// right size (`hex::encode` grows its string as it goes; the writer encodes a pseudonym
    /// per redemption).
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    /// The pseudonym's 32 bytes (an HMAC-SHA-256 output, never the NISS).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl TryFrom<String> for WorkerPseudonym {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        WorkerPseudonym::parse_hex(&text).ok_or_else(|| "invalid worker pseudonym".to_owned())
    }
}

impl From<WorkerPseudonym> for String {
    fn from(pseudonym: WorkerPseudonym) -> String {
        pseudonym.to_hex()
    }
}

impl<'de> Deserialize<'de> for WorkerPseudonym {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            WorkerPseudonym::try_from(text).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(WorkerPseudonym)
        }
    }
}

impl Serialize for WorkerPseudonym {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        let mut text = [0u8; 64];
        // 32 bytes always make 64 ASCII hex digits; the fallback only keeps this panic-free.
        match hex::encode_to_slice(self.0, &mut text)
            .ok()
            .and_then(|()| std::str::from_utf8(&text).ok())
        {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&self.to_hex()),
        }
    }
}

impl fmt::Debug for WorkerPseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerPseudonym({})", &self.to_hex()[..12])
    }
}

/// A short id given by the administration: a provider's SPW approval id ("AG-0012") or a
/// module id. ASCII letters, digits, `-`, `_` and `.`, 1 to [`Identifier::BYTES_MAX`] bytes.
// `Serialize` by hand (below), for the same reason as `EnterpriseNumber`.
//
// Shared text (`Arc<str>`), not a `String`: every redemption copies its provider's and module's
// ids into its event, its postings, the state and the projections, and a copy of an `Arc` is a
// count, where a `String`'s was an allocation on the writer's thread (freed on others). It
// compares, hashes and encodes as the text it holds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Identifier(std::sync::Arc<str>);

impl Identifier {
    /// Longest id, in bytes: SPW approval ids are about ten characters; 64 leaves room for module
    /// ids that embed a provider id and a year.
    pub const BYTES_MAX: usize = 64;

    pub fn parse(text: &str) -> Option<Identifier> {
        let valid = !text.is_empty()
            && text.len() <= Self::BYTES_MAX
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        valid.then(|| Identifier(shared_text(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Distinct identifiers each thread keeps to hand out again, at most. Providers and modules
/// number in the hundreds; the bound only keeps a stream of distinct (hostile) ids from growing
/// a thread's set: past it, an id gets text of its own, as before.
const SHARED_IDS_PER_THREAD_MAX: usize = 4096;

thread_local! {
    static SHARED_IDS: std::cell::RefCell<std::collections::HashSet<std::sync::Arc<str>>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// The text of an identifier, shared with every identifier of the same text this thread parsed
/// before. Why: a checkpoint's decode, and a rebuild's decode of the log, parse the same few
/// hundred provider and module ids once per usage code and per redemption (about two million
/// times after ten simulated years), and each got an allocation of its own: this and the usage
/// codes' inline symbols took 84 MiB off the heap of a ten-year checkpoint once decoded.
fn shared_text(text: &str) -> std::sync::Arc<str> {
    let found = SHARED_IDS.try_with(|shared| {
        let mut shared = shared.try_borrow_mut().ok()?;
        if let Some(found) = shared.get(text) {
            return Some(found.clone());
        }
        let new: std::sync::Arc<str> = std::sync::Arc::from(text);
        if shared.len() < SHARED_IDS_PER_THREAD_MAX {
            shared.insert(new.clone());
        }
        Some(new)
    });
    // The thread's set is gone (the thread is ending) or in use: text of its own.
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| std::sync::Arc::from(text))
}

impl TryFrom<String> for Identifier {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Identifier::parse(&text).ok_or_else(|| "invalid identifier".to_owned())
    }
}

impl From<Identifier> for String {
    fn from(id: Identifier) -> String {
        id.0.as_ref().to_owned()
    }
}

impl Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_pseudonym_is_written_in_hex_as_the_hex_crate_writes_it_and_read_back(
            bytes in proptest::prelude::any::<[u8; 32]>()
        ) {
            let pseudonym = WorkerPseudonym::from_bytes(bytes);
            proptest::prop_assert_eq!(pseudonym.to_hex(), hex::encode(bytes));
            proptest::prop_assert_eq!(WorkerPseudonym::parse_hex(&pseudonym.to_hex()), Some(pseudonym));
        }
    }

    #[test]
    fn a_pseudonym_is_hex_in_json_and_its_32_bytes_in_a_binary_encoding() {
        let pseudonym = WorkerPseudonym::from_bytes([0xab; 32]);
        let json = serde_json::to_string(&pseudonym).expect("json");
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(
            serde_json::from_str::<WorkerPseudonym>(&json).expect("parsed"),
            pseudonym
        );
        assert!(serde_json::from_str::<WorkerPseudonym>(&json.to_uppercase()).is_err());
        let bytes = postcard::to_stdvec(&pseudonym).expect("postcard");
        assert_eq!(bytes, vec![0xab; 32]);
        assert_eq!(
            postcard::from_bytes::<WorkerPseudonym>(&bytes).expect("decoded"),
            pseudonym
        );
    }

    #[test]
    fn enterprise_number_vectors() {
        let valid = [
            "0403.019.261",
            "0403019261",
            "0403 019 261",
            "0202.239.951",
            "1000.000.021",
        ];
        for text in valid {
            assert!(
                EnterpriseNumber::parse(text).is_some(),
                "{text} should be valid"
            );
        }
        assert_eq!(
            EnterpriseNumber::parse("0403.019.261").map(|n| n.to_string()),
            Some("0403019261".into())
        );
        let invalid = [
            "0431.150.351", // wrong check digits
            "2403019261",   // first digit neither 0 nor 1
            "040301926",    // nine digits
            "04030192611",  // eleven digits
            "0403O19261",   // a letter
            "",
            "0403-019-261", // dashes are not a BCE separator
        ];
        for text in invalid {
            assert!(
                EnterpriseNumber::parse(text).is_none(),
                "{text} should be invalid"
            );
        }
    }

    #[test]
    fn national_number_vectors_both_centuries() {
        // Born 1985-07-30: 97 - (850730033 mod 97) = 28.
        assert!(NationalNumber::parse("85.07.30-033.28").is_some());
        assert!(NationalNumber::parse("85073003328").is_some());
        // Born 2001-02-03: the check is computed on 2010203001 (97 - (2010203001 mod 97) = 70).
        assert!(NationalNumber::parse("01020300170").is_some());
        // The same body with the pre-2000 check digits is valid too, as a 1901 birth
        // (97 - (10203001 mod 97) = 41).
        assert!(NationalNumber::parse("01020300141").is_some());
        for text in [
            "85073003329",
            "0102030017",
            "850730033280",
            "85O73003328",
            "",
            "01020300171",
        ] {
            assert!(
                NationalNumber::parse(text).is_none(),
                "{text} should be invalid"
            );
        }
    }

    #[test]
    fn identifiers_of_the_same_text_share_it_up_to_the_thread_bound() {
        // A thread of its own, so that no other test's ids fill its set first.
        let outcome = std::thread::spawn(|| {
            let first = Identifier::parse("AG-0012");
            let again = Identifier::parse("AG-0012");
            let decoded = Identifier::try_from("AG-0012".to_owned()).ok();
            let (Some(first), Some(again), Some(decoded)) = (first, again, decoded) else {
                panic!("valid identifiers");
            };
            let shared = std::sync::Arc::ptr_eq(&first.0, &again.0)
                && std::sync::Arc::ptr_eq(&first.0, &decoded.0);
            let other = Identifier::parse("AG-0013").map(|other| other.0);
            let apart = other.is_some_and(|other| !std::sync::Arc::ptr_eq(&first.0, &other));
            // Past the bound, an id still parses and compares as its text, with text of its own.
            for index in 0..SHARED_IDS_PER_THREAD_MAX {
                let _ = Identifier::parse(&format!("filler-{index}"));
            }
            let late = Identifier::parse("late-id");
            let late_again = Identifier::parse("late-id");
            let (Some(late), Some(late_again)) = (late, late_again) else {
                panic!("valid identifiers");
            };
            let late_own = !std::sync::Arc::ptr_eq(&late.0, &late_again.0) && late == late_again;
            let set_len = SHARED_IDS.with(|shared| shared.borrow().len());
            (shared, apart, late_own, set_len)
        })
        .join();
        let Ok((shared, apart, late_own, set_len)) = outcome else {
            panic!("the test's thread panicked");
        };
        assert!(shared, "the same text is shared");
        assert!(apart, "another text is not");
        assert!(late_own, "past the bound, each id has its own text");
        assert_eq!(set_len, SHARED_IDS_PER_THREAD_MAX);
    }

    #[test]
    fn national_number_debug_is_redacted() {
        let number = NationalNumber::parse("85073003328").map(|n| format!("{n:?}"));
        assert_eq!(number.as_deref(), Some("NationalNumber(<redacted>)"));
    }

    #[test]
    fn pseudonym_is_keyed_and_stable() {
        let key_a = PseudonymKey::new(vec![7; 32]);
        let key_b = PseudonymKey::new(vec![8; 32]);
        let (Some(key_a), Some(key_b)) = (key_a, key_b) else {
            panic!("32-byte keys are accepted")
        };
        let Some(person) = NationalNumber::parse("85073003328") else {
            panic!("valid niss")
        };
        let Some(same_person) = NationalNumber::parse("85.07.30-033.28") else {
            panic!("valid niss")
        };
        assert_eq!(
            person.pseudonymize(&key_a),
            same_person.pseudonymize(&key_a)
        );
        assert_ne!(person.pseudonymize(&key_a), person.pseudonymize(&key_b));
        assert!(!person.pseudonymize(&key_a).to_hex().contains("85073003328"));
        assert!(PseudonymKey::new(vec![1; 31]).is_none());
    }

    #[test]
    fn identifiers() {
        assert!(Identifier::parse("AG-0012").is_some());
        assert!(Identifier::parse("").is_none());
        assert!(Identifier::parse("a b").is_none());
        assert!(Identifier::parse(&"x".repeat(65)).is_none());
        assert!(Identifier::parse(&"x".repeat(64)).is_some());
    }
}
