//! Privacy: erasure that holds on disk.

mod erasure;
