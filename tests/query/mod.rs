//! Tests of the segment query layer through the embedding API.

mod differential;
mod planning;
mod reference;
