//! One key as the writers show it: its heading facts, scope, timeline, successor, places,
//! readers and remediation.
use std::path::Path;

use chrono::{DateTime, Utc};

use super::location::LocationView;
use crate::{
    audit::{Access, Environment, Key, McpServerRef, Status, Successor, Violation},
    detect::{value::ValueClass, Severity},
};

/// What the human formats say of a key held in detector's managed store and nowhere else.
pub const HELD_IN_STORE: &str = "held in a managed store";

pub struct KeyView<'r> {
    /// Its place in the report, from 1: how the markdown and HTML sections are numbered.
    pub number: usize,
    pub fingerprint: &'r str,
    pub rule: &'r str,
    pub provider: &'r str,
    pub description: &'r str,
    pub severity: Severity,
    pub status: Status,
    /// Held in a managed store and nowhere else: listed, not exposed ([`HELD_IN_STORE`]).
    pub held_in_store: bool,
    pub redacted: &'r str,
    /// The secret with `--show-secrets`, else the redacted preview.
    pub shown: &'r str,
    /// The variables and fields it is assigned to.
    pub slots: &'r [String],
    pub projects: &'r [String],
    pub environments: &'r [Environment],
    pub environment_names: Vec<&'static str>,
    pub mcp_servers: &'r [McpServerRef],
    /// The workloads that hold or read it (`Deployment prod/api`, `compose-service shop/web`).
    pub workloads: Vec<String>,
    pub violations: Vec<&'static str>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub age: Option<Age>,
    /// What took its place in its slot, when something did.
    pub successor: Option<SuccessorView<'r>>,
    pub locations: Vec<LocationView<'r>>,
    pub readers: &'r [Access],
    /// Readers the policy does not allow.
    pub alerts: usize,
    pub remediation: &'r [String],
    /// What the provider said (`--verify`).
    pub verification: Option<VerificationView<'r>>,
}

/// What the provider said of a key, as the human formats show it.
pub struct VerificationView<'r> {
    /// `active`, `revoked`, `unknown`.
    pub state: &'static str,
    pub detail: &'r str,
    pub checked_at: DateTime<Utc>,
    pub cached: bool,
    /// What the answer makes of the key's status, said loudly: `still works: rotated but not
    /// revoked`, `dead: the provider refuses it`.
    pub alarm: Option<&'static str>,
}

impl VerificationView<'_> {
    /// `active — login=octocat (checked 2026-12-07 00:20 UTC)`.
    pub fn sentence(&self) -> String {
        let mut out = format!("provider says {}", self.state);
        if !self.detail.is_empty() {
            out.push_str(&format!(" — {}", self.detail));
        }
        out.push_str(&format!(
            " (checked {}{})",
            self.checked_at.format("%Y-%m-%d %H:%M UTC"),
            if self.cached { ", cached" } else { "" }
        ));
        out
    }
}

/// How old a key is, against the rotation policy.
#[derive(Clone, Copy)]
pub struct Age {
    pub days: i64,
    pub overdue: bool,
}

pub struct SuccessorView<'r> {
    pub slot: &'r str,
    pub path: &'r Path,
    /// The commit that changed the slot, in full.
    pub commit: Option<&'r str>,
    pub commit_time: Option<DateTime<Utc>>,
    pub by: Replacement<'r>,
}

/// What the slot holds instead of the key.
#[derive(Clone, Copy)]
pub enum Replacement<'r> {
    /// Another key, by fingerprint.
    Key(&'r str),
    /// A reference of this class (`env-ref`, `secret-manager`, …).
    Reference(ValueClass),
    OtherValue,
}

impl<'r> KeyView<'r> {
    pub fn new(number: usize, key: &'r Key) -> KeyView<'r> {
        KeyView {
            number,
            fingerprint: &key.fingerprint,
            rule: &key.rule,
            provider: &key.provider,
            description: &key.description,
            severity: key.severity,
            status: key.status,
            held_in_store: key.held_in_store,
            redacted: &key.redacted,
            shown: key.secret.as_deref().unwrap_or(&key.redacted),
            slots: &key.slots,
            projects: &key.scope.projects,
            environments: &key.scope.environments,
            environment_names: key.scope.environments.iter().map(|e| e.as_str()).collect(),
            mcp_servers: &key.scope.mcp_servers,
            workloads: key.scope.workloads.iter().map(|w| w.label()).collect(),
            violations: key.violations.iter().map(|v| v.as_str()).collect(),
            first_seen: key.first_seen,
            last_seen: key.last_seen,
            age: key.age_days.map(|days| Age {
                days,
                overdue: key.overdue,
            }),
            successor: key.rotated_to.as_ref().map(SuccessorView::new),
            locations: key.locations.iter().map(LocationView::new).collect(),
            readers: &key.accessed_by,
            alerts: key.accessed_by.iter().filter(|a| !a.allowed).count(),
            remediation: &key.remediation,
            verification: key.verification.as_ref().map(|v| VerificationView {
                state: v.state.as_str(),
                detail: &v.detail,
                checked_at: v.checked_at,
                cached: v.cached,
                alarm: if key.violations.contains(&Violation::RotatedNotRevoked) {
                    Some(ROTATED_NOT_REVOKED)
                } else if key.violations.contains(&Violation::DeadKeyInConfig) {
                    Some(DEAD_KEY)
                } else {
                    None
                },
            }),
        }
    }
}

/// The alarm of a rotated or removed key that still works.
pub const ROTATED_NOT_REVOKED: &str = "STILL WORKS: replaced but never revoked";
/// The alarm of a live key its provider refuses.
pub const DEAD_KEY: &str = "DEAD: the provider refuses it, whatever uses it is broken";

impl<'r> SuccessorView<'r> {
    fn new(next: &'r Successor) -> SuccessorView<'r> {
        let by = match (&next.fingerprint, next.reference) {
            (Some(fingerprint), _) => Replacement::Key(fingerprint),
            (None, Some(class)) => Replacement::Reference(class),
            (None, None) => Replacement::OtherValue,
        };
        SuccessorView {
            slot: &next.slot,
            path: &next.path,
            commit: next.commit.as_deref(),
            commit_time: next.commit_time,
            by,
        }
    }
}
