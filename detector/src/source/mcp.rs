//! `mcp:[HOME]` targets: the MCP client configs the catalogue knows, under one home or under
//! every home on the host. Each config is read like any file (never blocking) and parsed, so
//! its blob carries the servers and fields the keys sit in. Whatever the file gate refuses,
//! while discovering or reading, is not scanned and listed in the target's errors with its
//! path and reason: a FIFO, socket or device as a special file (never opened), a config over
//! `--max-file-size` as too large (a config path is worth naming), what cannot be read as
//! unreadable.
use std::path::Path;

use rayon::prelude::*;

use super::{
    fs::{file_blob, read_path, special, too_large_reason, FileRead},
    Sink, Skip, SkipReason, SourceError, SourceOptions,
};
use crate::mcp::{self, ConfigRef, Discovery, Home};

/// Scan the configs under `home`, or under [`mcp::homes`] when no home is given.
pub fn scan(
    home: Option<&Path>,
    options: &SourceOptions,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let homes = match home {
        Some(dir) => vec![home_at(dir)?],
        None => {
            let homes = mcp::homes();
            if homes.is_empty() {
                return Err(SourceError::new(
                    Path::new("$HOME"),
                    "no home directory found (set HOME or give mcp:HOME)",
                ));
            }
            // The host's own configs too: those an administrator keeps for every user.
            // (`/`, or the system drive on Windows.)
            let system = crate::platform::system_root();
            let Discovery { configs, unread } = Discovery::system(&system);
            for file in &unread {
                refused(sink, &file.path, file.reason, &file.detail);
            }
            configs
                .into_par_iter()
                .for_each(|config| read_config(config, &system, options, sink));
            homes
        }
    };
    for home in &homes {
        if !home.dir.is_dir() {
            sink.error(&home.dir, "home directory does not exist");
            continue;
        }
        let Discovery { configs, unread } = Discovery::of(home, options.max_file_size);
        tracing::debug!(home = %home.dir.display(), configs = configs.len(), unread = unread.len(), "MCP configs discovered");
        for file in &unread {
            refused(sink, &file.path, file.reason, &file.detail);
        }
        configs
            .into_par_iter()
            .for_each(|config| read_config(config, &home.dir, options, sink));
    }
    Ok(())
}

fn read_config(config: ConfigRef, home: &Path, options: &SourceOptions, sink: &dyn Sink) {
    let path = config.path.clone();
    match read_path(&path, options.max_file_size) {
        FileRead::Loaded(loaded) => sink.blob(file_blob(&path, loaded, home, Some(config))),
        FileRead::Skipped(SkipReason::TooLarge) => refused(
            sink,
            &path,
            SkipReason::TooLarge,
            &too_large_reason(&path, options.max_file_size),
        ),
        FileRead::Skipped(reason) => sink.skipped(&path, reason),
        FileRead::Special(what) => special(sink, &path, what),
        // `read_path` leaves archives closed: an archive is binary to it.
        FileRead::Archive(..) => sink.skipped(&path, SkipReason::Binary),
        FileRead::Failed(reason) => sink.error(&path, &reason),
        FileRead::Directory => sink.skipped(&path, SkipReason::SymlinkToDirectory),
    }
}

/// A file the gate refused, not scanned: a special file or a file too large with its detail
/// (both listed in the target's errors too, a config path being worth naming), else an
/// error.
fn refused(sink: &dyn Sink, path: &Path, reason: SkipReason, detail: &str) {
    match reason {
        SkipReason::SpecialFile | SkipReason::TooLarge => sink.not_scanned(Skip {
            detail: Some(detail),
            lost: true,
            ..Skip::new(path, reason)
        }),
        _ => sink.error(path, detail),
    }
}

/// The home at `dir`: its owner's uid, and the owner's user name when `dir` is that user's
/// home in the password database, else the directory's name.
pub fn home_at(dir: &Path) -> Result<Home, SourceError> {
    let meta =
        std::fs::metadata(dir).map_err(|e| SourceError::new(dir, super::fs::io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(SourceError::new(
            dir,
            "not a directory (mcp: takes a home directory)",
        ));
    }
    // No uid where files have no owner ids (Windows): 0 stands for "unknown".
    let uid = crate::platform::owner(&meta).map_or(0, |(uid, _)| uid);
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let user = match crate::platform::user_by_uid(uid) {
        Some((name, pw_dir))
            if std::fs::canonicalize(&pw_dir).ok().as_ref() == Some(&canonical) =>
        {
            name
        }
        _ => canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| uid.to_string()),
    };
    Ok(Home {
        user,
        uid,
        dir: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_is_nobodys_home_is_named_after_itself() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("alice");
        std::fs::create_dir(&home).unwrap();
        let found = home_at(&home).unwrap();
        assert_eq!(found.user, "alice");
        assert_eq!(found.dir, home);
        assert!(home_at(&dir.path().join("nobody")).is_err());
    }
}
