//! The configuration as an operator meets it, through the real `voucher-ledger` binary: it runs
//! from any folder (the defaults and the policy table are built in), `config print` says where
//! every value came from, mistakes stop it with a message naming the key, the variable or the
//! folder, and the log filter follows `RUST_LOG` under `VOUCHER_LEDGER_LOG`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ledger_testkit::Process;

/// The binary, with no setting or log filter inherited from the environment of the test run,
/// and not even the repository's policy table: these tests run it as an operator would, from a
/// folder of their own.
fn voucher_ledger(folder: &Path) -> Command {
    let mut command = ledger_testkit::command::<&str>(env!("CARGO_BIN_EXE_voucher-ledger"), &[]);
    command
        .env_remove("VOUCHER_LEDGER__POLICY_FILE")
        .current_dir(folder)
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("voucher-ledger runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A server started with `command`, its stderr kept in a file.
#[derive(Debug)]
struct Server {
    process: Process,
    address: String,
}

impl Server {
    /// Starts it and waits for its `listening on` line; `Err` with the log when it exits first.
    fn start(command: &mut Command, log: &Path) -> Result<Server, String> {
        let process = Process::spawn(command, log).map_err(|failure| failure.stderr)?;
        Ok(Server {
            address: process.address().to_owned(),
            process,
        })
    }

    /// SIGTERM, then its exit status and log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.process.send_sigterm();
        let status = self
            .process
            .wait_for_exit_blocking(ledger_testkit::STOP_WAIT)
            .unwrap_or_else(|| {
                panic!(
                    "voucher-ledger did not exit after SIGTERM; its log:\n{}",
                    self.process.log()
                )
            });
        (status, self.process.log())
    }
}

#[test]
fn serve_demo_runs_from_a_folder_without_config_files_and_takes_localhost() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    assert!(!folder.path().join("config").exists());
    let server = Server::start(
        voucher_ledger(folder.path()).args(["serve", "--demo", "--listen", "localhost:0"]),
        &folder.path().join("server.log"),
    )
    .expect("the demo starts from an empty folder");
    assert!(
        server.address.starts_with("127.0.0.1:"),
        "{}",
        server.address
    );
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
    assert!(
        folder.path().join("data").is_dir(),
        "the default data folder is relative to the working folder"
    );
}

#[test]
fn a_listen_name_other_than_localhost_is_refused() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let output = run(voucher_ledger(folder.path()).args([
        "serve",
        "--demo",
        "--listen",
        "ledger.example:50051",
    ]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("\"ledger.example:50051\" is not an ip address and port, nor localhost:PORT"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_print_shows_every_value_with_its_origin_and_masks_the_key() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("ledger.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:6000\"\n").expect("the file is written");
    let key = "ab".repeat(32);
    let output = run(voucher_ledger(folder.path())
        .args(["config", "print", "--config"])
        .arg(&file)
        .args(["--data", "/srv/ledger"])
        .env("VOUCHER_LEDGER__LOG_FORMAT", "json")
        .env("VOUCHER_LEDGER__PSEUDONYM_KEY_HEX", &key)
        .env("RUST_LOG", "warn"));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}{}", stderr(&output));
    let line = |name: &str| {
        printed
            .lines()
            .find(|line| line.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no {name} line in:\n{printed}"))
            .to_owned()
    };
    assert!(line("listen").ends_with(&format!("# file {}", file.display())));
    assert!(line("log_format").contains("\"json\""));
    assert!(line("log_format").ends_with("# env VOUCHER_LEDGER__LOG_FORMAT"));
    assert!(line("data_dir").ends_with("# flag --data"));
    assert!(line("policy_file").ends_with("# default"));
    assert!(line("pseudonym_key_hex").contains("<masked, 64 characters>"));
    assert!(!printed.contains(&key), "the key is masked:\n{printed}");
    assert!(
        printed.contains("# log filter of serve: \"warn\" (from RUST_LOG;"),
        "{printed}"
    );
    let demo = run(voucher_ledger(folder.path()).args(["config", "print", "--demo"]));
    let printed = String::from_utf8_lossy(&demo.stdout);
    assert!(demo.status.success(), "{}", stderr(&demo));
    assert!(printed.contains("demo = true"), "{printed}");
    assert!(printed
        .lines()
        .any(|line| line.starts_with("demo = true") && line.ends_with("# demo")));
}

#[test]
fn config_print_still_prints_a_configuration_that_would_not_start_and_says_why() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let output = run(voucher_ledger(folder.path()).args(["config", "print"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("listen = \"127.0.0.1:50051\""));
    assert!(
        stderr(&output).contains("this configuration would not start: no pseudonym key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_key_in_a_file_or_the_environment_stops_the_server_naming_it() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("ledger.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:6000\"\n").expect("the file is written");
    let output = run(voucher_ledger(folder.path())
        .args(["serve", "--demo", "--config"])
        .arg(&file));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(&format!(
            "unknown setting `lisen` in configuration file {} (did you mean `listen`?)",
            file.display()
        )),
        "{}",
        stderr(&output)
    );
    let output = run(voucher_ledger(folder.path())
        .args(["serve", "--demo"])
        .env("VOUCHER_LEDGER__DATA_DIRECTORY", "/srv/ledger"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "unknown setting `data_directory` in environment variable VOUCHER_LEDGER__DATA_DIRECTORY"
        ),
        "{}",
        stderr(&output)
    );
    let output = run(voucher_ledger(folder.path())
        .args(["serve", "--demo"])
        .env("VOUCHER_LEDGER__LOG_FORMAT", "xml"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("log_format = \"xml\" is not valid: expected one of human, json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_data_folder_held_by_a_running_server_is_named_as_locked() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let data = folder.path().join("data");
    let serve = |log: &str| {
        let mut command = voucher_ledger(folder.path());
        command
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data);
        Server::start(&mut command, &folder.path().join(log))
    };
    let first = serve("first.log").expect("the first server starts");
    let refused = serve("second.log").expect_err("the folder is locked");
    assert!(
        refused.contains(&format!(
            "data folder {} is locked by another process: is a server running on it?",
            data.display()
        )),
        "{refused}"
    );
    let rebuild = run(voucher_ledger(folder.path())
        .args(["rebuild", "--data"])
        .arg(&data));
    assert_eq!(rebuild.status.code(), Some(1));
    assert!(
        stderr(&rebuild).contains(&format!(
            "data folder {} is locked by another process: is a server running on it?",
            data.display()
        )),
        "{}",
        stderr(&rebuild)
    );
    let (status, _) = first.stop();
    assert!(status.success());
    let again = serve("third.log").expect("once the first stopped, the folder is free");
    let (status, _) = again.stop();
    assert!(status.success());
}

/// Runs `command` as the unprivileged user `nobody` when this test runs as root (who may write
/// anywhere, so that a permission error could not happen); `None` where that is not possible.
fn as_unprivileged(command: &Command, folder: &Path) -> Option<Command> {
    let uid = run(Command::new("id").arg("-u"));
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        let mut same = Command::new(command.get_program());
        same.args(command.get_args()).current_dir(folder);
        return Some(same);
    }
    let setpriv = Path::new("/usr/bin/setpriv");
    if !setpriv.exists() {
        return None;
    }
    let mut wrapped = Command::new(setpriv);
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(command.get_program())
        .args(command.get_args())
        .current_dir(folder)
        .stdin(Stdio::null());
    Some(wrapped)
}

#[test]
fn a_data_folder_the_server_may_not_write_is_named() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    // Everyone may enter the folder, nobody but its owner may write in the data folder.
    let data = folder.path().join("data");
    std::fs::create_dir(&data).expect("the data folder");
    for (path, mode) in [(folder.path(), "755"), (data.as_path(), "555")] {
        let chmod = run(Command::new("chmod").arg(mode).arg(path));
        assert!(chmod.status.success());
    }
    let mut serve = Command::new(env!("CARGO_BIN_EXE_voucher-ledger"));
    serve
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data);
    let Some(mut command) = as_unprivileged(&serve, folder.path()) else {
        eprintln!(
            "skipped: running as root without /usr/bin/setpriv, no permission error can be made"
        );
        return;
    };
    let output = run(command.env_remove("RUST_LOG"));
    if stderr(&output).contains("setpriv:") {
        eprintln!(
            "skipped: setpriv cannot change user here: {}",
            stderr(&output)
        );
        return;
    }
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "data folder {} cannot be opened: permission denied",
            data.display()
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_data_folder_that_cannot_be_created_is_named() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("a file");
    let data = file.join("data");
    let output = run(voucher_ledger(folder.path())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("data folder {} cannot be created", data.display())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_log_filter_is_rust_log_under_voucher_ledger_log() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    // The serving line is logged at info: it shows with the default filter and with info, not
    // with warn.
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[], true),
        (&[("RUST_LOG", "warn")], false),
        (&[("RUST_LOG", "warn,ledger_server=info")], true),
        (
            &[("RUST_LOG", "warn"), ("VOUCHER_LEDGER_LOG", "info")],
            true,
        ),
        (
            &[("RUST_LOG", "info"), ("VOUCHER_LEDGER_LOG", "warn")],
            false,
        ),
    ];
    for (index, (variables, serving_logged)) in cases.iter().enumerate() {
        let data = folder.path().join(format!("data-{index}"));
        let mut command = voucher_ledger(folder.path());
        command
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .envs(variables.iter().copied());
        let server = Server::start(&mut command, &folder.path().join(format!("{index}.log")))
            .expect("the server starts");
        let (status, log) = server.stop();
        assert!(status.success());
        assert_eq!(
            log.contains("voucher-ledger serving"),
            *serving_logged,
            "{variables:?}:\n{log}"
        );
    }
    let output = run(voucher_ledger(folder.path())
        .args(["serve", "--demo"])
        .env("RUST_LOG", "ledger_engine=loud"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("RUST_LOG=\"ledger_engine=loud\" is not a valid log filter"),
        "{}",
        stderr(&output)
    );
}
