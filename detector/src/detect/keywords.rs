//! Every occurrence of every keyword in a blob, ASCII case-insensitively, fast.
//!
//! The keywords are too many (and too case-varied) for a SIMD literal searcher, so this walks an
//! Aho-Corasick DFA byte by byte. One walk is bound by the latency of its table loads; four
//! walks over four parts of the blob, stepped in lockstep, overlap those latencies and scan
//! several times faster on one core. Each part starts early by the longest keyword's length, so
//! a keyword across a part boundary is seen whole, and is reported only by the part it ends in.
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

use super::error::RuleError;

/// Parts walked in lockstep.
pub(crate) const LANES: usize = 4;
/// Below this many bytes per part, one plain walk is as fast.
const MIN_LANE_LEN: usize = 256;

pub(crate) struct KeywordScanner {
    dfa: DFA,
    start: StateID,
    longest: usize,
}

/// One keyword occurrence: which keyword, and the offset just past its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub keyword: usize,
    pub end: usize,
}

impl KeywordScanner {
    pub(crate) fn new(keywords: &[&str]) -> Result<KeywordScanner, RuleError> {
        // Standard semantics: at each position the DFA's match state lists every keyword that
        // ends there, so a keyword that is a substring of another still reports its own hits.
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(keywords)
            .map_err(|e| RuleError::Prefilter(e.to_string()))?;
        let start = dfa
            .start_state(Anchored::No)
            .map_err(|e| RuleError::Prefilter(e.to_string()))?;
        let longest = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        Ok(KeywordScanner {
            dfa,
            start,
            longest,
        })
    }

    /// Call `on_hit(lane, hit)` for every keyword occurrence in `data`. The hits of one lane
    /// come in order of `end` (ties in any order); lanes interleave.
    pub(crate) fn find_all(&self, data: &[u8], mut on_hit: impl FnMut(usize, Hit)) {
        let lane_len = data.len() / LANES;
        if lane_len < MIN_LANE_LEN.max(self.longest) {
            self.walk(data, 0, 0, data.len(), self.start, &mut |hit| {
                on_hit(0, hit)
            });
            return;
        }
        // Part j owns the hits that end in (owned[j], owned[j + 1]] and starts reading
        // `longest - 1` bytes before its first owned end.
        let owned: [usize; LANES + 1] =
            std::array::from_fn(|j| if j == LANES { data.len() } else { j * lane_len });
        let read_from: [usize; LANES] =
            std::array::from_fn(|j| owned[j].saturating_sub(self.longest.saturating_sub(1)));
        let lockstep = (0..LANES)
            .map(|j| owned[j + 1] - read_from[j])
            .min()
            .unwrap_or(0);
        let lanes: [&[u8]; LANES] =
            std::array::from_fn(|j| &data[read_from[j]..read_from[j] + lockstep]);
        let dfa = &self.dfa;
        // Four plain locals (not an array) so that the states stay in registers.
        let (mut s0, mut s1, mut s2, mut s3) = (self.start, self.start, self.start, self.start);
        for (i, (((&b0, &b1), &b2), &b3)) in lanes[0]
            .iter()
            .zip(lanes[1])
            .zip(lanes[2])
            .zip(lanes[3])
            .enumerate()
        {
            s0 = dfa.next_state(Anchored::No, s0, b0);
            s1 = dfa.next_state(Anchored::No, s1, b1);
            s2 = dfa.next_state(Anchored::No, s2, b2);
            s3 = dfa.next_state(Anchored::No, s3, b3);
            if dfa.is_match(s0) | dfa.is_match(s1) | dfa.is_match(s2) | dfa.is_match(s3) {
                for (j, state) in [s0, s1, s2, s3].into_iter().enumerate() {
                    let end = read_from[j] + i + 1;
                    if end > owned[j] && dfa.is_match(state) {
                        self.report(state, end, &mut |hit| on_hit(j, hit));
                    }
                }
            }
        }
        let states = [s0, s1, s2, s3];
        for j in 0..LANES {
            let from = read_from[j] + lockstep;
            self.walk(data, from, owned[j], owned[j + 1], states[j], &mut |hit| {
                on_hit(j, hit)
            });
        }
    }

    /// Walk `data[from..to]` from `state`, reporting hits that end after `owned_from`.
    fn walk(
        &self,
        data: &[u8],
        from: usize,
        owned_from: usize,
        to: usize,
        mut state: StateID,
        on_hit: &mut impl FnMut(Hit),
    ) {
        for (at, &byte) in data[from..to].iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_match(state) {
                let end = from + at + 1;
                if end > owned_from {
                    self.report(state, end, on_hit);
                }
            }
        }
    }

    fn report(&self, state: StateID, end: usize, on_hit: &mut impl FnMut(Hit)) {
        for index in 0..self.dfa.match_len(state) {
            let keyword = self.dfa.match_pattern(state, index).as_usize();
            on_hit(Hit { keyword, end });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (keyword, end) by the naive method.
    fn naive(keywords: &[&str], data: &[u8]) -> Vec<Hit> {
        let lower = data.to_ascii_lowercase();
        let mut hits = Vec::new();
        for end in 1..=data.len() {
            for (keyword, k) in keywords.iter().enumerate() {
                if end >= k.len() && lower[end - k.len()..end] == *k.as_bytes() {
                    hits.push(Hit { keyword, end });
                }
            }
        }
        hits
    }

    fn sorted(mut hits: Vec<Hit>) -> Vec<Hit> {
        hits.sort_by_key(|h| (h.end, h.keyword));
        hits
    }

    #[test]
    fn lanes_find_exactly_what_a_naive_scan_finds() {
        let keywords = [
            "token",
            "tok",
            "ghp_",
            "secret",
            "-----begin private key-----",
        ];
        let scanner = KeywordScanner::new(&keywords).unwrap();
        // Keywords everywhere, including across every lane boundary, in mixed case.
        let unit = "xx TOKEN yy ghp_ zz SeCrEt -----BEGIN PRIVATE KEY----- ";
        for len in [0, 1, 3, 100, 8191, 8192, 8193, 40_000, 100_003] {
            let data: Vec<u8> = unit.bytes().cycle().take(len).collect();
            let mut hits = Vec::new();
            let mut lane_ends = [0; LANES];
            scanner.find_all(&data, |lane, hit| {
                assert!(
                    hit.end >= lane_ends[lane],
                    "len {len}: lane {lane} out of order"
                );
                lane_ends[lane] = hit.end;
                hits.push(hit);
            });
            assert_eq!(sorted(hits), naive(&keywords, &data), "len {len}");
        }
    }

    #[test]
    fn a_keyword_straddling_a_lane_boundary_is_reported_once() {
        let keywords = ["-----begin private key-----"];
        let scanner = KeywordScanner::new(&keywords).unwrap();
        let len = 4 * 4096;
        for boundary in [4096, 8192, 12288] {
            for shift in 0..keywords[0].len() + 1 {
                let mut data = vec![b'.'; len];
                let start = boundary - shift;
                data[start..start + keywords[0].len()].copy_from_slice(keywords[0].as_bytes());
                let mut hits = Vec::new();
                scanner.find_all(&data, |_, hit| hits.push(hit));
                assert_eq!(
                    hits,
                    vec![Hit {
                        keyword: 0,
                        end: start + keywords[0].len()
                    }],
                    "boundary {boundary} shift {shift}"
                );
            }
        }
    }
}
