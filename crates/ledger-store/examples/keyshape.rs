// Throw-away: the CPU and disk cost of sled key shapes per batch of 100 events.
use std::time::Instant;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let close = stat.rfind(')').unwrap();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn folder_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += folder_bytes(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

fn main() {
    let shape = std::env::args().nth(1).unwrap();
    let batches: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2000);
    let compression = std::env::args().nth(3).is_some();
    let dir = std::env::temp_dir().join(format!("keyshape-{shape}-{}", std::process::id()));
    let db = sled::Config::new()
        .path(&dir)
        .flush_every_ms(None)
        .cache_capacity(128 * 1024 * 1024)
        .open()
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
        .unwrap();
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut random = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let value: Vec<u8> = (0..470u32).map(|i| (i * 7 % 251) as u8).collect();
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let mut position = 0u64;
    for _ in 0..batches {
        let mut batch = sled::Batch::default();
        let mut group = Vec::new();
        for _ in 0..100 {
            position += 1;
            let mut key = vec![b'e'];
            key.extend_from_slice(&position.to_be_bytes());
            batch.insert(key, value.clone());
            let id = (random() as u128) << 64 | random() as u128;
            if shape.contains('r') {
                let mut key = vec![b'r'];
                key.extend_from_slice(&id.to_be_bytes());
                batch.insert(key, vec![7u8; 80]);
            }
            if shape.contains('n') {
                let mut key = vec![b'n'];
                key.extend_from_slice(&(id ^ 1).to_be_bytes());
                key.extend_from_slice(&position.to_be_bytes());
                batch.insert(key, Vec::<u8>::new());
            }
            group.extend_from_slice(&id.to_be_bytes());
            group.extend_from_slice(&[3u8; 70]);
        }
        if shape.contains('g') {
            let mut key = vec![b'g'];
            key.extend_from_slice(&position.to_be_bytes());
            batch.insert(key, group);
        }
        batch.insert(&b"h"[..], &position.to_be_bytes()[..]);
        db.apply_batch(batch).unwrap();
        db.flush().unwrap();
        file.sync_data().unwrap();
    }
    let cpu = cpu_seconds() - cpu0;
    let elapsed = wall.elapsed().as_secs_f64();
    let bytes = folder_bytes(&dir);
    println!(
        "{shape}{}: {:.1} µs CPU per event, {:.1} µs wall per event, {} bytes per event",
        if compression { " (zstd)" } else { "" },
        cpu * 1e6 / (batches * 100) as f64,
        elapsed * 1e6 / (batches * 100) as f64,
        bytes / (batches * 100)
    );
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}
