//! The layering of `query/src` (ARCHITECTURE.md, "`query/src/`"): every top-level module
//! may name (`crate::…`) only modules of a lower layer, so the modules form no cycle.
//! `lib.rs` is the facade above them all and is not checked; naming the facade
//! (`crate::Foo` for a re-export) from a module is refused, since it would hide an edge.

#[path = "../../tests/support/layers.rs"]
mod layers;

use std::path::Path;

/// Bottom first. A module imports only from layers strictly below its own; modules of one
/// layer do not import each other.
const LAYERS: &[&[&str]] = &[
    // Where in the text, and how much text: spans and the parser's limits.
    &["span", "limits"],
    // What is wrong: expression errors and operation errors.
    &["error"],
    // Text → syntax tree.
    &["parser"],
    // What names mean (fields, `age`), and the plan's IR (resolved bitmap operations).
    &["schema", "age", "ir"],
    // Producing the IR (planner), running it (evaluator), remembering leaf results (cache).
    &["plan", "eval", "cache"],
    // Presenting and storing: explain, evaluated segments, saved segments.
    &["explain", "results", "saved"],
    // The API: one snapshot per call; applies the cache to plans.
    &["segments"],
    // Built on the API: access requests, export and sync.
    &["access", "audience"],
    // Models from expressions (uses the audience's SEGMENT_OR_EXPR rule).
    &["models"],
];

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let violations = layers::violations(&src, LAYERS);
    assert!(
        violations.is_empty(),
        "query's layering is broken:\n{}",
        violations.join("\n")
    );
}
