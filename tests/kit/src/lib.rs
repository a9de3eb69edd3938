//! The test kit of the `detector` workspace, used by the end-to-end tests (`tests/`) and by the
//! xtask benchmarks: dev-only, never published, and independent of the `detector` crate (it
//! drives the binary by its path).
//!
//! - [`keys`]: the one fake-key generator (seeded, so keys are the same on every run and
//!   machine) and the fingerprint detector gives a key;
//! - [`run`]: the binary run with a clean environment and a deadline;
//! - [`rss`]: the same run, and its peak resident memory;
//! - [`report`]: queries on a JSON report, and [`report::assert_no_secret`];
//! - [`guard`]: skip a test that cannot run here, or fail it under `CI=true`;
//! - [`accounts`]: users and groups made on the host for one test;
//! - [`git`]: repositories built with `git` (fixed identity and dates) or `git fast-import`;
//! - [`image`]: image archives (`docker save`, both layouts, and OCI layouts) written by hand;
//! - [`docker`]: a private Docker daemon, one per process;
//! - [`https`]: a local HTTPS "provider" with its own CA, for `--verify`;
//! - [`db`]: PostgreSQL and Redis servers of a test's own, for `--verify-network`;
//! - [`chromium`]: headless Chromium on a page: its DOM, its log, the requests it made;
//! - [`tools`]: where setup installs the tools no Debian package has (pre-commit);
//! - [`dist`]: the release binaries of `cargo xtask dist`, per target;
//! - [`deb`]: the Debian package of the agent host, built with `dpkg-deb`.
pub mod accounts;
pub mod chromium;
pub mod db;
pub mod deb;
pub mod dist;
pub mod docker;
pub mod git;
pub mod guard;
pub mod https;
pub mod image;
pub mod keys;
pub mod pass;
pub mod report;
pub mod rss;
pub mod run;
pub mod tools;

/// Make a FIFO at `path`.
pub fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Write `text` to `path`, its directories made first.
pub fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
