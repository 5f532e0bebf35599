//! aio-core's modules form layers: a module imports only from modules below it, and no two
//! modules import each other, however indirectly (`docs/design.md`, "Crates"). The scope
//! tree (`scope`) is the bottom layer of the constructs: it imports none of them. The
//! process pool's files (aio-blocking's `process/`) read as a chain the same way.
//!
//! Read from the sources: every `use crate::...` (`use super::...` in `process/`) and every
//! `crate::module::` path outside comments and test modules, with names re-exported at the
//! root resolved through `lib.rs` (`process.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The modules of a crate (or of a module's directory) and, for each, the modules it
/// imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/aio-core/src")
}

fn blocking_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/aio-blocking/src")
}

/// Every `.rs` file under `dir`, with its top-level module: `scope/node.rs` is `scope`.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            sources(&path, Some(top.unwrap_or(&stem)), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = top.unwrap_or(&stem).to_string();
            out.push((module, fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The code of a file without comments and without its test modules (`#[cfg(test)]`, or
/// `#[cfg(all(test, ...))]` as the loom models are).
fn code(source: &str) -> String {
    let mut kept = String::new();
    let mut skipping_tests = false;
    let mut depth = 0usize;
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if !skipping_tests
            && (trimmed == "#[cfg(test)]" || trimmed.starts_with("#[cfg(all(test, "))
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            skipping_tests = true;
            depth = 0;
            continue;
        }
        if skipping_tests {
            depth += line.matches('{').count();
            depth = depth.saturating_sub(line.matches('}').count());
            if depth == 0 && line.contains('}') {
                skipping_tests = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        kept.push_str(line.split(" // ").next().unwrap());
        kept.push('\n');
    }
    kept
}

/// The names `lib.rs` re-exports, and the module each comes from.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let lib = code(lib).replace('\n', " ");
    for statement in lib.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() {
                names.insert(item.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// The modules that `code` imports, by the first segment of each path after `root`
/// (`crate::`, or `super::` for the files of a module's directory).
fn imports(
    code: &str,
    root: &str,
    modules: &BTreeSet<String>,
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut resolve = |segment: &str| {
        if modules.contains(segment) {
            found.push(segment.to_string());
        } else if let Some(module) = names.get(segment) {
            found.push(module.clone());
        }
    };
    let flat = code.replace('\n', " ");
    for (i, _) in flat.match_indices(root) {
        let rest = &flat[i + root.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::C, D}`: the first segment of each item.
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                resolve(first.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_')));
            }
        } else {
            let first: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            resolve(&first);
        }
    }
    found
}

fn graph() -> Graph {
    graph_of(&core_src(), &core_src().join("lib.rs"), "crate::")
}

/// The graph of the process pool's files, which import each other through `super::`.
fn process_graph() -> Graph {
    let dir = blocking_src().join("process");
    graph_of(&dir, &blocking_src().join("process.rs"), "super::")
}

/// The graph of the modules under `dir`, whose re-exports `lib` lists, importing each
/// other through `root`.
fn graph_of(dir: &Path, lib: &Path, root: &str) -> Graph {
    let mut files = Vec::new();
    sources(dir, None, &mut files);
    let lib = fs::read_to_string(lib).unwrap();
    let names = reexports(&lib);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(module, _)| module.clone())
        .filter(|module| module != "lib")
        .collect();
    let mut graph = Graph::new();
    for (module, source) in &files {
        if module == "lib" {
            continue;
        }
        let edges = graph.entry(module.clone()).or_default();
        for import in imports(&code(source), root, &modules, &names) {
            if &import != module {
                edges.insert(import);
            }
        }
    }
    graph
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut found = path[start..].to_vec();
            found.push(module.to_string());
            return Some(found);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(graph, next, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

#[test]
fn the_process_pool_files_import_each_other_without_a_cycle() {
    let graph = process_graph();
    assert!(graph.contains_key("dispatch") && graph["slot"].contains("dispatch"));
    if let Some(found) = cycle(&graph) {
        panic!(
            "the process pool's files import each other in a cycle: {}",
            found.join(" -> ")
        );
    }
}

#[test]
fn the_core_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.len() > 20, "the sources were not found: {graph:?}");
    if let Some(cycle) = cycle(&graph) {
        panic!(
            "aio-core's modules import each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_scope_tree_imports_none_of_the_constructs_built_on_it() {
    let graph = graph();
    // `model`: the atomics and lock the tree synchronises with, std's or loom's.
    let below: BTreeSet<&str> = ["cancelled", "id", "model", "slab", "util"].into();
    let scope = &graph["scope"];
    let above: Vec<&String> = scope
        .iter()
        .filter(|m| !below.contains(m.as_str()))
        .collect();
    assert!(above.is_empty(), "scope imports {above:?}");
}

#[test]
fn the_check_sees_a_cycle_when_there_is_one() {
    // The reader itself: a group of imports, a path, and a re-exported name all count.
    let modules: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let names = BTreeMap::from([("Thing".to_string(), "c".to_string())]);
    let code_a = code("use crate::{b::X, Thing};\n// use crate::a::Y;\n");
    assert_eq!(imports(&code_a, "crate::", &modules, &names), ["b", "c"]);
    // Test modules do not count, whatever else their cfg asks for.
    let code_b = code("#[cfg(all(test, loom))]\nmod models {\n    use crate::a::Y;\n}\n");
    assert!(imports(&code_b, "crate::", &modules, &names).is_empty());
    let graph = Graph::from([
        ("a".into(), ["b".to_string()].into()),
        ("b".into(), ["c".to_string()].into()),
        ("c".into(), ["a".to_string()].into()),
    ]);
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
