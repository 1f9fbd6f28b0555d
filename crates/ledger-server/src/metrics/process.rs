//! The process's own figures, under the names every Prometheus client library uses
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`, `process_virtual_memory_bytes`), so that
//! the usual dashboards and alerts apply as they are.
//!
//! Read from `/proc/self` at each scrape (Linux); where a file cannot be read or parsed (another
//! system, a hardened `/proc`), its metrics are left out of the scrape rather than shown as 0.
//! The parsing is pure and tested on fixed text; only [`ProcessCollector`] reads files.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Clock ticks per second of the times in `/proc/<pid>/stat`: the kernel reports them in
/// USER_HZ, which is 100 on every Linux architecture's user-space ABI (`getconf CLK_TCK`);
/// asking `sysconf` would take `unsafe` FFI, which this workspace forbids.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self/stat` says of the process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Start time, in seconds after boot.
    pub start_seconds_after_boot: f64,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself: the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is at index 0.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number.checked_sub(3)?)?.parse().ok() };
    let user_ticks = field(14)?;
    let system_ticks = field(15)?;
    let start_ticks = field(22)?;
    let virtual_memory_bytes = field(23)?;
    Some(Stat {
        cpu_seconds: (user_ticks + system_ticks) as f64 / CLOCK_TICKS_PER_SECOND,
        start_seconds_after_boot: start_ticks as f64 / CLOCK_TICKS_PER_SECOND,
        virtual_memory_bytes,
    })
}

/// The resident set size from `/proc/<pid>/status` (`VmRSS: N kB`), in bytes.
pub fn parse_resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kibibytes: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kibibytes * 1024)
}

/// The boot time from `/proc/stat` (`btime N`), in seconds since the Unix epoch.
pub fn parse_boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of open files from `/proc/<pid>/limits`; `None` when unlimited.
pub fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads `/proc/self` at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").as_deref().and_then(parse_stat);
        if let Some(stat) = stat {
            ConstCounter::new(stat.cpu_seconds).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
            ConstGauge::new(stat.virtual_memory_bytes).encode(encoder.encode_descriptor(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                None,
                MetricType::Gauge,
            )?)?;
            if let Some(boot) = read("/proc/stat").as_deref().and_then(parse_boot_time) {
                ConstGauge::new(boot as f64 + stat.start_seconds_after_boot).encode(
                    encoder.encode_descriptor(
                        "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        None,
                        MetricType::Gauge,
                    )?,
                )?;
            }
        }
        if let Some(bytes) = read("/proc/self/status")
            .as_deref()
            .and_then(parse_resident_bytes)
        {
            ConstGauge::new(bytes).encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            // The count includes the descriptor of this very listing, as every client's does.
            let open = entries.count() as u64;
            ConstGauge::new(open).encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        if let Some(max) = read("/proc/self/limits")
            .as_deref()
            .and_then(parse_max_open_files)
        {
            ConstGauge::new(max).encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name_even_with_spaces_and_parentheses() {
        // A real line of a process named "voucher (x) y", fields 1 to 24.
        let text = "4242 (voucher (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 3000 18446744073709551615";
        let stat = parse_stat(text).expect("parsed");
        assert_eq!(stat.cpu_seconds, 3.25);
        assert_eq!(stat.start_seconds_after_boot, 1234.56);
        assert_eq!(stat.virtual_memory_bytes, 987_654_321);
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn resident_memory_boot_time_and_the_open_files_limit_are_read() {
        let status =
            "Name:\tvoucher-ledger\nVmPeak:\t  200000 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n";
        assert_eq!(parse_resident_bytes(status), Some(51_200 * 1024));
        assert_eq!(parse_resident_bytes("Name:\tx\n"), None);
        assert_eq!(parse_resident_bytes("VmRSS:\t12 MB\n"), None);

        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1764460000\nprocesses 9\n"),
            Some(1_764_460_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);

        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(
            parse_max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let text = {
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register_collector(Box::new(ProcessCollector));
            let mut out = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
                .expect("encoded");
            out
        };
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .parse()
                .expect("a number")
        };
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_cpu_seconds_total") >= 0.0);
        // After 2020-01-01, and not in the future.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(start > 1_577_836_800.0 && start <= now + 1.0, "{start}");
    }
}
