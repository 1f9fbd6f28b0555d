//! The CPU time of the process's threads, read from Linux's `/proc/self/task/*/stat`, so that
//! `bench` can say how much CPU the writer spends per redemption, thread by thread.
//!
//! Only a measure for the report: on another system (no `/proc`) every figure is `None` and
//! the line says so. Times are in clock ticks (`utime` + `stime`, 100 per second on Linux,
//! the `USER_HZ` the kernel reports them in whatever its own tick).

use std::collections::HashMap;

/// Clock ticks per second of `/proc`'s `utime` and `stime` (`USER_HZ`: 100 on every Linux
/// architecture the server runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// Thread names, as the engine names its threads (`std::thread::Builder::name`), whose time
/// is reported on its own; every other thread (tokio's workers, the clients) is "other".
pub const WRITER_THREAD: &str = "ledger-writer";
pub const COMMITTER_THREAD: &str = "ledger-commit";

/// The key of the whole process's ticks (`/proc/self/stat`, which also counts the threads that
/// ended, such as each checkpoint's): longer than the 15 bytes of a thread's name, so no
/// thread has it.
const PROCESS: &str = "the whole process";

/// CPU ticks used so far by each named thread of the process (threads of the same name
/// summed) and by the whole process, or `None` when `/proc/self/task` cannot be read.
pub fn ticks_by_thread() -> Option<HashMap<String, u64>> {
    let mut ticks = HashMap::new();
    let process = std::fs::read_to_string("/proc/self/stat").ok()?;
    ticks.insert(PROCESS.to_owned(), parse_stat(&process)?.1);
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        // A thread that ended between the listing and the read is simply not counted.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, used)) = parse_stat(&stat) {
            *ticks.entry(name).or_insert(0) += used;
        }
    }
    Some(ticks)
}

/// The thread's name and its `utime + stime` from one `stat` line: `tid (name) state …`,
/// where the name may itself hold spaces and parentheses, so the fields are counted from the
/// last `)`; `utime` and `stime` are the 14th and 15th fields of the line.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state is the 3rd field, so utime (14th) is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU microseconds per item that the writer, the committer and every other thread spent
/// between two readings of [`ticks_by_thread`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuPerItem {
    pub writer_us: f64,
    pub committer_us: f64,
    pub other_us: f64,
    /// The whole process: every thread, also those that ended during the phase (each
    /// checkpoint's thread, whose time the per-thread figures lose).
    pub process_us: f64,
}

impl CpuPerItem {
    pub fn between(
        before: &HashMap<String, u64>,
        after: &HashMap<String, u64>,
        items: u64,
    ) -> Option<CpuPerItem> {
        if items == 0 {
            return None;
        }
        let used = |name: &str| {
            after
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(name).copied().unwrap_or(0))
        };
        let threads = |ticks: &HashMap<String, u64>| {
            ticks
                .iter()
                .filter(|(name, _)| name.as_str() != PROCESS)
                .map(|(_, ticks)| ticks)
                .sum::<u64>()
        };
        let (total, total_before) = (threads(after), threads(before));
        let writer = used(WRITER_THREAD);
        let committer = used(COMMITTER_THREAD);
        // Threads that ended meanwhile take their ticks with them: "other" is at least 0.
        let other = total
            .saturating_sub(total_before)
            .saturating_sub(writer + committer);
        let per_item = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / items as f64;
        Some(CpuPerItem {
            writer_us: per_item(writer),
            committer_us: per_item(committer),
            other_us: per_item(other),
            process_us: per_item(used(PROCESS)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_the_time_even_with_parentheses_in_the_name() {
        let line = "4242 (ledger (x) w) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("ledger (x) w".to_owned(), 175)));
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses"), None);
    }

    #[test]
    fn cpu_per_item_splits_writer_committer_and_the_rest() {
        let before = HashMap::from([
            (WRITER_THREAD.to_owned(), 100),
            (COMMITTER_THREAD.to_owned(), 50),
            ("tokio-runtime-w".to_owned(), 10),
            (PROCESS.to_owned(), 1_000),
        ]);
        // A checkpoint's thread ran 1 s and ended: only the process's figure has it.
        let after = HashMap::from([
            (WRITER_THREAD.to_owned(), 300),
            (COMMITTER_THREAD.to_owned(), 150),
            ("tokio-runtime-w".to_owned(), 60),
            (PROCESS.to_owned(), 1_450),
        ]);
        // 2 s, 1 s and 0.5 s over 100 000 items; 4.5 s for the process.
        assert_eq!(
            CpuPerItem::between(&before, &after, 100_000),
            Some(CpuPerItem {
                writer_us: 20.0,
                committer_us: 10.0,
                other_us: 5.0,
                process_us: 45.0,
            })
        );
        assert_eq!(CpuPerItem::between(&before, &after, 0), None);
    }

    #[test]
    fn this_process_has_threads_with_times() {
        let ticks = ticks_by_thread().expect("linux has /proc/self/task");
        assert!(
            ticks.len() >= 2,
            "the process and at least one thread: {ticks:?}"
        );
        assert!(ticks.contains_key(PROCESS));
    }
}
