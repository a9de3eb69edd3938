//! Git repositories built for tests and benchmarks: with the `git` CLI, commit by commit at
//! fixed dates and with a fixed identity ([`Repo`]), as a `git fast-import` stream when
//! there are thousands of commits ([`FastImport`]), or object by object for shapes `git` will
//! not make ([`Pack`], [`write_loose_object`]).
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use flate2::{write::ZlibEncoder, Compression};

/// `git ARGS…` in `dir` with `home` as HOME, a fixed identity and `date` (`YYYY-MM-DD`, noon
/// UTC) as author and committer time; its trimmed standard output. A failure fails the test.
pub fn git_at(dir: &Path, home: &Path, date: &str, args: &[&str]) -> String {
    git_fed(dir, home, date, args, None)
}

/// [`git_at`] with `input` on standard input (`git mktree`, `git hash-object --stdin`, …).
pub fn git_fed(dir: &Path, home: &Path, date: &str, args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = git_command(dir, home, date)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run git");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).expect("feed git");
    }
    let output = child.wait_with_output().expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `git` in `dir` with `home` as HOME, the fixed identity and `date` (see [`git_at`]), not yet
/// started: for a run that may fail (a commit a hook blocks), or a program that runs git
/// itself (pre-commit).
pub fn git_command(dir: &Path, home: &Path, date: &str) -> Command {
    let stamp = format!("{date}T12:00:00Z");
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", &stamp)
        .env("GIT_COMMITTER_DATE", &stamp);
    cmd
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

    /// `git ARGS…` in the work tree with `input` on its standard input.
    pub fn git_fed(&self, args: &[&str], input: &[u8]) -> String {
        git_fed(&self.dir, &self.home, "2024-01-01", args, Some(input))
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

/// The id git gives an object of `kind` (`blob`, `tree`, `commit`, `tag`) holding `data`, in hex.
pub fn object_id(kind: &str, data: &[u8]) -> String {
    let mut hashed = format!("{kind} {}\0", data.len()).into_bytes();
    hashed.extend_from_slice(data);
    hex::encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &hashed,
    ))
}

/// One entry of a tree object: `mode` (`100644`, `40000`, …), `name` and the hex id it names.
/// A tree is its entries concatenated, in git's order (by name, a directory's as if it ended
/// in `/`).
pub fn tree_entry(mode: &str, name: &str, id: &str) -> Vec<u8> {
    let mut entry = format!("{mode} {name}\0").into_bytes();
    entry.extend(hex::decode(id).expect("a hex object id"));
    entry
}

/// Store `data` as a loose object of `kind` under `id`, whatever it hashes to: a forged
/// object, as a hostile repository may hold (readers trust a loose object's file name).
pub fn write_loose_object(git_dir: &Path, id: &str, kind: &str, data: &[u8]) {
    let mut raw = format!("{kind} {}\0", data.len()).into_bytes();
    raw.extend_from_slice(data);
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
    zlib.write_all(&raw).unwrap();
    let path = git_dir.join("objects").join(&id[..2]).join(&id[2..]);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, zlib.finish().unwrap()).unwrap();
}

/// A pack written in one go, without deltas, then indexed by `git index-pack`: tens of
/// thousands of objects made by hand in well under a second, where one `git` process per
/// object would take minutes.
#[derive(Default)]
pub struct Pack {
    /// Object type numbers of the pack format, and contents.
    objects: Vec<(u8, Vec<u8>)>,
}

impl Pack {
    /// Add an object of `kind` (`commit`, `tree`, `blob`, `tag`); its hex id.
    pub fn add(&mut self, kind: &str, data: Vec<u8>) -> String {
        let number = match kind {
            "commit" => 1,
            "tree" => 2,
            "blob" => 3,
            "tag" => 4,
            other => panic!("no object kind {other}"),
        };
        let id = object_id(kind, &data);
        self.objects.push((number, data));
        id
    }

    /// Write the pack into the repository whose git directory is `git_dir` and index it.
    pub fn write(self, git_dir: &Path) {
        let mut pack = b"PACK".to_vec();
        pack.extend(2u32.to_be_bytes());
        pack.extend((self.objects.len() as u32).to_be_bytes());
        for (number, data) in &self.objects {
            // Type and size: 4 bits of size beside the type, then 7 bits a byte.
            let mut byte = (number << 4) | (data.len() & 0x0f) as u8;
            let mut rest = data.len() >> 4;
            while rest > 0 {
                pack.push(byte | 0x80);
                byte = (rest & 0x7f) as u8;
                rest >>= 7;
            }
            pack.push(byte);
            let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
            zlib.write_all(data).unwrap();
            pack.extend(zlib.finish().unwrap());
        }
        let checksum = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &pack);
        pack.extend_from_slice(checksum.as_ref());
        let dir = git_dir.join("objects/pack");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("pack-{}.pack", hex::encode(checksum)));
        fs::write(&path, pack).unwrap();
        crate::run::run_ok(Command::new("git").arg("index-pack").arg(&path));
    }
}
