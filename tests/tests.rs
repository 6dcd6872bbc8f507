//! cidb integration tests: real databases in temp dirs, one binary with a module per area.

mod engine;
mod export;
mod privacy;
mod query;
mod support;

/// Every file under `dir`, recursively (for tests that search the data directory's bytes).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
