//! Getting the in-memory state back from the log: from a checkpoint and the tail after it at
//! start, from position 1 for a rebuild or a point-in-time report.
//!
//! A checkpoint is `CHECKPOINT_FORMAT`, the length of the decision state's encoding (u64 LE),
//! then the postcard encodings of the decision state and of the projections, both as of the
//! checkpoint's position. Both encodings are deterministic, so a rebuild from position 1 must
//! give the same bytes; `rebuild` checks exactly that. The length lets a start decode the two
//! on two threads at once.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ledger_domain::event::HoursRedeemed;
use ledger_domain::state::Inconsistency;
use ledger_domain::{Event, LedgerState};
use ledger_projections::Projections;
use ledger_store::{
    CheckpointFile, CheckpointFound, Head, LogIter, LogReader, RetainedSnapshots, Store, StoreError,
};
use serde::{Deserialize, Serialize};

use crate::year_points::{YearPointWriter, YearPoints, YEAR_POINT_INTERVAL_EVENTS};
use crate::{decode, StartError};

/// First byte of every checkpoint: the version of its encoding. A checkpoint of another version
/// is ignored (the state is rebuilt from position 1), never misread.
/// Version 2: the state and the projections keep no redemption (they are read back from the
/// log when a reversal needs one); a version 1 checkpoint held every redemption ever made.
/// Version 3: worker pseudonyms as their 32 bytes, not 64 hex digits.
/// Version 4: the projections hold each provider's redemption and payout positions, for the
/// query calls. Version 5: usage codes (issue 15): each batch's earmarked vouchers, the codes
/// and their order ids in the state, the code projections. Version 6: the state's length
/// before the two encodings, so that they decode in parallel. Version 7: each year's hours per
/// company in the projections (issue 16 item 5: a later registration moves them to its sector),
/// and each company's redemption positions (its statement of redemptions, issue 15).
/// Version 8: a usage code in the state keeps its terms only while it has hours left, and no
/// longer its order id, hours and order date (the projections' view has them).
const CHECKPOINT_FORMAT: u8 = 8;

/// First byte of a retained snapshot of the projections: the version of the projections'
/// encoding. Version 5 is that of checkpoint format 5 (format 6 changed only how the
/// checkpoint lays out its two parts); version 6 that of checkpoint format 7 (the projections'
/// hours per company and redemption positions). A change of the projections' types bumps both
/// this and [`CHECKPOINT_FORMAT`]; an older snapshot is then passed over, never misread.
const PROJECTIONS_FORMAT: u8 = 6;

/// Bytes of the state's length after the format byte.
const STATE_LENGTH_BYTES: usize = 8;

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

    /// [`Recovered::to_checkpoint`]'s bytes written to `out` a piece at a time, never whole in
    /// memory: the state's length first (walking it once without writing), then the state and
    /// the projections, each straight from its maps.
    pub fn write_checkpoint(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let state_len = postcard::serialize_with_flavor::<_, _, usize>(
            &self.state,
            postcard::ser_flavors::Size::default(),
        )
        .map_err(std::io::Error::other)?;
        out.write_all(&[CHECKPOINT_FORMAT])?;
        out.write_all(&(state_len as u64).to_le_bytes())?;
        postcard::to_io(&self.state, &mut *out).map_err(std::io::Error::other)?;
        postcard::to_io(&self.projections, out).map_err(std::io::Error::other)?;
        Ok(())
    }

    /// The state and projections of checkpoint bytes; `None` for another format or bytes that
    /// do not decode. The two parts decode on two threads: on a ten-year history they are tens
    /// of megabytes each, and decoding them is most of a start.
    pub fn from_checkpoint(bytes: &[u8]) -> Option<Recovered> {
        let (state_bytes, projection_bytes) = match bytes.split_first() {
            Some((&CHECKPOINT_FORMAT, rest)) => {
                let (length, rest) = rest.split_first_chunk::<STATE_LENGTH_BYTES>()?;
                let length = usize::try_from(u64::from_le_bytes(*length)).ok()?;
                if length > rest.len() {
                    return None;
                }
                rest.split_at(length)
            }
            _ => return None,
        };
        let decode_state = || postcard::from_bytes::<LedgerState>(state_bytes).ok();
        let (state, projections) = std::thread::scope(|scope| {
            let state = std::thread::Builder::new()
                .name("ledger-checkpoint-decode".into())
                .spawn_scoped(scope, decode_state);
            let projections = Projections::from_bytes(projection_bytes);
            let state = match state {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: decode it here.
                Err(_) => decode_state(),
            };
            (state, projections)
        });
        Some(Recovered {
            state: state?,
            projections: projections?,
        })
    }

    /// Folds every event of `events` into both the state and the projections; `reader` is
    /// the same log, where a reversal's redemption is read back.
    pub fn fold(&mut self, reader: &LogReader, events: LogIter) -> Result<(), StartError> {
        for recorded in events {
            let (position, event, original) = read_event(reader, recorded)?;
            self.apply(position, &event, original.as_ref())?;
        }
        Ok(())
    }

    /// Folds the events of positions `from_position..=last_position` of `reader`, as
    /// [`Recovered::fold`] does with `reader.iter(from_position, last_position)`, with the same
    /// result and the same first error; a long range in a pipeline of threads (see
    /// [`Recovered::fold_range_pipelined`]).
    pub fn fold_range(
        &mut self,
        reader: &LogReader,
        from_position: u64,
        last_position: u64,
    ) -> Result<(), StartError> {
        let from_position = from_position.max(1);
        if last_position.saturating_sub(from_position - 1) < PIPELINE_EVENTS_MIN {
            return self.fold(reader, reader.iter(from_position, last_position));
        }
        self.fold_range_pipelined(reader, from_position, last_position)
    }

    /// [`Recovered::fold_range`] in a pipeline whatever the length of the range.
    ///
    /// Why: reading an entry through sled, recomputing its chain hash and decoding it take
    /// about as long as folding the event into the state, and that again about as long as
    /// folding it into the projections; the three need nothing from one another but the
    /// decoded events, so they run on three threads and overlap. One thread reads, checks and
    /// decodes batches of events in position order and hands each batch to both folds over
    /// bounded channels (memory stays bounded however long the log); this thread folds the
    /// state, a third the projections. Each stage stops at its first error (the reader after
    /// handing it over in place of the next event); a stopped fold drops its channel, which
    /// stops the reader. Of the errors found, the one reported is the one the sequential fold
    /// meets first: the lowest position, and at one position the read before the state before
    /// the projections.
    pub fn fold_range_pipelined(
        &mut self,
        reader: &LogReader,
        from_position: u64,
        last_position: u64,
    ) -> Result<(), StartError> {
        self.fold_range_beside(reader, from_position, last_position, &mut NothingBeside)
    }

    /// [`Recovered::fold_range_pipelined`], calling `beside` on the projections' thread after
    /// each event is folded into the projections (a rebuild's snapshots and year points), so
    /// that what it does holds up neither the read nor the state's fold.
    fn fold_range_beside<B: BesideProjections>(
        &mut self,
        reader: &LogReader,
        from_position: u64,
        last_position: u64,
        beside: &mut B,
    ) -> Result<(), StartError> {
        let from_position = from_position.max(1);
        let Recovered { state, projections } = self;
        let outcome = std::thread::scope(|scope| {
            let (state_sender, state_batches) = mpsc::sync_channel(PIPELINE_BATCHES_IN_FLIGHT);
            let (projection_sender, projection_batches) =
                mpsc::sync_channel(PIPELINE_BATCHES_IN_FLIGHT);
            let events = reader.iter(from_position, last_position);
            let read = std::thread::Builder::new()
                .name("ledger-replay-read".to_owned())
                .spawn_scoped(scope, move || {
                    read_batches(
                        reader,
                        events,
                        from_position,
                        &[&state_sender, &projection_sender],
                    )
                });
            let projected = std::thread::Builder::new()
                .name("ledger-replay-project".to_owned())
                .spawn_scoped(scope, move || {
                    fold_projections_beside(projections, projection_batches, beside)
                });
            let (Ok(read), Ok(projected)) = (read, projected) else {
                // Nothing was folded yet; dropping the channels stops a thread that did start.
                return None;
            };
            let state_error = fold_state(state, state_batches);
            // A panic in a stage is a bug of this process, not of the log: carry it on here.
            let projection_error = projected
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let read_error = read
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Some(first_error([read_error, state_error, projection_error]))
        });
        match outcome {
            Some(Some((_, error))) => Err(error),
            Some(None) => Ok(()),
            None => {
                tracing::warn!("replay threads cannot be started; replaying on one thread");
                self.fold(reader, reader.iter(from_position, last_position))
            }
        }
    }

    /// Folds one decoded event, recorded at `position`, into the state and the projections.
    /// A reversal needs `original`, the redemption it takes back, read from the log
    /// ([`original_of`]): neither keeps redemptions once they are folded.
    pub fn apply(
        &mut self,
        position: u64,
        event: &Event,
        original: Option<&Redeemed>,
    ) -> Result<(), StartError> {
        apply_to_state(&mut self.state, position, event, original)?;
        apply_to_projections(&mut self.projections, position, event, original)
    }
}

/// Folds one event into the state, with the redemption a reversal takes back loaded for it;
/// the redemption is forgotten again once folded (see [`LedgerState::redemptions`]).
fn apply_to_state(
    state: &mut LedgerState,
    position: u64,
    event: &Event,
    original: Option<&Redeemed>,
) -> Result<(), StartError> {
    if let Some(original) = original {
        // Reversed already when the log holds an earlier reversal: `apply` refuses a second.
        state.load_redemption(&original.event, original.reversed);
    }
    state
        .apply(event)
        .map_err(|source| StartError::Inconsistent { position, source })?;
    if let Some(redemption_id) = event.redemption_named() {
        state.forget_redemption(redemption_id);
    }
    Ok(())
}

fn apply_to_projections(
    projections: &mut Projections,
    position: u64,
    event: &Event,
    original: Option<&Redeemed>,
) -> Result<(), StartError> {
    if let Some(original) = original {
        projections.load_redemption(&original.event);
    }
    projections
        .apply(position, event)
        .map_err(|source| StartError::Projection { source })
}

/// The redemption a reversal takes back, as the log holds it before the reversal.
#[derive(Clone, Debug, PartialEq)]
pub struct Redeemed {
    pub event: HoursRedeemed,
    /// Whether the log holds a reversal of it before this one (which `apply` then refuses).
    pub reversed: bool,
}

/// The redemption that `event`, a reversal at `position`, takes back, read from the log
/// through its index by name; `None` for any other event. The index is not chained: the event
/// it points at is checked to be that redemption, never trusted.
pub fn original_of(
    reader: &LogReader,
    position: u64,
    event: &Event,
) -> Result<Option<Redeemed>, StartError> {
    let Event::RedemptionReversed(reversal) = event else {
        return Ok(None);
    };
    let unknown = || StartError::Inconsistent {
        position,
        source: Inconsistency {
            event_type: event.type_name(),
            what: "the log holds no redemption of that id before it",
        },
    };
    let positions = reader.positions_naming(reversal.redemption_id)?;
    let Some(&first) = positions.first().filter(|first| **first < position) else {
        return Err(unknown());
    };
    let reversed = positions
        .iter()
        .any(|named| first < *named && *named < position);
    let recorded = reader.read_at(first)?;
    match decode(&recorded) {
        Ok(Event::HoursRedeemed(original)) if original.redemption_id == reversal.redemption_id => {
            Ok(Some(Redeemed {
                event: original,
                reversed,
            }))
        }
        Ok(_) => Err(unknown()),
        Err(source) => Err(StartError::Undecodable {
            position: first,
            source,
        }),
    }
}

/// Replays of at least this many events read the log on a second thread (see
/// [`Recovered::fold_range`]); shorter ones, like the tail after a checkpoint, stay on the
/// caller's thread, where a thread and a channel would cost more than they save.
const PIPELINE_EVENTS_MIN: u64 = 4_096;
/// Events handed over at a time: enough to make the channel's cost per event negligible.
const PIPELINE_BATCH_EVENTS: usize = 512;
/// Batches read ahead of the fold at most, which bounds the memory the pipeline holds.
const PIPELINE_BATCHES_IN_FLIGHT: usize = 4;

/// Events read, checked and decoded, in position order, each reversal with the event of the
/// redemption it takes back.
type ReadBatch = Vec<ReadEvent>;

/// One event of a [`ReadBatch`].
struct ReadEvent {
    position: u64,
    /// The entry's chain hash: a snapshot or a point taken after it is taken at this head.
    hash: [u8; 32],
    event: Event,
    original: Option<Redeemed>,
}

/// What runs on the projections' thread of a pipelined replay after each event is folded in.
trait BesideProjections: Send {
    /// `projections` hold every event up to `folded`'s position, and none after it.
    fn folded(&mut self, projections: &Projections, folded: &ReadEvent);
}

/// A replay's projections' fold with nothing beside it.
struct NothingBeside;

impl BesideProjections for NothingBeside {
    fn folded(&mut self, _: &Projections, _: &ReadEvent) {}
}

/// Where an error of the pipeline stands in the order the sequential fold would meet it: its
/// position, then the stage (0 read, 1 state, 2 projections).
type ErrorOrder = (u64, u8);

/// Of the errors the stages of a pipeline stopped at, the one the sequential fold meets first.
fn first_error<const N: usize>(
    errors: [Option<(ErrorOrder, StartError)>; N],
) -> Option<(ErrorOrder, StartError)> {
    errors.into_iter().flatten().min_by_key(|(order, _)| *order)
}

/// A recorded event, checked by the read, decoded, and for a reversal with the redemption it
/// takes back (see [`original_of`]).
fn read_event(
    reader: &LogReader,
    recorded: Result<ledger_store::RecordedEvent, StoreError>,
) -> Result<(u64, Event, Option<Redeemed>), StartError> {
    let recorded = recorded?;
    let position = recorded.position;
    let event = decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
    let original = original_of(reader, position, &event)?;
    Ok((position, event, original))
}

/// The reader of [`Recovered::fold_range_pipelined`] and [`fold_projections_range`]: reads,
/// checks and decodes `events` (the first at `from_position`) in order and sends them in
/// batches to every fold. Returns the read's first error, after sending every event before it,
/// or nothing when the log ends or a fold stops listening.
fn read_batches(
    reader: &LogReader,
    events: LogIter,
    from_position: u64,
    folds: &[&mpsc::SyncSender<Arc<ReadBatch>>],
) -> Option<(ErrorOrder, StartError)> {
    let send = |batch: ReadBatch| {
        let batch = Arc::new(batch);
        folds
            .iter()
            .all(|fold| fold.send(Arc::clone(&batch)).is_ok())
    };
    let mut batch = Vec::with_capacity(PIPELINE_BATCH_EVENTS);
    for (expected_position, recorded) in (from_position..).zip(events) {
        let hash = recorded.as_ref().map_or([0; 32], |recorded| recorded.hash);
        match read_event(reader, recorded) {
            Ok((position, event, original)) => batch.push(ReadEvent {
                position,
                hash,
                event,
                original,
            }),
            Err(error) => {
                // Sent even if a fold stopped: its own error then comes first anyway.
                send(batch);
                return Some(((expected_position, 0), error));
            }
        }
        if batch.len() == PIPELINE_BATCH_EVENTS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(PIPELINE_BATCH_EVENTS));
            if !send(full) {
                return None;
            }
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    None
}

/// The state's fold of [`Recovered::fold_range_pipelined`]; the first error and its order.
fn fold_state(
    state: &mut LedgerState,
    batches: mpsc::Receiver<Arc<ReadBatch>>,
) -> Option<(ErrorOrder, StartError)> {
    for batch in batches {
        for folded in batch.iter() {
            let position = folded.position;
            if let Err(error) =
                apply_to_state(state, position, &folded.event, folded.original.as_ref())
            {
                return Some(((position, 1), error));
            }
        }
    }
    None
}

/// The projections' fold of [`Recovered::fold_range_pipelined`]; the first error and its
/// order.
fn fold_projections(
    projections: &mut Projections,
    batches: mpsc::Receiver<Arc<ReadBatch>>,
) -> Option<(ErrorOrder, StartError)> {
    fold_projections_beside(projections, batches, &mut NothingBeside)
}

/// [`fold_projections`], calling `beside` after each event.
fn fold_projections_beside<B: BesideProjections>(
    projections: &mut Projections,
    batches: mpsc::Receiver<Arc<ReadBatch>>,
    beside: &mut B,
) -> Option<(ErrorOrder, StartError)> {
    for batch in batches {
        for folded in batch.iter() {
            let position = folded.position;
            if let Err(error) = apply_to_projections(
                projections,
                position,
                &folded.event,
                folded.original.as_ref(),
            ) {
                return Some(((position, 2), error));
            }
            beside.folded(projections, folded);
        }
    }
    None
}

/// Folds the events of positions `from_position..=last_position` into `projections` alone,
/// as [`Recovered::fold_range`] does into both: a report as of a past position needs no
/// decision state. A long range is read and decoded on a second thread.
pub fn fold_projections_range(
    reader: &LogReader,
    projections: &mut Projections,
    from_position: u64,
    last_position: u64,
) -> Result<(), StartError> {
    let from_position = from_position.max(1);
    if last_position < from_position {
        return Ok(());
    }
    if last_position - (from_position - 1) < PIPELINE_EVENTS_MIN {
        return fold_projections_on_one_thread(reader, projections, from_position, last_position);
    }
    let outcome = std::thread::scope(|scope| {
        let (sender, batches) = mpsc::sync_channel(PIPELINE_BATCHES_IN_FLIGHT);
        let events = reader.iter(from_position, last_position);
        let read = std::thread::Builder::new()
            .name("ledger-replay-read".to_owned())
            .spawn_scoped(scope, move || {
                read_batches(reader, events, from_position, &[&sender])
            })
            .ok()?;
        let projection_error = fold_projections(projections, batches);
        let read_error = read
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Some(first_error([read_error, projection_error]))
    });
    match outcome {
        Some(Some((_, error))) => Err(error),
        Some(None) => Ok(()),
        None => {
            tracing::warn!("replay thread cannot be started; replaying on one thread");
            fold_projections_on_one_thread(reader, projections, from_position, last_position)
        }
    }
}

fn fold_projections_on_one_thread(
    reader: &LogReader,
    projections: &mut Projections,
    from_position: u64,
    last_position: u64,
) -> Result<(), StartError> {
    for recorded in reader.iter(from_position, last_position) {
        let (position, event, original) = read_event(reader, recorded)?;
        apply_to_projections(projections, position, &event, original.as_ref())?;
    }
    Ok(())
}

/// The projections as of `position` (at most the head): from the newest retained snapshot at
/// or before it that is intact and of this log, then the events after it; from position 1
/// when there is none. What it costs is bounded by the spacing of the retained snapshots (see
/// [`retain_projections`]), not by the length of the log.
pub fn projections_as_of(
    reader: &LogReader,
    retained: &RetainedSnapshots,
    position: u64,
) -> Result<Projections, StartError> {
    let mut projections = match retained.latest_at_or_before(position, reader)? {
        Some(snapshot) => match retained_projections(&snapshot.body) {
            Some(projections) if projections.position == snapshot.head.position => projections,
            _ => {
                tracing::warn!(
                    snapshot_position = snapshot.head.position,
                    "retained snapshot is of another encoding; replaying from position 1"
                );
                Projections::default()
            }
        },
        None => Projections::default(),
    };
    let from_position = projections.position + 1;
    fold_projections_range(reader, &mut projections, from_position, position)?;
    Ok(projections)
}

/// The bytes of a retained snapshot of `projections`: [`PROJECTIONS_FORMAT`] (any change of
/// the projections' encoding bumps it, and an older snapshot is passed over, never misread)
/// and their encoding.
pub fn retained_bytes(projections: &Projections) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_retained(projections, &mut bytes);
    bytes
}

/// [`retained_bytes`] written to `out` a piece at a time, never whole in memory.
fn write_retained(projections: &Projections, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    out.write_all(&[PROJECTIONS_FORMAT])?;
    postcard::to_io(projections, out).map_err(std::io::Error::other)?;
    Ok(())
}

fn retained_projections(bytes: &[u8]) -> Option<Projections> {
    match bytes.split_first() {
        Some((&PROJECTIONS_FORMAT, rest)) => Projections::from_bytes(rest),
        _ => None,
    }
}

/// Saves `projections`, taken at `head`, as a retained snapshot, and keeps the snapshots
/// sparse: of the snapshots in one stretch of `interval_events` positions (1 to the interval,
/// the next interval, …) only the first is kept, and the newest. The snapshot saved before this
/// one is removed when it was not the first of its stretch. So the newest is always at the
/// latest checkpoint (a report as of a recent date replays at most one checkpoint interval),
/// the others are one per stretch (a report as of any position replays at most about
/// `interval_events` plus one checkpoint interval), and the folder holds about one snapshot per
/// `interval_events` of the log.
pub fn retain_projections(
    retained: &RetainedSnapshots,
    head: &Head,
    projections: &Projections,
    interval_events: u64,
) -> Result<(), StoreError> {
    retained.save_streamed(head, &mut |out| write_retained(projections, out))?;
    let positions = retained.positions()?;
    let upto = positions.partition_point(|saved| *saved <= head.position);
    let stretch = |position: u64| position.saturating_sub(1) / interval_events.max(1);
    if let [.., before_previous, previous, _newest] = positions[..upto] {
        if stretch(previous) == stretch(before_previous) {
            retained.remove(previous)?;
        }
    }
    Ok(())
}

/// Removes the retained snapshots beyond `head`, the head of the log at open: they are of
/// another log (the folder was restored from an older backup) and would only be passed over.
pub fn forget_retained_beyond(retained: &RetainedSnapshots, head: u64) -> Result<(), StoreError> {
    for beyond in retained
        .positions()?
        .into_iter()
        .filter(|saved| *saved > head)
    {
        tracing::info!(
            position = beyond,
            head,
            "removing a retained snapshot beyond the head of the log"
        );
        retained.remove(beyond)?;
    }
    Ok(())
}

/// The checkpoint bytes of a state and its projections, without copying them: the format,
/// the length of the state's encoding, the state's and the projections' encodings.
pub fn checkpoint_bytes(state: &LedgerState, projections: &Projections) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    let state = postcard::to_stdvec(state).unwrap_or_default();
    checkpoint_of_parts(state, projections.to_bytes())
}

/// The checkpoint of the state's and the projections' encodings: the format, the length of
/// the state's encoding, the two encodings.
fn checkpoint_of_parts(state: Vec<u8>, projections: Vec<u8>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + STATE_LENGTH_BYTES + state.len() + projections.len());
    bytes.push(CHECKPOINT_FORMAT);
    bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
    bytes.extend(state);
    bytes.extend(projections);
    bytes
}

/// Gives a log written before the index by name existed its index: every redemption and
/// reversal, found by reading the log once. Nothing to do on a log that has it.
pub fn index_names_if_needed(store: &mut Store) -> Result<(), StartError> {
    if store.names_indexed()? {
        return Ok(());
    }
    let head = store.head();
    tracing::info!(
        head_position = head.position,
        "indexing the log's redemptions by id (a log written before the index existed)"
    );
    let mut names = Vec::new();
    for recorded in store.reader().iter(1, head.position) {
        let recorded = recorded?;
        let position = recorded.position;
        let event =
            decode(&recorded).map_err(|source| StartError::Undecodable { position, source })?;
        if let Some(id) = event.redemption_named() {
            names.push((id, position));
        }
    }
    store.index_names(names)?;
    Ok(())
}

/// The state at the store's head: from the latest usable checkpoint and the events after it,
/// or from position 1 when there is none; and the number of events replayed, which the writer
/// counts towards its next checkpoint (otherwise a server that crashes before every checkpoint
/// would replay a longer tail at each start).
pub fn recover(store: &Store) -> Result<Recovery, StartError> {
    recover_from(store, None)
}

/// What [`recover`] gives a writer to start from.
#[derive(Debug)]
pub struct Recovery {
    /// The state and projections at the store's head.
    pub recovered: Recovered,
    /// The events replayed after the checkpoint (all of them without one): the writer counts
    /// them towards its next checkpoint.
    pub replayed_events: u64,
    /// The length of the checkpoint's body it started from, 0 without one: the writer's
    /// checkpoint interval stretches with it from the first checkpoint on, as it does after
    /// one it wrote itself (see `checkpoint_interval_events`).
    pub checkpoint_body_bytes: u64,
}

/// A checkpoint file read and decoded before the store was opened (see
/// [`EarlyCheckpoint::read`]), which [`recover_from`] checks against the log as
/// [`Store::load_checkpoint`] would have.
#[derive(Debug)]
pub struct EarlyCheckpoint {
    found: CheckpointFound,
    decoded: Option<Recovered>,
}

impl EarlyCheckpoint {
    /// Reads and decodes `file`. Why: opening sled (its own recovery) and decoding the
    /// checkpoint are the two longest parts of a start and need nothing from each other, so
    /// the engine does both at once, on two threads; only the check that the log has the
    /// checkpoint's hash at its position waits for the store. A file that cannot be read is
    /// left for the store's own read, which reports it.
    pub fn read(file: &CheckpointFile) -> Option<EarlyCheckpoint> {
        let found = file.read().ok()?;
        let decoded = match &found {
            CheckpointFound::Intact(checkpoint) => Recovered::from_checkpoint(&checkpoint.bytes),
            _ => None,
        };
        Some(EarlyCheckpoint { found, decoded })
    }
}

/// [`recover`], with the checkpoint file read and decoded already when `early` is given.
pub fn recover_from(store: &Store, early: Option<EarlyCheckpoint>) -> Result<Recovery, StartError> {
    let head = store.head();
    let reader = store.reader();
    let (checkpoint, decoded) = match early {
        Some(EarlyCheckpoint { found, decoded }) => (store.check_checkpoint(found)?, decoded),
        None => (store.load_checkpoint()?, None),
    };
    if let Some(checkpoint) = checkpoint {
        let decoded = decoded.or_else(|| Recovered::from_checkpoint(&checkpoint.bytes));
        let checkpoint_body_bytes = u64::try_from(checkpoint.bytes.len()).unwrap_or(u64::MAX);
        // The checkpoint's bytes are not needed once decoded: tens of megabytes less held
        // through the replay of the tail.
        let checkpoint = checkpoint.head;
        match decoded {
            Some(mut recovered) if recovered.projections.position == checkpoint.position => {
                tracing::info!(
                    checkpoint_position = checkpoint.position,
                    tail_events = head.position - checkpoint.position,
                    "replaying the log after the checkpoint"
                );
                recovered.fold_range(&reader, checkpoint.position + 1, head.position)?;
                return Ok(Recovery {
                    recovered,
                    replayed_events: head.position - checkpoint.position,
                    checkpoint_body_bytes,
                });
            }
            _ => tracing::warn!(
                checkpoint_position = checkpoint.position,
                "checkpoint cannot be decoded; replaying from position 1"
            ),
        }
    }
    Ok(Recovery {
        recovered: replay_to(&reader, head.position)?,
        replayed_events: head.position,
        checkpoint_body_bytes: 0,
    })
}

/// The state and projections as they stood once the event at `position` was recorded, from
/// position 1. Used for point-in-time reports, off the writer's thread.
pub fn replay_to(reader: &LogReader, position: u64) -> Result<Recovered, StartError> {
    let mut recovered = Recovered::default();
    recovered.fold_range(reader, 1, position)?;
    Ok(recovered)
}

/// What `rebuild` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    pub head: Head,
    /// Events folded from position 1.
    pub events: u64,
    /// From the start of the replay to the last file written: the replay, the comparison with
    /// the stored checkpoint, the retained snapshots and year points written beside the fold,
    /// and the new checkpoint. Opening the store is not in it.
    pub elapsed: Duration,
    /// The position of the checkpoint found before the rebuild, if any.
    pub checkpoint_position: Option<u64>,
    /// Whether the rebuild at the checkpoint's position gave the checkpoint's bytes exactly.
    pub matches_checkpoint: Option<bool>,
    /// Size of the new checkpoint, written at the head.
    pub checkpoint_bytes: usize,
    /// Retained snapshots of the projections saved on the way (see [`retain_projections`]).
    pub retained_snapshots: usize,
}

/// Rebuilds every projection (and the decision state) of the stopped ledger in `data_dir`
/// from position 1, compares the result with the stored checkpoint at its position, then
/// writes a fresh checkpoint at the head.
pub fn rebuild(data_dir: &Path) -> Result<RebuildReport, StartError> {
    rebuild_spaced(
        data_dir,
        RetainedSpacing::SERVICE,
        YEAR_POINT_INTERVAL_EVENTS,
    )
}

/// [`rebuild`], leaving a retained snapshot at every multiple of `retained_interval_events`
/// (none passed over for being old).
pub fn rebuild_retaining(
    data_dir: &Path,
    retained_interval_events: u64,
) -> Result<RebuildReport, StartError> {
    rebuild_with_intervals(
        data_dir,
        retained_interval_events,
        YEAR_POINT_INTERVAL_EVENTS,
    )
}

/// [`rebuild_retaining`], leaving year points `year_point_interval_events` apart.
pub fn rebuild_with_intervals(
    data_dir: &Path,
    retained_interval_events: u64,
    year_point_interval_events: u64,
) -> Result<RebuildReport, StartError> {
    rebuild_spaced(
        data_dir,
        RetainedSpacing::every(retained_interval_events),
        year_point_interval_events,
    )
}

/// [`rebuild`], leaving the retained snapshots `retained` says and year points
/// `year_point_interval_events` apart.
pub fn rebuild_spaced(
    data_dir: &Path,
    retained: RetainedSpacing,
    year_point_interval_events: u64,
) -> Result<RebuildReport, StartError> {
    rebuild_store(
        Store::open(data_dir)?,
        data_dir,
        retained,
        year_point_interval_events,
    )
}

/// Where a rebuild leaves retained snapshots of the projections: at the head, and at the
/// multiples of `interval_events` that a clean stop of the service would keep
/// ([`ledger_store::RetainedSnapshots::thin`] with `recent_events` and `past_interval_events`).
/// Why: a rebuild of the ten-year folder wrote 14 (its 13 multiples and the head), each the
/// whole projections (up to 75 MB encoded, then compressed), and the next stop removed 9 of
/// them: 26.8–27.4 s of user CPU, against 19.3–20.4 s writing only the 5 kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetainedSpacing {
    /// A snapshot at each multiple of this many positions within `recent_events` of the head.
    pub interval_events: u64,
    /// Positions before the head within which every multiple of the interval is kept.
    pub recent_events: u64,
    /// Before that, only the first multiple of the interval in each stretch of this many
    /// positions (1 to it, the next, …).
    pub past_interval_events: u64,
}

impl RetainedSpacing {
    /// The service's: what a clean stop leaves (`ledger-server` thins with these numbers).
    pub const SERVICE: RetainedSpacing = RetainedSpacing {
        interval_events: crate::RETAINED_INTERVAL_EVENTS,
        recent_events: crate::RETAINED_INTERVAL_EVENTS,
        past_interval_events: crate::RETAINED_COARSE_INTERVALS * crate::RETAINED_INTERVAL_EVENTS,
    };

    /// A snapshot at every multiple of `interval_events`, however old.
    pub fn every(interval_events: u64) -> RetainedSpacing {
        RetainedSpacing {
            interval_events,
            recent_events: u64::MAX,
            past_interval_events: interval_events,
        }
    }

    /// Whether a rebuild to `head` leaves a snapshot at `position`.
    fn keeps(&self, position: u64, head: u64) -> bool {
        let interval = self.interval_events.max(1);
        if position % interval != 0 {
            return false;
        }
        let stretch = |position: u64| position.saturating_sub(1) / self.past_interval_events.max(1);
        position >= head.saturating_sub(self.recent_events)
            || position <= interval
            || stretch(position - interval) != stretch(position)
    }
}

/// [`rebuild_with_intervals`] on a store already open: a log kept by a backend (PostgreSQL,
/// opened as its writer so that nobody appends meanwhile), whose checkpoint and retained
/// snapshots are `data_dir`'s.
///
/// The replay is one pipeline (see [`Recovered::fold_range_pipelined`]) from position 1 to
/// the stored checkpoint's position, where the result is encoded and compared, and one from
/// there to the head. What the rebuild leaves on its way runs beside the projections' fold
/// ([`RebuildSaves`]): the year points of the parts that moved since the point before, on the
/// year points' thread, and a copy of the projections at each retained snapshot's position,
/// encoded and written by a thread of its own. None of it stops the read or the state's fold.
pub fn rebuild_store(
    mut store: Store,
    data_dir: &Path,
    spacing: RetainedSpacing,
    year_point_interval_events: u64,
) -> Result<RebuildReport, StartError> {
    index_names_if_needed(&mut store)?;
    let head = store.head();
    let reader = store.reader();
    let checkpoint = store.load_checkpoint()?;
    let retained = RetainedSnapshots::in_data_dir(data_dir);
    forget_retained_beyond(&retained, head.position)?;
    let year_points = YearPoints::beside(&retained);
    year_points.forget_beyond(head.position)?;
    let started = Instant::now();
    let retained_interval_events = spacing.interval_events.max(1);
    std::thread::scope(|scope| {
        let (snapshots, snapshots_to_save) = mpsc::sync_channel(0);
        let retained = &retained;
        let saver = std::thread::Builder::new()
            .name("ledger-rebuild-retain".to_owned())
            .spawn_scoped(scope, move || {
                save_retained(retained, snapshots_to_save, retained_interval_events)
            })
            .map_err(StartError::Thread)?;
        let mut saves = RebuildSaves {
            spacing,
            head: head.position,
            snapshots,
            year_points: YearPointWriter::start_waiting(
                year_points,
                year_point_interval_events.max(1),
            ),
        };
        let mut recovered = Recovered::default();
        let mut matches_checkpoint = None;
        // The bytes of the state at the head, when they were already encoded for the comparison
        // (the checkpoint is at the head, as after a graceful stop): encoding them again would
        // cost as much as a tenth of the replay.
        let mut bytes_at_head = None;
        if let Some(checkpoint) = &checkpoint {
            recovered.fold_range_beside(&reader, 1, checkpoint.head.position, &mut saves)?;
            let bytes = checkpoint_bytes_on_two_threads(&recovered.state, &recovered.projections);
            matches_checkpoint = Some(bytes == checkpoint.bytes);
            if checkpoint.head.position == head.position {
                bytes_at_head = Some(bytes);
            } else {
                recovered.fold_range_beside(
                    &reader,
                    checkpoint.head.position + 1,
                    head.position,
                    &mut saves,
                )?;
            }
        } else {
            recovered.fold_range_beside(&reader, 1, head.position, &mut saves)?;
        }
        let bytes = bytes_at_head.unwrap_or_else(|| {
            checkpoint_bytes_on_two_threads(&recovered.state, &recovered.projections)
        });
        // The last snapshot, at the head (the saver passes it over when it saved one there),
        // is encoded and written while the checkpoint is: the projections are not needed after.
        let RebuildSaves {
            snapshots,
            year_points,
            ..
        } = saves;
        // The year points' thread writes the point it was handed, then stops.
        drop(year_points);
        let _ = snapshots.send((head, recovered.projections));
        drop(snapshots);
        let written = store.append_with_checkpoint(Vec::new(), Some(&bytes));
        let retained_snapshots = saver
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.map_err(StartError::Store)?;
        Ok(RebuildReport {
            head,
            events: head.position,
            elapsed: started.elapsed(),
            checkpoint_position: checkpoint
                .as_ref()
                .map(|checkpoint| checkpoint.head.position),
            matches_checkpoint,
            checkpoint_bytes: bytes.len(),
            retained_snapshots,
        })
    })
}

/// The checkpoint bytes of [`checkpoint_bytes`], the state's and the projections' encodings
/// made on two threads at once (each is tens of megabytes after a long history, and a rebuild
/// waits for them).
fn checkpoint_bytes_on_two_threads(state: &LedgerState, projections: &Projections) -> Vec<u8> {
    let encode_state = || postcard::to_stdvec(state).unwrap_or_default();
    let (state, projections) = std::thread::scope(|scope| {
        let state_thread = std::thread::Builder::new()
            .name("ledger-checkpoint-encode".into())
            .spawn_scoped(scope, encode_state);
        let projections = projections.to_bytes();
        let state = match state_thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: encode it here.
            Err(_) => encode_state(),
        };
        (state, projections)
    });
    checkpoint_of_parts(state, projections)
}

/// What a rebuild leaves beside its projections' fold, so that a ledger upgraded from a
/// version without them has them afterwards: a retained snapshot at the multiples of the
/// retained interval its [`RetainedSpacing`] keeps (a copy of the projections handed to the
/// saver thread, which encodes and writes it), and a year point at every multiple of the
/// points' interval (the parts that moved since the point before, handed to the year points'
/// thread, see [`YearPointWriter`]).
struct RebuildSaves {
    spacing: RetainedSpacing,
    /// The head the rebuild replays to.
    head: u64,
    /// To the saver thread: the projections at a head. A rendezvous, so that at most one copy
    /// is held beside the one being written (on the ten-year folder each is ~31 MB encoded, and
    /// the peak RSS grew by up to ~90 MB).
    snapshots: mpsc::SyncSender<(Head, Projections)>,
    year_points: YearPointWriter,
}

impl BesideProjections for RebuildSaves {
    fn folded(&mut self, projections: &Projections, folded: &ReadEvent) {
        self.year_points.note(
            &folded.event,
            folded.original.as_ref().map(|original| &original.event),
        );
        let head = Head {
            position: folded.position,
            hash: folded.hash,
        };
        self.year_points.after_group(projections, &head);
        if self.spacing.keeps(folded.position, self.head) {
            // A saver that stopped costs only snapshots (it logged why).
            let _ = self.snapshots.send((head, projections.clone()));
        }
    }
}

/// The saver thread of a rebuild: saves each snapshot it is handed (see
/// [`retain_projections`]), once per head; the number saved.
fn save_retained(
    retained: &RetainedSnapshots,
    snapshots: mpsc::Receiver<(Head, Projections)>,
    interval_events: u64,
) -> usize {
    let mut saved = 0;
    let mut last_saved = None;
    for (head, projections) in snapshots {
        if last_saved == Some(head.position) {
            continue;
        }
        match retain_projections(retained, &head, &projections, interval_events) {
            Ok(()) => {
                saved += 1;
                last_saved = Some(head.position);
            }
            // A missing snapshot costs a longer replay of an `as_of` report, nothing more.
            Err(error) => {
                tracing::warn!(%error, position = head.position, "retained snapshot not saved")
            }
        }
    }
    saved
}

/// The time recorded on the entry at `position`; the earliest time for an empty log, or an
/// entry whose time does not parse (which only a log not written by the engine holds).
pub fn recorded_time_at(
    reader: &LogReader,
    position: u64,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    if position == 0 {
        return Ok(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    }
    let recorded_at = reader.read_at(position)?.event.recorded_at;
    Ok(chrono::DateTime::parse_from_rfc3339(&recorded_at)
        .map(|time| time.with_timezone(&chrono::Utc))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC))
}

/// The latest position recorded on or before the end of `date` (UTC), for `as_of_date` reads:
/// the ledger as it stood at the end of that day. A binary search over positions, reading
/// about 20 entries for a million: the writer never records a time earlier than the one
/// before (see `Writer::recorded_time`), so recorded times ascend with positions. (In a log
/// written before that rule, where a clock stepped back the times may not ascend; there the
/// search may answer another position near that step than a scan from position 1 would.)
pub fn last_position_on(
    reader: &LogReader,
    date: chrono::NaiveDate,
    head: u64,
) -> Result<u64, StoreError> {
    let end_of_day = format!("{}T23:59:59.999999Z", date.format("%Y-%m-%d"));
    // Invariant: every position up to `low` is on or before the end of the day (position 0
    // trivially), every position after `high` is after it.
    let (mut low, mut high) = (0, head);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        // RFC 3339 UTC with a fixed width compares as text in time order.
        if reader.read_at(middle)?.event.recorded_at.as_str() <= end_of_day.as_str() {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}
