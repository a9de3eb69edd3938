//! What every writer shows, worked out once from a [`Report`]: the counts, each key with its
//! places described, the MCP servers with their check columns, the targets with their
//! outcomes. A writer renders this view in its own syntax (escaping, colour, markup) and
//! works nothing out again, so the formats cannot drift apart in what they say.
mod key;
mod location;
mod server;
mod target;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use key::{KeyView, Replacement, HELD_IN_STORE};
pub use location::LocationView;
pub use server::{ServerView, ServersView};
pub use target::{Outcome, TargetError, TargetView};

use super::{Report, Summary};
use crate::{
    audit::{Environment, Status},
    detect::Severity,
};

/// Every status, severity and environment, in the order the charts and filters list them.
pub const STATUSES: [Status; 3] = [Status::Live, Status::Rotated, Status::Removed];
pub const SEVERITIES: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];
pub const ENVIRONMENTS: [Environment; 5] = [
    Environment::Production,
    Environment::Staging,
    Environment::Development,
    Environment::Test,
    Environment::Unknown,
];

pub struct ReportView<'r> {
    pub schema: &'r str,
    pub tool_name: &'r str,
    pub tool_version: &'r str,
    pub generated_at: DateTime<Utc>,
    /// The host the scan ran on, `unknown host` when it was not known.
    pub host: &'r str,
    /// The hosts whose reports were merged into this one (empty for a single scan).
    pub merged_hosts: &'r [String],
    pub summary: &'r Summary,
    /// `3 live`, `1 rotated`, …: the statuses and severities that have keys, in the
    /// summary's order.
    pub status_tally: Vec<String>,
    pub severity_tally: Vec<String>,
    /// Keys by status, severity and environment, each in its fixed order, zeros included (a
    /// key in two environments counts in both).
    pub by_status: Vec<(Status, usize)>,
    pub by_severity: Vec<(Severity, usize)>,
    pub by_environment: Vec<(Environment, usize)>,
    pub keys: Vec<KeyView<'r>>,
    pub servers: ServersView<'r>,
    /// Compose services, Kubernetes objects and containers, with their secret-bearing fields.
    pub workloads: &'r [crate::audit::WorkloadReport],
    pub targets: Vec<TargetView<'r>>,
}

impl<'r> ReportView<'r> {
    pub fn new(report: &'r Report) -> ReportView<'r> {
        let summary = &report.summary;
        let count = |map: &BTreeMap<String, usize>, name: &str| map.get(name).copied().unwrap_or(0);
        let mut environments: BTreeMap<Environment, usize> = BTreeMap::new();
        // Exposed keys only, as the summary counts them.
        let exposed = report.keys.iter().filter(|k| !k.held_in_store);
        for environment in exposed.flat_map(|k| &k.scope.environments) {
            *environments.entry(*environment).or_default() += 1;
        }
        ReportView {
            schema: &report.schema,
            tool_name: &report.tool.name,
            tool_version: &report.tool.version,
            generated_at: report.generated_at,
            host: report.host.as_deref().unwrap_or("unknown host"),
            merged_hosts: &report.hosts,
            summary,
            status_tally: tally(&summary.by_status),
            severity_tally: tally(&summary.by_severity),
            by_status: STATUSES
                .iter()
                .map(|s| (*s, count(&summary.by_status, s.as_str())))
                .collect(),
            by_severity: SEVERITIES
                .iter()
                .map(|s| (*s, count(&summary.by_severity, s.as_str())))
                .collect(),
            by_environment: ENVIRONMENTS
                .iter()
                .map(|e| (*e, environments.get(e).copied().unwrap_or(0)))
                .collect(),
            keys: (report.keys.iter().enumerate())
                .map(|(i, key)| KeyView::new(i + 1, key))
                .collect(),
            servers: ServersView::new(&report.mcp_servers),
            workloads: &report.workloads,
            targets: report.targets.iter().map(TargetView::new).collect(),
        }
    }

    /// Every error of every target, in target order.
    pub fn target_errors(&self) -> impl Iterator<Item = TargetError<'r>> + '_ {
        self.targets.iter().flat_map(TargetView::target_errors)
    }
}

/// `N name` for each name with keys, in the map's order.
fn tally(counts: &BTreeMap<String, usize>) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect()
}

/// A commit id as git shows it in one-line logs.
pub fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
