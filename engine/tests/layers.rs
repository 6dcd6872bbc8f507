//! The layering of `engine/src` (ARCHITECTURE.md, "Engine layers"): every layer is one
//! folder, and a module may name (`crate::…`) only folders of lower layers, so the
//! storage engine has no import cycle and the tree shows its shape.

#[path = "../../tests/support/layers.rs"]
mod layers;

use std::path::Path;

/// Bottom first; one folder a layer.
const LAYERS: &[&[&str]] = &[
    // Errors, time, digests, names, limits, identifier kinds, crash points.
    &["base"],
    // Records, normalization, scopes, identity rules, configuration, reports, generator.
    &["input"],
    // sled, the codec, key files, sealed profiles, stored records, atomic files.
    &["storage"],
    // The link table from identifiers to live profiles.
    &["identity"],
    // Bitmap indexes, the checkpoint, suppression membership.
    &["index"],
    // Lookalike and propensity models: features, training, scores.
    &["model"],
    // The write path: shared state, planning and commit, ingest, importers.
    &["write"],
    // Hashed audiences: rows, pipeline, formats, destinations and sync state.
    &["export"],
    // Audit trail, erasure, objections, suppression lists.
    &["privacy"],
    // The `Engine` facade: every `impl Engine`.
    &["engine"],
];

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn modules_import_only_lower_layers() {
    let violations = layers::violations(&src(), LAYERS);
    assert!(
        violations.is_empty(),
        "the engine's layering is broken:\n{}",
        violations.join("\n")
    );
}

/// The check is not vacuous: a copy of the sources with one upward import planted in the
/// base layer fails it, naming the file, the line and both layers.
#[test]
fn a_planted_upward_import_is_reported() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&src(), copy.path());
    let time = copy.path().join("base/time.rs");
    let mut text = std::fs::read_to_string(&time).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("use crate::engine::Engine;\n");
    std::fs::write(&time, text).unwrap();
    let violations = layers::violations(copy.path(), LAYERS);
    assert_eq!(
        violations,
        [format!(
            "base/time.rs:{line}: `base` (layer 0) imports `engine` (layer 9); \
             a module may import only from lower layers"
        )]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
