//! `cargo xtask dist`: the release binaries for every platform we ship, built on this Linux
//! machine through cargo-zigbuild (zig compiles the dependencies' C and links for each target),
//! checked, and packed.
//!
//! Layout, under the target directory (`$CARGO_TARGET_DIR` or `<workspace>/target`); tests
//! and packaging read it, so it stays exactly this:
//!
//! ```text
//! dist/<target>/detector                    the bare binary (detector.exe for Windows)
//! dist/detector-<version>-<target>.tar.gz   detector-<version>-<target>/{detector, README.md, LICENSE}
//! dist/detector-<version>-<target>.zip      the same, for Windows
//! dist/SHA256SUMS                           sha256sum's format: `sha256sum -c SHA256SUMS` in dist/
//! ```
//!
//! The Linux builds are static (musl) and embed the agent's eBPF programs (bytecode, the same
//! for every target; `DETECTOR_REQUIRE_EBPF=1` makes a missing toolchain an error). The macOS
//! builds link against the text-based framework stubs of `xtask/macos-frameworks` (no Apple SDK
//! exists here). Every binary's format is checked after the build: static ELF of the right
//! machine, Mach-O of the right CPU loading the frameworks it needs, PE for x86-64.
use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use clap::Args;
use object::{
    elf,
    macho::{self, LC_LOAD_DYLIB},
    read::{
        elf::{Dyn, ElfFile64, ProgramHeader},
        macho::{LoadCommandVariant, MachHeader as _, MachOFile64},
        pe::PeFile64,
    },
    Architecture, Endianness, FileKind, Object, ObjectKind,
};
use sha2::{Digest as _, Sha256};

use crate::{setup, target_dir, workspace_root};

/// What a target's binary must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ELF, statically linked: no program interpreter, no shared library needed.
    StaticElf(Architecture),
    /// Mach-O executable loading [`MACOS_FRAMEWORKS`].
    MachO(Architecture),
    /// PE executable.
    Pe(Architecture),
}

/// Every target `cargo xtask dist` builds, with the format its binary must have.
pub const TARGETS: &[(&str, Format)] = &[
    (
        "x86_64-unknown-linux-musl",
        Format::StaticElf(Architecture::X86_64),
    ),
    (
        "aarch64-unknown-linux-musl",
        Format::StaticElf(Architecture::Aarch64),
    ),
    ("x86_64-apple-darwin", Format::MachO(Architecture::X86_64)),
    ("aarch64-apple-darwin", Format::MachO(Architecture::Aarch64)),
    ("x86_64-pc-windows-gnu", Format::Pe(Architecture::X86_64)),
];

/// The system frameworks the macOS binary links against (their stubs are in
/// `xtask/macos-frameworks`), by install name.
pub const MACOS_FRAMEWORKS: &[&str] = &[
    "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
    "/System/Library/Frameworks/Security.framework/Versions/A/Security",
    "/System/Library/Frameworks/SystemConfiguration.framework/Versions/A/SystemConfiguration",
];

/// Files packed beside the binary when the workspace has them.
const DOCS: &[&str] = &["README.md", "LICENSE"];

#[derive(Args, Default)]
pub struct DistArgs {
    /// Targets to build (default: all five). Repeat for several.
    #[arg(long = "target")]
    targets: Vec<String>,
}

pub fn dist(args: &DistArgs) -> Result<()> {
    let targets: Vec<(&str, Format)> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets
            .iter()
            .map(|wanted| {
                TARGETS
                    .iter()
                    .find(|(name, _)| name == wanted)
                    .copied()
                    .with_context(|| {
                        let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
                        format!("unknown dist target {wanted}; known: {}", known.join(", "))
                    })
            })
            .collect::<Result<_>>()?
    };
    setup::cross_targets()?;
    setup::zig()?;
    let root = workspace_root();
    let dist_dir = target_dir().join("dist");
    let version = workspace_version(&root)?;
    for (target, format) in targets {
        let started = std::time::Instant::now();
        eprintln!("xtask dist: building {target}");
        let built = build(&root, target)
            .with_context(|| format!("xtask dist: the build for {target} failed"))?;
        check_format(&fs::read(&built)?, format).with_context(|| {
            format!(
                "xtask dist: the binary for {target} ({}) is not what it must be",
                built.display()
            )
        })?;
        let archive = package(&root, &dist_dir, &version, target, &built)
            .with_context(|| format!("xtask dist: cannot package {target}"))?;
        let shipped = dist_dir.join(target).join(binary_name(target));
        check_format(&fs::read(&shipped)?, format).with_context(|| {
            format!(
                "xtask dist: the stripped binary for {target} ({}) is not what it must be",
                shipped.display()
            )
        })?;
        eprintln!(
            "xtask dist: {target} ok in {:.0?}: {}",
            started.elapsed(),
            archive.display()
        );
    }
    write_sha256sums(&dist_dir, &version)?;
    eprintln!("xtask dist: {}", dist_dir.join("SHA256SUMS").display());
    Ok(())
}

fn workspace_version(root: &Path) -> Result<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml"))?;
    let manifest: toml::Table = manifest.parse().context("the workspace Cargo.toml")?;
    manifest
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .context("the workspace Cargo.toml has no [workspace.package] version")
}

fn binary_name(target: &str) -> &'static str {
    if target.contains("windows") {
        "detector.exe"
    } else {
        "detector"
    }
}

/// `cargo-zigbuild build --release -p detector --target T`; returns the binary.
fn build(root: &Path, target: &str) -> Result<PathBuf> {
    let bin = Path::new(setup::ZIG_VENV).join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(bin.join("cargo-zigbuild"));
    cmd.args(["build", "--release", "-p", "detector", "--target", target])
        .current_dir(root)
        .env("PATH", &path);
    if target.contains("linux") {
        cmd.env("DETECTOR_REQUIRE_EBPF", "1");
    }
    if target.contains("apple") {
        // rustc's `-L framework=DIR` is the linker's `-F DIR`. Set for this target only, so
        // build scripts and the other targets keep their flags (and their cache).
        let frameworks = root.join("xtask/macos-frameworks");
        let dir = toml::Value::String(format!("framework={}", frameworks.display()));
        cmd.arg("--config")
            .arg(format!("target.{target}.rustflags=[\"-L\", {dir}]"));
        if std::env::var_os("RUSTFLAGS").is_some()
            || std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some()
        {
            bail!(
                "RUSTFLAGS is set: it would replace the framework search path the macOS link \
                 needs; unset it for `cargo xtask dist`"
            );
        }
    }
    crate::run(&mut cmd)?;
    let built = target_dir()
        .join(target)
        .join("release")
        .join(binary_name(target));
    if !built.is_file() {
        bail!("the build succeeded but {} is missing", built.display());
    }
    Ok(built)
}

/// Checks that `bytes` is an executable of `format`.
pub fn check_format(bytes: &[u8], format: Format) -> Result<()> {
    let kind = FileKind::parse(bytes).context("not an object file cargo would build")?;
    match format {
        Format::StaticElf(arch) => {
            if kind != FileKind::Elf64 {
                bail!("expected a 64-bit ELF file, found {kind:?}");
            }
            let file = ElfFile64::<Endianness>::parse(bytes)?;
            check_architecture(file.architecture(), arch)?;
            let endian = file.endian();
            for header in file.elf_program_headers() {
                if header.p_type(endian) == elf::PT_INTERP {
                    bail!("dynamically linked: it has a program interpreter (PT_INTERP)");
                }
                let needed = header.dynamic(endian, bytes)?.unwrap_or_default();
                if needed
                    .iter()
                    .any(|entry| entry.tag32(endian) == Some(elf::DT_NEEDED as i32))
                {
                    bail!("dynamically linked: it needs shared libraries (DT_NEEDED)");
                }
            }
        }
        Format::MachO(arch) => {
            if kind != FileKind::MachO64 {
                bail!("expected a 64-bit Mach-O file, found {kind:?}");
            }
            let file = MachOFile64::<Endianness>::parse(bytes)?;
            check_architecture(file.architecture(), arch)?;
            let endian = file.endian();
            if file.macho_header().filetype(endian) != macho::MH_EXECUTE {
                bail!("not a Mach-O executable (MH_EXECUTE)");
            }
            let loaded = macho_dylibs(&file)?;
            let missing: Vec<&str> = MACOS_FRAMEWORKS
                .iter()
                .copied()
                .filter(|framework| !loaded.iter().any(|l| l == framework))
                .collect();
            if !missing.is_empty() {
                bail!(
                    "no LC_LOAD_DYLIB for {} (loaded: {})",
                    missing.join(", "),
                    loaded.join(", ")
                );
            }
        }
        Format::Pe(arch) => {
            if kind != FileKind::Pe64 {
                bail!("expected a 64-bit PE file, found {kind:?}");
            }
            let file = PeFile64::parse(bytes)?;
            check_architecture(file.architecture(), arch)?;
            if file.kind() != ObjectKind::Executable {
                bail!("a PE file but not an executable");
            }
        }
    }
    Ok(())
}

fn check_architecture(found: Architecture, wanted: Architecture) -> Result<()> {
    if found != wanted {
        bail!("built for {found:?}, wanted {wanted:?}");
    }
    Ok(())
}

/// The install names of every `LC_LOAD_DYLIB` command.
fn macho_dylibs(file: &MachOFile64<Endianness>) -> Result<Vec<String>> {
    let endian = file.endian();
    let mut commands = file.macho_load_commands()?;
    let mut names = Vec::new();
    while let Some(command) = commands.next()? {
        if command.cmd() != LC_LOAD_DYLIB {
            continue;
        }
        if let LoadCommandVariant::Dylib(dylib) = command.variant()? {
            let name = command.string(endian, dylib.dylib.name)?;
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

/// Copies the binary to `dist/<target>/` and packs it with the docs into
/// `dist/detector-<version>-<target>.tar.gz` (`.zip` for Windows); returns the archive.
fn package(
    root: &Path,
    dist_dir: &Path,
    version: &str,
    target: &str,
    built: &Path,
) -> Result<PathBuf> {
    let name = binary_name(target);
    let bare_dir = dist_dir.join(target);
    fs::create_dir_all(&bare_dir)
        .with_context(|| format!("cannot create {}", bare_dir.display()))?;
    let bare = bare_dir.join(name);
    fs::copy(built, &bare).with_context(|| format!("cannot write {}", bare.display()))?;
    strip_debug_info(target, &bare)?;

    let stem = format!("detector-{version}-{target}");
    let mut members = vec![(name.to_owned(), bare.clone(), 0o755)];
    for doc in DOCS {
        let path = root.join(doc);
        if path.is_file() {
            members.push((doc.to_string(), path, 0o644));
        }
    }
    let archive = if target.contains("windows") {
        dist_dir.join(format!("{stem}.zip"))
    } else {
        dist_dir.join(format!("{stem}.tar.gz"))
    };
    let written = if target.contains("windows") {
        write_zip(&archive, &stem, &members)
    } else {
        write_tar_gz(&archive, &stem, &members)
    };
    written.with_context(|| format!("cannot write {}", archive.display()))?;
    Ok(archive)
}

/// The release profile keeps line tables (for backtraces in development); a shipped ELF or PE
/// binary goes without them (114 MB to 26 MB for static Linux). Mach-O is left as linked: its
/// debug information is not in the binary, and an arm64 binary's ad-hoc code signature covers
/// its bytes.
fn strip_debug_info(target: &str, binary: &Path) -> Result<()> {
    if target.contains("apple") {
        return Ok(());
    }
    let strip = Path::new(setup::LLVM_PREFIX).join("bin/llvm-strip");
    crate::run(Command::new(&strip).arg("--strip-debug").arg(binary))
        .with_context(|| format!("cannot strip {}", binary.display()))
}

/// A member of an archive: its name inside the archive's top folder, the file, its mode.
type Member = (String, PathBuf, u32);

fn write_tar_gz(archive: &Path, top: &str, members: &[Member]) -> Result<()> {
    let file = fs::File::create(archive)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, path, mode) in members {
        let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mtime = fs::metadata(path)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{top}/{name}"), data.as_slice())?;
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(())
}

fn write_zip(archive: &Path, top: &str, members: &[Member]) -> Result<()> {
    let file = fs::File::create(archive)?;
    let mut zip = zip::ZipWriter::new(file);
    for (name, path, mode) in members {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        zip.start_file(format!("{top}/{name}"), options)?;
        let mut data = Vec::new();
        fs::File::open(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .read_to_end(&mut data)?;
        zip.write_all(&data)?;
    }
    zip.finish()?.sync_all()?;
    Ok(())
}

/// Writes `dist/SHA256SUMS` over what `dist/` holds for this version: every archive and every
/// bare binary, in sha256sum's format (`<hex>  <path>`, paths relative to `dist/`).
fn write_sha256sums(dist_dir: &Path, version: &str) -> Result<()> {
    let mut files = Vec::new();
    for (target, _) in TARGETS {
        let bare = format!("{target}/{}", binary_name(target));
        for candidate in [
            bare,
            format!("detector-{version}-{target}.tar.gz"),
            format!("detector-{version}-{target}.zip"),
        ] {
            if dist_dir.join(&candidate).is_file() {
                files.push(candidate);
            }
        }
    }
    files.sort();
    let sums = sha256sums(dist_dir, &files)?;
    let path = dist_dir.join("SHA256SUMS");
    fs::write(&path, sums).with_context(|| format!("cannot write {}", path.display()))
}

/// `sha256sum`'s output for `files` (relative to `dir`): one `<hex>  <name>` line each.
pub fn sha256sums(dir: &Path, files: &[String]) -> Result<String> {
    let mut out = String::new();
    for name in files {
        let path = dir.join(name);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for byte in Sha256::digest(&bytes) {
            out.push_str(&format!("{byte:02x}"));
        }
        out.push_str("  ");
        out.push_str(name);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256sums_has_sha256sum_format_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a.tar.gz"), b"").unwrap();
        fs::write(dir.path().join("sub/detector"), b"abc").unwrap();
        let files = vec!["a.tar.gz".to_owned(), "sub/detector".to_owned()];
        let sums = sha256sums(dir.path(), &files).unwrap();
        // The well-known digests of "" and "abc".
        assert_eq!(
            sums,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.tar.gz\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  sub/detector\n"
        );
        fs::write(dir.path().join("SHA256SUMS"), &sums).unwrap();
        let checked = Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(dir.path())
            .output();
        match checked {
            Ok(output) => assert!(output.status.success(), "{output:?}"),
            Err(_) if std::env::var_os("CI").is_none() => {
                eprintln!("sha256sum is not installed; format checked by value only")
            }
            Err(e) => panic!("sha256sum: {e}"),
        }
    }

    #[test]
    fn archives_hold_the_top_folder_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("detector");
        fs::write(&bin, b"binary").unwrap();
        let readme = dir.path().join("README.md");
        fs::write(&readme, b"readme").unwrap();
        let members = vec![
            ("detector".to_owned(), bin, 0o755),
            ("README.md".to_owned(), readme, 0o644),
        ];

        let tgz = dir.path().join("x.tar.gz");
        write_tar_gz(&tgz, "detector-1-t", &members).unwrap();
        let gz = flate2::read::GzDecoder::new(fs::File::open(&tgz).unwrap());
        let mut tar = tar::Archive::new(gz);
        let mut seen = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            let path = entry.path().unwrap().display().to_string();
            seen.push((path, entry.header().mode().unwrap(), body));
        }
        assert_eq!(
            seen,
            [
                ("detector-1-t/detector".into(), 0o755, "binary".into()),
                ("detector-1-t/README.md".into(), 0o644, "readme".into()),
            ]
        );

        let zip_path = dir.path().join("x.zip");
        write_zip(&zip_path, "detector-1-t", &members).unwrap();
        let mut zip = zip::ZipArchive::new(fs::File::open(&zip_path).unwrap()).unwrap();
        let mut exe = zip.by_name("detector-1-t/detector").unwrap();
        assert_eq!(exe.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut body = String::new();
        exe.read_to_string(&mut body).unwrap();
        assert_eq!(body, "binary");
    }

    /// This test binary is a dynamically linked x86-64 (or other host) ELF: the checker must
    /// refuse it as a static musl binary, and as any other format.
    #[test]
    fn format_checker_refuses_a_dynamic_elf_and_wrong_formats() {
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let err = check_format(&me, Format::StaticElf(host_architecture()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("dynamically linked"), "{err}");
        }
        let other = if host_architecture() == Architecture::X86_64 {
            Architecture::Aarch64
        } else {
            Architecture::X86_64
        };
        assert!(check_format(&me, Format::StaticElf(other)).is_err());
        assert!(check_format(&me, Format::MachO(Architecture::X86_64)).is_err());
        assert!(check_format(&me, Format::Pe(Architecture::X86_64)).is_err());
        assert!(check_format(b"#!/bin/sh\n", Format::Pe(Architecture::X86_64)).is_err());
    }

    fn host_architecture() -> Architecture {
        if cfg!(target_arch = "aarch64") {
            Architecture::Aarch64
        } else {
            Architecture::X86_64
        }
    }

    /// The binaries `cargo xtask dist` built, when they are there (`cargo xtask test` builds
    /// them before the tests run): each is of its target's format, and the wrong one is refused.
    #[test]
    fn built_binaries_have_their_targets_format() {
        let dist_dir = target_dir().join("dist");
        for (target, format) in TARGETS {
            let path = dist_dir.join(target).join(binary_name(target));
            let Ok(bytes) = fs::read(&path) else {
                eprintln!("{} not built; skipped", path.display());
                continue;
            };
            check_format(&bytes, *format).unwrap_or_else(|e| panic!("{target}: {e:#}"));
            let wrong = match format {
                Format::Pe(arch) => Format::MachO(*arch),
                Format::MachO(arch) | Format::StaticElf(arch) => Format::Pe(*arch),
            };
            assert!(check_format(&bytes, wrong).is_err(), "{target}");
        }
        if dist_dir.join("SHA256SUMS").is_file() {
            let output = Command::new("sha256sum")
                .args(["--check", "--strict", "SHA256SUMS"])
                .current_dir(&dist_dir)
                .output()
                .expect("sha256sum (coreutils)");
            assert!(output.status.success(), "{output:?}");
        }
    }
}
