//! Where bytes come from: fs (dirs, dotfiles, archives), git (history), image (docker/OCI),
//! container (the Docker daemon's containers; Compose files and Kubernetes manifests, read
//! as files), mcp (client configs). A source never knows about rules: it hands [`Blob`]s (bytes + provenance)
//! to a [`Sink`], and says which objects it skipped and which it could not read.
pub mod archive;
pub mod backup;
pub mod container;
pub mod docker;
pub mod exclude;
pub mod fs;
pub mod git;
pub mod image;
pub mod managed_store;
pub mod mcp;
mod provenance;
pub mod secret_file;
pub mod seen;
#[cfg(test)]
pub(crate) mod test_sink;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

pub use provenance::{
    ConfigValue, Container, ContainerValue, DiskFile, GitBlob, GitCommit, HistoryRef, LayerFile,
    LocationKind, Member, Origin, Provenance,
};

use crate::mcp::ParsedConfig;

/// One scan target of the command line (`dir:PATH`, `file:PATH`, `mcp:[HOME]`, an image,
/// bare path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Dir(PathBuf),
    File(PathBuf),
    Git(PathBuf),
    /// `git:PATH --staged`: what `git commit` would record (the index against HEAD).
    GitStaged(PathBuf),
    /// `git:PATH@A..B` or `git:PATH --since-commit A`: only what the commits of the range
    /// brought in.
    GitRange(PathBuf, git::Range),
    /// `None`: every home on the host when root, else `$HOME`.
    Mcp(Option<PathBuf>),
    /// `docker:NAME[:TAG]`: an image of the local Docker daemon.
    Docker(String),
    /// `docker-archive:PATH`: a `docker save` tarball (maybe gzip- or zstd-compressed).
    DockerArchive(PathBuf),
    /// `oci-dir:PATH`: an OCI image layout directory.
    OciDir(PathBuf),
    /// `oci-archive:PATH`: an OCI image layout in a tar.
    OciArchive(PathBuf),
    /// `container:NAME|ID`: a container of the local Docker daemon, running or stopped.
    Container(String),
    /// `containers:[running|stopped]`: the local Docker daemon's containers (all by default).
    Containers(container::daemon::Which),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("unknown target scheme `{scheme}:` in `{raw}` (use dir:PATH, file:PATH, git:PATH, mcp:[HOME], docker:NAME, docker-archive:PATH, oci-dir:PATH, oci-archive:PATH, container:NAME, containers: or a bare path)")]
    UnknownScheme { scheme: String, raw: String },
    #[error("`{scheme}:` needs a path (e.g. `{scheme}:/srv/app`)")]
    MissingPath { scheme: String },
    #[error("`docker:` needs an image name (e.g. `docker:app:prod`)")]
    MissingImage,
    #[error("`container:` needs a container name or id (e.g. `container:api`; `containers:` reads them all)")]
    MissingContainer,
    #[error("`containers:{0}`: say `containers:`, `containers:running` or `containers:stopped`")]
    UnknownContainerSet(String),
    #[error("`{raw}`: a range needs a start revision (e.g. `git:.@origin/main..HEAD`)")]
    MissingRangeStart { raw: String },
}

impl Target {
    /// Parse a command-line target. A bare path that is a directory is `dir:`, anything else
    /// `file:` (a missing path fails later, when it is read, with the path in the message).
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        if let Some((scheme, rest)) = split_scheme(raw) {
            let path = || {
                if rest.is_empty() {
                    Err(TargetError::MissingPath {
                        scheme: scheme.to_string(),
                    })
                } else {
                    Ok(PathBuf::from(rest))
                }
            };
            return match scheme {
                "dir" => Ok(Target::Dir(path()?)),
                "file" => Ok(Target::File(path()?)),
                "git" => git_target(raw, rest).unwrap_or_else(|| Ok(Target::Git(path()?))),
                "mcp" => Ok(Target::Mcp((!rest.is_empty()).then(|| PathBuf::from(rest)))),
                "docker" if rest.is_empty() => Err(TargetError::MissingImage),
                "docker" => Ok(Target::Docker(rest.to_string())),
                "docker-archive" => Ok(Target::DockerArchive(path()?)),
                "oci-dir" => Ok(Target::OciDir(path()?)),
                "oci-archive" => Ok(Target::OciArchive(path()?)),
                "container" if rest.is_empty() => Err(TargetError::MissingContainer),
                "container" => Ok(Target::Container(rest.to_string())),
                "containers" => container::daemon::Which::parse(rest)
                    .map(Target::Containers)
                    .ok_or_else(|| TargetError::UnknownContainerSet(rest.to_string())),
                // `notes:v2.txt` may well be a file name: only an existing path is taken as one.
                _ if Path::new(raw).exists() => Ok(bare(raw)),
                s => Err(TargetError::UnknownScheme {
                    scheme: s.to_string(),
                    raw: raw.to_string(),
                }),
            };
        }
        Ok(bare(raw))
    }

    /// A container image (`docker:`, `docker-archive:`, `oci-dir:`, `oci-archive:`).
    pub fn is_image(&self) -> bool {
        matches!(
            self,
            Target::Docker(_)
                | Target::DockerArchive(_)
                | Target::OciDir(_)
                | Target::OciArchive(_)
        )
    }

    /// The path (or image name) the target names, when it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Target::Dir(p)
            | Target::File(p)
            | Target::Git(p)
            | Target::GitStaged(p)
            | Target::GitRange(p, _)
            | Target::Mcp(Some(p))
            | Target::DockerArchive(p)
            | Target::OciDir(p)
            | Target::OciArchive(p) => Some(p),
            Target::Docker(name) | Target::Container(name) => Some(Path::new(name)),
            Target::Mcp(None) | Target::Containers(_) => None,
        }
    }

    /// The scheme, as it appears in the report's `targets[].kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Dir(_) => "dir",
            Target::File(_) => "file",
            Target::Git(_) | Target::GitStaged(_) | Target::GitRange(..) => "git",
            Target::Mcp(_) => "mcp",
            Target::Docker(_) => "docker",
            Target::DockerArchive(_) => "docker-archive",
            Target::OciDir(_) => "oci-dir",
            Target::OciArchive(_) => "oci-archive",
            Target::Container(_) => "container",
            Target::Containers(_) => "containers",
        }
    }
}

/// `git:PATH@A..B` (`B` empty: HEAD) as a range, unless `PATH@A..B` is itself an existing path;
/// `None` when `rest` names no range.
fn git_target(raw: &str, rest: &str) -> Option<Result<Target, TargetError>> {
    let (path, revs) = rest.rsplit_once('@')?;
    let (from, to) = revs.split_once("..")?;
    if Path::new(rest).exists() {
        return None;
    }
    if from.is_empty() {
        return Some(Err(TargetError::MissingRangeStart {
            raw: raw.to_string(),
        }));
    }
    let path = if path.is_empty() { "." } else { path };
    Some(Ok(Target::GitRange(
        PathBuf::from(path),
        git::Range {
            from: from.to_string(),
            to: (!to.is_empty()).then(|| to.to_string()),
        },
    )))
}

fn bare(raw: &str) -> Target {
    let path = PathBuf::from(raw);
    if path.is_dir() && git::is_repository(&path) {
        Target::Git(path)
    } else if let Some(image) = image::layout_at(&path) {
        image
    } else if path.is_dir() {
        Target::Dir(path)
    } else {
        Target::File(path)
    }
}

/// `scheme:rest` when the part before the first colon looks like a scheme (a letter, then
/// letters, digits or `-`), so `./a:b` and `/tmp/x:y` stay paths.
fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = raw.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let schemey = first.is_ascii_lowercase()
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    schemey.then_some((scheme, rest))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Dir(p) => write!(f, "dir:{}", p.display()),
            Target::File(p) => write!(f, "file:{}", p.display()),
            Target::Git(p) => write!(f, "git:{}", p.display()),
            Target::GitStaged(p) => write!(f, "git:{} --staged", p.display()),
            Target::GitRange(p, range) => write!(f, "git:{}@{range}", p.display()),
            Target::Mcp(Some(p)) => write!(f, "mcp:{}", p.display()),
            Target::Mcp(None) => f.write_str("mcp:"),
            Target::Docker(name) => write!(f, "docker:{name}"),
            Target::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            Target::OciDir(p) => write!(f, "oci-dir:{}", p.display()),
            Target::OciArchive(p) => write!(f, "oci-archive:{}", p.display()),
            Target::Container(name) => write!(f, "container:{name}"),
            Target::Containers(which) => write!(f, "containers:{}", which.as_str()),
        }
    }
}

/// Bytes to scan, where they came from, and the project they belong to. An MCP client
/// config also carries its parse, and a credential file its fields, so that matches can be
/// joined to the server and field (or the file's field) that hold them.
#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub provenance: Provenance,
    /// The project the source knows the bytes belong to: a repository's remote (else its
    /// path), an image reference, a project-level MCP config's directory, `user:<name>` for
    /// a user-global config, the scanned directory otherwise.
    pub project: String,
    /// The directory the target scanned (a repository, a home, `/` of an image): what paths
    /// are read relative to when they are searched for environment words.
    pub root: PathBuf,
    pub mcp: Option<Arc<ParsedConfig>>,
    pub fields: Option<Arc<secret_file::SecretFile>>,
}

/// Why an object was not scanned. Each is counted by reason in the target's `skipped` and
/// listed in its `not_scanned`; only [`SkipReason::Unreadable`] is an error as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Over `--max-file-size` (or `--max-blob-size` for git blobs).
    TooLarge,
    Binary,
    /// A symlink to a directory: not followed, so walks never loop.
    SymlinkToDirectory,
    /// Left out by `--exclude` or a `.detectorignore` file (a directory once, as itself).
    Excluded,
    /// Past one of the scan's limits (an archive's expansion budget, depth or member count;
    /// a config's parse budget; a walk's depth): what was cut short.
    OverLimit,
    /// A FIFO, socket or device: never opened.
    SpecialFile,
    /// Could not be read (its reason is in the target's errors too).
    Unreadable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too-large",
            SkipReason::Binary => "binary",
            SkipReason::SymlinkToDirectory => "symlink-to-directory",
            SkipReason::Excluded => "excluded",
            SkipReason::OverLimit => "over-limit",
            SkipReason::SpecialFile => "special-file",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

/// One object a source passed over: where, why, and (for a git object) which.
#[derive(Debug, Clone, Copy)]
pub struct Skip<'a> {
    /// The object's path (a git blob's first path in history, else its id).
    pub path: &'a Path,
    pub reason: SkipReason,
    /// A git object's id.
    pub object: Option<&'a str>,
    /// What exactly (`12 MiB, over --max-file-size 10 MiB`), when the reason is not enough.
    pub detail: Option<&'a str>,
    /// Coverage was lost (listed in the target's errors too): always for
    /// [`SkipReason::OverLimit`] and [`SkipReason::SpecialFile`]; for another reason when the
    /// source says so (an MCP config over `--max-file-size`: the catalogue says it holds
    /// servers).
    pub lost: bool,
}

impl<'a> Skip<'a> {
    pub fn new(path: &'a Path, reason: SkipReason) -> Skip<'a> {
        Skip {
            path,
            reason,
            object: None,
            detail: None,
            lost: matches!(reason, SkipReason::OverLimit | SkipReason::SpecialFile),
        }
    }
}

/// Where a source sends what it finds. Called from many threads at once.
pub trait Sink: Sync {
    fn blob(&self, blob: Blob);
    /// An object not scanned, and why (see [`Skip`]).
    fn not_scanned(&self, skip: Skip<'_>);
    /// [`Sink::not_scanned`] of a path with no more to say than its reason.
    fn skipped(&self, path: &Path, reason: SkipReason) {
        self.not_scanned(Skip::new(path, reason));
    }
    /// An object that could not be read; the scan goes on.
    fn error(&self, path: &Path, reason: &str);
    /// A git repository met in a directory walk: its internals are not read as files, its
    /// history is the git source's to read.
    fn repository(&self, _path: &Path) {}
}

/// The default of `--max-file-size`.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 50 * 1024 * 1024;

/// Limits and choices every source honours.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Files larger than this (outside archives; members too, as they are held in memory)
    /// are skipped.
    pub max_file_size: u64,
    /// Directory walks honour `.gitignore` files (off by default: ignored files are where
    /// secrets hide).
    pub respect_gitignore: bool,
    /// Globs (gitignore syntax) of paths a directory walk leaves out.
    pub excludes: Vec<String>,
    /// What an archive may expand to; `max_depth` 0 leaves archives closed.
    pub archive: archive::ArchiveLimits,
    /// Git blobs larger than this are not read.
    pub max_blob_size: u64,
    /// Image sources: only the images of this platform (`linux/amd64`, `linux/arm64/v8`);
    /// `None`: every image of an index.
    pub platform: Option<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_blob_size: DEFAULT_MAX_FILE_SIZE,
            respect_gitignore: false,
            excludes: Vec::new(),
            archive: archive::ArchiveLimits::default(),
            platform: None,
        }
    }
}

/// A target that could not be read at all (its root is missing, unreadable, of the wrong
/// type). Objects inside a readable target that fail go to [`Sink::error`] instead.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct SourceError {
    pub path: PathBuf,
    pub reason: String,
}

impl SourceError {
    pub fn new(path: &Path, reason: impl fmt::Display) -> SourceError {
        SourceError {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// What the sources of one run share: the options, and the objects already read (see
/// [`seen`]).
#[derive(Debug, Default)]
pub struct Context {
    pub options: SourceOptions,
    /// Image layers read in this run: a layer shared by several images is read once.
    pub read_layers: image::ReadLayers,
}

impl Context {
    pub fn new(options: SourceOptions) -> Context {
        Context {
            options,
            read_layers: image::ReadLayers::default(),
        }
    }
}

/// Read every object of one target into `sink`.
pub fn scan(target: &Target, context: &Context, sink: &dyn Sink) -> Result<(), SourceError> {
    let options = &context.options;
    match target {
        Target::Dir(root) => fs::scan_dir(root, options, sink),
        Target::File(path) => fs::scan_file(path, options, sink),
        Target::Git(path) => git::scan(path, options, sink),
        Target::GitStaged(path) => git::index::scan(path, options, sink),
        Target::GitRange(path, range) => git::range::scan(path, range, options, sink),
        Target::Mcp(home) => mcp::scan(home.as_deref(), options, sink),
        Target::Docker(name) => image::scan_daemon(name, context, sink),
        Target::DockerArchive(path) => {
            image::scan_archive(path, image::Layout::Docker, context, sink)
        }
        Target::OciDir(path) => image::scan_oci_dir(path, context, sink),
        Target::OciArchive(path) => image::scan_archive(path, image::Layout::Oci, context, sink),
        Target::Container(name) => container::daemon::scan_container(name, options, sink),
        Target::Containers(which) => container::daemon::scan_containers(*which, options, sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes() {
        assert_eq!(
            Target::parse("dir:/srv").unwrap(),
            Target::Dir("/srv".into())
        );
        assert_eq!(
            Target::parse("file:a:b.txt").unwrap(),
            Target::File("a:b.txt".into())
        );
        assert_eq!(Target::parse("mcp:").unwrap(), Target::Mcp(None));
        assert_eq!(
            Target::parse("mcp:/home/al").unwrap(),
            Target::Mcp(Some("/home/al".into()))
        );
        assert!(matches!(
            Target::parse("ftp:/x"),
            Err(TargetError::UnknownScheme { .. })
        ));
        assert_eq!(
            Target::parse("docker:registry.local:5000/app:prod").unwrap(),
            Target::Docker("registry.local:5000/app:prod".into())
        );
        assert_eq!(
            Target::parse("oci-archive:/x/img.tar").unwrap(),
            Target::OciArchive("/x/img.tar".into())
        );
        assert!(matches!(
            Target::parse("docker:"),
            Err(TargetError::MissingImage)
        ));
        assert_eq!(
            Target::parse("container:api-1").unwrap(),
            Target::Container("api-1".into())
        );
        assert_eq!(
            Target::parse("containers:").unwrap(),
            Target::Containers(container::daemon::Which::All)
        );
        assert_eq!(
            Target::parse("containers:running").unwrap().to_string(),
            "containers:running"
        );
        assert!(matches!(
            Target::parse("containers:some"),
            Err(TargetError::UnknownContainerSet(_))
        ));
        assert!(matches!(
            Target::parse("container:"),
            Err(TargetError::MissingContainer)
        ));
        assert_eq!(Target::parse("git:.").unwrap(), Target::Git(".".into()));
        let range = |from: &str, to: Option<&str>| git::Range {
            from: from.into(),
            to: to.map(Into::into),
        };
        assert_eq!(
            Target::parse("git:/srv/app@origin/main..HEAD").unwrap(),
            Target::GitRange("/srv/app".into(), range("origin/main", Some("HEAD")))
        );
        assert_eq!(
            Target::parse("git:.@v1.0..").unwrap(),
            Target::GitRange(".".into(), range("v1.0", None))
        );
        assert_eq!(
            Target::parse("git:.@v1.0..").unwrap().to_string(),
            "git:.@v1.0..HEAD"
        );
        assert!(matches!(
            Target::parse("git:.@..HEAD"),
            Err(TargetError::MissingRangeStart { .. })
        ));
        assert_eq!(
            Target::parse("git:me@host.git").unwrap(),
            Target::Git("me@host.git".into()),
            "an @ without a range is part of the path"
        );
        assert_eq!(
            Target::parse("docker:alpine").unwrap(),
            Target::Docker("alpine".into())
        );
        assert!(matches!(
            Target::parse("dir:"),
            Err(TargetError::MissingPath { .. })
        ));
    }

    #[test]
    fn bare_paths_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.txt");
        std::fs::write(&file, "x").unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(Target::parse(d).unwrap(), Target::Dir(dir.path().into()));
        assert_eq!(
            Target::parse(file.to_str().unwrap()).unwrap(),
            Target::File(file.clone())
        );
        let work_tree = dir.path().join("app");
        std::fs::create_dir_all(work_tree.join(".git")).unwrap();
        assert_eq!(
            Target::parse(work_tree.to_str().unwrap()).unwrap(),
            Target::Git(work_tree.clone())
        );
        let bare = dir.path().join("app.git");
        std::fs::create_dir_all(bare.join("objects")).unwrap();
        std::fs::create_dir_all(bare.join("refs")).unwrap();
        std::fs::write(bare.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(
            Target::parse(bare.to_str().unwrap()).unwrap(),
            Target::Git(bare.clone())
        );
        assert_eq!(
            Target::parse("./no/such").unwrap(),
            Target::File("./no/such".into())
        );
        assert_eq!(
            Target::parse("/abs/path").unwrap(),
            Target::File("/abs/path".into())
        );
        assert_eq!(
            Target::parse("C:/x").unwrap(),
            Target::File("C:/x".into()),
            "upper-case prefixes are not schemes"
        );
    }

    #[test]
    fn displays_like_the_command_line() {
        assert_eq!(Target::Dir("/a".into()).to_string(), "dir:/a");
        assert_eq!(Target::Mcp(None).to_string(), "mcp:");
    }
}
