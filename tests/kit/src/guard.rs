//! Tests that need the kernel, Docker or root: elsewhere they skip with a reason; under
//! `CI=true`, where every prerequisite must be there, a missing one fails them.
use std::path::Path;

/// Whether this run is CI's, where a missing prerequisite is a failure, never a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test that cannot run here for `reason`: printed and skipped (`false`), or, under
/// `CI=true`, a failure.
pub fn skip(reason: &str) -> bool {
    assert!(!under_ci(), "CI=true but the test cannot run: {reason}");
    eprintln!("skipped: {reason}");
    false
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Root, or a skip (see [`skip`]) saying `why` root is needed.
pub fn root_or_skip(why: &str) -> bool {
    is_root() || skip(&format!("not root ({why})"))
}

/// Whether the eBPF tests can run here (root, kernel BTF); see [`skip`].
pub fn kernel_available() -> bool {
    if !is_root() {
        skip("the eBPF tests need root")
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip("the eBPF tests need kernel BTF")
    } else {
        true
    }
}
