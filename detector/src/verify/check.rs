//! Proof that verifiers do what their examples say, offline: the example key renders to
//! exactly the request written down, and each answer means what the example says. The
//! end-to-end tests send the same requests over real TLS to a local server.
use std::fmt::Write as _;

use chrono::{TimeZone, Utc};

use super::{
    answer::Answer,
    render::{render, Request, Values},
    spec::{Example, RequestSpec, ResponseRule, State, Verifier},
};
use crate::detect::RuleSet;

/// What `rules check` says of the verifiers: how many, and each failure.
#[derive(Debug, Default)]
pub struct VerifierReport {
    pub verifiers: usize,
    pub answers: usize,
    pub revokers: usize,
    pub failures: Vec<String>,
}

/// Check every verifier of `set` against its example.
pub fn check_verifiers(set: &RuleSet) -> VerifierReport {
    let mut report = VerifierReport::default();
    for verifier in set.verifiers() {
        report.verifiers += 1;
        report.answers += verifier.example.answers.len();
        let mut fail = |reason: String| report.failures.push(format!("{}: {reason}", verifier.id));
        for rule in &verifier.rules {
            if !set.rules().iter().any(|r| &r.id == rule) {
                fail(format!("names rule {rule}, which does not exist"));
            }
        }
        let Some(secret) = example_secret(set, verifier, &verifier.example) else {
            fail("its example has no key, and its first rule no example".into());
            continue;
        };
        if let Err(reason) = prove(
            verifier,
            &verifier.request,
            &verifier.responses,
            &verifier.example,
            &secret,
        ) {
            fail(reason);
        }
        for state in [State::Active, State::Revoked] {
            if !verifier.example.answers.iter().any(|a| a.state == state) {
                fail(format!("its example has no {} answer", state.as_str()));
            }
        }
        if let Some(revoke) = &verifier.revoke {
            report.revokers += 1;
            let secret = example_secret(set, verifier, &revoke.example).unwrap_or(secret);
            if let Err(reason) = prove(
                verifier,
                &revoke.request,
                &revoke.responses,
                &revoke.example,
                &secret,
            ) {
                fail(format!("revoke: {reason}"));
            }
        }
    }
    report
}

/// The example's key: its own, or its first rule's first example secret.
pub fn example_secret(set: &RuleSet, verifier: &Verifier, example: &Example) -> Option<String> {
    example.secret.clone().or_else(|| {
        let first = verifier.rules.first()?;
        let rule = set.rules().iter().find(|r| &r.id == first)?;
        Some(rule.examples.first()?.secret.clone())
    })
}

/// The time the examples' signatures are made at.
pub fn example_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn prove(
    verifier: &Verifier,
    spec: &RequestSpec,
    responses: &[ResponseRule],
    example: &Example,
    secret: &str,
) -> Result<(), String> {
    let mut needs = example.needs.clone();
    for need in &verifier.needs {
        if let Some(default) = &need.default {
            needs
                .entry(need.name.clone())
                .or_insert_with(|| default.clone());
        }
    }
    let values = Values {
        secret,
        needs: &needs,
    };
    let request = render(spec, &verifier.hosts, values, example_time())
        .map_err(|e| format!("its example does not make a request: {e}"))?;
    if let Some(problem) = mismatch(&example.request, &request) {
        return Err(format!("the request differs from the example: {problem}"));
    }
    for answer in &example.answers {
        let headers: Vec<(String, String)> = answer
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let parsed = Answer::new(answer.status, &headers, answer.body.as_bytes());
        let state = parsed.judge(responses).unwrap_or(State::Unknown);
        if state != answer.state {
            return Err(format!(
                "HTTP {} {:?} means {}, not {}",
                answer.status,
                answer.body,
                state.as_str(),
                answer.state.as_str()
            ));
        }
        if let Some(expected) = &answer.detail {
            let got = parsed.detail(&verifier.detail, &[secret]);
            if &got != expected {
                return Err(format!(
                    "HTTP {} gives the detail {got:?}, not {expected:?}",
                    answer.status
                ));
            }
        }
    }
    Ok(())
}

/// How `request` differs from the `expected` text (`METHOD target`, `name: value` lines, a
/// blank line, the body), or `None`. A header value ending in `*` is a prefix.
pub fn mismatch(expected: &str, request: &Request) -> Option<String> {
    let expected = expected.strip_suffix('\n').unwrap_or(expected);
    let (head, body) = match expected.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (expected, ""),
    };
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let sent = format!("{} {}", request.method, request.target);
    if first != sent {
        return Some(format!("the request line is {sent:?}, not {first:?}"));
    }
    let mut problems = String::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Some(format!("{line:?} is not a `name: value` header line"));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let actual = if name == "host" {
            Some(request.host.as_str())
        } else {
            request
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let ok = match (actual, value.strip_suffix('*')) {
            (Some(a), Some(prefix)) => a.starts_with(prefix),
            (Some(a), None) => a == value,
            (None, _) => false,
        };
        if !ok {
            let _ = write!(problems, "{name} is {actual:?}, not {value:?}; ");
        }
    }
    if request.body != body.as_bytes() {
        let _ = write!(
            problems,
            "the body is {:?}, not {body:?}",
            String::from_utf8_lossy(&request.body)
        );
    }
    (!problems.is_empty()).then_some(problems)
}
