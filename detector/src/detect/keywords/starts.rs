//! The fast way, on x86_64 with AVX2 (or AVX-512): find where a keyword may start, eight (or
//! sixteen) positions at a time, and confirm only there.
//!
//! 1. A table indexed by a hash of the three bytes at a position (ASCII case folded by setting
//!    bit 5 of every byte) holds one bit per value of the fourth byte's low five bits. It is
//!    looked up for eight or sixteen positions at once (one gather); about 2 % of the
//!    positions of source text pass.
//! 2. At those, hashed prefixes of 3, 4, 6 and 8 bytes (each keyword files its longest prefix
//!    of those lengths) are looked up one position at a time; about 0.2 % pass.
//! 3. There the anchored automaton of the keywords is walked until it dies, and every keyword
//!    that starts at the position is reported.
//!
//! Folding maps both cases of a letter to one byte, so a position where a keyword starts
//! (in any case) always passes the tables; what else passes (other bytes folded together,
//! hash collisions) is turned away by the automaton, which compares exactly.
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::Anchored;

use super::walk::Walk;
use super::Hit;
use crate::detect::error::RuleError;

/// Bit 5 set in every byte: `A` and `a` become one byte.
const FOLD: u8 = 0x20;
const FOLD_WORD: u64 = u64::from_ne_bytes([FOLD; 8]);
/// Step 1's table: 2^14 words of 32 bits (64 KiB).
const FIRST_BITS: u32 = 14;
const FIRST_MUL: u32 = 0x9E37_79B1;
/// Step 2's prefix lengths, and the bits of each one's bitmap.
const PREFIX_LENS: [usize; 4] = [3, 4, 6, 8];
const PREFIX_BITS: u32 = 16;
const PREFIX_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
/// Step 1 collects candidate positions in batches of this many groups of eight, so that the
/// loop keeps its constants in registers (a call inside it would spill them).
#[cfg(target_arch = "x86_64")]
const BATCH: usize = 256;

pub(super) struct Starts {
    /// Anchored at the position a keyword may start.
    dfa: DFA,
    start: StateID,
    /// Unanchored, for a stretch where most positions pass step 1 (a run of `A`, which starts
    /// base64 of zeros and X's bearer tokens alike): walked once over the stretch rather than
    /// from each position again.
    walk: Walk,
    first: Box<[u32]>,
    /// `PREFIX_LENS.len()` bitmaps of `2^PREFIX_BITS` bits, one after the other.
    prefixes: Box<[u64]>,
    /// How step 1 runs.
    simd: Simd,
}

/// The SIMD instructions step 1 runs on: none (one position at a time), AVX2 (eight at a
/// time), or AVX-512 with VBMI (sixteen at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only x86_64 has the SIMD ways
pub(super) enum Simd {
    None,
    Avx2,
    Avx512,
}

impl Simd {
    /// The best this CPU has.
    pub(super) fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512vbmi") {
                return Simd::Avx512;
            }
            if has!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::None
    }
}

fn first_hash(three: u32) -> usize {
    (three.wrapping_mul(FIRST_MUL) >> (32 - FIRST_BITS)) as usize
}

/// The bit of `word` (8 folded bytes, the first at the low end) in bitmap `which`.
fn prefix_bit(word: u64, which: usize) -> usize {
    let len = PREFIX_LENS[which];
    let kept = if len >= 8 {
        word
    } else {
        word & ((1u64 << (8 * len)) - 1)
    };
    (which << PREFIX_BITS) | (kept.wrapping_mul(PREFIX_MUL) >> (64 - PREFIX_BITS)) as usize
}

/// The eight bytes at `at`, folded; past the end of `data` a folded zero.
fn word_at(data: &[u8], at: usize) -> u64 {
    let eight = data
        .get(at..at.saturating_add(8))
        .and_then(|eight| <[u8; 8]>::try_from(eight).ok());
    let bytes = eight.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        let tail = data.get(at..).unwrap_or_default();
        let n = tail.len().min(8);
        bytes[..n].copy_from_slice(&tail[..n]);
        bytes
    });
    u64::from_le_bytes(bytes) | FOLD_WORD
}

impl Starts {
    /// `None` where this way cannot run: a CPU without AVX2, another architecture, or a
    /// keyword shorter than two bytes (every position could start it).
    pub(super) fn new(keywords: &[&str]) -> Result<Option<Starts>, RuleError> {
        match Simd::best() {
            Simd::None => Ok(None),
            simd => Starts::build(keywords, simd),
        }
    }

    /// As `new`, with step 1 on `simd` (at most what the CPU has), whatever that is.
    pub(super) fn build(keywords: &[&str], simd: Simd) -> Result<Option<Starts>, RuleError> {
        if keywords.iter().any(|k| k.len() < 2) {
            return Ok(None);
        }
        let (dfa, start) = super::automaton(keywords, true)?;
        let walk = Walk::new(keywords)?;
        let mut first = vec![0u32; 1 << FIRST_BITS].into_boxed_slice();
        let mut prefixes = vec![0u64; (PREFIX_LENS.len() << PREFIX_BITS) / 64].into_boxed_slice();
        let mut file_prefix = |bytes: &[u8], which: usize| {
            let bit = prefix_bit(word_at(bytes, 0), which);
            prefixes[bit / 64] |= 1 << (bit % 64);
        };
        for keyword in keywords {
            let folded: Vec<u8> = keyword.bytes().map(|b| b | FOLD).collect();
            let three = |third: u8| {
                u32::from(folded[0]) | u32::from(folded[1]) << 8 | u32::from(third) << 16
            };
            if folded.len() == 2 {
                // Any third byte (a folded zero past the end too) and any fourth.
                for third in 0..=u8::MAX {
                    first[first_hash(three(third | FOLD))] = u32::MAX;
                    file_prefix(&[folded[0], folded[1], third | FOLD], 0);
                }
                continue;
            }
            let slot = &mut first[first_hash(three(folded[2]))];
            match folded.get(3) {
                Some(fourth) => *slot |= 1 << (fourth & 31),
                None => *slot = u32::MAX,
            }
            let which = PREFIX_LENS
                .iter()
                .rposition(|&len| len <= folded.len())
                .unwrap_or(0);
            file_prefix(&folded[..PREFIX_LENS[which]], which);
        }
        Ok(Some(Starts {
            dfa,
            start,
            walk,
            first,
            prefixes,
            simd: simd.min(Simd::best()),
        }))
    }

    /// Call `on_hit` for every keyword occurrence in `data`, in order of where it starts.
    pub(super) fn find_all(&self, data: &[u8], on_hit: &mut impl FnMut(Hit)) {
        let from = match self.simd {
            Simd::None => 0,
            // SAFETY: `simd` is at most what the CPU has (see `build`).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.find_avx2(data, on_hit) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.find_avx512(data, on_hit) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => 0,
        };
        for at in from..data.len() {
            if self.first_passes(data, at) {
                self.confirm(data, at, on_hit);
            }
        }
    }

    /// Step 1 at one position, as the SIMD loop does it for eight.
    fn first_passes(&self, data: &[u8], at: usize) -> bool {
        let word = word_at(data, at);
        let three = (word & 0x00FF_FFFF) as u32;
        let fourth = (word >> 24) as u32 & 31;
        self.first[first_hash(three)] >> fourth & 1 == 1
    }

    /// Steps 2 and 3 at a position that passed step 1.
    fn confirm(&self, data: &[u8], at: usize, on_hit: &mut impl FnMut(Hit)) {
        let word = word_at(data, at);
        // All four looked up, without a branch between them.
        let filed = (0..PREFIX_LENS.len()).fold(0, |filed, which| {
            let bit = prefix_bit(word, which);
            filed | self.prefixes[bit / 64] >> (bit % 64)
        });
        if filed & 1 == 0 {
            return;
        }
        let mut state = self.start;
        for (walked, &byte) in data[at..].iter().enumerate() {
            state = self.dfa.next_state(Anchored::Yes, state, byte);
            if self.dfa.is_dead(state) {
                return;
            }
            if self.dfa.is_match(state) {
                let len = walked + 1;
                for index in 0..self.dfa.match_len(state) {
                    let keyword = self.dfa.match_pattern(state, index);
                    // A match state also lists the keywords that end here but start later
                    // (they are reported from their own start).
                    if self.dfa.pattern_len(keyword) == len {
                        on_hit(Hit {
                            keyword: keyword.as_usize(),
                            end: at + len,
                        });
                    }
                }
            }
        }
    }

    /// Step 1 over eight positions at a time while sixteen bytes are left, then steps 2 and 3
    /// at what passed. Returns the first position it did not look at.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn find_avx2(&self, data: &[u8], on_hit: &mut impl FnMut(Hit)) -> usize {
        use std::arch::x86_64::*;
        // Position k of eight gets bytes k..k+4: positions 0..4 from the low half of the
        // sixteen bytes loaded (copied to both halves), 4..8 from the high.
        let windows = _mm256_setr_epi8(
            0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, //
            4, 5, 6, 7, 5, 6, 7, 8, 6, 7, 8, 9, 7, 8, 9, 10,
        );
        let fold = _mm256_set1_epi8(FOLD as i8);
        let low_three = _mm256_set1_epi32(0x00FF_FFFF);
        let multiplier = _mm256_set1_epi32(FIRST_MUL as i32);
        let low_five = _mm256_set1_epi32(31);
        let one = _mm256_set1_epi32(1);
        let table = self.first.as_ptr().cast::<i32>();
        let mut batch = Batch::new(8);
        let mut at = 0;
        while at + 16 <= data.len() {
            // SAFETY: `at + 16 <= data.len()`, and an unaligned load is allowed.
            let bytes = unsafe { _mm_loadu_si128(data.as_ptr().add(at).cast()) };
            let words = _mm256_or_si256(
                _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), windows),
                fold,
            );
            let hashes = _mm256_srli_epi32::<{ 32 - FIRST_BITS as i32 }>(_mm256_mullo_epi32(
                _mm256_and_si256(words, low_three),
                multiplier,
            ));
            // SAFETY: every hash is below 2^FIRST_BITS, the table's length.
            let entries = unsafe { _mm256_i32gather_epi32::<4>(table, hashes) };
            let fourth = _mm256_and_si256(_mm256_srli_epi32::<24>(words), low_five);
            let passed =
                _mm256_slli_epi32::<31>(_mm256_and_si256(_mm256_srlv_epi32(entries, fourth), one));
            let mask = _mm256_movemask_ps(_mm256_castsi256_ps(passed)) as u16;
            batch.push(self, data, at, mask, on_hit);
            at += 8;
        }
        batch.confirm(self, data, on_hit);
        at
    }

    /// Step 1 over sixteen positions at a time while thirty-two bytes are left, as
    /// [`Starts::find_avx2`] does eight.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn find_avx512(&self, data: &[u8], on_hit: &mut impl FnMut(Hit)) -> usize {
        use std::arch::x86_64::*;
        // Position k of sixteen gets bytes k..k+4 of the thirty-two loaded.
        let order: [u8; 64] = std::array::from_fn(|i| (i / 4 + i % 4) as u8);
        // SAFETY: `order` is 64 bytes, and an unaligned load is allowed.
        let windows = unsafe { _mm512_loadu_si512(order.as_ptr().cast()) };
        let fold = _mm512_set1_epi8(FOLD as i8);
        let low_three = _mm512_set1_epi32(0x00FF_FFFF);
        let multiplier = _mm512_set1_epi32(FIRST_MUL as i32);
        let low_five = _mm512_set1_epi32(31);
        let one = _mm512_set1_epi32(1);
        let table = self.first.as_ptr().cast::<i32>();
        let mut batch = Batch::new(16);
        let mut at = 0;
        while at + 32 <= data.len() {
            // SAFETY: `at + 32 <= data.len()`, and an unaligned load is allowed.
            let bytes = unsafe { _mm256_loadu_si256(data.as_ptr().add(at).cast()) };
            let words = _mm512_or_si512(
                _mm512_permutexvar_epi8(windows, _mm512_castsi256_si512(bytes)),
                fold,
            );
            let hashes = _mm512_srli_epi32::<{ 32 - FIRST_BITS }>(_mm512_mullo_epi32(
                _mm512_and_si512(words, low_three),
                multiplier,
            ));
            // SAFETY: every hash is below 2^FIRST_BITS, the table's length.
            let entries = unsafe { _mm512_i32gather_epi32::<4>(hashes, table) };
            let fourth = _mm512_and_si512(_mm512_srli_epi32::<24>(words), low_five);
            let mask = _mm512_test_epi32_mask(_mm512_srlv_epi32(entries, fourth), one);
            batch.push(self, data, at, mask, on_hit);
            at += 16;
        }
        batch.confirm(self, data, on_hit);
        at
    }
}

/// Positions that passed step 1, kept until there are `BATCH` groups: each
/// `(position << 16) | mask`, bit `k` of the mask for position `position + k`.
#[cfg(target_arch = "x86_64")]
struct Batch {
    entries: [u64; BATCH],
    filled: usize,
    /// Positions per entry: 8 or 16.
    width: usize,
}

#[cfg(target_arch = "x86_64")]
impl Batch {
    fn new(width: usize) -> Batch {
        Batch {
            entries: [0; BATCH],
            filled: 0,
            width,
        }
    }

    #[inline(always)]
    fn push(
        &mut self,
        starts: &Starts,
        data: &[u8],
        at: usize,
        mask: u16,
        on_hit: &mut impl FnMut(Hit),
    ) {
        self.entries[self.filled % BATCH] = (at as u64) << 16 | u64::from(mask);
        self.filled += usize::from(mask != 0);
        if self.filled == BATCH {
            self.confirm(starts, data, on_hit);
        }
    }

    /// Steps 2 and 3 at every position kept; the batch is empty after. Where a quarter or
    /// more of the positions the batch spans passed, one walk over the span instead.
    #[inline(never)]
    fn confirm(&mut self, starts: &Starts, data: &[u8], on_hit: &mut impl FnMut(Hit)) {
        let kept = &self.entries[..self.filled];
        if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
            let from = (first >> 16) as usize;
            let to = (last >> 16) as usize + self.width;
            let passed: usize = kept
                .iter()
                .map(|e| (e & 0xFFFF).count_ones() as usize)
                .sum();
            if passed * 4 >= to - from {
                starts.walk.find_starting_in(data, from, to, on_hit);
                self.filled = 0;
                return;
            }
        }
        for &entry in kept {
            let base = (entry >> 16) as usize;
            let mut mask = entry & 0xFFFF;
            while mask != 0 {
                starts.confirm(data, base + mask.trailing_zeros() as usize, on_hit);
                mask &= mask - 1;
            }
        }
        self.filled = 0;
    }
}
