//! Euro amounts: `rust_decimal::Decimal` with exactly two decimal places, never a float.

use rust_decimal::Decimal;

/// Number of decimal places of every amount in the ledger (euro cents).
pub const EUR_SCALE: u32 = 2;

/// Largest amount the ledger accepts anywhere, EUR 10 billion: far above the scheme's yearly
/// budget (EUR 7.7 million in 2024), and small enough that no sum of amounts can overflow.
pub fn amount_max_eur() -> Decimal {
    Decimal::new(10_000_000_000, 0)
}

/// Whether `amount` is a valid euro amount: not negative, at most two decimals, at most
/// [`amount_max_eur`].
pub fn is_valid_eur(amount: Decimal) -> bool {
    !amount.is_sign_negative()
        && amount.normalize().scale() <= EUR_SCALE
        && amount <= amount_max_eur()
}

/// `amount` with exactly two decimals, so that it always prints as "15.00".
pub fn to_cents(amount: Decimal) -> Decimal {
    let mut amount = amount.round_dp(EUR_SCALE);
    amount.rescale(EUR_SCALE);
    amount
}

/// `count` × `unit`, with two decimals.
pub fn times(unit: Decimal, count: u32) -> Decimal {
    to_cents(unit * Decimal::from(count))
}

/// Longest decimal text read from outside, in bytes: the largest amount (EUR 10 billion) with
/// its cents takes 14; the margin is for leading zeros.
const DECIMAL_TEXT_BYTES_MAX: usize = 24;

/// Whether `text` is written as digits, optionally followed by a point and one or two digits
/// ("15", "15.5", "15.00"): not "15.", ".5", "15.000" (more than two decimals, even zeros),
/// "1e3", "+1" or "-1".
pub fn is_plain_decimal_text(text: &str) -> bool {
    if text.is_empty() || text.len() > DECIMAL_TEXT_BYTES_MAX {
        return false;
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && all_digits(whole)
        && fraction.is_none_or(|fraction| {
            (1..=EUR_SCALE as usize).contains(&fraction.len()) && all_digits(fraction)
        })
}

/// Parses a decimal string such as "15.00", "15.5" or "15" into a euro amount; `None` when it
/// is not written as [`is_plain_decimal_text`] says (so "15." and "15.000" are refused), or is
/// too large.
pub fn parse_eur(text: &str) -> Option<Decimal> {
    if !is_plain_decimal_text(text) {
        return None;
    }
    let amount: Decimal = text.parse().ok()?;
    is_valid_eur(amount).then(|| to_cents(amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_decimals_and_refuses_more() {
        assert_eq!(
            parse_eur("15.00").map(|a| a.to_string()),
            Some("15.00".into())
        );
        assert_eq!(parse_eur("15").map(|a| a.to_string()), Some("15.00".into()));
        assert_eq!(
            parse_eur("15.5").map(|a| a.to_string()),
            Some("15.50".into())
        );
        assert_eq!(parse_eur("15.001"), None);
        assert_eq!(parse_eur("15.000"), None);
        assert_eq!(parse_eur("15."), None);
        assert_eq!(parse_eur(".5"), None);
        assert_eq!(parse_eur("1.2.3"), None);
        assert_eq!(parse_eur("0").map(|a| a.to_string()), Some("0.00".into()));
        assert_eq!(parse_eur("abc"), None);
        assert_eq!(parse_eur("-1.00"), None);
        assert_eq!(parse_eur(""), None);
        assert_eq!(parse_eur("1e3"), None);
        assert_eq!(parse_eur("99999999999.00"), None);
    }
}
