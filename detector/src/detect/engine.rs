//! The matching engine: keyword prefilter → windows → regex → checks → matches grouped by secret.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use regex_automata::meta;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::Input;
use regex_syntax::hir::Hir;

use super::error::{RegexProblem, RuleError};
use super::lines::LineCounter;
use super::names::is_secret_name;
use super::prefilter::{Prefilter, Windows};
use super::rules::{
    parse_regex, secret_group_in, PublishedExample, Rule, RuleMeta, RuleSet, MAX_WINDOW,
};
use super::slot::slot_at;
use super::{
    filter::{is_literal_secret, is_suppressed, shannon_entropy},
    placeholder::{in_example_url, is_filler},
};

/// How far a window reaches around a keyword hit for a regex without a longest match
/// (unbounded repetition) unless the rule sets `window`.
const UNBOUNDED_REACH: usize = 1024;

/// The most a rule's lazy DFA keeps per thread. It grows only as far as the states its regex
/// meets: most rules stay under 200 KiB, but the generic context rule reaches about 4.4 MiB on
/// source text. At the regex crate's 2 MiB it was cleared and rebuilt again and again, a tenth
/// of a scan's time (`cargo xtask bench scan`).
const LAZY_DFA_CAPACITY: usize = 8 << 20;

/// Where a secret sits in a blob: byte offsets, and the 1-based line and byte column of `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
}

/// One secret found by one rule in one blob, with every place it appears there.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The rule that found it.
    pub rule: Arc<RuleMeta>,
    /// The captured secret (lossy UTF-8).
    pub secret: String,
    /// Every place this secret appears, in blob order.
    pub spans: Vec<Span>,
    /// The key name the secret is assigned to, when the context shows one.
    pub slot: Option<String>,
}

struct CompiledRule {
    /// Compiled before the scan (a rule from `--rules`: a bad one fails at once), or when a
    /// keyword of it is first met (a built-in rule, which the test suite compiles): a hook
    /// that scans one staged file does not compile 500 regexes for it.
    regex: OnceLock<meta::Regex>,
    hir: Hir,
    /// The capture group holding the secret.
    group: usize,
}

impl CompiledRule {
    fn regex(&self) -> &meta::Regex {
        self.regex.get_or_init(|| {
            build_regex(&self.hir).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a built-in rule's regex does not compile; it matches nothing");
                meta::Regex::new_many::<&str>(&[]).expect("an empty set of patterns compiles")
            })
        })
    }
}

fn build_regex(hir: &Hir) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .dfa(false)
                .onepass(false)
                .hybrid_cache_capacity(LAZY_DFA_CAPACITY),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

/// The compiled rules. Built once; `Send + Sync`, shared by every scanning thread.
pub struct Engine {
    rules: Vec<Rule>,
    metas: Vec<Arc<RuleMeta>>,
    compiled: Vec<CompiledRule>,
    prefilter: Prefilter,
    /// The values the rules' providers publish as examples: never reported, by any rule.
    published: Vec<PublishedExample>,
    published_values: HashSet<Box<[u8]>>,
}

/// A regex match that passed the checks, before grouping by secret.
#[derive(Debug, Clone, Copy)]
struct Hit {
    rule: usize,
    start: usize,
    end: usize,
}

thread_local! {
    /// Reused between scans on one thread: windows of the last blob.
    static WINDOWS: RefCell<Windows> = RefCell::new(Windows::default());
}

impl Engine {
    pub fn new(rules: RuleSet) -> Result<Engine, RuleError> {
        let (rules, published) = rules.into_parts();
        // Each rule on its own (on several threads): its regex parsed once, compiled from that, and
        // measured for the prefilter's windows.
        let built: Vec<(CompiledRule, usize, Vec<usize>)> =
            super::map_in_threads(&rules, compile_rule)
                .into_iter()
                .collect::<Result<_, _>>()?;
        let mut compiled = Vec::with_capacity(rules.len());
        let mut reach = Vec::with_capacity(rules.len());
        // Per rule, per keyword: how far before a hit of it a match can start.
        let mut leads: Vec<Vec<usize>> = Vec::with_capacity(rules.len());
        for (rule, rule_reach, rule_leads) in built {
            compiled.push(rule);
            reach.push(rule_reach);
            leads.push(rule_leads);
        }
        let prefilter = Prefilter::new(&rules, reach, &leads)?;
        let metas = rules
            .iter()
            .enumerate()
            .map(|(rank, rule)| Arc::new(RuleMeta::of(rule, rank)))
            .collect();
        let published_values = published
            .iter()
            .map(|p| p.secret.as_bytes().into())
            .collect();
        Ok(Engine {
            rules,
            metas,
            compiled,
            prefilter,
            published,
            published_values,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// How many rules' regexes are compiled so far (built-in ones wait for their keywords).
    pub fn compiled_regexes(&self) -> usize {
        self.compiled
            .iter()
            .filter(|c| c.regex.get().is_some())
            .count()
    }

    /// The published example values of rule `id` (what `rules check` proves for it).
    pub fn published_examples_of<'a>(
        &'a self,
        id: &'a str,
    ) -> impl Iterator<Item = &'a PublishedExample> + 'a {
        self.published.iter().filter(move |p| p.rule == id)
    }

    /// Every secret in one blob, in order of first appearance.
    pub fn scan(&self, data: &[u8]) -> Vec<Match> {
        let hits = WINDOWS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut windows) => self.find(data, &mut windows),
            Err(_) => self.find(data, &mut Windows::default()),
        });
        if hits.is_empty() {
            return Vec::new();
        }
        self.group(data, resolve_overlaps(hits, &self.rules))
    }

    /// Run each rule's regex over its windows; keep the matches that pass the rule's checks.
    fn find(&self, data: &[u8], windows: &mut Windows) -> Vec<Hit> {
        self.prefilter.windows(data, windows);
        let mut hits = Vec::new();
        let mut slots: Vec<Option<NonMaxUsize>> = Vec::new();
        for (index, ranges) in windows.iter() {
            let compiled = &self.compiled[index];
            let rule = &self.rules[index];
            slots.clear();
            slots.resize(2 * (compiled.group + 1), None);
            for range in ranges {
                let mut at = range.start;
                while at < range.end {
                    let input = Input::new(data).span(at..range.end);
                    if compiled.regex().search_slots(&input, &mut slots).is_none() {
                        break;
                    }
                    let (Some(match_start), Some(match_end)) = (slots[0], slots[1]) else {
                        break;
                    };
                    let (match_start, match_end) = (match_start.get(), match_end.get());
                    let secret = match (slots[2 * compiled.group], slots[2 * compiled.group + 1]) {
                        (Some(start), Some(end)) if start < end => Some((start.get(), end.get())),
                        _ => None,
                    };
                    // The next search starts where the secret ends, not where the match does:
                    // a match may consume the byte after the secret (a terminator such as
                    // `[^A-Za-z0-9]` or a newline) that the next match needs as its boundary.
                    at = match secret {
                        Some((_, end)) => end,
                        None if match_end > match_start => match_end,
                        None => match_end + 1,
                    };
                    if let Some((start, end)) = secret {
                        if passes_checks(rule, data, start, end)
                            && !self.published_values.contains(&data[start..end])
                        {
                            hits.push(Hit {
                                rule: index,
                                start,
                                end,
                            });
                        }
                    }
                }
            }
        }
        hits
    }

    /// Group hits by (rule, secret), with line and column for every span.
    fn group(&self, data: &[u8], mut hits: Vec<Hit>) -> Vec<Match> {
        hits.sort_by_key(|h| (h.start, h.rule, h.end));
        hits.dedup_by_key(|h| (h.start, h.rule, h.end));
        let mut lines = LineCounter::default();
        let mut matches: Vec<Match> = Vec::new();
        let mut by_secret: HashMap<(usize, &[u8]), usize> = HashMap::new();
        for hit in hits {
            let (line, column) = lines.locate(data, hit.start);
            let span = Span {
                start: hit.start,
                end: hit.end,
                line,
                column,
            };
            let secret = &data[hit.start..hit.end];
            match by_secret.get(&(hit.rule, secret)) {
                Some(&index) => {
                    let existing = &mut matches[index];
                    existing.spans.push(span);
                    if existing.slot.is_none() {
                        existing.slot = slot_at(data, hit.start);
                    }
                }
                None => {
                    by_secret.insert((hit.rule, secret), matches.len());
                    matches.push(Match {
                        rule: Arc::clone(&self.metas[hit.rule]),
                        secret: String::from_utf8_lossy(secret).into_owned(),
                        spans: vec![span],
                        slot: slot_at(data, hit.start),
                    });
                }
            }
        }
        matches
    }
}

/// One rule compiled: its regex, how far a window reaches around a keyword hit, and how far
/// left of a hit of each of its keywords a match can start.
fn compile_rule(rule: &Rule) -> Result<(CompiledRule, usize, Vec<usize>), RuleError> {
    let compile = |problem: RegexProblem| RuleError::Compile(problem.of(&rule.id));
    let hir = parse_regex(&rule.regex).map_err(compile)?;
    let group = secret_group_in(&hir).map_err(compile)?;
    let regex = OnceLock::new();
    if !rule.proven {
        let built = build_regex(&hir).map_err(|e| compile(RegexProblem::Compile(e)))?;
        let _ = regex.set(built);
    }
    let reach = rule
        .window
        .or(hir.properties().maximum_len())
        .unwrap_or(UNBOUNDED_REACH)
        .min(MAX_WINDOW);
    let leads = rule
        .keywords
        .iter()
        .map(|k| {
            super::prefilter::keyword_lead(&hir, k.as_bytes()).map_or(reach, |lead| lead.min(reach))
        })
        .collect();
    Ok((CompiledRule { regex, hir, group }, reach, leads))
}

fn passes_checks(rule: &Rule, data: &[u8], start: usize, end: usize) -> bool {
    let secret = &data[start..end];
    if is_filler(secret) || in_example_url(data, end) {
        return false;
    }
    if let Some(min) = rule.min_entropy {
        if shannon_entropy(secret) < min {
            return false;
        }
    }
    if rule.require_literal && !is_literal_secret(&String::from_utf8_lossy(secret)) {
        return false;
    }
    if rule.require_secret_name && slot_at(data, start).is_some_and(|s| !is_secret_name(&s)) {
        return false;
    }
    !is_suppressed(data, start, end)
}

/// Where matches of rules with different priorities overlap, only the higher-priority ones
/// stay: a provider rule beats the generic context rule on the same bytes.
fn resolve_overlaps(mut hits: Vec<Hit>, rules: &[Rule]) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort_by_key(|h| (h.start, h.end));
    let mut dropped = vec![false; hits.len()];
    for i in 0..hits.len() {
        for j in i + 1..hits.len() {
            if hits[j].start >= hits[i].end {
                break;
            }
            let (pi, pj) = (rules[hits[i].rule].priority, rules[hits[j].rule].priority);
            if pi < pj {
                dropped[i] = true;
            } else if pj < pi {
                dropped[j] = true;
            }
        }
    }
    hits.into_iter()
        .zip(dropped)
        .filter(|(_, d)| !d)
        .map(|(h, _)| h)
        .collect()
}
