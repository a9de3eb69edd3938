//! The walk of one archive and everything nested in it, within one [`Budget`].
use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    io::{self, Cursor, Read, Seek},
    path::{Path, PathBuf},
};

use chrono::{DateTime, NaiveDate, Utc};
use zip::unstable::read::ZipIterable;

use super::{
    budget::{Budget, Charged},
    compressed::Concatenated,
    decompressed_name, is_package, is_swap_file, member_name, sniff, ArchiveOptions, ArchivePlace,
    Format, SNIFF_LEN,
};
use crate::source::{
    fs::{io_reason, is_binary},
    Blob, Container, DiskFile, LayerFile, Member, Origin, Provenance, Sink, Skip, SkipReason,
};

/// How many leading bytes of a member decide whether it is binary.
const BINARY_PROBE: usize = 8 * 1024;

/// Why a walk ended early: a limit stops every level; damage (reported where it was met)
/// stops the archive it is in, not the archives around it.
pub enum Stop {
    Limit,
    Damaged,
}

pub type Outcome = Result<(), Stop>;

pub struct Walk<'a> {
    place: &'a ArchivePlace,
    options: &'a ArchiveOptions,
    sink: &'a dyn Sink,
    pub budget: Budget,
    /// Where the walk was when a limit stopped it: the innermost member being read, else
    /// the archive being listed.
    cut: RefCell<Option<PathBuf>>,
}

/// A member's data from the archive's header.
struct MemberInfo<'n> {
    /// The name as stored (what the member is told by: `.env`, `id_rsa`).
    name: &'n str,
    /// The name in its location: the stored name, or for a zip entry that repeats an earlier
    /// entry's name, that name and the entry's place in the central directory.
    label: &'n str,
    mtime: Option<DateTime<Utc>>,
}

impl<'a> Walk<'a> {
    pub fn new(
        place: &'a ArchivePlace,
        options: &'a ArchiveOptions,
        sink: &'a dyn Sink,
        input_size: Option<u64>,
    ) -> Walk<'a> {
        Walk {
            place,
            options,
            sink,
            budget: Budget::new(options.limits, input_size),
            cut: RefCell::new(None),
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

    fn over_limit(&self, path: &Path, detail: &str) {
        self.sink.not_scanned(Skip {
            detail: Some(detail),
            ..Skip::new(path, SkipReason::OverLimit)
        });
    }

    /// A limit that stopped the walk: the archive is listed as cut short, with the limit and
    /// where it struck. (Damage was reported where it was met.)
    pub fn finish(&self, outcome: Outcome) {
        let Err(Stop::Limit) = outcome else { return };
        let archive = &self.place.archive;
        let place = match self.cut.borrow().as_deref() {
            Some(cut) if cut != archive => format!(", in {}", cut.display()),
            _ => String::new(),
        };
        self.over_limit(
            archive,
            &format!(
                "archive limit: {}{place}; the rest is not scanned",
                self.budget.spent()
            ),
        );
    }

    /// An I/O error: a limit hit anywhere below stops every level; anything else is
    /// reported and stops the archive it happened in.
    fn check(&self, err: io::Error, chain: &[String], context: &str) -> Outcome {
        if self.budget.hit().is_some() {
            self.cut
                .borrow_mut()
                .get_or_insert_with(|| self.shown(chain));
            return Err(Stop::Limit);
        }
        self.sink.error(
            &self.shown(chain),
            &format!("{context}: {}", io_reason(&err)),
        );
        Err(Stop::Damaged)
    }

    /// An archive of `format` read from `reader` (whose first bytes are the format's).
    /// `chain` names it inside the outermost archive; `name` is what a lone compressed
    /// file's content is called.
    pub fn archive(
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
                let trailing = Cell::new(None);
                let outcome = self.compressed(reader, format, &trailing, chain, depth, name);
                if let Some(at) = trailing.get() {
                    let what = format.name();
                    self.sink.error(
                        &self.shown(chain),
                        &format!("trailing data after the {what} stream, from byte {at} of the file: not {what}, not read"),
                    );
                }
                outcome
            }
        }
    }

    fn compressed(
        &self,
        reader: &mut dyn Read,
        format: Format,
        trailing: &Cell<Option<u64>>,
        chain: &[String],
        depth: usize,
        name: Option<&str>,
    ) -> Outcome {
        let decoder = match Concatenated::new(format, reader, trailing) {
            Ok(d) => d,
            Err(e) => return self.check(e, chain, "cannot decompress"),
        };
        let mut expanded = Charged::made(decoder, &self.budget);
        let mut head = Vec::with_capacity(SNIFF_LEN);
        if let Err(e) = (&mut expanded)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
        {
            return self.check(e, chain, "cannot decompress");
        }
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
                            .or_else(|| self.place.archive.file_name().and_then(|n| n.to_str()))
                            .map(decompressed_name)
                    })
                    .unwrap_or_else(|| "data".to_string());
                let info = MemberInfo {
                    name: &inner,
                    label: &inner,
                    mtime: None,
                };
                if let Err(e) = self.budget.member() {
                    return self.check(e, chain, "");
                }
                self.member(&mut rest, &info, chain, depth)
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
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let context = format!("corrupt or truncated tar after {read} members");
                    return self.check(e, chain, &context);
                }
            };
            if let Err(e) = self.budget.member() {
                return self.check(e, chain, "");
            }
            let header = entry.header();
            let kind = header.entry_type();
            if !(kind.is_file() || kind.is_gnu_sparse() || kind == tar::EntryType::Continuous) {
                continue;
            }
            // A sparse file stores its data, not its holes: the holes are made up as it is
            // read, and charged.
            let stored = if kind.is_gnu_sparse() {
                header.entry_size().unwrap_or(0)
            } else {
                entry.size()
            };
            let name = member_name(&entry.path_bytes());
            let mtime = header
                .mtime()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t as i64, 0));
            let info = MemberInfo {
                name: &name,
                label: &name,
                mtime,
            };
            let mut member = Charged::beyond(entry, &self.budget, stored);
            self.member(&mut member, &info, chain, depth)?;
        }
        Ok(())
    }

    /// A zip that is not a file on disk: read into memory (it needs to seek), within the
    /// budget.
    pub fn zip_in_memory(
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
            self.over_limit(
                &self.shown(chain),
                &format!("zip not opened: a zip inside an archive is read into memory, and this one is larger than the {room} bytes it may take (--max-archive-bytes, --max-file-size)"),
            );
            return Err(Stop::Damaged);
        }
        self.zip(&mut Cursor::new(data), chain, depth)
    }

    /// A zip, by its central directory: every entry, in order, those that repeat a name
    /// too (a reader that keys members by name sees only the last of them).
    pub fn zip<R: Read + Seek>(&self, reader: &mut R, chain: &[String], depth: usize) -> Outcome {
        let mut iterable = match ZipIterable::try_new(&mut *reader, zip::read::Config::default()) {
            Ok(iterable) => iterable,
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
        let files = match iterable.files() {
            Ok(files) => files,
            Err(e) => return self.check(io::Error::other(e), chain, "cannot read zip"),
        };
        let mut names = HashSet::new();
        let mut index = 0u64;
        while let Some(entry) = files.next() {
            index += 1;
            if let Err(e) = self.budget.member() {
                return self.check(e, chain, "");
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.sink.error(
                        &self.shown(chain),
                        &format!("zip central directory entry {index} unreadable ({e}); the entries after it are not read"),
                    );
                    return Err(Stop::Damaged);
                }
            };
            if entry.is_dir() || entry.is_symlink() {
                continue;
            }
            let name = member_name(entry.name_raw());
            let label = if names.insert(name.clone()) {
                name.clone()
            } else {
                format!("{name} (entry {index})")
            };
            let mut path = chain.to_vec();
            path.push(label.clone());
            if entry.encrypted() {
                self.sink
                    .error(&self.shown(&path), "encrypted zip member, not read");
                continue;
            }
            let mtime = entry.last_modified().and_then(zip_time);
            let file = match entry.with_reader(files.reader_mut(), zip::ZipReadOptions::new()) {
                Ok(file) => file,
                Err(e) => {
                    self.sink
                        .error(&self.shown(&path), &format!("zip member unreadable: {e}"));
                    continue;
                }
            };
            let info = MemberInfo {
                name: &name,
                label: &label,
                mtime,
            };
            // Zip members stand alone: a damaged one does not stop the others.
            match self.member(&mut Charged::made(file, &self.budget), &info, chain, depth) {
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
                    if file.is_dir() || file.is_symlink() {
                        continue;
                    }
                    let name = member_name(file.name_raw());
                    if file.encrypted() {
                        let mut path = chain.to_vec();
                        path.push(name);
                        self.sink
                            .error(&self.shown(&path), "encrypted zip member, not read");
                        continue;
                    }
                    let info = MemberInfo {
                        name: &name,
                        label: &name,
                        mtime: file.last_modified().and_then(zip_time),
                    };
                    self.member(&mut Charged::made(file, &self.budget), &info, chain, depth)?;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    if self.budget.hit().is_some() {
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
        path.push(info.label.to_string());
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
            let max_depth = self.options.limits.max_depth;
            if depth >= max_depth {
                self.over_limit(
                    &shown,
                    &format!(
                        "archive nested deeper than {max_depth} levels (--max-archive-depth), not opened"
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
            self.sink.not_scanned(Skip {
                detail: Some(&format!("more than {max} bytes (--max-file-size)")),
                ..Skip::new(&shown, SkipReason::TooLarge)
            });
            return Ok(());
        }
        self.sink.blob(self.blob(bytes, info, &path));
        Ok(())
    }

    /// What was read of a member before its archive failed: still scanned, unless a limit
    /// stopped it (then it may be a bomb's filler).
    fn partial(&self, bytes: Vec<u8>, info: &MemberInfo<'_>, path: &[String]) {
        if bytes.is_empty() || self.budget.hit().is_some() || is_binary(&bytes) {
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
        crate::source::fs::recognise(blob, Path::new(info.name), copy)
    }
}

fn zip_time(t: zip::DateTime) -> Option<DateTime<Utc>> {
    NaiveDate::from_ymd_opt(t.year().into(), t.month().into(), t.day().into())?
        .and_hms_opt(t.hour().into(), t.minute().into(), t.second().into())
        .map(|naive| naive.and_utc())
}
