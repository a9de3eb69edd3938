//! `detector revoke`: a key's documented call to revoke itself, sent once.
use chrono::Utc;

use super::{
    answer::Answer,
    client::{Client, ClientOptions, SendError},
    render::{render, Values},
    spec::{Revoke, State, Verifier},
    Candidate,
};

/// What became of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider says it is revoked.
    Revoked,
    /// The provider refused.
    Refused,
    /// No answer that tells: a network failure, a timeout, an unexpected answer.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Revoked => "revoked",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// The outcome, the provider's HTTP status when it answered, and what it said.
pub struct Revocation {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub detail: String,
}

/// The verifier of the candidate's rules that can revoke, and its call.
pub fn revoker<'a>(
    verifiers: &'a [Verifier],
    rules: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a Verifier, &'a Revoke)> {
    let rules: Vec<&str> = rules.into_iter().collect();
    verifiers.iter().rev().find_map(|v| {
        let revoke = v.revoke.as_ref()?;
        v.rules
            .iter()
            .any(|r| rules.contains(&r.as_str()))
            .then_some((v, revoke))
    })
}

/// Send `revoke`'s call for `candidate`'s key.
pub fn revoke(
    verifier: &Verifier,
    revoke: &Revoke,
    candidate: &Candidate,
    client: &ClientOptions,
) -> anyhow::Result<Revocation> {
    let values = Values {
        secret: &candidate.secret,
        needs: &candidate.needs,
    };
    let request = match render(&revoke.request, &verifier.hosts, values, Utc::now()) {
        Ok(request) => request,
        Err(reason) => {
            return Ok(Revocation {
                outcome: Outcome::Failed,
                status: None,
                detail: reason.to_string(),
            })
        }
    };
    let client = Client::new(client)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = request.host.clone();
    tracing::info!(verifier = %verifier.id, %host, "revoking");
    let sent = runtime.block_on(client.send(&request));
    Ok(match sent {
        Err(SendError::Timeout) => Revocation {
            outcome: Outcome::Failed,
            status: None,
            detail: format!("{host} did not answer in time"),
        },
        Err(SendError::Connect(cause)) => Revocation {
            outcome: Outcome::Failed,
            status: None,
            detail: format!("cannot connect to {host}: {cause}"),
        },
        Err(SendError::Failed(cause)) => Revocation {
            outcome: Outcome::Failed,
            status: None,
            detail: format!("request to {host} failed: {cause}"),
        },
        Ok(response) => {
            let state = Answer::new(response.status, &response.headers, &response.body)
                .judge(&revoke.responses);
            let outcome = match state {
                Some(State::Revoked) => Outcome::Revoked,
                Some(State::Active) => Outcome::Refused,
                _ => Outcome::Failed,
            };
            Revocation {
                outcome,
                status: Some(response.status),
                detail: match outcome {
                    Outcome::Failed => {
                        format!("unexpected answer from {host}: HTTP {}", response.status)
                    }
                    _ => format!("{host} answered HTTP {}", response.status),
                },
            }
        }
    })
}
