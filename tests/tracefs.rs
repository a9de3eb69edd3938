//! The agent mounts tracefs when the host has not, even when several agents start at the same
//! moment (the second mount fails with EBUSY, and tracefs is there all the same).
//!
//! Its own test binary: it unmounts tracefs, which no other agent test may see happen. Needs
//! root, BPF and BTF; under `CI=true` a missing prerequisite fails it.
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
};

use kit::guard::kernel_available;

const DETECTOR: &str = env!("CARGO_BIN_EXE_detector");
const TRACEFS: &str = "/sys/kernel/tracing";

fn tracefs_mounted() -> bool {
    fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(TRACEFS))
}

#[test]
fn agents_starting_together_mount_tracefs_once_and_all_run() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("config.json");
    fs::write(&watched, "{}").unwrap();
    // The race is narrow: a few rounds of several agents make a lost one all but certain.
    for round in 0..3 {
        // Unmount every tracefs stacked there, as on a host that never mounted it.
        while tracefs_mounted() {
            let status = Command::new("umount").arg(TRACEFS).status().unwrap();
            assert!(
                status.success(),
                "cannot unmount {TRACEFS} to test mounting it"
            );
        }
        assert!(!Path::new(TRACEFS).join("events").is_dir());
        let agents: Vec<_> = (0..8)
            .map(|i| {
                let events = dir.path().join(format!("events-{round}-{i}.jsonl"));
                let child = Command::new(DETECTOR)
                    .args(["agent", "--duration", "1", "--rotate-size", "0", "--events"])
                    .arg(&events)
                    .arg("--watch")
                    .arg(&watched)
                    .stdin(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (child, events)
            })
            .collect();
        for (child, events) in agents {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "an agent failed: {stderr}");
            let records = fs::read_to_string(&events).unwrap();
            assert!(
                records.contains("\"type\":\"ready\""),
                "no ready record: {records}"
            );
        }
    }
    assert!(tracefs_mounted(), "the agents left tracefs unmounted");
}
