//! Writes a compact copy of a stopped ledger's data folder with `Store::backup_to`: the
//! segment files as they are, and only sled's live records in a new sled database. sled 0.34
//! never gives back the file space of removed records, so the copy shows what the data folder
//! holds once the sealed past has left sled (issue 12's bytes per event).
//!
//! `cargo run --release -p ledger-store --example compact -- DATA_DIR TARGET_DIR`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(data), Some(target)) = (args.next(), args.next()) else {
        return Err("usage: compact DATA_DIR TARGET_DIR".into());
    };
    let store = ledger_store::Store::open(&PathBuf::from(data))?;
    let report = store.backup_to(&PathBuf::from(target))?;
    println!(
        "copied to {}: head {}, {} records, {} bytes, {:.1} s",
        report.path.display(),
        report.head.position,
        report.records,
        report.bytes,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
