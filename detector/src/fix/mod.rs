//! `detector fix`: the seed's "minimum viable security", applied. Each literal key of an MCP
//! config moves into a local store ([`destination`]) and the config refers to it in the
//! client's own documented syntax ([`plan`], the syntaxes are catalogue data), or starts the
//! server through a wrapper that loads it ([`wrapper`]). Edits keep the rest of the file as
//! it was ([`document`]) and are written atomically, refused when the file changed since it
//! was read ([`write`]).
pub mod destination;
mod document;
mod names;
pub mod plan;
pub mod wrapper;
pub mod write;

pub use names::Names;
pub use plan::{plan, Context, FilePlan, Left, Move};
