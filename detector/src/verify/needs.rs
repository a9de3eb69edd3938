//! The values a verifier needs besides the key, found in the key's own file or blob while its
//! bytes are at hand: an AWS access key ID beside its secret, the Atlassian site beside a
//! token. The nearest match (by line) to the key wins.
use std::collections::{BTreeMap, HashMap};

use regex::bytes::Regex;

use super::spec::Verifier;
use crate::audit::Finding;

/// Matches of one need looked at per blob, at most: a blob full of candidates costs no more.
const MAX_MATCHES: usize = 256;

/// Each rule's needs, compiled.
pub struct Needs {
    by_rule: HashMap<String, Vec<(String, Regex)>>,
}

impl Needs {
    /// The needs of each rule's verifier (`by_rule`: rule → index in `verifiers`), and
    /// `extra` (rule, name, regex) besides. A regex that does not compile (loading rejects
    /// them) is left out.
    pub fn new(
        verifiers: &[Verifier],
        by_rule: &HashMap<String, usize>,
        extra: &[(&str, &str, &str)],
    ) -> Needs {
        let compile = |what: &str, name: &str, regex: &str| match Regex::new(regex) {
            Ok(regex) => Some((name.to_string(), regex)),
            Err(e) => {
                tracing::error!(%what, need = %name, error = %e, "need left out");
                None
            }
        };
        let mut out: HashMap<String, Vec<(String, Regex)>> = HashMap::new();
        for (rule, &i) in by_rule {
            let verifier = &verifiers[i];
            let needs: Vec<(String, Regex)> = verifier
                .needs
                .iter()
                .filter_map(|n| compile(&verifier.id, &n.name, &n.regex))
                .collect();
            if !needs.is_empty() {
                out.insert(rule.clone(), needs);
            }
        }
        for (rule, name, regex) in extra {
            out.entry(rule.to_string())
                .or_default()
                .extend(compile(rule, name, regex));
        }
        Needs { by_rule: out }
    }

    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    /// For each finding whose rule has needs: the secret and the values found in `bytes`
    /// (the finding's blob) nearest to it.
    pub fn find(
        &self,
        bytes: &[u8],
        findings: &[Finding],
    ) -> Vec<(String, BTreeMap<String, String>)> {
        let mut out = Vec::new();
        let mut lines: Option<Vec<usize>> = None;
        // Each need's matches in this blob, (line, value), by rule and need: read once however
        // many findings ask for them.
        let mut found: HashMap<(&str, usize), Vec<Place<'_>>> = HashMap::new();
        for finding in findings {
            let Some((rule, needs)) = self.by_rule.get_key_value(&finding.rule.id) else {
                continue;
            };
            let starts = lines.get_or_insert_with(|| line_starts(bytes));
            let line = finding.location.line.unwrap_or(1);
            let mut values = BTreeMap::new();
            for (i, (name, regex)) in needs.iter().enumerate() {
                let matches = found.entry((rule.as_str(), i)).or_insert_with(|| {
                    regex
                        .captures_iter(bytes)
                        .take(MAX_MATCHES)
                        .filter_map(|c| c.get(1))
                        .map(|m| (line_of(starts, m.start()), m.as_bytes()))
                        .collect()
                });
                let nearest = matches
                    .iter()
                    .filter(|(_, value)| *value != finding.secret.as_bytes())
                    .min_by_key(|(at, _)| at.abs_diff(line));
                if let Some((_, value)) = nearest {
                    if let Ok(text) = std::str::from_utf8(value) {
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

/// Where a need's value sits in a blob: its line, and its bytes.
type Place<'b> = (usize, &'b [u8]);

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
