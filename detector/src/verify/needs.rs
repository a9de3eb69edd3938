//! The values a verifier needs besides the key, found in the key's own file or blob while its
//! bytes are at hand: an AWS access key ID beside its secret, the Atlassian site beside a
//! token. The nearest match (by line) to the key wins.
use std::collections::{BTreeMap, HashMap};

use regex::bytes::Regex;

use super::spec::Verifier;
use crate::audit::Finding;

/// Matches of one need looked at per blob, at most: a blob full of candidates costs no more.
const MAX_MATCHES: usize = 256;

/// Each verifier's needs, compiled, by rule.
pub struct Needs {
    by_rule: HashMap<String, usize>,
    compiled: Vec<Vec<(String, Regex)>>,
}

impl Needs {
    /// Needs whose regex does not compile (loading rejects them) are left out.
    pub fn new(verifiers: &[Verifier], by_rule: &HashMap<String, usize>) -> Needs {
        let mut compiled = Vec::with_capacity(verifiers.len());
        for verifier in verifiers {
            let mut needs = Vec::new();
            for need in &verifier.needs {
                match Regex::new(&need.regex) {
                    Ok(regex) => needs.push((need.name.clone(), regex)),
                    Err(e) => {
                        tracing::error!(verifier = %verifier.id, need = %need.name, error = %e, "need left out")
                    }
                }
            }
            compiled.push(needs);
        }
        let by_rule = by_rule
            .iter()
            .filter(|(_, &i)| !compiled[i].is_empty())
            .map(|(r, &i)| (r.clone(), i))
            .collect();
        Needs { by_rule, compiled }
    }

    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    /// For each finding whose verifier has needs: the secret and the values found in
    /// `bytes` (the finding's blob) nearest to it.
    pub fn find(
        &self,
        bytes: &[u8],
        findings: &[Finding],
    ) -> Vec<(String, BTreeMap<String, String>)> {
        let mut out = Vec::new();
        let mut lines: Option<Vec<usize>> = None;
        for finding in findings {
            let Some(&verifier) = self.by_rule.get(&finding.rule.id) else {
                continue;
            };
            let starts = lines.get_or_insert_with(|| line_starts(bytes));
            let line = finding.location.line.unwrap_or(1);
            let mut values = BTreeMap::new();
            for (name, regex) in &self.compiled[verifier] {
                let nearest = regex
                    .captures_iter(bytes)
                    .take(MAX_MATCHES)
                    .filter_map(|c| c.get(1))
                    .filter(|m| m.as_bytes() != finding.secret.as_bytes())
                    .min_by_key(|m| line_of(starts, m.start()).abs_diff(line));
                if let Some(m) = nearest {
                    if let Ok(text) = std::str::from_utf8(m.as_bytes()) {
                        values.insert(name.clone(), text.to_string());
                    }
                }
            }
            if !values.is_empty() {
                out.push((finding.secret.clone(), values));
            }
        }
        out
    }
}

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1))
        .collect()
}

/// The 1-based line of `offset`.
fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&s| s <= offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let starts = line_starts(b"a\nbb\nc");
        assert_eq!(line_of(&starts, 0), 1);
        assert_eq!(line_of(&starts, 2), 2);
        assert_eq!(line_of(&starts, 5), 3);
    }
}
