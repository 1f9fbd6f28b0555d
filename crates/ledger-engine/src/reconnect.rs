//! The writer reconnecting to its log (issue 19): when a log kept by a backend (PostgreSQL)
//! loses the writer's connection, the process goes on instead of stopping, once the log is
//! reachable again (the same primary back, or a promoted standby found through a multi-host
//! connection string).
//!
//! What it keeps true: a group whose commit outcome is unknown is never answered OK. The
//! committer thread ends on that failure ([`run_committer`]); the writer answers that group,
//! and every command and read after it, `Unavailable` ([`crate::SubmitError::Unavailable`]),
//! since its state may hold events the log does not. Then [`run_writer`] drops that state,
//! opens the log again as its writer ([`ReopenWriter`]: a new connection, the writer's lock,
//! a new epoch), recovers the state from the local checkpoint and the log after it, exactly
//! as a start does, and runs a new writer on the same channel: the handles given out keep
//! working, and retries with the same request ids get `replayed` or their write. The events
//! of the unknown group, if the log has them, go to live subscribers then.
//!
//! Tries with a backoff from [`RECONNECT_BACKOFF_FIRST_MS`] to [`RECONNECT_BACKOFF_MAX_MS`],
//! until [`Reconnect::deadline`] (also while another process holds the writer's lock: the lost
//! session itself until the server has noticed it is gone, or a standby that took over); then,
//! or when the log ends before what this process had made durable (a standby promoted that
//! did not have every acknowledged write), it stops the process, as a failed `fdatasync` does.
//!
//! What it is not: a retry of the commit (never: its outcome is only known from the log), nor
//! used by sled, whose failed writes still stop the process.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_domain::PolicyTable;
use ledger_store::{
    Committer, PreparedAppend, RecordedEvent, RetainedSnapshots, Store, StoreError,
};
use tokio::sync::{broadcast, mpsc};

use crate::recovery::{self, Recovered, Recovery};
use crate::subscription::Published;
use crate::{stats, Clock, EngineConfig, Message, StartError, Submission, SubmitError, Writer};

/// The first pause between two attempts to reconnect, in milliseconds: a connection cut while
/// the server stays up is made again at once; a primary being promoted takes a second or two.
pub const RECONNECT_BACKOFF_FIRST_MS: u64 = 100;

/// The longest pause between two attempts, in milliseconds: doubled from the first up to this,
/// so that a promotion that took long is still noticed within two seconds, and a database down
/// for minutes gets a connection attempt every two seconds, not a storm.
pub const RECONNECT_BACKOFF_MAX_MS: u64 = 2_000;

/// How a writer opens its log again after losing the backend's connection.
pub trait ReopenWriter: Send + Sync {
    /// Opens the log as its writer on a new connection: the writer's lock taken and a new
    /// epoch, which fences out whatever the lost connection might still do. `Err` while the
    /// log cannot be reached, or the lock is held: by the lost session itself until the
    /// server notices it is gone, or by a standby that took over (then the deadline ends it).
    fn reopen(&self) -> Result<Store, ReopenError>;
}

/// Why [`ReopenWriter::reopen`] did not open the log this time; either way the writer tries
/// again until its deadline.
#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    /// Another session holds the writer's lock: the lost session itself until the server
    /// notices it is gone, or a standby that took over (which then writes, and this process
    /// stops at its deadline unless the lock is let go before).
    #[error("another process holds the writer's lock: {0}")]
    LockHeld(#[source] StoreError),
    /// The log cannot be reached or opened now.
    #[error(transparent)]
    Unreachable(#[from] StoreError),
}

/// The writer's reconnection, in [`EngineConfig::reconnect`].
#[derive(Clone)]
pub struct Reconnect {
    pub reopen: Arc<dyn ReopenWriter>,
    /// How long the writer tries before it stops the process (the setting
    /// `postgres_reconnect_deadline_seconds`).
    pub deadline: Duration,
}

impl std::fmt::Debug for Reconnect {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Reconnect")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The committer thread's loop: makes each prepared group durable and sends back its recorded
/// events. A failed commit stops the process, or, when the writer can reconnect, ends this
/// thread (the writer sees its channel closed and stops answering).
pub(crate) fn run_committer(
    committer: &Committer,
    jobs: std::sync::mpsc::Receiver<PreparedAppend>,
    done: &std::sync::mpsc::Sender<Vec<Vec<RecordedEvent>>>,
    flush: bool,
    can_reconnect: bool,
) {
    for prepared in jobs {
        let recorded = match committer.try_commit(prepared, flush) {
            Ok(recorded) => recorded,
            Err(error) if can_reconnect => {
                tracing::error!(%error, "commit of a group to the event log failed; the writer stops answering and reconnects");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "write to the event log failed, stopping the process");
                std::process::abort();
            }
        };
        if done.send(recorded).is_err() {
            return;
        }
    }
}

/// Answers every submission of `group` `Unavailable`: nothing of it may be said durable.
pub(crate) fn answer_unavailable(group: Vec<Submission>) {
    for submission in group {
        let _ = submission.reply.send(Err(SubmitError::Unavailable));
    }
}

impl Writer {
    /// The committer ended on a failed commit of the group in flight, `group`: nobody of it is
    /// answered OK, and the writer stops answering from a state that may hold it.
    pub(crate) fn lose_backend(&mut self, group: Vec<Submission>) {
        tracing::warn!(
            durable_position = self.durable_position,
            unanswered_commands = group.len(),
            "the group in flight has an unknown outcome; answering unavailable until the writer has reconnected"
        );
        self.backend_lost.set(true);
        answer_unavailable(group);
    }

    /// Whether `error`, met by the writer reading its log, is the backend's and the writer can
    /// reconnect: then it is lost (see [`Writer::lose_backend`]), and the group being decided
    /// is answered unavailable; otherwise the caller stops the process, as before.
    pub(crate) fn lose_backend_on(&self, error: &StoreError) -> bool {
        if self.config.reconnect.is_none() || !matches!(error, StoreError::Backend { .. }) {
            return false;
        }
        if !self.backend_lost.get() {
            tracing::warn!(%error, durable_position = self.durable_position, "the writer cannot read its event log; answering unavailable until it has reconnected");
        }
        self.backend_lost.set(true);
        true
    }
}

/// The writer thread: runs the writer; after a lost backend, reconnects and runs a new one on
/// the same channel, for as long as the engine runs.
pub(crate) fn run_writer(mut writer: Writer) {
    loop {
        writer.run();
        if !writer.backend_lost.get() {
            return;
        }
        let durable_position = writer.durable_position;
        let Some(reconnect) = writer.config.reconnect.clone() else {
            return;
        };
        // Stopping, or every handle gone: nothing to reconnect for.
        if writer.receiver.is_closed() {
            return;
        }
        let parts = WriterParts::take(&mut writer);
        // Joins the committer, which ended; closes the lost connections.
        drop(writer);
        match parts.reconnect(&reconnect, durable_position) {
            Some(next) => writer = next,
            None => return,
        }
    }
}

/// What a writer hands to the next one on the same thread: the channel its handles send on,
/// the live subscribers', the counters, and its settings. Also a hot standby's, when it takes
/// over (see [`crate::follower`]).
pub(crate) struct WriterParts {
    pub(crate) policy: Arc<PolicyTable>,
    pub(crate) config: EngineConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) receiver: mpsc::Receiver<Message>,
    pub(crate) published: broadcast::Sender<Published>,
    pub(crate) counters: Arc<stats::Counters>,
    pub(crate) retained: RetainedSnapshots,
}

impl WriterParts {
    fn take(writer: &mut Writer) -> WriterParts {
        // The writer is dropped right after: its receiver is replaced by one nobody sends on.
        let (_, closed) = mpsc::channel(1);
        WriterParts {
            policy: Arc::clone(&writer.policy),
            config: writer.config.clone(),
            clock: Arc::clone(&writer.clock),
            receiver: std::mem::replace(&mut writer.receiver, closed),
            published: writer.published.clone(),
            counters: Arc::clone(&writer.counters),
            retained: writer.retained.clone(),
        }
    }

    /// Tries to open the log again until the deadline, answering every message meanwhile;
    /// then recovers and returns the next writer. `None` when the engine is stopped meanwhile.
    fn reconnect(mut self, reconnect: &Reconnect, durable_position: u64) -> Option<Writer> {
        let runtime = timer_or_stop("writer");
        let lost_at = Instant::now();
        let deadline = lost_at + reconnect.deadline;
        let mut backoff = Duration::from_millis(RECONNECT_BACKOFF_FIRST_MS);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let lock_held = match reconnect.reopen.reopen() {
                Ok(store) => {
                    drop(runtime);
                    return Some(self.resume(store, durable_position, lost_at, attempts));
                }
                Err(ReopenError::LockHeld(error)) => {
                    tracing::warn!(%error, attempts, "the writer's lock is held by another process (the lost session, or a standby that took over); trying again until the deadline");
                    true
                }
                Err(ReopenError::Unreachable(error)) => {
                    tracing::warn!(%error, attempts, "the writer cannot reach its event log yet; trying again");
                    false
                }
            };
            let now = Instant::now();
            if now >= deadline {
                if lock_held {
                    tracing::error!(
                        deadline_seconds = reconnect.deadline.as_secs(),
                        attempts,
                        "the writer's lock was still held by another process at the reconnect deadline (a standby took over as the writer?); stopping"
                    );
                } else {
                    tracing::error!(
                        deadline_seconds = reconnect.deadline.as_secs(),
                        attempts,
                        "the writer could not reach its event log before the deadline; stopping"
                    );
                }
                std::process::abort();
            }
            let wait_until = (now + backoff).min(deadline);
            match receive_until(
                &runtime,
                &mut self.receiver,
                wait_until,
                refuse_while_reconnecting,
            ) {
                Waited::Deadline => {}
                Waited::Closed => return None,
                Waited::Stopped => {
                    self.receiver.close();
                    return None;
                }
            }
            backoff = (backoff * 2).min(Duration::from_millis(RECONNECT_BACKOFF_MAX_MS));
        }
    }

    /// Recovers the state from the reopened log, as a start does, and starts the next writer.
    fn resume(
        self,
        mut store: Store,
        durable_position: u64,
        lost_at: Instant,
        attempts: u32,
    ) -> Writer {
        let resumed = (|| -> Result<_, StartError> {
            let head = store.head();
            if head.position < durable_position {
                tracing::error!(
                    head_position = head.position,
                    durable_position,
                    "the event log ends before what this writer made durable: acknowledged writes are missing (was a standby that was not synchronous promoted?); stopping"
                );
                std::process::abort();
            }
            let recovery = recovery::recover(&store)?;
            store.load_indexes();
            recovery::forget_retained_beyond(&self.retained, head.position)?;
            let reader = store.reader();
            let recorded_floor = recovery::recorded_time_at(&reader, head.position)?;
            // The unknown group, and only it, is between the two: live subscribers get its
            // events now if it made it, as they would have from the lost writer.
            if head.position > durable_position && self.published.receiver_count() > 0 {
                let events = reader
                    .iter(durable_position + 1, head.position)
                    .collect::<Result<Vec<_>, _>>()?;
                let _ = self.published.send(Published::from(events));
            }
            Ok((recovery, recorded_floor))
        })();
        let (recovery, recorded_floor) = match resumed {
            Ok(resumed) => resumed,
            Err(error) => {
                tracing::error!(%error, "the reopened event log cannot be recovered; stopping");
                std::process::abort();
            }
        };
        tracing::info!(
            head_position = store.head().position,
            durable_position,
            replayed_events = recovery.replayed_events,
            attempts,
            reconnect_ms = lost_at.elapsed().as_millis() as u64,
            "writer reconnected to the event log; serving again"
        );
        match self.into_writer(store, recovery, recorded_floor) {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, "the reconnected writer cannot be started; stopping");
                std::process::abort();
            }
        }
    }

    /// A writer on `store`, whose state and projections are `recovered` at its head, with a
    /// committer thread of its own: the one way a writer is built, at a start
    /// (`Engine::start_on`), after a reconnection and when a standby takes over.
    pub(crate) fn into_writer(
        self,
        store: Store,
        recovery: Recovery,
        recorded_floor: chrono::DateTime<chrono::Utc>,
    ) -> Result<Writer, StartError> {
        let Recovery {
            recovered,
            replayed_events: events_since_checkpoint,
            checkpoint_body_bytes,
        } = recovery;
        let (commit_jobs, commit_job_receiver) = std::sync::mpsc::channel();
        let (commit_done_sender, commit_done) = std::sync::mpsc::channel();
        let committer = store.committer();
        let flush = store.flushes_every_append();
        let can_reconnect = self.config.reconnect.is_some();
        let committer_thread = std::thread::Builder::new()
            .name("ledger-commit".into())
            .spawn(move || {
                run_committer(
                    &committer,
                    commit_job_receiver,
                    &commit_done_sender,
                    flush,
                    can_reconnect,
                );
            })
            .map_err(StartError::Thread)?;
        let WriterParts {
            policy,
            config,
            clock,
            receiver,
            published,
            counters,
            retained,
        } = self;
        let Recovered { state, projections } = recovered;
        let head_position = store.head().position;
        // A new writer (reconnected, or a promoted standby) keeps year points from here on.
        let year_points = crate::year_points::YearPointWriter::start(
            crate::year_points::YearPoints::beside(&retained),
            head_position,
            config.year_point_interval_events,
        );
        Ok(Writer {
            year_points,
            commit_jobs: Some(commit_jobs),
            committer_thread: Some(committer_thread),
            commit_done,
            pending: None,
            checkpoint_writing: None,
            group_sequence: 0,
            loaded_redemptions: std::collections::HashMap::new(),
            published,
            store,
            state,
            projections,
            retained,
            recorded_floor,
            events_since_checkpoint,
            checkpoint_body_bytes,
            policy,
            config,
            clock,
            receiver,
            counters,
            backend_lost: std::cell::Cell::new(false),
            durable_position: head_position,
        })
    }
}

/// Answers one message that arrived while the writer reconnects: writes and reads
/// `Unavailable` (a retry with the same request id is safe). `Break` for a shutdown, which
/// ends the engine.
fn refuse_while_reconnecting(message: Message) -> ControlFlow<()> {
    match message {
        Message::Submit(submission) => answer_unavailable(vec![submission]),
        Message::SubmitBatch(batch) => answer_unavailable(batch),
        // Dropped unanswered: the caller gets `Unavailable`.
        Message::Read(_) => {}
        // Dropped: there is no durable head to report until the log is reached again.
        Message::Shutdown(_) => return ControlFlow::Break(()),
    }
    ControlFlow::Continue(())
}

/// How [`receive_until`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The deadline passed.
    Deadline,
    /// Every sender is gone: nothing more can arrive.
    Closed,
    /// `on_message` said to stop (a shutdown).
    Stopped,
}

/// Hands each message that arrives before `deadline` to `on_message`, until the deadline, the
/// channel's end, or `on_message` breaks: how a thread that also polls a backend (a writer
/// reconnecting, a standby following) answers its channel between two polls. `runtime` is
/// only a timer; the blocking calls to the backend are made outside it (its client drives a
/// runtime of its own).
pub(crate) fn receive_until(
    runtime: &tokio::runtime::Runtime,
    receiver: &mut mpsc::Receiver<Message>,
    deadline: Instant,
    mut on_message: impl FnMut(Message) -> ControlFlow<()>,
) -> Waited {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Waited::Deadline;
        }
        match runtime.block_on(async { tokio::time::timeout(remaining, receiver.recv()).await }) {
            Err(_elapsed) => return Waited::Deadline,
            Ok(None) => return Waited::Closed,
            Ok(Some(message)) => {
                if on_message(message).is_break() {
                    return Waited::Stopped;
                }
            }
        }
    }
}

/// A thread's timer for [`receive_until`]; the process stops when it cannot be started (`who`
/// says whose, in the log line).
pub(crate) fn timer_or_stop(who: &str) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, thread = who, "a thread's timer cannot be started; stopping");
            std::process::abort();
        }
    }
}
