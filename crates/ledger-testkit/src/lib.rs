//! The one harness for tests that run the real `voucher-ledger` binary: a command with a clean
//! environment, a process started and waited for until it prints `voucher-ledger listening on
//! ADDR` (its stderr kept in a file), stopped with SIGTERM as an operator would, killed when
//! dropped; the demo configuration's tokens and a bearer-token request; well-formed requests
//! ([`requests`]) and the common starting state of a ledger, sent through the API ([`world`]).
//!
//! A test crate passes the binary's path (`env!("CARGO_BIN_EXE_voucher-ledger")`), which only
//! the crate that builds the binary can name. What this knows of the server is its command line,
//! its first lines on stdout and its exit status, as a deployment script would.

pub mod requests;
pub mod world;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::Request;

/// Longest wait for a server to print its address, or to exit after SIGTERM. A start or a stop
/// takes well under a second; the margin is for a 2-core machine busy with other builds, and a
/// server that restarts from a long log.
pub const START_WAIT: Duration = Duration::from_secs(120);
pub const STOP_WAIT: Duration = Duration::from_secs(120);
/// How often the exit of a process is polled while waiting for it.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The line `serve` prints on stdout once it accepts connections.
pub const LISTENING_PREFIX: &str = "voucher-ledger listening on ";

/// The demo configuration's bearer tokens (`config/demo.toml`).
pub mod tokens {
    pub const ADMINISTRATION: &str = "demo-administration-token";
    pub const OPERATOR: &str = "demo-operator-token";
    pub const PROVIDER_AG_0012: &str = "demo-provider-AG-0012-token";
    pub const PROVIDER_AG_0099: &str = "demo-provider-AG-0099-token";
    pub const AUDITOR: &str = "demo-auditor-token";
    /// `company:0403019261` and `company:0431150350`.
    pub const COMPANY_0403019261: &str = "demo-company-0403019261-token";
    pub const COMPANY_0431150350: &str = "demo-company-0431150350-token";
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The policy table of the repository, `config/policy.toml`.
pub fn policy_file() -> PathBuf {
    workspace_root().join("config/policy.toml")
}

/// `binary ARGS` with the repository's policy table and none of the settings of the
/// environment the tests run in: `VOUCHER_LEDGER__*` settings, the log filters
/// (`VOUCHER_LEDGER_LOG`, `RUST_LOG`) and the OpenTelemetry variables (a test asks for trace
/// export only on purpose) would change what the server does.
pub fn command<S: AsRef<OsStr>>(binary: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("VOUCHER_LEDGER__POLICY_FILE", policy_file())
        .env_remove("VOUCHER_LEDGER_LOG")
        .env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if (text.starts_with("VOUCHER_LEDGER__") && name != "VOUCHER_LEDGER__POLICY_FILE")
            || text.starts_with("OTEL_")
        {
            command.env_remove(name);
        }
    }
    command
}

/// Why a server did not start: it exited, or printed no address in time, with its stderr.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, when it exited (it is killed when it did not within the wait).
    pub status: Option<ExitStatus>,
    pub stderr: String,
}

/// A running server process. Dropping it kills the process if it still runs.
#[derive(Debug)]
pub struct Process {
    child: Child,
    address: String,
    /// The lines it printed on stdout before the `listening on` line (the metrics address).
    announced: Vec<String>,
    log_path: PathBuf,
}

impl Process {
    /// Spawns `command` with stdout piped and stderr written to `log_path`, and waits until it
    /// prints its address. Blocks the thread: async tests use [`Process::start`].
    pub fn spawn(command: &mut Command, log_path: &Path) -> Result<Process, StartFailure> {
        let (child, receiver) = launch(command, log_path);
        let received = receiver.recv_timeout(START_WAIT);
        Process::ready(child, received, log_path)
    }

    /// [`Process::spawn`], waiting off the async runtime's threads.
    pub async fn start(command: &mut Command, log_path: &Path) -> Result<Process, StartFailure> {
        let (child, receiver) = launch(command, log_path);
        let received = tokio::task::spawn_blocking(move || receiver.recv_timeout(START_WAIT))
            .await
            .expect("the wait for the server's address does not panic");
        Process::ready(child, received, log_path)
    }

    /// The process once its address came, or why it did not (then it no longer runs).
    fn ready(
        mut child: Child,
        received: Result<Announcement, RecvTimeoutError>,
        log_path: &Path,
    ) -> Result<Process, StartFailure> {
        match received {
            Ok((address, announced)) => Ok(Process {
                child,
                address,
                announced,
                log_path: log_path.to_owned(),
            }),
            Err(error) => {
                // Its stdout closed: it exits, and its status says why (a configuration error
                // exits with 2, say). No address in time: it is killed.
                let status = match error {
                    RecvTimeoutError::Disconnected => child.wait().ok(),
                    RecvTimeoutError::Timeout => {
                        let _ = child.kill();
                        let _ = child.wait();
                        None
                    }
                };
                Err(StartFailure {
                    status,
                    stderr: read_log(log_path),
                })
            }
        }
    }

    /// [`Process::start`], panicking with the server's stderr when it does not start.
    pub async fn started(command: &mut Command, log_path: &Path) -> Process {
        Process::start(command, log_path)
            .await
            .unwrap_or_else(|failure| {
                panic!(
                    "voucher-ledger did not print `{LISTENING_PREFIX}ADDR` within {START_WAIT:?} \
                     (exit: {:?}); its stderr:\n{}",
                    failure.status, failure.stderr
                )
            })
    }

    /// The `host:port` it listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `http://host:port`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What it printed on stdout before the `listening on` line.
    pub fn announced(&self) -> &[String] {
        &self.announced
    }

    /// The rest of an announced line that starts with `prefix`.
    pub fn announced_after(&self, prefix: &str) -> Option<&str> {
        self.announced
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Its stdout so far (copied by the harness, line by line).
    pub fn stdout(&self) -> String {
        read_log(&stdout_path(&self.log_path))
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// Sends SIGTERM, as systemd or an operator would. The `kill` command rather than a crate:
    /// the workspace forbids unsafe code and has no signal crate, and `kill` is on every Unix.
    pub fn send_sigterm(&self) {
        signal(self.child.id(), "-TERM");
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("the killed server is reaped")
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the exit status can be read")
    }

    /// Waits for the process to exit, at most `wait`; `None` when it still runs then.
    pub async fn wait_for_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(EXIT_POLL_INTERVAL).await;
        }
    }

    /// [`Process::wait_for_exit`] for tests without an async runtime: blocks the thread.
    pub fn wait_for_exit_blocking(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(EXIT_POLL_INTERVAL);
        }
    }

    /// SIGTERM, then waits for its exit, which must be clean: the panic carries its stderr.
    pub async fn stop(mut self) {
        self.send_sigterm();
        let status = self.wait_for_exit(STOP_WAIT).await;
        self.check_clean_exit(status);
    }

    /// [`Process::stop`] for tests without an async runtime: blocks the thread.
    pub fn stop_blocking(mut self) {
        self.send_sigterm();
        let status = self.wait_for_exit_blocking(STOP_WAIT);
        self.check_clean_exit(status);
    }

    fn check_clean_exit(&self, status: Option<ExitStatus>) {
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "voucher-ledger exited with {status} after SIGTERM; its stderr:\n{}",
                self.log()
            ),
            None => panic!(
                "voucher-ledger did not exit within {STOP_WAIT:?} of SIGTERM; its stderr:\n{}",
                self.log()
            ),
        }
    }
}

/// The address a server printed, and the lines it printed before.
pub type Announcement = (String, Vec<String>);

/// Spawns the server and a thread that reads its stdout, without waiting: the receiver gets its
/// announcement, or is closed when the process exits first. The non-blocking start under
/// [`Process::spawn`] and [`Process::start`], for a test that must act while a server starts
/// (the crash campaign kills it then).
pub fn launch(command: &mut Command, log_path: &Path) -> (Child, Receiver<Announcement>) {
    let log = File::create(log_path).expect("the server's log file can be created");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // A file rather than a pipe: nobody has to drain it, and it is read back when a test
        // fails or looks for what the server logged.
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the voucher-ledger binary can be started");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdout_path = stdout_path(log_path);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Every line is kept in a file too, for the tests that look for what it printed.
        let mut copy = File::create(stdout_path).expect("the stdout copy can be created");
        let mut sender = Some(sender);
        let mut announced = Vec::new();
        // Read to the end, so that the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = writeln!(copy, "{line}");
            if sender.is_none() {
                continue;
            }
            if let Some(address) = line.strip_prefix(LISTENING_PREFIX) {
                if let Some(sender) = sender.take() {
                    let _ =
                        sender.send((address.trim().to_owned(), std::mem::take(&mut announced)));
                }
            } else {
                announced.push(line);
            }
        }
    });
    (child, receiver)
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where the stdout of the server whose stderr goes to `log_path` is copied: beside it, with
/// the extension `stdout`.
pub fn stdout_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("stdout")
}

/// Sends `signal` (`-TERM`, `-KILL`, `-STOP`, `-CONT`) to process `pid` with the `kill` command.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("the kill command runs");
    assert!(status.success(), "kill {signal} {pid} failed: {status}");
}

/// A file's text, or a note that it cannot be read, for a failing test's message.
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("({} cannot be read: {error})", path.display()))
}

/// `message` with `authorization: Bearer TOKEN`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .expect("a test token is printable ascii");
    request.metadata_mut().insert("authorization", value);
    request
}
