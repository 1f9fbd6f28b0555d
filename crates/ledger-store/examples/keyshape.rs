//! The CPU and disk cost of sled key shapes, per event, in batches of 100 events of 470 bytes
//! (flush and `fdatasync` after each), measured with sled alone: `e` entries only, `g` one
//! group record per batch, `r` and `n` one random key per event each (request records, index
//! by name). Why the store keeps request records and names in group records (`src/tail.rs`).
//!
//! `cargo run --release -p ledger-store --example keyshape -- ern 1500` (shape, batches).
use std::time::Instant;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("keyshape: measuring needs it");
    let close = stat.rfind(')').expect("keyshape: measuring needs it");
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11]
        .parse::<u64>()
        .expect("keyshape: measuring needs it")
        + fields[12]
            .parse::<u64>()
            .expect("keyshape: measuring needs it");
    ticks as f64 / 100.0
}

fn folder_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("keyshape: measuring needs it") {
        let entry = entry.expect("keyshape: measuring needs it");
        let meta = entry.metadata().expect("keyshape: measuring needs it");
        if meta.is_dir() {
            total += folder_bytes(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

fn main() {
    let shape = std::env::args()
        .nth(1)
        .expect("keyshape: measuring needs it");
    let batches: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("keyshape: measuring needs it"))
        .unwrap_or(2000);
    let compression = std::env::args().nth(3).is_some();
    let dir = std::env::temp_dir().join(format!("keyshape-{shape}-{}", std::process::id()));
    let db = sled::Config::new()
        .path(&dir)
        .flush_every_ms(None)
        .cache_capacity(128 * 1024 * 1024)
        .open()
        .expect("keyshape: measuring needs it");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
        .expect("keyshape: measuring needs it");
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
        db.apply_batch(batch).expect("keyshape: measuring needs it");
        db.flush().expect("keyshape: measuring needs it");
        file.sync_data().expect("keyshape: measuring needs it");
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
    std::fs::remove_dir_all(&dir).expect("keyshape: measuring needs it");
}
