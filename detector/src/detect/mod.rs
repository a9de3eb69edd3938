//! The matching engine: rules → keyword prefilter → regex → entropy/context checks → Match.
//! It sees bytes only; where they came from is the source's business.
//!
//! Rules are data (`rules/*.toml`, compiled into the binary; schema in `rules/README.md`).
//! One pass over a blob finds every rule keyword (`keywords`); each hit opens a window as wide
//! as the rule's longest possible match on either side, and only there the rule's regex runs.
//! Matches are checked (entropy, literal value for context rules, `detector:allow`), overlaps
//! are settled by rule priority, and what is left is grouped by secret.
pub mod check;
mod engine;
mod error;
pub mod filter;
mod keywords;
mod lines;
pub mod names;
pub mod placeholder;
mod prefilter;
mod rules;
pub mod slot;
pub mod value;

pub use check::{check_rules, CheckReport, Failure};
pub use engine::{Engine, Match, Span};
pub use error::{RegexProblem, RuleError, RuleProblem};
pub use lines::LineCounter;
pub use rules::{EnvironmentHint, Example, PublishedExample, Rule, RuleMeta, RuleSet, Severity};

/// `f` of every item, in order, on up to as many threads of its own as the run's pool has
/// (`--threads`). Its own threads, not the pool's: building rules may happen on a thread that
/// feeds the pool's workers (an image's layers), which would wait on them while they wait for
/// it.
pub(crate) fn map_in_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = rayon::current_num_threads()
        .clamp(1, 8)
        .min(items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests;
