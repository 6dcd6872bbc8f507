//! Privacy: erasure that holds on disk.

mod access;
mod erasure;
mod objections;
