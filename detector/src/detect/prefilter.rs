//! The keyword prefilter: one pass over a blob finds every rule keyword (ASCII
//! case-insensitive) and turns each hit into a window where that rule's regex has to run.
//! A rule's keywords occur inside its matches, so a window that reaches the regex's longest
//! possible match on either side of a hit holds every match that contains the hit.
use std::ops::Range;

use regex_syntax::hir::{Hir, HirKind};

use super::error::RuleError;
use super::keywords::{KeywordScanner, LANES};
use super::rules::Rule;

pub(crate) struct Prefilter {
    /// `None` when no rule has keywords.
    keywords: Option<KeywordScanner>,
    /// Keyword id → the rules that listed that keyword, each with how far before a hit of
    /// the keyword its match can start (its lead).
    rules_of: Vec<Vec<(usize, usize)>>,
    /// Keyword id → its length in bytes.
    keyword_len: Vec<usize>,
    /// Keyword id → whether every rule that lists it says it starts a word.
    starts_word: Vec<bool>,
    /// Rules without keywords: they run over the whole blob.
    unconditional: Vec<usize>,
    /// Per rule: how far a window reaches on either side of a keyword hit.
    reach: Vec<usize>,
}

/// Per-rule merged windows of one blob, kept between scans to reuse the allocations.
///
/// Hits come from several lanes of the keyword scan at once, each lane in order (of where hits
/// end or start). A window merges into the last window the same lane opened for the rule when
/// the two overlap, so a run of hits (`token token token …`) costs one window per lane;
/// `finish` sorts and merges the rest.
#[derive(Default)]
pub(crate) struct Windows {
    per_rule: Vec<Vec<Range<usize>>>,
    /// Per rule and lane: 1 + index of the lane's last window in `per_rule`, 0 for none.
    last_of_lane: Vec<[u32; LANES]>,
    /// Rules with at least one window, in the order they first got one.
    active: Vec<usize>,
}

impl Windows {
    fn reset(&mut self, rules: usize) {
        for &rule in &self.active {
            self.per_rule[rule].clear();
            self.last_of_lane[rule] = [0; LANES];
        }
        self.active.clear();
        if self.per_rule.len() != rules {
            self.per_rule.clear();
            self.per_rule.resize_with(rules, Vec::new);
            self.last_of_lane.clear();
            self.last_of_lane.resize(rules, [0; LANES]);
        }
    }

    fn add(&mut self, rule: usize, lane: usize, window: Range<usize>) {
        let windows = &mut self.per_rule[rule];
        if windows.is_empty() {
            self.active.push(rule);
        }
        let last = &mut self.last_of_lane[rule][lane];
        // Within a lane hits arrive in order, so a new window mostly overlaps (or touches) the
        // lane's last one or lies after it; one that lies before it is kept for `finish`.
        if let Some(previous) = (*last as usize).checked_sub(1).map(|i| &mut windows[i]) {
            if window.start <= previous.end && previous.start <= window.end {
                previous.start = previous.start.min(window.start);
                previous.end = previous.end.max(window.end);
                return;
            }
        }
        windows.push(window);
        *last = windows.len() as u32;
    }

    /// Sort every rule's windows and merge the ones that overlap.
    fn finish(&mut self) {
        for &rule in &self.active {
            let windows = &mut self.per_rule[rule];
            if windows.len() < 2 {
                continue;
            }
            windows.sort_unstable_by_key(|w| w.start);
            let mut merged = 0;
            for i in 1..windows.len() {
                if windows[i].start <= windows[merged].end {
                    windows[merged].end = windows[merged].end.max(windows[i].end);
                } else {
                    merged += 1;
                    windows[merged] = windows[i].clone();
                }
            }
            windows.truncate(merged + 1);
        }
    }

    /// `(rule, windows)` for every rule with work to do; windows sorted and disjoint.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &[Range<usize>])> {
        self.active
            .iter()
            .map(|&rule| (rule, self.per_rule[rule].as_slice()))
    }
}

impl Prefilter {
    /// `reach[i]`: the longest match rule `i`'s regex can produce; `leads[i][k]`: how far
    /// before a hit of its `k`th keyword a match of rule `i` can start (at most its reach).
    pub(crate) fn new(
        rules: &[Rule],
        reach: Vec<usize>,
        leads: &[Vec<usize>],
    ) -> Result<Prefilter, RuleError> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut rules_of: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut unconditional = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unconditional.push(index);
            }
            for (k, keyword) in rule.keywords.iter().enumerate() {
                let keyword = keyword.as_str();
                let lead = leads
                    .get(index)
                    .and_then(|l| l.get(k))
                    .copied()
                    .unwrap_or(reach[index]);
                match patterns
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case(keyword))
                {
                    Some(id) => match rules_of[id].iter_mut().find(|(r, _)| *r == index) {
                        Some((_, known)) => *known = (*known).max(lead),
                        None => rules_of[id].push((index, lead)),
                    },
                    None => {
                        patterns.push(keyword);
                        rules_of.push(vec![(index, lead)]);
                    }
                }
            }
        }
        let starts_word = rules_of
            .iter()
            .map(|rules_of| rules_of.iter().all(|&(r, _)| rules[r].keywords_start_words))
            .collect();
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(KeywordScanner::new(&patterns)?)
        };
        Ok(Prefilter {
            keyword_len: patterns.iter().map(|p| p.len()).collect(),
            starts_word,
            keywords,
            rules_of,
            unconditional,
            reach,
        })
    }

    /// Fill `out` with every rule's merged windows over `data`.
    pub(crate) fn windows(&self, data: &[u8], out: &mut Windows) {
        out.reset(self.reach.len());
        if data.is_empty() {
            return;
        }
        for &rule in &self.unconditional {
            out.add(rule, 0, 0..data.len());
        }
        if let Some(keywords) = &self.keywords {
            keywords.find_all(data, |lane, hit| {
                let start = hit.end - self.keyword_len[hit.keyword];
                let in_word = start > 0
                    && (data[start - 1].is_ascii_alphanumeric() || data[start - 1] == b'_');
                if in_word && self.starts_word[hit.keyword] {
                    return;
                }
                for &(rule, lead) in &self.rules_of[hit.keyword] {
                    let reach = self.reach[rule];
                    let window =
                        start.saturating_sub(lead)..hit.end.saturating_add(reach).min(data.len());
                    out.add(rule, lane, window);
                }
            });
        }
        out.finish();
    }
}

/// How many bytes a match of `hir` can hold before `keyword` (ASCII case-insensitive), when
/// every match holds the keyword in a literal at a place whose start is bounded: a window
/// then needs to reach only that far to the left of a hit. `None` when the regex does not
/// say (the keyword sits in a class, a case-insensitive run or an optional part), and the
/// window reaches the longest match on both sides.
///
/// Any other place the keyword occurs in a match only adds hits: the one this place gives is
/// enough for the window to hold the whole match.
pub(crate) fn keyword_lead(hir: &Hir, keyword: &[u8]) -> Option<usize> {
    if keyword.is_empty() {
        return None;
    }
    match hir.kind() {
        HirKind::Literal(literal) => literal
            .0
            .windows(keyword.len())
            .position(|w| w.eq_ignore_ascii_case(keyword)),
        HirKind::Capture(capture) => keyword_lead(&capture.sub, keyword),
        HirKind::Repetition(repetition) if repetition.min >= 1 => {
            keyword_lead(&repetition.sub, keyword)
        }
        HirKind::Concat(items) => {
            let mut before = 0usize;
            for item in items {
                if let Some(lead) = keyword_lead(item, keyword) {
                    return before.checked_add(lead);
                }
                before = before.checked_add(item.properties().maximum_len()?)?;
            }
            None
        }
        HirKind::Alternation(branches) => branches
            .iter()
            .map(|b| keyword_lead(b, keyword))
            .try_fold(0usize, |most, lead| Some(most.max(lead?))),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // windows are lists of ranges
mod tests {
    use super::*;
    use crate::detect::rules::Severity;

    fn rule(id: &str, keywords: &[&str]) -> Rule {
        Rule {
            proven: false,
            id: id.into(),
            provider: "Test".into(),
            description: String::new(),
            severity: Severity::Low,
            regex: "(x)".into(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            keywords_start_words: false,
            min_entropy: None,
            require_literal: false,
            require_secret_name: false,
            priority: 0,
            window: None,
            environment_hints: Vec::new(),
            references: Vec::new(),
            examples: Vec::new(),
            counter_examples: Vec::new(),
        }
    }

    fn windows_of(pre: &Prefilter, data: &[u8]) -> Vec<(usize, Vec<Range<usize>>)> {
        let mut out = Windows::default();
        pre.windows(data, &mut out);
        let mut all: Vec<_> = out.iter().map(|(r, w)| (r, w.to_vec())).collect();
        all.sort_by_key(|(r, _)| *r);
        all
    }

    #[test]
    fn windows_are_clipped_at_blob_edges() {
        let pre = Prefilter::new(&[rule("a", &["key"])], vec![10], &[]).unwrap();
        // A hit at the very start and one at the very end of the blob.
        let data = b"KEY.......................................key";
        let got = windows_of(&pre, data);
        assert_eq!(got, vec![(0, vec![0..13, data.len() - 13..data.len()])]);
        // A blob that is only the keyword.
        assert_eq!(windows_of(&pre, b"kEy"), vec![(0, vec![0..3])]);
        assert!(windows_of(&pre, b"").is_empty());
        assert!(windows_of(&pre, b"ke").is_empty());
    }

    #[test]
    fn overlapping_windows_merge_and_substring_keywords_both_fire() {
        let pre = Prefilter::new(
            &[rule("a", &["tok"]), rule("b", &["token"]), rule("c", &[])],
            vec![4, 4, 4],
            &[],
        )
        .unwrap();
        let data = b"token tok ................ token";
        let got = windows_of(&pre, data);
        let len = data.len();
        assert_eq!(
            got,
            vec![
                (0, vec![0..13, len - 9..len]),
                (1, vec![0..9, len - 9..len]),
                (2, vec![0..len]),
            ]
        );
    }

    #[test]
    fn windows_from_every_lane_merge_into_sorted_disjoint_windows() {
        let pre = Prefilter::new(&[rule("a", &["token"])], vec![8], &[]).unwrap();
        // Hits everywhere: every lane reports, and everything merges into one window.
        let dense = "token ".repeat(10_000);
        assert_eq!(
            windows_of(&pre, dense.as_bytes()),
            vec![(0, vec![0..dense.len()])]
        );
        // Isolated hits, one near each lane boundary and at both ends.
        let len = 64 * 1024;
        let mut data = vec![b'.'; len];
        let starts = [0, 16_380, 32_766, 49_150, len - 5];
        for &s in &starts {
            data[s..s + 5].copy_from_slice(b"TOKEN");
        }
        let want: Vec<Range<usize>> = starts
            .iter()
            .map(|&s| s.saturating_sub(8)..(s + 5 + 8).min(len))
            .collect();
        assert_eq!(windows_of(&pre, &data), vec![(0, want)]);
    }

    fn lead(pattern: &str, keyword: &str) -> Option<usize> {
        keyword_lead(
            &crate::detect::rules::parse_regex(pattern).unwrap(),
            keyword.as_bytes(),
        )
    }

    #[test]
    fn a_keyword_in_a_literal_bounds_how_far_left_a_match_starts() {
        assert_eq!(lead(r"\b(ghp_[A-Za-z0-9]{36})\b", "ghp_"), Some(0));
        assert_eq!(
            lead(
                r"(?i:\b(?:https?|git\+https?)://)[a-z]{1,9}:([^@]{3,20})@",
                "://"
            ),
            Some(9)
        );
        assert_eq!(lead(r"(?:^|[^a-z])(xoxb-[0-9]{10})", "xoxb-"), Some(1));
        // Every branch must hold it; the farthest counts.
        assert_eq!(lead(r"(?:ab|abcd)(sk-[a-z]{4})", "sk-"), Some(4));
        // An optional part before it counts at its longest.
        assert_eq!(lead(r"(?:ab|cd)?(sk-[a-z]{4})", "sk-"), Some(2));
        assert_eq!(lead(r"(?:x|sk-)[a-z]{4}", "sk-"), None);
        // Unbounded before it, in a class, or matched case-insensitively: the regex does not say.
        assert_eq!(lead(r"[a-z]+(sk-[a-z]{4})", "sk-"), None);
        assert_eq!(lead(r"[a-z_]{0,9}token", "token"), Some(9));
        assert_eq!(lead(r"(?i)[a-z_]{0,9}token", "token"), None);
    }

    #[test]
    fn a_window_reaches_left_only_as_far_as_the_lead() {
        let pre = Prefilter::new(&[rule("a", &["://"])], vec![40], &[vec![5]]).unwrap();
        let data = format!("{}https://u:p@h{}", ".".repeat(100), ".".repeat(100));
        let at = data.find("://").unwrap();
        assert_eq!(
            windows_of(&pre, data.as_bytes()),
            vec![(0, vec![at - 5..at + 3 + 40])]
        );
    }
}
