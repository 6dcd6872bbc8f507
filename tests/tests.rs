//! cidb integration tests: real databases in temp dirs, one binary with a module per area.

mod engine;
mod export;
mod privacy;
mod query;
