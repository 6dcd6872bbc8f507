//! The export stage: a segment's members become hashed audience rows for Meta and Google
//! (`../shared/spec/export.md`).

mod dates;
mod geo;
pub mod hash;
mod normalize;

pub use dates::BirthDate;
pub use normalize::{clean, e164, is_sha256_hex, normalize, Field, Normalized, Platform};
