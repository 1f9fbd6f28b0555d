//! The dated policy table: every amount, quota and limit the rules use, with the date from
//! which it applies. Parsed from the TOML text of `config/policy.toml`; reading the file is the
//! caller's job, so this module does no IO.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money;
use crate::types::{SizeClass, VoucherType};

/// Yearly quotas of one size class, in vouchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    pub general: u32,
    pub languages: u32,
    pub eco_climate: u32,
}

impl Quotas {
    pub fn of(&self, voucher_type: VoucherType) -> u32 {
        match voucher_type {
            VoucherType::General => self.general,
            VoucherType::Languages => self.languages,
            VoucherType::EcoClimate => self.eco_climate,
        }
    }
}

/// The policy in force from `effective_from` until the next row of the table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub effective_from: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    pub face_value_eur: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub employer_share_eur: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub region_share_eur: Decimal,
    /// A batch paid in month M is valid until the last day of month M + validity_months - 1.
    pub validity_months: u32,
    pub refund_employer_share_on_expiry: bool,
    #[serde(with = "rust_decimal::serde::str")]
    pub fte_max: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub turnover_max_eur: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub balance_sheet_total_max_eur: Decimal,
    pub secondary_self_employed_months_min: u32,
    /// Days after the end of a usage code's period during which its provider may still file
    /// hours against it (late filing). Absent: none.
    #[serde(default)]
    pub filing_grace_days: u32,
    /// From this training date on, a redemption must name a usage code; training before it
    /// may still be redeemed from the free vouchers, as before codes existed. Absent: never.
    #[serde(default)]
    pub usage_code_required_from: Option<NaiveDate>,
    pub quotas: BTreeMap<SizeClass, Quotas>,
}

impl Policy {
    pub fn quota(&self, size_class: SizeClass, voucher_type: VoucherType) -> u32 {
        // `PolicyTable::from_toml_str` refuses a table without every size class.
        self.quotas
            .get(&size_class)
            .map_or(0, |quotas| quotas.of(voucher_type))
    }

    /// Whether a redemption of training on `training_date` must name a usage code.
    pub fn usage_code_required_on(&self, training_date: NaiveDate) -> bool {
        self.usage_code_required_from
            .is_some_and(|from| from <= training_date)
    }

    /// Last day on which a voucher paid on `payment_date` may pay for training.
    pub fn valid_until(&self, payment_date: NaiveDate) -> NaiveDate {
        last_day_of_month_after(payment_date, self.validity_months.saturating_sub(1))
    }
}

/// The last day of the month `months` months after the month of `date`.
pub fn last_day_of_month_after(date: NaiveDate, months: u32) -> NaiveDate {
    let first_of_month = date.with_day(1).unwrap_or(date);
    first_of_month
        .checked_add_months(Months::new(months + 1))
        .and_then(|first_of_next| first_of_next.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy table is not valid toml: {0}")]
    Syntax(String),
    #[error("policy table has no row")]
    Empty,
    #[error(
        "policy rows are not in strictly increasing order of effective_from at {effective_from}"
    )]
    NotIncreasing { effective_from: NaiveDate },
    #[error("policy row {effective_from}: {field} is not an amount in euros with two decimals")]
    InvalidAmount {
        effective_from: NaiveDate,
        field: &'static str,
    },
    #[error(
        "policy row {effective_from}: employer and region shares do not add up to the face value"
    )]
    SharesDoNotAddUp { effective_from: NaiveDate },
    #[error("policy row {effective_from}: validity_months must be between 1 and 60")]
    InvalidValidity { effective_from: NaiveDate },
    #[error(
        "policy row {effective_from}: filing_grace_days must be at most {FILING_GRACE_DAYS_MAX}"
    )]
    InvalidFilingGrace { effective_from: NaiveDate },
    #[error("policy row {effective_from}: no quotas for size class {size_class}")]
    MissingQuotas {
        effective_from: NaiveDate,
        size_class: &'static str,
    },
}

/// Longest filing grace a policy row may set, in days: a year. Earmarked vouchers stay out of
/// the expiry run for the grace, so a longer one would keep expired vouchers alive for years.
pub const FILING_GRACE_DAYS_MAX: u32 = 366;

/// The whole dated table, rows in increasing order of `effective_from`.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyTable {
    rows: Vec<Policy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    policy: Vec<Policy>,
}

impl PolicyTable {
    /// Parses and checks the text of a policy file.
    pub fn from_toml_str(text: &str) -> Result<PolicyTable, PolicyError> {
        let file: PolicyFile = toml::from_str(text)
            .map_err(|error| PolicyError::Syntax(error.message().to_owned()))?;
        PolicyTable::new(file.policy)
    }

    pub fn new(rows: Vec<Policy>) -> Result<PolicyTable, PolicyError> {
        if rows.is_empty() {
            return Err(PolicyError::Empty);
        }
        for pair in rows.windows(2) {
            if pair[1].effective_from <= pair[0].effective_from {
                return Err(PolicyError::NotIncreasing {
                    effective_from: pair[1].effective_from,
                });
            }
        }
        for row in &rows {
            let effective_from = row.effective_from;
            let amounts = [
                ("face_value_eur", row.face_value_eur),
                ("employer_share_eur", row.employer_share_eur),
                ("region_share_eur", row.region_share_eur),
                ("turnover_max_eur", row.turnover_max_eur),
                (
                    "balance_sheet_total_max_eur",
                    row.balance_sheet_total_max_eur,
                ),
            ];
            for (field, amount) in amounts {
                if !money::is_valid_eur(amount) || amount.is_zero() {
                    return Err(PolicyError::InvalidAmount {
                        effective_from,
                        field,
                    });
                }
            }
            if row.fte_max.is_sign_negative() || row.fte_max.is_zero() {
                return Err(PolicyError::InvalidAmount {
                    effective_from,
                    field: "fte_max",
                });
            }
            if row.employer_share_eur + row.region_share_eur != row.face_value_eur {
                return Err(PolicyError::SharesDoNotAddUp { effective_from });
            }
            if !(1..=60).contains(&row.validity_months) {
                return Err(PolicyError::InvalidValidity { effective_from });
            }
            if row.filing_grace_days > FILING_GRACE_DAYS_MAX {
                return Err(PolicyError::InvalidFilingGrace { effective_from });
            }
            for size_class in SizeClass::ALL {
                if !row.quotas.contains_key(&size_class) {
                    return Err(PolicyError::MissingQuotas {
                        effective_from,
                        size_class: size_class.name(),
                    });
                }
            }
        }
        let rows = rows
            .into_iter()
            .map(|mut row| {
                row.face_value_eur = money::to_cents(row.face_value_eur);
                row.employer_share_eur = money::to_cents(row.employer_share_eur);
                row.region_share_eur = money::to_cents(row.region_share_eur);
                row
            })
            .collect();
        Ok(PolicyTable { rows })
    }

    /// The policy in force on `date`; `None` before the first row.
    pub fn in_force(&self, date: NaiveDate) -> Option<&Policy> {
        self.rows
            .iter()
            .rev()
            .find(|row| row.effective_from <= date)
    }

    pub fn rows(&self) -> &[Policy] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn default_table_has_the_values_of_the_design() {
        let table = PolicyTable::from_toml_str(DEFAULT_POLICY);
        let Ok(table) = table else {
            panic!("default policy parses: {table:?}")
        };
        let Some(policy) = table.in_force(date("2025-06-01")) else {
            panic!("a row in force")
        };
        assert_eq!(policy.face_value_eur.to_string(), "30.00");
        assert_eq!(policy.employer_share_eur.to_string(), "15.00");
        assert_eq!(policy.region_share_eur.to_string(), "15.00");
        assert!(!policy.refund_employer_share_on_expiry);
        let expected = [
            (SizeClass::SecondarySelfEmployed, 80, 20, 200),
            (SizeClass::Micro, 100, 25, 200),
            (SizeClass::Fte2To50, 400, 100, 200),
            (SizeClass::Fte51To100, 600, 150, 200),
            (SizeClass::Fte101To200, 700, 175, 200),
            (SizeClass::Fte201To250, 800, 200, 200),
        ];
        for (size_class, general, languages, eco_climate) in expected {
            assert_eq!(policy.quota(size_class, VoucherType::General), general);
            assert_eq!(policy.quota(size_class, VoucherType::Languages), languages);
            assert_eq!(
                policy.quota(size_class, VoucherType::EcoClimate),
                eco_climate
            );
        }
    }

    #[test]
    fn validity_runs_to_the_last_day_of_month_m_plus_11() {
        let table = PolicyTable::from_toml_str(DEFAULT_POLICY);
        let Ok(table) = table else {
            panic!("default policy parses")
        };
        let Some(policy) = table.in_force(date("2025-09-10")) else {
            panic!("a row in force")
        };
        assert_eq!(policy.valid_until(date("2025-09-10")), date("2026-08-31"));
        assert_eq!(policy.valid_until(date("2025-09-30")), date("2026-08-31"));
        assert_eq!(policy.valid_until(date("2025-03-01")), date("2026-02-28"));
        assert_eq!(policy.valid_until(date("2023-03-31")), date("2024-02-29"));
        assert_eq!(policy.valid_until(date("2025-01-15")), date("2025-12-31"));
    }

    #[test]
    fn dated_rows_apply_from_their_date() {
        let second_row = DEFAULT_POLICY
            .replace("2004-01-01", "2026-01-01")
            .replace("\"15.00\"", "\"20.00\"")
            .replace("\"30.00\"", "\"40.00\"");
        let text = format!(
            "{DEFAULT_POLICY}\n{}",
            &second_row[second_row.find("\n[[policy]]").unwrap_or(0)..]
        );
        let table = PolicyTable::from_toml_str(&text);
        let Ok(table) = table else {
            panic!("two-row table parses: {table:?}")
        };
        assert_eq!(
            table
                .in_force(date("2025-12-31"))
                .map(|p| p.face_value_eur.to_string()),
            Some("30.00".into())
        );
        assert_eq!(
            table
                .in_force(date("2026-01-01"))
                .map(|p| p.face_value_eur.to_string()),
            Some("40.00".into())
        );
        assert!(table.in_force(date("2003-12-31")).is_none());
    }

    #[test]
    fn refuses_shares_that_do_not_add_up_and_missing_quotas() {
        let bad_shares = DEFAULT_POLICY.replace(
            "region_share_eur = \"15.00\"",
            "region_share_eur = \"14.00\"",
        );
        assert!(matches!(
            PolicyTable::from_toml_str(&bad_shares),
            Err(PolicyError::SharesDoNotAddUp { .. })
        ));
        let missing = DEFAULT_POLICY.replace(
            "micro = { general = 100, languages = 25, eco_climate = 200 }\n",
            "",
        );
        assert!(matches!(
            PolicyTable::from_toml_str(&missing),
            Err(PolicyError::MissingQuotas {
                size_class: "micro",
                ..
            })
        ));
        let three_decimals = DEFAULT_POLICY.replace("\"30.00\"", "\"30.001\"");
        assert!(matches!(
            PolicyTable::from_toml_str(&three_decimals),
            Err(PolicyError::InvalidAmount { .. })
        ));
        assert!(matches!(
            PolicyTable::from_toml_str("policy = []"),
            Err(PolicyError::Empty)
        ));
        assert!(matches!(
            PolicyTable::from_toml_str("nonsense"),
            Err(PolicyError::Syntax(_))
        ));
    }
}
