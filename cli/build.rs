//! Generates the API client from the committed OpenAPI document (`api/openapi.json`):
//!
//! - `$OUT_DIR/urumi_client.rs`: progenitor's `Generator` (builder interface), pretty-printed;
//!   `src/client.rs` includes it.
//! - `$OUT_DIR/urumi_enums.rs`: the values of every string enum in the document's schemas
//!   (`STORE_STATUS`, `RUN_KIND`, …), so the CLI's flags offer exactly what the API accepts.
//!
//! Cargo re-runs this whenever the document changes, so the CLI cannot drift from the spec:
//! an incompatible change to the API breaks this crate's build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use openapiv3::{OpenAPI, ReferenceOr, SchemaKind, Type};
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};

fn main() {
    let spec_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../api/openapi.json");
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed=build.rs");

    let text = std::fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", spec_path.display()));
    let spec: OpenAPI = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {} as OpenAPI 3: {e}", spec_path.display()));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    write(&out.join("urumi_client.rs"), &client(&spec, &spec_path));
    write(&out.join("urumi_enums.rs"), &enums(&spec));
}

fn write(path: &Path, code: &str) {
    std::fs::write(path, code).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The progenitor client, as Rust source.
fn client(spec: &OpenAPI, spec_path: &Path) -> String {
    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged);
    let tokens = Generator::new(&settings)
        .generate_tokens(spec)
        .unwrap_or_else(|e| panic!("generating the client from {}: {e}", spec_path.display()));
    let file: syn::File = syn::parse2(tokens).expect("progenitor emits a valid Rust file");
    prettyplease::unparse(&file)
}

/// One `pub const NAME: &[&str]` per string-enum schema, named in SCREAMING_SNAKE_CASE.
fn enums(spec: &OpenAPI) -> String {
    let mut code = String::new();
    let Some(components) = &spec.components else {
        return code;
    };
    for (name, schema) in &components.schemas {
        let ReferenceOr::Item(schema) = schema else {
            continue;
        };
        let SchemaKind::Type(Type::String(s)) = &schema.schema_kind else {
            continue;
        };
        let values: Vec<&str> = s.enumeration.iter().flatten().map(String::as_str).collect();
        if values.is_empty() {
            continue;
        }
        writeln!(
            code,
            "/// The values of the `{name}` schema, in the document's order."
        )
        .expect("writing to a String");
        writeln!(
            code,
            "pub const {}: &[&str] = &{values:?};",
            screaming_snake(name)
        )
        .expect("writing to a String");
    }
    code
}

fn screaming_snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}
