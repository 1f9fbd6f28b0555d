//! The server's configuration: `config/default.toml` (built in), then `--demo`'s
//! `config/demo.toml`, then `--config FILE`, then `VOUCHER_LEDGER__*` environment variables,
//! then command-line flags. Checked once at start; a bad setting stops the server with a clear
//! message rather than serving with a surprise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ledger_domain::{Principal, PseudonymKey};
use serde::Deserialize;

pub use crate::transport::AuthMode;
use crate::transport::{ListenRefused, TlsFiles, TlsFilesError};

const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");
const DEMO_TOML: &str = include_str!("../../../config/demo.toml");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TokenEntry {
    pub principal: String,
    pub sha256: String,
}

/// The settings as written, before they are checked.
#[derive(Clone, Debug, Deserialize)]
struct RawSettings {
    listen: String,
    data_dir: PathBuf,
    policy_file: PathBuf,
    log_format: LogFormat,
    request_bytes_max: usize,
    checkpoint_interval_events: u64,
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    pseudonym_key_hex: String,
    #[serde(default)]
    pseudonym_key_file: String,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    #[serde(default = "default_auth_mode")]
    auth_mode: AuthMode,
    #[serde(default)]
    tls_cert_file: String,
    #[serde(default)]
    tls_key_file: String,
    #[serde(default)]
    tls_client_ca_file: String,
    #[serde(default)]
    metrics_listen: String,
    #[serde(default)]
    metrics_allow_non_loopback: bool,
}

fn default_auth_mode() -> AuthMode {
    AuthMode::Token
}

/// Checked settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub policy: ledger_domain::PolicyTable,
    pub policy_file: PathBuf,
    pub log_format: LogFormat,
    pub request_bytes_max: usize,
    /// Events between two checkpoints of the engine's state (`EngineConfig`).
    pub checkpoint_interval_events: u64,
    pub demo: bool,
    pub pseudonym_key: PseudonymKey,
    pub tokens: Vec<([u8; 32], Principal)>,
    /// Where the principal comes from: bearer tokens or client certificates.
    pub auth_mode: AuthMode,
    /// The server's certificate and key, and the CA of client certificates; `None` serves
    /// plain HTTP/2, which is accepted only on loopback.
    pub tls: Option<TlsFiles>,
    /// Where `serve` answers `GET /metrics` (Prometheus text); `None` (the default) serves no
    /// metrics. Loopback unless `metrics_allow_non_loopback` (see [`check_metrics_listen`]).
    pub metrics_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("policy_file", &self.policy_file)
            .field("log_format", &self.log_format)
            .field("request_bytes_max", &self.request_bytes_max)
            .field(
                "checkpoint_interval_events",
                &self.checkpoint_interval_events,
            )
            .field("demo", &self.demo)
            .field("tokens", &self.tokens.len())
            .field("auth_mode", &self.auth_mode)
            .field("tls", &self.tls)
            .field("metrics_listen", &self.metrics_listen)
            .finish_non_exhaustive()
    }
}

/// What the command line adds.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration cannot be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("listen address {0:?} is not an ip address and port")]
    ListenAddress(String),
    #[error("metrics_listen {0:?} is not an ip address and port (or empty, for no metrics)")]
    MetricsListenAddress(String),
    #[error("metrics_listen {0} is not loopback; the metrics endpoint has no authentication nor tls: set metrics_allow_non_loopback = true to serve it there anyway (behind a firewall or a proxy that authenticates)")]
    MetricsListenNotLoopback(SocketAddr),
    #[error(
        "metrics_listen {0} is not loopback; the demo configuration serves only 127.0.0.1 or [::1]"
    )]
    MetricsListenDemo(SocketAddr),
    #[error(transparent)]
    Listen(#[from] ListenRefused),
    #[error(transparent)]
    Tls(#[from] TlsFilesError),
    #[error("auth_mode = \"mtls\" needs tls_cert_file, tls_key_file and tls_client_ca_file: the principal comes from a client certificate that ca signed")]
    MtlsWithoutClientCa,
    #[error("policy file {path} cannot be read: {source}")]
    PolicyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy file {path} is not valid: {source}")]
    Policy {
        path: PathBuf,
        source: ledger_domain::PolicyError,
    },
    #[error("no pseudonym key: set VOUCHER_LEDGER__PSEUDONYM_KEY_HEX or pseudonym_key_file (at least 32 bytes)")]
    PseudonymKeyMissing,
    #[error("configuration file {0} holds pseudonym_key_hex; a configuration file is shared and often committed: put the key in pseudonym_key_file or VOUCHER_LEDGER__PSEUDONYM_KEY_HEX")]
    PseudonymKeyInConfigFile(PathBuf),
    #[error("pseudonym key is not hex of at least 32 bytes")]
    PseudonymKeyInvalid,
    #[error("pseudonym key file {path} cannot be read: {source}")]
    PseudonymKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token entry {index}: principal {principal:?} is not administration, operator, auditor or provider:<id>")]
    TokenPrincipal { index: usize, principal: String },
    #[error("token entry {index}: sha256 is not 64 hex digits")]
    TokenDigest { index: usize },
    #[error("request_bytes_max must be between 1024 and 4194304")]
    RequestBytesMax,
    #[error("checkpoint_interval_events must be between 1 and 10000000")]
    CheckpointIntervalEvents,
}

impl Settings {
    pub fn load(overrides: &Overrides) -> Result<Settings, SettingsError> {
        Settings::load_with_metrics(overrides, None)
    }

    /// [`Settings::load`] with `--metrics-listen`, over every other layer. Apart from
    /// [`Overrides`] because `simulate` and `bench` build those too and serve no metrics.
    pub fn load_with_metrics(
        overrides: &Overrides,
        metrics_listen: Option<&str>,
    ) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if overrides.demo {
            builder =
                builder.add_source(config::File::from_str(DEMO_TOML, config::FileFormat::Toml));
        }
        if let Some(path) = &overrides.config_file {
            refuse_key_in_file(path)?;
            builder = builder.add_source(config::File::from(path.as_path()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("VOUCHER_LEDGER")
                .prefix_separator("__")
                .separator("__"),
        );
        if let Some(listen) = &overrides.listen {
            builder = builder.set_override("listen", listen.as_str())?;
        }
        if let Some(data_dir) = &overrides.data_dir {
            builder = builder.set_override("data_dir", data_dir.to_string_lossy().as_ref())?;
        }
        if let Some(metrics_listen) = metrics_listen {
            builder = builder.set_override("metrics_listen", metrics_listen)?;
        }
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        Settings::check(raw)
    }

    fn check(raw: RawSettings) -> Result<Settings, SettingsError> {
        let listen: SocketAddr = raw
            .listen
            .parse()
            .map_err(|_| SettingsError::ListenAddress(raw.listen.clone()))?;
        let tls = TlsFiles::load(
            &raw.tls_cert_file,
            &raw.tls_key_file,
            &raw.tls_client_ca_file,
        )?;
        crate::transport::check_listen(listen, tls.is_some(), raw.demo)?;
        let metrics_listen = check_metrics_listen(
            &raw.metrics_listen,
            raw.metrics_allow_non_loopback,
            raw.demo,
        )?;
        let client_certificates = tls
            .as_ref()
            .is_some_and(TlsFiles::requires_client_certificates);
        if raw.auth_mode == AuthMode::Mtls && !client_certificates {
            return Err(SettingsError::MtlsWithoutClientCa);
        }
        if !(1024..=4 * 1024 * 1024).contains(&raw.request_bytes_max) {
            return Err(SettingsError::RequestBytesMax);
        }
        if !(1..=10_000_000).contains(&raw.checkpoint_interval_events) {
            return Err(SettingsError::CheckpointIntervalEvents);
        }
        let policy = load_policy(&raw.policy_file)?;
        let pseudonym_key = pseudonym_key(&raw.pseudonym_key_hex, &raw.pseudonym_key_file)?;
        let mut tokens = Vec::with_capacity(raw.tokens.len());
        for (index, entry) in raw.tokens.iter().enumerate() {
            let principal = Principal::parse(&entry.principal).ok_or_else(|| {
                SettingsError::TokenPrincipal {
                    index,
                    principal: entry.principal.clone(),
                }
            })?;
            let mut digest = [0u8; 32];
            hex::decode_to_slice(entry.sha256.trim(), &mut digest)
                .map_err(|_| SettingsError::TokenDigest { index })?;
            tokens.push((digest, principal));
        }
        Ok(Settings {
            listen,
            data_dir: raw.data_dir,
            policy,
            policy_file: raw.policy_file,
            log_format: raw.log_format,
            request_bytes_max: raw.request_bytes_max,
            checkpoint_interval_events: raw.checkpoint_interval_events,
            demo: raw.demo,
            pseudonym_key,
            tokens,
            auth_mode: raw.auth_mode,
            tls,
            metrics_listen,
        })
    }
}

/// The metrics address: none when empty. The endpoint holds no secret and no national number
/// (counters of the writer and the head position), but it has neither authentication nor TLS,
/// and how busy the ledger is, is nobody else's business: like the gRPC port without TLS it
/// stays on loopback (a local Prometheus or agent scrapes it) unless
/// `metrics_allow_non_loopback` says otherwise. The demo never leaves loopback.
pub fn check_metrics_listen(
    text: &str,
    allow_non_loopback: bool,
    demo: bool,
) -> Result<Option<SocketAddr>, SettingsError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let address: SocketAddr = text
        .parse()
        .map_err(|_| SettingsError::MetricsListenAddress(text.to_owned()))?;
    if !address.ip().is_loopback() {
        if demo {
            return Err(SettingsError::MetricsListenDemo(address));
        }
        if !allow_non_loopback {
            return Err(SettingsError::MetricsListenNotLoopback(address));
        }
    }
    Ok(Some(address))
}

/// The pseudonym key never comes from a configuration file (only the demo's, whose key is
/// public): a file of its own, readable by the service alone, or the environment.
fn refuse_key_in_file(path: &Path) -> Result<(), SettingsError> {
    let file = config::Config::builder()
        .add_source(config::File::from(path).required(true))
        .build()?;
    match file.get_string("pseudonym_key_hex") {
        Ok(key) if !key.trim().is_empty() => {
            Err(SettingsError::PseudonymKeyInConfigFile(path.to_owned()))
        }
        _ => Ok(()),
    }
}

fn load_policy(path: &Path) -> Result<ledger_domain::PolicyTable, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::PolicyRead {
        path: path.to_owned(),
        source,
    })?;
    ledger_domain::PolicyTable::from_toml_str(&text).map_err(|source| SettingsError::Policy {
        path: path.to_owned(),
        source,
    })
}

fn pseudonym_key(key_hex: &str, key_file: &str) -> Result<PseudonymKey, SettingsError> {
    let key_hex = if !key_hex.trim().is_empty() {
        key_hex.trim().to_owned()
    } else if !key_file.trim().is_empty() {
        let path = PathBuf::from(key_file.trim());
        std::fs::read_to_string(&path)
            .map_err(|source| SettingsError::PseudonymKeyFile { path, source })?
            .trim()
            .to_owned()
    } else {
        return Err(SettingsError::PseudonymKeyMissing);
    };
    let bytes = hex::decode(key_hex).map_err(|_| SettingsError::PseudonymKeyInvalid)?;
    PseudonymKey::new(bytes).ok_or(SettingsError::PseudonymKeyInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_off_unless_an_address_is_set() {
        assert!(matches!(check_metrics_listen("", false, false), Ok(None)));
        assert!(matches!(check_metrics_listen("  ", true, true), Ok(None)));
        assert!(matches!(
            check_metrics_listen("localhost:9464", false, false),
            Err(SettingsError::MetricsListenAddress(_))
        ));
    }

    #[test]
    fn metrics_stay_on_loopback_unless_allowed_and_never_leave_it_in_the_demo() {
        for loopback in ["127.0.0.1:9464", "[::1]:0"] {
            for (allow, demo) in [(false, false), (true, false), (false, true), (true, true)] {
                assert!(matches!(
                    check_metrics_listen(loopback, allow, demo),
                    Ok(Some(address)) if address.ip().is_loopback()
                ));
            }
        }
        assert!(matches!(
            check_metrics_listen("0.0.0.0:9464", false, false),
            Err(SettingsError::MetricsListenNotLoopback(_))
        ));
        assert!(matches!(
            check_metrics_listen("10.0.0.5:9464", true, false),
            Ok(Some(_))
        ));
        assert!(matches!(
            check_metrics_listen("10.0.0.5:9464", true, true),
            Err(SettingsError::MetricsListenDemo(_))
        ));
    }
}
