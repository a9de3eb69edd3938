//! `detector hook install [--global] [--force]`: a git `pre-commit` hook that runs
//! `detector scan git:. --staged` and blocks a commit that would record a key.
//!
//! The hooks directory is git's own answer (`git rev-parse --git-path hooks`, which honours
//! `core.hooksPath`), or with `--global` the global `core.hooksPath` (set to
//! `~/.config/git/hooks` when there is none). The hook runs the binary that installed it, by
//! its absolute path, so a commit checks with the same detector the user chose; when that
//! file is gone (moved, uninstalled) it falls back to `detector` on PATH.
use std::{
    ffi::OsStr,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context};

use super::EXIT_CLEAN;
use crate::{cli::HookCommand, platform::CreateMode, report::escape::visible};

/// The line that runs the scan; also what a user adds to a hook of their own to chain it.
pub const CHAIN_LINE: &str = "detector scan git:. --staged || exit 1";

pub fn run(command: &HookCommand) -> anyhow::Result<ExitCode> {
    match command {
        HookCommand::Install { global, force } => install(*global, *force),
    }
}

fn install(global: bool, force: bool) -> anyhow::Result<ExitCode> {
    let dir = if global {
        global_hooks_dir()?
    } else {
        repository_hooks_dir()?
    };
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the hooks directory {}", dir.display()))?;
    let hook = dir.join("pre-commit");
    if !force && fs::symlink_metadata(&hook).is_ok() {
        bail!(
            "{} already exists and is left as it is (--force replaces it); to chain detector, add this line to it: {CHAIN_LINE}",
            hook.display()
        );
    }
    let exe = std::env::current_exe().context("cannot tell where this detector binary is")?;
    write_hook(&hook, &script(&exe))?;
    eprintln!(
        "detector: installed {} (a commit holding a key is blocked)",
        visible(&hook.display().to_string())
    );
    Ok(EXIT_CLEAN.into())
}

/// The hooks directory of the repository of the current directory, as git resolves it.
fn repository_hooks_dir() -> anyhow::Result<PathBuf> {
    let out = git(&["rev-parse", "--git-path", "hooks"])
        .context("not in a git work tree (run it inside the repository, or use --global)")?;
    Ok(PathBuf::from(out))
}

/// The global `core.hooksPath`, set to `$XDG_CONFIG_HOME/git/hooks` (else
/// `~/.config/git/hooks`) when unset.
fn global_hooks_dir() -> anyhow::Result<PathBuf> {
    if let Ok(path) = git(&["config", "--global", "--path", "--get", "core.hooksPath"]) {
        if !path.is_empty() {
            return Ok(PathBuf::from(path));
        }
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match crate::platform::home_var().filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("HOME is not set: cannot choose a global hooks directory"),
        },
    };
    let dir = config.join("git").join("hooks");
    let text = dir
        .to_str()
        .context("the global hooks directory is not UTF-8")?;
    git(&["config", "--global", "core.hooksPath", text])
        .context("cannot set the global core.hooksPath")?;
    eprintln!(
        "detector: set git config --global core.hooksPath {}",
        visible(text)
    );
    Ok(dir)
}

/// `git ARGS…`, its trimmed standard output; its first line of error when it fails.
fn git(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args(args)
        .output()
        .context("cannot run git")?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        bail!(
            "git {}: {}",
            args.join(" "),
            err.lines().next().unwrap_or("failed")
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The hook: the binary that installed it, else `detector` on PATH; on a finding, how to fix.
fn script(exe: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Installed by `detector hook install`: blocks a commit that would record an API key.
# To run it from another hook instead, add this line to that hook:
#   {CHAIN_LINE}
detector={exe}
[ -x "$detector" ] || detector=detector
"$detector" scan git:. --staged --format text
status=$?
if [ "$status" -eq 1 ]; then
    cat >&2 <<'EOF'

detector: commit blocked: the staged changes hold the key(s) above.
  Replace each key with a reference (${{API_KEY}}, a secret manager) and keep the value out of git;
  `detector fix --apply` rewrites MCP configs to their client's reference syntax.
  A false positive? Put `detector:allow` in a comment on its line.
  Then `git add` the file and commit again. (`git commit --no-verify` skips this check.)
EOF
    exit 1
elif [ "$status" -ne 0 ]; then
    echo "detector: could not scan the staged changes (above); commit blocked" >&2
    exit 1
fi
"#,
        exe = shell_quoted(exe.as_os_str())
    )
}

/// `'…'` for sh, a `'` inside written `'\''`.
fn shell_quoted(text: &OsStr) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}

fn write_hook(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .unix_mode(0o755)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        crate::platform::set_file_mode(&file, 0o755)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_sh() {
        assert_eq!(shell_quoted(OsStr::new("/a b/it's")), r"'/a b/it'\''s'");
        assert!(script(Path::new("/usr/bin/detector")).contains("detector='/usr/bin/detector'"));
    }
}
