//! Copies made to keep, not to use: editor and backup leftovers (`*.bak`, `*~`, `#name#`,
//! `.name.swp`), dotfile managers' sources (chezmoi's `dot_` names, yadm alternates, stow
//! packages, a `dotfiles` repository) and members of archives. A backup still leaks what it
//! copied, and the report says which original it stands for (`dot_zshrc` → `~/.zshrc`), so
//! that the file is also understood as that original (an MCP config, a `.env`, …).
//!
//! Recognition looks at the path only, never at the file.
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// `name.bak`, `name.orig`, `name.old`, `name.save`, `name~`, `#name#`, `.name.swp`,
    /// `name.dpkg-old`, …: left by an editor, a package manager or a person.
    Leftover,
    /// A chezmoi source directory (`dot_zshrc`, `private_dot_config/…`, `*.tmpl`).
    Chezmoi,
    /// yadm alternates (`.zshrc##os.Linux`, `.config/yadm/alt/…`).
    Yadm,
    /// A GNU stow package (`dotfiles/zsh/.zshrc`).
    Stow,
    /// A dotfiles repository that mirrors a home (`dotfiles/.zshrc`).
    Dotfiles,
    /// Inside a backup directory or snapshot (`backups/`, `.snapshots/`, Time Machine).
    BackupDirectory,
    /// A member of an archive (a tarball of a home, a zip of configs).
    Archive,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Leftover => "leftover",
            BackupKind::Chezmoi => "chezmoi",
            BackupKind::Yadm => "yadm",
            BackupKind::Stow => "stow",
            BackupKind::Dotfiles => "dotfiles",
            BackupKind::BackupDirectory => "backup-directory",
            BackupKind::Archive => "archive",
        }
    }
}

/// A file recognised as a backup, and the original it stands for when the name tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub kind: BackupKind,
    /// The original path: `~/…` for dotfile managers (relative to the home they install
    /// into), the sibling path for leftovers. `None` when the name does not tell.
    #[serde(
        serialize_with = "crate::path_text::maybe",
        skip_serializing_if = "Option::is_none"
    )]
    pub original: Option<PathBuf>,
    /// The home `~` stands for, when the backup sits where a manager keeps it
    /// (`/home/al/.local/share/chezmoi` → `/home/al`). Used to recognise the original.
    #[serde(skip)]
    pub home: Option<PathBuf>,
}

impl Backup {
    /// The path to recognise the file as (MCP config, credential file): the original with
    /// `~` replaced by the home when known.
    pub fn recognition_path(&self) -> Option<PathBuf> {
        let original = self.original.as_ref()?;
        match original.strip_prefix("~") {
            Ok(rest) => Some(match &self.home {
                Some(home) => home.join(rest),
                None => Path::new("/home/unknown").join(rest),
            }),
            Err(_) => Some(original.clone()),
        }
    }
}

/// Is the file at `path` a backup, and of what?
pub fn recognise(path: &Path) -> Option<Backup> {
    let name = path.file_name()?.to_str()?;
    // A manager's source says the most (`dot_zshrc` → `~/.zshrc`), even for a leftover in it.
    if let Some(backup) = dotfile_manager(path) {
        return Some(backup);
    }
    if let Some(original) = leftover_original(name) {
        return Some(Backup {
            kind: BackupKind::Leftover,
            original: Some(path.with_file_name(original)),
            home: None,
        });
    }
    if in_backup_directory(path) {
        return Some(Backup {
            kind: BackupKind::BackupDirectory,
            original: None,
            home: None,
        });
    }
    None
}

/// The original name of an editor or backup leftover, if `name` is one.
fn leftover_original(name: &str) -> Option<String> {
    // Emacs auto-save: `#name#`.
    if let Some(inner) = name.strip_prefix('#').and_then(|n| n.strip_suffix('#')) {
        return (!inner.is_empty()).then(|| inner.to_string());
    }
    // Vim swap files: `.name.swp`, `.name.swo`, …; vim adds no dot to a dotfile's name
    // (`.zshrc.swp`), so a dotted name without an extension is its own original.
    for ext in [".swp", ".swo", ".swn"] {
        if let Some(inner) = name.strip_suffix(ext).and_then(|n| n.strip_prefix('.')) {
            if inner.is_empty() {
                continue;
            }
            return Some(if inner.contains('.') {
                inner.to_string()
            } else {
                format!(".{inner}")
            });
        }
    }
    // GNU numbered backups: `name.~3~`; simple ones: `name~`.
    if let Some(stem) = name.strip_suffix('~') {
        let stem = match stem.rfind(".~") {
            Some(at) if stem[at + 2..].bytes().all(|b| b.is_ascii_digit()) => &stem[..at],
            _ => stem,
        };
        return (!stem.is_empty()).then(|| stem.to_string());
    }
    const SUFFIXES: &[&str] = &[
        ".bak",
        ".backup",
        ".bck",
        ".bkp",
        ".orig",
        ".old",
        ".save",
        ".sav",
        ".prev",
        ".previous",
        ".dpkg-old",
        ".dpkg-dist",
        ".dpkg-bak",
        ".ucf-old",
        ".rpmsave",
        ".rpmnew",
        ".pacsave",
        ".pacnew",
    ];
    // Each marker holds one of these (most names hold none).
    if ![
        "bak", "backup", "bck", "bkp", "orig", "old", "sav", "prev", "dpkg", "new",
    ]
    .iter()
    .any(|m| contains_ignoring_case(name.as_bytes(), m.as_bytes()))
    {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    for suffix in SUFFIXES {
        // `name.bak`, `name.bak2`, `name.bak.1`, `name.bak-20240101`.
        if let Some(at) = lower.rfind(suffix) {
            let tail = &lower[at + suffix.len()..];
            let numbered = tail.is_empty()
                || tail
                    .trim_start_matches(['.', '-', '_'])
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.');
            if at > 0 && numbered {
                return Some(name[..at].to_string());
            }
            // `claude_desktop_config.bak.json`: the marker before the extension.
            if at > 0 && tail.starts_with('.') && !tail[1..].contains('.') && tail.len() <= 6 {
                return Some(format!("{}{}", &name[..at], &name[at + suffix.len()..]));
            }
        }
    }
    None
}

/// Directories that hold backups (`backups/`, `Backup-2024/`, `.snapshots/`, Time Machine's
/// `Backups.backupdb`).
fn in_backup_directory(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    // Every name below holds one of these.
    let bytes = parent.as_os_str().as_encoded_bytes();
    if !contains_ignoring_case(bytes, b"backup")
        && !contains_ignoring_case(bytes, b".bak")
        && !contains_ignoring_case(bytes, b".snapshots")
    {
        return false;
    }
    parent.components().any(|c| {
        let Component::Normal(c) = c else {
            return false;
        };
        let c = c.to_string_lossy().to_ascii_lowercase();
        c == "backup"
            || c == "backups"
            || c == ".backup"
            || c == ".backups"
            || c.starts_with("backup-")
            || c.starts_with("backup_")
            || c.ends_with(".bak")
            || c == ".snapshots"
            || c == "backups.backupdb"
    })
}

/// A file in a dotfile manager's source: chezmoi, yadm, stow or a dotfiles repository.
fn dotfile_manager(path: &Path) -> Option<Backup> {
    // Each layout names itself somewhere in the path (`dot_`, `dotfiles`, `dots`, `chezmoi`,
    // `yadm`, `##`): one pass over the bytes passes over every other path.
    let bytes = path.as_os_str().as_encoded_bytes();
    if !contains_ignoring_case(bytes, b"dot")
        && !contains_ignoring_case(bytes, b"chezmoi")
        && !contains_ignoring_case(bytes, b"yadm")
        && memchr::memmem::find(bytes, b"##").is_none()
    {
        return None;
    }
    let names: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    chezmoi(path, &names)
        .or_else(|| yadm(path, &names))
        .or_else(|| dotfiles_repository(path, &names))
}

/// chezmoi's source state: `~/.local/share/chezmoi` (or any directory whose entries carry
/// chezmoi's attribute prefixes, such as `dot_`). Every component maps to its target name.
fn chezmoi(path: &Path, names: &[&str]) -> Option<Backup> {
    let (root, home) = match find_sequence(names, &[".local", "share", "chezmoi"]) {
        Some(at) => (at + 3, (at > 0).then(|| prefix_path(path, at))),
        None => {
            // Elsewhere, the first component named like a chezmoi target with a dot marks the
            // source directory, when the name is surely chezmoi's: attributes before `dot_`
            // (`private_dot_ssh`), a dotfile's name (`dot_zshrc`), or a `chezmoi` directory
            // above. `dot_product.py` alone is just a name.
            let in_chezmoi = names.iter().any(|n| n.contains("chezmoi"));
            let at = names
                .iter()
                .position(|n| is_chezmoi_dotted(n) && (in_chezmoi || surely_chezmoi(n)))?;
            (at, None)
        }
    };
    if root >= names.len() {
        return None;
    }
    let mut original = PathBuf::from("~");
    for (i, name) in names[root..].iter().enumerate() {
        let last = root + i == names.len() - 1;
        // chezmoi's own files (`.chezmoiignore`, `.chezmoi.toml.tmpl`) are not targets.
        if name.starts_with(".chezmoi") {
            return Some(Backup {
                kind: BackupKind::Chezmoi,
                original: None,
                home,
            });
        }
        original.push(chezmoi_target_name(name, last));
    }
    Some(Backup {
        kind: BackupKind::Chezmoi,
        original: Some(original),
        home,
    })
}

fn surely_chezmoi(name: &str) -> bool {
    let stripped = strip_chezmoi_attributes(name);
    if stripped.len() != name.len() {
        return true;
    }
    let target = stripped.trim_start_matches("dot_");
    let target = target.strip_suffix(".tmpl").unwrap_or(target);
    UNDOTTED.contains(&target) || KNOWN_DOT_DIRECTORIES.contains(&target)
}

/// `needle` (lower case) in `haystack`, ASCII case-insensitively.
fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), haystack).any(|at| {
        haystack
            .get(at + 1..at + needle.len())
            .is_some_and(|tail| tail.eq_ignore_ascii_case(rest))
    })
}

/// Dot-directories of a home that hold credentials or MCP configs.
const KNOWN_DOT_DIRECTORIES: &[&str] = &[
    "config",
    "local",
    "ssh",
    "aws",
    "docker",
    "kube",
    "gnupg",
    "codex",
    "cursor",
    "claude",
    "claude.json",
    "gemini",
    "vscode",
    "continue",
    "codeium",
    "mcp.json",
    "envrc",
    "git-credentials",
    "npmrc",
    "yarnrc",
    "gcloud",
    "azure",
];

fn is_chezmoi_dotted(name: &str) -> bool {
    let stripped = strip_chezmoi_attributes(name);
    stripped.starts_with("dot_") && stripped.len() > 4
}

/// `private_executable_dot_zshrc.tmpl` → `.zshrc`.
fn chezmoi_target_name(name: &str, is_file: bool) -> String {
    let mut name = strip_chezmoi_attributes(name);
    if is_file {
        for suffix in [".tmpl", ".literal", ".age", ".asc"] {
            if let Some(stem) = name.strip_suffix(suffix) {
                name = stem;
            }
        }
    }
    match name.strip_prefix("dot_") {
        Some(rest) => format!(".{rest}"),
        None => name.strip_prefix("literal_").unwrap_or(name).to_string(),
    }
}

fn strip_chezmoi_attributes(mut name: &str) -> &str {
    const ATTRIBUTES: &[&str] = &[
        "create_",
        "modify_",
        "remove_",
        "run_once_",
        "run_onchange_",
        "run_",
        "before_",
        "after_",
        "symlink_",
        "encrypted_",
        "private_",
        "readonly_",
        "empty_",
        "executable_",
        "exact_",
        "external_",
    ];
    loop {
        match ATTRIBUTES.iter().find_map(|a| name.strip_prefix(a)) {
            Some(rest) => name = rest,
            None => return name,
        }
    }
}

/// yadm keeps alternates beside the file (`.zshrc##os.Linux,class.Work`) or under
/// `~/.config/yadm/alt/`; its repository is a bare git repository (history: the git source).
fn yadm(path: &Path, names: &[&str]) -> Option<Backup> {
    if let Some(at) = find_sequence(names, &[".config", "yadm", "alt"]) {
        let rest = &names[at + 3..];
        if rest.is_empty() {
            return None;
        }
        let mut original = PathBuf::from("~");
        for name in rest {
            original.push(strip_yadm_condition(name));
        }
        return Some(Backup {
            kind: BackupKind::Yadm,
            original: Some(original),
            home: (at > 0).then(|| prefix_path(path, at)),
        });
    }
    let name = names.last()?;
    let (stem, _) = name.split_once("##")?;
    if stem.is_empty() {
        return None;
    }
    Some(Backup {
        kind: BackupKind::Yadm,
        original: Some(path.with_file_name(stem)),
        home: None,
    })
}

fn strip_yadm_condition(name: &str) -> &str {
    match name.split_once("##") {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// Dotfile names that repositories often keep without their dot (`zshrc` → `~/.zshrc`).
const UNDOTTED: &[&str] = &[
    "zshrc",
    "zshenv",
    "zprofile",
    "zlogin",
    "bashrc",
    "bash_profile",
    "bash_login",
    "bash_aliases",
    "profile",
    "aliases",
    "exports",
    "netrc",
    "npmrc",
    "pypirc",
    "gitconfig",
    "env",
];

/// A `dotfiles` repository: a stow directory of packages (`dotfiles/zsh/.zshrc`), a mirror
/// of the home (`dotfiles/.zshrc`), or undotted names (`dotfiles/zshrc`).
fn dotfiles_repository(path: &Path, names: &[&str]) -> Option<Backup> {
    let at = names.iter().rposition(|n| {
        let n = n.to_ascii_lowercase();
        matches!(
            n.trim_end_matches(".git"),
            "dotfiles" | ".dotfiles" | "dots" | ".dots" | "dotfiles-backup" | ".dotfiles-backup"
        )
    })?;
    let rest = &names[at + 1..];
    let (first, tail) = rest.split_first()?;
    let home = (at > 0)
        .then(|| prefix_path(path, at))
        .filter(|h| looks_like_home(h));
    if first.starts_with('.') {
        let mut original = PathBuf::from("~");
        original.extend(rest);
        return Some(Backup {
            kind: BackupKind::Dotfiles,
            original: Some(original),
            home,
        });
    }
    if let Some(second) = tail.first() {
        if second.starts_with('.') {
            // A stow package: its contents mirror the home.
            let mut original = PathBuf::from("~");
            original.extend(tail);
            return Some(Backup {
                kind: BackupKind::Stow,
                original: Some(original),
                home,
            });
        }
    }
    let last = rest.last()?;
    let original = UNDOTTED
        .contains(last)
        .then(|| PathBuf::from("~").join(format!(".{last}")));
    Some(Backup {
        kind: BackupKind::Dotfiles,
        original,
        home,
    })
}

fn looks_like_home(dir: &Path) -> bool {
    let parent = dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    matches!(parent, Some("home" | "Users")) || dir == Path::new("/root")
}

fn find_sequence(names: &[&str], sequence: &[&str]) -> Option<usize> {
    names.windows(sequence.len()).position(|w| w == sequence)
}

/// The path made of the first `count` normal components of `path` (with its root).
fn prefix_path(path: &Path, count: usize) -> PathBuf {
    let mut out = PathBuf::new();
    let mut normals = 0;
    for component in path.components() {
        if normals == count {
            break;
        }
        if matches!(component, Component::Normal(_)) {
            normals += 1;
        }
        out.push(component);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(path: &str) -> Option<(BackupKind, Option<String>)> {
        recognise(Path::new(path))
            .map(|b| (b.kind, b.original.map(|p| p.to_string_lossy().into_owned())))
    }

    #[test]
    fn leftovers_name_their_original() {
        for (path, want) in [
            (
                "/h/.config/Claude/claude_desktop_config.json.bak",
                "/h/.config/Claude/claude_desktop_config.json",
            ),
            ("/h/.zshrc~", "/h/.zshrc"),
            ("/h/.zshrc.~2~", "/h/.zshrc"),
            ("/h/#notes.txt#", "/h/notes.txt"),
            ("/h/.zshrc.swp", "/h/.zshrc"),
            ("/h/.notes.txt.swp", "/h/notes.txt"),
            ("/h/.env.swo", "/h/.env"),
            ("/h/.env.orig", "/h/.env"),
            ("/h/.npmrc.old", "/h/.npmrc"),
            ("/h/config.toml.save", "/h/config.toml"),
            ("/h/mcp.json.bak.1", "/h/mcp.json"),
            ("/h/mcp.json.bak-20240101", "/h/mcp.json"),
            (
                "/h/claude_desktop_config.bak.json",
                "/h/claude_desktop_config.json",
            ),
            ("/etc/app.conf.dpkg-old", "/etc/app.conf"),
        ] {
            assert_eq!(
                original(path),
                Some((BackupKind::Leftover, Some(want.to_string()))),
                "{path}"
            );
        }
        for path in [
            "/h/.zshrc",
            "/h/oldies.txt",
            "/h/.bak",
            "/h/#",
            "/h/backup.sh",
        ] {
            assert_eq!(original(path), None, "{path}");
        }
    }

    #[test]
    fn dotfile_managers_name_the_home_path() {
        assert_eq!(
            original("/home/al/.local/share/chezmoi/dot_zshrc"),
            Some((BackupKind::Chezmoi, Some("~/.zshrc".into())))
        );
        let backup = recognise(Path::new(
            "/home/al/.local/share/chezmoi/private_dot_config/private_Claude/private_claude_desktop_config.json.tmpl",
        ))
        .unwrap();
        assert_eq!(
            backup.original.as_deref(),
            Some(Path::new("~/.config/Claude/claude_desktop_config.json"))
        );
        assert_eq!(
            backup.recognition_path().as_deref(),
            Some(Path::new(
                "/home/al/.config/Claude/claude_desktop_config.json"
            ))
        );
        assert_eq!(
            original("/src/my-dots/executable_dot_local/bin/x"),
            Some((BackupKind::Chezmoi, Some("~/.local/bin/x".into())))
        );
        assert_eq!(
            original("/home/al/.local/share/chezmoi/.chezmoiignore"),
            Some((BackupKind::Chezmoi, None))
        );
        assert_eq!(
            original("/home/al/.zshrc##os.Linux"),
            Some((BackupKind::Yadm, Some("/home/al/.zshrc".into())))
        );
        assert_eq!(
            original("/home/al/.config/yadm/alt/.env##class.Work"),
            Some((BackupKind::Yadm, Some("~/.env".into())))
        );
        assert_eq!(
            original("/home/al/dotfiles/zsh/.zshrc"),
            Some((BackupKind::Stow, Some("~/.zshrc".into())))
        );
        assert_eq!(
            original("/home/al/.dotfiles/.aws/credentials"),
            Some((BackupKind::Dotfiles, Some("~/.aws/credentials".into())))
        );
        assert_eq!(
            original("/home/al/dotfiles/zshrc"),
            Some((BackupKind::Dotfiles, Some("~/.zshrc".into())))
        );
        assert_eq!(
            original("/srv/backups/2024/app.env"),
            Some((BackupKind::BackupDirectory, None))
        );
        assert_eq!(original("/home/al/src/dotted/file"), None);
        assert_eq!(original("/home/al/src/math/dot_product.py"), None);
        assert_eq!(
            original("/home/al/src/my-dots/dot_config/app.toml"),
            Some((BackupKind::Chezmoi, Some("~/.config/app.toml".into())))
        );
    }
}
