//! Every occurrence of every keyword in a blob, ASCII case-insensitively, fast.
//!
//! The keywords are too many (about a thousand, and too case-varied) for a SIMD literal
//! searcher. Where the CPU has AVX2, hashed tables of their first bytes find the few positions
//! where one may start, eight (AVX-512: sixteen) at a time, and an anchored automaton confirms
//! there (`starts`).
//! Elsewhere an Aho-Corasick DFA is walked over four parts of the blob in lockstep (`walk`).
//! Both report exactly the same hits.
mod starts;
mod walk;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};

use super::error::RuleError;

/// Parts of a blob whose hits come each in order (see `KeywordScanner::find_all`).
pub(crate) const LANES: usize = 4;

/// One keyword occurrence: which keyword, and the offset just past its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub keyword: usize,
    pub end: usize,
}

/// The keywords' Aho-Corasick DFA (ASCII case-insensitive), and its start state for searches
/// `anchored` at a position or not. Standard semantics: at each position a match state lists
/// every keyword that ends there, so a keyword that is a substring of another still reports
/// its own hits.
fn automaton(keywords: &[&str], anchored: bool) -> Result<(DFA, StateID), RuleError> {
    let (kind, mode) = if anchored {
        (StartKind::Anchored, Anchored::Yes)
    } else {
        (StartKind::Unanchored, Anchored::No)
    };
    let error = |e: &dyn std::fmt::Display| RuleError::Prefilter(e.to_string());
    let dfa = DFA::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .start_kind(kind)
        .prefilter(false)
        .build(keywords)
        .map_err(|e| error(&e))?;
    let start = dfa.start_state(mode).map_err(|e| error(&e))?;
    Ok((dfa, start))
}

pub(crate) struct KeywordScanner(Way);

enum Way {
    Starts(Box<starts::Starts>),
    Walk(Box<walk::Walk>),
}

impl KeywordScanner {
    pub(crate) fn new(keywords: &[&str]) -> Result<KeywordScanner, RuleError> {
        Ok(KeywordScanner(match starts::Starts::new(keywords)? {
            Some(starts) => Way::Starts(Box::new(starts)),
            None => Way::Walk(Box::new(walk::Walk::new(keywords)?)),
        }))
    }

    /// Call `on_hit(lane, hit)` for every keyword occurrence in `data`. Within a lane, hits
    /// come in order of where they end (walk) or start (starts); lanes interleave.
    pub(crate) fn find_all(&self, data: &[u8], mut on_hit: impl FnMut(usize, Hit)) {
        match &self.0 {
            Way::Starts(starts) => starts.find_all(data, &mut |hit| on_hit(0, hit)),
            Way::Walk(walk) => walk.find_all(data, on_hit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::starts::Simd;
    use super::*;

    /// Every (keyword, end) by the naive method.
    fn naive(keywords: &[&str], data: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        for end in 1..=data.len() {
            for (keyword, k) in keywords.iter().enumerate() {
                if end >= k.len() && data[end - k.len()..end].eq_ignore_ascii_case(k.as_bytes()) {
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

    /// Each way of scanning, named: the walk, the start tables one position at a time, and
    /// (where the CPU has them) eight at a time on AVX2 and sixteen on AVX-512.
    fn ways(keywords: &[&str]) -> Vec<(&'static str, KeywordScanner)> {
        let starts = |simd| {
            KeywordScanner(Way::Starts(Box::new(
                starts::Starts::build(keywords, simd).unwrap().unwrap(),
            )))
        };
        let mut ways = vec![
            (
                "walk",
                KeywordScanner(Way::Walk(Box::new(walk::Walk::new(keywords).unwrap()))),
            ),
            ("starts, scalar", starts(Simd::None)),
        ];
        let best = Simd::best();
        if best >= Simd::Avx2 {
            ways.push(("starts, AVX2", starts(Simd::Avx2)));
        } else if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI runs on x86_64 with AVX2, where the SIMD way must be tested");
        } else {
            eprintln!("skipping the AVX2 way: this CPU does not have it");
        }
        if best >= Simd::Avx512 {
            ways.push(("starts, AVX-512", starts(Simd::Avx512)));
        } else {
            eprintln!("skipping the AVX-512 way: this CPU does not have it");
        }
        ways
    }

    fn hits_of(scanner: &KeywordScanner, data: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        scanner.find_all(data, |_, hit| hits.push(hit));
        sorted(hits)
    }

    #[test]
    fn every_way_finds_exactly_what_a_naive_scan_finds() {
        let keywords = [
            "token",
            "tok",
            "ghp_",
            "secret",
            "-----begin private key-----",
            // Two and three bytes; and `-us`, which `\rus` folds to (bit 5 set) but is not.
            "q~",
            "-us",
            "sk-",
        ];
        // Keywords everywhere, including across every lane boundary, in mixed case.
        let unit = "xx TOKEN yy ghp_ zz SeCrEt -----BEGIN PRIVATE KEY----- 8Q~x \rus -US Sk-";
        for (name, scanner) in ways(&keywords) {
            for len in [
                0, 1, 2, 3, 15, 16, 17, 100, 8191, 8192, 8193, 40_000, 100_003,
            ] {
                let data: Vec<u8> = unit.bytes().cycle().take(len).collect();
                let mut hits = Vec::new();
                let mut lane_ends = [0; LANES];
                scanner.find_all(&data, |lane, hit| {
                    if name == "walk" {
                        assert!(hit.end >= lane_ends[lane], "len {len}: lane {lane} order");
                        lane_ends[lane] = hit.end;
                    }
                    hits.push(hit);
                });
                assert_eq!(sorted(hits), naive(&keywords, &data), "{name}, len {len}");
            }
        }
    }

    #[test]
    fn a_keyword_at_every_offset_near_the_end_is_found() {
        let keywords = ["q~", "abc", "abcd", "abcdefgh", "abcdefghij"];
        let ways = ways(&keywords);
        for len in 0..40usize {
            for keyword in keywords {
                for at in 0..=len.saturating_sub(keyword.len()) {
                    if at + keyword.len() > len {
                        continue;
                    }
                    let mut data = vec![b'.'; len];
                    data[at..at + keyword.len()]
                        .copy_from_slice(keyword.to_ascii_uppercase().as_bytes());
                    for (name, scanner) in &ways {
                        assert_eq!(
                            hits_of(scanner, &data),
                            naive(&keywords, &data),
                            "{name}: {keyword} at {at} of {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_way_agrees_on_the_built_in_keywords() {
        let rules = crate::detect::RuleSet::builtin().unwrap();
        let mut keywords: Vec<String> = rules
            .rules()
            .iter()
            .flat_map(|r| r.keywords.iter().map(|k| k.to_ascii_lowercase()))
            .collect();
        keywords.sort();
        keywords.dedup();
        let keywords: Vec<&str> = keywords.iter().map(String::as_str).collect();
        // Keywords in alternating case, cut short or whole, between bytes of every kind.
        let mut data = Vec::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        while data.len() < 200_000 {
            let keyword = keywords[next() as usize % keywords.len()].as_bytes();
            let cut = keyword.len() - (next() as usize % 3).min(keyword.len() - 1);
            for (i, &b) in keyword[..cut].iter().enumerate() {
                data.push(if (i + data.len()) % 2 == 0 {
                    b.to_ascii_uppercase()
                } else {
                    b
                });
            }
            data.push((next() % 256) as u8);
        }
        let ways = ways(&keywords);
        let want = hits_of(&ways[0].1, &data);
        assert!(want.len() > 10_000, "{} hits", want.len());
        for (name, scanner) in &ways[1..] {
            assert!(
                hits_of(scanner, &data) == want,
                "{name} differs from the walk"
            );
        }
    }

    #[test]
    fn a_run_of_one_letter_is_walked_once_and_found_exactly() {
        // Every position of a run of `a` starts a prefix of the first keyword: the start
        // tables pass them all, and the stretch is walked instead of confirmed one by one.
        let keywords = ["aaaaaaaaaaaaaaaaaaaaaa", "aab", "ghp_", "q~"];
        let mut data = vec![b'A'; 50_000];
        for at in [0, 7, 4_095, 4_096, 20_000, 49_990] {
            data[at..at + 4].copy_from_slice(b"ghp_");
        }
        for at in [100, 30_001, 49_997] {
            data[at + 2] = b'B';
        }
        data.extend_from_slice(b" sparse text after it, ghp_ once more, and q~ too ");
        let want = naive(&keywords, &data);
        assert!(want.len() > 40_000, "{} hits", want.len());
        for (name, scanner) in ways(&keywords) {
            assert!(hits_of(&scanner, &data) == want, "{name}");
        }
    }

    #[test]
    fn a_keyword_straddling_a_lane_boundary_is_reported_once() {
        let keywords = ["-----begin private key-----"];
        let len = 4 * 4096;
        for (name, scanner) in ways(&keywords) {
            for boundary in [4096, 8192, 12288] {
                for shift in 0..keywords[0].len() + 1 {
                    let mut data = vec![b'.'; len];
                    let start = boundary - shift;
                    data[start..start + keywords[0].len()].copy_from_slice(keywords[0].as_bytes());
                    assert_eq!(
                        hits_of(&scanner, &data),
                        vec![Hit {
                            keyword: 0,
                            end: start + keywords[0].len()
                        }],
                        "{name}: boundary {boundary} shift {shift}"
                    );
                }
            }
        }
    }
}
