//! What later layers do to a file of an earlier one. Layers stack like an overlay filesystem:
//! a `.wh.NAME` whiteout deletes NAME (and everything under it) from the layers below, a
//! `.wh..wh..opq` marker hides everything below in its directory, and any entry at the same
//! path replaces the lower file. Whatever a later layer hides is still in the earlier layer's
//! tar, readable by anyone who pulls the image: so it is reported, with the layer that hid it.
//!
//! When a layer's files are read, every layer above it has been [`Overlay::apply`]-ed (an
//! image in a store is read from its top layer down; a stream's layers get the changes its
//! first read kept), and [`Overlay::hidden`] answers at once.
use std::collections::HashMap;

/// The changes one layer makes to the layers below it.
#[derive(Debug, Default, Clone)]
pub struct LayerChanges {
    /// Paths deleted by a `.wh.NAME` whiteout.
    pub whiteouts: Vec<String>,
    /// Directories made opaque by `.wh..wh..opq`.
    pub opaque: Vec<String>,
    /// Every other entry: (path, is a directory).
    pub entries: Vec<(String, bool)>,
}

impl LayerChanges {
    /// Record one tar entry of the layer at `path` (normalised, no leading `/`).
    pub fn record(&mut self, path: &str, is_dir: bool) -> Entry {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path),
        };
        if name == ".wh..wh..opq" {
            self.opaque.push(dir.to_string());
            return Entry::Whiteout;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            self.whiteouts.push(join(dir, deleted));
            return Entry::Whiteout;
        }
        self.entries.push((path.to_string(), is_dir));
        Entry::Content
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A whiteout or opaque marker: not a file of the image.
    Whiteout,
    Content,
}

/// How a later layer hides a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A whiteout of the file or of a directory above it, or an opaque directory above it.
    Deleted,
    /// An entry at the same path (or a non-directory in place of a directory above it).
    Replaced,
}

/// The layer (by position, 0 = base) that hides a file first, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hidden {
    pub layer: usize,
    pub how: How,
}

#[derive(Debug, Clone, Copy)]
enum Change {
    /// Whiteout: this path and everything under it.
    Deleted,
    /// A file, symlink or other non-directory: this path and everything under it.
    ReplacedSubtree,
    /// A directory: replaces a lower non-directory at this very path only.
    ReplacedExact,
}

/// The changes of the layers above the one being read, each path mapped to the lowest of
/// those layers that touches it (the first to hide a file from the layers below).
#[derive(Debug, Default)]
pub struct Overlay {
    changes: HashMap<String, (usize, Change)>,
    opaque: HashMap<String, usize>,
}

impl Overlay {
    /// Add layer `index`'s changes. Layers are applied from the top down, so a later call
    /// always has a lower index and takes precedence.
    pub fn apply(&mut self, index: usize, changes: &LayerChanges) {
        for (path, is_dir) in &changes.entries {
            let change = if *is_dir {
                Change::ReplacedExact
            } else {
                Change::ReplacedSubtree
            };
            self.changes.insert(path.clone(), (index, change));
        }
        for path in &changes.whiteouts {
            self.changes.insert(path.clone(), (index, Change::Deleted));
        }
        for dir in &changes.opaque {
            self.opaque.insert(dir.clone(), index);
        }
    }

    /// The layer above that hides the file at `path`, if any.
    pub fn hidden(&self, path: &str) -> Option<Hidden> {
        let mut first: Option<Hidden> = None;
        let mut consider = |layer: usize, how: How| {
            if first.is_none_or(|f| layer < f.layer) {
                first = Some(Hidden { layer, how });
            }
        };
        if let Some(&(layer, change)) = self.changes.get(path) {
            consider(
                layer,
                match change {
                    Change::Deleted => How::Deleted,
                    Change::ReplacedSubtree | Change::ReplacedExact => How::Replaced,
                },
            );
        }
        for ancestor in ancestors(path) {
            if let Some(&(layer, change)) = self.changes.get(ancestor) {
                match change {
                    Change::Deleted => consider(layer, How::Deleted),
                    Change::ReplacedSubtree => consider(layer, How::Replaced),
                    Change::ReplacedExact => {}
                }
            }
            if let Some(&layer) = self.opaque.get(ancestor) {
                consider(layer, How::Deleted);
            }
        }
        first
    }
}

/// `a/b/c` → `a/b`, `a`, `` (the root, where an opaque marker may sit too).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.rsplit_once('/') {
            Some((dir, _)) => {
                rest = Some(dir);
                Some(dir)
            }
            None => {
                rest = None;
                Some("")
            }
        }
    })
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[&str]) -> LayerChanges {
        let mut changes = LayerChanges::default();
        for entry in entries {
            match entry.strip_suffix('/') {
                Some(dir) => changes.record(dir, true),
                None => changes.record(entry, false),
            };
        }
        changes
    }

    #[test]
    fn ancestors_end_at_the_root() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a/b", "a", ""]);
        assert_eq!(ancestors("a").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn the_lowest_hiding_layer_wins() {
        // Layer 0 has the files; 1 replaces one, 2 deletes a directory, 3 makes one opaque.
        let mut overlay = Overlay::default();
        overlay.apply(4, &layer(&["app/.env", "new.txt"]));
        overlay.apply(3, &layer(&["etc/conf/", "etc/conf/.wh..wh..opq"]));
        overlay.apply(2, &layer(&["srv/.wh.old"]));
        overlay.apply(1, &layer(&["app/", "app/.env", "srv/"]));
        let hidden = |p| overlay.hidden(p);
        assert_eq!(
            hidden("app/.env"),
            Some(Hidden {
                layer: 1,
                how: How::Replaced
            })
        );
        assert_eq!(
            hidden("srv/old/key.txt"),
            Some(Hidden {
                layer: 2,
                how: How::Deleted
            })
        );
        assert_eq!(
            hidden("etc/conf/a/b"),
            Some(Hidden {
                layer: 3,
                how: How::Deleted
            })
        );
        assert_eq!(
            hidden("etc/other"),
            None,
            "a directory entry hides nothing below"
        );
        assert_eq!(hidden("srv/keep"), None);
    }

    #[test]
    fn whiteouts_are_not_content() {
        let mut changes = LayerChanges::default();
        assert_eq!(changes.record("a/.wh.b", false), Entry::Whiteout);
        assert_eq!(changes.record(".wh..wh..opq", false), Entry::Whiteout);
        assert_eq!(changes.record("a/b", false), Entry::Content);
        assert_eq!(changes.whiteouts, ["a/b"]);
        assert_eq!(changes.opaque, [""]);
    }
}
