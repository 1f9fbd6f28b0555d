//! The hot standby on PostgreSQL (issue 19, `serve --standby`): the engine follows the log
//! ([`ledger_engine::follower`]) and this gives it the writer's role through PostgreSQL's
//! advisory lock and epoch ([`ledger_store_pg::WriterLock`]). Nothing here decides or reads
//! events; it only opens stores.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ledger_engine::follower::Leadership;
use ledger_engine::{Engine, EngineConfig, StartError, SystemClock};
use ledger_store::{Store, StoreError};
use ledger_store_pg::{PgLog, WriterLock};

/// How often a standby folds what the writer committed and asks for the writer's lock, in
/// milliseconds: its reads lag the writer by at most about this, a takeover starts at most
/// this after the writer's session ended, and two queries on idle connections ten times a
/// second cost the database nothing.
pub const STANDBY_POLL_INTERVAL_MS: u64 = 100;

struct PgLeadership {
    lock: WriterLock,
    data_dir: PathBuf,
    /// Where this process serves, recorded for the other standbys once it writes.
    advertised: Option<String>,
}

impl Leadership for PgLeadership {
    fn try_take_over(&mut self) -> Result<Option<Store>, StoreError> {
        let Some(log) = self.lock.try_take()? else {
            return Ok(None);
        };
        if let Some(address) = &self.advertised {
            log.advertise(address)?;
        }
        let store =
            Store::open_backend(log.into_backend(), &self.data_dir, Engine::store_options())?;
        Ok(Some(store))
    }

    fn writer_address(&mut self) -> Option<String> {
        match self.lock.writer_address() {
            Ok(address) => address,
            Err(error) => {
                tracing::warn!(%error, "the writer's address cannot be read");
                None
            }
        }
    }
}

/// Starts a hot standby on the PostgreSQL database `connection`: it follows the log, answers
/// reads, refuses writes naming the writer, and becomes the writer (advertising `advertised`)
/// when the writer's lock is free. Blocking.
pub fn start_standby(
    connection: &str,
    engine_config: EngineConfig,
    advertised: Option<String>,
) -> Result<Engine, StartError> {
    let backend = PgLog::open_following(connection)
        .map_err(StoreError::from)?
        .into_backend();
    // The fingerprints of recorded ids are never loaded while following: each lookup goes to
    // the database, exact; the store of the writer's role loads them afresh.
    let store = Store::open_backend(backend, &engine_config.data_dir, Engine::store_options())?;
    let lock = WriterLock::connect(connection).map_err(StoreError::from)?;
    let leadership = PgLeadership {
        lock,
        data_dir: engine_config.data_dir.clone(),
        advertised,
    };
    tracing::info!("standby: following the writer and answering reads; writes are refused until this process takes over");
    Engine::start_standby(
        store,
        Box::new(leadership),
        engine_config,
        Arc::new(SystemClock),
        Duration::from_millis(STANDBY_POLL_INTERVAL_MS),
    )
}
