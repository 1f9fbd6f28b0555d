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

/// Parses a decimal string such as "15.00" or "15" into a euro amount; `None` when it is not a
/// number, is negative, has more than two decimals or is too large.
pub fn parse_eur(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > 24 || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
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
        assert_eq!(parse_eur("abc"), None);
        assert_eq!(parse_eur("-1.00"), None);
        assert_eq!(parse_eur(""), None);
        assert_eq!(parse_eur("1e3"), None);
        assert_eq!(parse_eur("99999999999.00"), None);
    }
}
