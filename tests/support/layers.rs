//! The layering check shared by `engine/tests/layers.rs` and `query/tests/layers.rs`
//! (ARCHITECTURE.md): reads the `crate::` paths of every source file and reports each
//! module that names a module of its own or a higher layer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Removes `//` and `/* */` comments (doc comments too: their links are not imports).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first path segment after every `crate::` in `code` (each member of a
/// `crate::{a::X, b}` group), with its line number.
pub fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue; // `$crate::`, `my_crate::`
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Members at depth 1 start after `{` or a `,`.
            let (mut depth, mut start_of_member) = (1, true);
            let mut chars = group.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start_of_member = true,
                    c if start_of_member && is_ident(c) => {
                        let name: String =
                            group[i..].chars().take_while(|&c| is_ident(c)).collect();
                        for _ in 1..name.chars().count() {
                            chars.next();
                        }
                        found.push((line, name));
                        start_of_member = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            found.push((line, name));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The violations of `layers` (bottom first) by the Rust files under `src`: a top-level
/// module (file or folder of `src`) may name (`crate::…`) only modules of a lower layer.
/// `lib.rs` is the facade above them all and is not checked; naming the facade
/// (`crate::Foo` for a re-export) from a module is refused, since it would hide an edge.
pub fn violations(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |module: &str| layers.iter().position(|l| l.contains(&module));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut modules = BTreeSet::new();
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first.as_os_str().to_str().expect("utf-8 name");
        let module = module.strip_suffix(".rs").unwrap_or(module).to_string();
        if module == "lib" {
            continue;
        }
        modules.insert(module.clone());
        let Some(own) = layer_of(&module) else {
            continue; // reported below
        };
        let code = strip_comments(&std::fs::read_to_string(file).expect("read source"));
        for (line, used) in crate_paths(&code) {
            if used == module {
                continue;
            }
            let at = relative.display();
            match layer_of(&used) {
                None => violations.push(format!(
                    "{at}:{line}: `crate::{used}` is not a module of the layer list \
                     (a re-export of lib.rs? import the module that defines it)"
                )),
                Some(theirs) if theirs >= own => violations.push(format!(
                    "{at}:{line}: `{module}` (layer {own}) imports `{used}` (layer {theirs}); \
                     a module may import only from lower layers"
                )),
                Some(_) => {}
            }
        }
    }
    for module in &modules {
        if layer_of(module).is_none() {
            violations.push(format!(
                "module `{module}` is in no layer: add it to the layers (and ARCHITECTURE.md)"
            ));
        }
    }
    for module in layers.iter().flat_map(|l| l.iter()) {
        if !modules.contains(*module) {
            violations.push(format!(
                "the layers name `{module}`, which {} does not have",
                src.display()
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_finds_every_crate_path() {
        let code = strip_comments(
            "use crate::ir::{Node, Op};\n\
             use crate::{error::{Error, ErrorKind}, span};\n\
             // use crate::segments;\n\
             /// [`crate::parse`]\n\
             let x = crate::schema::resolve(ix, &name); macro!($crate::y);\n",
        );
        let found: Vec<_> = crate_paths(&code);
        assert_eq!(
            found,
            [
                (1, "ir".to_string()),
                (2, "error".to_string()),
                (2, "span".to_string()),
                (5, "schema".to_string()),
            ]
        );
    }
}
