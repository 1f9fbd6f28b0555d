//! The single writer of the ledger.
//!
//! Commands arrive on a bounded channel and are decided one after another, on one dedicated OS
//! thread, against the in-memory [`LedgerState`]: rules that span a company, a provider and a
//! budget are checked without locks or races. Whatever queued while the previous group was
//! being decided forms the next group: its events are encoded and chained into one sled batch
//! (`Store::prepare_append`), which a second thread, the committer, applies, flushes and
//! `fdatasync`s. While it does, the writer decides the next group against the state that
//! already holds the one being synced (a pipeline of depth one). Only once a group is durable
//! are its callers answered (group commit), in order; refusals too, since they were decided
//! against a state that includes every earlier group. A read, a checkpoint or a retry of a
//! command of the group in flight first waits for that group to be durable and answered.
//!
//! Blocking sled calls happen only on the writer and committer threads, never on the async
//! runtime's workers. At start the writer loads the latest checkpoint and replays the log after
//! it (recomputing the hash chain as it goes), and refuses to start on a log it cannot replay.
//!
//! What it is not: it does not parse wire input (the server does), and it serves no reports
//! beyond [`EngineHandle::read`], a consistent look at the state between groups.

pub mod business_date;
pub mod clock;
pub mod follower;
pub mod reconnect;
pub mod recovery;
pub mod stats;
pub mod subscription;
pub mod year_points;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use ledger_domain::{
    decide, Command, Context, Event, LedgerState, PolicyTable, Principal, Refusal,
};
use ledger_projections::{ProjectionError, Projections};
use ledger_store::{
    Head, LogReader, NewCommand, NewEvent, RecordedEvent, RetainedSnapshots, Store, StoreError,
    StoreOptions, StoredRequest,
};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use recovery::{
    projections_as_of, rebuild, recover, replay_to, RebuildReport, Recovered, Recovery,
};
pub use stats::GroupStats;
pub use subscription::{Published, Subscription, SubscriptionError};

/// Most commands decided and written as one group: bounds the size of one sled batch and the
/// latency the first command of a group waits for the last. 1 024 commands of at most a few
/// events each stay far below a megabyte of batch.
pub const GROUP_LEN_MAX: usize = 1024;

/// Most commands waiting for the writer: beyond it, `submit` waits (backpressure on callers)
/// instead of growing memory without bound.
pub const QUEUE_LEN_MAX: usize = 8192;

/// Most commands in one [`EngineHandle::submit_batch`]: a batch always fits one group, so its
/// commands are decided together and made durable by one flush.
pub const BATCH_LEN_MAX: usize = 1000;

const _: () = assert!(BATCH_LEN_MAX <= GROUP_LEN_MAX);

/// Events between two checkpoints, at least. Encoding a checkpoint costs time in proportion to
/// the state (a few megabytes for a whole year of the scheme), so it is done at most every
/// 50 000 events; a restart then replays at most that many events after the checkpoint, well
/// under a second. A long history stretches it (see [`checkpoint_interval_events`]).
pub const CHECKPOINT_INTERVAL_EVENTS: u64 = 50_000;

/// Bytes of checkpoint body encoded per event appended, at most, once the history is long: the
/// interval between two checkpoints grows with the last checkpoint's body so that their cost
/// per event stays bounded. After ten simulated years a checkpoint's body is 110–170 MB, and its
/// thread took 7.6–11.6 s per checkpoint (2.4–4.0 s to encode, compress and write the body; then
/// a retained snapshot every other time, the fold of the request records, a seal), due every
/// 50 000 events: at 12 000 redemptions a second, a core busy nearly all the time beside the
/// writer on a two-core machine.
pub const CHECKPOINT_BODY_BYTES_PER_EVENT: u64 = 1_000;

/// The configured checkpoint interval stretches at most this many times (see
/// [`checkpoint_interval_events`]): a start after a crash then replays at most this many
/// intervals more (200 000 events by default, a second or two).
pub const CHECKPOINT_INTERVAL_STRETCH_MAX: u64 = 4;

/// The events between two checkpoints, after one whose body was `last_body_bytes` (0 before
/// the first): one event per [`CHECKPOINT_BODY_BYTES_PER_EVENT`] of it, at least `configured`
/// and at most [`CHECKPOINT_INTERVAL_STRETCH_MAX`] times it.
pub fn checkpoint_interval_events(configured: u64, last_body_bytes: u64) -> u64 {
    let stretched_max = configured.saturating_mul(CHECKPOINT_INTERVAL_STRETCH_MAX);
    (last_body_bytes / CHECKPOINT_BODY_BYTES_PER_EVENT).clamp(configured, stretched_max)
}

/// How many checkpoint intervals the writer may run past the last snapshot before a due
/// checkpoint waits for the one still being written. Below it, a due checkpoint whose
/// predecessor's thread is still at work (it also folds the request records and seals a
/// segment: seconds on a long log) is taken at the first group after that thread is done, and
/// the writer goes on deciding meanwhile: waiting there was the batched phase's 3-second stall.
/// At it, the writer waits, so that a start's replay stays bounded on a disk too slow to keep
/// up.
pub const CHECKPOINT_LAG_INTERVALS_MAX: u64 = 4;

/// Whether the writer takes a checkpoint's snapshot before its next group: an interval after
/// the last one, once the thread writing the one before is done (see
/// [`CHECKPOINT_LAG_INTERVALS_MAX`]).
fn checkpoint_due(
    events_since_checkpoint: u64,
    interval_events: u64,
    lag_intervals_max: u64,
    writing: bool,
) -> bool {
    let lag_max = interval_events.saturating_mul(lag_intervals_max);
    events_since_checkpoint >= interval_events && (!writing || events_since_checkpoint >= lag_max)
}

/// The stretch of positions with one retained snapshot of the projections (see
/// [`recovery::retain_projections`]): a report `as_of` a past position replays at most about
/// this many events (and the checkpoints' lag, one interval and at most
/// [`CHECKPOINT_LAG_INTERVALS_MAX`]) after the nearest snapshot, whatever the
/// length of the log, and the data folder holds one snapshot per this many events. Snapshots
/// are taken with checkpoints, every [`CHECKPOINT_INTERVAL_EVENTS`] or the stretched interval
/// of [`checkpoint_interval_events`].
pub const RETAINED_INTERVAL_EVENTS: u64 = 100_000;

/// Retained intervals between two snapshots of the past kept by a clean stop's thinning and
/// written by a rebuild ([`recovery::RetainedSpacing::SERVICE`]): four, so that a report as of
/// an old position replays at most about 400 000 events.
pub const RETAINED_COARSE_INTERVALS: u64 = 4;

/// Durable groups kept for live subscribers that have not read them yet (tokio rounds it up to
/// a power of two). A subscriber more than this many groups behind is dropped and told to
/// resume from its last position: `send` never waits for it, so the writer never slows down.
/// Memory is bounded too: a group is held only until every subscriber has read it, and never
/// more than this many groups (of at most [`GROUP_LEN_MAX`] commands); subscribers that keep
/// up hold a handful. 1 024 groups is several seconds of the heaviest load, room for a
/// subscriber's network to hiccup.
pub const BROADCAST_CAPACITY_GROUPS: usize = 1024;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub policy: PolicyTable,
    pub group_len_max: usize,
    pub queue_len_max: usize,
    pub checkpoint_interval_events: u64,
    /// See [`CHECKPOINT_LAG_INTERVALS_MAX`]; 1 waits for the checkpoint being written at every
    /// due point (tests that count on each checkpoint being written before the next).
    pub checkpoint_lag_intervals_max: u64,
    /// See [`RETAINED_INTERVAL_EVENTS`].
    pub retained_interval_events: u64,
    /// See [`year_points::YEAR_POINT_INTERVAL_EVENTS`].
    pub year_point_interval_events: u64,
    /// Entries per segment file of the sealed past when the log is sled's
    /// ([`StoreOptions::segment_len_events`]); a backend's log has no segments.
    pub segment_len_events: u64,
    /// See [`BROADCAST_CAPACITY_GROUPS`]; tests make it small to see a subscriber fall behind.
    pub broadcast_capacity_groups: usize,
    /// How the writer opens its log again after losing a backend's connection (issue 19, see
    /// [`reconnect`]); `None`: a failed commit stops the process, as a failed `fdatasync` does.
    pub reconnect: Option<reconnect::Reconnect>,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>, policy: PolicyTable) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            policy,
            group_len_max: GROUP_LEN_MAX,
            queue_len_max: QUEUE_LEN_MAX,
            checkpoint_interval_events: CHECKPOINT_INTERVAL_EVENTS,
            checkpoint_lag_intervals_max: CHECKPOINT_LAG_INTERVALS_MAX,
            retained_interval_events: RETAINED_INTERVAL_EVENTS,
            year_point_interval_events: year_points::YEAR_POINT_INTERVAL_EVENTS,
            segment_len_events: ledger_store::SEGMENT_LEN_EVENTS_DEFAULT,
            broadcast_capacity_groups: BROADCAST_CAPACITY_GROUPS,
            reconnect: None,
        }
    }
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("event log cannot be opened: {0}")]
    Store(#[from] StoreError),
    #[error("event at position {position} cannot be decoded: {source}")]
    Undecodable {
        position: u64,
        source: ledger_codec::DecodeError,
    },
    #[error("event at position {position} does not fit the state: {source}")]
    Inconsistent {
        position: u64,
        source: ledger_domain::state::Inconsistency,
    },
    #[error("{source}")]
    Projection { source: ProjectionError },
    #[error("writer thread cannot be started: {0}")]
    Thread(std::io::Error),
}

/// An accepted command: the events it recorded, durable before this was sent.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub request_id: Uuid,
    /// Position of the first event, or head + 1 at the time when the command wrote none.
    pub first_position: u64,
    pub events: Vec<RecordedEvent>,
    pub recorded_at: String,
    /// True when this answers a retry: nothing was written this time.
    pub replayed: bool,
}

/// Why a submission did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The ledger refused the command; nothing was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The engine has stopped (shutdown or a fatal store error); the command may not have been
    /// decided. A retry with the same request id is safe.
    #[error("the ledger's writer is not running")]
    Unavailable,
    /// This process is a hot standby (see [`follower`]): it answers reads, and writes go to
    /// the writer, at `writer` when it advertised where it serves. Nothing was decided.
    #[error("this ledger process is a standby, not the writer")]
    NotTheWriter { writer: Option<String> },
}

/// What a read sees: the decision state, the projections and the log, all at the same position.
#[derive(Debug)]
pub struct View<'a> {
    pub state: &'a LedgerState,
    pub projections: &'a Projections,
    pub store: &'a Store,
    /// The dated policy the rules decide with: the query calls read quotas from it.
    pub policy: &'a PolicyTable,
}

type ReadFn = Box<dyn FnOnce(&View<'_>) + Send>;

// The common message is one command: boxing it would cost an allocation per command to save
// a queue slot's bytes (tokio's channel allocates slots in blocks, as the queue fills).
#[allow(
    clippy::large_enum_variant,
    reason = "a submission is the common message; boxing it allocates per command"
)]
enum Message {
    Submit(Submission),
    /// Commands of one batch call, kept together in one group and in this order.
    SubmitBatch(Vec<Submission>),
    Read(ReadFn),
    Shutdown(oneshot::Sender<Head>),
}

struct Submission {
    request_id: Uuid,
    principal: Principal,
    command: Command,
    /// [`request_digest`] of the principal and command, computed by the caller's task before
    /// the submission is queued: hashing needs no state, so it runs on the handlers' threads,
    /// in parallel, and not on the writer's, which decides every command one after another.
    digest: [u8; 32],
    /// The principal as the log records it on each event, written by the caller's task too.
    principal_text: String,
    reply: oneshot::Sender<Result<Outcome, SubmitError>>,
}

/// A cheap, cloneable way to talk to the writer.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    sender: mpsc::Sender<Message>,
    reader: LogReader,
    retained: RetainedSnapshots,
    /// Weak, so that the channel closes (and subscribers learn it) when the writer stops.
    published: broadcast::WeakSender<Published>,
    counters: Arc<stats::Counters>,
}

impl EngineHandle {
    /// Decides `command` as `principal`; answers once its events are durable. The same
    /// `request_id` with the same command and principal answers the original outcome again and
    /// writes nothing; with anything else it is refused with [`Refusal::RequestIdReused`].
    pub async fn submit(
        &self,
        request_id: Uuid,
        principal: Principal,
        command: Command,
    ) -> Result<Outcome, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let digest = request_digest(&principal, &command);
        let submission = Submission {
            request_id,
            principal_text: principal.to_string(),
            principal,
            command,
            digest,
            reply,
        };
        self.sender
            .send(Message::Submit(submission))
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)?
    }

    /// Decides every command of `batch`, in order, each on its own as [`submit`](Self::submit)
    /// would (a refused one refuses none of the others; a request id repeated in the batch is a
    /// retry of its first occurrence), in one group: the answers come back together, in the
    /// batch's order, once that group is durable. At most [`BATCH_LEN_MAX`] commands (more
    /// are still decided, split over several groups). The outer error means the writer is
    /// not running: some of the batch may have been written, and a retry is safe.
    pub async fn submit_batch(
        &self,
        batch: Vec<(Uuid, Principal, Command)>,
    ) -> Result<Vec<Result<Outcome, SubmitError>>, SubmitError> {
        let mut submissions = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        for (request_id, principal, command) in batch {
            let (reply, answer) = oneshot::channel();
            let digest = request_digest(&principal, &command);
            submissions.push(Submission {
                request_id,
                principal_text: principal.to_string(),
                principal,
                command,
                digest,
                reply,
            });
            answers.push(answer);
        }
        if submissions.is_empty() {
            return Ok(Vec::new());
        }
        self.sender
            .send(Message::SubmitBatch(submissions))
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.map_err(|_| SubmitError::Unavailable)?);
        }
        Ok(outcomes)
    }

    /// Runs `read` on the writer thread between two groups, so it sees a state where every
    /// event is durable and no command is half-applied. Keep it short: the writer waits.
    pub async fn read<T, F>(&self, read: F) -> Result<T, SubmitError>
    where
        T: Send + 'static,
        F: FnOnce(&View<'_>) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let read: ReadFn = Box::new(move |view| {
            // The caller may have given up waiting; then there is nobody to tell.
            let _ = reply.send(read(view));
        });
        self.sender
            .send(Message::Read(read))
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)
    }

    /// The writer's group-commit counters since it started, and the queue's length now.
    pub fn stats(&self) -> GroupStats {
        let queue_len = self.sender.max_capacity() - self.sender.capacity();
        self.counters.snapshot(queue_len)
    }

    /// The head of the log: position and hash of its last event.
    pub async fn head(&self) -> Result<Head, SubmitError> {
        self.read(|view| view.store.head()).await
    }

    /// A read-only handle on the log, for long reads (point-in-time reports, audits) that must
    /// not hold up the writer.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// The projections as of `position` (at most the head), from the nearest retained snapshot
    /// (see [`recovery::projections_as_of`]). Blocking: call it from `spawn_blocking`; the
    /// writer never waits for it.
    pub fn projections_as_of(&self, position: u64) -> Result<Projections, StartError> {
        recovery::projections_as_of(&self.reader, &self.retained, position)
    }

    /// The budgets and `year`'s summary figures as of `position` (at most the head), from the
    /// nearest year point (see [`year_points`]); `None` when there is no usable one, and the
    /// caller takes [`EngineHandle::projections_as_of`]. Blocking, like it.
    pub fn year_summary_as_of(
        &self,
        position: u64,
        year: i32,
    ) -> Result<Option<ledger_projections::YearSummaryFold>, StartError> {
        year_points::YearPoints::beside(&self.retained).summary_as_of(&self.reader, position, year)
    }

    /// The budgets, `year`'s figures and what they are broken down by, as of `position` (at
    /// most the head), from the nearest year point: the budget, companies and training hours
    /// reports (see [`year_points::YearPoints::report_as_of`]); `None` as for
    /// [`EngineHandle::year_summary_as_of`]. Blocking, like it.
    pub fn year_report_as_of(
        &self,
        position: u64,
        year: i32,
    ) -> Result<Option<ledger_projections::YearReportFold>, StartError> {
        year_points::YearPoints::beside(&self.retained).report_as_of(&self.reader, position, year)
    }

    /// The budgets as of `position` (at most the head), from the nearest year point's index
    /// (see [`year_points::YearPoints::budgets_as_of`]); `None` as for
    /// [`EngineHandle::year_summary_as_of`]. Blocking, like it.
    pub fn budgets_as_of(
        &self,
        position: u64,
    ) -> Result<Option<year_points::BudgetsAsOf>, StartError> {
        year_points::YearPoints::beside(&self.retained).budgets_as_of(&self.reader, position)
    }

    /// Every event from `from_position` on (0 means 1), in order, each once: first from the
    /// log, then live as the writer makes groups durable. See [`Subscription`].
    pub fn subscribe(&self, from_position: u64) -> Subscription {
        Subscription::new(self.clone(), from_position)
    }

    /// A receiver of every group made durable from now on, or `None` once the writer stopped.
    pub(crate) fn subscribe_live(&self) -> Option<broadcast::Receiver<Published>> {
        self.published.upgrade().map(|sender| sender.subscribe())
    }
}

/// The running writer.
#[derive(Debug)]
pub struct Engine {
    handle: EngineHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Opens the log in `config.data_dir`, replays it to rebuild the state, and starts the
    /// writer thread. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn start(config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine, StartError> {
        // The checkpoint is read and decoded while sled opens (see `EarlyCheckpoint::read`).
        let checkpoint_file = ledger_store::CheckpointFile::in_data_dir(&config.data_dir);
        let (store, early) = std::thread::scope(|scope| {
            let early = std::thread::Builder::new()
                .name("ledger-checkpoint-read".into())
                .spawn_scoped(scope, || recovery::EarlyCheckpoint::read(&checkpoint_file));
            let options = StoreOptions {
                segment_len_events: config.segment_len_events,
                ..Engine::store_options()
            };
            let store = Store::open_with_options(&config.data_dir, options);
            let early = match early {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: the store reads the checkpoint itself.
                Err(_) => None,
            };
            (store, early)
        });
        Engine::start_with(store?, config, clock, early)
    }

    /// How the engine opens its store: the fingerprints of the recorded ids are read once the
    /// state is recovered (see [`StoreOptions::defer_index_loading`]). For a caller that
    /// opens a store kept by a backend (`Store::open_backend`) and starts on it.
    pub fn store_options() -> StoreOptions {
        StoreOptions {
            defer_index_loading: true,
            ..StoreOptions::default()
        }
    }

    /// [`Engine::start`] on a store the caller opened, sled's or one kept by a backend
    /// (PostgreSQL): the same recovery, writer and committer threads. `config.data_dir` is
    /// still where the retained snapshots of the projections are kept.
    pub fn start_on(
        store: Store,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, StartError> {
        Engine::start_with(store, config, clock, None)
    }

    fn start_with(
        mut store: Store,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        early: Option<recovery::EarlyCheckpoint>,
    ) -> Result<Engine, StartError> {
        recovery::index_names_if_needed(&mut store)?;
        let recovery = recovery::recover_from(&store, early)?;
        // Only now: reading every recorded id would compete with the recovery for the CPU.
        store.load_indexes();
        tracing::info!(
            head_position = store.head().position,
            data_dir = %config.data_dir.display(),
            "ledger state rebuilt from the log"
        );
        let (sender, receiver) = mpsc::channel(config.queue_len_max.max(1));
        let (published, _) = broadcast::channel(config.broadcast_capacity_groups.max(1));
        let policy = Arc::new(config.policy.clone());
        let reader = store.reader();
        let recorded_floor = recovery::recorded_time_at(&reader, store.head().position)?;
        let retained = RetainedSnapshots::in_data_dir(&config.data_dir);
        recovery::forget_retained_beyond(&retained, store.head().position)?;
        let counters = Arc::new(stats::Counters::default());
        let handle = EngineHandle {
            sender,
            reader,
            retained: retained.clone(),
            published: published.downgrade(),
            counters: Arc::clone(&counters),
        };
        let parts = reconnect::WriterParts {
            policy,
            config,
            clock,
            receiver,
            published,
            counters,
            retained,
        };
        // The events replayed are not in any checkpoint yet.
        let writer = parts.into_writer(store, recovery, recorded_floor)?;
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || reconnect::run_writer(writer))
            .map_err(StartError::Thread)?;
        Ok(Engine {
            handle,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Finishes every command queued before this call, makes it durable, stops the writer and
    /// returns the final head.
    pub async fn shutdown(mut self) -> Option<Head> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .handle
            .sender
            .send(Message::Shutdown(reply))
            .await
            .is_ok();
        let head = if sent { answer.await.ok() } else { None };
        if let Some(thread) = self.thread.take() {
            // Joining waits at most for the writer to drop its store after the final flush.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        head
    }
}

/// Saves the fingerprints of the recorded ids beside a checkpoint, which also folds the group
/// records before its head into their own keys; a failure costs the next start a read of every
/// recorded id, nothing more. The position folded through, when the save went through.
fn save_fingerprints(
    file: &ledger_store::FingerprintFile,
    snapshot: &ledger_store::FingerprintSnapshot,
) -> Option<u64> {
    let position = snapshot.head().position;
    match file.save(snapshot) {
        Ok(true) => Some(position),
        Ok(false) => {
            tracing::info!(
                position,
                "fingerprints of the recorded ids not saved: still being read"
            );
            Some(position)
        }
        Err(error) => {
            tracing::warn!(%error, position, "fingerprints of the recorded ids not saved");
            None
        }
    }
}

/// What the checkpoint thread reports once done: the head of the checkpoint it wrote with the
/// length of its body, and the position through which the group records were folded (see
/// `ledger_store::FingerprintFile`).
struct CheckpointWritten {
    written: Option<(Head, u64)>,
    folded_through: Option<u64>,
}

/// Rebuilds the decision state from position 1, ignoring any checkpoint, recomputing the hash
/// chain on the way (the store's reads check every hash).
pub fn replay(store: &Store) -> Result<LedgerState, StartError> {
    Ok(replay_to(&store.reader(), store.head().position)?.state)
}

/// The domain event of a recorded event.
pub fn decode(recorded: &RecordedEvent) -> Result<Event, ledger_codec::DecodeError> {
    let payload = recorded
        .event
        .payload
        .as_ref()
        .ok_or(ledger_codec::DecodeError { field: "payload" })?;
    ledger_codec::decode_event(payload)
}

/// The digest that tells a retry (same digest) from another request under the same id.
pub fn request_digest(principal: &Principal, command: &Command) -> [u8; 32] {
    digest_of(principal, &command.canonical_bytes())
}

/// The digest a request record written before the canonical encoding's version 2 holds (the
/// command as serde_json wrote it): a retry across the upgrade of a request acknowledged
/// before it still gets its receipt instead of `REQUEST_ID_REUSED`.
pub fn request_digest_json_v1(principal: &Principal, command: &Command) -> [u8; 32] {
    digest_of(principal, &command.canonical_bytes_json_v1())
}

fn digest_of(principal: &Principal, command_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"voucher-ledger/request/v1\0");
    hasher.update(principal.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(command_bytes);
    hasher.finalize().into()
}

/// Today's date for the rules. Belgium is UTC+1 in winter and UTC+2 in summer; reading the date
/// two hours ahead of UTC means a date that is today in Brussels is never refused as being in
/// the future (at worst a date is accepted up to an hour early in winter).
pub fn business_today(now: DateTime<Utc>) -> NaiveDate {
    (now + TimeDelta::hours(2)).date_naive()
}

struct Writer {
    /// Each durable group's events, for live subscribers; the only strong sender.
    published: broadcast::Sender<Published>,
    store: Store,
    state: LedgerState,
    projections: Projections,
    /// The time recorded on the latest group (see [`Writer::recorded_time`]).
    recorded_floor: DateTime<Utc>,
    /// Where each checkpoint's projections are also kept (see [`recovery::retain_projections`]).
    retained: RetainedSnapshots,
    /// Events appended since the last checkpoint was written.
    events_since_checkpoint: u64,
    /// The length of the last checkpoint's body this writer wrote, 0 before the first: the
    /// interval to the next grows with it (see [`checkpoint_interval_events`]).
    checkpoint_body_bytes: u64,
    /// The year summaries' points (see [`year_points`]).
    year_points: year_points::YearPointWriter,
    policy: Arc<PolicyTable>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    receiver: mpsc::Receiver<Message>,
    counters: Arc<stats::Counters>,
    /// Prepared groups for the committer thread, which applies, flushes and syncs them in
    /// order and sends each one's recorded events back on `commit_done`.
    /// `None` only while the writer is dropped.
    commit_jobs: Option<std::sync::mpsc::Sender<ledger_store::PreparedAppend>>,
    committer_thread: Option<std::thread::JoinHandle<()>>,
    commit_done: std::sync::mpsc::Receiver<Vec<Vec<RecordedEvent>>>,
    /// The group handed to the committer and not yet answered; at most one.
    pending: Option<InFlight>,
    /// A checkpoint being encoded and written by a thread of its own: the head it reflects
    /// arrives here once it is written (or given up, with a warning in the log).
    checkpoint_writing: Option<std::sync::mpsc::Receiver<CheckpointWritten>>,
    /// Groups committed so far; the sequence number of the group being decided.
    group_sequence: u64,
    /// The redemptions loaded into the state, each with the last group that needed it: it is
    /// forgotten once that group is durable and answered (see `LedgerState::redemptions`).
    loaded_redemptions: HashMap<Uuid, u64>,
    /// Issue 19: the log's backend failed a commit or a read (see [`reconnect`]). The state
    /// may hold events the log does not: nothing is answered from it any more, and
    /// [`reconnect::run_writer`] recovers from the log anew. A `Cell`, set from `&self` reads.
    backend_lost: std::cell::Cell<bool>,
    /// Issue 19: the head of the last group made durable, which the log must still reach once
    /// the writer has reconnected.
    durable_position: u64,
}

impl Drop for Writer {
    /// The committer thread holds a handle on sled: it is stopped and joined before the store
    /// is dropped, so that the log's file lock is let go when the writer thread ends (a restart
    /// in the same process opens it right after).
    fn drop(&mut self) {
        self.commit_jobs.take();
        if let Some(thread) = self.committer_thread.take() {
            let _ = thread.join();
        }
    }
}

/// A group decided and prepared, being made durable by the committer thread: its callers are
/// answered by [`Writer::finish_pending`] once it is.
struct InFlight {
    group: Vec<Submission>,
    decisions: Vec<Decision>,
    decided: Vec<Vec<Event>>,
    /// The request ids the group accepted, and their index in it.
    accepted: HashMap<Uuid, usize>,
    first_positions: Vec<u64>,
    recorded_at: String,
    appended: u64,
    /// Whether a batch was handed to the committer (a group of refusals and retries has none).
    committing: bool,
    started: std::time::Instant,
    /// Its sequence number (see `Writer::group_sequence`).
    sequence: u64,
}

/// The group being decided: what every decision needs (the rules' date and policy, and the
/// time recorded on the group) and what the accepted commands have added so far.
struct GroupDraft {
    /// The business date of the rules (see [`business_today`]).
    today: NaiveDate,
    policy: Arc<PolicyTable>,
    recorded_at: String,
    /// The accepted commands, for the store, in order.
    commands: Vec<NewCommand>,
    /// Their events, for the projections and the answers.
    decided: Vec<Vec<Event>>,
    /// The request id of each accepted command, and its index in `commands`.
    in_group: HashMap<Uuid, usize>,
}

/// What became of one submission of a group, before the group is durable.
enum Decision {
    Accepted {
        command_index: usize,
    },
    Replay(StoredRequest),
    /// A retry of a command accepted earlier in the same group.
    ReplayInGroup {
        command_index: usize,
    },
    Refused(Refusal),
}

/// The backend's connection was lost while a group was prepared: the writer answers
/// `UNAVAILABLE` and reconnects (issue 19).
struct BackendLost;

impl Writer {
    fn run(&mut self) {
        let mut held: Option<Message> = None;
        loop {
            if self.backend_lost.get() {
                return;
            }
            let message = match held.take() {
                Some(message) => message,
                None => match self.receiver.try_recv() {
                    Ok(message) => message,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Nothing to decide meanwhile: answer the group in flight, then wait.
                        self.finish_pending();
                        // Lost on that group: reconnect now, not at the next message.
                        if self.backend_lost.get() {
                            return;
                        }
                        match self.receiver.blocking_recv() {
                            Some(message) => message,
                            // Every handle is gone: nothing more can arrive.
                            None => break,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                },
            };
            match message {
                Message::Submit(first) => self.commit_queued(vec![first], &mut held),
                Message::SubmitBatch(batch) => {
                    let len_max = self.config.group_len_max.max(1);
                    if batch.len() > len_max {
                        // Only a configuration with groups shorter than a batch gets here.
                        for group in chunk(batch, len_max) {
                            self.commit_group(group);
                        }
                    } else {
                        self.commit_queued(batch, &mut held);
                    }
                }
                Message::Read(read) => {
                    // A read sees only durable state: the group in flight is finished first.
                    self.finish_pending();
                    if self.backend_lost.get() {
                        continue; // dropped unanswered: UNAVAILABLE
                    }
                    read(&self.view());
                }
                Message::Shutdown(reply) => {
                    // Commands queued before the shutdown are still decided and made durable.
                    self.receiver.close();
                    let mut rest = Vec::new();
                    while let Ok(message) = self.receiver.try_recv() {
                        match message {
                            Message::Submit(submission) => rest.push(submission),
                            Message::SubmitBatch(batch) => rest.extend(batch),
                            Message::Read(read) => {
                                self.finish_pending();
                                if !self.backend_lost.get() {
                                    read(&self.view());
                                }
                            }
                            Message::Shutdown(_) => {}
                        }
                    }
                    for group in chunk(rest, self.config.group_len_max) {
                        self.commit_group(group);
                    }
                    self.write_final_checkpoint();
                    let head = self.store.head();
                    tracing::info!(head_position = head.position, "ledger writer stopped");
                    let _ = reply.send(head);
                    return;
                }
            }
        }
        self.write_final_checkpoint();
    }

    /// Adds to `group` whatever commands wait in the queue, up to the group's length limit,
    /// and commits them as one group. A read, a shutdown, or a batch that does not fit whole
    /// is left in `held` for the next turn: a batch is not split between groups (only the
    /// commands left when the writer stops are cut into groups regardless of their batches).
    fn commit_queued(&mut self, mut group: Vec<Submission>, held: &mut Option<Message>) {
        let len_max = self.config.group_len_max.max(1);
        while group.len() < len_max {
            match self.receiver.try_recv() {
                Ok(Message::Submit(next)) => group.push(next),
                Ok(Message::SubmitBatch(batch)) if group.len() + batch.len() <= len_max => {
                    group.extend(batch);
                }
                Ok(other) => {
                    *held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        self.commit_group(group);
    }

    /// Decides `group` against the state (which already holds the group in flight, if any),
    /// prepares its batch, then finishes the group in flight and hands this one to the
    /// committer thread: deciding group N+1 overlaps with making group N durable, and answers
    /// still go out in order, each only once its own group (and so every earlier one) is
    /// durable.
    fn commit_group(&mut self, group: Vec<Submission>) {
        if self.backend_lost.get() {
            return reconnect::answer_unavailable(group);
        }
        self.poll_checkpoint();
        // A due checkpoint is a snapshot taken before the group changes the state (the
        // projections reach the head only once the group in flight is finished), encoded and
        // written to its file by a thread of its own. A start then replays from its position.
        if checkpoint_due(
            self.events_since_checkpoint,
            checkpoint_interval_events(
                self.config.checkpoint_interval_events,
                self.checkpoint_body_bytes,
            ),
            self.config.checkpoint_lag_intervals_max,
            self.checkpoint_writing.is_some(),
        ) {
            self.snapshot_for_checkpoint();
        }
        let (decisions, draft) = self.decide_group(&group);
        let GroupDraft {
            recorded_at,
            commands,
            decided,
            in_group,
            ..
        } = draft;
        let prepared = match self.prepare_group(commands) {
            Ok(prepared) => prepared,
            Err(BackendLost) => {
                // Issue 19: the group in flight is answered as its commit went.
                self.finish_pending();
                return reconnect::answer_unavailable(group);
            }
        };
        let (appended, first_positions) = match &prepared {
            Some(prepared) => self.positions_of(prepared),
            None => (0, Vec::new()),
        };
        self.events_since_checkpoint += appended;

        // The group before is answered first; then this one goes to the committer, and the
        // writer is free to decide the next while it is written and synced.
        self.finish_pending();
        if self.backend_lost.get() {
            return reconnect::answer_unavailable(group);
        }
        let started = std::time::Instant::now();
        let committing = prepared.is_some();
        if let Some(prepared) = prepared {
            self.hand_to_committer(prepared);
        }
        self.pending = Some(InFlight {
            group,
            decisions,
            decided,
            accepted: in_group,
            first_positions,
            recorded_at,
            appended,
            committing,
            started,
            sequence: self.group_sequence,
        });
        self.group_sequence += 1;
    }

    /// Decides every submission of `group` in order against the state, which takes each
    /// accepted command's events at once: what became of each, and the accepted commands.
    fn decide_group(&mut self, group: &[Submission]) -> (Vec<Decision>, GroupDraft) {
        let now = self.clock.now();
        let recorded = self.recorded_time(now);
        let policy = Arc::clone(&self.policy);
        let mut draft = GroupDraft {
            today: business_today(now),
            policy,
            recorded_at: recorded.to_rfc3339_opts(SecondsFormat::Micros, true),
            commands: Vec::new(),
            decided: Vec::new(),
            in_group: HashMap::new(),
        };
        let mut decisions = Vec::with_capacity(group.len());
        for submission in group {
            decisions.push(self.decide_one(submission, &mut draft));
        }
        (decisions, draft)
    }

    /// The accepted commands encoded, positioned and chained into one batch, or `None` when
    /// no command was accepted; `BackendLost` when the backend's connection was lost on the
    /// way (issue 19: the writer reconnects).
    fn prepare_group(
        &mut self,
        commands: Vec<NewCommand>,
    ) -> Result<Option<ledger_store::PreparedAppend>, BackendLost> {
        if commands.is_empty() {
            return Ok(None);
        }
        match self.store.prepare_append(commands) {
            Ok(prepared) => Ok(Some(prepared)),
            Err(error) if self.lose_backend_on(&error) => Err(BackendLost),
            Err(error) => {
                // The state already holds the group's events; it cannot be rolled back, so the
                // only safe answer is to stop before anyone sees it.
                tracing::error!(%error, "append of a decided group failed; stopping");
                std::process::abort();
            }
        }
    }

    /// The events a prepared group appends, and the first position of each of its commands.
    fn positions_of(&self, prepared: &ledger_store::PreparedAppend) -> (u64, Vec<u64>) {
        let recorded = prepared.recorded();
        let first_positions = (0..recorded.len())
            .map(|command_index| match recorded[command_index].first() {
                Some(event) => event.position,
                None => self.first_position_of(command_index, recorded),
            })
            .collect();
        (
            recorded.iter().map(|events| events.len() as u64).sum(),
            first_positions,
        )
    }

    /// Hands a prepared group to the committer thread, which applies, flushes and syncs it.
    fn hand_to_committer(&mut self, prepared: ledger_store::PreparedAppend) {
        let sent = self
            .commit_jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(prepared).is_ok());
        if !sent {
            tracing::error!("the committer thread is gone; stopping");
            std::process::abort();
        }
    }

    /// Makes redemption `id` visible to the rules for the group being decided: loaded from the
    /// log when the log holds it and the state does not (a redemption of a group not yet
    /// durable is still in the state, since only durable ones are forgotten).
    fn load_redemption(&mut self, redemption_id: Uuid) {
        self.loaded_redemptions
            .insert(redemption_id, self.group_sequence);
        if self.state.redemptions.contains_key(&redemption_id) {
            return;
        }
        if let Some((original, reversed)) = self.read_redemption(redemption_id) {
            self.state.load_redemption(&original, reversed);
        }
    }

    /// The `HoursRedeemed` event of redemption `id` as the durable log holds it, and whether a
    /// reversal of it followed; `None` when the log holds no redemption of that id.
    fn read_redemption(
        &self,
        redemption_id: Uuid,
    ) -> Option<(ledger_domain::event::HoursRedeemed, bool)> {
        let found =
            self.store
                .positions_naming(redemption_id)
                .and_then(|positions| match positions.first() {
                    Some(&first) => Ok(Some((self.store.read_range(first, 1)?, positions.len()))),
                    None => Ok(None),
                });
        let (recorded, named_times) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            // Issue 19: the group that needed it is answered unavailable.
            Err(error) if self.lose_backend_on(&error) => return None,
            Err(error) => {
                tracing::error!(%error, %redemption_id, "redemption unreadable; stopping");
                std::process::abort();
            }
        };
        match recorded.first().map(decode) {
            Some(Ok(Event::HoursRedeemed(original))) => Some((original, named_times > 1)),
            other => {
                tracing::error!(
                    %redemption_id,
                    found = ?other.map(|decoded| decoded.map(|event| event.type_name())),
                    "the index names an event that is not the redemption; stopping"
                );
                std::process::abort();
            }
        }
    }

    /// The time recorded on a group decided at `now`: `now`, or the time recorded on the group
    /// before when the clock reads earlier (stepped back by NTP or by hand). So recorded times
    /// never go backwards along the log, and "the ledger as of the end of a day" is a binary
    /// search over positions ([`recovery::last_position_on`]). The business date of the rules
    /// still follows the clock.
    fn recorded_time(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        if now < self.recorded_floor {
            tracing::warn!(
                clock = %now.to_rfc3339_opts(SecondsFormat::Micros, true),
                recorded_before = %self.recorded_floor.to_rfc3339_opts(SecondsFormat::Micros, true),
                "the clock reads earlier than the last recorded time; recording that time again"
            );
            return self.recorded_floor;
        }
        self.recorded_floor = now;
        now
    }

    /// Takes a snapshot of the state and the projections at the durable head for a checkpoint,
    /// and hands it to a thread that encodes it, writes the checkpoint file and keeps its
    /// projections as a retained snapshot: none of it in a group's batch, so no caller waits
    /// for a checkpoint, however large. The state and the projections are persistent maps, so
    /// the snapshot shares their nodes (see `ledger_domain::state`) and costs microseconds. A
    /// checkpoint still being written is waited for first, which [`Writer::commit_group`] only
    /// lets happen [`CHECKPOINT_LAG_INTERVALS_MAX`] intervals after the last one: at most two
    /// snapshots are held.
    fn snapshot_for_checkpoint(&mut self) {
        self.wait_for_checkpoint();
        self.finish_pending();
        if self.backend_lost.get() {
            return;
        }
        let head = self.store.head();
        let copying = std::time::Instant::now();
        let snapshot = Recovered {
            state: self.state.clone(),
            projections: self.projections.clone(),
        };
        self.counters.record_checkpoint_copy(copying.elapsed());
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let checkpoint_file = self.store.checkpoint_file();
        // The fingerprints of the recorded ids at the same head, saved with the checkpoint so
        // that a start does not read every request record (see `ledger_store::FingerprintFile`).
        let fingerprints = self
            .store
            .fingerprint_snapshot()
            .zip(self.store.fingerprint_file());
        let retained = self.retained.clone();
        let retained_interval_events = self.config.retained_interval_events;
        let spawned = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let body_bytes = match checkpoint_file
                    .save_streamed(&head, &mut |out| snapshot.write_checkpoint(out))
                {
                    Ok(body_bytes) => Some(body_bytes),
                    Err(error) => {
                        // A missing checkpoint costs a longer replay at the next start.
                        tracing::warn!(%error, position = head.position, "checkpoint not written");
                        None
                    }
                };
                let written_ms = started.elapsed().as_millis();
                // Each part of the snapshot goes as soon as nothing more reads it: while it
                // lives, every node the writer changes is copied (the maps are persistent), so
                // a snapshot held through the fold of the request records below cost the
                // serving process up to a second copy of the state.
                let Recovered { state, projections } = snapshot;
                drop(state);
                if let Err(error) = recovery::retain_projections(
                    &retained,
                    &head,
                    &projections,
                    retained_interval_events,
                ) {
                    // A missing snapshot costs a longer replay of an `as_of` report, nothing more.
                    tracing::warn!(%error, position = head.position, "retained snapshot not saved");
                }
                drop(projections);
                let folded_through = fingerprints
                    .and_then(|(fingerprints, file)| save_fingerprints(&file, &fingerprints));
                if let Some(body_bytes) = body_bytes {
                    tracing::info!(
                        position = head.position,
                        body_bytes,
                        written_ms,
                        elapsed_ms = started.elapsed().as_millis(),
                        "checkpoint written"
                    );
                }
                let _ = sender.send(CheckpointWritten {
                    written: body_bytes.map(|body_bytes| (head, body_bytes)),
                    folded_through,
                });
            });
        match spawned {
            Ok(_) => {
                self.checkpoint_writing = Some(receiver);
                self.events_since_checkpoint = 0;
            }
            // A missing checkpoint costs a longer replay at the next start, nothing more.
            Err(error) => tracing::warn!(%error, "checkpoint thread cannot be started"),
        }
    }

    /// Waits for the checkpoint being written, if any; the head it reflects once written.
    fn wait_for_checkpoint(&mut self) -> Option<Head> {
        let writing = self.checkpoint_writing.take()?;
        match writing.recv() {
            Ok(written) => self.checkpoint_done(written),
            Err(_) => {
                tracing::warn!("checkpoint thread stopped; no checkpoint");
                None
            }
        }
    }

    /// Takes the report of the checkpoint thread when it is done, without waiting: the request
    /// records it folded into sled's keys leave the store's memory as soon as it is.
    fn poll_checkpoint(&mut self) {
        let Some(writing) = &self.checkpoint_writing else {
            return;
        };
        match writing.try_recv() {
            Ok(written) => {
                self.checkpoint_writing = None;
                self.checkpoint_done(written);
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.checkpoint_writing = None;
                tracing::warn!("checkpoint thread stopped; no checkpoint");
            }
        }
    }

    fn checkpoint_done(&mut self, written: CheckpointWritten) -> Option<Head> {
        if let Some(position) = written.folded_through {
            self.store.forget_folded(position);
        }
        let (head, body_bytes) = written.written?;
        self.checkpoint_body_bytes = body_bytes;
        Some(head)
    }

    /// Waits until the group in flight, if any, is durable, then folds it into the
    /// projections, publishes it to live subscribers and answers its callers.
    fn finish_pending(&mut self) {
        let Some(in_flight) = self.pending.take() else {
            return;
        };
        let mut recorded = if in_flight.committing {
            match self.commit_done.recv() {
                Ok(recorded) => {
                    if let Some(last) = recorded.iter().flatten().last() {
                        self.durable_position = last.position;
                    }
                    recorded
                }
                Err(_) if self.config.reconnect.is_some() => {
                    // Issue 19: the backend's commit failed, its outcome unknown.
                    return self.lose_backend(in_flight.group);
                }
                Err(_) => {
                    // The committer stops the process on a failed write; a vanished one is a
                    // bug, and nobody of the group may be told it is durable.
                    tracing::error!("the committer thread stopped; stopping");
                    std::process::abort();
                }
            }
        } else {
            Vec::new()
        };
        let InFlight {
            group,
            decisions,
            decided,
            accepted: _,
            first_positions,
            recorded_at,
            appended,
            committing: _,
            started,
            sequence,
        } = in_flight;
        // The redemptions only this group (or earlier ones) needed are durable in the log now.
        let state = &mut self.state;
        self.loaded_redemptions
            .retain(|redemption_id, last_needed_by| {
                let keep = *last_needed_by > sequence;
                if !keep {
                    state.forget_redemption(*redemption_id);
                }
                keep
            });
        self.counters
            .record_group(group.len(), appended, started.elapsed());
        for (events, recorded_events) in decided.iter().zip(&recorded) {
            for (event, recorded_event) in events.iter().zip(recorded_events) {
                let mut reversed = None;
                if let Event::RedemptionReversed(reversal) = event {
                    let original = self.read_redemption(reversal.redemption_id);
                    match original {
                        Some((original, _)) => {
                            self.projections.load_redemption(&original);
                            reversed = Some(original);
                        }
                        // Issue 19: durable, but the state will be recovered from the log.
                        None if self.backend_lost.get() => {
                            return reconnect::answer_unavailable(group);
                        }
                        None => {
                            tracing::error!(
                                redemption_id = %reversal.redemption_id,
                                "a reversal was decided for a redemption the log does not hold; stopping"
                            );
                            std::process::abort();
                        }
                    }
                }
                if let Err(error) = self.projections.apply(recorded_event.position, event) {
                    // The projections follow the same events as the state; a refusal here is a
                    // bug, and answering would publish figures that do not follow the log.
                    tracing::error!(%error, "durable event does not fit the projections; stopping");
                    std::process::abort();
                }
                self.year_points.note(event, reversed.as_ref());
            }
        }
        if let Some(last) = recorded.iter().flatten().next_back() {
            let head = Head {
                position: last.position,
                hash: last.hash,
            };
            self.year_points.after_group(&self.projections, &head);
        }

        // Durable now: live subscribers may see the group, before any caller of it is answered.
        // `send` never waits; it fails only when nobody listens, and then nothing is copied.
        if appended > 0 && self.published.receiver_count() > 0 {
            let events: Published = recorded.iter().flatten().cloned().collect();
            let _ = self.published.send(events);
        }

        // Each command's events go to its caller by move; only a command that a retry in the
        // same group also answers (rare) is copied.
        let retried_in_group: HashSet<usize> = decisions
            .iter()
            .filter_map(|decision| match decision {
                Decision::ReplayInGroup { command_index } => Some(*command_index),
                _ => None,
            })
            .collect();
        for (submission, decision) in group.into_iter().zip(decisions) {
            let answer = match decision {
                Decision::Accepted { command_index }
                | Decision::ReplayInGroup { command_index } => {
                    let replayed = matches!(decision, Decision::ReplayInGroup { .. });
                    let events = match recorded.get_mut(command_index) {
                        Some(events) if retried_in_group.contains(&command_index) => events.clone(),
                        Some(events) => std::mem::take(events),
                        None => Vec::new(),
                    };
                    let Some(&first_position) = first_positions.get(command_index) else {
                        tracing::error!(
                            command_index,
                            "accepted command has no position; stopping"
                        );
                        std::process::abort();
                    };
                    Ok(Outcome {
                        request_id: submission.request_id,
                        first_position,
                        events,
                        recorded_at: recorded_at.clone(),
                        replayed,
                    })
                }
                Decision::Replay(stored) => self.replay_outcome(submission.request_id, stored),
                Decision::Refused(refusal) => Err(SubmitError::Refused(refusal)),
            };
            // A caller that stopped waiting (client gone) does not undo a durable command.
            let _ = submission.reply.send(answer);
        }
    }

    /// For a command of the group that wrote no event: head + 1 at its place in the group.
    fn first_position_of(&self, command_index: usize, recorded: &[Vec<RecordedEvent>]) -> u64 {
        let events_after: u64 = recorded[command_index..]
            .iter()
            .map(|events| events.len() as u64)
            .sum();
        self.store.head().position - events_after + 1
    }

    /// Decides one submission of the group being drafted: a refusal, a retry answered from the
    /// log or from the group, or an accepted command whose events the state takes at once.
    fn decide_one(&mut self, submission: &Submission, draft: &mut GroupDraft) -> Decision {
        let digest = submission.digest;
        let GroupDraft {
            today,
            policy,
            recorded_at,
            commands,
            decided,
            in_group,
        } = draft;
        let context = &Context {
            today: *today,
            policy,
        };
        // Permission first: who may not act learns nothing about other requests' ids.
        if let Err(refusal) = ledger_domain::authorize(&submission.principal, &submission.command) {
            return Decision::Refused(refusal);
        }
        if let Some(&command_index) = in_group.get(&submission.request_id) {
            return if commands[command_index].request_digest == digest {
                Decision::ReplayInGroup { command_index }
            } else {
                Decision::Refused(Refusal::RequestIdReused)
            };
        }
        // A retry of a command of the group in flight: its record is not in sled until that
        // group is committed, so finish it first; the store then answers as for any retry.
        if self
            .pending
            .as_ref()
            .is_some_and(|in_flight| in_flight.accepted.contains_key(&submission.request_id))
        {
            self.finish_pending();
        }
        match self.store.request(submission.request_id) {
            Ok(Some(stored)) if stored.request_digest == digest => return Decision::Replay(stored),
            Ok(Some(stored))
                if stored.request_digest
                    == request_digest_json_v1(&submission.principal, &submission.command) =>
            {
                return Decision::Replay(stored)
            }
            Ok(Some(_)) => return Decision::Refused(Refusal::RequestIdReused),
            Ok(None) => {}
            // Issue 19: the whole group is answered unavailable (see `commit_group`).
            Err(error) if self.lose_backend_on(&error) => {
                return Decision::Refused(Refusal::RequestIdReused)
            }
            Err(error) => {
                tracing::error!(%error, request_id = %submission.request_id, "request record unreadable; stopping");
                std::process::abort();
            }
        }
        if let Some(redemption_id) = submission.command.redemption_named() {
            self.load_redemption(redemption_id);
        }
        let events = match decide(&self.state, &submission.command, context) {
            Ok(events) => events,
            Err(refusal) => return Decision::Refused(refusal),
        };
        let new_events: Vec<NewEvent> = events
            .iter()
            .map(|event| NewEvent {
                stream: event.stream(),
                event_id: Uuid::new_v4(),
                request_id: submission.request_id,
                principal: submission.principal_text.clone(),
                recorded_at: recorded_at.to_owned(),
                business_date: ledger_codec::encode_date(
                    event.business_date().unwrap_or(context.today),
                ),
                payload: ledger_codec::encode_event(event),
                names: event.redemption_named(),
            })
            .collect();
        if let Some(bytes) = new_events
            .iter()
            .map(encoded_len)
            .find(|bytes| *bytes > ledger_store::EVENT_BYTES_MAX)
        {
            return Decision::Refused(Refusal::EventTooLarge {
                bytes,
                bytes_max: ledger_store::EVENT_BYTES_MAX,
            });
        }
        for event in &events {
            if let Err(inconsistency) = self.state.apply(event) {
                // decide() produced an event its own state rejects: a bug, and the state is now
                // partly changed. Stop before anything is written or answered.
                tracing::error!(%inconsistency, "decided event does not apply; stopping");
                std::process::abort();
            }
        }
        in_group.insert(submission.request_id, commands.len());
        commands.push(NewCommand {
            request_id: submission.request_id,
            request_digest: digest,
            recorded_at: recorded_at.to_owned(),
            events: new_events,
        });
        decided.push(events);
        Decision::Accepted {
            command_index: commands.len() - 1,
        }
    }

    fn view(&self) -> View<'_> {
        View {
            state: &self.state,
            projections: &self.projections,
            store: &self.store,
            policy: &self.policy,
        }
    }

    /// At shutdown: a checkpoint at the head when events came after the last one, so the next
    /// start replays nothing; otherwise just the final flush. And the fingerprints of the
    /// recorded ids at the head, whatever the checkpoint: a start after an upgrade read them
    /// from the whole log, and saving them here spares the next start that read.
    fn write_final_checkpoint(&mut self) {
        self.finish_pending();
        if self.backend_lost.get() {
            return;
        }
        // A checkpoint written since the last event is the checkpoint at the head already; one
        // that failed is written again here.
        let was_writing = self.checkpoint_writing.is_some();
        let written = self.wait_for_checkpoint();
        // After the checkpoint thread is done: it saves fingerprints to the same file.
        self.save_final_fingerprints();
        let head = self.store.head();
        let failed = was_writing && written.is_none();
        if written == Some(head) || (self.events_since_checkpoint == 0 && !failed) {
            self.store.sync();
            return;
        }
        // Streamed, as the checkpoint thread writes it: encoded whole into a `Vec`, a ten-year
        // checkpoint (150 MB) took the stopping server from ~0.8 to 1.12 GB, above what it
        // held while serving. The snapshot shares every node of the maps.
        let snapshot = Recovered {
            state: self.state.clone(),
            projections: self.projections.clone(),
        };
        match self
            .store
            .checkpoint_file()
            .save_streamed(&head, &mut |out| snapshot.write_checkpoint(out))
        {
            Ok(_) => self.events_since_checkpoint = 0,
            // A missing checkpoint costs a longer replay at the next start, nothing more.
            Err(error) => tracing::warn!(%error, "final checkpoint not written"),
        }
        self.store.sync();
    }

    /// Saves the fingerprints of the recorded ids at the head (nothing is in flight).
    fn save_final_fingerprints(&mut self) {
        if let Some((fingerprints, file)) = self
            .store
            .fingerprint_snapshot()
            .zip(self.store.fingerprint_file())
        {
            if let Some(position) = save_fingerprints(&file, &fingerprints) {
                self.store.forget_folded(position);
            }
        }
    }

    fn replay_outcome(
        &self,
        request_id: Uuid,
        stored: StoredRequest,
    ) -> Result<Outcome, SubmitError> {
        let events = match self
            .store
            .read_range(stored.first_position, stored.event_count as usize)
        {
            Ok(events) => events,
            Err(error) if self.lose_backend_on(&error) => return Err(SubmitError::Unavailable),
            Err(error) => {
                tracing::error!(%error, %request_id, "events of a recorded request unreadable; stopping");
                std::process::abort();
            }
        };
        Ok(Outcome {
            request_id,
            first_position: stored.first_position,
            events,
            recorded_at: stored.recorded_at,
            replayed: true,
        })
    }
}

/// Encoded size of the event the store will write, envelope included (positions at their
/// widest), so that the store's size limit is checked before the state changes. Counted field
/// by field as prost encodes them, without building (and copying the payload into) a message.
fn encoded_len(event: &NewEvent) -> usize {
    use prost::encoding::{encoded_len_varint, key_len};
    // proto3 leaves empty strings out.
    let string = |tag: u32, len: usize| {
        if len == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(len as u64) + len
        }
    };
    let widest_u64 = |tag: u32| key_len(tag) + encoded_len_varint(u64::MAX);
    const UUID_TEXT_BYTES: usize = 36;
    widest_u64(1)
        + string(2, event.stream.len())
        + widest_u64(3)
        + string(4, UUID_TEXT_BYTES)
        + string(5, UUID_TEXT_BYTES)
        + string(6, event.principal.len())
        + string(7, event.recorded_at.len())
        + string(8, event.business_date.len())
        + event.payload.encoded_len()
}

fn chunk<T>(items: Vec<T>, len_max: usize) -> Vec<Vec<T>> {
    let mut groups = Vec::new();
    let mut current = Vec::new();
    for item in items {
        current.push(item);
        if current.len() >= len_max.max(1) {
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_checkpoint_waits_for_the_one_being_written_only_past_the_lag() {
        // Not yet an interval: never.
        assert!(!checkpoint_due(49_999, 50_000, 4, false));
        // An interval, and no checkpoint being written: now.
        assert!(checkpoint_due(50_000, 50_000, 4, false));
        // One still being written: the writer goes on deciding until the lag...
        assert!(!checkpoint_due(50_000, 50_000, 4, true));
        assert!(!checkpoint_due(199_999, 50_000, 4, true));
        // ...and waits for it there.
        assert!(checkpoint_due(200_000, 50_000, 4, true));
        // A lag of one interval waits at every due point, as before the lag.
        assert!(checkpoint_due(50_000, 50_000, 1, true));
        // A huge interval does not overflow into "always due".
        assert!(!checkpoint_due(1, u64::MAX, 4, true));
    }

    #[test]
    fn the_checkpoint_interval_grows_with_the_last_body_between_the_configured_one_and_its_stretch()
    {
        // Before the first checkpoint, and after small ones: the configured interval.
        assert_eq!(checkpoint_interval_events(50_000, 0), 50_000);
        assert_eq!(checkpoint_interval_events(50_000, 49_999_999), 50_000);
        // A ten-year body (149 MB): one event per 1 000 bytes of it.
        assert_eq!(checkpoint_interval_events(50_000, 149_264_989), 149_264);
        // Never more than four times the configured interval.
        assert_eq!(checkpoint_interval_events(50_000, 200_000_001), 200_000);
        assert_eq!(checkpoint_interval_events(50_000, u64::MAX), 200_000);
        // A small configured interval (the tests') stays small for small bodies, and one that
        // would overflow its stretch stays at least itself.
        assert_eq!(checkpoint_interval_events(10, 5_000), 10);
        assert_eq!(checkpoint_interval_events(10, 25_000), 25);
        assert_eq!(checkpoint_interval_events(u64::MAX, 1), u64::MAX);
    }
}
