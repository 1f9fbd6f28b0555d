//! Usage codes on the wire (docs/RULES.md §20): requests to `OrderUsageCode` and
//! `CancelUsageCode` commands, a code's text to a [`UsageCode`], and the code projections to
//! answers. Like the rest of `wire`, every field is parsed here and named when it is wrong.

use ledger_codec::encode_date;
use ledger_domain::command::{CancelUsageCode, OrderUsageCode};
use ledger_domain::decide::REASON_BYTES_MAX;
use ledger_domain::{Command, EnterpriseNumber, Refusal, UsageCode};
use ledger_projections::{CodeStatus, CodeView, Projections};
use ledger_proto::v1 as api;
use uuid::Uuid;

/// A code as a company writes it: nine symbols, any case, dashes and spaces anywhere.
pub fn usage_code(text: &str) -> Result<UsageCode, Refusal> {
    UsageCode::parse(text).ok_or(Refusal::InvalidUsageCode)
}

/// A redemption's optional code: empty means none.
pub fn optional_usage_code(text: &str) -> Result<Option<UsageCode>, Refusal> {
    if text.is_empty() {
        return Ok(None);
    }
    usage_code(text).map(Some)
}

/// The request id is the order id, from which the code is derived.
pub fn order_usage_code(
    request: &api::OrderUsageCodeRequest,
    order_id: Uuid,
) -> Result<Command, Refusal> {
    Ok(Command::OrderUsageCode(OrderUsageCode {
        order_id,
        enterprise_number: super::enterprise_number(&request.enterprise_number)?,
        provider_id: super::id("provider_id", &request.provider_id)?,
        module_id: if request.module_id.is_empty() {
            None
        } else {
            Some(super::id("module_id", &request.module_id)?)
        },
        voucher_type: super::voucher_type("voucher_type", request.voucher_type)?,
        hours: super::hours(&request.hours)?,
        period_from: super::ledger_date("period_from", &request.period_from)?,
        period_until: super::ledger_date("period_until", &request.period_until)?,
    }))
}

pub fn cancel_usage_code(request: &api::CancelUsageCodeRequest) -> Result<Command, Refusal> {
    Ok(Command::CancelUsageCode(CancelUsageCode {
        code: usage_code(&request.usage_code)?,
        enterprise_number: super::enterprise_number(&request.enterprise_number)?,
        reason: super::text("reason", &request.reason, REASON_BYTES_MAX)?,
    }))
}

pub fn status_to_proto(status: CodeStatus) -> api::UsageCodeStatus {
    match status {
        CodeStatus::Open => api::UsageCodeStatus::Open,
        CodeStatus::Used => api::UsageCodeStatus::Used,
        CodeStatus::Cancelled => api::UsageCodeStatus::Cancelled,
        CodeStatus::Lapsed => api::UsageCodeStatus::Lapsed,
    }
}

/// The status filter of a listing: `None` for every status.
pub fn status_filter(value: i32) -> Result<Option<CodeStatus>, Refusal> {
    match api::UsageCodeStatus::try_from(value) {
        Ok(api::UsageCodeStatus::Unspecified) => Ok(None),
        Ok(api::UsageCodeStatus::Open) => Ok(Some(CodeStatus::Open)),
        Ok(api::UsageCodeStatus::Used) => Ok(Some(CodeStatus::Used)),
        Ok(api::UsageCodeStatus::Cancelled) => Ok(Some(CodeStatus::Cancelled)),
        Ok(api::UsageCodeStatus::Lapsed) => Ok(Some(CodeStatus::Lapsed)),
        Err(_) => Err(Refusal::UnknownEnumValue { field: "status" }),
    }
}

fn view(code: &UsageCode, view: &CodeView, position: u64) -> api::UsageCodeView {
    api::UsageCodeView {
        code: code.to_string(),
        enterprise_number: view.enterprise_number.to_string(),
        provider_id: view.provider_id.to_string(),
        module_id: view
            .module_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        voucher_type: ledger_codec::voucher_type_to_proto(view.voucher_type) as i32,
        hours: view.hours,
        hours_filed: view.hours_filed,
        hours_left: view.hours_left,
        period_from: encode_date(view.period_from),
        period_until: encode_date(view.period_until),
        filing_until: encode_date(view.filing_until),
        ordered_on: encode_date(view.ordered_on),
        closed_on: view.closed_on.map(encode_date).unwrap_or_default(),
        status: status_to_proto(view.status) as i32,
        as_of_position: position,
    }
}

/// One code, with the code's view for the caller's permission check.
pub fn usage_code_view(
    projections: &Projections,
    code: &UsageCode,
) -> Result<(api::UsageCodeView, CodeView), Refusal> {
    let found = projections
        .usage_codes
        .codes
        .get(code)
        .ok_or(Refusal::UsageCodeNotFound)?;
    Ok((view(code, found, projections.position), found.clone()))
}

/// A company's codes, in the order of their text, optionally of one status.
pub fn usage_code_list(
    projections: &Projections,
    number: &EnterpriseNumber,
    status: Option<CodeStatus>,
) -> Result<api::UsageCodeList, Refusal> {
    if !projections.companies.contains_key(number) {
        return Err(Refusal::CompanyNotFound);
    }
    let codes = &projections.usage_codes;
    let listed = codes
        .by_company
        .get(number)
        .into_iter()
        .flatten()
        .filter_map(|code| codes.codes.get(code).map(|found| (code, found)))
        .filter(|(_, found)| status.is_none_or(|status| found.status == status))
        .map(|(code, found)| view(code, found, projections.position))
        .collect();
    Ok(api::UsageCodeList {
        enterprise_number: number.to_string(),
        codes: listed,
        reserved_hours: codes.reserved_hours.get(number).copied().unwrap_or(0),
        as_of_position: projections.position,
    })
}
