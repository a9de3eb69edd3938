//! `--verify`: asks each key's provider whether it still works. Verifiers are data beside the
//! rules ([`spec`]); a key's request is rendered from them ([`render`]), sent over HTTPS only to
//! the provider's own host, and its answer read by the verifier's own mapping ([`answer`]).
//! Nothing here runs unless the user asks.
pub mod answer;
pub mod check;
pub mod render;
mod sigv4;
pub mod spec;

pub use spec::{State, Verifier};
