//! Archives, opened and streamed: tar (plain, gzip, xz, zstd, bzip2), zip (jar, whl) and lone
//! compressed files, nested to a depth limit. Formats are told by their first bytes, not by
//! their names. Members are never written to disk: tar members stream; a zip needs to seek,
//! so a zip found inside another archive is read into memory, within the limits.
//!
//! Every archive met at the top of a file (on disk, or in an image layer) gets one budget
//! that its nested archives share ([`budget`]): expanded bytes (every byte any reader makes
//! beyond what it was given: decompressed data, a sparse file's holes, a zip entry's data),
//! expansion ratio and member count. Hitting a limit stops that archive (and everything
//! nested in it), not the scan, and is listed in the target's `not_scanned` (and errors).
//! A corrupt or truncated archive keeps what was readable: members before the damage (and
//! the readable part of the damaged one) are scanned, and the error is reported. So does a
//! compressed file with data after its last stream ([`compressed`]).
//!
//! Member names are only names: `../../etc/passwd` in a tar is shown as it is, never used to
//! open or write anything. A member's location reads `ARCHIVE!member!inner`; a zip entry
//! that repeats an earlier entry's name reads `ARCHIVE!name (entry N)`, N its place in the
//! central directory.
pub mod budget;
mod compressed;
mod walk;

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use self::{budget::Input, walk::Walk};
use super::{Container, Sink};

/// How many leading bytes [`sniff`] looks at (a tar header's magic ends at 262).
pub const SNIFF_LEN: usize = 512;

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

    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Zip => "zip",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
        }
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
            let buffered = io::BufReader::with_capacity(256 * 1024, file);
            let mut input = Input::new(buffered, &walk.budget, None);
            walk.archive(&mut input, format, &[], 1, None)
        }
    };
    walk.finish(outcome);
}

/// Read an archive from a stream (a member of an image layer, say). `format` is what
/// [`sniff`] said of its first bytes, which `reader` must still yield. `stored` is how many
/// bytes the stream holds as stored, when its reader may make up more (a GNU sparse member
/// of a layer, whose holes are zeros made up as it is read): those count as expanded.
pub fn scan_reader(
    reader: &mut dyn Read,
    stored: Option<u64>,
    format: Format,
    place: &ArchivePlace,
    options: &ArchiveOptions,
    sink: &dyn Sink,
) {
    let walk = Walk::new(place, options, sink, None);
    let mut input = Input::new(reader, &walk.budget, stored);
    let outcome = match format {
        Format::Zip => walk.zip_in_memory(&mut input, &[], 1, None),
        _ => walk.archive(&mut input, format, &[], 1, None),
    };
    walk.finish(outcome);
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

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    use crate::source::{test_sink::Collect, DiskFile, SkipReason};

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
        scan_reader(
            &mut Cursor::new(data),
            None,
            format,
            &place,
            &options,
            &sink,
        );
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

    /// The archive listed last as cut short, over a limit; nothing failed.
    fn cut_short(sink: &Collect, archive: &str) {
        assert_eq!(
            sink.skipped.lock().unwrap().last(),
            Some(&(PathBuf::from(archive), SkipReason::OverLimit))
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
        // Too large to hold (over `max_member_size`), then past the ratio while skipped.
        assert_eq!(
            sink.skipped.lock().unwrap()[0],
            (PathBuf::from("bomb.tgz!big.txt"), SkipReason::TooLarge)
        );
        cut_short(&sink, "bomb.tgz");

        let many = tar(&[("a", b"1"), ("b", b"2"), ("c", b"3")]);
        let limits = ArchiveLimits {
            max_members: 2,
            ..ArchiveLimits::default()
        };
        let sink = read(&many, "many.tar", limits);
        assert_eq!(shown(&sink), ["many.tar!a", "many.tar!b"]);
        cut_short(&sink, "many.tar");

        let limits = ArchiveLimits {
            max_bytes: 1024,
            ..ArchiveLimits::default()
        };
        let sink = read(&gzip(&vec![b'z'; 4096]), "z.gz", limits);
        cut_short(&sink, "z.gz");
    }

    /// A GNU sparse member of `size` bytes: `data` (512 bytes) at its start, then one hole.
    fn sparse(name: &str, data: &[u8], size: u64) -> Vec<u8> {
        let header = kit::image::sparse_member(name, data, size);
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn the_holes_of_sparse_members_are_charged() {
        // A plain tar (nothing decompressed) of one sparse member, a PiB of hole behind the
        // header of a nested tar whose one member is that hole: skipping it reads zeros.
        let mut inner = tar::Header::new_ustar();
        inner.set_path("zeros.bin").unwrap();
        inner.set_size((1 << 50) - 1024);
        inner.set_cksum();
        let bomb = sparse("disk.img", inner.as_bytes(), 1 << 50);
        let sink = read(&bomb, "sparse.tar", ArchiveLimits::default());
        assert_eq!(
            sink.skipped.lock().unwrap()[..2],
            [
                (
                    PathBuf::from("sparse.tar!disk.img!zeros.bin"),
                    SkipReason::Binary
                ),
                (PathBuf::from("sparse.tar"), SkipReason::OverLimit),
            ]
        );
        cut_short(&sink, "sparse.tar");
        // A small one is read as the file it is, holes and all: zeros, so binary.
        let small = sparse("notes.txt", &[b'x'; 512], 4096);
        let sink = read(&small, "small.tar", ArchiveLimits::default());
        assert_eq!(
            *sink.skipped.lock().unwrap(),
            [(PathBuf::from("small.tar!notes.txt"), SkipReason::Binary)]
        );
    }

    #[test]
    fn zip_members_that_repeat_a_name_are_each_read() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, data) in [("a.txt", "one\n"), ("b.txt", "two\n"), ("a.tx_", "three\n")] {
            writer.start_file(name, options).unwrap();
            writer.write_all(data.as_bytes()).unwrap();
        }
        let mut zipped = writer.finish().unwrap().into_inner();
        // Renamed in place: the writer refuses two members of one name.
        for at in 0..zipped.len() - 5 {
            if &zipped[at..at + 5] == b"a.tx_" {
                zipped[at + 4] = b't';
            }
        }
        let sink = read(&zipped, "dup.zip", ArchiveLimits::default());
        assert_eq!(
            shown(&sink),
            ["dup.zip!a.txt", "dup.zip!a.txt (entry 3)", "dup.zip!b.txt"]
        );
        assert!(sink.errors.lock().unwrap().is_empty());
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
