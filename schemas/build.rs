//! Embeds every `.avsc` under `avro/` into the crate, so that the binary carries its schemas.
//!
//! Layout: `avro/<service>/<RecordName>/v<N>.avsc`, one file per published version. The generated list is
//! sorted, so a build is reproducible.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("avro");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path.strip_prefix(&root).expect("found under root");
        let parts: Vec<_> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let [service, record, file] = parts.as_slice() else {
            panic!(
                "{}: schemas live at avro/<service>/<RecordName>/v<N>.avsc",
                relative.display()
            );
        };
        let version: u32 = file
            .strip_prefix('v')
            .and_then(|rest| rest.strip_suffix(".avsc"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: a schema file is named v<N>.avsc", relative.display()));
        writeln!(
            out,
            "    SchemaFile {{ service: {service:?}, record: {record:?}, version: {version}, text: include_str!({:?}) }},",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push(']');
    let target =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schema_files.rs");
    fs::write(target, out).expect("write schema_files.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "avsc") {
            files.push(path);
        }
    }
}
