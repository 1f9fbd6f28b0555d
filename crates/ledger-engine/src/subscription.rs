//! Live subscriptions: every event from a position on, in order, each exactly once; first read
//! from the log, then followed live as the writer makes groups durable.
//!
//! The writer publishes each durable group (after its flush and `fdatasync`, before answering
//! its callers) on a bounded `tokio::sync::broadcast` channel. `send` never waits, so no
//! subscriber can slow the writer down; a subscriber that falls more than
//! [`BROADCAST_CAPACITY_GROUPS`](crate::BROADCAST_CAPACITY_GROUPS) groups behind is told so
//! ([`SubscriptionError::Lagged`]) with the position to resume from.
//!
//! Without a gap or a duplicate: a subscription reads the log (off the writer's thread, in
//! chunks on tokio's blocking pool) until it is near the durable head, then subscribes to the
//! broadcast, and only then asks the writer for its durable head and reads the log up to it.
//! Every group made durable after that head is in the broadcast; groups already read are
//! dropped by position. Only durable events are handed out: the log is read up to a head the
//! writer reported between two groups, never to what sled holds before the flush.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ledger_store::{Head, RecordedEvent, StoreError};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::EngineHandle;

/// The events of one durable group, as the writer publishes them.
pub type Published = Arc<[RecordedEvent]>;

/// Events read from the log in one blocking read of a catch-up: a few hundred kilobytes, a
/// millisecond or two of sled reads, so that a subscriber hands out its first events quickly.
pub const CATCH_UP_CHUNK_LEN: usize = 512;

/// A catch-up subscribes to the live broadcast once it is this close to the durable head: the
/// rest is read while the broadcast buffers what the writer adds meanwhile, which must stay far
/// below its capacity in groups.
pub const LIVE_GAP_EVENTS_MAX: u64 = 4096;

/// Catch-up rounds (each reads up to the head as it was when the round started) before the
/// subscription goes live anyway, so that a writer faster than the reads cannot keep a
/// subscriber catching up forever; it is then told it is too slow.
const CATCH_UP_ROUNDS_MAX: u32 = 8;

/// Why a subscription stopped. After any of these the subscription is over (a later call
/// answers `Stopped`): drop it, and for `Lagged` start a new one.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The subscriber fell more than the broadcast's capacity behind the writer: the events
    /// from `next_position` on are no longer buffered for it. Every event before
    /// `next_position` was handed out; a new subscription from `next_position` resumes.
    #[error("subscriber fell too far behind the writer; resume from position {next_position}")]
    Lagged { next_position: u64 },
    /// The writer stopped (shutdown or a fatal error).
    #[error("the ledger's writer is not running")]
    Stopped,
    /// The log could not be read, or its chain is broken.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A live group does not follow the events handed out so far: a bug, never the world.
    #[error("live events jump from position {expected} to {found}")]
    Gap { expected: u64, found: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the log up to `until`, a durable head, before or after subscribing to the
    /// broadcast; `rounds` counts the reads to a fresh head before subscribing.
    CatchingUp { until: u64, rounds: u32 },
    /// Following the broadcast.
    Live,
    /// Over, after an error.
    Failed,
}

/// A subscription made by [`EngineHandle::subscribe`]. Pull events with [`Subscription::next`]
/// or [`Subscription::next_within`].
pub struct Subscription {
    engine: EngineHandle,
    /// The position of the next event to hand out.
    next_position: u64,
    /// Events from `next_position` on, contiguous, read but not yet handed out.
    buffer: VecDeque<RecordedEvent>,
    live: Option<broadcast::Receiver<Published>>,
    phase: Phase,
    /// The latest durable head this subscription knows of.
    known_head: Head,
}

impl Subscription {
    pub(crate) fn new(engine: EngineHandle, from_position: u64) -> Subscription {
        Subscription {
            engine,
            next_position: from_position.max(1),
            buffer: VecDeque::new(),
            live: None,
            phase: Phase::CatchingUp {
                until: 0,
                rounds: 0,
            },
            known_head: Head::EMPTY,
        }
    }

    /// The position of the next event this subscription will hand out.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// The latest durable head this subscription knows of: exact while it is live (every
    /// durable group reaches it), the head it is catching up to before that.
    pub fn known_head(&self) -> Head {
        self.known_head
    }

    /// Whether the subscription has caught up and follows the writer live.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// The next event, waiting for the writer when there is none yet.
    ///
    /// Not cancel-safe while catching up (a chunk being read would be lost): to wait with a
    /// deadline, use [`Subscription::next_within`], never `select!` or `timeout` around this.
    pub async fn next(&mut self) -> Result<RecordedEvent, SubscriptionError> {
        loop {
            if let Some(event) = self.next_within(Duration::from_secs(3600)).await? {
                return Ok(event);
            }
        }
    }

    /// The next event, or `None` when the subscription is live and nothing became durable for
    /// `wait` (time for a heartbeat with [`Subscription::known_head`]). A catch-up is never cut
    /// short by `wait`.
    pub async fn next_within(
        &mut self,
        wait: Duration,
    ) -> Result<Option<RecordedEvent>, SubscriptionError> {
        let advanced = self.advance(wait).await;
        if advanced.is_err() {
            self.phase = Phase::Failed;
            self.live = None;
            self.buffer.clear();
        }
        advanced
    }

    async fn advance(
        &mut self,
        wait: Duration,
    ) -> Result<Option<RecordedEvent>, SubscriptionError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                debug_assert_eq!(event.position, self.next_position);
                self.next_position = event.position + 1;
                return Ok(Some(event));
            }
            match self.phase {
                Phase::CatchingUp { until, .. } if self.next_position <= until => {
                    let last = until.min(self.next_position + CATCH_UP_CHUNK_LEN as u64 - 1);
                    self.read_log(self.next_position, last).await?;
                }
                Phase::CatchingUp { rounds, .. } => {
                    if self.live.is_some() {
                        // Caught up with the head read after subscribing: the broadcast holds
                        // everything after it.
                        self.phase = Phase::Live;
                        continue;
                    }
                    let head = self.durable_head().await?;
                    let behind = head.position.saturating_sub(self.next_position - 1);
                    if behind > LIVE_GAP_EVENTS_MAX && rounds < CATCH_UP_ROUNDS_MAX {
                        self.known_head = head;
                        self.phase = Phase::CatchingUp {
                            until: head.position,
                            rounds: rounds + 1,
                        };
                        continue;
                    }
                    // Subscribe first, then read the head: every group durable after that
                    // head is in the broadcast, and those before it are in the log.
                    self.live = Some(
                        self.engine
                            .subscribe_live()
                            .ok_or(SubscriptionError::Stopped)?,
                    );
                    let head = self.durable_head().await?;
                    self.known_head = head;
                    self.phase = Phase::CatchingUp {
                        until: head.position,
                        rounds,
                    };
                }
                Phase::Live => {
                    let Some(live) = self.live.as_mut() else {
                        return Err(SubscriptionError::Stopped);
                    };
                    let group = match tokio::time::timeout(wait, live.recv()).await {
                        Err(_elapsed) => return Ok(None),
                        Ok(Ok(group)) => group,
                        Ok(Err(RecvError::Lagged(_))) => {
                            return Err(SubscriptionError::Lagged {
                                next_position: self.next_position,
                            })
                        }
                        Ok(Err(RecvError::Closed)) => return Err(SubscriptionError::Stopped),
                    };
                    self.take_group(&group)?;
                }
                Phase::Failed => return Err(SubscriptionError::Stopped),
            }
        }
    }

    /// Appends the events of a live group that come after what was read, in order.
    fn take_group(&mut self, group: &[RecordedEvent]) -> Result<(), SubscriptionError> {
        if let Some(last) = group.last() {
            if last.position > self.known_head.position {
                self.known_head = Head {
                    position: last.position,
                    hash: last.hash,
                };
            }
        }
        for event in group {
            let expected = self.next_position + self.buffer.len() as u64;
            if event.position < expected {
                continue;
            }
            if event.position > expected {
                return Err(SubscriptionError::Gap {
                    expected,
                    found: event.position,
                });
            }
            self.buffer.push_back(event.clone());
        }
        Ok(())
    }

    /// Reads positions `first..=last` of the log into the buffer, on tokio's blocking pool.
    async fn read_log(&mut self, first: u64, last: u64) -> Result<(), SubscriptionError> {
        let reader = self.engine.reader().clone();
        let events = tokio::task::spawn_blocking(move || {
            reader
                .iter(first, last)
                .collect::<Result<Vec<RecordedEvent>, StoreError>>()
        })
        .await
        .map_err(|_| SubscriptionError::Stopped)??;
        if let Some(found) = events.first().map(|event| event.position) {
            if found != first {
                return Err(SubscriptionError::Gap {
                    expected: first,
                    found,
                });
            }
        }
        self.buffer.extend(events);
        Ok(())
    }

    /// The head as the writer reports it between two groups: everything up to it is durable.
    async fn durable_head(&self) -> Result<Head, SubscriptionError> {
        self.engine
            .head()
            .await
            .map_err(|_| SubscriptionError::Stopped)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Subscription")
            .field("next_position", &self.next_position)
            .field("phase", &self.phase)
            .field("known_head", &self.known_head)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}
