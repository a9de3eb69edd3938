//! Sending a run's verifier requests: one per key (the cache answers what it can first),
//! at most `concurrency` in flight and `per_host` per host, 429s and 5xx retried after the
//! provider's `Retry-After` (a 429 holds back every request to that host) or a backoff, each
//! request under a timeout, all of them under the run's budget.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::Utc;
use tokio::sync::Semaphore;

use super::{
    answer::Answer,
    cache::Cache,
    client::{Client, SendError},
    render::{render, Request, Values},
    retry_after, Candidate, Options, Plan, Progress, State, Verification, Verifier,
};
use crate::audit::Key;

/// One request to send.
struct Job {
    fingerprint: String,
    verifier: Verifier,
    request: Request,
    secret: zeroize::Zeroizing<String>,
}

/// Requests to one host: how many at once, and not before when (a 429's `Retry-After`).
struct Gate {
    permits: Semaphore,
    not_before: Mutex<Instant>,
}

impl Gate {
    fn hold_until(&self, until: Instant) {
        let mut not_before = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *not_before = (*not_before).max(until);
    }

    fn not_before(&self) -> Instant {
        *self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Each key's verification, by fingerprint.
pub fn run(
    keys: &[Key],
    candidates: &HashMap<String, Candidate>,
    plan: &Plan,
    options: &Options,
    progress: &dyn Progress,
) -> anyhow::Result<HashMap<String, Verification>> {
    let now = Utc::now();
    let mut cache = options.cache.clone().map(Cache::open);
    let mut out = HashMap::new();
    let mut jobs = Vec::new();
    for key in keys {
        let candidate = candidates.get(&key.fingerprint);
        let verifier = plan
            .verifier_of(&key.rule)
            .or_else(|| candidate.and_then(|c| c.rules.iter().find_map(|r| plan.verifier_of(r))));
        let (Some(verifier), Some(candidate)) = (verifier, candidate) else {
            if let Some(verification) = super::database::verify(key, candidate, plan) {
                out.insert(key.fingerprint.clone(), verification);
            } else {
                out.insert(
                    key.fingerprint.clone(),
                    Verification::unknown(format!("no verifier for {}", key.rule), None),
                );
            }
            continue;
        };
        if !options.refresh {
            if let Some(hit) = cache
                .as_ref()
                .and_then(|c| c.get(&key.fingerprint, &verifier.id, options.ttl, now))
            {
                out.insert(key.fingerprint.clone(), hit);
                continue;
            }
        }
        let values = Values {
            secret: &candidate.secret,
            needs: &candidate.needs,
        };
        match render(&verifier.request, &verifier.hosts, values, now) {
            Ok(request) => jobs.push(Job {
                fingerprint: key.fingerprint.clone(),
                verifier: verifier.clone(),
                request,
                secret: candidate.secret.clone(),
            }),
            Err(reason) => {
                out.insert(
                    key.fingerprint.clone(),
                    Verification::unknown(reason.to_string(), Some(&verifier.id)),
                );
            }
        }
    }
    if !jobs.is_empty() {
        progress.verifying(jobs.len());
        let client = Client::new(&options.client)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let asked = runtime.block_on(send_all(client, jobs, options, progress));
        for (fingerprint, verification) in asked {
            if let Some(cache) = &mut cache {
                cache.put(&fingerprint, &verification);
            }
            out.insert(fingerprint, verification);
        }
    }
    if let Some(cache) = cache {
        if let Err(e) = cache.save() {
            tracing::warn!(error = %e, "cannot write the verification cache");
        }
    }
    Ok(out)
}

async fn send_all(
    client: Client,
    jobs: Vec<Job>,
    options: &Options,
    progress: &dyn Progress,
) -> Vec<(String, Verification)> {
    let deadline = Instant::now() + options.budget;
    let global = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut gates: HashMap<String, Arc<Gate>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let gate = Arc::clone(gates.entry(job.request.host.clone()).or_insert_with(|| {
            Arc::new(Gate {
                permits: Semaphore::new(options.per_host.max(1)),
                not_before: Mutex::new(Instant::now()),
            })
        }));
        let client = client.clone();
        let global = Arc::clone(&global);
        let limits = Limits {
            attempts: options.attempts.max(1),
            max_retry_after: options.max_retry_after,
            timeout: options.client.timeout,
            deadline,
        };
        tasks.spawn(async move {
            let verification = ask(&client, &job, &gate, &global, &limits).await;
            (job.fingerprint, verification)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        progress.verified();
        match done {
            Ok(pair) => out.push(pair),
            Err(e) => tracing::error!(error = %e, "a verification task failed"),
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Limits {
    attempts: u32,
    max_retry_after: Duration,
    timeout: Duration,
    deadline: Instant,
}

/// One key's request, tried until an answer tells or the tries, the wait the provider asks
/// for or the budget run out.
async fn ask(
    client: &Client,
    job: &Job,
    gate: &Gate,
    global: &Semaphore,
    limits: &Limits,
) -> Verification {
    let id = Some(job.verifier.id.as_str());
    let host = &job.request.host;
    let Ok(_host_permit) = gate.permits.acquire().await else {
        return Verification::unknown("cancelled", id);
    };
    let mut last = String::new();
    for attempt in 0..limits.attempts {
        let start = gate.not_before().max(Instant::now());
        if start >= limits.deadline {
            return Verification::unknown("the verification budget ran out", id);
        }
        tokio::time::sleep_until(start.into()).await;
        let remaining = limits.deadline.saturating_duration_since(Instant::now());
        let sent = {
            let Ok(_permit) = global.acquire().await else {
                return Verification::unknown("cancelled", id);
            };
            tracing::debug!(verifier = %job.verifier.id, %host, attempt, "asking the provider");
            tokio::time::timeout(limits.timeout.min(remaining), client.send(&job.request)).await
        };
        let response = match sent {
            Err(_) | Ok(Err(SendError::Timeout)) => {
                return Verification::unknown(format!("{host} did not answer in time"), id)
            }
            Ok(Err(SendError::Connect(cause))) => {
                return Verification::unknown(format!("cannot connect to {host}: {cause}"), id)
            }
            Ok(Err(SendError::Failed(cause))) => {
                return Verification::unknown(format!("request to {host} failed: {cause}"), id)
            }
            Ok(Ok(response)) => response,
        };
        let now = Utc::now();
        let asked_wait = response
            .header("retry-after")
            .and_then(|v| retry_after(v, now));
        match response.status {
            429 | 500..=599 => {
                let wait = asked_wait.unwrap_or_else(|| super::backoff(attempt + 1));
                last = if response.status == 429 {
                    format!("rate limited by {host}")
                } else {
                    format!("{host} answered HTTP {}", response.status)
                };
                tracing::debug!(verifier = %job.verifier.id, %host, status = response.status, ?wait, "retrying");
                if wait > limits.max_retry_after {
                    return Verification::unknown(
                        format!("{last}: it asks to wait {} s", wait.as_secs()),
                        id,
                    );
                }
                let until = Instant::now() + wait;
                if response.status == 429 {
                    gate.hold_until(until);
                } else if attempt + 1 < limits.attempts {
                    tokio::time::sleep(wait).await;
                }
            }
            status => {
                let answer = Answer::new(status, &response.headers, &response.body);
                let state = answer
                    .judge(&job.verifier.responses)
                    .unwrap_or(State::Unknown);
                let detail = match state {
                    State::Unknown => format!("unexpected answer from {host}: HTTP {status}"),
                    _ => answer.detail(&job.verifier.detail, &[&job.secret]),
                };
                return Verification {
                    state,
                    checked_at: now,
                    detail,
                    verifier: id.map(str::to_string),
                    cached: false,
                };
            }
        }
    }
    Verification::unknown(format!("{last} ({} tries)", limits.attempts), id)
}
