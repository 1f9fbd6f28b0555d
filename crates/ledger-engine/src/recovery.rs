//! Getting the in-memory state back from the log: from a checkpoint and the tail after it at
//! start, from position 1 for a rebuild or a point-in-time report.
//!
//! A checkpoint is `CHECKPOINT_FORMAT` followed by the postcard encoding of the decision state
//! and the projections, both as of the checkpoint's position. Both encodings are deterministic,
//! so a rebuild from position 1 must give the same bytes; `rebuild` checks exactly that.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger_domain::{Event, LedgerState};
use ledger_projections::Projections;
use ledger_store::{Head, LogIter, LogReader, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::{decode, StartError};

/// First byte of every checkpoint: the version of its encoding. A checkpoint of another version
/// is ignored (the state is rebuilt from position 1), never misread.
const CHECKPOINT_FORMAT: u8 = 1;

/// The decision state and the projections at the same position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    pub state: LedgerState,
    pub projections: Projections,
}

impl Recovered {
    /// The checkpoint bytes of this state.
    pub fn to_checkpoint(&self) -> Vec<u8> {
        checkpoint_bytes(&self.state, &self.projections)
    }

    pub fn from_checkpoint(bytes: &[u8]) -> Option<Recovered> {
        match bytes.split_first() {
            Some((&CHECKPOINT_FORMAT, rest)) => postcard::from_bytes(rest).ok(),
            _ => None,
        }
    }

    /// Folds every event of `events` into both the state and the projections.
    pub fn fold(&mut self, events: LogIter) -> Result<(), StartError> {
        for recorded in events {
            let recorded = recorded?;
            let position = recorded.position;
            let event =
                decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
            self.apply(position, &event)?;
        }
        Ok(())
    }

    /// Folds one decoded event, recorded at `position`, into the state and the projections.
    pub fn apply(&mut self, position: u64, event: &Event) -> Result<(), StartError> {
        self.state
            .apply(event)
            .map_err(|source| StartError::Inconsistent { position, source })?;
        self.projections
            .apply(position, event)
            .map_err(|source| StartError::Projection { source })
    }
}

/// The checkpoint bytes of a state and its projections, without copying them: postcard encodes
/// a pair exactly as it encodes [`Recovered`], field after field.
pub fn checkpoint_bytes(state: &LedgerState, projections: &Projections) -> Vec<u8> {
    let mut bytes = vec![CHECKPOINT_FORMAT];
    // Serializing plain data into a Vec cannot fail.
    bytes.extend(postcard::to_stdvec(&(state, projections)).unwrap_or_default());
    bytes
}

/// The state at the store's head: from the latest usable checkpoint and the events after it,
/// or from position 1 when there is none; and the number of events replayed, which the writer
/// counts towards its next checkpoint (otherwise a server that crashes before every checkpoint
/// would replay a longer tail at each start).
pub fn recover(store: &Store) -> Result<(Recovered, u64), StartError> {
    let head = store.head();
    let reader = store.reader();
    if let Some(checkpoint) = store.load_checkpoint()? {
        match Recovered::from_checkpoint(&checkpoint.bytes) {
            Some(mut recovered) if recovered.projections.position == checkpoint.head.position => {
                tracing::info!(
                    checkpoint_position = checkpoint.head.position,
                    tail_events = head.position - checkpoint.head.position,
                    "replaying the log after the checkpoint"
                );
                recovered.fold(reader.iter(checkpoint.head.position + 1, head.position))?;
                return Ok((recovered, head.position - checkpoint.head.position));
            }
            _ => tracing::warn!(
                checkpoint_position = checkpoint.head.position,
                "checkpoint cannot be decoded; replaying from position 1"
            ),
        }
    }
    Ok((replay_to(&reader, head.position)?, head.position))
}

/// The state and projections as they stood once the event at `position` was recorded, from
/// position 1. Used for point-in-time reports, off the writer's thread.
pub fn replay_to(reader: &LogReader, position: u64) -> Result<Recovered, StartError> {
    let mut recovered = Recovered::default();
    recovered.fold(reader.iter(1, position))?;
    Ok(recovered)
}

/// What `rebuild` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    pub head: Head,
    /// Events folded from position 1.
    pub events: u64,
    pub elapsed: Duration,
    /// The position of the checkpoint found before the rebuild, if any.
    pub checkpoint_position: Option<u64>,
    /// Whether the rebuild at the checkpoint's position gave the checkpoint's bytes exactly.
    pub matches_checkpoint: Option<bool>,
    /// Size of the new checkpoint, written at the head.
    pub checkpoint_bytes: usize,
}

/// Rebuilds every projection (and the decision state) of the stopped ledger in `data_dir`
/// from position 1, compares the result with the stored checkpoint at its position, then
/// writes a fresh checkpoint at the head.
pub fn rebuild(data_dir: &Path) -> Result<RebuildReport, StartError> {
    let mut store = Store::open(data_dir)?;
    let head = store.head();
    let reader = store.reader();
    let checkpoint = store.load_checkpoint()?;
    let started = Instant::now();
    let mut recovered = Recovered::default();
    let mut matches_checkpoint = None;
    if let Some(checkpoint) = &checkpoint {
        recovered.fold(reader.iter(1, checkpoint.head.position))?;
        matches_checkpoint = Some(recovered.to_checkpoint() == checkpoint.bytes);
        recovered.fold(reader.iter(checkpoint.head.position + 1, head.position))?;
    } else {
        recovered.fold(reader.iter(1, head.position))?;
    }
    let elapsed = started.elapsed();
    let bytes = recovered.to_checkpoint();
    store
        .append_with_checkpoint(Vec::new(), Some(&bytes))
        .map_err(StartError::Store)?;
    Ok(RebuildReport {
        head,
        events: head.position,
        elapsed,
        checkpoint_position: checkpoint.map(|checkpoint| checkpoint.head.position),
        matches_checkpoint,
        checkpoint_bytes: bytes.len(),
    })
}

/// The latest position recorded on or before the end of `date` (UTC), for `as_of_date` reads:
/// the ledger as it stood at the end of that day.
pub fn last_position_on(
    reader: &LogReader,
    date: chrono::NaiveDate,
    head: u64,
) -> Result<u64, StoreError> {
    let end_of_day = format!("{}T23:59:59.999999Z", date.format("%Y-%m-%d"));
    let mut last = 0;
    for recorded in reader.iter(1, head) {
        let recorded = recorded?;
        // RFC 3339 UTC with a fixed width compares as text in time order.
        if recorded.event.recorded_at.as_str() > end_of_day.as_str() {
            break;
        }
        last = recorded.position;
    }
    Ok(last)
}
