//! Where a byte offset is, as a line and column.

/// Line and column of ascending offsets, reading each byte of the blob at most once.
#[derive(Default)]
pub struct LineCounter {
    offset: usize,
    /// Newlines before `offset`.
    newlines: usize,
    line_start: usize,
}

impl LineCounter {
    /// 1-based (line, byte column) of byte `at` of `data` (its end, past the end). Offsets that
    /// go back start the count again from the top.
    pub fn locate(&mut self, data: &[u8], at: usize) -> (usize, usize) {
        let at = at.min(data.len());
        if at < self.offset {
            *self = LineCounter::default();
        }
        let segment = &data[self.offset..at];
        if let Some(last) = memchr::memrchr(b'\n', segment) {
            self.newlines += memchr::memchr_iter(b'\n', segment).count();
            self.line_start = self.offset + last + 1;
        }
        self.offset = at;
        (self.newlines + 1, at - self.line_start + 1)
    }
}
