//! The server's configuration: `config/default.toml`, then `--demo`'s `config/demo.toml` (both
//! built into the binary, as is the policy table `config/policy.toml`, so the server runs from
//! any folder), then `--config FILE`, then `VOUCHER_LEDGER__*` environment variables, then
//! command-line flags. Checked once at start; a bad setting stops the server with a clear
//! message rather than serving with a surprise: a setting nobody knows (`lisen = ...`) is an
//! error naming it and where it was written, an invalid choice lists the valid ones.
//!
//! [`Layered`] keeps where each value came from, for `voucher-ledger config print`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ledger_domain::{Principal, PseudonymKey};
use serde::Deserialize;

pub use crate::transport::AuthMode;
use crate::transport::{ListenRefused, TlsFiles, TlsFilesError};

const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");
const DEMO_TOML: &str = include_str!("../../../config/demo.toml");
/// The dated policy table used when `policy_file` is empty (the default).
pub const BUILT_IN_POLICY_TOML: &str = include_str!("../../../config/policy.toml");

/// The prefix of the environment variables that set a setting: `VOUCHER_LEDGER__LISTEN`.
pub const ENV_PREFIX: &str = "VOUCHER_LEDGER__";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    const CHOICES: &'static [(&'static str, LogFormat)] =
        &[("human", LogFormat::Human), ("json", LogFormat::Json)];
}

const AUTH_MODE_CHOICES: &[(&str, AuthMode)] =
    &[("token", AuthMode::Token), ("mtls", AuthMode::Mtls)];

/// The longest segment file of the sealed past a configuration may ask for, in entries: a
/// segment is written in one piece by the checkpoint thread, with its offsets in memory, and
/// ten million entries (about 3.5 GB of file) is already far past any use.
pub const SEGMENT_LEN_EVENTS_MAX: u64 = 10_000_000;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub principal: String,
    pub sha256: String,
}

/// The settings as written, before they are checked. Its field names are the settings' names:
/// [`setting_names`] reads them from here, so the check of unknown keys cannot drift from it.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: String,
    data_dir: PathBuf,
    /// Empty: the policy table built into the binary.
    #[serde(default)]
    policy_file: String,
    /// A choice, parsed by [`choose`] so that a wrong value lists the valid ones.
    log_format: String,
    request_bytes_max: usize,
    checkpoint_interval_events: u64,
    segment_len_events: u64,
    db_rewrite_bytes_min: u64,
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    pseudonym_key_hex: String,
    #[serde(default)]
    pseudonym_key_file: String,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    #[serde(default = "default_auth_mode")]
    auth_mode: String,
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
    /// Where the event log is kept: a choice of [`STORE_CHOICES`] (issue 19).
    #[serde(default = "default_store")]
    store: String,
    /// With `store = "postgres"`: the connection string (libpq key=value or URL form); its
    /// password, if written here, is masked by `config print`.
    #[serde(default)]
    postgres_connection: String,
    /// With `store = "postgres"`: start as a hot standby, which follows the log and answers
    /// reads until it takes the writer's lock (the writer's death or stop), then writes on
    /// from its own head (`serve --standby`).
    #[serde(default)]
    postgres_standby: bool,
    /// With `store = "postgres"`: how long a writer whose connection was lost tries to
    /// reconnect before it stops the process; 0 stops it at once (issue 19).
    #[serde(default = "default_postgres_reconnect_deadline_seconds")]
    postgres_reconnect_deadline_seconds: u64,
    /// The address a writer records for standbys to name in `NOT_THE_WRITER`; empty: the
    /// address it is bound to (issue 19).
    #[serde(default)]
    advertise_address: String,
}

/// A promotion by Patroni or pg_auto_failover takes seconds to tens of seconds (its health
/// checks, then `pg_ctl promote`); a minute covers it with room, and a database down for longer
/// is an outage for the process manager to see (the process stops) rather than to hide.
pub const POSTGRES_RECONNECT_DEADLINE_SECONDS: u64 = 60;

fn default_postgres_reconnect_deadline_seconds() -> u64 {
    POSTGRES_RECONNECT_DEADLINE_SECONDS
}

/// The longest reconnection deadline taken, in seconds (a day): beyond that, a typo.
const POSTGRES_RECONNECT_DEADLINE_SECONDS_MAX: u64 = 86_400;

fn default_auth_mode() -> String {
    "token".to_owned()
}

fn default_store() -> String {
    "sled".to_owned()
}

/// Where the event log is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSetting {
    /// The embedded sled store in `data_dir` (the default).
    Sled,
    /// A PostgreSQL database (see README "High availability"); `data_dir` then keeps only this
    /// process's checkpoint and retained snapshots, caches derived from the log.
    Postgres { connection: String, standby: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Sled,
    Postgres,
}

const STORE_CHOICES: &[(&str, StoreKind)] =
    &[("sled", StoreKind::Sled), ("postgres", StoreKind::Postgres)];

/// Checked settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub policy: ledger_domain::PolicyTable,
    /// The policy file read, or `None` for the table built into the binary.
    pub policy_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub request_bytes_max: usize,
    /// Events between two checkpoints of the engine's state (`EngineConfig`), at least: the
    /// engine stretches it after a long history (`ledger_engine::checkpoint_interval_events`).
    pub checkpoint_interval_events: u64,
    /// Entries per segment file of the sealed past (`EngineConfig`, `StoreOptions`).
    pub segment_len_events: u64,
    /// The smallest sled `db` file, in bytes, that a clean stop after a seal rewrites with its
    /// live records only (`ledger_store::rewrite_db_if_sealed`).
    pub db_rewrite_bytes_min: u64,
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
    /// Where the event log is kept.
    pub store: StoreSetting,
    /// With PostgreSQL: how long a writer that lost its connection tries to reconnect before
    /// it stops the process; zero stops it at once.
    pub postgres_reconnect_deadline: std::time::Duration,
    /// Where clients reach this process, recorded by a writer for standbys to name;
    /// `None`: the address it is bound to.
    pub advertise_address: Option<String>,
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
            .field("segment_len_events", &self.segment_len_events)
            .field("db_rewrite_bytes_min", &self.db_rewrite_bytes_min)
            .field("demo", &self.demo)
            .field("tokens", &self.tokens.len())
            .field("auth_mode", &self.auth_mode)
            .field("tls", &self.tls)
            .field("metrics_listen", &self.metrics_listen)
            .field(
                "store",
                &match &self.store {
                    StoreSetting::Sled => "sled",
                    StoreSetting::Postgres { .. } => "postgres",
                },
            )
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
    /// `serve --standby`: sets `postgres_standby`.
    pub standby: bool,
}

/// Where the value of a setting came from: the last layer that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `config/default.toml`, built in.
    Default,
    /// `config/demo.toml`, built in, with `--demo`.
    Demo,
    /// The `--config` file.
    File(PathBuf),
    /// An environment variable, by its name.
    Env(String),
    /// A command-line flag, by its name.
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Demo => f.write_str("demo"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration cannot be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration file {path} cannot be read: {source}")]
    ConfigFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid toml: {source}")]
    ConfigFileInvalid {
        path: PathBuf,
        // Boxed: config's error is large, and every Result of these settings carries the size.
        source: Box<config::ConfigError>,
    },
    #[error("unknown setting `{key}` in {place}{}; the settings are {known}", suggestion.map(|name| format!(" (did you mean `{name}`?)")).unwrap_or_default())]
    UnknownSetting {
        key: String,
        place: String,
        suggestion: Option<&'static str>,
        known: String,
    },
    #[error("{key} = {value:?} is not valid: expected one of {choices}")]
    InvalidChoice {
        key: &'static str,
        value: String,
        choices: String,
    },
    #[error("listen address {0:?} is not an ip address and port, nor localhost:PORT")]
    ListenAddress(String),
    #[error("metrics_listen {0:?} is not an ip address and port, nor localhost:PORT (or empty, for no metrics)")]
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
    #[error("segment_len_events must be between 1 and {SEGMENT_LEN_EVENTS_MAX}")]
    SegmentLenEvents,
    #[error("store = \"postgres\" needs postgres_connection, a connection string such as \"host=db.example port=5432 user=ledger dbname=ledger\"")]
    PostgresConnectionMissing,
    #[error("postgres_reconnect_deadline_seconds must be between 0 and {POSTGRES_RECONNECT_DEADLINE_SECONDS_MAX}")]
    PostgresReconnectDeadline,
    #[error("advertise_address {0:?} is not an address clients can use: write host:port, without spaces")]
    AdvertiseAddress(String),
    #[error("a standby (--standby, postgres_standby) needs store = \"postgres\": a sled ledger has one process")]
    StandbyWithoutPostgres,
}

/// The settings as layered, not yet checked, with where each came from.
#[derive(Clone, Debug)]
pub struct Layered {
    raw: RawSettings,
    origins: BTreeMap<&'static str, Origin>,
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
        Layered::load(overrides, metrics_listen, &process_environment())?.check()
    }
}

/// The `VOUCHER_LEDGER__*` variables of this process (a name or value that is not UTF-8 is
/// kept lossily, and then refused as an unknown setting or a bad value, by name).
pub fn process_environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.to_string_lossy().into_owned();
            name.starts_with(ENV_PREFIX)
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

impl Layered {
    /// Layers the built-in defaults, the demo, the file, `environment` (the `VOUCHER_LEDGER__*`
    /// variables, passed in so that tests need not touch the process's) and the flags, and
    /// refuses any key that is not a setting, naming it and where it was written.
    pub fn load(
        overrides: &Overrides,
        metrics_listen: Option<&str>,
        environment: &BTreeMap<String, String>,
    ) -> Result<Layered, SettingsError> {
        let mut origins = BTreeMap::new();
        let mut builder = config::Config::builder();

        let mut layers: Vec<(String, Origin)> = vec![(DEFAULT_TOML.to_owned(), Origin::Default)];
        if overrides.demo {
            layers.push((DEMO_TOML.to_owned(), Origin::Demo));
        }
        if let Some(path) = &overrides.config_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| SettingsError::ConfigFileRead {
                    path: path.clone(),
                    source,
                })?;
            layers.push((text, Origin::File(path.clone())));
        }
        for (text, origin) in layers {
            let source = config::File::from_str(&text, config::FileFormat::Toml);
            let keys = config::Source::collect(&source).map_err(|source| match &origin {
                Origin::File(path) => SettingsError::ConfigFileInvalid {
                    path: path.clone(),
                    source: Box::new(source),
                },
                _ => SettingsError::Load(source),
            })?;
            for (key, value) in keys {
                let place = match &origin {
                    Origin::File(path) => format!("configuration file {}", path.display()),
                    _ => "the built-in configuration".to_owned(),
                };
                let name = known_setting(&key, place)?;
                if name == "pseudonym_key_hex" && matches!(origin, Origin::File(_)) {
                    // The pseudonym key never comes from a configuration file (only the
                    // demo's, whose key is public): a file of its own, readable by the service
                    // alone, or the environment.
                    if !value.into_string().unwrap_or_default().trim().is_empty() {
                        if let Origin::File(path) = origin {
                            return Err(SettingsError::PseudonymKeyInConfigFile(path));
                        }
                    }
                }
                origins.insert(name, origin.clone());
            }
            builder = builder.add_source(source);
        }

        let mut variables = config::Map::new();
        for (variable, value) in environment {
            let Some(key) = variable.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let name = known_setting(&key, format!("environment variable {variable}"))?;
            origins.insert(name, Origin::Env(variable.clone()));
            variables.insert(variable.clone(), value.clone());
        }
        builder = builder.add_source(
            config::Environment::with_prefix("VOUCHER_LEDGER")
                .prefix_separator("__")
                .separator("__")
                .source(Some(variables)),
        );

        let flags = [
            ("listen", "--listen", overrides.listen.clone()),
            (
                "data_dir",
                "--data",
                overrides
                    .data_dir
                    .as_ref()
                    .map(|path| path.to_string_lossy().into_owned()),
            ),
            (
                "metrics_listen",
                "--metrics-listen",
                metrics_listen.map(str::to_owned),
            ),
            (
                "postgres_standby",
                "--standby",
                overrides.standby.then(|| "true".to_owned()),
            ),
        ];
        for (key, flag, value) in flags {
            if let Some(value) = value {
                builder = builder.set_override(key, value)?;
                origins.insert(key, Origin::Flag(flag));
            }
        }
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        Ok(Layered { raw, origins })
    }

    /// Where `key` came from (a setting nobody set has its serde default: [`Origin::Default`]).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Every setting as `(name, value as TOML, origin)`, in the order of [`RawSettings`]'s
    /// fields, read through serde so that a setting added there is shown without more code;
    /// secrets masked: a setting whose name says it holds a key, a secret or a password
    /// (`pseudonym_key_hex`) shows only its length, and the tokens' digests only their first
    /// eight hex digits.
    pub fn entries(&self) -> Vec<(&'static str, String, Origin)> {
        let fields = match serde_json::to_value(&self.raw) {
            Ok(serde_json::Value::Object(fields)) => fields,
            // A struct of strings, numbers, booleans and lists always serializes to an object.
            _ => serde_json::Map::new(),
        };
        setting_names()
            .iter()
            .map(|name| {
                let value = fields.get(*name).cloned().unwrap_or_default();
                (*name, shown_value(name, &value), self.origin(name))
            })
            .collect()
    }

    /// The layered settings, checked: addresses, TLS files, the policy, the key, the tokens.
    pub fn check(self) -> Result<Settings, SettingsError> {
        let raw = self.raw;
        let listen = parse_listen(&raw.listen)
            .ok_or_else(|| SettingsError::ListenAddress(raw.listen.clone()))?;
        let log_format = choose("log_format", &raw.log_format, LogFormat::CHOICES)?;
        let auth_mode = choose("auth_mode", &raw.auth_mode, AUTH_MODE_CHOICES)?;
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
        if auth_mode == AuthMode::Mtls && !client_certificates {
            return Err(SettingsError::MtlsWithoutClientCa);
        }
        if !(1024..=4 * 1024 * 1024).contains(&raw.request_bytes_max) {
            return Err(SettingsError::RequestBytesMax);
        }
        if !(1..=10_000_000).contains(&raw.checkpoint_interval_events) {
            return Err(SettingsError::CheckpointIntervalEvents);
        }
        if !(1..=SEGMENT_LEN_EVENTS_MAX).contains(&raw.segment_len_events) {
            return Err(SettingsError::SegmentLenEvents);
        }
        let policy_file =
            Some(PathBuf::from(raw.policy_file.trim())).filter(|path| !path.as_os_str().is_empty());
        let policy = load_policy(policy_file.as_deref())?;
        let store = match choose("store", &raw.store, STORE_CHOICES)? {
            StoreKind::Sled if raw.postgres_standby => {
                return Err(SettingsError::StandbyWithoutPostgres)
            }
            StoreKind::Sled => StoreSetting::Sled,
            StoreKind::Postgres if raw.postgres_connection.trim().is_empty() => {
                return Err(SettingsError::PostgresConnectionMissing)
            }
            StoreKind::Postgres => StoreSetting::Postgres {
                connection: raw.postgres_connection.trim().to_owned(),
                standby: raw.postgres_standby,
            },
        };
        if raw.postgres_reconnect_deadline_seconds > POSTGRES_RECONNECT_DEADLINE_SECONDS_MAX {
            return Err(SettingsError::PostgresReconnectDeadline);
        }
        let advertise_address = check_advertise_address(&raw.advertise_address)?;
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
            policy_file,
            log_format,
            request_bytes_max: raw.request_bytes_max,
            checkpoint_interval_events: raw.checkpoint_interval_events,
            segment_len_events: raw.segment_len_events,
            db_rewrite_bytes_min: raw.db_rewrite_bytes_min,
            demo: raw.demo,
            pseudonym_key,
            tokens,
            auth_mode,
            tls,
            metrics_listen,
            store,
            postgres_reconnect_deadline: std::time::Duration::from_secs(
                raw.postgres_reconnect_deadline_seconds,
            ),
            advertise_address,
        })
    }
}

/// `advertise_address` checked: empty is `None` (the bound address); otherwise `host:port`
/// (a name or an IP address, a port), with no whitespace or control character, as a client
/// writes it after `http://` or `https://`.
fn check_advertise_address(raw: &str) -> Result<Option<String>, SettingsError> {
    let address = raw.trim();
    if address.is_empty() {
        return Ok(None);
    }
    let refused = || SettingsError::AdvertiseAddress(raw.to_owned());
    let (host, port) = address.rsplit_once(':').ok_or_else(refused)?;
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok = !host.is_empty()
        && host.len() <= 255
        && !host.chars().any(|character| {
            character.is_whitespace() || character.is_control() || character == '/'
        });
    if !(port_ok && host_ok) {
        return Err(refused());
    }
    Ok(Some(address.to_owned()))
}

/// Whether a setting holds a secret, by its name: only its length is ever shown.
fn is_secret(name: &str) -> bool {
    ["_hex", "secret", "password"]
        .iter()
        .any(|marker| name.contains(marker))
        && !name.ends_with("_file")
}

/// A setting's value as TOML, masked where it is secret (see [`Layered::entries`]). JSON's
/// string escapes are TOML's basic-string escapes.
fn shown_value(name: &str, value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(text) if name.ends_with("_connection") => {
            Value::from(masked_connection(text)).to_string()
        }
        Value::String(text) if is_secret(name) && !text.trim().is_empty() => {
            Value::from(format!("<masked, {} characters>", text.trim().len())).to_string()
        }
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Array(items) => {
            let lines = items
                .iter()
                .map(|item| match item {
                    Value::Object(fields) => {
                        let pairs = fields
                            .iter()
                            .map(|(key, value)| {
                                let shown = match (key.as_str(), value) {
                                    ("sha256", Value::String(digest)) => {
                                        let prefix: String =
                                            digest.trim().chars().take(8).collect();
                                        Value::from(format!("{prefix}<masked>")).to_string()
                                    }
                                    _ => shown_value(key, value),
                                };
                                format!("{key} = {shown}")
                            })
                            .collect::<Vec<_>>();
                        format!("  {{ {} }},", pairs.join(", "))
                    }
                    other => format!("  {},", shown_value(name, other)),
                })
                .collect::<Vec<_>>();
            format!("[\n{}\n]", lines.join("\n"))
        }
        Value::Null => "\"\"".to_owned(),
        other => other.to_string(),
    }
}

/// A connection string with its password masked, in the key=value form
/// (`password=secret`) and the URL form (`postgresql://user:secret@host/db`).
fn masked_connection(connection: &str) -> String {
    let masked_pairs = connection
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=<masked>"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    let Some((scheme, rest)) = masked_pairs.split_once("://") else {
        return masked_pairs;
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:<masked>@{host}")
        }
        _ => masked_pairs,
    }
}

/// The names of every setting: the fields of [`RawSettings`], asked of serde, so that a new
/// setting is known here the moment it is declared.
pub fn setting_names() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only the field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names are read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    static NAMES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: &'static [&'static str] = &[];
        // The error is the point: it stops the derive once it has named its fields.
        let _ = RawSettings::deserialize(FieldNames(&mut names));
        names
    })
}

/// `key` as a known setting's name, or an error naming it, where it was written and the
/// closest setting.
fn known_setting(key: &str, place: String) -> Result<&'static str, SettingsError> {
    let names = setting_names();
    if let Some(name) = names.iter().find(|name| **name == key) {
        return Ok(name);
    }
    let suggestion = names
        .iter()
        .map(|name| (edit_distance(key, name), *name))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, name)| name);
    Err(SettingsError::UnknownSetting {
        key: key.to_owned(),
        place,
        suggestion,
        known: names.join(", "),
    })
}

/// Levenshtein distance, for the "did you mean" of an unknown setting.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// `value` as one of `choices`, or an error listing them.
fn choose<T: Copy>(
    key: &'static str,
    value: &str,
    choices: &[(&'static str, T)],
) -> Result<T, SettingsError> {
    choices
        .iter()
        .find(|(name, _)| *name == value.trim())
        .map(|(_, choice)| *choice)
        .ok_or_else(|| SettingsError::InvalidChoice {
            key,
            value: value.to_owned(),
            choices: choices
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A listen address: an IP address and port, or `localhost:PORT`, which is 127.0.0.1 (resolving
/// `localhost` could also give ::1 or, with a tampered hosts file, anything: loopback is what
/// the name is meant to say, and the loopback checks rely on it).
pub fn parse_listen(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix("LOCALHOST:"))?;
    let port: u16 = port.parse().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
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
    let address =
        parse_listen(text).ok_or_else(|| SettingsError::MetricsListenAddress(text.to_owned()))?;
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

/// The policy table of `path`, or the one built into the binary.
fn load_policy(path: Option<&Path>) -> Result<ledger_domain::PolicyTable, SettingsError> {
    let (text, path) = match path {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| SettingsError::PolicyRead {
                path: path.to_owned(),
                source,
            })?,
            path.to_owned(),
        ),
        None => (
            BUILT_IN_POLICY_TOML.to_owned(),
            PathBuf::from("<built-in config/policy.toml>"),
        ),
    };
    ledger_domain::PolicyTable::from_toml_str(&text)
        .map_err(|source| SettingsError::Policy { path, source })
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

    fn demo() -> Overrides {
        Overrides {
            demo: true,
            ..Overrides::default()
        }
    }

    fn environment(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn with_file(text: &str) -> (tempfile::TempDir, Overrides) {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let path = folder.path().join("ledger.toml");
        std::fs::write(&path, text).expect("the file is written");
        let overrides = Overrides {
            config_file: Some(path),
            ..demo()
        };
        (folder, overrides)
    }

    #[test]
    fn every_setting_of_the_built_in_defaults_is_known_and_the_demo_starts() {
        assert!(setting_names().contains(&"listen"));
        assert!(setting_names().contains(&"metrics_allow_non_loopback"));
        let settings = Layered::load(&demo(), None, &BTreeMap::new())
            .and_then(Layered::check)
            .expect("the demo configuration is valid");
        assert_eq!(settings.policy_file, None, "the built-in policy table");
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 50051)));
    }

    #[test]
    fn an_unknown_key_in_a_file_is_refused_naming_it_and_the_file() {
        let (_folder, overrides) = with_file("lisen = \"127.0.0.1:6000\"\n");
        let error = Layered::load(&overrides, None, &BTreeMap::new()).expect_err("lisen");
        let text = error.to_string();
        assert!(
            text.starts_with("unknown setting `lisen` in configuration file ")
                && text.contains("ledger.toml (did you mean `listen`?)"),
            "{text}"
        );
        let (_folder, overrides) = with_file("listen = \"127.0.0.1:6000\"\n");
        let layered = Layered::load(&overrides, None, &BTreeMap::new()).expect("listen is known");
        assert!(matches!(layered.origin("listen"), Origin::File(_)));
        assert_eq!(
            layered.check().expect("valid").listen,
            SocketAddr::from(([127, 0, 0, 1], 6000))
        );
    }

    #[test]
    fn an_unknown_key_inside_a_token_entry_is_refused() {
        let (_folder, overrides) = with_file("[[tokens]]\nprincipal = \"auditor\"\nsha = \"00\"\n");
        let error = Layered::load(&overrides, None, &BTreeMap::new()).expect_err("sha");
        assert!(error.to_string().contains("sha"), "{error}");
    }

    #[test]
    fn an_unknown_environment_variable_is_refused_naming_the_variable() {
        let error = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__LISEN", "127.0.0.1:6000")]),
        )
        .expect_err("lisen");
        assert!(
            error.to_string().starts_with(
                "unknown setting `lisen` in environment variable VOUCHER_LEDGER__LISEN (did you mean `listen`?)"
            ),
            "{error}"
        );
        let layered = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__LISTEN", "127.0.0.1:6000")]),
        )
        .expect("listen is known");
        assert_eq!(
            layered.origin("listen"),
            Origin::Env("VOUCHER_LEDGER__LISTEN".to_owned())
        );
    }

    #[test]
    fn each_value_says_which_layer_it_came_from() {
        let (_folder, mut overrides) = with_file("request_bytes_max = 70000\n");
        overrides.data_dir = Some(PathBuf::from("/tmp/ledger"));
        let layered = Layered::load(
            &overrides,
            Some("127.0.0.1:9464"),
            &environment(&[("VOUCHER_LEDGER__LOG_FORMAT", "json")]),
        )
        .expect("valid layers");
        assert_eq!(layered.origin("listen"), Origin::Default);
        assert_eq!(layered.origin("demo"), Origin::Demo);
        assert!(matches!(
            layered.origin("request_bytes_max"),
            Origin::File(_)
        ));
        assert_eq!(
            layered.origin("log_format"),
            Origin::Env("VOUCHER_LEDGER__LOG_FORMAT".to_owned())
        );
        assert_eq!(layered.origin("data_dir"), Origin::Flag("--data"));
        assert_eq!(
            layered.origin("metrics_listen"),
            Origin::Flag("--metrics-listen")
        );
        let entries = layered.entries();
        assert_eq!(entries.len(), setting_names().len());
        let shown: String = entries
            .iter()
            .map(|(name, value, _)| format!("{name} = {value}\n"))
            .collect();
        assert!(
            !shown.contains("64656d6f"),
            "the demo key is masked: {shown}"
        );
        assert!(shown.contains("pseudonym_key_hex = \"<masked, 72 characters>\""));
        assert!(
            !shown.contains("7a607d496e00cb9f"),
            "digests are cut: {shown}"
        );
    }

    #[test]
    fn the_smallest_database_rewritten_after_a_seal_is_a_setting() {
        let settings = Layered::load(&demo(), None, &BTreeMap::new())
            .and_then(Layered::check)
            .expect("the demo configuration is valid");
        assert_eq!(
            settings.db_rewrite_bytes_min,
            ledger_store::REWRITE_DB_BYTES_MIN
        );
        let settings = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__DB_REWRITE_BYTES_MIN", "0")]),
        )
        .and_then(Layered::check)
        .expect("every stop after a seal rewrites");
        assert_eq!(settings.db_rewrite_bytes_min, 0);
        let error = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__DB_REWRITE_BYTES_MIN", "-1")]),
        )
        .and_then(Layered::check)
        .expect_err("a negative size");
        assert!(
            error.to_string().contains("db_rewrite_bytes_min"),
            "{error}"
        );
    }

    #[test]
    fn the_segment_length_is_a_setting_within_its_bounds() {
        let settings = Layered::load(&demo(), None, &BTreeMap::new())
            .and_then(Layered::check)
            .expect("the demo configuration is valid");
        assert_eq!(
            settings.segment_len_events,
            ledger_store::SEGMENT_LEN_EVENTS_DEFAULT
        );
        let settings = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__SEGMENT_LEN_EVENTS", "25")]),
        )
        .and_then(Layered::check)
        .expect("25 entries per segment");
        assert_eq!(settings.segment_len_events, 25);
        for refused in ["0", "10000001"] {
            let error = Layered::load(
                &demo(),
                None,
                &environment(&[("VOUCHER_LEDGER__SEGMENT_LEN_EVENTS", refused)]),
            )
            .and_then(Layered::check)
            .expect_err(refused);
            assert_eq!(
                error.to_string(),
                "segment_len_events must be between 1 and 10000000"
            );
        }
    }

    #[test]
    fn an_invalid_choice_lists_the_valid_ones() {
        for (variable, value, expected) in [
            (
                "VOUCHER_LEDGER__LOG_FORMAT",
                "xml",
                "log_format = \"xml\" is not valid: expected one of human, json",
            ),
            (
                "VOUCHER_LEDGER__AUTH_MODE",
                "password",
                "auth_mode = \"password\" is not valid: expected one of token, mtls",
            ),
        ] {
            let error = Layered::load(&demo(), None, &environment(&[(variable, value)]))
                .and_then(Layered::check)
                .expect_err(value);
            assert_eq!(error.to_string(), expected);
        }
        let settings = Layered::load(
            &demo(),
            None,
            &environment(&[("VOUCHER_LEDGER__LOG_FORMAT", "json")]),
        )
        .and_then(Layered::check)
        .expect("json is a log format");
        assert_eq!(settings.log_format, LogFormat::Json);
    }

    #[test]
    fn localhost_and_a_port_is_loopback_and_other_names_are_refused() {
        assert_eq!(
            parse_listen("localhost:50051"),
            Some(SocketAddr::from(([127, 0, 0, 1], 50051)))
        );
        assert_eq!(
            parse_listen("[::1]:0"),
            Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)))
        );
        for refused in [
            "ledger.example:50051",
            "localhost",
            "localhost:port",
            "localhost:70000",
        ] {
            assert_eq!(parse_listen(refused), None, "{refused}");
        }
        let overrides = Overrides {
            listen: Some("ledger.example:50051".to_owned()),
            ..demo()
        };
        let error = Layered::load(&overrides, None, &BTreeMap::new())
            .and_then(Layered::check)
            .expect_err("not an address");
        assert!(matches!(error, SettingsError::ListenAddress(_)), "{error}");
    }

    #[test]
    fn a_policy_file_overrides_the_built_in_table_and_a_missing_one_is_named() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let missing = folder.path().join("policy.toml");
        let environment_with =
            |path: &Path| environment(&[("VOUCHER_LEDGER__POLICY_FILE", &path.to_string_lossy())]);
        let error = Layered::load(&demo(), None, &environment_with(&missing))
            .and_then(Layered::check)
            .expect_err("no such file");
        assert!(
            error.to_string().contains(&missing.display().to_string()),
            "{error}"
        );
        std::fs::write(&missing, BUILT_IN_POLICY_TOML).expect("the policy is written");
        let settings = Layered::load(&demo(), None, &environment_with(&missing))
            .and_then(Layered::check)
            .expect("a valid policy file");
        assert_eq!(settings.policy_file.as_deref(), Some(missing.as_path()));
    }

    #[test]
    fn a_configuration_file_may_not_hold_the_pseudonym_key() {
        let (_folder, overrides) = with_file("pseudonym_key_hex = \"00112233\"\n");
        let error = Layered::load(&overrides, None, &BTreeMap::new()).expect_err("a key");
        assert!(
            matches!(error, SettingsError::PseudonymKeyInConfigFile(_)),
            "{error}"
        );
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_set() {
        assert!(matches!(check_metrics_listen("", false, false), Ok(None)));
        assert!(matches!(check_metrics_listen("  ", true, true), Ok(None)));
        assert!(matches!(
            check_metrics_listen("ledger.example:9464", false, false),
            Err(SettingsError::MetricsListenAddress(_))
        ));
        assert!(matches!(
            check_metrics_listen("localhost:9464", false, false),
            Ok(Some(address)) if address == SocketAddr::from(([127, 0, 0, 1], 9464))
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
