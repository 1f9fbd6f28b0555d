//! `voucher-ledger export`: the log as JSON Lines, or the yearly reports as CSV, from a stopped
//! ledger's folder or a backup. The output is deterministic: the same log gives the same bytes.
//!
//! JSON Lines: one event per line, in position order, the keys sorted: the envelope (`position`,
//! `stream`, `stream_version`, `event_id`, `request_id`, `principal`, `recorded_at`,
//! `business_date`), the payload under its proto field name (`"hours_redeemed": {…}`, as
//! `ledger_codec::json` writes it), `prev_hash` and `hash` (lowercase hex), and
//! `event_bytes_hex`, the exact protobuf bytes that were hashed. With those alone, anyone can
//! recompute the chain with SHA-256: `hash = SHA-256(prev_hash ‖ position as 8 bytes
//! big-endian ‖ event bytes)`.
//!
//! CSV: one table in long form, `report,year,breakdown,key,measure,value`, rebuilt from position
//! 1 up to `--to` (default the head): each year's budget (allocated, committed, spent,
//! released, available), companies (registered, holding, benefiting) in total, by size class
//! and by NACE division, workers trained, vouchers issued, and training hours in total and by
//! voucher type, provider, theme and sector. The keys and figures are those the report RPCs
//! answer.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use ledger_engine::Recovered;
use ledger_projections::{Projections, YearFigures};
use ledger_store::{Head, OfflineLog};
use serde_json::Value;

use super::OfflineError;
use crate::wire;

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per event and line.
    Jsonl,
    /// The yearly report tables, in one long CSV table.
    Csv,
}

/// What an export covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    pub format: ExportFormat,
    /// The first and last positions exported (JSON Lines), or 1 and the position the reports
    /// reflect (CSV); `last < first` when there was nothing to export.
    pub first_position: u64,
    pub last_position: u64,
    /// Lines written, the CSV header included.
    pub lines: u64,
    /// The head of the log.
    pub head: Head,
}

/// Exports the ledger in `data_dir` to `out`; see the module documentation. `from` and `to`
/// bound the positions (default: the whole log); `from` is refused for CSV, whose reports
/// always start at position 1.
pub fn export(
    data_dir: &Path,
    format: ExportFormat,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
) -> Result<ExportReport, OfflineError> {
    let log = OfflineLog::open(data_dir).map_err(|error| OfflineError::store(data_dir, error))?;
    export_log(&log, data_dir, format, from, to, out)
}

/// [`export`] of a log opened by the caller: a folder, or a PostgreSQL database (see
/// [`super::open_log`]).
pub fn export_log(
    log: &OfflineLog,
    data_dir: &Path,
    format: ExportFormat,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
) -> Result<ExportReport, OfflineError> {
    let head = log
        .stored_head()
        .map_err(|error| OfflineError::store(data_dir, error))?
        .unwrap_or(Head::EMPTY);
    let last_position = to.unwrap_or(head.position).min(head.position);
    match format {
        ExportFormat::Jsonl => {
            let first_position = from.unwrap_or(1).max(1);
            let mut lines = 0;
            for recorded in log.reader().iter(first_position, last_position) {
                let recorded = recorded.map_err(|error| OfflineError::store(data_dir, error))?;
                let mut line = ledger_codec::json::event(&recorded.event);
                if let Value::Object(object) = &mut line {
                    object.insert(
                        "prev_hash".to_owned(),
                        hex::encode(recorded.prev_hash).into(),
                    );
                    object.insert("hash".to_owned(), hex::encode(recorded.hash).into());
                    object.insert(
                        "event_bytes_hex".to_owned(),
                        hex::encode(&recorded.event_bytes).into(),
                    );
                }
                writeln!(out, "{line}")?;
                lines += 1;
            }
            out.flush()?;
            Ok(ExportReport {
                format,
                first_position,
                last_position,
                lines,
                head,
            })
        }
        ExportFormat::Csv => {
            if from.is_some_and(|from| from > 1) {
                return Err(OfflineError::CsvFrom);
            }
            let mut recovered = Recovered::default();
            let reader = log.reader();
            recovered
                .fold(&reader, reader.iter(1, last_position))
                .map_err(|error| match error {
                    ledger_engine::StartError::Store(error) => OfflineError::store(data_dir, error),
                    other => OfflineError::Replay(other),
                })?;
            let rows = report_rows(&recovered.projections);
            writeln!(out, "report,year,breakdown,key,measure,value")?;
            for row in &rows {
                writeln!(out, "{}", row.to_csv())?;
            }
            out.flush()?;
            Ok(ExportReport {
                format,
                first_position: 1,
                last_position,
                lines: rows.len() as u64 + 1,
                head,
            })
        }
    }
}

/// One figure of the yearly reports.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    report: &'static str,
    year: i32,
    breakdown: &'static str,
    key: String,
    measure: &'static str,
    value: String,
}

impl Row {
    fn to_csv(&self) -> String {
        [
            self.report.to_owned(),
            self.year.to_string(),
            self.breakdown.to_owned(),
            self.key.clone(),
            self.measure.to_owned(),
            self.value.clone(),
        ]
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Every figure of every year with a budget or any activity, years in order, each report's
/// rows in the order the report RPCs list them.
fn report_rows(projections: &Projections) -> Vec<Row> {
    let years: BTreeSet<i32> = projections
        .budgets
        .keys()
        .chain(projections.years.keys())
        .copied()
        .collect();
    let mut rows = Vec::new();
    for year in years {
        let mut row = |report, breakdown, key: &str, measure, value: String| {
            rows.push(Row {
                report,
                year,
                breakdown,
                key: key.to_owned(),
                measure,
                value,
            });
        };
        if let Ok(budget) = wire::budget(projections, year) {
            for (measure, value) in [
                ("allocated_eur", budget.allocated_eur),
                ("committed_eur", budget.committed_eur),
                ("spent_eur", budget.spent_eur),
                ("released_eur", budget.released_eur),
                ("available_eur", budget.available_eur),
            ] {
                row("budget", "total", "", measure, value);
            }
        }
        let companies = wire::companies(projections, year);
        let counted = companies
            .total
            .iter()
            .map(|counts| ("total", counts))
            .chain(
                companies
                    .by_size_class
                    .iter()
                    .map(|counts| ("size_class", counts)),
            )
            .chain(companies.by_sector.iter().map(|counts| ("sector", counts)));
        for (breakdown, counts) in counted {
            let key = if breakdown == "total" {
                ""
            } else {
                &counts.key
            };
            row(
                "companies",
                breakdown,
                key,
                "registered",
                counts.registered.to_string(),
            );
            row(
                "companies",
                breakdown,
                key,
                "holding",
                counts.holding.to_string(),
            );
            row(
                "companies",
                breakdown,
                key,
                "benefiting",
                counts.benefiting.to_string(),
            );
        }
        let empty = YearFigures::default();
        let figures = projections.years.get(&year).unwrap_or(&empty);
        row(
            "workers",
            "total",
            "",
            "trained",
            figures.workers.len().to_string(),
        );
        row(
            "vouchers",
            "total",
            "",
            "issued",
            figures.vouchers_issued.to_string(),
        );
        let hours = wire::training_hours(projections, year);
        row("hours", "total", "", "hours", hours.total.to_string());
        for (breakdown, counts) in [
            ("voucher_type", &hours.by_voucher_type),
            ("provider", &hours.by_provider),
            ("theme", &hours.by_theme),
            ("sector", &hours.by_sector),
        ] {
            for count in counts {
                row(
                    "hours",
                    breakdown,
                    &count.key,
                    "hours",
                    count.hours.to_string(),
                );
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("AG-0012"), "AG-0012");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn an_empty_ledger_has_no_report_rows() {
        assert!(report_rows(&Projections::default()).is_empty());
    }
}
