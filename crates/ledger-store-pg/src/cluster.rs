//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary folder,
//! `pg_ctl start` on 127.0.0.1 on a free port, stopped and removed on drop. Uses the Debian
//! packages' binaries (`/usr/lib/postgresql/<version>/bin`). `initdb` refuses to run as root, so
//! as root every command runs as the `postgres` user (`runuser -u postgres --`), in a folder
//! given to that user.
//!
//! Not for production: trust authentication on loopback, `fsync` left on (the tests are about
//! durability), nothing tuned.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The settings of a primary whose commits wait for one synchronous standby,
/// [`SYNCHRONOUS_STANDBY_NAME`] (`synchronous_commit = on`: a commit returns once the
/// standby has it on disk).
pub const SYNCHRONOUS_PRIMARY: &str = "wal_level = replica\nsynchronous_commit = on\nsynchronous_standby_names = 'FIRST 1 (standby1)'\n";

/// The `application_name` of the synchronous standby of [`TestCluster::start_synchronous_pair`].
pub const SYNCHRONOUS_STANDBY_NAME: &str = "standby1";

/// How long a new standby may take to become synchronous, in seconds: a base backup of an
/// empty cluster streams in well under a second; a loaded machine gets far more.
pub const SYNCHRONOUS_WAIT_SECONDS_MAX: u64 = 60;

/// Where the Debian packages put the server binaries: the newest version installed.
pub fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Why a cluster could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no postgresql server binaries under /usr/lib/postgresql (apt-get install postgresql)"
    )]
    NoBinaries,
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
    #[error("cannot prepare the cluster's folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("a query to the test cluster failed: {0}")]
    Query(#[from] postgres::Error),
}

/// A running PostgreSQL server of its own, on 127.0.0.1.
#[derive(Debug)]
pub struct TestCluster {
    bin: PathBuf,
    /// Holds the data folder and the log file; removed on drop.
    root: tempfile::TempDir,
    pub port: u16,
    running: bool,
}

impl TestCluster {
    /// `initdb` and start a primary on a free port. `extra_settings` are appended to its
    /// `postgresql.conf` (for example `wal_level = replica`).
    pub fn start(extra_settings: &str) -> Result<TestCluster, ClusterError> {
        let bin = binaries().ok_or(ClusterError::NoBinaries)?;
        let root = tempfile::Builder::new().prefix("ledger-pg-").tempdir()?;
        give_to_postgres(root.path())?;
        let data = root.path().join("data");
        run(
            &bin,
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let port = free_port()?;
        let mut cluster = TestCluster {
            bin,
            root,
            port,
            running: false,
        };
        cluster.configure(extra_settings)?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// A standby streaming from `primary` (a base backup, `standby.signal`,
    /// `primary_conninfo` naming `application_name`), started on a free port.
    pub fn start_standby(
        primary: &TestCluster,
        application_name: &str,
    ) -> Result<TestCluster, ClusterError> {
        let bin = primary.bin.clone();
        let root = tempfile::Builder::new()
            .prefix("ledger-pg-standby-")
            .tempdir()?;
        give_to_postgres(root.path())?;
        let data = root.path().join("data");
        run(
            &bin,
            "pg_basebackup",
            &[
                "-D",
                &data.to_string_lossy(),
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--no-sync",
            ],
        )?;
        let port = free_port()?;
        let mut standby = TestCluster {
            bin,
            root,
            port,
            running: false,
        };
        standby.configure(&format!(
            "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={application_name}'\n",
            primary.port
        ))?;
        standby.start_server()?;
        Ok(standby)
    }

    /// A primary whose commits wait for one synchronous standby, and that standby (a base
    /// backup streaming as [`SYNCHRONOUS_STANDBY_NAME`]), returned once the primary reports
    /// it synchronous: the set-up of the tests' failover scenarios and of `bench`'s
    /// PostgreSQL phases. Blocking, up to [`SYNCHRONOUS_WAIT_SECONDS_MAX`].
    pub fn start_synchronous_pair() -> Result<(TestCluster, TestCluster), ClusterError> {
        let primary = TestCluster::start(SYNCHRONOUS_PRIMARY)?;
        let standby = TestCluster::start_standby(&primary, SYNCHRONOUS_STANDBY_NAME)?;
        primary.wait_until_synchronous()?;
        Ok((primary, standby))
    }

    /// Whether [`SYNCHRONOUS_STANDBY_NAME`] streams from this primary as its synchronous
    /// standby now.
    pub fn standby_is_synchronous(&self) -> Result<bool, ClusterError> {
        let rows = self.query(&format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{SYNCHRONOUS_STANDBY_NAME}'"
        ))?;
        Ok(matches!(rows.as_slice(), [row] if row.first() == Some(&Some("sync".to_owned()))))
    }

    /// Polls until [`TestCluster::standby_is_synchronous`]; an error after
    /// [`SYNCHRONOUS_WAIT_SECONDS_MAX`]. Blocking.
    pub fn wait_until_synchronous(&self) -> Result<(), ClusterError> {
        let started = std::time::Instant::now();
        while !self.standby_is_synchronous()? {
            if started.elapsed() > std::time::Duration::from_secs(SYNCHRONOUS_WAIT_SECONDS_MAX) {
                return Err(ClusterError::Command {
                    command: "pg_stat_replication".to_owned(),
                    detail: format!(
                        "{SYNCHRONOUS_STANDBY_NAME} was not a synchronous standby after {SYNCHRONOUS_WAIT_SECONDS_MAX} s"
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn configure(&mut self, extra_settings: &str) -> Result<(), ClusterError> {
        let settings = format!(
            "\n# ledger-store-pg test cluster\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 50\n{extra_settings}\n",
            self.port,
            self.root.path().display()
        );
        let conf = self.data_dir().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text.push_str(&settings);
        std::fs::write(&conf, text)?;
        give_to_postgres(&conf)?;
        Ok(())
    }

    fn start_server(&mut self) -> Result<(), ClusterError> {
        let log = self.root.path().join("server.log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// A libpq connection string for the database `postgres` as the superuser.
    pub fn connection(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop_immediately(&mut self) -> Result<(), ClusterError> {
        if self.running {
            self.running = false;
            run(
                &self.bin,
                "pg_ctl",
                &[
                    "-D",
                    &self.data_dir().to_string_lossy(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            )?;
        }
        Ok(())
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it accepts writes.
    pub fn promote(&self) -> Result<(), ClusterError> {
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().to_string_lossy(),
                "-w",
                "-t",
                "60",
                "promote",
            ],
        )
        .map(|_| ())
    }

    /// Starts a server stopped by [`TestCluster::stop_immediately`] again, on the same port
    /// (crash recovery; a standby resumes streaming).
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        if !self.running {
            self.start_server()?;
        }
        Ok(())
    }

    /// Runs `sql` (one or more statements, no parameters) on a connection of its own and
    /// returns the rows' values as text. Blocking: from a test's async code, call it on a
    /// thread of its own (`spawn_blocking`).
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ClusterError> {
        let mut client = postgres::Client::connect(&self.connection(), postgres::NoTls)?;
        let mut rows = Vec::new();
        for message in client.simple_query(sql)? {
            if let postgres::SimpleQueryMessage::Row(row) = message {
                rows.push(
                    (0..row.len())
                        .map(|index| row.get(index).map(str::to_owned))
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    /// The server's log, for a failing test to print.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// As root, hands `path` to the `postgres` user, which runs the server.
fn give_to_postgres(path: &Path) -> Result<(), ClusterError> {
    if !is_root() {
        return Ok(());
    }
    let output = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .output()?;
    check("chown", output).map(|_| ())
}

fn run(bin: &Path, program: &str, args: &[&str]) -> Result<Output, ClusterError> {
    let program_path = bin.join(program);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program_path)
            .args(args)
            .current_dir("/")
            .output()?
    } else {
        Command::new(&program_path).args(args).output()?
    };
    check(program, output)
}

fn check(program: &str, output: Output) -> Result<Output, ClusterError> {
    if output.status.success() {
        return Ok(output);
    }
    Err(ClusterError::Command {
        command: program.to_owned(),
        detail: format!(
            "{}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}
