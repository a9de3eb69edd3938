//! The portable way: an Aho-Corasick DFA walked byte by byte. One walk is bound by the latency of its table loads; four
//! walks over four parts of the blob, stepped in lockstep, overlap those latencies and scan
//! several times faster on one core. Each part starts early by the longest keyword's length, so
//! a keyword across a part boundary is seen whole, and is reported only by the part it ends in.
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::Anchored;

use super::{Hit, LANES};
use crate::detect::error::RuleError;

/// Below this many bytes per part, one plain walk is as fast.
const MIN_LANE_LEN: usize = 256;

pub(super) struct Walk {
    dfa: DFA,
    start: StateID,
    longest: usize,
}

impl Walk {
    pub(super) fn new(keywords: &[&str]) -> Result<Walk, RuleError> {
        let (dfa, start) = super::automaton(keywords, false)?;
        let longest = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        Ok(Walk {
            dfa,
            start,
            longest,
        })
    }

    /// Call `on_hit(lane, hit)` for every keyword occurrence in `data`. The hits of one lane
    /// come in order of `end` (ties in any order); lanes interleave.
    pub(super) fn find_all(&self, data: &[u8], mut on_hit: impl FnMut(usize, Hit)) {
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

    /// Every keyword that starts in `from..to`, by one walk from `from` (for a stretch where
    /// most positions could start one; see `starts`).
    pub(super) fn find_starting_in(
        &self,
        data: &[u8],
        from: usize,
        to: usize,
        on_hit: &mut impl FnMut(Hit),
    ) {
        let end = to
            .saturating_add(self.longest.saturating_sub(1))
            .min(data.len());
        let mut state = self.start;
        for (walked, &byte) in data[from..end].iter().enumerate() {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_match(state) {
                let end = from + walked + 1;
                for index in 0..self.dfa.match_len(state) {
                    let keyword = self.dfa.match_pattern(state, index);
                    if end - self.dfa.pattern_len(keyword) < to {
                        on_hit(Hit {
                            keyword: keyword.as_usize(),
                            end,
                        });
                    }
                }
            }
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
