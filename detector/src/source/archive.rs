//! Archives, opened and streamed: tar (plain, gzip, xz, zstd, bzip2), zip (jar, whl) and lone
//! compressed files, nested to a depth limit. Formats are told by their first bytes, not by
//! their names. Members are never written to disk: tar members stream; a zip needs to seek,
//! so a zip found inside another archive is read into memory, within the limits.
//!
//! Every archive met at the top of a file (on disk, or in an image layer) gets one budget
//! that its nested archives share: expanded bytes, expansion ratio and member count. Hitting
//! a limit stops that archive (and everything nested in it), not the scan, and is reported.
//! A corrupt or truncated archive keeps what was readable: members before the damage (and
//! the readable part of the damaged one) are scanned, and the error is reported.
//!
//! Member names are only names: `../../etc/passwd` in a tar is shown as it is, never used to
//! open or write anything. A member's location reads `ARCHIVE!member!inner`.
use std::{
    cell::Cell,
    fmt,
    fs::File,
    io::{self, Cursor, Read, Seek},
    path::{Path, PathBuf},
};

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    fs::is_binary, Blob, Container, DiskFile, LayerFile, Member, Origin, Provenance, Sink,
    SkipReason,
};

/// How many leading bytes [`sniff`] looks at (a tar header's magic ends at 262).
pub const SNIFF_LEN: usize = 512;
/// How many leading bytes of a member decide whether it is binary.
const BINARY_PROBE: usize = 8 * 1024;
/// The ratio limit applies once this much was expanded: small files compress well.
const RATIO_FLOOR: u64 = 4 * 1024 * 1024;

pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_MAX_RATIO: u64 = 100;
pub const DEFAULT_MAX_MEMBERS: u64 = 100_000;
pub const DEFAULT_MAX_DEPTH: usize = 4;

/// Limits on what one archive (with everything nested in it) may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Bytes produced by decompression, all nesting levels together.
    pub max_bytes: u64,
    /// Expanded bytes per byte of the archive as stored.
    pub max_ratio: u64,
    /// Entries of every kind, all nesting levels together.
    pub max_members: u64,
    /// Archives inside archives: 1 opens only the outermost; 0 opens none.
    pub max_depth: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_ratio: DEFAULT_MAX_RATIO,
            max_members: DEFAULT_MAX_MEMBERS,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// An archive format, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Format {
    fn is_compression(self) -> bool {
        !matches!(self, Format::Tar | Format::Zip)
    }
}

/// The archive format `head` (the first bytes of a file, up to [`SNIFF_LEN`]) starts, if any.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Format::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
    {
        Some(Format::Bzip2)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if is_tar_header(head) {
        Some(Format::Tar)
    } else {
        None
    }
}

/// A ustar/GNU magic, or (old v7 tars have none) a header whose checksum adds up.
fn is_tar_header(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    let field = &head[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    head[0] != 0 && stored == sum
}

/// Where an archive is, and what its members inherit.
#[derive(Debug, Clone)]
pub struct ArchivePlace {
    /// The archive as its source locates it (a path on disk, a path inside an image layer):
    /// members are shown as `ARCHIVE!member`.
    pub archive: PathBuf,
    /// What holds the archive: a file on disk (its mtime, mode, inode) or a file in an image
    /// layer. Its time stands for members that carry none.
    pub container: Container,
    /// The project and scanned directory of the archive, which its members share.
    pub project: String,
    pub root: PathBuf,
}

/// What reading members needs besides the limits.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveOptions {
    pub limits: ArchiveLimits,
    /// Members larger than this are skipped (their bytes would be held in memory).
    pub max_member_size: u64,
}

/// Read an archive from a file on disk (zip seeks in it; the rest streams).
pub fn scan_file(
    mut file: File,
    format: Format,
    place: &ArchivePlace,
    options: &ArchiveOptions,
    sink: &dyn Sink,
) {
    let size = file.metadata().map(|m| m.len()).ok();
    let walk = Walk::new(place, options, sink, size);
    let outcome = match format {
        Format::Zip => walk.zip(&mut file, &[], 1),
        _ => {
            let mut input = Counted {
                inner: io::BufReader::with_capacity(256 * 1024, file),
                count: &walk.budget.input,
            };
            walk.archive(&mut input, format, &[], 1, None)
        }
    };
    walk.finish(outcome);
}

/// Read an archive from a stream (a member of an image layer, say). `format` is what
/// [`sniff`] said of its first bytes, which `reader` must still yield.
pub fn scan_reader(
    reader: &mut dyn Read,
    format: Format,
    place: &ArchivePlace,
    options: &ArchiveOptions,
    sink: &dyn Sink,
) {
    let walk = Walk::new(place, options, sink, None);
    let mut input = Counted {
        inner: reader,
        count: &walk.budget.input,
    };
    let outcome = match format {
        Format::Zip => walk.zip_in_memory(&mut input, &[], 1, None),
        _ => walk.archive(&mut input, format, &[], 1, None),
    };
    walk.finish(outcome);
}

/// Why the walk of one archive stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Bytes,
    Ratio,
    Members,
}

/// The shared budget of one archive and everything nested in it.
struct Budget {
    limits: ArchiveLimits,
    /// Bytes of the outermost archive read so far (streams), or its size (files).
    input: Cell<u64>,
    input_size: Option<u64>,
    expanded: Cell<u64>,
    members: Cell<u64>,
    hit: Cell<Option<Limit>>,
}

impl Budget {
    fn expand(&self, bytes: u64) -> io::Result<()> {
        let expanded = self.expanded.get() + bytes;
        self.expanded.set(expanded);
        let stored = self.input.get().max(self.input_size.unwrap_or(0)).max(1);
        if expanded > self.limits.max_bytes {
            return self.stop(Limit::Bytes);
        }
        if expanded > RATIO_FLOOR && expanded / stored >= self.limits.max_ratio {
            return self.stop(Limit::Ratio);
        }
        Ok(())
    }

    fn member(&self) -> io::Result<()> {
        let members = self.members.get() + 1;
        self.members.set(members);
        if members > self.limits.max_members {
            return self.stop(Limit::Members);
        }
        Ok(())
    }

    fn stop(&self, limit: Limit) -> io::Result<()> {
        self.hit.set(Some(limit));
        Err(io::Error::other(LimitError))
    }

    /// Room left for a nested zip read into memory.
    fn room(&self) -> u64 {
        self.limits.max_bytes.saturating_sub(self.expanded.get())
    }
}

#[derive(Debug)]
struct LimitError;

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("archive limit reached")
    }
}

impl std::error::Error for LimitError {}

/// Counts the bytes read through it.
struct Counted<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Charges what a decompressor produces to the budget, and fails once a limit is hit.
struct Expanding<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for Expanding<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.budget.hit.get().is_some() {
            return Err(io::Error::other(LimitError));
        }
        let n = self.inner.read(buf)?;
        self.budget.expand(n as u64)?;
        Ok(n)
    }
}

/// Why a walk ended early: a limit stops every level; damage (reported where it was met)
/// stops the archive it is in, not the archives around it.
enum Stop {
    Limit,
    Damaged,
}

type Outcome = Result<(), Stop>;

struct Walk<'a> {
    place: &'a ArchivePlace,
    options: &'a ArchiveOptions,
    sink: &'a dyn Sink,
    budget: Budget,
}

/// A member's data from the archive's header.
struct MemberInfo<'n> {
    name: &'n str,
    mtime: Option<DateTime<Utc>>,
}

impl<'a> Walk<'a> {
    fn new(
        place: &'a ArchivePlace,
        options: &'a ArchiveOptions,
        sink: &'a dyn Sink,
        input_size: Option<u64>,
    ) -> Walk<'a> {
        Walk {
            place,
            options,
            sink,
            budget: Budget {
                limits: options.limits,
                input: Cell::new(0),
                input_size,
                expanded: Cell::new(0),
                members: Cell::new(0),
                hit: Cell::new(None),
            },
        }
    }

    /// `ARCHIVE!a!b` for the member chain `[a, b]`.
    fn shown(&self, chain: &[String]) -> PathBuf {
        let mut text = self.place.archive.as_os_str().to_owned();
        for name in chain {
            text.push("!");
            text.push(name);
        }
        PathBuf::from(text)
    }

    fn finish(&self, outcome: Outcome) {
        // Damage was reported where it was met.
        let Err(Stop::Limit) = outcome else { return };
        let limits = &self.budget.limits;
        let what = match self.budget.hit.get() {
            Some(Limit::Bytes) => format!(
                "expanded past {} bytes (--max-archive-bytes)",
                limits.max_bytes
            ),
            Some(Limit::Ratio) => format!(
                "expanded more than {}× its stored size (--max-archive-ratio)",
                limits.max_ratio
            ),
            Some(Limit::Members) | None => format!(
                "more than {} members (--max-archive-members)",
                limits.max_members
            ),
        };
        self.sink.error(
            &self.place.archive,
            &format!(
                "archive limit: {what}; stopped after {} members and {} expanded bytes, the rest is not scanned",
                self.budget.members.get().min(limits.max_members),
                self.budget.expanded.get()
            ),
        );
    }

    /// An I/O error: a limit hit anywhere below stops every level; anything else is
    /// reported and stops the archive it happened in.
    fn check(&self, err: io::Error, chain: &[String], context: &str) -> Outcome {
        if self.budget.hit.get().is_some() {
            return Err(Stop::Limit);
        }
        self.sink.error(
            &self.shown(chain),
            &format!("{context}: {}", super::fs::io_reason(&err)),
        );
        Err(Stop::Damaged)
    }

    /// An archive of `format` read from `reader` (whose first bytes are the format's).
    /// `chain` names it inside the outermost archive; `name` is what a lone compressed
    /// file's content is called.
    fn archive(
        &self,
        reader: &mut dyn Read,
        format: Format,
        chain: &[String],
        depth: usize,
        name: Option<&str>,
    ) -> Outcome {
        match format {
            Format::Tar => self.tar(reader, chain, depth),
            Format::Zip => self.zip_in_memory(reader, chain, depth, None),
            _ => {
                let decoder: Box<dyn Read + '_> = match decoder(format, reader) {
                    Ok(d) => d,
                    Err(e) => return self.check(e, chain, "cannot decompress"),
                };
                let mut expanded = Expanding {
                    inner: decoder,
                    budget: &self.budget,
                };
                let head = match read_head(&mut expanded, SNIFF_LEN) {
                    Ok(head) => head,
                    Err(e) => return self.check(e, chain, "cannot decompress"),
                };
                let mut rest = Cursor::new(head.clone()).chain(expanded);
                match sniff(&head) {
                    // `x.tar.gz`: the tar's members are the archive's.
                    Some(Format::Tar) => self.tar(&mut rest, chain, depth),
                    Some(Format::Zip) => self.zip_in_memory(&mut rest, chain, depth, None),
                    // A lone compressed file: its content is the one member.
                    _ => {
                        let inner = name
                            .map(str::to_string)
                            .or_else(|| {
                                chain
                                    .last()
                                    .map(|n| n.as_str())
                                    .or_else(|| {
                                        self.place.archive.file_name().and_then(|n| n.to_str())
                                    })
                                    .map(decompressed_name)
                            })
                            .unwrap_or_else(|| "data".to_string());
                        let info = MemberInfo {
                            name: &inner,
                            mtime: None,
                        };
                        if let Err(e) = self.budget.member() {
                            return self.check(e, chain, "");
                        }
                        self.member(&mut rest, &info, chain, depth)
                    }
                }
            }
        }
    }

    fn tar(&self, reader: &mut dyn Read, chain: &[String], depth: usize) -> Outcome {
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries() {
            Ok(entries) => entries,
            Err(e) => return self.check(e, chain, "not a readable tar"),
        };
        for (read, entry) in entries.enumerate() {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let context = format!("corrupt or truncated tar after {read} members");
                    return self.check(e, chain, &context);
                }
            };
            if let Err(e) = self.budget.member() {
                return self.check(e, chain, "");
            }
            let kind = entry.header().entry_type();
            if !(kind.is_file() || kind.is_gnu_sparse() || kind == tar::EntryType::Continuous) {
                continue;
            }
            let name = member_name(&entry.path_bytes());
            let mtime = entry
                .header()
                .mtime()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t as i64, 0));
            let info = MemberInfo { name: &name, mtime };
            self.member(&mut entry, &info, chain, depth)?;
        }
        Ok(())
    }

    /// A zip that is not a file on disk: read into memory (it needs to seek), within the
    /// budget.
    fn zip_in_memory(
        &self,
        reader: &mut dyn Read,
        chain: &[String],
        depth: usize,
        head: Option<Vec<u8>>,
    ) -> Outcome {
        let room = self
            .budget
            .room()
            .min(self.options.max_member_size.max(256 << 20));
        let mut data = head.unwrap_or_default();
        if let Err(e) = reader
            .take(room.saturating_sub(data.len() as u64) + 1)
            .read_to_end(&mut data)
        {
            return self.check(e, chain, "cannot read zip");
        }
        if data.len() as u64 > room {
            self.sink.error(
                &self.shown(chain),
                &format!("zip not opened: larger than the {room} bytes it may take in memory (--max-archive-bytes)"),
            );
            return Err(Stop::Damaged);
        }
        self.zip(&mut Cursor::new(data), chain, depth)
    }

    fn zip<R: Read + Seek>(&self, reader: &mut R, chain: &[String], depth: usize) -> Outcome {
        let mut archive = match zip::ZipArchive::new(&mut *reader) {
            Ok(archive) => archive,
            Err(e) => {
                // No central directory (truncated, or damaged at the end): read the local
                // headers in order, as far as they go.
                self.sink.error(
                    &self.shown(chain),
                    &format!("zip central directory unreadable ({e}); members read in order as far as they go"),
                );
                if let Err(e) = reader.rewind() {
                    return self.check(e, chain, "cannot read zip");
                }
                return self.zip_stream(reader, chain, depth);
            }
        };
        for index in 0..archive.len() {
            if let Err(e) = self.budget.member() {
                return self.check(e, chain, "");
            }
            let file = match archive.by_index(index) {
                Ok(file) => file,
                Err(e) => {
                    self.sink.error(
                        &self.shown(chain),
                        &format!("zip member {index} unreadable: {e}"),
                    );
                    continue;
                }
            };
            // Zip members stand alone: a damaged one does not stop the others.
            match self.zip_member(file, chain, depth) {
                Err(Stop::Limit) => return Err(Stop::Limit),
                Ok(()) | Err(Stop::Damaged) => {}
            }
        }
        Ok(())
    }

    fn zip_stream<R: Read>(&self, reader: &mut R, chain: &[String], depth: usize) -> Outcome {
        let mut read = 0u64;
        loop {
            match zip::read::read_zipfile_from_stream(reader) {
                Ok(Some(file)) => {
                    read += 1;
                    if let Err(e) = self.budget.member() {
                        return self.check(e, chain, "");
                    }
                    self.zip_member(file, chain, depth)?;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    if self.budget.hit.get().is_some() {
                        return Err(Stop::Limit);
                    }
                    self.sink.error(
                        &self.shown(chain),
                        &format!("corrupt or truncated zip after {read} members: {e}"),
                    );
                    return Err(Stop::Damaged);
                }
            }
        }
    }

    fn zip_member<R: Read>(
        &self,
        file: zip::read::ZipFile<'_, R>,
        chain: &[String],
        depth: usize,
    ) -> Outcome {
        if file.is_dir() || file.is_symlink() {
            return Ok(());
        }
        let name = member_name(file.name_raw());
        if file.encrypted() {
            let mut path = chain.to_vec();
            path.push(name);
            self.sink
                .error(&self.shown(&path), "encrypted zip member, not read");
            return Ok(());
        }
        let mtime = file.last_modified().and_then(zip_time);
        let info = MemberInfo { name: &name, mtime };
        let mut expanded = Expanding {
            inner: file,
            budget: &self.budget,
        };
        self.member(&mut expanded, &info, chain, depth)
    }

    /// One member: a nested archive (opened within the depth limit), binary (skipped) or
    /// text (handed on as a blob).
    fn member(
        &self,
        reader: &mut dyn Read,
        info: &MemberInfo<'_>,
        chain: &[String],
        depth: usize,
    ) -> Outcome {
        let mut path = chain.to_vec();
        path.push(info.name.to_string());
        let shown = self.shown(&path);
        let max = self.options.max_member_size;
        let mut bytes = Vec::new();
        if let Err(e) = reader
            .take(BINARY_PROBE.max(SNIFF_LEN) as u64)
            .read_to_end(&mut bytes)
        {
            self.partial(bytes, info, &path);
            return self.check(e, &path, "cannot read member");
        }
        if let Some(format) = sniff(&bytes) {
            if depth >= self.options.limits.max_depth {
                self.sink.error(
                    &shown,
                    &format!(
                        "archive nested deeper than {} levels (--max-archive-depth), not opened",
                        self.options.limits.max_depth
                    ),
                );
                return Ok(());
            }
            let inner_name = format
                .is_compression()
                .then(|| decompressed_name(info.name));
            let outcome = match format {
                Format::Zip => self.zip_in_memory(reader, &path, depth + 1, Some(bytes)),
                _ => {
                    let mut rest = Cursor::new(bytes).chain(reader);
                    self.archive(&mut rest, format, &path, depth + 1, inner_name.as_deref())
                }
            };
            // A damaged nested archive was reported; the one around it goes on.
            return match outcome {
                Err(Stop::Damaged) => Ok(()),
                other => other,
            };
        }
        if is_binary(&bytes) && !is_swap_file(info.name) {
            self.sink.skipped(&shown, SkipReason::Binary);
            return Ok(());
        }
        if let Err(e) = reader
            .take(max.saturating_add(1).saturating_sub(bytes.len() as u64))
            .read_to_end(&mut bytes)
        {
            self.partial(bytes, info, &path);
            return self.check(e, &path, "member cut short");
        }
        if bytes.len() as u64 > max {
            self.sink.skipped(&shown, SkipReason::TooLarge);
            return Ok(());
        }
        self.sink.blob(self.blob(bytes, info, &path));
        Ok(())
    }

    /// What was read of a member before its archive failed: still scanned, unless a limit
    /// stopped it (then it may be a bomb's filler).
    fn partial(&self, bytes: Vec<u8>, info: &MemberInfo<'_>, path: &[String]) {
        if bytes.is_empty() || self.budget.hit.get().is_some() || is_binary(&bytes) {
            return;
        }
        self.sink.blob(self.blob(bytes, info, path));
    }

    fn blob(&self, bytes: Vec<u8>, info: &MemberInfo<'_>, path: &[String]) -> Blob {
        let place = &self.place;
        let (container, archive_time) = match place.container.clone() {
            Container::File(file) => (
                Container::File(DiskFile {
                    mtime: None,
                    ..file
                }),
                file.mtime,
            ),
            Container::ImageLayer(layer) => (
                Container::ImageLayer(LayerFile {
                    mtime: None,
                    ..layer
                }),
                layer.mtime,
            ),
        };
        let blob = Blob {
            bytes,
            provenance: Provenance {
                path: self.shown(path),
                origin: Origin::ArchiveMember(Member {
                    archive: place.archive.clone(),
                    member: path.join("!"),
                    mtime: info.mtime.or(archive_time),
                    container,
                }),
                backup: None,
            },
            project: place.project.clone(),
            root: place.root.clone(),
            mcp: None,
            fields: None,
        };
        let copy = !is_package(&place.archive);
        super::fs::recognise(blob, Path::new(info.name), copy)
    }
}

/// A software package in an archive format (a jar, a wheel, …): its members are what was
/// built and shipped, not a copy of someone's files.
fn is_package(archive: &Path) -> bool {
    const PACKAGES: &[&str] = &[
        "jar", "war", "ear", "aar", "whl", "egg", "apk", "ipa", "nupkg", "crate", "gem", "vsix",
        "xpi",
    ];
    archive
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PACKAGES.iter().any(|p| e.eq_ignore_ascii_case(p)))
}

fn decoder<'r>(format: Format, reader: &'r mut dyn Read) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match format {
        // Concatenated gzip members are one stream (pigz, `cat a.gz b.gz`).
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
        Format::Tar | Format::Zip => Box::new(reader),
    })
}

/// Up to `len` leading bytes (fewer only at the end of the stream).
fn read_head(reader: &mut dyn Read, len: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(len);
    reader.take(len as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// `notes.txt.gz` → `notes.txt`, `x.tgz` → `x.tar`.
fn decompressed_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for (suffix, replacement) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".txz", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".gzip", ""),
        (".xz", ""),
        (".zst", ""),
        (".bz2", ""),
    ] {
        if lower.ends_with(suffix) && name.len() > suffix.len() {
            return format!("{}{replacement}", &name[..name.len() - suffix.len()]);
        }
    }
    format!("{name}.decompressed")
}

/// A member's name as stored, lossy UTF-8, without a leading `./` or `/`. Never used as a
/// path to open or write.
fn member_name(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let mut name: &str = &name;
    loop {
        if let Some(rest) = name.strip_prefix("./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix('/') {
            name = rest;
        } else {
            break;
        }
    }
    name.to_string()
}

/// Vim swap files hold the edited text among binary blocks: scanned anyway.
pub fn is_swap_file(name: &str) -> bool {
    let name = name.rsplit('/').next().unwrap_or(name);
    name.starts_with('.') && [".swp", ".swo", ".swn"].iter().any(|e| name.ends_with(e))
}

fn zip_time(t: zip::DateTime) -> Option<DateTime<Utc>> {
    NaiveDate::from_ymd_opt(t.year().into(), t.month().into(), t.day().into())?
        .and_hms_opt(t.hour().into(), t.minute().into(), t.second().into())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    use crate::source::test_sink::Collect;

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_old();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Written by hand: the builder refuses `..` in names.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read(data: &[u8], name: &str, limits: ArchiveLimits) -> Collect {
        let sink = Collect::default();
        let place = ArchivePlace {
            archive: PathBuf::from(name),
            container: Container::File(DiskFile::default()),
            project: String::new(),
            root: PathBuf::new(),
        };
        let options = ArchiveOptions {
            limits,
            max_member_size: 1 << 20,
        };
        let format = sniff(data).expect("an archive");
        scan_reader(&mut Cursor::new(data), format, &place, &options, &sink);
        sink
    }

    fn shown(sink: &Collect) -> Vec<String> {
        let mut names: Vec<String> = sink
            .blobs
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.provenance.path.display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn formats_are_told_by_their_bytes() {
        let plain = tar(&[("a.txt", b"x")]);
        assert_eq!(sniff(&plain), Some(Format::Tar));
        assert_eq!(sniff(&gzip(b"x")), Some(Format::Gzip));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Format::Zstd));
        assert_eq!(sniff(b"\xfd7zXZ\x00\x00"), Some(Format::Xz));
        assert_eq!(sniff(b"BZh91AY&SYrest"), Some(Format::Bzip2));
        assert_eq!(sniff(b"just text"), None);
        assert_eq!(sniff(&[0u8; 512]), None, "zeros are not a tar header");
        // A v7 tar has no magic: its checksum says it is one.
        assert_eq!(&plain[257..262], b"\0\0\0\0\0");
        assert!(is_tar_header(&plain));
    }

    #[test]
    fn members_keep_their_names_and_nesting() {
        let inner = gzip(&tar(&[("../../etc/evil.txt", b"TOKEN=1\n")]));
        let outer = tar(&[
            ("./notes.txt", b"hello\n"),
            ("bin.dat", b"a\0b"),
            ("inner.tgz", &inner),
            ("lone.txt.gz", &gzip(b"lone\n")),
        ]);
        let sink = read(&outer, "/b/home.tar", ArchiveLimits::default());
        assert_eq!(
            shown(&sink),
            [
                "/b/home.tar!inner.tgz!../../etc/evil.txt",
                "/b/home.tar!lone.txt.gz!lone.txt",
                "/b/home.tar!notes.txt",
            ]
        );
        let blobs = sink.blobs.lock().unwrap();
        let evil = blobs
            .iter()
            .find(|b| b.provenance.path.to_string_lossy().contains("evil"))
            .unwrap();
        let member = evil.provenance.origin.member().unwrap();
        assert_eq!(member.archive, Path::new("/b/home.tar"));
        assert_eq!(member.member, "inner.tgz!../../etc/evil.txt");
        assert_eq!(
            *sink.skipped.lock().unwrap(),
            [(PathBuf::from("/b/home.tar!bin.dat"), SkipReason::Binary)]
        );
        assert!(sink.errors.lock().unwrap().is_empty());
    }

    #[test]
    fn limits_stop_the_whole_archive() {
        // 32 MiB of text in a small gzip: past the ratio once 4 MiB are out.
        let bomb = gzip(&tar(&[
            ("big.txt", &vec![b'a'; 32 << 20]),
            ("after.txt", b"x"),
        ]));
        let sink = read(&bomb, "bomb.tgz", ArchiveLimits::default());
        assert!(shown(&sink).is_empty());
        let errors = sink.errors.lock().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("--max-archive-ratio"), "{errors:?}");

        let many = tar(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
        let limits = ArchiveLimits {
            max_members: 2,
            ..ArchiveLimits::default()
        };
        let sink = read(&many, "many.tar", limits);
        assert_eq!(shown(&sink), ["many.tar!a", "many.tar!b"]);
        assert!(sink.errors.lock().unwrap()[0]
            .1
            .contains("--max-archive-members"));

        let limits = ArchiveLimits {
            max_bytes: 1024,
            ..ArchiveLimits::default()
        };
        let sink = read(&gzip(&vec![b'z'; 4096]), "z.gz", limits);
        assert!(sink.errors.lock().unwrap()[0]
            .1
            .contains("--max-archive-bytes"));
    }

    #[test]
    fn a_truncated_archive_keeps_what_was_readable() {
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let whole = gzip(&tar(&[
            ("first.txt", b"first\n"),
            ("second.txt", text.as_bytes()),
        ]));
        let cut = &whole[..whole.len() / 2];
        let sink = read(cut, "cut.tgz", ArchiveLimits::default());
        assert_eq!(shown(&sink), ["cut.tgz!first.txt", "cut.tgz!second.txt"]);
        let errors = sink.errors.lock().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, PathBuf::from("cut.tgz!second.txt"));
    }

    #[test]
    fn names_of_decompressed_content() {
        assert_eq!(decompressed_name("notes.txt.gz"), "notes.txt");
        assert_eq!(decompressed_name("home.tgz"), "home.tar");
        assert_eq!(decompressed_name("blob"), "blob.decompressed");
        assert_eq!(member_name(b"./a/b"), "a/b");
        assert_eq!(member_name(b"/etc/x"), "etc/x");
        assert_eq!(member_name(b"../x"), "../x");
    }
}
