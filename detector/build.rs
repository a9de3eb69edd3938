//! Builds the kernel programs (`detector-ebpf`) with nightly + `-Z build-std=core` +
//! bpf-linker and hands the object to the library via `DETECTOR_EBPF_OBJECT`.
//!
//! When the eBPF toolchain is missing (a plain `cargo build` on a machine that never ran
//! `cargo xtask setup`), the build still succeeds: the binary embeds no programs and
//! `detector agent` says how to get them. Set `DETECTOR_REQUIRE_EBPF=1` to make that an error
//! (CI does, through `cargo xtask`).
//!
//! For any other target OS nothing is built: only the agent, which is Linux only, embeds the
//! object.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        println!("cargo:rerun-if-changed=build.rs");
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let object = out_dir.join("detector-ebpf.o");

    for dir in ["detector-ebpf/src", "detector-common/src"] {
        watch_tree(&root.join(dir));
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("detector-ebpf/Cargo.toml").display()
    );
    println!("cargo:rerun-if-env-changed=DETECTOR_REQUIRE_EBPF");
    println!("cargo:rerun-if-env-changed=PATH");

    let required = env::var_os("DETECTOR_REQUIRE_EBPF").is_some_and(|v| v == "1");
    match build_ebpf(&root) {
        Ok(built) => {
            fs::copy(&built, &object).expect("copy eBPF object into OUT_DIR");
        }
        Err(why) if required => panic!("building the eBPF programs failed: {why}"),
        Err(why) => {
            println!("cargo:warning=eBPF programs not built ({why}); `detector agent` will not work. Run `cargo xtask setup`.");
            fs::write(&object, b"").expect("write empty eBPF placeholder");
        }
    }
    println!("cargo:rustc-env=DETECTOR_EBPF_OBJECT={}", object.display());
}

fn build_ebpf(root: &Path) -> Result<PathBuf, String> {
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("bpf-linker is not on PATH".into());
    }
    // A target dir of its own: the outer cargo holds the lock on the workspace's.
    let target_dir = root.join("target/ebpf");
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", "build", "--release"])
        .args(["-Z", "build-std=core", "--target", "bpfel-unknown-none"])
        .args(["--package", "detector-ebpf", "--bin", "detector-ebpf"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(root);
    // Drop what the outer (stable, host) cargo set for its own rustc.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_")
            || key.starts_with("RUSTC")
            || key == "RUSTUP_TOOLCHAIN"
            || key == "RUSTFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-Cdebuginfo=2\u{1f}-Clink-arg=--btf",
    );
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("nightly cargo build failed:\n{}", tail.join("\n")));
    }
    Ok(target_dir.join("bpfel-unknown-none/release/detector-ebpf"))
}

fn watch_tree(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                watch_tree(&path);
            } else {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
