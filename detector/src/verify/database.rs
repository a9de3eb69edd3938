//! Database URLs under `--verify-network`: a real login attempt, since they point at private
//! hosts that no verifier data can name.
use super::{Candidate, Plan, Verification};
use crate::audit::Key;

/// Whether keys of `rule` are database passwords this module can try.
pub fn handles(_rule: &str) -> bool {
    false
}

/// A login attempt with the key's URL, when its rule is a database's and the run allows it.
pub fn verify(_key: &Key, _candidate: Option<&Candidate>, _plan: &Plan) -> Option<Verification> {
    None
}
