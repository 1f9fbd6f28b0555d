//! Counters of the writer's group commit, for benchmarks and operators: how many commands each
//! flush carries, how long a flush takes, how much waits in the queue.
//!
//! The writer updates them with relaxed atomic adds after each group (a handful of
//! nanoseconds, nothing that waits); readers take a [`GroupStats`] snapshot at any time, which
//! is consistent per counter but not across counters. Totals and maxima give rates and means
//! (from two snapshots); two fixed-bucket histograms, flush time and commands per group, give
//! percentiles (an operator's p99 flush), which no total can. Not a metrics exporter: the
//! server renders these as Prometheus text (`ledger-server`'s `metrics`).

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
    /// Groups per bucket of [`FLUSH_BUCKET_BOUNDS_NANOS`] (not cumulative; last: above all).
    flush_buckets: [AtomicU64; FLUSH_BUCKETS],
    /// Groups per bucket of [`GROUP_LEN_BUCKET_BOUNDS`] (not cumulative; last: above all).
    group_len_buckets: [AtomicU64; GROUP_LEN_BUCKETS],
    checkpoint_copies: AtomicU64,
    checkpoint_copy_nanos_total: AtomicU64,
    checkpoint_copy_nanos_max: AtomicU64,
}

/// Upper bounds (inclusive) of the flush-time buckets, in nanoseconds: 100 µs to 2.5 s in a
/// 1-2.5-5 ladder, from a fast NVMe `fdatasync` to a disk that stalls. Fixed, so that a bucket
/// is one relaxed add and every scrape of every server has the same `le` labels.
pub const FLUSH_BUCKET_BOUNDS_NANOS: [u64; 14] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
];

/// Upper bounds (inclusive) of the commands-per-group buckets: powers of two up to
/// `GROUP_LEN_MAX` (1024), since group sizes grow with load by orders of magnitude.
pub const GROUP_LEN_BUCKET_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Buckets of the flush histogram: one per bound and one above every bound.
pub const FLUSH_BUCKETS: usize = FLUSH_BUCKET_BOUNDS_NANOS.len() + 1;

/// Buckets of the commands-per-group histogram: one per bound and one above every bound.
pub const GROUP_LEN_BUCKETS: usize = GROUP_LEN_BUCKET_BOUNDS.len() + 1;

/// The bucket of `value`: the first whose bound is at least `value`, else the last.
fn bucket(bounds: &[u64], value: u64) -> usize {
    bounds.partition_point(|bound| *bound < value)
}

fn loads<const N: usize>(counters: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|index| counters[index].load(Ordering::Relaxed))
}

fn differences<const N: usize>(later: &[u64; N], earlier: &[u64; N]) -> [u64; N] {
    std::array::from_fn(|index| later[index].saturating_sub(earlier[index]))
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
        self.flush_buckets[bucket(&FLUSH_BUCKET_BOUNDS_NANOS, flush_nanos)]
            .fetch_add(1, Ordering::Relaxed);
        self.group_len_buckets[bucket(&GROUP_LEN_BUCKET_BOUNDS, commands)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The writer took the snapshot of a checkpoint (the state and the projections as of the
    /// durable head) in `copy`: time during which no group is decided.
    pub(crate) fn record_checkpoint_copy(&self, copy: Duration) {
        let copy_nanos = u64::try_from(copy.as_nanos()).unwrap_or(u64::MAX);
        self.checkpoint_copies.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_copy_nanos_total
            .fetch_add(copy_nanos, Ordering::Relaxed);
        self.checkpoint_copy_nanos_max
            .fetch_max(copy_nanos, Ordering::Relaxed);
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
            flush_buckets: loads(&self.flush_buckets),
            group_len_buckets: loads(&self.group_len_buckets),
            checkpoint_copies: self.checkpoint_copies.load(Ordering::Relaxed),
            checkpoint_copy_total: Duration::from_nanos(
                self.checkpoint_copy_nanos_total.load(Ordering::Relaxed),
            ),
            checkpoint_copy_max: Duration::from_nanos(
                self.checkpoint_copy_nanos_max.load(Ordering::Relaxed),
            ),
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
    /// Groups per flush-time bucket of [`FLUSH_BUCKET_BOUNDS_NANOS`], not cumulative; the
    /// last counts the flushes longer than every bound.
    pub flush_buckets: [u64; FLUSH_BUCKETS],
    /// Groups per commands-per-group bucket of [`GROUP_LEN_BUCKET_BOUNDS`], not cumulative;
    /// the last counts the groups larger than every bound.
    pub group_len_buckets: [u64; GROUP_LEN_BUCKETS],
    /// Checkpoint snapshots the writer took.
    pub checkpoint_copies: u64,
    /// Time the writer spent taking them, all together: no group is decided meanwhile.
    pub checkpoint_copy_total: Duration,
    /// Longest time the writer spent taking one.
    pub checkpoint_copy_max: Duration,
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
            flush_buckets: differences(&self.flush_buckets, &earlier.flush_buckets),
            group_len_buckets: differences(&self.group_len_buckets, &earlier.group_len_buckets),
            checkpoint_copies: self.checkpoint_copies - earlier.checkpoint_copies,
            checkpoint_copy_total: self
                .checkpoint_copy_total
                .saturating_sub(earlier.checkpoint_copy_total),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_falls_in_the_first_bucket_whose_bound_holds_it() {
        assert_eq!(bucket(&GROUP_LEN_BUCKET_BOUNDS, 0), 0);
        assert_eq!(bucket(&GROUP_LEN_BUCKET_BOUNDS, 1), 0);
        assert_eq!(bucket(&GROUP_LEN_BUCKET_BOUNDS, 2), 1);
        assert_eq!(bucket(&GROUP_LEN_BUCKET_BOUNDS, 3), 2);
        assert_eq!(bucket(&GROUP_LEN_BUCKET_BOUNDS, 1024), 10);
        assert_eq!(
            bucket(&GROUP_LEN_BUCKET_BOUNDS, 1025),
            GROUP_LEN_BUCKETS - 1
        );
        assert_eq!(bucket(&FLUSH_BUCKET_BOUNDS_NANOS, 100_000), 0);
        assert_eq!(bucket(&FLUSH_BUCKET_BOUNDS_NANOS, 100_001), 1);
        assert_eq!(
            bucket(&FLUSH_BUCKET_BOUNDS_NANOS, u64::MAX),
            FLUSH_BUCKETS - 1
        );
    }

    #[test]
    fn groups_are_counted_in_their_buckets_and_since_subtracts_them() {
        let counters = Counters::default();
        counters.record_group(1, 1, Duration::from_micros(80));
        let before = counters.snapshot(0);
        counters.record_group(3, 5, Duration::from_millis(3));
        counters.record_group(2000, 2000, Duration::from_secs(3));
        let after = counters.snapshot(7);

        assert_eq!(after.groups, 3);
        assert_eq!(after.commands, 2004);
        assert_eq!(after.events, 2006);
        assert_eq!(after.queue_len, 7);
        assert_eq!(after.flush_buckets.iter().sum::<u64>(), 3);
        assert_eq!(after.flush_buckets[0], 1);
        assert_eq!(
            after.flush_buckets[bucket(&FLUSH_BUCKET_BOUNDS_NANOS, 3_000_000)],
            1
        );
        assert_eq!(after.flush_buckets[FLUSH_BUCKETS - 1], 1);
        assert_eq!(after.group_len_buckets[0], 1);
        assert_eq!(after.group_len_buckets[2], 1);
        assert_eq!(after.group_len_buckets[GROUP_LEN_BUCKETS - 1], 1);

        let between = after.since(&before);
        assert_eq!(between.groups, 2);
        assert_eq!(between.flush_buckets[0], 0);
        assert_eq!(between.flush_buckets.iter().sum::<u64>(), 2);
        assert_eq!(between.group_len_buckets.iter().sum::<u64>(), 2);
    }
}
