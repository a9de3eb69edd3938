//! `--verify`: asks each key's provider whether it still works. Verifiers are data beside the
//! rules ([`spec`]); a key's request is rendered from them ([`render`]), sent over HTTPS only to
//! the provider's own host ([`client`]), and its answer read by the verifier's own mapping
//! ([`answer`]). Requests are bounded overall and per host, retried on 429 and 5xx as the
//! provider's `Retry-After` says, and remembered by fingerprint ([`cache`]). Nothing here runs
//! unless the user asks.
pub mod answer;
pub mod cache;
pub mod check;
pub mod client;
pub mod database;
mod needs;
pub mod render;
pub mod revoke;
mod schedule;
mod sigv4;
pub mod spec;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use client::{ClientOptions, Resolve};
pub use needs::Needs;
pub use spec::{State, Verifier};

use crate::{
    audit::{Finding, Key},
    detect::RuleSet,
};

/// What the provider said of a key, in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub state: State,
    #[serde(serialize_with = "crate::audit::location::time")]
    pub checked_at: DateTime<Utc>,
    /// What the provider says of the account (login, team, scopes), or why `unknown`.
    #[serde(default)]
    pub detail: String,
    /// The verifier that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// Taken from the cache, not asked in this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

impl Verification {
    pub fn unknown(detail: impl Into<String>, verifier: Option<&str>) -> Verification {
        Verification {
            state: State::Unknown,
            checked_at: Utc::now(),
            detail: detail.into(),
            verifier: verifier.map(str::to_string),
            cached: false,
        }
    }
}

/// How a run verifies.
#[derive(Debug, Clone)]
pub struct Options {
    pub client: ClientOptions,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests in flight at once to one host.
    pub per_host: usize,
    /// Tries per key, the first included, on 429 and 5xx.
    pub attempts: u32,
    /// The longest a provider's `Retry-After` is waited for.
    pub max_retry_after: Duration,
    /// All verification of a run ends by then: keys not asked are `unknown`.
    pub budget: Duration,
    /// How long a cached answer holds.
    pub ttl: Duration,
    /// Ask again whatever the cache holds.
    pub refresh: bool,
    /// The cache file; `None`: none.
    pub cache: Option<PathBuf>,
    /// Database URLs: try to log in (they point at private hosts).
    pub network: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client: ClientOptions {
                timeout: Duration::from_secs(10),
                ..ClientOptions::default()
            },
            concurrency: 16,
            per_host: 4,
            attempts: 3,
            max_retry_after: Duration::from_secs(30),
            budget: Duration::from_secs(300),
            ttl: Duration::from_secs(24 * 3600),
            refresh: false,
            cache: cache::default_path(),
            network: false,
        }
    }
}

/// The verifiers a run uses, by rule, with their needs compiled.
pub struct Plan {
    verifiers: Vec<Verifier>,
    by_rule: HashMap<String, usize>,
    needs: Needs,
    network: bool,
}

impl Plan {
    pub fn new(rules: &RuleSet, network: bool) -> Plan {
        let verifiers = rules.verifiers().to_vec();
        let mut by_rule = HashMap::new();
        // A later verifier (from `--rules`) wins for a rule both name.
        for (i, verifier) in verifiers.iter().enumerate() {
            for rule in &verifier.rules {
                by_rule.insert(rule.clone(), i);
            }
        }
        let extra = if network { database::NEEDS } else { &[] };
        let needs = Needs::new(&verifiers, &by_rule, extra);
        Plan {
            verifiers,
            by_rule,
            needs,
            network,
        }
    }

    pub fn verifiers(&self) -> &[Verifier] {
        &self.verifiers
    }

    pub fn verifier_of(&self, rule: &str) -> Option<&Verifier> {
        self.by_rule.get(rule).map(|&i| &self.verifiers[i])
    }

    /// Whether a key of `rule` can be asked about.
    fn verifiable(&self, rule: &str) -> bool {
        self.by_rule.contains_key(rule) || (self.network && database::handles(rule))
    }

    pub fn needs(&self) -> &Needs {
        &self.needs
    }
}

/// A key as the verifier needs it: the secret, every rule that found it, the needs' values.
#[derive(Default)]
pub struct Candidate {
    pub secret: zeroize::Zeroizing<String>,
    pub rules: BTreeSet<String>,
    pub needs: BTreeMap<String, String>,
}

/// Never the secret.
impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("rules", &self.rules)
            .field("needs", &self.needs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The verifiable keys of `findings`, by fingerprint, with the needs found next to each.
pub fn candidates(
    plan: &Plan,
    findings: &[Finding],
    found_needs: &HashMap<String, BTreeMap<String, String>>,
    fingerprint: impl Fn(&str) -> String,
) -> HashMap<String, Candidate> {
    let mut out: HashMap<String, Candidate> = HashMap::new();
    for finding in findings.iter().filter(|f| plan.verifiable(&f.rule.id)) {
        let defaults = plan
            .verifier_of(&finding.rule.id)
            .into_iter()
            .flat_map(|v| &v.needs)
            .filter_map(|n| Some((n.name.clone(), n.default.clone()?)));
        let candidate = out.entry(fingerprint(&finding.secret)).or_default();
        if candidate.secret.is_empty() {
            *candidate.secret = finding.secret.clone();
        }
        candidate.rules.insert(finding.rule.id.clone());
        if let Some(needs) = found_needs.get(&finding.secret) {
            for (name, value) in needs {
                candidate
                    .needs
                    .entry(name.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        for (name, value) in defaults {
            candidate.needs.entry(name).or_insert(value);
        }
    }
    out
}

/// What a run's verification tells its observer.
pub trait Progress: Sync {
    fn verifying(&self, _keys: usize) {}
    fn verified(&self) {}
}

/// Ask the providers about `keys` and record what they say, with the violations their
/// answers make (`audit::assess` again, under the run's rotation policy).
pub fn verify(
    keys: &mut [Key],
    candidates: &HashMap<String, Candidate>,
    plan: &Plan,
    options: &Options,
    max_age_days: u64,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let mut verdicts = schedule::run(keys, candidates, plan, options, progress)?;
    for key in keys.iter_mut() {
        if let Some(verification) = verdicts.remove(&key.fingerprint) {
            key.verification = Some(verification);
            crate::audit::assess(key, max_age_days);
        }
    }
    Ok(())
}

/// The fixed pause before try `attempt` (1-based, the first retry is 1) when the provider
/// gives no `Retry-After`.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt.min(6))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        when.with_timezone(&Utc)
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(backoff(1), Duration::from_millis(500));
    }
}
