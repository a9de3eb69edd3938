//! Types shared by the kernel programs (`detector-ebpf`) and user space (`detector::agent`).
//!
//! Every struct here is `#[repr(C)]` and made of fixed-size fields only, so both sides agree
//! on the byte layout without any serialisation. Keep padding explicit.
#![no_std]

/// A `u32` from the kernel that names no value of the type it was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownValue(pub u32);

impl core::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown value {}", self.0)
    }
}

/// Kinds of records that travel through the ring buffer. Every record starts with its kind
/// as a plain `u32` (bytes from the kernel are never taken as a Rust enum); user space
/// converts it with `TryFrom`, an unknown value being an error.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Open = 1,
    Exec = 2,
    Fork = 3,
    Exit = 4,
}

impl RecordKind {
    /// The value a record carries.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u32> for RecordKind {
    type Error = UnknownValue;

    fn try_from(value: u32) -> Result<RecordKind, UnknownValue> {
        Ok(match value {
            1 => RecordKind::Open,
            2 => RecordKind::Exec,
            3 => RecordKind::Fork,
            4 => RecordKind::Exit,
            other => return Err(UnknownValue(other)),
        })
    }
}

/// The syscall an open record comes from, carried as a plain `u32` like [`RecordKind`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Syscall {
    Open = 0,
    Openat = 1,
    Openat2 = 2,
}

impl Syscall {
    pub const fn code(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u32> for Syscall {
    type Error = UnknownValue;

    fn try_from(value: u32) -> Result<Syscall, UnknownValue> {
        Ok(match value {
            0 => Syscall::Open,
            1 => Syscall::Openat,
            2 => Syscall::Openat2,
            other => return Err(UnknownValue(other)),
        })
    }
}

/// Indexes into the per-CPU `LOST` array: failed ring-buffer reserves, by record kind.
pub mod lost {
    pub const OPEN: u32 = 0;
    pub const PROCESS: u32 = 1;
    pub const SLOTS: u32 = 2;
}

pub const COMM_LEN: usize = 16;
pub const EXEC_FILENAME_LEN: usize = 256;
pub const EXEC_ARGS_LEN: usize = 512;

/// Words of the inode bitmap: the first, cheapest test of every open (an array lookup the
/// verifier inlines). A set bit only means "maybe watched"; the hash maps decide.
pub const INODE_BITMAP_WORDS: u32 = 1 << 15;

/// Bit of the inode bitmap for an inode number (Fibonacci hashing spreads sequential inodes).
#[inline(always)]
pub fn inode_bit(ino: u64) -> (u32, u64) {
    let hash = ino.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - 21);
    (
        ((hash >> 6) as u32) & (INODE_BITMAP_WORDS - 1),
        1u64 << (hash & 63),
    )
}

/// Identity of a watched file: kernel-encoded device (`MKDEV(major, minor)` = `major << 20 |
/// minor`, as in `super_block.s_dev`) and inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub ino: u64,
    pub dev: u32,
    pub _pad: u32,
}

/// Byte offsets of the kernel struct fields the programs read, computed by user space from
/// `/sys/kernel/btf/vmlinux` and set as a global before load, so one object runs on any kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub task_files: u32,
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_pid: u32,
    pub task_mm: u32,
    pub files_fdt: u32,
    pub fdtable_fd: u32,
    pub fdtable_max_fds: u32,
    pub file_inode: u32,
    pub file_flags: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    /// Field offsets inside tracepoint records, from tracefs `format` files.
    pub tp_exec_filename: u32,
    pub tp_exit_group_dead: u32,
}

/// An open of a watched file, emitted at syscall exit (the fd already refers to the file).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpenEvent {
    pub kind: u32,
    /// Which syscall ([`Syscall`]).
    pub syscall: u32,
    pub ktime_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// `file->f_flags` of the opened file (O_ACCMODE and friends).
    pub flags: u32,
    /// The syscall's return value: the new fd.
    pub result: i64,
    pub cgroup_id: u64,
    pub key: FileKey,
    pub comm: [u8; COMM_LEN],
}

/// `sched_process_exec`: the new image's path and its argv, read while the process exists.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub kind: u32,
    pub tgid: u32,
    pub ktime_ns: u64,
    pub ppid: u32,
    pub uid: u32,
    /// Bytes of `args` that hold argv (NUL-separated), at most `EXEC_ARGS_LEN`.
    pub args_len: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; EXEC_FILENAME_LEN],
    pub args: [u8; EXEC_ARGS_LEN],
}

/// `sched_process_fork` of a new process (threads are left out in the kernel) and
/// `sched_process_exit` of a whole process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskEvent {
    pub kind: u32,
    pub tgid: u32,
    pub ktime_ns: u64,
    pub tid: u32,
    /// FORK: the child's pid; EXIT: unused (0).
    pub arg: u32,
    pub comm: [u8; COMM_LEN],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data: repr(C), only integers and byte arrays, padding explicit.
    unsafe impl aya::Pod for super::FileKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Offsets {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values_convert_and_unknown_ones_are_errors() {
        for kind in [
            RecordKind::Open,
            RecordKind::Exec,
            RecordKind::Fork,
            RecordKind::Exit,
        ] {
            assert_eq!(RecordKind::try_from(kind.code()), Ok(kind));
        }
        assert_eq!(RecordKind::try_from(0), Err(UnknownValue(0)));
        for syscall in [Syscall::Open, Syscall::Openat, Syscall::Openat2] {
            assert_eq!(Syscall::try_from(syscall.code()), Ok(syscall));
        }
        assert_eq!(Syscall::try_from(7), Err(UnknownValue(7)));
    }
}
