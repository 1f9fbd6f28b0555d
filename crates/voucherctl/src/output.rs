//! What voucherctl prints for an answer: a short readable summary, or with `--json` one JSON
//! object built by hand from the prost message.
//!
//! The JSON keeps the proto field names (snake_case) and enum value names
//! (`"VOUCHER_TYPE_GENERAL"`); numbers are JSON numbers, amounts stay decimal strings. An event
//! carries its envelope fields and one key named after its payload (`"vouchers_issued": {...}`),
//! as in the protobuf JSON mapping of a `oneof`. The readable form names enum values as the
//! command line does (`general`, `eco-climate`). Answers never hold a national register number:
//! the server keeps only a pseudonym, which the readable form does not show either.

use ledger_json::json;
use ledger_proto::event::v1 as event;
use ledger_proto::event::v1::event::Payload;
use ledger_proto::v1 as api;
use serde_json::{json, Value};

/// A successful answer of the server.
#[derive(Debug)]
pub enum Answer {
    Write(api::WriteResponse),
    Wallet(api::Wallet),
    Statement(api::Statement),
    Budget(api::Budget),
    YearSummary(api::YearSummary),
    Companies(api::CompaniesReport),
    TrainingHours(api::TrainingHours),
    TrialBalance(api::TrialBalance),
    /// The events of one `ReadEvents` page, in position order.
    Events(Vec<api::AuditEvent>),
    Head(api::Head),
    Backup(api::BackupResponse),
    /// A page (or every page) of a `QueryService` list.
    List(crate::queries::ListAnswer),
    /// A subscription that ended as asked, its messages already printed as they came.
    Done,
    UsageCodeOrdered(api::OrderUsageCodeResponse),
    UsageCode(api::UsageCodeView),
    UsageCodes(api::UsageCodeList),
}

/// The readable form of an answer, lines ending with a line break. It holds no control
/// character but those line breaks (see [`terminal_safe`]).
pub fn human(answer: &Answer) -> String {
    terminal_safe(&match answer {
        Answer::Write(response) => human_write(response),
        Answer::Wallet(wallet) => human_wallet(wallet),
        Answer::Statement(statement) => human_statement(statement),
        Answer::Budget(budget) => human_budget(budget),
        Answer::YearSummary(summary) => human_year_summary(summary),
        Answer::Companies(report) => human_companies(report),
        Answer::TrainingHours(report) => human_training_hours(report),
        Answer::TrialBalance(report) => human_trial_balance(report),
        Answer::Events(events) => human_events(events),
        Answer::Head(head) => format!(
            "head of the log: position {}, hash {}\n",
            head.position, head.hash
        ),
        Answer::Backup(backup) => human_backup(backup),
        Answer::List(list) => crate::queries::human(list),
        Answer::Done => String::new(),
        Answer::UsageCodeOrdered(answer) => crate::usage_code::human_ordered(
            answer,
            answer.write.as_ref().map(human_write).unwrap_or_default(),
        ),
        Answer::UsageCode(view) => crate::usage_code::human_view(view),
        Answer::UsageCodes(list) => crate::usage_code::human_list(list),
    })
}

/// `text` made harmless for a terminal: every control character except the line break (C0,
/// DEL and C1: an ESC that would clear the screen, a CR that would overwrite a line, a BEL)
/// is shown as an escape, `\x1b` or `\u{85}`. The server refuses control characters in new
/// text, but events written before it did may hold them, and the log is never rewritten.
pub fn terminal_safe(text: &str) -> String {
    escape_controls(text, true)
}

/// A value from the ledger shown inside a line: every control character escaped, line breaks
/// included, so that a stored name or reason can neither reach the terminal nor forge a line.
pub fn one_line(text: &str) -> String {
    escape_controls(text, false)
}

fn escape_controls(text: &str, keep_line_breaks: bool) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\n' if keep_line_breaks => shown.push('\n'),
            control if control.is_control() && u32::from(control) < 0x80 => {
                shown.push_str(&format!("\\x{:02x}", u32::from(control)));
            }
            control if control.is_control() => {
                shown.push_str(&format!("\\u{{{:x}}}", u32::from(control)));
            }
            other => shown.push(other),
        }
    }
    shown
}

/// Rows under a header, each column as wide as its widest cell by display width (comfy-table
/// counts a wide character as two columns and a combining accent as none, where `format!`'s
/// padding counts characters), two spaces apart, numbers right-aligned in the columns of
/// `right_aligned`. No borders, no trailing spaces, no wrapping: the same text to a terminal, a
/// pipe or a file. The cells are shown as given: escape what came from the ledger first.
pub fn table(header: &[&str], rows: Vec<Vec<String>>, right_aligned: &[usize]) -> String {
    use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    let last = header.len().saturating_sub(1);
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index == last { 0 } else { 2 }));
        if right_aligned.contains(&index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text = String::new();
    for line in table.lines() {
        let line = line.trim_end();
        if !line.is_empty() {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The `--json` form of an answer.
pub fn json(answer: &Answer) -> Value {
    match answer {
        Answer::Write(response) => {
            let mut value = json!({
                "receipt": response.receipt.as_ref().map(json_receipt),
                "events": response.events.iter().map(json::event).collect::<Vec<_>>(),
            });
            if let (Some(expiry), Some(object)) = (&response.expiry, value.as_object_mut()) {
                object.insert(
                    "expiry".to_owned(),
                    json!({
                        "batches_expired": expiry.batches_expired,
                        "more_due": expiry.more_due,
                    }),
                );
            }
            value
        }
        Answer::Wallet(wallet) => json_wallet(wallet),
        Answer::UsageCodeOrdered(answer) => json!({
            "code": answer.code,
            "filing_until": answer.filing_until,
            "receipt": answer.write.as_ref().and_then(|write| write.receipt.as_ref()).map(json_receipt),
            "events": answer.write.iter().flat_map(|write| write.events.iter()).map(json::event).collect::<Vec<_>>(),
        }),
        Answer::UsageCode(view) => crate::usage_code::json_view(view),
        Answer::UsageCodes(list) => crate::usage_code::json_list(list),
        Answer::Statement(statement) => json!({
            "provider_id": statement.provider_id,
            "name": statement.name,
            "redeemed_hours": statement.redeemed_hours,
            "owed_eur": statement.owed_eur,
            "paid_eur": statement.paid_eur,
            "as_of_position": statement.as_of_position,
        }),
        Answer::Budget(budget) => json_budget(budget),
        Answer::YearSummary(summary) => json!({
            "year": summary.year,
            "companies_registered": summary.companies_registered,
            "companies_holding_vouchers": summary.companies_holding_vouchers,
            "companies_benefiting": summary.companies_benefiting,
            "workers_trained": summary.workers_trained,
            "hours_trained": summary.hours_trained,
            "vouchers_issued": summary.vouchers_issued,
            "budget": summary.budget.as_ref().map(json_budget),
            "as_of_position": summary.as_of_position,
        }),
        Answer::Companies(report) => json!({
            "year": report.year,
            "total": report.total.as_ref().map(json_company_counts),
            "by_size_class": report.by_size_class.iter().map(json_company_counts).collect::<Vec<_>>(),
            "by_sector": report.by_sector.iter().map(json_company_counts).collect::<Vec<_>>(),
            "as_of_position": report.as_of_position,
        }),
        Answer::TrainingHours(report) => json!({
            "year": report.year,
            "total": report.total,
            "by_voucher_type": json_hours(&report.by_voucher_type),
            "by_provider": json_hours(&report.by_provider),
            "by_theme": json_hours(&report.by_theme),
            "by_sector": json_hours(&report.by_sector),
            "as_of_position": report.as_of_position,
        }),
        Answer::TrialBalance(report) => json!({
            "accounts": report.accounts.iter().map(|account| json!({
                "account": account.account,
                "balance_eur": account.balance_eur,
            })).collect::<Vec<_>>(),
            "total_eur": report.total_eur,
            "as_of_position": report.as_of_position,
        }),
        Answer::Events(events) => json!({
            "events": events.iter().map(json_audit_event).collect::<Vec<_>>(),
        }),
        Answer::Head(head) => json_head(head),
        Answer::Backup(backup) => json!({
            "target_dir": backup.target_dir,
            "head": backup.head.as_ref().map(json_head),
            "records": backup.records,
            "bytes": backup.bytes,
        }),
        Answer::List(list) => crate::queries::json(list),
        Answer::Done => Value::Null,
    }
}

fn json_audit_event(audit_event: &api::AuditEvent) -> Value {
    json!({
        "event": audit_event.event.as_ref().map(json::event),
        "prev_hash": audit_event.prev_hash,
        "hash": audit_event.hash,
    })
}

/// One message of a subscription, as `voucherctl subscribe` prints it: in the readable form an
/// event is one line (as `events` prints it) and a heartbeat is `None` (voucherctl tells it on
/// stderr); with `--json`, one JSON object per line, `{"event": …}` or `{"heartbeat": …}`.
pub fn subscription_line(message: &api::SubscribeResponse, as_json: bool) -> Option<String> {
    use api::subscribe_response::Message;
    match (&message.message, as_json) {
        (Some(Message::Event(audit_event)), false) => Some(terminal_safe(&event_line(audit_event))),
        (Some(Message::Event(audit_event)), true) => {
            Some(format!("{}\n", json_audit_event(audit_event)))
        }
        (Some(Message::Heartbeat(heartbeat)), true) => Some(format!(
            "{}\n",
            json!({ "heartbeat": {
                "head": heartbeat.head.as_ref().map(json_head),
                "next_position": heartbeat.next_position,
            }})
        )),
        (Some(Message::Heartbeat(_)), false) | (None, _) => None,
    }
}

fn human_backup(backup: &api::BackupResponse) -> String {
    let head = backup.head.clone().unwrap_or_default();
    format!(
        "backup written to {} on the server's machine: {} records, {} bytes\nhead of the backup: position {}, hash {}\n",
        one_line(&backup.target_dir), backup.records, backup.bytes, head.position, head.hash
    )
}

// ---- readable form ----

fn human_write(response: &api::WriteResponse) -> String {
    let mut text = String::new();
    for recorded in &response.events {
        text.push_str(&format!(
            "{} at position {}\n",
            event_summary(recorded),
            recorded.position
        ));
    }
    match &response.receipt {
        Some(receipt) => text.push_str(&receipt_line(receipt)),
        None => text.push_str("the server answered without a receipt\n"),
    }
    if let Some(expiry) = &response.expiry {
        text.push_str(&format!(
            "expiry run: {} batches expired; {}\n",
            expiry.batches_expired,
            if expiry.more_due {
                "more are due as of that date: run it again with a new request id"
            } else {
                "none left due as of that date"
            }
        ));
    }
    text
}

fn receipt_line(receipt: &api::Receipt) -> String {
    let first = receipt.first_position;
    let written = match receipt.event_count {
        0 => "no event".to_owned(),
        1 => format!("1 event at position {first}"),
        count => format!(
            "{count} events at positions {first}-{}",
            first + u64::from(count) - 1
        ),
    };
    let replayed = if receipt.replayed {
        "yes, an earlier request with this id was answered again and nothing was written now"
    } else {
        "no"
    };
    format!(
        "receipt: request {}, {written}, recorded {}, replayed {replayed}\n",
        receipt.request_id, receipt.recorded_at
    )
}

/// One line saying what an event records.
pub fn event_summary(recorded: &event::Event) -> String {
    let Some(payload) = &recorded.payload else {
        return format!(
            "event {} on {} (unknown payload)",
            recorded.event_id, recorded.stream
        );
    };
    match payload {
        Payload::UsageCodeOrdered(ordered) => format!(
            "ordered usage code {} of {} for provider {}: {} {} hours from {} to {}, filing until {}",
            one_line(&ordered.code),
            ordered.enterprise_number,
            one_line(&ordered.provider_id),
            ordered.hours,
            voucher_type_name(ordered.voucher_type),
            ordered.period_from,
            ordered.period_until,
            ordered.filing_until
        ),
        Payload::UsageCodeCancelled(cancelled) => format!(
            "cancelled usage code {} of {}: {} hours back to the wallet ({})",
            one_line(&cancelled.code),
            cancelled.enterprise_number,
            cancelled.returned.iter().map(|draw| draw.quantity).sum::<u32>(),
            one_line(&cancelled.reason)
        ),
        Payload::UsageCodeLapsed(lapsed) => format!(
            "usage code {} of {} lapsed on {}: {} hours back to the wallet",
            one_line(&lapsed.code),
            lapsed.enterprise_number,
            lapsed.lapsed_on,
            lapsed.returned.iter().map(|draw| draw.quantity).sum::<u32>()
        ),
        Payload::BudgetOpened(opened) => format!(
            "opened budget {} with EUR {}",
            opened.year, opened.allocated_eur
        ),
        Payload::BudgetAdjusted(adjusted) => format!(
            "adjusted budget {} from EUR {} to EUR {} ({})",
            adjusted.year,
            adjusted.previous_allocated_eur,
            adjusted.allocated_eur,
            one_line(&adjusted.reason)
        ),
        Payload::ProviderApproved(approved) => format!(
            "approved provider {} ({}) {}",
            approved.provider_id,
            one_line(&approved.name),
            period(&approved.approved_from, &approved.approved_until)
        ),
        Payload::ProviderWithdrawn(withdrawn) => format!(
            "withdrew provider {} from {} ({})",
            withdrawn.provider_id,
            withdrawn.withdrawn_from,
            one_line(&withdrawn.reason)
        ),
        Payload::ModuleApproved(approved) => format!(
            "approved module {} of {} ({}): at most {} hours; {} vouchers; themes {}; {}",
            approved.module_id,
            approved.provider_id,
            one_line(&approved.title),
            approved.hours_max,
            approved
                .accepted_voucher_types
                .iter()
                .map(|value| voucher_type_name(*value))
                .collect::<Vec<_>>()
                .join(", "),
            approved
                .themes
                .iter()
                .map(|value| theme_name(*value))
                .collect::<Vec<_>>()
                .join(", "),
            period(&approved.approved_from, &approved.approved_until)
        ),
        Payload::ModuleWithdrawn(withdrawn) => format!(
            "withdrew module {} of {} from {} ({})",
            withdrawn.module_id,
            withdrawn.provider_id,
            withdrawn.withdrawn_from,
            one_line(&withdrawn.reason)
        ),
        Payload::CompanyRegistered(registered) => format!(
            "registered {} ({}) for {}: size class {}, sector {}",
            registered.enterprise_number,
            one_line(&registered.name),
            registered.year,
            size_class_name(registered.size_class),
            one_line(&registered.nace_sector)
        ),
        Payload::VouchersIssued(issued) => format!(
            "issued {} {} vouchers to {} (batch {}, valid until {}; {} of {} issued in {})",
            issued.quantity,
            voucher_type_name(issued.voucher_type),
            issued.enterprise_number,
            issued.batch_id,
            issued.valid_until,
            issued.issued_in_year,
            issued.quota,
            issued.budget_year
        ),
        Payload::HoursRedeemed(redeemed) => format!(
            "redeemed {} hours of {} vouchers of {} for {} module {} on {} (redemption {}, EUR {} owed)",
            redeemed.hours,
            voucher_type_name(redeemed.voucher_type),
            redeemed.enterprise_number,
            redeemed.provider_id,
            redeemed.module_id,
            redeemed.training_date,
            redeemed.redemption_id,
            redeemed.amount_owed_eur
        ),
        Payload::RedemptionReversed(reversed) => format!(
            "reversed redemption {} of {} for {} on {}: {} vouchers back, EUR {} ({})",
            reversed.redemption_id,
            reversed.provider_id,
            reversed.enterprise_number,
            reversed.reversed_on,
            reversed
                .returned
                .iter()
                .map(|draw| u64::from(draw.quantity))
                .sum::<u64>(),
            reversed.amount_eur,
            one_line(&reversed.reason)
        ),
        Payload::VouchersExpired(expired) => format!(
            "expired {} {} vouchers of {} (batch {}, valid until {}; EUR {} released to budget {}{})",
            expired.quantity,
            voucher_type_name(expired.voucher_type),
            expired.enterprise_number,
            expired.batch_id,
            expired.valid_until,
            expired.region_share_released_eur,
            expired.budget_year,
            if expired.employer_share_refunded {
                format!(", EUR {} refunded to the company", expired.employer_share_eur)
            } else {
                String::new()
            }
        ),
        Payload::PayoutRecorded(payout) => format!(
            "recorded a payout of EUR {} to {} on {}{}",
            payout.amount_eur,
            payout.provider_id,
            payout.payout_date,
            reference(&payout.payout_reference)
        ),
    }
}

fn period(from: &str, until: &str) -> String {
    if until.is_empty() {
        format!("from {from}")
    } else {
        format!("from {from} until {until}")
    }
}

fn reference(reference: &str) -> String {
    if reference.is_empty() {
        String::new()
    } else {
        format!(" (reference {})", one_line(reference))
    }
}

fn human_wallet(wallet: &api::Wallet) -> String {
    let years = if wallet.registered_years.is_empty() {
        "not registered".to_owned()
    } else {
        format!(
            "registered for {}",
            wallet
                .registered_years
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut text = format!(
        "wallet of {} at position {}, {years}\n",
        wallet.enterprise_number, wallet.as_of_position
    );
    let balances = wallet
        .balances
        .iter()
        .map(|balance| {
            format!(
                "{} {}",
                balance.vouchers,
                voucher_type_name(balance.voucher_type)
            )
        })
        .collect::<Vec<_>>();
    if balances.is_empty() {
        text.push_str("balance: no vouchers\n");
    } else {
        text.push_str(&format!("balance: {}\n", balances.join(", ")));
    }
    if !wallet.batches.is_empty() {
        let rows = wallet
            .batches
            .iter()
            .map(|batch| {
                vec![
                    one_line(&batch.batch_id),
                    voucher_type_name(batch.voucher_type),
                    batch.quantity.to_string(),
                    batch.remaining.to_string(),
                    one_line(&batch.payment_date),
                    one_line(&batch.valid_until),
                    batch.budget_year.to_string(),
                ]
            })
            .collect();
        text.push_str(&table(
            &[
                "batch",
                "type",
                "quantity",
                "remaining",
                "paid-on",
                "valid-until",
                "budget-year",
            ],
            rows,
            &[2, 3],
        ));
    }
    text
}

fn human_statement(statement: &api::Statement) -> String {
    format!(
        "provider {} ({}) at position {}: {} hours redeemed, EUR {} owed, EUR {} paid\n",
        statement.provider_id,
        one_line(&statement.name),
        statement.as_of_position,
        statement.redeemed_hours,
        statement.owed_eur,
        statement.paid_eur
    )
}

fn budget_lines(budget: &api::Budget) -> String {
    format!(
        "  allocated  EUR {}\n  committed  EUR {}\n  spent      EUR {}\n  released   EUR {}\n  available  EUR {}\n",
        budget.allocated_eur,
        budget.committed_eur,
        budget.spent_eur,
        budget.released_eur,
        budget.available_eur
    )
}

fn human_budget(budget: &api::Budget) -> String {
    format!(
        "budget {} at position {}\n{}",
        budget.year,
        budget.as_of_position,
        budget_lines(budget)
    )
}

fn json_company_counts(counts: &api::CompanyCounts) -> Value {
    json!({
        "key": counts.key,
        "registered": counts.registered,
        "holding": counts.holding,
        "benefiting": counts.benefiting,
    })
}

fn json_hours(counts: &[api::HoursCount]) -> Value {
    Value::Array(
        counts
            .iter()
            .map(|count| json!({ "key": count.key, "hours": count.hours }))
            .collect(),
    )
}

fn human_companies(report: &api::CompaniesReport) -> String {
    let mut text = format!(
        "companies of {} at position {}\n",
        report.year, report.as_of_position
    );
    let row = |breakdown: &str, key: String, counts: &api::CompanyCounts| {
        vec![
            breakdown.to_owned(),
            key,
            counts.registered.to_string(),
            counts.holding.to_string(),
            counts.benefiting.to_string(),
        ]
    };
    let mut rows = Vec::new();
    if let Some(total) = &report.total {
        rows.push(row("all", kebab_key(&total.key), total));
    }
    for counts in &report.by_size_class {
        rows.push(row("size-class", kebab_key(&counts.key), counts));
    }
    for counts in &report.by_sector {
        rows.push(row("sector", one_line(&counts.key), counts));
    }
    text.push_str(&table(
        &["breakdown", "key", "registered", "holding", "benefiting"],
        rows,
        &[2, 3, 4],
    ));
    text
}

fn human_training_hours(report: &api::TrainingHours) -> String {
    let mut text = format!(
        "training hours of {} at position {}: {} in all (a module with several themes counts under each)\n",
        report.year, report.as_of_position, report.total
    );
    let mut rows = Vec::new();
    let sections: [(&str, &[api::HoursCount], bool); 4] = [
        ("voucher-type", &report.by_voucher_type, true),
        ("provider", &report.by_provider, false),
        ("theme", &report.by_theme, true),
        ("sector", &report.by_sector, false),
    ];
    for (breakdown, counts, names) in sections {
        for count in counts {
            // Voucher types and themes are names (shown in kebab-case, as the command line
            // takes them); provider ids and NACE divisions are shown as they are.
            let key = if names {
                kebab_key(&count.key)
            } else {
                one_line(&count.key)
            };
            rows.push(vec![breakdown.to_owned(), key, count.hours.to_string()]);
        }
    }
    text.push_str(&table(&["breakdown", "key", "hours"], rows, &[2]));
    text
}

fn human_trial_balance(report: &api::TrialBalance) -> String {
    let mut text = format!("trial balance at position {}\n", report.as_of_position);
    let mut rows: Vec<Vec<String>> = report
        .accounts
        .iter()
        .map(|account| vec![kebab_key(&account.account), one_line(&account.balance_eur)])
        .collect();
    rows.push(vec!["total".to_owned(), one_line(&report.total_eur)]);
    text.push_str(&table(&["account", "balance-eur"], rows, &[1]));
    text
}

/// A name the server sends in snake_case (`eco_climate`, `fte_2_to_50`,
/// `provider_payable/AG-0012`) in the kebab-case of every readable output; the part after a
/// `/` (an id or a year) is kept as it is.
fn kebab_key(key: &str) -> String {
    let (name, rest) = match key.split_once('/') {
        Some((name, rest)) => (name, Some(rest)),
        None => (key, None),
    };
    let mut shown = one_line(name).replace('_', "-");
    if let Some(rest) = rest {
        shown.push('/');
        shown.push_str(&one_line(rest));
    }
    shown
}

fn human_year_summary(summary: &api::YearSummary) -> String {
    let mut text = format!(
        "year {} at position {}\n  companies registered        {}\n  companies holding vouchers  {}\n  companies benefiting        {}\n  workers trained             {}\n  hours trained               {}\n  vouchers issued             {}\n",
        summary.year,
        summary.as_of_position,
        summary.companies_registered,
        summary.companies_holding_vouchers,
        summary.companies_benefiting,
        summary.workers_trained,
        summary.hours_trained,
        summary.vouchers_issued
    );
    if let Some(budget) = &summary.budget {
        text.push_str(&format!("budget {}\n{}", budget.year, budget_lines(budget)));
    }
    text
}

/// How many hex digits of a chain hash the readable event list shows; the full hash is in the
/// head line and in `--json`.
const HASH_PREFIX_LEN: usize = 16;

fn human_events(events: &[api::AuditEvent]) -> String {
    let rows: Vec<Vec<String>> = events.iter().filter_map(event_row).collect();
    let mut text = String::new();
    match events.last().and_then(|last| last.event.as_ref()) {
        Some(last) => {
            text.push_str(&table(
                &["position", "hash", "recorded-at", "principal", "event"],
                rows,
                &[0],
            ));
            text.push_str(&format!(
                "{} events; the next page starts at position {}\n",
                events.len(),
                last.position + 1
            ));
        }
        None => text.push_str("no events from this position\n"),
    }
    text
}

/// One event of a subscription, printed as it comes: the columns of [`human_events`] with
/// fixed widths, since a table's widths are known only once every row is.
fn event_line(audit_event: &api::AuditEvent) -> String {
    match event_row(audit_event) {
        Some(cells) => format!(
            "{:>8}  {:<16}  {:<27}  {:<16}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4]
        ),
        None => String::new(),
    }
}

/// Position, the first hex digits of the chain hash, time recorded, principal, what happened.
fn event_row(audit_event: &api::AuditEvent) -> Option<Vec<String>> {
    let recorded = audit_event.event.as_ref()?;
    let hash_prefix = audit_event
        .hash
        .get(..HASH_PREFIX_LEN)
        .unwrap_or(&audit_event.hash);
    Some(vec![
        recorded.position.to_string(),
        one_line(hash_prefix),
        one_line(&recorded.recorded_at),
        one_line(&recorded.principal),
        one_line(&event_summary(recorded)),
    ])
}

/// The command-line name of an enum value: `VOUCHER_TYPE_ECO_CLIMATE` becomes `eco-climate`.
fn kebab_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn voucher_type_name(value: i32) -> String {
    match event::VoucherType::try_from(value) {
        Ok(known) => kebab_name(known.as_str_name(), "VOUCHER_TYPE_"),
        Err(_) => format!("voucher-type-{value}"),
    }
}

fn theme_name(value: i32) -> String {
    match event::Theme::try_from(value) {
        Ok(known) => kebab_name(known.as_str_name(), "THEME_"),
        Err(_) => format!("theme-{value}"),
    }
}

fn size_class_name(value: i32) -> String {
    match event::SizeClass::try_from(value) {
        Ok(known) => kebab_name(known.as_str_name(), "SIZE_CLASS_"),
        Err(_) => format!("size-class-{value}"),
    }
}

// ---- JSON form ----

fn json_receipt(receipt: &api::Receipt) -> Value {
    json!({
        "request_id": receipt.request_id,
        "first_position": receipt.first_position,
        "event_count": receipt.event_count,
        "recorded_at": receipt.recorded_at,
        "replayed": receipt.replayed,
    })
}

fn json_head(head: &api::Head) -> Value {
    json!({ "position": head.position, "hash": head.hash })
}

fn json_budget(budget: &api::Budget) -> Value {
    json!({
        "year": budget.year,
        "allocated_eur": budget.allocated_eur,
        "committed_eur": budget.committed_eur,
        "spent_eur": budget.spent_eur,
        "released_eur": budget.released_eur,
        "available_eur": budget.available_eur,
        "as_of_position": budget.as_of_position,
    })
}

fn json_wallet(wallet: &api::Wallet) -> Value {
    json!({
        "enterprise_number": wallet.enterprise_number,
        "registered_years": wallet.registered_years,
        "balances": wallet.balances.iter().map(|balance| json!({
            "voucher_type": json::voucher_type(balance.voucher_type),
            "vouchers": balance.vouchers,
            "reserved": balance.reserved,
        })).collect::<Vec<_>>(),
        "batches": wallet.batches.iter().map(|batch| json!({
            "batch_id": batch.batch_id,
            "voucher_type": json::voucher_type(batch.voucher_type),
            "quantity": batch.quantity,
            "remaining": batch.remaining,
            "payment_date": batch.payment_date,
            "valid_until": batch.valid_until,
            "budget_year": batch.budget_year,
            "earmarked": batch.earmarked,
        })).collect::<Vec<_>>(),
        "as_of_position": wallet.as_of_position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued_event() -> event::Event {
        event::Event {
            position: 5,
            stream: "company/0403019261".to_owned(),
            stream_version: 2,
            event_id: "e5".to_owned(),
            request_id: "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30".to_owned(),
            principal: "operator".to_owned(),
            recorded_at: "2026-11-22T10:00:00Z".to_owned(),
            business_date: "2025-03-10".to_owned(),
            payload: Some(Payload::VouchersIssued(event::VouchersIssued {
                enterprise_number: "0403019261".to_owned(),
                batch_id: "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30".to_owned(),
                voucher_type: event::VoucherType::General as i32,
                quantity: 10,
                payment_date: "2025-03-10".to_owned(),
                payment_reference: String::new(),
                paid_amount_eur: "150.00".to_owned(),
                face_value_eur: "30.00".to_owned(),
                employer_share_eur: "15.00".to_owned(),
                region_share_eur: "15.00".to_owned(),
                budget_year: 2025,
                valid_until: "2026-02-28".to_owned(),
                quota: 400,
                issued_in_year: 10,
                postings: vec![event::Posting {
                    account: "vouchers_outstanding".to_owned(),
                    side: event::Side::Credit as i32,
                    amount_eur: "300.00".to_owned(),
                }],
            })),
        }
    }

    fn issued_response(replayed: bool) -> Answer {
        Answer::Write(api::WriteResponse {
            receipt: Some(api::Receipt {
                request_id: "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30".to_owned(),
                first_position: 5,
                event_count: 1,
                recorded_at: "2026-11-22T10:00:00Z".to_owned(),
                replayed,
            }),
            events: vec![issued_event()],
            expiry: None,
        })
    }

    #[test]
    fn a_write_prints_one_line_per_event_and_the_receipt() {
        assert_eq!(
            human(&issued_response(false)),
            "issued 10 general vouchers to 0403019261 (batch 6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30, \
             valid until 2026-02-28; 10 of 400 issued in 2025) at position 5\n\
             receipt: request 6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30, 1 event at position 5, \
             recorded 2026-11-22T10:00:00Z, replayed no\n"
        );
        assert!(human(&issued_response(true)).contains("replayed yes"));
    }

    #[test]
    fn a_write_with_no_event_says_so() {
        let answer = Answer::Write(api::WriteResponse {
            receipt: Some(api::Receipt {
                request_id: "r".to_owned(),
                first_position: 9,
                event_count: 0,
                recorded_at: "t".to_owned(),
                replayed: false,
            }),
            events: Vec::new(),
            expiry: None,
        });
        assert_eq!(
            human(&answer),
            "receipt: request r, no event, recorded t, replayed no\n"
        );
    }

    #[test]
    fn an_expiry_run_says_how_many_it_expired_and_whether_more_are_due() {
        let run = |more_due| {
            Answer::Write(api::WriteResponse {
                receipt: None,
                events: Vec::new(),
                expiry: Some(api::ExpiryRun {
                    batches_expired: 10_000,
                    more_due,
                }),
            })
        };
        assert!(human(&run(true)).contains("10000 batches expired; more are due"));
        assert!(human(&run(false)).contains("none left due"));
        assert_eq!(json(&run(true))["expiry"]["more_due"], true);
        assert_eq!(json(&run(false))["expiry"]["batches_expired"], 10_000);
    }

    #[test]
    fn a_write_in_json_keeps_proto_names() {
        let value = json(&issued_response(false));
        assert_eq!(value["receipt"]["first_position"], 5);
        assert_eq!(value["receipt"]["replayed"], false);
        let issued = &value["events"][0]["vouchers_issued"];
        assert_eq!(issued["voucher_type"], "VOUCHER_TYPE_GENERAL");
        assert_eq!(issued["paid_amount_eur"], "150.00");
        assert_eq!(issued["postings"][0]["side"], "SIDE_CREDIT");
        assert_eq!(value["events"][0]["stream"], "company/0403019261");
    }

    #[test]
    fn an_unknown_enum_value_is_shown_as_its_number() {
        assert_eq!(json::voucher_type(42), Value::from(42));
        assert_eq!(voucher_type_name(42), "voucher-type-42");
        assert_eq!(
            voucher_type_name(event::VoucherType::EcoClimate as i32),
            "eco-climate"
        );
    }

    #[test]
    fn a_wallet_is_a_small_table() {
        let wallet = Answer::Wallet(api::Wallet {
            enterprise_number: "0403019261".to_owned(),
            registered_years: vec![2025],
            balances: vec![api::WalletBalance {
                voucher_type: event::VoucherType::General as i32,
                vouchers: 7,
                reserved: 0,
            }],
            batches: vec![api::WalletBatch {
                batch_id: "6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30".to_owned(),
                voucher_type: event::VoucherType::General as i32,
                quantity: 10,
                remaining: 7,
                payment_date: "2025-03-10".to_owned(),
                valid_until: "2026-02-28".to_owned(),
                budget_year: 2025,
                earmarked: 0,
            }],
            as_of_position: 6,
        });
        assert_eq!(
            human(&wallet),
            "wallet of 0403019261 at position 6, registered for 2025\n\
             balance: 7 general\n\
             batch                                 type     quantity  remaining  paid-on     valid-until  budget-year\n\
             6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e30  general        10          7  2025-03-10  2026-02-28   2025\n"
        );
        let value = json(&wallet);
        assert_eq!(value["balances"][0]["vouchers"], 7);
        assert_eq!(value["batches"][0]["remaining"], 7);
    }

    #[test]
    fn a_redemption_never_shows_the_pseudonym_in_the_readable_form() {
        let redeemed = event::Event {
            position: 6,
            payload: Some(Payload::HoursRedeemed(event::HoursRedeemed {
                redemption_id: "r1".to_owned(),
                provider_id: "AG-0012".to_owned(),
                module_id: "M-1".to_owned(),
                enterprise_number: "0403019261".to_owned(),
                worker_pseudonym: "ab12cd34".to_owned(),
                trainee_status: event::TraineeStatus::Employee as i32,
                voucher_type: event::VoucherType::General as i32,
                hours: 3,
                training_date: "2025-06-01".to_owned(),
                draws: Vec::new(),
                amount_owed_eur: "90.00".to_owned(),
                postings: Vec::new(),
                usage_code: String::new(),
            })),
            ..event::Event::default()
        };
        let summary = event_summary(&redeemed);
        assert_eq!(
            summary,
            "redeemed 3 hours of general vouchers of 0403019261 for AG-0012 module M-1 on \
             2025-06-01 (redemption r1, EUR 90.00 owed)"
        );
        assert!(!summary.contains("ab12cd34"));
    }

    #[test]
    fn control_characters_from_the_ledger_are_escaped_in_the_readable_form() {
        let approved = event::Event {
            position: 1,
            payload: Some(Payload::ProviderApproved(event::ProviderApproved {
                provider_id: "AG-0012".to_owned(),
                name: "Meuse\u{1b}[2J\rforged\nreceipt: replayed yes\u{7}\u{85}".to_owned(),
                approved_from: "2025-01-01".to_owned(),
                approved_until: String::new(),
            })),
            ..event::Event::default()
        };
        let text = human(&Answer::Events(vec![api::AuditEvent {
            event: Some(approved),
            hash: "ab".repeat(32),
            prev_hash: String::new(),
        }]));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(
            text.lines().count(),
            3,
            "a header, the event, the page: {text}"
        );
        assert!(
            text.contains("Meuse\\x1b[2J\\x0dforged\\x0areceipt: replayed yes\\x07\\u{85}"),
            "{text}"
        );
    }

    #[test]
    fn tables_align_by_display_width_and_names_are_kebab_case() {
        let text = table(
            &["provider", "hours"],
            vec![
                vec!["Meuse Numérique".to_owned(), "7".to_owned()],
                vec!["東京研修".to_owned(), "12".to_owned()],
                vec!["AG-0012".to_owned(), "1500".to_owned()],
            ],
            &[1],
        );
        assert_eq!(
            text,
            "provider         hours\n\
             Meuse Numérique      7\n\
             東京研修            12\n\
             AG-0012           1500\n"
        );
        assert_eq!(kebab_key("eco_climate"), "eco-climate");
        assert_eq!(kebab_key("fte_2_to_50"), "fte-2-to-50");
        assert_eq!(
            kebab_key("provider_payable/AG_0012"),
            "provider-payable/AG_0012",
            "an id after the slash is kept"
        );
        let balance = human(&Answer::TrialBalance(api::TrialBalance {
            accounts: vec![api::AccountBalance {
                account: "vouchers_outstanding".to_owned(),
                balance_eur: "-300.00".to_owned(),
            }],
            total_eur: "0.00".to_owned(),
            as_of_position: 5,
        }));
        assert!(balance.contains("vouchers-outstanding"), "{balance}");
        assert!(!balance.contains('_'), "{balance}");
    }

    #[test]
    fn head_in_json_has_position_and_hash() {
        let value = json(&Answer::Head(api::Head {
            position: 6,
            hash: "ab".repeat(32),
        }));
        assert_eq!(value, json!({ "position": 6, "hash": "ab".repeat(32) }));
    }
}
