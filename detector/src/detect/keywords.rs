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

/// Parts walked in lockstep.
const LANES: usize = 4;
/// Below this many bytes per part, one plain walk is as fast.
const MIN_LANE_LEN: usize = 2048;

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
    pub(crate) fn new(keywords: &[&str]) -> anyhow::Result<KeywordScanner> {
        // Standard semantics: at each position the DFA's match state lists every keyword that
        // ends there, so a keyword that is a substring of another still reports its own hits.
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(keywords)
            .map_err(|e| anyhow::anyhow!("building the keyword prefilter: {e}"))?;
        let start = dfa
            .start_state(Anchored::No)
            .map_err(|e| anyhow::anyhow!("building the keyword prefilter: {e}"))?;
        let longest = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        Ok(KeywordScanner {
            dfa,
            start,
            longest,
        })
    }

    /// Every keyword occurrence in `data`, in order of `end` (ties in any order).
    pub(crate) fn find_all(&self, data: &[u8], hits: &mut Vec<Hit>) {
        hits.clear();
        let lane_len = data.len() / LANES;
        if lane_len < MIN_LANE_LEN.max(self.longest) {
            self.walk(data, 0, 0, data.len(), self.start, hits);
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
        let mut lane_hits: [Vec<Hit>; LANES] = Default::default();
        let mut states = [self.start; LANES];
        let lanes: [&[u8]; LANES] =
            std::array::from_fn(|j| &data[read_from[j]..read_from[j] + lockstep]);
        let dfa = &self.dfa;
        for (i, (((&b0, &b1), &b2), &b3)) in lanes[0]
            .iter()
            .zip(lanes[1])
            .zip(lanes[2])
            .zip(lanes[3])
            .enumerate()
        {
            states[0] = dfa.next_state(Anchored::No, states[0], b0);
            states[1] = dfa.next_state(Anchored::No, states[1], b1);
            states[2] = dfa.next_state(Anchored::No, states[2], b2);
            states[3] = dfa.next_state(Anchored::No, states[3], b3);
            if dfa.is_match(states[0])
                | dfa.is_match(states[1])
                | dfa.is_match(states[2])
                | dfa.is_match(states[3])
            {
                for j in 0..LANES {
                    let end = read_from[j] + i + 1;
                    if end > owned[j] && dfa.is_match(states[j]) {
                        self.report(states[j], end, &mut lane_hits[j]);
                    }
                }
            }
        }
        for j in 0..LANES {
            let from = read_from[j] + lockstep;
            let mut lane = std::mem::take(&mut lane_hits[j]);
            self.walk(data, from, owned[j], owned[j + 1], states[j], &mut lane);
            hits.append(&mut lane);
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
        hits: &mut Vec<Hit>,
    ) {
        for (at, &byte) in data[from..to].iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_match(state) {
                let end = from + at + 1;
                if end > owned_from {
                    self.report(state, end, hits);
                }
            }
        }
    }

    #[inline(never)]
    fn report(&self, state: StateID, end: usize, hits: &mut Vec<Hit>) {
        for index in 0..self.dfa.match_len(state) {
            let keyword = self.dfa.match_pattern(state, index).as_usize();
            hits.push(Hit { keyword, end });
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
            scanner.find_all(&data, &mut hits);
            assert!(hits.windows(2).all(|w| w[0].end <= w[1].end), "len {len}");
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
                scanner.find_all(&data, &mut hits);
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
