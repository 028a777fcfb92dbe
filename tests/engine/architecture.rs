//! The crate's shape, checked from its source: the top-level modules of `src/` form layers that
//! import only downwards (weights → network → process step → run → view), and no source file grows
//! past what one concern needs. `cargo test --test engine architecture -- --nocapture` prints the
//! module graph (`module -> modules it imports`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import only modules of lower layers; a new top-level
/// module must be placed here, which is the point: where it sits is a design decision.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["rng", "linalg", "picture"],
    &["gpu", "cpu"],
    &["tensor"],
    &["ops"],
    &["weights"],
    &["nn"],
    &["models"],
    &["process"],
    &["trajectory"],
    &["metrics"],
    &["pipelines"],
    &["lessons"],
    &["app"],
    &["web"],
];

/// Lines a source file may have before it is doing several jobs.
const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules each top-level module of the library names through `crate::` in code (`use`
/// lines and paths; comments are prose and do not count).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let text: String = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = graph.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b, c::{..}}`: the first segment of each top-level entry.
                let mut depth = 0;
                let mut entries = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => entries.push(String::new()),
                        _ if depth == 0 => entries.last_mut().unwrap().push(c),
                        _ => {}
                    }
                }
                entries
                    .iter()
                    .map(|e| e.trim().split("::").next().unwrap_or("").to_string())
                    .collect()
            } else {
                vec![rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()]
            };
            for n in names {
                if !n.is_empty() && n != top && n != "self" && n != "super" {
                    entry.insert(n);
                }
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn top_level_modules_import_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&root);
    for (m, deps) in &graph {
        let list: Vec<&str> = deps.iter().map(String::as_str).collect();
        eprintln!("{m} -> {}", list.join(" "));
    }
    let mut wrong = Vec::new();
    for (m, deps) in &graph {
        let Some(lm) = layer_of(m) else {
            wrong.push(format!("{m} is in no layer: add it to LAYERS"));
            continue;
        };
        for d in deps {
            // Re-exports at the crate root (`crate::Error`, `crate::Result`, `crate::Tensor`…) name
            // items, not modules; they resolve to `error`, `tensor` and `gpu`.
            let d = match d.as_str() {
                "Error" | "Result" => "error",
                "Tensor" | "DType" | "Device" | "Backend" => "tensor",
                "Cpu" | "CpuOptions" => "cpu",
                "Gpu" | "GpuOptions" | "LimitCaps" => "gpu",
                other => other,
            };
            match layer_of(d) {
                Some(ld) if ld < lm => {}
                Some(_) => wrong.push(format!("{m} imports {d}, which is not below it")),
                None => wrong.push(format!("{m} imports {d}, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_source_file_does_several_jobs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn the_graph_reader_sees_grouped_and_nested_imports() {
    // The checker must not pass by missing imports: a grouped `use` and a nested path both count.
    let dir = std::env::temp_dir().join(format!("diffscope-arch-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(
        dir.join("a/mod.rs"),
        "use crate::{b::X, c::{Y, Z}};\n/// [`crate::e`] is prose.\nfn f() { crate::d::g(); }\n",
    )
    .unwrap();
    let g = module_graph(&dir);
    let want: BTreeSet<String> = ["b", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(g.get("a"), Some(&want));
    std::fs::remove_dir_all(&dir).unwrap();
}
