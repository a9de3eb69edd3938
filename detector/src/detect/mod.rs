//! The matching engine: rules → keyword prefilter → regex → entropy/context checks → Match.
//! It sees bytes only; where they came from is the source's business.
pub mod value;
