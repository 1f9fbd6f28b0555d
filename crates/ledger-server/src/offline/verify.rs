//! `voucher-ledger verify`: everything an auditor can check from the folder alone, in one pass
//! over the log, stopping at the first bad position.
//!
//! - the chain: positions 1, 2, 3, … without a gap, every hash recomputed over the exact bytes,
//!   each event at the position of its key, and the head record naming the last event;
//! - every event decodes, each stream's versions run 1, 2, 3, …, every event's postings
//!   balance, every event fits the state and the projections (so the trial balance is zero);
//! - what every event means (`meaning`): a redemption's hours equal its draws, its amount the
//!   draws at their batches' face value, and it draws only from batches of the company, of its
//!   voucher type, that hold the vouchers; a reversal gives back exactly what its redemption
//!   drew; an issuance was paid the employer's share; after every event no budget uses more
//!   than its allocation and no provider is owed a negative amount;
//! - the stored checkpoint: the log still has its hash at its position, and the projections
//!   rebuilt from position 1 to there are identical to it, byte for byte;
//! - the request records that make retries idempotent: each names exactly the events that
//!   carry its request id (its first position and count), a record of no event names none,
//!   and every request id in the log has its record (without it, a retry of an acknowledged
//!   write would be decided again instead of answered from the log). The digest itself cannot
//!   be recomputed from the events (they do not hold the whole command); it is checked to be
//!   32 bytes;
//! - with `--expect-head POSITION:HASH`, a head the auditor recorded earlier: the log reaches
//!   that position and has that hash there. This is what catches a log rewritten from some
//!   point on with every later hash recomputed (and its checkpoint removed), which is otherwise
//!   a perfectly sound chain.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ledger_domain::event::postings_balance;
use ledger_engine::Recovered;
use ledger_store::{CheckpointFound, Head, OfflineLog, RecordedEvent, StoreError};
use uuid::Uuid;

use super::OfflineError;

/// A head recorded earlier, `POSITION:HASH` on the command line (the hash in hex, as GetHead
/// and `voucherctl head` print it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedHead(pub Head);

impl FromStr for ExpectedHead {
    type Err = String;

    fn from_str(text: &str) -> Result<ExpectedHead, String> {
        let usage = || format!("{text:?} is not POSITION:HASH (a number, a colon, 64 hex digits)");
        let (position, hash) = text.split_once(':').ok_or_else(usage)?;
        let position: u64 = position.trim().parse().map_err(|_| usage())?;
        let hash: [u8; 32] = hex::decode(hash.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(usage)?;
        Ok(ExpectedHead(Head { position, hash }))
    }
}

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The first position that cannot be trusted; `None` for damaged checkpoint records that
    /// do not say which position they are about.
    pub position: Option<u64>,
    pub what: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(formatter, "FAILED at position {position}: {}", self.what),
            None => write!(formatter, "FAILED: {}", self.what),
        }
    }
}

fn failure(position: u64, what: impl Into<String>) -> Failure {
    Failure {
        position: Some(position),
        what: what.into(),
    }
}

/// What `verify` found: the checks passed, and the first failure if any.
#[derive(Debug)]
pub struct VerifyReport {
    /// The last event that passed every check (the head of a sound log).
    pub last_checked: Head,
    pub elapsed: Duration,
    /// One line per check passed.
    pub passed: Vec<String>,
    pub failure: Option<Failure>,
}

impl VerifyReport {
    pub fn sound(&self) -> bool {
        self.failure.is_none()
    }

    /// What `voucher-ledger verify` prints: the checks passed, then the failure if any.
    pub fn summary(&self) -> String {
        let mut lines = self.passed.clone();
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.last_checked.position as f64 / seconds
        } else {
            0.0
        };
        lines.push(format!(
            "checked {} events in {seconds:.3} s ({rate:.0} events/s)",
            self.last_checked.position
        ));
        match &self.failure {
            Some(failure) => lines.push(failure.to_string()),
            None => lines.push(format!(
                "sound: head position {} hash {}",
                self.last_checked.position,
                hex::encode(self.last_checked.hash)
            )),
        }
        lines.join("\n")
    }
}

/// Verifies the ledger in `data_dir`; see the module documentation. An `Err` means the folder
/// could not be read at all (no log, or a server holds it); a broken log is an `Ok` report
/// with a failure.
pub fn verify(
    data_dir: &Path,
    expected: Option<ExpectedHead>,
) -> Result<VerifyReport, OfflineError> {
    let log = OfflineLog::open(data_dir).map_err(|error| OfflineError::store(data_dir, error))?;
    verify_log(&log, data_dir, expected)
}

/// [`verify`] of a log opened by the caller: a folder, or a PostgreSQL database with the
/// checkpoint of `data_dir` (see [`super::open_log`]).
pub fn verify_log(
    log: &OfflineLog,
    data_dir: &Path,
    expected: Option<ExpectedHead>,
) -> Result<VerifyReport, OfflineError> {
    let started = Instant::now();
    let checkpoint = log
        .checkpoint()
        .map_err(|error| OfflineError::store(data_dir, error))?;
    let mut checks = Checks {
        reader: log.reader(),
        recovered: Recovered::default(),
        stream_versions: HashMap::new(),
        checkpoint,
        checkpoint_matched: None,
        expected: expected.map(|expected| expected.0),
        requests_in_log: HashMap::new(),
        request_records: 0,
    };

    let mut walk = log.walk();
    let mut found = None;
    // The last event that passed every check.
    let mut checked = Head::EMPTY;
    for recorded in walk.by_ref() {
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(StoreError::ChainBroken(chain_break)) => {
                found = Some(failure(chain_break.position, chain_break.to_string()));
                break;
            }
            Err(error) => return Err(OfflineError::store(data_dir, error)),
        };
        if let Err(bad) = checks.event(&recorded) {
            found = Some(bad);
            break;
        }
        checked = Head {
            position: recorded.position,
            hash: recorded.hash,
        };
    }
    if found.is_none() {
        found = match walk
            .finish()
            .map_err(|error| OfflineError::store(data_dir, error))?
        {
            Ok(_) => checks.after_the_last_event(checked).err(),
            Err(chain_break) => Some(failure(chain_break.position, chain_break.to_string())),
        };
    }
    if found.is_none() {
        found = checks
            .request_records(log, checked)
            .map_err(|error| OfflineError::store(data_dir, error))?;
    }
    Ok(VerifyReport {
        last_checked: checked,
        elapsed: started.elapsed(),
        passed: if found.is_none() {
            checks.passed(checked)
        } else {
            Vec::new()
        },
        failure: found,
    })
}

struct Checks {
    /// The same log, where a reversal's redemption is read back (positions already checked).
    reader: ledger_store::LogReader,
    recovered: Recovered,
    stream_versions: HashMap<String, u64>,
    checkpoint: CheckpointFound,
    /// Whether the rebuild matched the checkpoint, once its position was passed.
    checkpoint_matched: Option<u64>,
    expected: Option<Head>,
    /// Where the events of each request id are in the log.
    requests_in_log: HashMap<Uuid, RequestEvents>,
    /// How many request records were checked.
    request_records: usize,
}

/// The events of one request id in the log: the first and last position and how many.
#[derive(Clone, Copy, Debug)]
struct RequestEvents {
    first: u64,
    last: u64,
    count: u64,
}

impl Checks {
    /// The checks of one event, after the chain's (done by the walk).
    fn event(&mut self, recorded: &RecordedEvent) -> Result<(), Failure> {
        let position = recorded.position;
        let stream = &recorded.event.stream;
        let version = self.stream_versions.entry(stream.clone()).or_insert(0);
        if recorded.event.stream_version != *version + 1 {
            return Err(failure(
                position,
                format!(
                    "stream {stream} is at version {}, expected {}",
                    recorded.event.stream_version,
                    *version + 1
                ),
            ));
        }
        *version += 1;
        let request_id = Uuid::parse_str(&recorded.event.request_id).map_err(|_| {
            failure(
                position,
                format!(
                    "the event's request id {:?} is not a uuid",
                    recorded.event.request_id
                ),
            )
        })?;
        self.requests_in_log
            .entry(request_id)
            .and_modify(|events| {
                events.last = position;
                events.count += 1;
            })
            .or_insert(RequestEvents {
                first: position,
                last: position,
                count: 1,
            });
        let event = ledger_engine::decode(recorded)
            .map_err(|error| failure(position, format!("the event does not decode: {error}")))?;
        if !postings_balance(event.postings()) {
            return Err(failure(position, "the event's postings do not balance"));
        }
        let original = ledger_engine::recovery::original_of(&self.reader, position, &event)
            .map_err(|error| failure(position, error.to_string()))?;
        if let Some(original) = &original {
            // The state keeps no redemption: the one a reversal names is read back for it.
            self.recovered
                .state
                .load_redemption(&original.event, original.reversed);
        }
        super::meaning::before(&self.recovered.state, &event).map_err(|what| {
            failure(
                position,
                format!("the event does not fit the ledger before it: {what}"),
            )
        })?;
        self.recovered
            .apply(position, &event, original.as_ref())
            .map_err(|error| failure(position, error.to_string()))?;
        super::meaning::after(&self.recovered.state)
            .map_err(|what| failure(position, format!("after this event, {what}")))?;

        if let CheckpointFound::Intact(checkpoint) = &self.checkpoint {
            if checkpoint.head.position == position {
                if checkpoint.head.hash != recorded.hash {
                    return Err(failure(
                        position,
                        format!(
                            "the checkpoint records hash {} here, the log has {}: the log was rewritten at or before this position",
                            hex::encode(checkpoint.head.hash),
                            hex::encode(recorded.hash)
                        ),
                    ));
                }
                if self.recovered.to_checkpoint() != checkpoint.bytes {
                    return Err(failure(
                        position,
                        "the projections rebuilt from position 1 differ from the checkpoint stored here",
                    ));
                }
                self.checkpoint_matched = Some(position);
            }
        }
        if let Some(expected) = self.expected {
            if expected.position == position && expected.hash != recorded.hash {
                return Err(failure(
                    position,
                    format!(
                        "the expected head has hash {} here, the log has {}: the log was changed at or before this position",
                        hex::encode(expected.hash),
                        hex::encode(recorded.hash)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What can only be checked once the whole log was walked to its head.
    fn after_the_last_event(&mut self, head: Head) -> Result<(), Failure> {
        match &self.checkpoint {
            CheckpointFound::Absent => {}
            CheckpointFound::Damaged { position, why } => {
                return Err(Failure {
                    position: *position,
                    what: format!("the stored checkpoint is damaged: {why}"),
                })
            }
            CheckpointFound::Intact(checkpoint) if checkpoint.head.position > head.position => {
                return Err(failure(
                    head.position + 1,
                    format!(
                        "the checkpoint is at position {}, after the last event: the log lost its tail",
                        checkpoint.head.position
                    ),
                ))
            }
            CheckpointFound::Intact(checkpoint) if checkpoint.head.position == 0 => {
                if checkpoint.head != Head::EMPTY
                    || checkpoint.bytes != Recovered::default().to_checkpoint()
                {
                    return Err(failure(0, "the checkpoint of the empty log is not empty"));
                }
                self.checkpoint_matched = Some(0);
            }
            CheckpointFound::Intact(_) => {}
        }
        if let Some(expected) = self.expected {
            if expected.position > head.position {
                return Err(failure(
                    head.position + 1,
                    format!(
                        "the log ends at position {}, before the expected head at {}: its tail is missing",
                        head.position, expected.position
                    ),
                ));
            }
            if expected.position == 0 && expected.hash != Head::EMPTY.hash {
                return Err(failure(
                    0,
                    "the expected head at position 0 must have the zero hash",
                ));
            }
        }
        let total = self.recovered.projections.trial_balance_total_eur();
        if !total.is_zero() {
            return Err(failure(
                head.position,
                format!("the trial balance totals {total} instead of 0.00"),
            ));
        }
        Ok(())
    }

    /// The request records against the events walked: the failure at the lowest position, if
    /// any (a record that cannot be read at all names no position and comes last).
    fn request_records(
        &mut self,
        log: &OfflineLog,
        head: Head,
    ) -> Result<Option<Failure>, StoreError> {
        let mut failures: Vec<Failure> = Vec::new();
        let mut recorded: HashSet<Uuid> = HashSet::new();
        for item in log.requests() {
            let (request_id, record) = match item? {
                Ok(found) => found,
                Err(damaged) => {
                    failures.push(Failure {
                        position: None,
                        what: format!(
                            "the request record under key {} is damaged: {}",
                            hex::encode(&damaged.key),
                            damaged.why
                        ),
                    });
                    continue;
                }
            };
            self.request_records += 1;
            recorded.insert(request_id);
            let count = u64::from(record.event_count);
            let named_last = record.first_position + count.saturating_sub(1);
            match (count, self.requests_in_log.get(&request_id)) {
                (0, None) if record.first_position > head.position + 1 => failures.push(failure(
                    record.first_position,
                    format!(
                        "the request record of {request_id} places it at position {}, after the head {}",
                        record.first_position, head.position
                    ),
                )),
                (0, None) => {}
                (0, Some(events)) => failures.push(failure(
                    events.first,
                    format!(
                        "the request record of {request_id} counts no event, but the log has {} events of that request from position {}",
                        events.count, events.first
                    ),
                )),
                (_, None) => failures.push(failure(
                    record.first_position.clamp(1, head.position + 1),
                    format!(
                        "the request record of {request_id} names the events at positions {} to {named_last}, but no event of the log carries that request id",
                        record.first_position
                    ),
                )),
                (_, Some(events)) => {
                    let exact = events.first == record.first_position
                        && events.count == count
                        && events.last == named_last;
                    if !exact {
                        failures.push(failure(
                            events.first.min(record.first_position.max(1)),
                            format!(
                                "the request record of {request_id} names the events at positions {} to {named_last}, but the log has {} events of that request at positions {} to {}",
                                record.first_position, events.count, events.first, events.last
                            ),
                        ));
                    }
                }
            }
        }
        for (request_id, events) in &self.requests_in_log {
            if !recorded.contains(request_id) {
                failures.push(failure(
                    events.first,
                    format!(
                        "the events of request {request_id} from position {} have no request record: a retry of that write would be decided again instead of answered from the log",
                        events.first
                    ),
                ));
            }
        }
        failures.sort_by_key(|found| (found.position.is_none(), found.position));
        Ok(failures.into_iter().next())
    }

    /// The lines of a sound log.
    fn passed(&self, head: Head) -> Vec<String> {
        let mut lines = vec![
            format!(
                "chain: positions 1 to {} without a gap, every hash recomputed, the head record names the last event",
                head.position
            ),
            format!(
                "events: every one decodes and fits the ledger, every event's postings balance, \
                 every redemption, reversal and issuance agrees with itself and with the ledger \
                 before it, no budget over its allocation, \
                 the versions of each of {} streams run 1, 2, 3; trial balance total 0.00",
                self.stream_versions.len()
            ),
        ];
        lines.push(format!(
            "requests: {} request records, each naming exactly the events of its request; every one of the {} requests with events in the log has its record",
            self.request_records,
            self.requests_in_log.len()
        ));
        lines.push(match (&self.checkpoint, self.checkpoint_matched) {
            (CheckpointFound::Intact(_), Some(position)) => format!(
                "checkpoint at position {position}: the projections rebuilt from position 1 are identical to it, byte for byte"
            ),
            _ => "checkpoint: none stored (a restart would replay the whole log)".to_owned(),
        });
        if let Some(expected) = self.expected {
            lines.push(format!(
                "expected head: the log has hash {} at position {}",
                hex::encode(expected.hash),
                expected.position
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expected_head_is_a_position_a_colon_and_64_hex_digits() {
        let hash = "5ad264fbfd536df6c221ed925d69c2fa0a8d50d86ed6364125a3451b352ff0fa";
        let expected: ExpectedHead = format!("10:{hash}").parse().expect("well formed");
        assert_eq!(expected.0.position, 10);
        assert_eq!(hex::encode(expected.0.hash), hash);
        for refused in [
            "10",
            "10:",
            "ten:00",
            &format!("10:{}", &hash[..62]),
            &format!("-1:{hash}"),
            &format!("10:{hash}00"),
        ] {
            assert!(refused.parse::<ExpectedHead>().is_err(), "{refused}");
        }
    }
}
