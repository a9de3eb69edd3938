//! A password store (`pass`) of a test's own: a GPG home with a key without passphrase, and
//! the store initialised for it, under a temporary directory; the gpg-agent it starts is
//! stopped when it is dropped. Nothing touches the real user's keys or store.
use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

/// A GPG home and password store of their own, with a key without passphrase.
pub struct PassStore {
    dir: tempfile::TempDir,
}

impl PassStore {
    pub fn new() -> PassStore {
        let dir = tempfile::tempdir().unwrap();
        let store = PassStore { dir };
        fs::create_dir(store.home()).unwrap();
        fs::create_dir(store.gnupg()).unwrap();
        fs::set_permissions(store.gnupg(), fs::Permissions::from_mode(0o700)).unwrap();
        let id = "detector-test@example.invalid";
        let run = |program: &str, args: &[&str]| {
            let output = Command::new(program)
                .args(args)
                .env("HOME", store.home())
                .env("GNUPGHOME", store.gnupg())
                .env("PASSWORD_STORE_DIR", store.passwords())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                id,
                "default",
                "default",
                "never",
            ],
        );
        run("pass", &["init", id]);
        store
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn gnupg(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    pub fn passwords(&self) -> PathBuf {
        self.dir.path().join("password-store")
    }

    /// `(name, value)` pairs a child needs to use this store.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("GNUPGHOME", self.gnupg()),
            ("PASSWORD_STORE_DIR", self.passwords()),
        ]
    }
}

impl Default for PassStore {
    fn default() -> PassStore {
        PassStore::new()
    }
}

impl Drop for PassStore {
    /// The gpg-agent the key generation started lives on; stop it.
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.gnupg())
            .status();
    }
}
