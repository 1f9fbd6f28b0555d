//! The hot standby (issue 19): an engine that follows a log another process writes, on a
//! store kept by a shared backend (PostgreSQL), and becomes its writer when it can.
//!
//! While another process writes, the follower's thread reads the groups that process
//! commits, by position, checks that each one chains onto the head it holds, and folds them
//! into its decision state and projections: reads ([`EngineHandle::read`], reports, queries,
//! the head, live audit streams) are answered from that warm state, as of the follower's
//! head. Writes are refused with [`SubmitError::NotTheWriter`], naming the writer where it
//! advertised its address. Between two polls it asks its [`Leadership`] for the writer's
//! role; once it has it, it folds what the last writer committed after its last poll and runs
//! the ordinary writer ([`Writer::run`]) on the same thread, with the same channel, state and
//! projections: the handles given out while it followed keep working, and nothing is replayed
//! from position 1.
//!
//! What it is not: a fencing mechanism (the backend's lock and epoch are, see
//! `ledger-store-pg`), nor a writer of the log while it follows: it appends nothing, and its
//! checkpoint is a file of its own data folder, written straight, as a cache of this process.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_domain::PolicyTable;
use ledger_store::{Head, RecordedEvent, RetainedSnapshots, Store, StoreError};
use tokio::sync::{broadcast, mpsc};

use crate::reconnect::{self, Waited, WriterParts};
use crate::recovery::{self, Recovered};
use crate::subscription::Published;
use crate::{
    decode, stats, Clock, Engine, EngineConfig, EngineHandle, Message, StartError, SubmitError,
    View,
};

/// Most events folded between two looks at the channel: a standby far behind (started long
/// after the writer, with no checkpoint) still answers reads every few hundred milliseconds
/// while it catches up, instead of after the whole tail.
pub const FOLLOW_EVENTS_MAX: u64 = 10_000;

/// How a standby becomes the writer: the backend's lock and epoch, outside this crate.
pub trait Leadership: Send {
    /// Tries to become the writer without waiting: the store of the log, open for appending
    /// as its writer, once this process is (the lock taken, earlier writers fenced out);
    /// `Ok(None)` while another process writes.
    fn try_take_over(&mut self) -> Result<Option<Store>, StoreError>;

    /// Where the writer serves, as it advertised it, if known.
    fn writer_address(&mut self) -> Option<String>;
}

impl Engine {
    /// Starts a hot standby on `store`, a store that follows a log another process writes
    /// (opened on the backend to read): recovers the state from the local checkpoint and the
    /// log, then follows the writer every `poll_interval`, answering reads, until
    /// `leadership` gives it the writer's role (see the module documentation). Blocking.
    pub fn start_standby(
        store: Store,
        leadership: Box<dyn Leadership>,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        poll_interval: Duration,
    ) -> Result<Engine, StartError> {
        let recovery::Recovery {
            recovered,
            replayed_events,
            checkpoint_body_bytes,
        } = recovery::recover(&store)?;
        tracing::info!(
            head_position = store.head().position,
            replayed_events,
            data_dir = %config.data_dir.display(),
            "standby: ledger state rebuilt from the log; following the writer"
        );
        let (sender, receiver) = mpsc::channel(config.queue_len_max.max(1));
        let (published, _) = broadcast::channel(config.broadcast_capacity_groups.max(1));
        let retained = RetainedSnapshots::in_data_dir(&config.data_dir);
        recovery::forget_retained_beyond(&retained, store.head().position)?;
        let counters = Arc::new(stats::Counters::default());
        let handle = EngineHandle {
            sender,
            reader: store.reader(),
            retained: retained.clone(),
            published: published.downgrade(),
            counters: Arc::clone(&counters),
        };
        let follower = Follower {
            store,
            recovered,
            policy: Arc::new(config.policy.clone()),
            config,
            clock,
            receiver,
            published,
            counters,
            retained,
            leadership,
            poll_interval,
            writer_address: None,
            events_since_checkpoint: replayed_events,
            checkpoint_body_bytes,
            followed_events: 0,
        };
        let thread = std::thread::Builder::new()
            .name("ledger-follower".into())
            .spawn(move || follower.run())
            .map_err(StartError::Thread)?;
        Ok(Engine {
            handle,
            thread: Some(thread),
        })
    }
}

struct Follower {
    /// Follows the log: its head is the position the state and projections are at.
    store: Store,
    recovered: Recovered,
    policy: Arc<PolicyTable>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    receiver: mpsc::Receiver<Message>,
    published: broadcast::Sender<Published>,
    counters: Arc<stats::Counters>,
    retained: RetainedSnapshots,
    leadership: Box<dyn Leadership>,
    poll_interval: Duration,
    /// The writer's address as last read, for the refusals of writes.
    writer_address: Option<String>,
    /// Events folded since the last checkpoint file was written.
    events_since_checkpoint: u64,
    /// The length of the last checkpoint's body, which the interval stretches with as the
    /// writer's does (see `checkpoint_interval_events`).
    checkpoint_body_bytes: u64,
    /// Events folded while following, since the start.
    followed_events: u64,
}

impl Follower {
    fn run(mut self) {
        let runtime = reconnect::timer_or_stop("standby");
        loop {
            let next_poll = Instant::now() + self.poll_interval;
            // Out of `self` while it waits, for `answer` to borrow the rest.
            let (_, closed) = mpsc::channel(1);
            let mut receiver = std::mem::replace(&mut self.receiver, closed);
            let waited = reconnect::receive_until(&runtime, &mut receiver, next_poll, |message| {
                self.answer(message)
            });
            self.receiver = receiver;
            match waited {
                Waited::Deadline => {}
                // Every handle is gone: nothing more can arrive.
                Waited::Closed => {
                    self.write_checkpoint();
                    return;
                }
                Waited::Stopped => {
                    self.receiver.close();
                    return;
                }
            }
            self.catch_up_or_stop();
            match self.leadership.try_take_over() {
                Ok(Some(store)) => {
                    drop(runtime);
                    return self.become_writer(store);
                }
                Ok(None) => self.writer_address = self.leadership.writer_address(),
                // The database is unreachable for now (a restart, a failover): the writer
                // cannot write either; keep asking.
                Err(error) => {
                    tracing::warn!(%error, "standby cannot ask for the writer's lock; asking again")
                }
            }
        }
    }

    /// Answers one message from the follower's state; `Break` once a shutdown was answered.
    fn answer(&mut self, message: Message) -> ControlFlow<()> {
        match message {
            Message::Submit(submission) => {
                let _ = submission.reply.send(Err(self.not_the_writer()));
            }
            Message::SubmitBatch(batch) => {
                for submission in batch {
                    let _ = submission.reply.send(Err(self.not_the_writer()));
                }
            }
            Message::Read(read) => read(&View {
                state: &self.recovered.state,
                projections: &self.recovered.projections,
                store: &self.store,
                policy: &self.policy,
            }),
            Message::Shutdown(reply) => {
                // The caller closes the channel after (it holds the receiver meanwhile).
                self.write_checkpoint();
                let head = self.store.head();
                tracing::info!(head_position = head.position, "ledger standby stopped");
                let _ = reply.send(head);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn not_the_writer(&self) -> SubmitError {
        SubmitError::NotTheWriter {
            writer: self.writer_address.clone(),
        }
    }

    /// Folds what the writer committed since the last poll; a backend that cannot be read
    /// now is tried again at the next poll, a log that does not fold stops the process (as
    /// a writer's start refuses it).
    fn catch_up_or_stop(&mut self) -> u64 {
        match self.catch_up() {
            Ok(folded) => folded,
            Err(StartError::Store(error @ StoreError::Backend { .. })) => {
                tracing::warn!(%error, "standby cannot read the log now; reading again at the next poll");
                0
            }
            Err(error) => {
                tracing::error!(%error, head_position = self.store.head().position, "the log the standby follows does not fold; stopping");
                std::process::abort();
            }
        }
    }

    /// Folds at most [`FOLLOW_EVENTS_MAX`] events committed after the follower's head into
    /// the state and the projections, each checked against the chain from the head it holds;
    /// publishes them to live subscribers. The number of events folded.
    fn catch_up(&mut self) -> Result<u64, StartError> {
        let reader = self.store.reader();
        let head = self.store.head();
        let stored = reader.head()?;
        if stored.position <= head.position {
            return Ok(0);
        }
        let last_position = stored
            .position
            .min(head.position.saturating_add(FOLLOW_EVENTS_MAX));
        let mut folded: Vec<RecordedEvent> = Vec::new();
        let mut followed = head;
        for recorded in reader.iter(head.position + 1, last_position) {
            let recorded = recorded?;
            // The entry before it is the one this state was folded up to, not another.
            if recorded.prev_hash != followed.hash {
                return Err(StartError::Store(StoreError::ChainBroken(
                    ledger_store::ChainBreak {
                        position: followed.position,
                        kind: ledger_store::ChainBreakKind::HashMismatch {
                            stored: recorded.prev_hash,
                            computed: followed.hash,
                        },
                    },
                )));
            }
            let event = decode(&recorded).map_err(|source| StartError::Undecodable {
                position: recorded.position,
                source,
            })?;
            let original = recovery::original_of(&reader, recorded.position, &event)?;
            self.recovered
                .apply(recorded.position, &event, original.as_ref())?;
            followed = Head {
                position: recorded.position,
                hash: recorded.hash,
            };
            folded.push(recorded);
        }
        self.store.follow_to(followed)?;
        let count = folded.len() as u64;
        if count > 0 && self.published.receiver_count() > 0 {
            let _ = self.published.send(Published::from(folded));
        }
        self.followed_events += count;
        self.events_since_checkpoint += count;
        let interval_events = crate::checkpoint_interval_events(
            self.config.checkpoint_interval_events,
            self.checkpoint_body_bytes,
        );
        if self.events_since_checkpoint >= interval_events {
            self.write_checkpoint();
        }
        Ok(count)
    }

    /// A checkpoint of the followed state in this process's data folder, and a retained
    /// snapshot of its projections: a restart of the standby, or its takeover after one,
    /// replays only what came after it. A missing one costs a longer replay, nothing more.
    fn write_checkpoint(&mut self) {
        if self.events_since_checkpoint == 0 {
            return;
        }
        let head = self.store.head();
        match self
            .store
            .checkpoint_file()
            .save_streamed(&head, &mut |out| self.recovered.write_checkpoint(out))
        {
            Ok(body_bytes) => self.checkpoint_body_bytes = body_bytes,
            Err(error) => {
                tracing::warn!(%error, position = head.position, "standby checkpoint not written");
                return;
            }
        }
        if let Err(error) = recovery::retain_projections(
            &self.retained,
            &head,
            &self.recovered.projections,
            self.config.retained_interval_events,
        ) {
            tracing::warn!(%error, position = head.position, "retained snapshot not saved");
        }
        self.events_since_checkpoint = 0;
    }

    /// The writer's role is this process's: nobody else appends now. Folds what the last
    /// writer committed after the last poll, then runs the writer on this thread from the
    /// head it reached.
    fn become_writer(mut self, mut store: Store) {
        let taken = Instant::now();
        let mut tail_events = 0;
        loop {
            match self.catch_up() {
                Ok(0) => break,
                Ok(folded) => tail_events += folded,
                Err(error) => {
                    tracing::error!(%error, "the standby cannot fold the log it is to write; stopping");
                    std::process::abort();
                }
            }
        }
        let head = self.store.head();
        if store.head() != head {
            tracing::error!(
                followed_position = head.position,
                writer_position = store.head().position,
                "the log the standby is to write does not end where it followed it; stopping"
            );
            std::process::abort();
        }
        store.load_indexes();
        tracing::info!(
            head_position = head.position,
            followed_events = self.followed_events,
            events_after_lock = tail_events,
            took_ms = taken.elapsed().as_millis() as u64,
            "standby took over as the writer; continuing from its own head, nothing replayed"
        );
        let reader = store.reader();
        let recorded_floor = match recovery::recorded_time_at(&reader, head.position) {
            Ok(recorded_floor) => recorded_floor,
            Err(error) => {
                tracing::error!(%error, "the last recorded time cannot be read; stopping");
                std::process::abort();
            }
        };
        let Follower {
            recovered,
            policy,
            config,
            clock,
            receiver,
            published,
            counters,
            retained,
            events_since_checkpoint,
            checkpoint_body_bytes,
            ..
        } = self;
        let parts = WriterParts {
            policy,
            config,
            clock,
            receiver,
            published,
            counters,
            retained,
        };
        // The same writer as `Engine::start_on` starts, built by `reconnect`; it reconnects
        // to the log the same way if its connection is lost later.
        let recovery = recovery::Recovery {
            recovered,
            replayed_events: events_since_checkpoint,
            checkpoint_body_bytes,
        };
        let writer = match parts.into_writer(store, recovery, recorded_floor) {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, "the promoted writer cannot be started; stopping");
                std::process::abort();
            }
        };
        reconnect::run_writer(writer);
    }
}
