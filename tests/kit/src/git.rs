//! Git repositories built for tests and benchmarks: with the `git` CLI, commit by commit at
//! fixed dates and with a fixed identity ([`Repo`]), or as a `git fast-import` stream when
//! there are thousands of commits ([`FastImport`]).
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::Command,
};

/// `git ARGS…` in `dir` with `home` as HOME, a fixed identity and `date` (`YYYY-MM-DD`, noon
/// UTC) as author and committer time; its trimmed standard output. A failure fails the test.
pub fn git_at(dir: &Path, home: &Path, date: &str, args: &[&str]) -> String {
    let stamp = format!("{date}T12:00:00Z");
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", &stamp)
        .env("GIT_COMMITTER_DATE", &stamp)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A work tree with its repository, and the home its commands run with.
pub struct Repo {
    /// The work tree.
    pub dir: PathBuf,
    pub home: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Repo {
    /// A new repository (`main`) in a temporary directory of its own: `TMP/app`, with
    /// `TMP/home` as its home.
    pub fn temporary() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        fs::create_dir_all(&home).unwrap();
        let mut repo = Repo::init(&tmp.path().join("app"), &home, "2024-01-01");
        repo._tmp = Some(tmp);
        repo
    }

    /// A new repository (`main`) in `dir`, initialised on `date`, run with `home`.
    pub fn init(dir: &Path, home: &Path, date: &str) -> Repo {
        fs::create_dir_all(dir).unwrap();
        let repo = Repo::at(dir, home);
        repo.git_at(date, &["init", "--quiet", "-b", "main"]);
        repo
    }

    /// A repository that is already there: the work tree `dir`, run with `home`.
    pub fn at(dir: &Path, home: &Path) -> Repo {
        Repo {
            dir: dir.to_path_buf(),
            home: home.to_path_buf(),
            _tmp: None,
        }
    }

    /// `git ARGS…` in the work tree at `date` (see [`git_at`]).
    pub fn git_at(&self, date: &str, args: &[&str]) -> String {
        git_at(&self.dir, &self.home, date, args)
    }

    /// `git ARGS…` in the work tree, when the date does not matter.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_at("2024-01-01", args)
    }

    /// `git ARGS…` in another directory (to clone, say), with this repository's home.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        git_at(dir, &self.home, "2024-01-01", args)
    }

    /// Write a file of the work tree.
    pub fn write(&self, rel: &str, text: &str) {
        crate::write(&self.dir.join(rel), text);
    }

    /// Write the files, commit everything on `date`; the commit id.
    pub fn commit(&self, date: &str, files: &[(&str, &str)], message: &str) -> String {
        for (rel, text) in files {
            self.write(rel, text);
        }
        self.git_at(date, &["add", "-A"]);
        self.git_at(date, &["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A `git fast-import` stream: commits written one after the other, each numbered by a mark,
/// so that a history of tens of thousands of commits is made in one process.
pub struct FastImport<W: Write> {
    out: W,
    commits: usize,
}

impl<W: Write> FastImport<W> {
    pub fn new(out: W) -> FastImport<W> {
        FastImport { out, commits: 0 }
    }

    /// How many commits were written.
    pub fn commits(&self) -> usize {
        self.commits
    }

    /// A commit on `branch` at `time` (Unix seconds) changing `files` (path, bytes; empty
    /// bytes delete the path). A branch other than `main` forks from the commit written just
    /// before; `main` continues its own line.
    pub fn commit(
        &mut self,
        branch: &str,
        time: i64,
        files: &[(String, Vec<u8>)],
    ) -> io::Result<()> {
        let out = &mut self.out;
        writeln!(out, "commit refs/heads/{branch}")?;
        writeln!(out, "mark :{}", self.commits + 1)?;
        writeln!(out, "author Bench <bench@example.com> {time} +0000")?;
        writeln!(out, "committer Bench <bench@example.com> {time} +0000")?;
        let message = format!("change {}", self.commits);
        writeln!(out, "data {}\n{message}", message.len())?;
        if branch != "main" && self.commits > 0 {
            writeln!(out, "from :{}", self.commits)?;
        }
        for (path, bytes) in files {
            if bytes.is_empty() {
                writeln!(out, "D {path}")?;
            } else {
                writeln!(out, "M 100644 inline {path}")?;
                writeln!(out, "data {}", bytes.len())?;
                out.write_all(bytes)?;
                writeln!(out)?;
            }
        }
        self.commits += 1;
        Ok(())
    }

    /// End the stream; the writer.
    pub fn finish(mut self) -> io::Result<W> {
        writeln!(self.out, "done")?;
        self.out.flush()?;
        Ok(self.out)
    }
}
