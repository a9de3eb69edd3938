//! `pass`, the standard unix password manager: each key at `detector/NAME`, encrypted to the
//! store's GPG key. The tool finds its store and GPG home through the environment
//! (`PASSWORD_STORE_DIR`, `GNUPGHOME`), which it inherits.
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{secret_output, DestinationError, Entry, Tool, STORE_PREFIX};

const PACKAGE: &str = "pass";

fn pass(args: &[&str]) -> Tool {
    Tool::new("pass", PACKAGE, args)
}

/// Installed, with a store that `pass init` made: the store folder (`PASSWORD_STORE_DIR`, else
/// `~/.password-store`, as pass finds it) holds a `.gpg-id` for `detector/` or for the whole
/// store. `pass ls` alone would not tell: it succeeds on an empty folder.
pub(super) fn check() -> Result<(), DestinationError> {
    let tool = pass(&["version"]);
    let output = tool.run(None)?;
    if !output.status.success() {
        return Err(tool.failed(&output));
    }
    let store = std::env::var_os("PASSWORD_STORE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".password-store")))
        .ok_or_else(|| DestinationError::PassNotInitialised {
            detail: "neither PASSWORD_STORE_DIR nor HOME is set".to_string(),
        })?;
    let initialised = [
        store.join(STORE_PREFIX).join(".gpg-id"),
        store.join(".gpg-id"),
    ]
    .iter()
    .any(|id| id.is_file());
    if initialised {
        Ok(())
    } else {
        Err(DestinationError::PassNotInitialised {
            detail: format!("no .gpg-id in {}", store.display()),
        })
    }
}

pub(super) fn lookup(name: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
    let entry = format!("{STORE_PREFIX}/{name}");
    let tool = pass(&["show", &entry]);
    let output = tool.run(None)?;
    if !output.status.success() {
        return if String::from_utf8_lossy(&output.stderr).contains("is not in the password store") {
            Ok(None)
        } else {
            Err(tool.failed(&output))
        };
    }
    let mut value = secret_output(output, &tool)?;
    // `pass insert` without --multiline, as people use it, ends the value with a line break.
    if value.ends_with('\n') {
        value.pop();
    }
    Ok(Some(value))
}

/// `pass insert --multiline --force detector/NAME` with the value on standard input (exactly
/// the value: `--multiline` reads to the end, no echo, no confirmation prompt). pass does not
/// fsync what gpg wrote, so the file systems are synced before returning.
pub(super) fn put(entries: &[Entry]) -> Result<(), DestinationError> {
    for entry in entries {
        let name = format!("{STORE_PREFIX}/{}", entry.name);
        let tool = pass(&["insert", "--multiline", "--force", &name]);
        let output = tool.run(Some(&entry.secret))?;
        if !output.status.success() {
            return Err(tool.failed(&output));
        }
    }
    crate::platform::sync_file_systems();
    Ok(())
}
