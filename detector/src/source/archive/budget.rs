//! The one expansion budget of an archive and everything nested in it. Every reader that
//! yields more bytes than it was given is charged for the difference, whatever it is and at
//! whatever depth: a decompressor for all it yields, a tar member for what it yields beyond
//! its stored bytes (a GNU sparse file's holes, which the tar reader makes up), a zip member
//! for all it yields (zip entries may share their stored data). A reader that only passes
//! stored bytes through (a plain tar's member) costs nothing: a 5 GB plain tar is not a bomb.
use std::{
    cell::Cell,
    fmt,
    io::{self, Read},
    ops::Deref,
};

use super::ArchiveLimits;

/// The ratio limit applies once this much was expanded: small files compress well.
const RATIO_FLOOR: u64 = 4 * 1024 * 1024;

/// Which limit stopped the walk of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes,
    Ratio,
    Members,
}

pub struct Budget {
    pub limits: ArchiveLimits,
    /// Bytes of the outermost archive read so far (streams), or its size (files).
    input: Cell<u64>,
    input_size: Option<u64>,
    expanded: Cell<u64>,
    members: Cell<u64>,
    hit: Cell<Option<Limit>>,
}

impl Budget {
    pub fn new(limits: ArchiveLimits, input_size: Option<u64>) -> Budget {
        Budget {
            limits,
            input: Cell::new(0),
            input_size,
            expanded: Cell::new(0),
            members: Cell::new(0),
            hit: Cell::new(None),
        }
    }

    /// Bytes read of the outermost archive as stored.
    pub fn read_input(&self, bytes: u64) {
        self.input.set(self.input.get() + bytes);
    }

    /// `bytes` more were made by a reader; an error once a limit is passed.
    pub fn charge(&self, bytes: u64) -> io::Result<()> {
        self.check()?;
        let expanded = self.expanded.get().saturating_add(bytes);
        self.expanded.set(expanded);
        if expanded > self.limits.max_bytes {
            return self.stop(Limit::Bytes);
        }
        if expanded > RATIO_FLOOR && expanded / self.stored() >= self.limits.max_ratio {
            return self.stop(Limit::Ratio);
        }
        Ok(())
    }

    pub fn expanded(&self) -> u64 {
        self.expanded.get()
    }

    /// The stored size the ratio is taken of.
    fn stored(&self) -> u64 {
        self.input.get().max(self.input_size.unwrap_or(0)).max(1)
    }

    /// One more member, of any kind, at any depth.
    pub fn member(&self) -> io::Result<()> {
        let members = self.members.get() + 1;
        self.members.set(members);
        if members > self.limits.max_members {
            return self.stop(Limit::Members);
        }
        Ok(())
    }

    fn stop(&self, limit: Limit) -> io::Result<()> {
        self.hit.set(Some(limit));
        self.check()
    }

    /// An error once a limit was hit, which says which and how far the walk got.
    fn check(&self) -> io::Result<()> {
        match self.hit.get() {
            Some(_) => Err(io::Error::other(LimitError(self.spent()))),
            None => Ok(()),
        }
    }

    pub fn hit(&self) -> Option<Limit> {
        self.hit.get()
    }

    /// Room left for a nested zip read into memory.
    pub fn room(&self) -> u64 {
        self.limits.max_bytes.saturating_sub(self.expanded.get())
    }

    /// Which limit was hit and how far the walk got, for the report.
    pub fn spent(&self) -> String {
        let limits = &self.limits;
        let expanded = self.expanded.get();
        if limits.max_members == u64::MAX {
            // Members are not counted (an image layer's decompression).
            return format!("{}; stopped after {expanded} expanded bytes", self.limit());
        }
        format!(
            "{}; stopped after {} members and {expanded} expanded bytes",
            self.limit(),
            self.members.get().min(limits.max_members),
        )
    }

    /// Which limit was hit.
    pub fn limit(&self) -> String {
        let limits = &self.limits;
        match self.hit.get() {
            Some(Limit::Bytes) | None => format!(
                "expansion budget of {} bytes spent (--max-archive-bytes)",
                limits.max_bytes
            ),
            Some(Limit::Ratio) => format!(
                "expanded more than {}× its stored size of {} bytes (--max-archive-ratio)",
                limits.max_ratio,
                self.stored()
            ),
            Some(Limit::Members) => format!(
                "more than {} members (--max-archive-members)",
                limits.max_members
            ),
        }
    }
}

/// A read stopped by a limit: the text is [`Budget::spent`] at the time.
#[derive(Debug)]
struct LimitError(String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

/// A reader whose bytes are charged to the budget, past the first `stored` of them (the
/// bytes it was given, which cost nothing to pass on). The budget is borrowed (`&Budget`),
/// or shared (`Rc<Budget>`) by a reader that must own what it reads with.
pub struct Charged<B, R> {
    inner: R,
    budget: B,
    stored: u64,
}

impl<B: Deref<Target = Budget>, R: Read> Charged<B, R> {
    /// A decompressor, or anything else all of whose bytes are made: every byte counts.
    pub fn made(inner: R, budget: B) -> Self {
        Charged {
            inner,
            budget,
            stored: 0,
        }
    }

    /// A reader of `stored` bytes as stored, which may yield more (made up) than that.
    pub fn beyond(inner: R, budget: B, stored: u64) -> Self {
        Charged {
            inner,
            budget,
            stored,
        }
    }
}

impl<B: Deref<Target = Budget>, R: Read> Read for Charged<B, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.budget.check()?;
        let n = self.inner.read(buf)?;
        let free = self.stored.min(n as u64);
        self.stored -= free;
        self.budget.charge(n as u64 - free)?;
        Ok(n)
    }
}

/// The outermost archive as it is read: its stored bytes counted for the ratio, and any
/// bytes past its stored size (when it has one that its reader may outgrow: a sparse member
/// of an image layer) charged as made.
pub struct Input<'b, R> {
    inner: R,
    budget: &'b Budget,
    stored: u64,
}

impl<'b, R: Read> Input<'b, R> {
    pub fn new(inner: R, budget: &'b Budget, stored: Option<u64>) -> Self {
        Input {
            inner,
            budget,
            stored: stored.unwrap_or(u64::MAX),
        }
    }
}

impl<R: Read> Read for Input<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.budget.check()?;
        let n = self.inner.read(buf)?;
        let stored = self.stored.min(n as u64);
        self.stored -= stored;
        self.budget.read_input(stored);
        self.budget.charge(n as u64 - stored)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_bytes_are_charged_stored_ones_are_not() {
        let limits = ArchiveLimits {
            max_bytes: 100,
            ..ArchiveLimits::default()
        };
        let budget = Budget::new(limits, Some(10));
        let mut out = Vec::new();
        // 60 stored bytes that read as 150: 90 made.
        let mut sparse = Charged::beyond(io::repeat(0).take(150), &budget, 60);
        sparse.read_to_end(&mut out).unwrap();
        assert_eq!(budget.expanded.get(), 90);
        let mut made = Charged::made(io::repeat(1).take(50), &budget);
        assert!(made.read_to_end(&mut out).is_err());
        assert_eq!(budget.hit(), Some(Limit::Bytes));
        // Once hit, nothing more is read anywhere.
        let mut stored = Charged::beyond(&b"abc"[..], &budget, 3);
        let err = stored.read(&mut [0; 3]).unwrap_err();
        // The error says which limit, as the report does.
        assert!(err.to_string().contains("--max-archive-bytes"), "{err}");
        assert!(budget.spent().contains("--max-archive-bytes"));
    }
}
