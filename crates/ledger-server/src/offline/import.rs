//! `voucher-ledger import` (issue 19): moves a ledger from one store to the other, a sled
//! folder into an empty PostgreSQL database, or back, re-verifying the chain on the way.
//!
//! The events are copied, not decided again: each command's events, with its request record,
//! go through the target store's ordinary append (`Store::append`), which gives the same
//! positions, stream versions and SHA-256 chain from the same protobuf payloads; every hash it
//! computes is checked against the source's, so the target is the same log, entry for entry,
//! or the import stops. The source is verified whole first (`verify`'s walk of the chain) and
//! read through the checked reader; its request records place the commands (those that wrote
//! no event too), and an event that no record accounts for is refused.
//!
//! What it is not: a merge. The target must be empty (no entry, no head), and nothing is
//! written to the source. No checkpoint is copied: the first start on the target replays from
//! position 1 and writes its own.

use ledger_store::{Head, NewCommand, NewEvent, OfflineLog, RecordedEvent, Store, StoreError};
use uuid::Uuid;

use super::OfflineError;

/// Most commands appended in one group (one transaction on PostgreSQL): large enough that a
/// log of millions of events moves in minutes, small enough that a group stays a few
/// megabytes (an event is at most `EVENT_BYTES_MAX`, most are a few hundred bytes).
pub const IMPORT_GROUP_COMMANDS_MAX: usize = 1_000;

/// What an import copied.
#[derive(Debug)]
pub struct ImportReport {
    pub events: u64,
    pub commands: u64,
    /// The head of the target, the source's.
    pub head: Head,
}

/// Why an import stopped. Nothing written to the target before is undone: it is a partial
/// copy, to be dropped before the next attempt (an empty folder or database).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the target already holds a ledger (head at position {position}): import writes only into an empty folder or database")]
    TargetNotEmpty { position: u64 },
    #[error("the source's request record of {request_id} is damaged: {why}")]
    RequestRecordDamaged { request_id: String, why: String },
    #[error("the source's event at position {position} is not accounted for by the request records ({why})")]
    EventUnaccounted { position: u64, why: String },
    #[error("the target's hash at position {position} differs from the source's: the copy is not the same log")]
    HashDiffers { position: u64 },
    #[error("the source's event at position {position} cannot be read back: {why}")]
    EventMalformed { position: u64, why: String },
}

/// Copies every command of `source` into `target`, which must be empty, checking each hash.
pub fn import(source: &OfflineLog, target: &mut Store) -> Result<ImportReport, OfflineError> {
    let target_head = target.head();
    if target_head.position != 0 {
        return Err(ImportError::TargetNotEmpty {
            position: target_head.position,
        }
        .into());
    }
    let head = match source.verify().map_err(store_error)? {
        Ok(head) => head,
        Err(chain_break) => return Err(OfflineError::Chain(chain_break)),
    };
    let mut commands = Vec::new();
    for record in source.requests() {
        match record.map_err(store_error)? {
            Ok((request_id, record)) => commands.push((request_id, record)),
            Err(damaged) => {
                return Err(ImportError::RequestRecordDamaged {
                    request_id: hex::encode(&damaged.key),
                    why: damaged.why,
                }
                .into())
            }
        }
    }
    // In log order; a command that wrote nothing comes before the one whose first event is
    // at the position it was given (the head + 1 of its time).
    commands.sort_by_key(|(_, record)| (record.first_position, record.event_count > 0));

    let reader = source.reader();
    let mut events = reader.iter(1, head.position).peekable();
    let mut group: Vec<NewCommand> = Vec::new();
    let mut source_hashes: Vec<(u64, [u8; 32])> = Vec::new();
    let mut copied_events = 0u64;
    let command_count = commands.len() as u64;
    for (request_id, record) in commands {
        let next_position = target.head().position
            + group
                .iter()
                .map(|command| command.events.len() as u64)
                .sum::<u64>()
            + 1;
        if record.first_position != next_position {
            return Err(ImportError::EventUnaccounted {
                position: next_position.min(record.first_position),
                why: format!(
                    "request {request_id} starts at position {}, the copy at {next_position}",
                    record.first_position
                ),
            }
            .into());
        }
        let mut new_events = Vec::with_capacity(record.event_count as usize);
        for _ in 0..record.event_count {
            let recorded = match events.next() {
                Some(recorded) => recorded.map_err(store_error)?,
                None => {
                    return Err(ImportError::EventUnaccounted {
                        position: head.position + 1,
                        why: format!("request {request_id} has more events than the log"),
                    }
                    .into())
                }
            };
            source_hashes.push((recorded.position, recorded.hash));
            new_events.push(new_event_of(&recorded, request_id)?);
        }
        group.push(NewCommand {
            request_id,
            request_digest: record.request_digest,
            recorded_at: record.recorded_at,
            events: new_events,
        });
        if group.len() >= IMPORT_GROUP_COMMANDS_MAX {
            copied_events += append_checked(target, std::mem::take(&mut group), &source_hashes)?;
            source_hashes.clear();
        }
    }
    copied_events += append_checked(target, group, &source_hashes)?;
    if let Some(left) = events.next() {
        let position = left.map_or(target.head().position + 1, |left| left.position);
        return Err(ImportError::EventUnaccounted {
            position,
            why: "no request record names it".to_owned(),
        }
        .into());
    }
    let copied_head = target.head();
    if copied_head != head {
        return Err(ImportError::HashDiffers {
            position: copied_head.position,
        }
        .into());
    }
    Ok(ImportReport {
        events: copied_events,
        commands: command_count,
        head: copied_head,
    })
}

/// Appends `group` to `target` and checks every hash against the source's; the events copied.
fn append_checked(
    target: &mut Store,
    group: Vec<NewCommand>,
    source_hashes: &[(u64, [u8; 32])],
) -> Result<u64, OfflineError> {
    if group.is_empty() {
        return Ok(0);
    }
    let recorded = target.append(group).map_err(store_error)?;
    let copied: Vec<&RecordedEvent> = recorded.iter().flatten().collect();
    assert_eq!(
        copied.len(),
        source_hashes.len(),
        "a group copies exactly the events read for it"
    );
    for (copy, (position, hash)) in copied.iter().zip(source_hashes) {
        if copy.position != *position || copy.hash != *hash {
            return Err(ImportError::HashDiffers {
                position: *position,
            }
            .into());
        }
    }
    Ok(copied.len() as u64)
}

/// The event to append again: the source's fields and payload as they are (so the same
/// bytes), the index by name from the decoded event, as the engine gives it.
fn new_event_of(recorded: &RecordedEvent, request_id: Uuid) -> Result<NewEvent, OfflineError> {
    let malformed = |why: String| ImportError::EventMalformed {
        position: recorded.position,
        why,
    };
    let event = &recorded.event;
    if event.request_id != request_id.to_string() {
        return Err(ImportError::EventUnaccounted {
            position: recorded.position,
            why: format!(
                "it carries request {}, its place request {request_id}",
                event.request_id
            ),
        }
        .into());
    }
    let event_id = Uuid::parse_str(&event.event_id)
        .map_err(|error| malformed(format!("event id: {error}")))?;
    let payload = event
        .payload
        .clone()
        .ok_or_else(|| malformed("no payload".to_owned()))?;
    let decoded =
        ledger_engine::decode(recorded).map_err(|error| malformed(format!("payload: {error}")))?;
    Ok(NewEvent {
        stream: event.stream.clone(),
        event_id,
        request_id,
        principal: event.principal.clone(),
        recorded_at: event.recorded_at.clone(),
        business_date: event.business_date.clone(),
        payload,
        names: decoded.redemption_named(),
    })
}

fn store_error(error: StoreError) -> OfflineError {
    match error {
        StoreError::ChainBroken(chain_break) => OfflineError::Chain(chain_break),
        source => OfflineError::Store {
            path: "the import".to_owned(),
            source: Box::new(source),
        },
    }
}
