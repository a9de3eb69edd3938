//! What the programs need to know about the running kernel, found at start-up: struct member
//! offsets from BTF and tracepoint record layouts from tracefs. This table replaces
//! per-kernel-version conditions: a kernel that renames a member fails here, by name.
use std::{
    error::Error as StdError,
    ffi::CString,
    fmt, fs, io,
    num::ParseIntError,
    path::{Path, PathBuf},
};

use aya::{maps::MapError, programs::ProgramError, EbpfError};
use detector_common::Offsets;

use super::{
    btf::{Btf, BtfError},
    Attach,
};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What the running kernel does not allow or provide: BTF, tracefs and tracepoint layouts,
/// loading and attaching the programs, filling their maps.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("this kernel has no BTF ({VMLINUX_BTF} is missing): the agent needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("tracefs is not available: {} does not exist (kernel without CONFIG_TRACING?)", .0.display())]
    NoTracefs(PathBuf),
    #[error("tracefs is not mounted and mounting it on {} failed: {error} (run `mount -t tracefs tracefs {}` as root)", target.display(), target.display())]
    MountTracefs { target: PathBuf, error: io::Error },
    #[error("tracepoint {category}/{name}: cannot read {}: {error}", path.display())]
    TracepointFormat {
        category: String,
        name: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("{}: bad offset {offset:?}: {error}", path.display())]
    TracepointOffset {
        path: PathBuf,
        offset: String,
        error: ParseIntError,
    },
    #[error("tracepoint {category}/{name} has no field {field} ({})", path.display())]
    NoTracepointField {
        category: String,
        name: String,
        field: String,
        path: PathBuf,
    },
    #[error("loading the eBPF programs failed: {0} (does this kernel allow bpf()? is this root?)")]
    Load(EbpfError),
    #[error("the eBPF object has no map {0}")]
    NoMap(&'static str),
    #[error("map {name}: {error}")]
    Map { name: &'static str, error: MapError },
    #[error("the eBPF object has no program {0}")]
    NoProgram(&'static str),
    #[error("attaching {} failed: {error}", attach.describe())]
    Attach { attach: Attach, error: ProgramError },
    /// Filling or clearing the watch maps (`action` says which).
    #[error("{action}: {}", WithSources(error))]
    WatchMap {
        action: &'static str,
        error: MapError,
    },
}

/// An error followed by its sources, joined by ": ": a map operation's error keeps the
/// failing syscall's errno in its source, and the message must say it.
struct WithSources<'a>(&'a dyn StdError);

impl fmt::Display for WithSources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

type Field = fn(&mut Offsets) -> &mut u32;

/// (struct, member, where it goes).
const STRUCT_MEMBERS: &[(&str, &str, Field)] = &[
    ("task_struct", "files", |o| &mut o.task_files),
    ("task_struct", "real_parent", |o| &mut o.task_real_parent),
    ("task_struct", "tgid", |o| &mut o.task_tgid),
    ("task_struct", "pid", |o| &mut o.task_pid),
    ("task_struct", "mm", |o| &mut o.task_mm),
    ("files_struct", "fdt", |o| &mut o.files_fdt),
    ("fdtable", "fd", |o| &mut o.fdtable_fd),
    ("fdtable", "max_fds", |o| &mut o.fdtable_max_fds),
    ("file", "f_inode", |o| &mut o.file_inode),
    ("file", "f_flags", |o| &mut o.file_flags),
    ("inode", "i_ino", |o| &mut o.inode_ino),
    ("inode", "i_sb", |o| &mut o.inode_sb),
    ("super_block", "s_dev", |o| &mut o.sb_dev),
    ("mm_struct", "arg_start", |o| &mut o.mm_arg_start),
    ("mm_struct", "arg_end", |o| &mut o.mm_arg_end),
];

/// (tracepoint category, name, record field, where it goes).
const TRACEPOINT_FIELDS: &[(&str, &str, &str, Field)] = &[
    ("sched", "sched_process_exec", "filename", |o| {
        &mut o.tp_exec_filename
    }),
    ("sched", "sched_process_exit", "group_dead", |o| {
        &mut o.tp_exit_group_dead
    }),
];

/// The offsets table handed to the programs.
pub fn offsets(tracefs: &Path) -> Result<Offsets, KernelError> {
    let path = Path::new(VMLINUX_BTF);
    if !path.exists() {
        return Err(KernelError::NoBtf);
    }
    let btf = Btf::from_file(path)?;
    let mut offsets = Offsets::default();
    for (name, member, field) in STRUCT_MEMBERS {
        *field(&mut offsets) = btf.member_offset(name, member)?;
    }
    for (category, name, record_field, field) in TRACEPOINT_FIELDS {
        *field(&mut offsets) = tracepoint_field_offset(tracefs, category, name, record_field)?;
    }
    Ok(offsets)
}

/// The offset of `field` in the records of tracepoint `category/name`, from its `format` file.
pub fn tracepoint_field_offset(
    tracefs: &Path,
    category: &str,
    name: &str,
    field: &str,
) -> Result<u32, KernelError> {
    let path = tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let format = fs::read_to_string(&path).map_err(|error| KernelError::TracepointFormat {
        category: category.to_string(),
        name: name.to_string(),
        path: path.clone(),
        error,
    })?;
    for line in format.lines() {
        let line = line.trim();
        let Some(decl) = line.strip_prefix("field:") else {
            continue;
        };
        let mut parts = decl.split(';');
        let declaration = parts.next().unwrap_or_default();
        let declared_name = declaration
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .split('[')
            .next()
            .unwrap_or_default();
        if declared_name != field {
            continue;
        }
        for part in parts {
            if let Some(offset) = part.trim().strip_prefix("offset:") {
                return offset
                    .parse()
                    .map_err(|error| KernelError::TracepointOffset {
                        path,
                        offset: offset.to_string(),
                        error,
                    });
            }
        }
    }
    Err(KernelError::NoTracepointField {
        category: category.to_string(),
        name: name.to_string(),
        field: field.to_string(),
        path,
    })
}

/// Where tracefs is, mounting it when it is not (it is not mounted at boot on some hosts).
pub fn ensure_tracefs() -> Result<PathBuf, KernelError> {
    for candidate in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(candidate).join("events").is_dir() {
            return Ok(PathBuf::from(candidate));
        }
    }
    let target = Path::new("/sys/kernel/tracing");
    if !target.is_dir() {
        return Err(KernelError::NoTracefs(target.to_path_buf()));
    }
    let source = CString::new("tracefs").unwrap();
    let dir = CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            dir.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let error = io::Error::last_os_error();
        // Another process (a second agent starting at the same moment) may have mounted it
        // meanwhile: the mount then fails with EBUSY, and tracefs is there all the same.
        if target.join("events").is_dir() {
            return Ok(target.to_path_buf());
        }
        return Err(KernelError::MountTracefs {
            target: target.to_path_buf(),
            error,
        });
    }
    tracing::info!("mounted tracefs on {}", target.display());
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tracepoint_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let format = dir.path().join("events/sched/sched_process_exit");
        fs::create_dir_all(&format).unwrap();
        fs::write(
            format.join("format"),
            "name: sched_process_exit\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n",
        )
        .unwrap();
        let offset =
            |field| tracepoint_field_offset(dir.path(), "sched", "sched_process_exit", field);
        assert_eq!(offset("group_dead").unwrap(), 32);
        assert_eq!(offset("comm").unwrap(), 8);
        assert!(offset("missing")
            .unwrap_err()
            .to_string()
            .contains("no field missing"));
    }

    /// `main` prints an error with its sources: a source whose text is already in the message
    /// would be printed twice.
    #[test]
    fn map_errors_say_the_syscall_and_errno_once() {
        let error = KernelError::WatchMap {
            action: "filling the inode bitmap",
            error: MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_update_elem",
                io_error: io::Error::from_raw_os_error(libc::E2BIG),
            }),
        };
        assert_eq!(
            error.to_string(),
            "filling the inode bitmap: `bpf_map_update_elem` failed: Argument list too long (os error 7)"
        );
        assert!(error.source().is_none());
    }
}
