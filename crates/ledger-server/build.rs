//! Records the git commit the binary is built from, for `voucher_ledger_build_info` (metrics):
//! `VOUCHER_LEDGER_GIT_COMMIT`, or `unknown` when there is no git or no checkout (a source
//! tarball). Set `VOUCHER_LEDGER_GIT_COMMIT` in the environment to name it yourself (a
//! packager building outside the repository).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VOUCHER_LEDGER_GIT_COMMIT");
    let commit = std::env::var("VOUCHER_LEDGER_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VOUCHER_LEDGER_GIT_COMMIT={commit}");
}

/// The abbreviated commit of HEAD, asking git to rebuild when HEAD or the branch moves.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // In a worktree, `.git` is a file: ask git where HEAD and the branch's ref live.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"])
            .and_then(|reference| git(&["rev-parse", "--git-path", &reference])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        let path = std::path::Path::new(&path);
        let path = if path.is_relative() {
            std::env::current_dir().ok()?.join(path)
        } else {
            path.to_owned()
        };
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    (!commit.is_empty() && commit.chars().all(|c| c.is_ascii_hexdigit())).then_some(commit)
}
