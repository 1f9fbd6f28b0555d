//! Counters of the writer's group commit, for benchmarks and operators: how many commands each
//! flush carries, how long a flush takes, how much waits in the queue.
//!
//! The writer updates them with relaxed atomic adds after each group (a handful of
//! nanoseconds, nothing that waits); readers take a [`GroupStats`] snapshot at any time, which
//! is consistent per counter but not across counters. What it is not: a histogram (only totals
//! and maxima, so rates and means come from two snapshots) nor a metrics exporter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The live counters, shared between the writer and every handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    groups: AtomicU64,
    commands: AtomicU64,
    events: AtomicU64,
    group_len_max: AtomicU64,
    flush_nanos_total: AtomicU64,
    flush_nanos_max: AtomicU64,
}

impl Counters {
    /// One group was decided and made durable: `commands` submissions, `events` appended,
    /// `flush` the time of its append (batch, flush and `fdatasync`).
    pub(crate) fn record_group(&self, commands: usize, events: u64, flush: Duration) {
        let commands = commands as u64;
        let flush_nanos = u64::try_from(flush.as_nanos()).unwrap_or(u64::MAX);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.group_len_max.fetch_max(commands, Ordering::Relaxed);
        self.flush_nanos_total
            .fetch_add(flush_nanos, Ordering::Relaxed);
        self.flush_nanos_max
            .fetch_max(flush_nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, queue_len: usize) -> GroupStats {
        GroupStats {
            groups: self.groups.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            group_len_max: self.group_len_max.load(Ordering::Relaxed),
            flush_total: Duration::from_nanos(self.flush_nanos_total.load(Ordering::Relaxed)),
            flush_max: Duration::from_nanos(self.flush_nanos_max.load(Ordering::Relaxed)),
            queue_len: queue_len as u64,
        }
    }
}

/// A snapshot of the writer's counters since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups decided and made durable (one flush each).
    pub groups: u64,
    /// Commands of those groups, accepted, replayed or refused.
    pub commands: u64,
    /// Events appended.
    pub events: u64,
    /// Most commands seen in one group.
    pub group_len_max: u64,
    /// Time spent appending, flushing and syncing, all groups together.
    pub flush_total: Duration,
    /// Longest append, flush and sync of one group.
    pub flush_max: Duration,
    /// Commands and reads waiting for the writer when the snapshot was taken.
    pub queue_len: u64,
}

impl GroupStats {
    /// Mean commands per flush.
    pub fn commands_per_group(&self) -> f64 {
        self.commands as f64 / self.groups.max(1) as f64
    }

    /// Mean time of one flush.
    pub fn flush_mean(&self) -> Duration {
        self.flush_total / u32::try_from(self.groups.max(1)).unwrap_or(u32::MAX)
    }

    /// What happened between `earlier` and `self` (maxima and queue length are `self`'s).
    pub fn since(&self, earlier: &GroupStats) -> GroupStats {
        GroupStats {
            groups: self.groups - earlier.groups,
            commands: self.commands - earlier.commands,
            events: self.events - earlier.events,
            flush_total: self.flush_total.saturating_sub(earlier.flush_total),
            ..*self
        }
    }
}
