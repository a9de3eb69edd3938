//! Kernel side of the detector agent.
//!
//! Open watcher: programs on the exit tracepoints of `open`, `openat` and `openat2` follow the
//! returned fd to its `struct file` and inode, and look the file's identity (device + inode) up
//! in maps that user space fills. Opens of unwatched files end there: no event, no user-space
//! work. Process table: `sched_process_{exec,fork,exit}` send what user space needs to name
//! every process, including ones that are gone by the time their open is read.
//!
//! Kernel struct offsets come from user space (BTF) in the `OFFSETS` global.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_buf,
        generated::{bpf_get_current_cgroup_id, bpf_get_current_task},
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use aya_log_ebpf::warn;
use detector_common::{
    inode_bit, lost, ExecEvent, FileKey, Offsets, OpenEvent, RecordKind, Syscall, TaskEvent,
    EXEC_ARGS_LEN, INODE_BITMAP_WORDS,
};

/// Filled by user space before load (`EbpfLoader::set_global`).
#[no_mangle]
static OFFSETS: Offsets = Offsets {
    task_files: 0,
    task_real_parent: 0,
    task_tgid: 0,
    task_pid: 0,
    task_mm: 0,
    files_fdt: 0,
    fdtable_fd: 0,
    fdtable_max_fds: 0,
    file_inode: 0,
    file_flags: 0,
    inode_ino: 0,
    inode_sb: 0,
    sb_dev: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    tp_exec_filename: 0,
    tp_exit_group_dead: 0,
};

/// All records, in one ring so that an exec is always read before the opens that follow it.
/// Its size is set by user space at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

/// A bitmap of watched inode numbers: the cheap first test, no hashing, no device read.
#[map]
static INODE_BITMAP: Array<u64> = Array::with_max_entries(INODE_BITMAP_WORDS, 0);

/// Full identities of watched files.
#[map]
static WATCHED: HashMap<FileKey, u32> = HashMap::with_max_entries(1 << 16, 0);

/// Failed ring-buffer reserves, by `detector_common::lost` slot.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::SLOTS, 0);

macro_rules! offset {
    ($field:ident) => {{
        // SAFETY: reading our own global; volatile so the loader-set value is not
        // const-folded.
        #[allow(unused_unsafe)]
        let value = unsafe { core::ptr::read_volatile(&OFFSETS.$field) };
        value as usize
    }};
}

#[inline(always)]
fn read<T>(base: *const u8, offset: usize) -> Result<T, i64> {
    // SAFETY: bpf_probe_read_kernel copes with any address; a bad one is an error, not a fault.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset) as *const T).map_err(|e| e as i64) }
}

#[inline(always)]
fn count_lost(slot: u32) {
    if let Some(counter) = LOST.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, tracepoint programs do not migrate while running.
        unsafe { *counter += 1 };
    }
}

#[tracepoint]
pub fn detector_exit_open(ctx: TracePointContext) -> u32 {
    let _ = on_open_exit(&ctx, Syscall::Open.code());
    0
}

#[tracepoint]
pub fn detector_exit_openat(ctx: TracePointContext) -> u32 {
    let _ = on_open_exit(&ctx, Syscall::Openat.code());
    0
}

#[tracepoint]
pub fn detector_exit_openat2(ctx: TracePointContext) -> u32 {
    let _ = on_open_exit(&ctx, Syscall::Openat2.code());
    0
}

/// `long ret` of every `sys_exit_*` record.
const SYSCALL_RET_OFFSET: usize = 16;

#[inline(always)]
fn on_open_exit(ctx: &TracePointContext, syscall: u32) -> Result<(), i64> {
    // SAFETY: the syscall exit record always has `ret` at this offset.
    let ret: i64 = unsafe { ctx.read_at(SYSCALL_RET_OFFSET).map_err(|e| e as i64)? };
    if ret < 0 {
        return Ok(());
    }
    // SAFETY: the helper returns the running task; we only pass it to probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let files: *const u8 = read(task, offset!(task_files))?;
    let fdt: *const u8 = read(files, offset!(files_fdt))?;
    let fd_array: *const u8 = read(fdt, offset!(fdtable_fd))?;
    let file: *const u8 = read(fd_array, (ret as usize) * 8)?;
    let inode: *const u8 = read(file, offset!(file_inode))?;
    let ino: u64 = read(inode, offset!(inode_ino))?;
    let (word, bit) = inode_bit(ino);
    match INODE_BITMAP.get(word) {
        Some(bits) if bits & bit != 0 => {}
        _ => return Ok(()),
    }
    let sb: *const u8 = read(inode, offset!(inode_sb))?;
    let dev: u32 = read(sb, offset!(sb_dev))?;
    let key = FileKey { ino, dev, _pad: 0 };
    // SAFETY: as above.
    if unsafe { WATCHED.get(&key) }.is_none() {
        return Ok(());
    }
    let flags: u32 = read(file, offset!(file_flags))?;
    let parent: *const u8 = read(task, offset!(task_real_parent))?;
    let ppid: u32 = read(parent, offset!(task_tgid))?;

    let Some(mut entry) = EVENTS.reserve::<OpenEvent>(0) else {
        count_lost(lost::OPEN);
        return Ok(());
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    entry.write(OpenEvent {
        kind: RecordKind::Open.code(),
        syscall,
        // SAFETY: helpers without arguments.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        ppid,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        flags,
        result: ret,
        // SAFETY: as above.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        key,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(0);
    Ok(())
}

#[tracepoint]
pub fn detector_exec(ctx: TracePointContext) -> u32 {
    if on_exec(&ctx).is_err() {
        warn!(&ctx, "detector: exec record incomplete");
    }
    0
}

#[inline(always)]
fn on_exec(ctx: &TracePointContext) -> Result<(), i64> {
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_lost(lost::PROCESS);
        return Ok(());
    };
    let event = entry.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: `event` points to a reserved, exclusively owned record of the right size; every
    // field is written before submit (the byte arrays are filled as far as they are read).
    unsafe {
        (*event).kind = RecordKind::Exec.code();
        (*event).tgid = (pid_tgid >> 32) as u32;
        (*event).ktime_ns = bpf_ktime_get_ns();
        (*event).uid = bpf_get_current_uid_gid() as u32;
        (*event).comm = bpf_get_current_comm().unwrap_or_default();
        (*event).ppid = 0;
        (*event).args_len = 0;
        (*event)._pad = 0;
        (*event).filename[0] = 0;
        (*event).args[0] = 0;
    }
    let result = fill_exec(ctx, event);
    entry.submit(0);
    result
}

#[inline(always)]
fn fill_exec(ctx: &TracePointContext, event: *mut ExecEvent) -> Result<(), i64> {
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let parent: *const u8 = read(task, offset!(task_real_parent))?;
    let ppid: u32 = read(parent, offset!(task_tgid))?;
    // SAFETY: see on_exec.
    unsafe { (*event).ppid = ppid };

    // `__data_loc char[] filename`: low 16 bits offset from the record start, high 16 length.
    let at = offset!(tp_exec_filename);
    let data_loc: u32 = unsafe { ctx.read_at(at).map_err(|e| e as i64)? };
    let name = (ctx.as_ptr() as *const u8).wrapping_add((data_loc & 0xffff) as usize);
    // SAFETY: the record lives in kernel memory; the destination is our reserved record.
    unsafe { bpf_probe_read_kernel_str_bytes(name, &mut (*event).filename).map_err(|e| e as i64)? };

    let mm: *const u8 = read(task, offset!(task_mm))?;
    let arg_start: u64 = read(mm, offset!(mm_arg_start))?;
    let arg_end: u64 = read(mm, offset!(mm_arg_end))?;
    let len = arg_end.saturating_sub(arg_start) as usize;
    let len = if len > EXEC_ARGS_LEN {
        EXEC_ARGS_LEN
    } else {
        len
    };
    // Fixed-size reads keep the verifier happy; argv is followed by envp on the stack, so a
    // full read normally succeeds, and shorter ones are the fallback near a page end.
    for size in [EXEC_ARGS_LEN, 128, 32] {
        // SAFETY: user memory of the current task, read into our record.
        let dst = unsafe { &mut (&mut (*event).args)[..size] };
        if unsafe { bpf_probe_read_user_buf(arg_start as *const u8, dst) }.is_ok() {
            let got = if len < size { len } else { size };
            unsafe { (*event).args_len = got as u32 };
            return Ok(());
        }
    }
    Err(-14)
}

/// A raw tracepoint, because only its arguments (`parent`, `child` task pointers) tell a new
/// process from a new thread; threads are left out so the process table never grows by them.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn detector_fork(ctx: RawTracePointContext) -> i32 {
    let _ = on_fork(&ctx);
    0
}

#[inline(always)]
fn on_fork(ctx: &RawTracePointContext) -> Result<(), i64> {
    // Argument 1 of sched_process_fork is the child's task_struct.
    let child: *const u8 = ctx.arg::<*const u8>(1);
    let pid: u32 = read(child, offset!(task_pid))?;
    let tgid: u32 = read(child, offset!(task_tgid))?;
    if pid == tgid {
        emit_task(RecordKind::Fork.code(), pid);
    }
    Ok(())
}

#[tracepoint]
pub fn detector_exit(ctx: TracePointContext) -> u32 {
    // SAFETY: offset from the tracepoint's own format file.
    let at = offset!(tp_exit_group_dead);
    let group_dead: u8 = unsafe { ctx.read_at(at) }.unwrap_or(0);
    if group_dead != 0 {
        emit_task(RecordKind::Exit.code(), 0);
    }
    0
}

#[inline(always)]
fn emit_task(kind: u32, arg: u32) {
    let Some(mut entry) = EVENTS.reserve::<TaskEvent>(0) else {
        count_lost(lost::PROCESS);
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    entry.write(TaskEvent {
        kind,
        tgid: (pid_tgid >> 32) as u32,
        // SAFETY: helper without arguments.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        tid: pid_tgid as u32,
        arg,
        comm: bpf_get_current_comm().unwrap_or_default(),
    });
    entry.submit(0);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
