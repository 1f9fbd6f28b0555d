//! Commands that work on a stopped ledger's data folder, without serving: `rebuild` replays the
//! whole log into fresh projections and checks them against the stored checkpoint.

use std::path::Path;

/// What `voucher-ledger rebuild` prints, and whether it found the checkpoint sound.
#[derive(Debug)]
pub struct RebuildOutcome {
    pub summary: String,
    /// False when the rebuild from position 1 differs from the stored checkpoint.
    pub sound: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("no ledger in {0}")]
    Missing(String),
    #[error(transparent)]
    Start(#[from] ledger_engine::StartError),
}

/// Rebuilds every projection of the ledger in `data_dir` from position 1, compares the result
/// with the checkpoint at its position (byte for byte), and writes a fresh checkpoint at the
/// head. The server must be stopped (sled locks its folder).
pub fn rebuild(data_dir: &Path) -> Result<RebuildOutcome, OfflineError> {
    if !data_dir.join("db").exists() {
        return Err(OfflineError::Missing(data_dir.display().to_string()));
    }
    let report = ledger_engine::rebuild(data_dir)?;
    let seconds = report.elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { report.events as f64 / seconds } else { 0.0 };
    let mut lines = vec![format!(
        "rebuilt {} events from position 1 in {seconds:.3} s ({rate:.0} events/s)",
        report.events
    )];
    let sound = match (report.checkpoint_position, report.matches_checkpoint) {
        (Some(position), Some(true)) => {
            lines.push(format!("checkpoint at position {position}: identical to the rebuild, byte for byte"));
            true
        }
        (Some(position), _) => {
            lines.push(format!("checkpoint at position {position}: DIFFERS from the rebuild"));
            false
        }
        (None, _) => {
            lines.push("no usable checkpoint was stored".to_owned());
            true
        }
    };
    lines.push(format!(
        "new checkpoint written at position {} ({} bytes); head hash {}",
        report.head.position,
        report.checkpoint_bytes,
        hex::encode(report.head.hash)
    ));
    Ok(RebuildOutcome { summary: lines.join("\n"), sound })
}
