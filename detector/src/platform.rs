//! What differs between the systems the scanner runs on (Linux, macOS, Windows), in one place:
//! the effective user, file owners and modes, opening a file without blocking, the home and
//! the per-user data and cache folders. Everything else in the scanner is portable and calls
//! these; `cfg` blocks stay here.
//!
//! Unix (Linux and macOS) answers from the system; on Windows there are no uids, modes,
//! FIFOs or devices in the file system, so those answers are `None` (a report shows no mode)
//! and the checks that need them are skipped. The agent (`agent/`) is Linux only and is not
//! built elsewhere.
use std::{
    fs::{DirBuilder, File, FileType, Metadata, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};

/// The effective user id; `None` where users have none (Windows).
pub fn euid() -> Option<u32> {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        Some(unsafe { libc::geteuid() })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Running as root (uid 0). Never on Windows.
pub fn is_root() -> bool {
    euid() == Some(0)
}

/// The file's `st_mode` (type and permission bits), where files have one.
pub fn mode(meta: &Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        Some(meta.mode())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The file's owner, (uid, gid), where files have one.
pub fn owner(meta: &Metadata) -> Option<(u32, u32)> {
    #[cfg(unix)]
    {
        Some((meta.uid(), meta.gid()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The file's (device, inode), where the system gives them.
pub fn file_id(meta: &Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The file's modification time.
pub fn mtime(meta: &Metadata) -> Option<DateTime<Utc>> {
    #[cfg(unix)]
    {
        DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec().clamp(0, 999_999_999) as u32)
    }
    #[cfg(not(unix))]
    {
        meta.modified().ok().map(DateTime::<Utc>::from)
    }
}

/// What kind of special file this is ("FIFO", "socket", "device"), `None` for a regular
/// file, a directory or a symlink. Windows file systems have none of these.
pub fn special_kind(file_type: FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        if file_type.is_fifo() {
            Some("FIFO")
        } else if file_type.is_socket() {
            Some("socket")
        } else if file_type.is_block_device() || file_type.is_char_device() {
            Some("device")
        } else {
            None
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file_type;
        None
    }
}

/// Open `path` for reading without ever waiting: on Unix `O_NONBLOCK` (a FIFO opens at once
/// instead of blocking until a writer comes), `O_NOCTTY`, `O_CLOEXEC`, and `O_NOFOLLOW` when
/// `follow` is false (a symlink fails as [`is_symlink_loop`]). On Windows a plain open
/// (nothing there blocks an open for reading; symlinks are followed).
pub fn open_for_reading(path: &Path, follow: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC | nofollow);
    }
    #[cfg(not(unix))]
    let _ = follow;
    options.open(path)
}

/// Whether an open or a stat failed on a symlink loop (or, for [`open_for_reading`] without
/// `follow`, on a symlink).
pub fn is_symlink_loop(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// Read exactly `buf.len()` bytes at `offset`, whatever the file's position (on Windows the
/// position moves; callers here only read at offsets).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    #[allow(unreachable_code)]
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One read of up to `buf.len()` bytes at `offset` (see [`read_exact_at`]).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// Permission bits for files and folders this process creates: applied on Unix, ignored
/// where files have no mode (Windows keeps the folder's inherited ACL, which for the user's
/// own profile is the user's).
pub trait CreateMode {
    fn unix_mode(&mut self, mode: u32) -> &mut Self;
}

impl CreateMode for OpenOptions {
    fn unix_mode(&mut self, mode: u32) -> &mut Self {
        #[cfg(unix)]
        self.mode(mode);
        #[cfg(not(unix))]
        let _ = mode;
        self
    }
}

impl CreateMode for DirBuilder {
    fn unix_mode(&mut self, mode: u32) -> &mut Self {
        #[cfg(unix)]
        self.mode(mode);
        #[cfg(not(unix))]
        let _ = mode;
        self
    }
}

/// `chmod` (the permission bits of `mode`); nothing where files have no mode.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// `fchmod` of an open file; nothing where files have no mode.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Give an open file to `owner` (uid, gid), best effort (only root may); nothing elsewhere.
pub fn set_file_owner(file: &File, owner: (u32, u32)) {
    #[cfg(unix)]
    {
        // SAFETY: fchown on a descriptor the caller owns; no memory is shared.
        let _ = unsafe { libc::fchown(std::os::fd::AsRawFd::as_raw_fd(file), owner.0, owner.1) };
    }
    #[cfg(not(unix))]
    let _ = (file, owner);
}

/// Give `path` to `owner` (uid, gid), best effort; nothing where files have no owner ids.
pub fn set_owner(path: &Path, owner: (u32, u32)) {
    #[cfg(unix)]
    {
        let _ = std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1));
    }
    #[cfg(not(unix))]
    let _ = (path, owner);
}

/// Flush every file system's buffers (`sync(2)`); on Windows nothing (a process cannot flush
/// what other processes wrote).
pub fn sync_file_systems() {
    #[cfg(unix)]
    {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
}

/// An exclusive lock on a folder, held until dropped: `flock` of the folder on Unix; on
/// Windows (where a folder cannot be locked) a lock file in it, made with `create_new`
/// (waiting while another holds it) and removed on drop.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    #[cfg(not(unix))]
    path: PathBuf,
}

impl FolderLock {
    /// The lock, or the step that failed ("open the folder", "lock the folder") and why.
    pub fn acquire(dir: &Path) -> Result<FolderLock, (&'static str, io::Error)> {
        #[cfg(unix)]
        {
            let file = File::open(dir).map_err(|e| ("open the folder", e))?;
            // SAFETY: flock on a descriptor this function owns; no memory is shared.
            if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) } != 0 {
                return Err(("lock the folder", io::Error::last_os_error()));
            }
            Ok(FolderLock { _file: file })
        }
        #[cfg(not(unix))]
        {
            let path = dir.join(".detector.lock");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(file) => return Ok(FolderLock { _file: file, path }),
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(e) => return Err(("lock the folder", e)),
                }
            }
        }
    }
}

#[cfg(not(unix))]
impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Give freed heap memory back to the system: glibc keeps it unless asked (`malloc_trim`);
/// musl's allocator (the static build) returns what it can by itself and has no such call.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The host's name.
pub fn hostname() -> Option<String> {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return None;
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        (!name.is_empty()).then_some(name)
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty())
    }
}

/// The variable that names the user's home: `HOME` on Unix, `USERPROFILE` on Windows.
pub const HOME_VAR: &str = if cfg!(windows) { "USERPROFILE" } else { "HOME" };

/// The running user's home, from [`HOME_VAR`] (as set, possibly empty).
pub fn home_var() -> Option<std::ffi::OsString> {
    std::env::var_os(HOME_VAR)
}

/// The running user's name from the environment (`USER`, `LOGNAME`; `USERNAME` on Windows).
pub fn user_var() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .or_else(|| {
            cfg!(windows)
                .then(|| std::env::var("USERNAME").ok())
                .flatten()
        })
}

/// (name, home directory) of `uid` in the password database (Unix); `None` elsewhere.
pub fn user_by_uid(uid: u32) -> Option<(String, PathBuf)> {
    #[cfg(unix)]
    {
        use std::ffi::CStr;
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r writes only into `pwd` and `buf`, whose sizes we pass, and sets
        // `result` to `&pwd` on success; the strings it points to live in `buf`.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated strings inside `buf`, which outlives these borrows.
        let (name, dir) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        Some((
            name.to_string_lossy().into_owned(),
            PathBuf::from(dir.to_string_lossy().into_owned()),
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = uid;
        None
    }
}

/// Where the running user's application data lives, for `detector`'s own files (the
/// inventory): `$XDG_DATA_HOME` (when absolute), else `~/.local/share` on Linux;
/// `~/Library/Application Support` on macOS; `%LOCALAPPDATA%` on Windows.
pub fn user_data_dir() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        home_var().map(|h| Path::new(&h).join("Library/Application Support"))
    } else if cfg!(windows) {
        local_app_data()
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home_var().map(|h| Path::new(&h).join(".local/share")))
    }
}

/// Where the running user's caches live: `$XDG_CACHE_HOME` (when absolute), else `~/.cache`
/// on Linux; `~/Library/Caches` on macOS; `%LOCALAPPDATA%` on Windows.
pub fn user_cache_dir() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        home_var().map(|h| Path::new(&h).join("Library/Caches"))
    } else if cfg!(windows) {
        local_app_data()
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home_var().map(|h| PathBuf::from(h).join(".cache")))
    }
}

/// Where the running user's configuration lives: `$XDG_CONFIG_HOME` (when absolute), else
/// `~/.config` on Linux; `~/Library/Application Support` on macOS; `%APPDATA%` on Windows.
pub fn user_config_dir() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        home_var()
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join("Library/Application Support"))
    } else if cfg!(windows) {
        std::env::var_os("APPDATA")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                home_var()
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join("AppData/Roaming"))
            })
    } else {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                home_var()
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
    }
}

/// Where applications keep their data, relative to a home (another user's too): Linux
/// `.local/share`, macOS `Library/Application Support`, Windows `AppData/Local`.
pub const DATA_UNDER_HOME: &str = if cfg!(target_os = "macos") {
    "Library/Application Support"
} else if cfg!(windows) {
    "AppData/Local"
} else {
    ".local/share"
};

/// `%LOCALAPPDATA%`, else `%USERPROFILE%\AppData\Local`.
fn local_app_data() -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home_var().map(|h| Path::new(&h).join("AppData/Local")))
}

/// The root system-wide configs are relative to (`etc/…`, `ProgramData/…` in the
/// catalogue): `/`, or the system drive on Windows (`%SystemDrive%\`, else `C:\`).
pub fn system_root() -> PathBuf {
    if cfg!(windows) {
        let drive = std::env::var("SystemDrive").unwrap_or_else(|_| "C:".to_string());
        PathBuf::from(format!("{drive}\\"))
    } else {
        PathBuf::from("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_has_its_mode_where_modes_exist() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("private");
        DirBuilder::new().unix_mode(0o700).create(&folder).unwrap();
        let path = folder.join("key");
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .unix_mode(0o600)
            .open(&path)
            .unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let folder_meta = std::fs::metadata(&folder).unwrap();
        if cfg!(unix) {
            assert_eq!(mode(&meta).map(|m| m & 0o777), Some(0o600));
            assert_eq!(mode(&folder_meta).map(|m| m & 0o777), Some(0o700));
            assert!(owner(&meta).is_some() && file_id(&meta).is_some());
            set_mode(&path, 0o640).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(mode(&meta).map(|m| m & 0o777), Some(0o640));
        } else {
            assert_eq!(mode(&meta), None);
            assert_eq!(owner(&meta), None);
        }
        assert!(mtime(&meta).is_some());
        assert_eq!(special_kind(meta.file_type()), None);
        let file = open_for_reading(&path, false).unwrap();
        drop(file);
    }

    #[cfg(unix)]
    #[test]
    fn unix_answers_come_from_the_system() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(euid(), Some(unsafe { libc::geteuid() }));
        assert_eq!(is_root(), euid() == Some(0));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert_eq!(special_kind(meta.file_type()), Some("FIFO"));
        // Opening a FIFO with no writer does not wait.
        drop(open_for_reading(&fifo, true).unwrap());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let refused = open_for_reading(&link, false).unwrap_err();
        assert!(is_symlink_loop(&refused));
        assert_eq!(HOME_VAR, "HOME");
        assert_eq!(system_root(), PathBuf::from("/"));
    }

    #[test]
    fn a_folder_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FolderLock::acquire(dir.path()).unwrap();
        drop(lock);
        let again = FolderLock::acquire(dir.path()).unwrap();
        drop(again);
        // Nothing is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reads_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = [0u8; 3];
        read_exact_at(&file, &mut buf, 4).unwrap();
        assert_eq!(&buf, b"456");
        assert!(read_exact_at(&file, &mut buf, 9).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_keeps_the_xdg_folders() {
        // Only when the variables are unset or absolute do they count; the test reads them
        // as they are rather than changing the process's environment.
        let home = home_var().map(PathBuf::from);
        let xdg = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        assert_eq!(
            user_data_dir(),
            xdg("XDG_DATA_HOME").or_else(|| home.as_ref().map(|h| h.join(".local/share")))
        );
        assert_eq!(
            user_cache_dir(),
            xdg("XDG_CACHE_HOME").or_else(|| home.as_ref().map(|h| h.join(".cache")))
        );
    }
}
