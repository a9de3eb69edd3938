//! Where `detector fix` moves the keys it takes out of MCP configs (`--to`): a private env file
//! (the default), the `pass` password store, or the Secret Service through `secret-tool`.
//!
//! Each destination can say whether it is usable ([`Destination::check`]), what it holds under
//! a name ([`Destination::lookup`]), store entries durably ([`Destination::put`]), and give the
//! POSIX sh text that loads them back into the environment of a wrapper script
//! ([`Destination::shell_load`]). Secrets travel to the tools on standard input only, never in
//! arguments (which any user can read in `/proc`), and never appear in an error message.
mod env_file;
mod pass;
mod secret_tool;
#[cfg(test)]
mod tests;

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    str::FromStr,
};

use zeroize::Zeroizing;

/// The first line of a managed env file; the scanner reports keys in such a file as held in a
/// store, not exposed.
pub const ENV_FILE_HEADER: &str = crate::source::managed_store::HEADER;

/// The folder of the password store, and the `service` attribute in the Secret Service, under
/// which every key moved by `detector fix` is kept.
pub const STORE_PREFIX: &str = "detector";

/// A store that keys can be moved into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A sh-sourceable env file of `NAME='value'` lines, mode 0600, outside any git work tree.
    /// An empty path is the default file of a home not yet known (what `env-file` parses to):
    /// [`Destination::in_home`] makes it that home's, and until then the store is unusable.
    EnvFile(PathBuf),
    /// `pass`: each key at `detector/NAME`, encrypted to the store's GPG key.
    Pass,
    /// The Secret Service (GNOME Keyring, KeePassXC…), attributes `service detector name NAME`.
    SecretTool,
}

/// One key to store under `name`.
pub struct Entry {
    pub name: String,
    pub secret: Zeroizing<String>,
    /// Where the key came from, written beside it (`server github in /p/.cursor/mcp.json`);
    /// never a secret.
    pub note: String,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("secret", &"<hidden>")
            .field("note", &self.note)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("unknown destination `{0}` (use env-file, env-file:PATH, pass or secret-tool)")]
    UnknownDestination(String),
    #[error("`env-file:` needs a path (e.g. `env-file:/home/me/.config/detector/keys.env`), or use `env-file` for the default")]
    MissingPath,
    #[error("no home directory for the default env file: HOME is not set (use env-file:PATH)")]
    NoHome,
    #[error("the default env file has no home yet (the program must resolve `env-file` against the home it fixes)")]
    UnresolvedDefault,
    #[error("cannot use {} as an env file: {reason}", path.display())]
    BadPath { path: PathBuf, reason: String },
    #[error("`{0}` is not a variable name: use upper-case letters, digits and `_`, not starting with a digit")]
    InvalidName(String),
    #[error("the value for {0} holds a NUL byte or a line break, which no store here keeps intact; not stored")]
    InvalidValue(String),
    #[error("{} lies inside the git work tree {}: a key there could be committed; choose --to env-file:PATH outside it", path.display(), work_tree.display())]
    InGitWorkTree { path: PathBuf, work_tree: PathBuf },
    #[error("{} exists and is not a detector managed store (its first line is not the store header); refusing to overwrite it: choose another --to env-file:PATH", path.display())]
    ForeignFile { path: PathBuf },
    #[error("{} is not a regular file (a symlink, directory or device); refusing to use it as an env file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}:{line}: not a line of a detector managed store (a comment or NAME='value'); fix or move the file", path.display())]
    Malformed { path: PathBuf, line: usize },
    #[error(transparent)]
    Write(#[from] crate::fix::write::WriteError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("`{tool}` is not installed (Debian package `{package}`)")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("the password store is not initialised: run `pass init GPG-ID` first ({detail})")]
    PassNotInitialised { detail: String },
    #[error("no Secret Service answers on the session D-Bus (is a keyring daemon running and unlocked?): {detail}")]
    NoSecretService { detail: String },
    #[error("`{command}` failed ({status}): {detail}")]
    ToolFailed {
        command: String,
        status: String,
        detail: String,
    },
}

impl FromStr for Destination {
    type Err = DestinationError;

    /// `env-file`, `env-file:PATH`, `pass`, `secret-tool`. `env-file` is the default file of
    /// a home not named here (an empty path): root fixing another user's home puts the store
    /// in that home, so the caller resolves it with [`Destination::in_home`].
    fn from_str(text: &str) -> Result<Destination, DestinationError> {
        match text {
            "env-file" => Ok(Destination::EnvFile(PathBuf::new())),
            _ => Destination::parse(text, None),
        }
    }
}

impl Destination {
    /// [`FromStr`] with the home directory given (`None`: unknown, and `env-file` is then an
    /// error). A relative `env-file:PATH` is made absolute against the current directory,
    /// since the wrapper script that loads it runs elsewhere.
    pub fn parse(text: &str, home: Option<&Path>) -> Result<Destination, DestinationError> {
        match text {
            "env-file" => home
                .filter(|h| !h.as_os_str().is_empty())
                .map(|h| Destination::EnvFile(Destination::default_env_file(h)))
                .ok_or(DestinationError::NoHome),
            "pass" => Ok(Destination::Pass),
            "secret-tool" => Ok(Destination::SecretTool),
            _ => match text.strip_prefix("env-file:") {
                Some("") => Err(DestinationError::MissingPath),
                Some(path) => std::path::absolute(path)
                    .map(Destination::EnvFile)
                    .map_err(|e| DestinationError::BadPath {
                        path: PathBuf::from(path),
                        reason: e.to_string(),
                    }),
                None => Err(DestinationError::UnknownDestination(text.to_string())),
            },
        }
    }

    /// The default env file of the user whose home is `home`: `HOME/.config/detector/keys.env`.
    ///
    /// Derived from the home alone, not from `$XDG_CONFIG_HOME`: the file must be found again
    /// by whoever looks at that home later — `detector audit` run by root over every home, the
    /// agent watching it, a wrapper script started without the user's session variables — and
    /// none of them sees the user's own environment. `.config` is where XDG puts it by default.
    pub fn default_env_file(home: &Path) -> PathBuf {
        home.join(".config").join("detector").join("keys.env")
    }

    /// The destination with the default env file (an empty path) made `home`'s; any other
    /// destination as it is.
    pub fn in_home(self, home: &Path) -> Destination {
        match self {
            Destination::EnvFile(path) if path.as_os_str().is_empty() => {
                Destination::EnvFile(Destination::default_env_file(home))
            }
            other => other,
        }
    }

    /// Is the destination usable? An env file must lie outside every git work tree and be
    /// either missing or already a managed store; `pass` must be installed with its store
    /// initialised; `secret-tool` must be installed with a Secret Service answering.
    pub fn check(&self) -> Result<(), DestinationError> {
        match self {
            Destination::EnvFile(path) => env_file::check(usable(path)?),
            Destination::Pass => pass::check(),
            Destination::SecretTool => secret_tool::check(),
        }
    }

    /// The value held under `name` now, if any.
    pub fn lookup(&self, name: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
        check_name(name)?;
        match self {
            Destination::EnvFile(path) => env_file::lookup(usable(path)?, name),
            Destination::Pass => pass::lookup(name),
            Destination::SecretTool => secret_tool::lookup(name),
        }
    }

    /// Store every entry (replacing what a name held), durably before returning. Names and
    /// values are checked first, so bad input stores nothing.
    pub fn put(&self, entries: &[Entry]) -> Result<(), DestinationError> {
        for entry in entries {
            check_name(&entry.name)?;
            check_value(entry)?;
        }
        match self {
            Destination::EnvFile(path) => env_file::put(usable(path)?, entries),
            Destination::Pass => pass::put(entries),
            Destination::SecretTool => secret_tool::put(entries),
        }
    }

    /// POSIX sh text that exports each of `names` from this store, for a wrapper script. An
    /// env file is sourced whole (with `set -a`, so each of its names is exported). Names that
    /// are not variable names are left out: no text from them reaches the script.
    pub fn shell_load(&self, names: &[&str]) -> String {
        let names = names.iter().copied().filter(|n| is_variable_name(n));
        match self {
            // Read whole, exported by name: a server gets its own keys, not every key of
            // the file.
            Destination::EnvFile(path) => {
                let names: Vec<&str> = names.collect();
                let mut text = format!(". {}\n", sh_quote(&path.to_string_lossy()));
                if !names.is_empty() {
                    text.push_str(&format!("export {}\n", names.join(" ")));
                }
                text
            }
            // A key that cannot be loaded is said on standard error, without ending the
            // shell: the same text serves a wrapper script and a shell profile.
            Destination::Pass => names
                .map(|n| {
                    format!(
                        "{n}=$(pass show {STORE_PREFIX}/{n}) && export {n} || echo \"detector: cannot load {n} from pass\" >&2\n"
                    )
                })
                .collect(),
            Destination::SecretTool => names
                .map(|n| {
                    format!(
                        "{n}=$(secret-tool lookup service {STORE_PREFIX} name {n}) && export {n} || echo \"detector: cannot load {n} from the Secret Service\" >&2\n"
                    )
                })
                .collect(),
        }
    }

    /// What the destination is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Destination::EnvFile(path) => format!("env file {}", path.display()),
            Destination::Pass => format!("password store (pass), entries {STORE_PREFIX}/NAME"),
            Destination::SecretTool => {
                format!("Secret Service (secret-tool), attributes service={STORE_PREFIX} name=NAME")
            }
        }
    }
}

/// An env file's path, unless it is the default not yet resolved against a home.
fn usable(path: &Path) -> Result<&Path, DestinationError> {
    if path.as_os_str().is_empty() {
        Err(DestinationError::UnresolvedDefault)
    } else {
        Ok(path)
    }
}

/// `[A-Z_][A-Z0-9_]*`: a name every shell takes as a variable, and safe as a file name in the
/// password store (no `/`, no `..`).
pub fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn check_name(name: &str) -> Result<(), DestinationError> {
    if is_variable_name(name) {
        Ok(())
    } else {
        Err(DestinationError::InvalidName(name.to_string()))
    }
}

/// A key is one line of text: `pass show` and `$(…)` would change a value with line breaks,
/// and no environment variable can hold a NUL.
fn check_value(entry: &Entry) -> Result<(), DestinationError> {
    if entry.secret.contains(['\0', '\n', '\r']) {
        Err(DestinationError::InvalidValue(entry.name.clone()))
    } else {
        Ok(())
    }
}

/// `text` as one single-quoted sh word: `'` becomes `'\''`.
pub(crate) fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A tool's invocation, to run and to name in errors. Arguments never hold a secret.
struct Tool {
    program: &'static str,
    package: &'static str,
    args: Vec<String>,
}

impl Tool {
    fn new(program: &'static str, package: &'static str, args: &[&str]) -> Tool {
        Tool {
            program,
            package,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn command_line(&self) -> String {
        std::iter::once(self.program.to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run it with `input` on standard input (nothing when `None`), inheriting the
    /// environment. Standard output is returned whatever the exit status; it may hold a secret,
    /// so callers keep it in [`Zeroizing`].
    fn run(&self, input: Option<&str>) -> Result<Output, DestinationError> {
        let mut child = Command::new(self.program)
            .args(&self.args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => DestinationError::ToolMissing {
                    tool: self.program,
                    package: self.package,
                },
                _ => DestinationError::ToolFailed {
                    command: self.command_line(),
                    status: "not started".to_string(),
                    detail: e.to_string(),
                },
            })?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A tool that exits early closes its end: its exit status then says why.
            let _ = stdin.write_all(input.as_bytes());
        }
        child
            .wait_with_output()
            .map_err(|e| DestinationError::ToolFailed {
                command: self.command_line(),
                status: "not waited for".to_string(),
                detail: e.to_string(),
            })
    }

    /// The error for a run that failed: its status and the first line of what it said.
    fn failed(&self, output: &Output) -> DestinationError {
        DestinationError::ToolFailed {
            command: self.command_line(),
            status: output.status.to_string(),
            detail: first_line(&output.stderr),
        }
    }
}

/// The first line of a tool's diagnostics, shortened: enough to say what went wrong.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => "no message".to_string(),
        Some(line) if line.chars().count() > 200 => {
            format!("{}…", line.chars().take(200).collect::<String>())
        }
        Some(line) => line.to_string(),
    }
}

/// A tool's standard output as the secret it is, without a copy left behind.
fn secret_output(output: Output, tool: &Tool) -> Result<Zeroizing<String>, DestinationError> {
    match String::from_utf8(output.stdout) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(DestinationError::ToolFailed {
                command: tool.command_line(),
                status: output.status.to_string(),
                detail: "its output is not UTF-8 text".to_string(),
            })
        }
    }
}
