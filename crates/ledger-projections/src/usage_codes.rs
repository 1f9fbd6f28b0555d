//! The read model of usage codes (docs/RULES.md §20): every code with what was filed against
//! it and where it stands (open, used, cancelled, lapsed), the codes of each company, and the
//! hours each company has reserved in open codes. Folded from the same events as the rest of
//! the projections; ordered maps only.

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;

use chrono::NaiveDate;
use ledger_domain::event::{BatchDraw, HoursRedeemed, UsageCodeOrdered};
use ledger_domain::{EnterpriseNumber, Identifier, UsageCode, VoucherType};
use serde::{Deserialize, Serialize};

/// Where a code stands, as the reports show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CodeStatus {
    /// Hours left to file.
    Open,
    /// Every hour filed.
    Used,
    /// Cancelled by its company or the operator; the hours left went back to the wallet.
    Cancelled,
    /// Its filing grace passed with hours left, which went back to the wallet.
    Lapsed,
}

impl CodeStatus {
    pub fn name(self) -> &'static str {
        match self {
            CodeStatus::Open => "open",
            CodeStatus::Used => "used",
            CodeStatus::Cancelled => "cancelled",
            CodeStatus::Lapsed => "lapsed",
        }
    }
}

/// One code as the reports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeView {
    pub enterprise_number: EnterpriseNumber,
    pub provider_id: Identifier,
    pub module_id: Option<Identifier>,
    pub voucher_type: VoucherType,
    pub hours: u32,
    /// Hours filed against the code (a reversed filing still counts: its vouchers went back to
    /// the wallet, not to the code).
    pub hours_filed: u32,
    /// Hours not filed: still reserved while the code is open, given back once it is closed.
    pub hours_left: u32,
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
    pub filing_until: NaiveDate,
    pub ordered_on: NaiveDate,
    /// The day it was cancelled or lapsed.
    pub closed_on: Option<NaiveDate>,
    pub status: CodeStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCodes {
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub codes: OrdMap<UsageCode, CodeView>,
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub by_company: OrdMap<EnterpriseNumber, BTreeSet<UsageCode>>,
    /// Hours in open codes per company: vouchers in the wallet that nothing else may spend.
    #[serde(deserialize_with = "ledger_domain::dense::ord_map")]
    pub reserved_hours: OrdMap<EnterpriseNumber, u64>,
}

fn total(draws: &[BatchDraw]) -> u32 {
    draws.iter().map(|draw| draw.quantity).sum()
}

impl UsageCodes {
    pub(crate) fn ordered(&mut self, e: &UsageCodeOrdered) {
        self.codes.insert(
            e.code.clone(),
            CodeView {
                enterprise_number: e.enterprise_number.clone(),
                provider_id: e.provider_id.clone(),
                module_id: e.module_id.clone(),
                voucher_type: e.voucher_type,
                hours: e.hours,
                hours_filed: 0,
                hours_left: e.hours,
                period_from: e.period_from,
                period_until: e.period_until,
                filing_until: e.filing_until,
                ordered_on: e.ordered_on,
                closed_on: None,
                status: CodeStatus::Open,
            },
        );
        self.by_company
            .entry(e.enterprise_number.clone())
            .or_default()
            .insert(e.code.clone());
        *self
            .reserved_hours
            .entry(e.enterprise_number.clone())
            .or_default() += u64::from(e.hours);
    }

    pub(crate) fn filed(
        &mut self,
        e: &HoursRedeemed,
        code: &UsageCode,
    ) -> Result<(), &'static str> {
        let view = self.codes.get_mut(code).ok_or("unknown usage code")?;
        view.hours_left = view
            .hours_left
            .checked_sub(e.hours)
            .ok_or("usage code overdrawn")?;
        view.hours_filed += e.hours;
        if view.hours_left == 0 {
            view.status = CodeStatus::Used;
        }
        self.unreserve(&e.enterprise_number, e.hours);
        Ok(())
    }

    pub(crate) fn closed(
        &mut self,
        code: &UsageCode,
        returned: &[BatchDraw],
        on: NaiveDate,
        status: CodeStatus,
    ) -> Result<(), &'static str> {
        let view = self.codes.get_mut(code).ok_or("unknown usage code")?;
        let hours = total(returned);
        if view.status != CodeStatus::Open || view.hours_left != hours {
            return Err("closing a code that does not hold these hours");
        }
        view.hours_left = 0;
        view.status = status;
        view.closed_on = Some(on);
        let enterprise_number = view.enterprise_number.clone();
        self.unreserve(&enterprise_number, hours);
        Ok(())
    }

    fn unreserve(&mut self, enterprise_number: &EnterpriseNumber, hours: u32) {
        if let Some(reserved) = self.reserved_hours.get_mut(enterprise_number) {
            *reserved = reserved.saturating_sub(u64::from(hours));
            if *reserved == 0 {
                self.reserved_hours.remove(enterprise_number);
            }
        }
    }

    /// How many codes stand in each status.
    pub fn counts(&self) -> BTreeMap<CodeStatus, u64> {
        let mut counts = BTreeMap::new();
        for view in self.codes.values() {
            *counts.entry(view.status).or_default() += 1;
        }
        counts
    }
}
