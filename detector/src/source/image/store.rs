//! Where an image's blobs are: members of a tar file (a `docker save` or OCI archive, read in
//! place at their offsets) or files of an OCI layout directory. Either way a blob is opened
//! by name (`abc…/layer.tar`, `blobs/sha256/abc…`) and streamed, never copied out. (The
//! daemon's stream, which cannot be read in place, is a store of its metadata members only:
//! `super::stream`.)
use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::{Component, Path, PathBuf},
};

use super::{
    error::{ArchiveError, Damage, MetadataError},
    layer::Compression,
};

/// A blob opened for reading, and its size.
pub struct Opened<'a> {
    pub reader: Box<dyn Read + Send + 'a>,
    pub size: u64,
}

pub trait Store: Sync {
    /// The blob called `name`; `Ok(None)` when there is none.
    fn open(&self, name: &str) -> io::Result<Option<Opened<'_>>>;

    /// What is wrong with the store itself (an archive cut short), when its blobs were still
    /// indexed as far as they go.
    fn damage(&self) -> Option<&Damage> {
        None
    }
}

/// How far a symlink member may lead to another before the name counts as missing.
const MAX_LINKS: usize = 8;

/// The members of one tar file, indexed by name; their data is read at its offset.
pub struct TarStore {
    file: File,
    /// name → (offset of the data, size)
    members: HashMap<String, (u64, u64)>,
    /// symlink member → its target, as a member name
    links: HashMap<String, String>,
    /// Why the index stopped before the end of the archive: the members before are read.
    damage: Option<Damage>,
}

impl TarStore {
    /// How the file at `path` is compressed as a whole, checking it is a regular file.
    pub fn compression(path: &Path) -> Result<Compression, ArchiveError> {
        let file = crate::source::fs::open_file(path).map_err(ArchiveError::Io)?;
        let meta = file.metadata().map_err(ArchiveError::Io)?;
        if meta.is_dir() {
            return Err(ArchiveError::Directory);
        }
        if !meta.is_file() {
            return Err(ArchiveError::NotRegularFile);
        }
        let mut magic = [0u8; 4];
        let n = crate::platform::read_at(&file, &mut magic, 0).map_err(ArchiveError::Io)?;
        Ok(Compression::sniff(&magic[..n]))
    }

    /// Index the uncompressed tar at `path` (see [`TarStore::compression`]).
    pub fn open_path(path: &Path) -> Result<TarStore, ArchiveError> {
        let file = crate::source::fs::open_file(path).map_err(ArchiveError::Io)?;
        TarStore::index(file)
    }

    /// Index a tar file: one pass over its headers, seeking past the data.
    pub fn index(mut file: File) -> Result<TarStore, ArchiveError> {
        file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Io)?;
        let mut members = HashMap::new();
        let mut links = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        let entries = archive.entries_with_seek().map_err(ArchiveError::NotTar)?;
        let mut seen = 0usize;
        let mut damage = None;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if seen == 0 => return Err(ArchiveError::NotTar(e)),
                // Cut short or damaged after some members (a download that stopped): keep
                // what was indexed, its blobs are read; the damage is reported.
                Err(error) => {
                    damage = Some(Damage::Corrupt {
                        members: seen,
                        error,
                    });
                    break;
                }
            };
            seen += 1;
            let Some(name) = member_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = link_target(&entry, &name) {
                        links.insert(name, target);
                    }
                }
                _ => {}
            }
        }
        if seen == 0 {
            return Err(ArchiveError::NoMembers);
        }
        if damage.is_none() {
            // The last member's header was whole but its data is cut short.
            let len = file.metadata().map_err(ArchiveError::Io)?.len();
            if let Some((name, _)) = members
                .iter()
                .filter(|(_, &(offset, size))| offset.saturating_add(size) > len)
                .min_by_key(|(_, &(offset, _))| offset)
            {
                damage = Some(Damage::EndsInside {
                    member: name.clone(),
                });
            }
        }
        Ok(TarStore {
            file,
            members,
            links,
            damage,
        })
    }

    fn resolve(&self, name: &str) -> Option<(u64, u64)> {
        resolve(&self.members, &self.links, name).map(|(_, &found)| found)
    }
}

/// The member a symlink or hard link member `name` leads to, as a member name.
pub fn link_target<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Option<String> {
    let target = entry.link_name_bytes()?;
    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
        Path::new(name)
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf()
    } else {
        PathBuf::new()
    };
    let joined = base.join(String::from_utf8_lossy(&target).as_ref());
    member_name(joined.as_os_str().as_encoded_bytes())
}

/// The member `name` is, following links (at most [`MAX_LINKS`] of them): its name and value.
pub fn resolve<'a, T>(
    members: &'a HashMap<String, T>,
    links: &'a HashMap<String, String>,
    name: &str,
) -> Option<(&'a str, &'a T)> {
    let mut name = name;
    for _ in 0..=MAX_LINKS {
        if let Some((found, value)) = members.get_key_value(name) {
            return Some((found.as_str(), value));
        }
        name = links.get(name)?;
    }
    None
}

impl Store for TarStore {
    fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    fn open(&self, name: &str) -> io::Result<Option<Opened<'_>>> {
        let Some((offset, size)) = self.resolve(name) else {
            return Ok(None);
        };
        let available = self.file.metadata()?.len().saturating_sub(offset);
        Ok(Some(Opened {
            reader: Box::new(Section {
                file: &self.file,
                pos: offset,
                // A member cut short by a truncated archive reads as far as the file goes.
                end: offset + size.min(available),
            }),
            size,
        }))
    }
}

/// A byte range of a file, read with `pread` so that many readers share one descriptor.
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = crate::platform::read_at(self.file, &mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The files of an OCI layout directory.
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: &Path) -> DirStore {
        DirStore {
            root: root.to_path_buf(),
        }
    }
}

impl Store for DirStore {
    fn open(&self, name: &str) -> io::Result<Option<Opened<'_>>> {
        // Names come from the layout's own JSON: never let one climb out of the directory.
        let Some(name) = member_name(name.as_bytes()) else {
            return Ok(None);
        };
        let path = self.root.join(name);
        let file = match crate::source::fs::open_file(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(Opened {
            reader: Box::new(file),
            size: meta.len(),
        }))
    }
}

/// A member name as the layouts write it: relative, `/`-separated, without `./`, `..` or
/// empty parts. `None` for a name that would leave the root or names nothing.
pub fn member_name(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(text.as_ref()).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Read a whole small blob (a manifest, an index, a config), refusing more than `limit` bytes.
pub fn read_small(
    store: &dyn Store,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let Some(opened) = store.open(name).map_err(MetadataError::Open)? else {
        return Ok(None);
    };
    if opened.size > limit {
        return Err(MetadataError::TooLarge {
            name: name.to_string(),
            size: opened.size,
        });
    }
    let mut bytes = Vec::with_capacity(opened.size as usize);
    opened
        .reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| MetadataError::Read {
            name: name.to_string(),
            error,
        })?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_stay_inside_the_root() {
        assert_eq!(member_name(b"./a/b").as_deref(), Some("a/b"));
        assert_eq!(member_name(b"/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(member_name(b"a/../b").as_deref(), Some("b"));
        assert_eq!(member_name(b"../x"), None);
        assert_eq!(member_name(b"./"), None);
    }

    #[test]
    fn tar_members_are_read_in_place_and_links_followed() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header.clone(), "one/layer.tar", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "two/layer.tar", "../one/layer.tar")
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let store = TarStore::index(file).unwrap();
        for name in ["one/layer.tar", "two/layer.tar"] {
            let mut text = String::new();
            let opened = store.open(name).unwrap().unwrap();
            assert_eq!(opened.size, 5);
            opened.reader.take(100).read_to_string(&mut text).unwrap();
            assert_eq!(text, "hello");
        }
        assert!(store.open("three").unwrap().is_none());
    }

    #[test]
    fn a_tar_cut_short_keeps_the_members_before_the_cut() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [("one", &b"first"[..]), ("two", &[b'x'; 2000][..])] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, data).unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        // Inside the data of `two`, then inside its header.
        for (cut, damage) in [
            (1024 + 1000, "the archive is truncated: it ends inside two"),
            (
                1024 + 100,
                "the archive is corrupt or truncated after 1 members",
            ),
        ] {
            let mut file = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut file, &bytes[..cut]).unwrap();
            let store = TarStore::index(file).unwrap();
            let found = store.damage().unwrap().to_string();
            assert!(found.starts_with(damage), "{cut}: {found}");
            let mut text = String::new();
            let opened = store.open("one").unwrap().unwrap();
            opened.reader.take(100).read_to_string(&mut text).unwrap();
            assert_eq!(text, "first");
        }
        let mut whole = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut whole, &bytes).unwrap();
        assert!(TarStore::index(whole).unwrap().damage().is_none());
    }
}
